//! The outbox: rows written with the change that causes them (`enqueue`, `request_code`),
//! claimed with a lease by exactly one claimer, changed only by the lease's owner, `in_doubt`
//! rows left alone until an operator retries them, final states scrubbing the payload and
//! telling the user's confirmation, figures and listing.

use super::*;
use std::collections::HashSet;

/// A mail row of `scope` for `user_id`, made at `n` seconds, with a code in its payload.
fn mail(s: &Scope, user_id: Option<Uuid>, n: i64) -> OutboxMessage {
    let mut m = OutboxMessage::new(
        s,
        OutboxKind::Mail,
        "example.com",
        user_id,
        json!({"mail": "confirm", "to": "alice@example.com", "code": format!("hpc_secret{n}")}),
        at(n * SEC),
    );
    m.id = id_at(at(n * SEC));
    m
}

fn claim(owner: &str, n: i64, limit: u32) -> OutboxClaim {
    OutboxClaim {
        now: at(n * SEC),
        lease_until: at(n * SEC + MIN),
        owner: owner.to_owned(),
        kind: OutboxKind::Mail,
        limit,
        skip_lanes: Vec::new(),
    }
}

fn update(state: OutboxState, n: i64) -> OutboxUpdate {
    OutboxUpdate {
        state,
        at: at(n * SEC),
        next_attempt_at: None,
        error: None,
        payload: None,
        user_confirmation: None,
    }
}

async fn row(store: &dyn Store, id: Uuid) -> OutboxMessage {
    let all = store.outbox_list(None, 1000).await.expect("outbox_list");
    all.into_iter().find(|m| m.id == id).expect("the row is listed")
}

/// `enqueue` stores the user, the code and the rows in one go; a row reads back exactly
/// as written.
pub async fn enqueue_writes_user_code_and_rows_together(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = user(&s, Some("alice"), Some("alice@example.com"));
    let c = code(&s, alice.user.id, CodeKind::Confirm, at(0));
    let m = mail(&s, Some(alice.user.id), 1);
    store
        .enqueue(&Enqueue { user: Some(&alice), code: Some(&c), messages: std::slice::from_ref(&m) })
        .await
        .expect("enqueue");
    assert!(find(store, &s, by_username("alice")).await.is_some());
    assert_eq!(
        store.code_owner(&s, CodeKind::Confirm, &c.code_hash, at(SEC)).await.expect("owner"),
        Some(alice.user.id)
    );
    assert_eq!(row(store, m.id).await, m);

    // A later code for an existing user voids the older one of its kind, with its mail.
    let c2 = code(&s, alice.user.id, CodeKind::Confirm, at(2 * SEC));
    let m2 = mail(&s, Some(alice.user.id), 2);
    store
        .enqueue(&Enqueue { user: None, code: Some(&c2), messages: std::slice::from_ref(&m2) })
        .await
        .expect("enqueue");
    assert_eq!(
        store.code_owner(&s, CodeKind::Confirm, &c.code_hash, at(3 * SEC)).await.expect("owner"),
        None
    );
    assert_eq!(store.outbox_list(None, 10).await.expect("list").len(), 2);
}

/// A taken username fails the whole `enqueue`: no code, no row.
pub async fn enqueue_writes_nothing_on_conflict(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    add_user(store, &s, Some("alice"), None).await;
    let twin = user(&s, Some("Alice"), Some("twin@example.com"));
    let c = code(&s, twin.user.id, CodeKind::Confirm, at(0));
    let m = mail(&s, Some(twin.user.id), 1);
    let err = store
        .enqueue(&Enqueue { user: Some(&twin), code: Some(&c), messages: std::slice::from_ref(&m) })
        .await
        .expect_err("taken");
    assert!(matches!(err, StoreError::UsernameTaken), "{err:?}");
    assert!(store.outbox_list(None, 10).await.expect("list").is_empty());
    assert_eq!(store.outbox_stats().await.expect("stats"), OutboxStats::default());
}

/// `request_code` queues its mail only when it stores the code for the row's user.
pub async fn request_code_queues_its_mail_only_for_the_user(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
    let request = |login: UserRef, n: i64, outbox: Option<OutboxMessage>| CodeRequest {
        login,
        kind: CodeKind::Reset,
        code_hash: TokenHash::of(&format!("mail-request-{n}")),
        created_at: at(n * SEC),
        expires_at: at(n * SEC + HOUR),
        throttle_key: format!("code:reset:{n}"),
        window: time::Duration::hours(1),
        limit: 0,
        outbox,
    };
    let m = mail(&s, Some(alice.id), 1);
    let out =
        store.request_code(&s, &request(by_username("alice"), 1, Some(m.clone()))).await.expect("request");
    assert!(out.stored);
    assert_eq!(row(store, m.id).await, m);

    // Nobody: no row. A row for somebody else than the login names: no row either.
    let nobody = mail(&s, None, 2);
    store.request_code(&s, &request(by_username("nobody"), 2, Some(nobody))).await.expect("request");
    let other = mail(&s, Some(Uuid::now_v7()), 3);
    store.request_code(&s, &request(by_username("alice"), 3, Some(other))).await.expect("request");
    assert_eq!(store.outbox_list(None, 10).await.expect("list").len(), 1);
}

/// A claim takes due rows only (queued and due, or sending with a lapsed lease), oldest
/// due first, up to the limit; a claimed row is not claimed again while its lease holds.
pub async fn outbox_claim_takes_due_rows_once(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let (m1, m2, mut m3) = (mail(&s, None, 1), mail(&s, None, 2), mail(&s, None, 3));
    m3.next_attempt_at = at(100 * SEC);
    let rows = [m1.clone(), m2.clone(), m3.clone()];
    store.enqueue(&Enqueue { user: None, code: None, messages: &rows }).await.expect("enqueue");

    let got = store.outbox_claim(&claim("w1", 10, 1)).await.expect("claim");
    assert_eq!(got.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m1.id]);
    let g = &got[0];
    assert_eq!(
        (g.state, g.attempts, g.lease_owner.as_deref(), g.lease_until),
        (OutboxState::Sending, 1, Some("w1"), Some(at(10 * SEC + MIN)))
    );
    let got = store.outbox_claim(&claim("w2", 10, 10)).await.expect("claim");
    assert_eq!(got.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m2.id], "m1 is leased, m3 not due");
    assert!(store.outbox_claim(&claim("w3", 20, 10)).await.expect("claim").is_empty());

    // After the leases lapse (w1, w2 died before handing anything over), both come back.
    let got = store.outbox_claim(&claim("w3", 10 + 61, 10)).await.expect("claim");
    let ids: HashSet<Uuid> = got.iter().map(|m| m.id).collect();
    assert_eq!(ids, HashSet::from([m1.id, m2.id]));
    assert!(got.iter().all(|m| m.attempts == 2 && m.lease_owner.as_deref() == Some("w3")));
    // The first owner's late word changes nothing.
    assert!(!store.outbox_update(m1.id, "w1", &update(OutboxState::InDoubt, 72)).await.expect("update"));
    let got = store.outbox_claim(&claim("w4", 100, 10)).await.expect("claim");
    assert_eq!(got.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m3.id]);
}

/// Eight claimers at once over forty rows: every row is claimed exactly once.
pub async fn outbox_concurrent_claimers_never_share_a_row(store: Arc<dyn Store>) {
    let s = scope("a");
    let rows: Vec<OutboxMessage> = (1..=40).map(|n| mail(&s, None, n)).collect();
    store.enqueue(&Enqueue { user: None, code: None, messages: &rows }).await.expect("enqueue");
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.outbox_claim(&claim(&format!("w{w}"), 100, 3)).await.expect("claim");
                if got.is_empty() {
                    break;
                }
                assert!(got.iter().all(|m| m.lease_owner.as_deref() == Some(format!("w{w}").as_str())));
                mine.extend(got.into_iter().map(|m| m.id));
            }
            mine
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.extend(t.await.expect("claimer"));
    }
    let unique: HashSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(seen.len(), 40, "each row claimed once");
    assert_eq!(unique, rows.iter().map(|m| m.id).collect::<HashSet<_>>());
    assert_eq!(store.outbox_stats().await.expect("stats").sending, 40);
}

/// Only the lease owner changes a row, and only while it is sending or in doubt; a retry
/// puts it back in the queue without its lease, due when told.
pub async fn outbox_update_needs_the_lease(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let m = mail(&s, None, 1);
    store
        .enqueue(&Enqueue { user: None, code: None, messages: std::slice::from_ref(&m) })
        .await
        .expect("enqueue");
    assert!(!store.outbox_update(m.id, "w1", &update(OutboxState::Sent, 2)).await.expect("update"), "queued");
    store.outbox_claim(&claim("w1", 2, 10)).await.expect("claim");
    assert!(!store.outbox_update(m.id, "w2", &update(OutboxState::Sent, 3)).await.expect("update"));
    let retry = OutboxUpdate {
        next_attempt_at: Some(at(30 * SEC)),
        error: Some("421 try later".into()),
        ..update(OutboxState::Queued, 3)
    };
    assert!(store.outbox_update(m.id, "w1", &retry).await.expect("update"));
    let r = row(store, m.id).await;
    assert_eq!(
        (r.state, r.next_attempt_at, r.last_error.as_deref(), r.lease_owner, r.lease_until),
        (OutboxState::Queued, at(30 * SEC), Some("421 try later"), None, None)
    );
    assert!(
        !store.outbox_update(m.id, "w1", &update(OutboxState::Sent, 4)).await.expect("update"),
        "lease gone"
    );
    assert!(store.outbox_claim(&claim("w2", 29, 10)).await.expect("claim").is_empty(), "not due yet");
    assert_eq!(store.outbox_claim(&claim("w2", 30, 10)).await.expect("claim").len(), 1);
    assert!(store.outbox_update(m.id, "w2", &update(OutboxState::Sent, 31)).await.expect("update"));
    let r = row(store, m.id).await;
    assert_eq!(
        (r.state, r.sent_at, r.attempts, r.last_error.as_deref()),
        (OutboxState::Sent, Some(at(31 * SEC)), 2, Some("421 try later"))
    );
    assert!(
        !store.outbox_update(m.id, "w2", &update(OutboxState::Failed, 32)).await.expect("update"),
        "final"
    );
}

/// A row left in doubt is never claimed again, however old its lease; an operator's retry
/// queues it once more.
pub async fn outbox_in_doubt_is_never_reclaimed_until_retried(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let m = mail(&s, None, 1);
    store
        .enqueue(&Enqueue { user: None, code: None, messages: std::slice::from_ref(&m) })
        .await
        .expect("enqueue");
    store.outbox_claim(&claim("w1", 2, 10)).await.expect("claim");
    assert!(store.outbox_update(m.id, "w1", &update(OutboxState::InDoubt, 3)).await.expect("update"));
    assert!(store.outbox_claim(&claim("w2", 10_000, 10)).await.expect("claim").is_empty());
    assert_eq!(store.outbox_stats().await.expect("stats").in_doubt, 1);
    assert!(store.outbox_retry(m.id, at(20_000 * SEC)).await.expect("retry"));
    assert!(!store.outbox_retry(m.id, at(20_000 * SEC)).await.expect("retry"), "queued now");
    let got = store.outbox_claim(&claim("w2", 20_000, 10)).await.expect("claim");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, m.payload, "the code is still there to send");
    assert!(!store.outbox_retry(Uuid::now_v7(), at(0)).await.expect("retry"));
}

/// `sent` and `failed` replace the payload when told (the code scrubbed) and set the
/// user's confirmation in the same change, unless the user has confirmed meanwhile.
pub async fn outbox_final_states_scrub_and_set_confirmation(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
    let bob = add_user(store, &s, Some("bob"), Some("bob@example.com")).await;
    let (ma, mb) = (mail(&s, Some(alice.id), 1), mail(&s, Some(bob.id), 2));
    store
        .enqueue(&Enqueue { user: None, code: None, messages: &[ma.clone(), mb.clone()] })
        .await
        .expect("enqueue");
    store.outbox_claim(&claim("w", 3, 10)).await.expect("claim");
    let scrubbed = json!({"mail": "confirm", "to": "alice@example.com"});
    let sent = OutboxUpdate {
        payload: Some(scrubbed.clone()),
        user_confirmation: Some(Confirmation::Pending),
        ..update(OutboxState::Sent, 4)
    };
    assert!(store.outbox_update(ma.id, "w", &sent).await.expect("update"));
    assert_eq!(row(store, ma.id).await.payload, scrubbed);
    let a = find(store, &s, UserRef::Id(alice.id)).await.expect("alice").user;
    assert_eq!((a.confirmation, a.confirmed), (Some(Confirmation::Pending), false));

    // Bob confirmed by other means before his mail finally failed: he stays confirmed.
    store
        .update_user(&s, bob.id, &UserPatch { confirmed: Some(true), ..Default::default() }, at(5 * SEC))
        .await
        .expect("update_user");
    let failed = OutboxUpdate {
        payload: Some(json!({})),
        error: Some("550 no such user".into()),
        user_confirmation: Some(Confirmation::Failed),
        ..update(OutboxState::Failed, 6)
    };
    assert!(store.outbox_update(mb.id, "w", &failed).await.expect("update"));
    let b = find(store, &s, UserRef::Id(bob.id)).await.expect("bob").user;
    assert_eq!((b.confirmation, b.confirmed), (None, true));
    let r = row(store, mb.id).await;
    assert_eq!(
        (r.state, r.payload, r.last_error.as_deref()),
        (OutboxState::Failed, json!({}), Some("550 no such user"))
    );
}

/// Figures per state and the oldest undelivered row; the listing is newest first with a
/// cursor.
pub async fn outbox_stats_and_list(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (a, b) = (scope("a"), scope("b"));
    let rows = [mail(&a, None, 1), mail(&b, None, 2), mail(&a, None, 3), mail(&b, None, 4)];
    store.enqueue(&Enqueue { user: None, code: None, messages: &rows }).await.expect("enqueue");
    let got = store.outbox_claim(&claim("w", 10, 2)).await.expect("claim");
    assert!(store.outbox_update(got[0].id, "w", &update(OutboxState::Sent, 11)).await.expect("update"));
    let stats = store.outbox_stats().await.expect("stats");
    assert_eq!((stats.queued, stats.sending, stats.sent, stats.in_doubt, stats.failed), (2, 1, 1, 0, 0));
    assert_eq!(stats.oldest_pending_at, Some(at(2 * SEC)), "the sending row is the oldest undelivered");

    let page = store.outbox_list(None, 3).await.expect("list");
    assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), vec![rows[3].id, rows[2].id, rows[1].id]);
    assert_eq!(page[1].scope, a);
    let rest = store.outbox_list(Some(page[2].id), 3).await.expect("list");
    assert_eq!(rest.iter().map(|m| m.id).collect::<Vec<_>>(), vec![rows[0].id]);
}

/// `update_user_enqueue`: the change, a code that survives the email change's voiding and
/// the rows, together; nothing for an unknown user or a refused change.
pub async fn update_user_enqueue_changes_and_queues_together(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
    add_user(store, &s, Some("bob"), Some("bob@example.com")).await;
    let older = add_code(store, &s, alice.id, CodeKind::Reset, at(0)).await;
    let new_email = Email::parse("alice@new.example").expect("email");
    let patch =
        UserPatch { email: Some(Some(new_email.clone())), confirmed: Some(false), ..Default::default() };
    let c = code(&s, alice.id, CodeKind::Confirm, at(SEC));
    let rows = [mail(&s, Some(alice.id), 1), mail(&s, Some(alice.id), 2)];
    let e = Enqueue { user: None, code: Some(&c), messages: &rows };
    let user =
        store.update_user_enqueue(&s, alice.id, &patch, at(SEC), &e).await.expect("update").expect("alice");
    assert_eq!(user.email.as_ref().map(Email::as_str), Some("alice@new.example"));
    assert_eq!(
        store.code_owner(&s, CodeKind::Reset, &older.code_hash, at(2 * SEC)).await.expect("owner"),
        None
    );
    assert_eq!(
        store.code_owner(&s, CodeKind::Confirm, &c.code_hash, at(2 * SEC)).await.expect("owner"),
        Some(alice.id),
        "the new code survives the voiding"
    );
    assert_eq!(store.outbox_list(None, 10).await.expect("list").len(), 2);

    // Unknown user: nothing. Taken email: nothing.
    let rows2 = [mail(&s, None, 3)];
    let e2 = Enqueue { user: None, code: None, messages: &rows2 };
    assert!(
        store
            .update_user_enqueue(&s, Uuid::now_v7(), &patch, at(3 * SEC), &e2)
            .await
            .expect("update")
            .is_none()
    );
    let taken = UserPatch {
        email: Some(Some(Email::parse("bob@example.com").expect("email"))),
        ..Default::default()
    };
    let err = store.update_user_enqueue(&s, alice.id, &taken, at(3 * SEC), &e2).await.expect_err("taken");
    assert!(matches!(err, StoreError::EmailTaken), "{err:?}");
    assert_eq!(store.outbox_list(None, 10).await.expect("list").len(), 2);
}

/// `insert_login` writes the login's notice in its own transaction: the row exists exactly
/// when the login was stored, never for a login that failed.
pub async fn insert_login_queues_its_notice_with_it(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
    let rec = session(&s, alice.id, at(10 * SEC), at(10 * SEC + HOUR), at(10 * SEC + DAY));
    let mut login = new_login(&rec, None);
    let notice = mail(&s, Some(alice.id), 10);
    login.notice = Some(notice.clone());
    store.insert_login(&login).await.expect("insert_login");
    assert!(has_session(store, &s, &rec).await);
    assert_eq!(row(store, notice.id).await, notice);

    // A login that cannot be stored (its token hash is taken) leaves no notice behind.
    let mut twin = session(&s, alice.id, at(20 * SEC), at(20 * SEC + HOUR), at(20 * SEC + DAY));
    twin.token_hash = rec.token_hash;
    let mut login = new_login(&twin, None);
    login.notice = Some(mail(&s, Some(alice.id), 20));
    store.insert_login(&login).await.expect_err("a taken token hash");

    // Nor does a login of a user who does not exist.
    let ghost = Uuid::now_v7();
    let lost = session(&s, ghost, at(30 * SEC), at(30 * SEC + HOUR), at(30 * SEC + DAY));
    let mut login = new_login(&lost, None);
    login.notice = Some(mail(&s, Some(alice.id), 30));
    store.insert_login(&login).await.expect_err("no such user");

    let rows = store.outbox_list(None, 10).await.expect("list");
    assert_eq!(rows.iter().map(|m| m.id).collect::<Vec<_>>(), vec![notice.id]);
    assert_eq!(store.outbox_stats().await.expect("stats").queued, 1);

    // Without a notice, a login queues nothing.
    login_at(store, &s, alice.id, at(40 * SEC)).await;
    assert_eq!(store.outbox_list(None, 10).await.expect("list").len(), 1);
}

/// `outbox_purge_sent` deletes `sent` rows sent before the cut, of its kind, at most
/// `limit`; every other state (failed, in doubt, queued) and newer sent rows stay.
pub async fn outbox_purge_sent_deletes_only_old_sent_rows(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let rows: Vec<OutboxMessage> = (1..=6).map(|n| mail(&s, None, n)).collect();
    store.enqueue(&Enqueue { user: None, code: None, messages: &rows }).await.expect("enqueue");
    let claimed = store.outbox_claim(&claim("w", 10, 10)).await.expect("claim");
    assert_eq!(claimed.len(), 6);
    // Rows 1-3 sent at 20, 21, 22 s; row 4 failed at 20 s; row 5 in doubt; row 6 sent at 40 s.
    for (m, state, at_s) in [
        (&rows[0], OutboxState::Sent, 20),
        (&rows[1], OutboxState::Sent, 21),
        (&rows[2], OutboxState::Sent, 22),
        (&rows[3], OutboxState::Failed, 20),
        (&rows[4], OutboxState::InDoubt, 20),
        (&rows[5], OutboxState::Sent, 40),
    ] {
        assert!(store.outbox_update(m.id, "w", &update(state, at_s)).await.expect("update"));
    }
    let before = at(30 * SEC);
    assert_eq!(
        store.outbox_purge_sent(OutboxKind::Mail, before, 2).await.expect("purge"),
        2,
        "at most the limit"
    );
    assert_eq!(store.outbox_purge_sent(OutboxKind::Mail, before, 10).await.expect("purge"), 1);
    assert_eq!(store.outbox_purge_sent(OutboxKind::Mail, before, 10).await.expect("purge"), 0);
    let left: HashSet<Uuid> = store.outbox_list(None, 10).await.expect("list").iter().map(|m| m.id).collect();
    assert_eq!(left, HashSet::from([rows[3].id, rows[4].id, rows[5].id]));
    let stats = store.outbox_stats().await.expect("stats");
    assert_eq!((stats.sent, stats.failed, stats.in_doubt), (1, 1, 1));
}
