//! Webhooks: endpoints stored per scope, and their deliveries (outbox rows of kind
//! `webhook`, lane = endpoint id) written in the same transaction as the change that
//! causes them, and only when that change happens; claims that skip busy lanes; the
//! delivery log of a lane; retries of waiting or failed deliveries.

use super::*;
use hallpass_core::webhook::{Event, EventType, WebhookEndpoint};

fn endpoint(s: &Scope, n: i64, events: &[EventType]) -> WebhookEndpoint {
    WebhookEndpoint {
        id: id_at(at(n * SEC)),
        scope: s.clone(),
        url: format!("http://127.0.0.1:9/hook{n}"),
        events: events.to_vec(),
        description: Some(format!("hook {n} ü")),
        secret: format!("hp1.sealed{n}"),
        previous_secret: None,
        previous_until: None,
        created_at: at(n * SEC),
        updated_at: at(n * SEC),
    }
}

/// One delivery of an event of `t` at `n` seconds to `lane`.
fn delivery(s: &Scope, lane: Uuid, user: Option<Uuid>, t: EventType, n: i64) -> OutboxMessage {
    let e = Event::new(t, at(n * SEC), user);
    let body = e.body(s);
    let mut m = e.delivery(s, lane, &body);
    m.id = Uuid::now_v7();
    m
}

async fn lane_rows(store: &dyn Store, lane: Uuid) -> Vec<OutboxMessage> {
    store.outbox_lane(OutboxKind::Webhook, &lane.to_string(), None, None, 100).await.expect("lane")
}

/// Endpoints are listed per scope, replaced and deleted only in their scope; a deletion
/// takes the endpoint's deliveries.
pub async fn webhook_endpoints_per_scope(store: Arc<dyn Store>) {
    let (a, b) = (scope("a"), scope("b"));
    let w1 = endpoint(&a, 1, &[EventType::UserCreated, EventType::LoginFailed]);
    let w2 = endpoint(&a, 2, &EventType::ALL);
    let w3 = endpoint(&b, 3, &[EventType::PasskeyAdded]);
    for w in [&w1, &w2, &w3] {
        store.insert_webhook(w).await.expect("insert");
    }
    assert_eq!(store.list_webhooks(Some(&a)).await.expect("list"), vec![w1.clone(), w2.clone()]);
    assert_eq!(store.list_webhooks(None).await.expect("list").len(), 3);

    let mut changed = w1.clone();
    changed.url = "https://example.com/x".into();
    changed.events = vec![EventType::SessionEnded];
    changed.description = None;
    changed.previous_secret = Some(changed.secret.clone());
    changed.secret = "hp1.new".into();
    changed.previous_until = Some(at(DAY));
    changed.updated_at = at(HOUR);
    assert!(store.update_webhook(&changed).await.expect("update"));
    assert_eq!(store.list_webhooks(Some(&a)).await.expect("list")[0], changed);
    let other_scope = WebhookEndpoint { scope: b.clone(), ..changed.clone() };
    assert!(!store.update_webhook(&other_scope).await.expect("update"), "another scope's endpoint");

    // Deleting takes the endpoint's deliveries with it, and nobody else's.
    let user = add_user(&*store, &a, Some("alice"), None).await;
    let rows = [
        delivery(&a, w1.id, Some(user.id), EventType::LoginFailed, 5),
        delivery(&a, w2.id, None, EventType::LoginFailed, 5),
    ];
    store
        .insert_event(&event(&a, Some(user.id), at(5 * SEC), Outcome::WrongPassword), &rows)
        .await
        .expect("event");
    assert!(!store.delete_webhook(&b, w1.id).await.expect("delete"), "another scope's");
    assert!(store.delete_webhook(&a, w1.id).await.expect("delete"));
    assert!(!store.delete_webhook(&a, w1.id).await.expect("delete"), "gone");
    assert!(lane_rows(&*store, w1.id).await.is_empty());
    assert_eq!(lane_rows(&*store, w2.id).await.len(), 1);
    assert_eq!(store.list_webhooks(None).await.expect("list"), vec![w2, w3]);
}

/// Deliveries are written by the store call of their change, only when it happens.
pub async fn webhook_deliveries_commit_with_their_change(store: Arc<dyn Store>) {
    let s = scope("s");
    let lane = Uuid::now_v7();
    let alice = add_user(&*store, &s, Some("alice"), None).await;
    let ghost = Uuid::now_v7();

    // A login and its delivery; a login of nobody stores neither.
    let record = session(&s, alice.id, at(SEC), at(HOUR), at(DAY));
    let mut login = new_login(&record, None);
    login.webhooks = vec![delivery(&s, lane, Some(alice.id), EventType::LoginSucceeded, 1)];
    store.insert_login(&login).await.expect("login");
    let bad = session(&s, ghost, at(2 * SEC), at(HOUR), at(DAY));
    let mut bad_login = new_login(&bad, None);
    bad_login.webhooks = vec![delivery(&s, lane, Some(ghost), EventType::LoginSucceeded, 2)];
    assert!(store.insert_login(&bad_login).await.is_err());
    assert_eq!(lane_rows(&*store, lane).await.len(), 1, "only the stored login's");

    // A failed attempt and its delivery.
    let failed = delivery(&s, lane, None, EventType::LoginFailed, 3);
    store
        .insert_event(&event(&s, None, at(3 * SEC), Outcome::UnknownUser), std::slice::from_ref(&failed))
        .await
        .expect("event");

    // Changes of a user that does not exist write nothing.
    let nothing = [delivery(&s, lane, Some(ghost), EventType::PasswordChanged, 4)];
    assert!(!store.set_password_hash(&s, ghost, "h", at(4 * SEC), &nothing).await.expect("set"));
    assert!(!store.delete_user(&s, ghost, &nothing).await.expect("delete"));
    let e = Enqueue { user: None, code: None, messages: &nothing };
    assert!(
        store
            .update_user_enqueue(&s, ghost, &UserPatch::default(), at(4 * SEC), &e)
            .await
            .expect("update")
            .is_none()
    );
    assert_eq!(lane_rows(&*store, lane).await.len(), 2);

    // Sessions that do not exist, codes that do not redeem: nothing.
    let none = [delivery(&s, lane, Some(alice.id), EventType::SessionEnded, 4)];
    assert!(store.delete_session_by_hash(&s, &random_hash(), &none).await.expect("end").is_none());
    assert!(!store.delete_session(&s, alice.id, Uuid::now_v7(), &none).await.expect("end"));
    assert_eq!(store.delete_sessions(&s, ghost, None, &none).await.expect("end"), 0);
    assert!(
        store.redeem_reset_code(&s, &random_hash(), at(4 * SEC), "h", &none).await.expect("redeem").is_none()
    );
    assert!(
        store
            .redeem_code(&s, CodeKind::Confirm, &random_hash(), at(4 * SEC), &none)
            .await
            .expect("redeem")
            .is_none()
    );
    assert_eq!(lane_rows(&*store, lane).await.len(), 2);

    // Ends and redemptions that happen write theirs.
    let ended = [delivery(&s, lane, Some(alice.id), EventType::SessionEnded, 5)];
    assert!(store.delete_session_by_hash(&s, &record.token_hash, &ended).await.expect("end").is_some());
    let two = session(&s, alice.id, at(5 * SEC), at(HOUR), at(DAY));
    store.insert_login(&new_login(&two, None)).await.expect("login");
    let ended = [delivery(&s, lane, Some(alice.id), EventType::SessionEnded, 5)];
    assert!(store.delete_session(&s, alice.id, two.session.id, &ended).await.expect("end"));
    let three = session(&s, alice.id, at(6 * SEC), at(HOUR), at(DAY));
    store.insert_login(&new_login(&three, None)).await.expect("login");
    let ended = [delivery(&s, lane, Some(alice.id), EventType::SessionEnded, 5)];
    assert_eq!(store.delete_sessions(&s, alice.id, None, &ended).await.expect("end"), 1);
    let reset = add_code(&*store, &s, alice.id, CodeKind::Reset, at(5 * SEC)).await;
    let rows = [delivery(&s, lane, Some(alice.id), EventType::PasswordReset, 5)];
    assert_eq!(
        store.redeem_reset_code(&s, &reset.code_hash, at(6 * SEC), "h2", &rows).await.expect("redeem"),
        Some(alice.id)
    );
    let confirm = add_code(&*store, &s, alice.id, CodeKind::Confirm, at(6 * SEC)).await;
    let rows = [delivery(&s, lane, Some(alice.id), EventType::EmailConfirmed, 6)];
    assert_eq!(
        store
            .redeem_code(&s, CodeKind::Confirm, &confirm.code_hash, at(6 * SEC), &rows)
            .await
            .expect("redeem"),
        Some(alice.id)
    );
    assert_eq!(lane_rows(&*store, lane).await.len(), 7);

    // Changes that happen write theirs.
    let bob = user(&s, Some("bob"), None);
    let created = [delivery(&s, lane, Some(bob.user.id), EventType::UserCreated, 5)];
    store.enqueue(&Enqueue { user: Some(&bob), code: None, messages: &created }).await.expect("enqueue");
    let changed = [delivery(&s, lane, Some(alice.id), EventType::PasswordChanged, 6)];
    assert!(store.set_password_hash(&s, alice.id, "h", at(6 * SEC), &changed).await.expect("set"));
    let deleted = [delivery(&s, lane, Some(alice.id), EventType::UserDeleted, 7)];
    assert!(store.delete_user(&s, alice.id, &deleted).await.expect("delete"));
    let rows = lane_rows(&*store, lane).await;
    let types: Vec<String> =
        rows.iter().map(|m| m.payload["type"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(
        types,
        [
            "user.deleted",
            "password.changed",
            "user.created",
            "email.confirmed",
            "password.reset",
            "session.ended",
            "session.ended",
            "session.ended",
            "login.failed",
            "login.succeeded"
        ]
    );
    assert!(rows.iter().all(|m| m.kind == OutboxKind::Webhook && m.state == OutboxState::Queued));
    let found = rows.iter().find(|m| m.id == failed.id).expect("failed attempt's delivery");
    assert_eq!(found, &failed, "read back as written");
}

/// A claim leaves busy lanes alone; a waiting or failed delivery can be retried by hand
/// (a failed mail cannot); the delivery log pages and filters; figures per lane.
pub async fn webhook_claims_skip_busy_lanes_and_retries_requeue(store: Arc<dyn Store>) {
    let s = scope("s");
    let (slow, fast) = (Uuid::now_v7(), Uuid::now_v7());
    let rows: Vec<OutboxMessage> = (0..3)
        .flat_map(|n| {
            [
                delivery(&s, slow, None, EventType::LoginFailed, n),
                delivery(&s, fast, None, EventType::LoginFailed, n),
            ]
        })
        .collect();
    store.insert_event(&event(&s, None, at(0), Outcome::UnknownUser), &rows).await.expect("event");
    let claim = |owner: &str, skip: Vec<String>| OutboxClaim {
        now: at(10 * SEC),
        lease_until: at(MIN),
        owner: owner.to_owned(),
        kind: OutboxKind::Webhook,
        limit: 10,
        skip_lanes: skip,
    };
    let got = store.outbox_claim(&claim("w1", vec![slow.to_string(), "x".into()])).await.expect("claim");
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|m| m.lane == fast.to_string()));
    assert!(store.outbox_claim(&claim("w1", vec![slow.to_string()])).await.expect("claim").is_empty());
    let got = store.outbox_claim(&claim("w2", Vec::new())).await.expect("claim");
    assert_eq!(got.len(), 3, "the slow lane's, now no one skips it");

    // A failed delivery is retried by hand: queued, due now, attempts from zero.
    let one = got[0].id;
    let failed = OutboxUpdate {
        state: OutboxState::Failed,
        at: at(20 * SEC),
        next_attempt_at: None,
        error: Some("HTTP 500".into()),
        payload: None,
        user_confirmation: None,
    };
    assert!(store.outbox_update(one, "w2", &failed).await.expect("update"));
    assert!(!store.outbox_retry(got[1].id, at(30 * SEC)).await.expect("retry"), "being sent");
    assert!(store.outbox_retry(one, at(30 * SEC)).await.expect("retry"));
    let row = lane_rows(&*store, slow).await.into_iter().find(|m| m.id == one).expect("row");
    assert_eq!((row.state, row.attempts, row.next_attempt_at), (OutboxState::Queued, 0, at(30 * SEC)));
    assert_eq!(row.last_error.as_deref(), Some("HTTP 500"));
    assert!(store.outbox_retry(one, at(31 * SEC)).await.expect("retry"), "a waiting one too");

    // The delivery log: by state, newest first, paged.
    let failed_only = store
        .outbox_lane(OutboxKind::Webhook, &slow.to_string(), Some(OutboxState::Sending), None, 10)
        .await
        .expect("lane");
    assert_eq!(failed_only.len(), 2);
    let all = lane_rows(&*store, slow).await;
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    let page = store
        .outbox_lane(OutboxKind::Webhook, &slow.to_string(), None, Some(all[0].id), 1)
        .await
        .expect("lane");
    assert_eq!(page, vec![all[1].clone()]);

    // Figures per lane.
    let stats = store.outbox_lane_stats(OutboxKind::Webhook).await.expect("stats");
    let of = |lane: Uuid| {
        stats.iter().find(|(l, _)| *l == lane.to_string()).map(|(_, s)| s.clone()).expect("lane")
    };
    assert_eq!((of(slow).queued, of(slow).sending), (1, 2));
    assert_eq!(of(fast).sending, 3);
    assert!(of(slow).oldest_pending_at.is_some());

    // A mail that failed is not sent again by a retry (its code is gone).
    let mail = OutboxMessage::new(&s, OutboxKind::Mail, "example.com", None, json!({}), at(0));
    store
        .enqueue(&Enqueue { user: None, code: None, messages: std::slice::from_ref(&mail) })
        .await
        .expect("enqueue");
    let c = OutboxClaim { kind: OutboxKind::Mail, ..claim("m", Vec::new()) };
    assert_eq!(store.outbox_claim(&c).await.expect("claim").len(), 1);
    assert!(store.outbox_update(mail.id, "m", &failed).await.expect("update"));
    assert!(!store.outbox_retry(mail.id, at(40 * SEC)).await.expect("retry"));
}

/// The factor and link changes write their deliveries with the change (`insert_passkey`,
/// `delete_passkey`, `upsert_identity`, `delete_identity`, `remove_mfa`, a TOTP's
/// confirmation), and none when nothing changed.
pub async fn factor_and_link_deliveries_commit_with_their_change(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("s");
    let lane = Uuid::now_v7();
    let u = add_user(store, &s, Some("alice"), None).await;
    let row = |t: EventType, n: i64| delivery(&s, lane, Some(u.id), t, n);
    let ids = |rows: Vec<OutboxMessage>| -> Vec<Uuid> {
        let mut v: Vec<_> = rows.into_iter().map(|m| m.id).collect();
        v.sort();
        v
    };
    let mut written = Vec::new();

    let key = super::passkeys::passkey(&s, u.id, b"cred-1", at(0));
    let added = row(EventType::PasskeyAdded, 1);
    assert!(store.insert_passkey(&key, None, std::slice::from_ref(&added)).await.expect("insert"));
    written.push(added.id);
    let taken = super::passkeys::passkey(&s, u.id, b"cred-1", at(0));
    assert!(!store.insert_passkey(&taken, None, &[row(EventType::PasskeyAdded, 2)]).await.expect("insert"));
    assert_eq!(ids(lane_rows(store, lane).await), written, "a refused passkey writes nothing");

    let removed = row(EventType::PasskeyRemoved, 3);
    assert!(
        store.delete_passkey(&s, u.id, key.id, None, std::slice::from_ref(&removed)).await.expect("delete")
    );
    written.push(removed.id);
    let again = [row(EventType::PasskeyRemoved, 4)];
    assert!(!store.delete_passkey(&s, u.id, key.id, None, &again).await.expect("delete"));
    assert_eq!(ids(lane_rows(store, lane).await), written);

    let linked = row(EventType::IdentityLinked, 5);
    let link = Identity {
        user_id: u.id,
        scope: s.clone(),
        provider: ProviderName::parse("github").expect("provider"),
        client_id: ClientId::parse("gh-1").expect("client id"),
        access_token: None,
        access_token_expiry: None,
        refresh_token: None,
        created_at: at(5 * SEC),
        updated_at: at(5 * SEC),
    };
    store.upsert_identity(&link, std::slice::from_ref(&linked)).await.expect("link");
    written.push(linked.id);
    let ghost_link = Identity { user_id: Uuid::now_v7(), ..link.clone() };
    assert!(store.upsert_identity(&ghost_link, &[row(EventType::IdentityLinked, 6)]).await.is_err());
    let unlinked = row(EventType::IdentityUnlinked, 7);
    assert!(
        store
            .delete_identity(&s, u.id, &link.provider, std::slice::from_ref(&unlinked))
            .await
            .expect("unlink")
    );
    written.push(unlinked.id);
    let again = [row(EventType::IdentityUnlinked, 8)];
    assert!(!store.delete_identity(&s, u.id, &link.provider, &again).await.expect("unlink"));
    assert_eq!(ids(lane_rows(store, lane).await), written);

    // A TOTP's confirmation writes its rows; a refused step (replayed) none.
    assert!(store.enrol_totp(&s, u.id, "hp1.secret", at(9 * SEC)).await.expect("enrol"));
    let enabled = row(EventType::MfaEnabled, 10);
    let change = |outbox: Vec<OutboxMessage>| FactorChange {
        recovery_codes: vec![random_hash()],
        at: at(10 * SEC),
        keep_session: None,
        outbox,
    };
    assert!(
        store.accept_totp_step(&s, u.id, 100, Some(&change(vec![enabled.clone()]))).await.expect("confirm")
    );
    written.push(enabled.id);
    let replay = change(vec![row(EventType::MfaEnabled, 11)]);
    assert!(!store.accept_totp_step(&s, u.id, 100, Some(&replay)).await.expect("confirm"));
    assert_eq!(ids(lane_rows(store, lane).await), written);

    let disabled = row(EventType::MfaDisabled, 12);
    assert!(store.remove_mfa(&s, u.id, None, std::slice::from_ref(&disabled)).await.expect("remove"));
    written.push(disabled.id);
    assert!(!store.remove_mfa(&s, u.id, None, &[row(EventType::MfaDisabled, 13)]).await.expect("remove"));
    assert!(!store.remove_totp(&s, u.id, None, &[row(EventType::MfaDisabled, 14)]).await.expect("remove"));
    assert_eq!(ids(lane_rows(store, lane).await), written, "nothing to remove, nothing written");
}
