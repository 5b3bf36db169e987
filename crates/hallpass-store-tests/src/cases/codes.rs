//! One-time codes: one live code per kind, codes voided by password and email changes,
//! code requests (known and unknown logins alike, decoys), reading the owner, redemption
//! and its single use under concurrency.

use super::*;

/// A new code voids the user's older codes of the same kind only: not codes of other
/// kinds, not other users' codes.
pub async fn new_code_voids_older_of_same_kind(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), None).await;
    let bob = add_user(store, &s, Some("bob"), None).await;
    let reset1 = add_code(store, &s, alice.id, CodeKind::Reset, at(0)).await;
    let confirm1 = add_code(store, &s, alice.id, CodeKind::Confirm, at(0)).await;
    let login1 = add_code(store, &s, alice.id, CodeKind::Login, at(0)).await;
    let bob_reset = add_code(store, &s, bob.id, CodeKind::Reset, at(0)).await;
    let reset2 = add_code(store, &s, alice.id, CodeKind::Reset, at(1000)).await;
    let confirm2 = add_code(store, &s, alice.id, CodeKind::Confirm, at(1000)).await;
    let now = at(2000);

    assert_eq!(store.redeem_reset_code(&s, &reset1.code_hash, now, "h", &[]).await.expect("redeem"), None);
    assert_eq!(
        store.redeem_code(&s, CodeKind::Confirm, &confirm1.code_hash, now, &[]).await.expect("redeem"),
        None
    );
    assert_eq!(
        store.redeem_code(&s, CodeKind::Login, &login1.code_hash, now, &[]).await.expect("redeem"),
        Some(alice.id)
    );
    assert_eq!(
        store.redeem_reset_code(&s, &bob_reset.code_hash, now, "h", &[]).await.expect("redeem"),
        Some(bob.id)
    );
    // (The confirm code first: redeeming a reset code voids the user's other codes.)
    assert_eq!(
        store.redeem_code(&s, CodeKind::Confirm, &confirm2.code_hash, now, &[]).await.expect("redeem"),
        Some(alice.id)
    );
    assert_eq!(
        store.redeem_reset_code(&s, &reset2.code_hash, now, "h", &[]).await.expect("redeem"),
        Some(alice.id)
    );
}

/// The kinds of codes, with a fresh code of each for `user_id` issued at `created`.
async fn one_code_of_each_kind(
    store: &dyn Store,
    s: &Scope,
    user_id: Uuid,
    created: OffsetDateTime,
) -> Vec<CodeRecord> {
    let mut codes = Vec::new();
    for kind in [CodeKind::Reset, CodeKind::Confirm, CodeKind::Login] {
        codes.push(add_code(store, s, user_id, kind, created).await);
    }
    codes
}

/// Which of `codes` still have an owner at `now` (read without consuming them).
async fn owned(store: &dyn Store, s: &Scope, codes: &[CodeRecord], now: OffsetDateTime) -> Vec<bool> {
    let mut out = Vec::new();
    for c in codes {
        out.push(store.code_owner(s, c.kind, &c.code_hash, now).await.expect("owner").is_some());
    }
    out
}

/// `set_password_hash` deletes every code of the user, of every kind, in its own
/// transaction (a code issued before a password change must not set the password
/// after it); other users' codes stay. A reset redemption (which sets a password) voids
/// the user's other codes too. `rehash_password` is not a change of password: codes stay.
pub async fn set_password_hash_voids_codes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let mut rec = user(&s, Some("alice"), Some("alice@example.com"));
    rec.password_hash = Some("h1".into());
    store.insert_user(&rec).await.expect("insert");
    let alice = rec.user;
    let bob = add_user(store, &s, Some("bob"), None).await;
    let now = at(2000);

    let alices = one_code_of_each_kind(store, &s, alice.id, at(0)).await;
    let bobs = one_code_of_each_kind(store, &s, bob.id, at(0)).await;
    assert!(store.rehash_password(&s, alice.id, "h1", "h2").await.expect("rehash"));
    assert_eq!(owned(store, &s, &alices, now).await, [true; 3], "a rehash voids nothing");

    assert!(store.set_password_hash(&s, alice.id, "h3", at(1000), &[]).await.expect("set"));
    assert_eq!(owned(store, &s, &alices, now).await, [false; 3], "every kind is voided");
    assert_eq!(
        store.redeem_reset_code(&s, &alices[0].code_hash, now, "h4", &[]).await.expect("redeem"),
        None,
        "the reset code no longer sets a password"
    );
    assert_eq!(find_id(store, &s, alice.id).await.password_hash.as_deref(), Some("h3"));
    assert_eq!(owned(store, &s, &bobs, now).await, [true; 3], "another user's codes stay");

    // A reset redemption consumes its code and voids the user's other codes.
    let again = one_code_of_each_kind(store, &s, alice.id, at(1500)).await;
    assert_eq!(
        store.redeem_reset_code(&s, &again[0].code_hash, now, "h5", &[]).await.expect("redeem"),
        Some(alice.id)
    );
    assert_eq!(owned(store, &s, &again, now).await, [false; 3]);
    assert_eq!(owned(store, &s, &bobs, now).await, [true; 3]);
}

/// `update_user` that changes the email (its normalised key), sets one where there was
/// none, or removes it, deletes every code of the user in the same transaction; other
/// users' codes stay.
pub async fn email_change_voids_codes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
    let bob = add_user(store, &s, Some("bob"), Some("bob@example.com")).await;
    let now = at(5000);
    let bobs = one_code_of_each_kind(store, &s, bob.id, at(0)).await;
    let email = |e: &str| Some(Some(Email::parse(e).expect("email")));

    let codes = one_code_of_each_kind(store, &s, alice.id, at(0)).await;
    let patch = UserPatch { email: email("alice@elsewhere.example"), ..Default::default() };
    store.update_user(&s, alice.id, &patch, at(1000)).await.expect("update").expect("user");
    assert_eq!(owned(store, &s, &codes, now).await, [false; 3], "a new email voids every kind");
    assert_eq!(store.redeem_reset_code(&s, &codes[0].code_hash, now, "h", &[]).await.expect("redeem"), None);

    let codes = one_code_of_each_kind(store, &s, alice.id, at(1500)).await;
    let patch = UserPatch { email: Some(None), ..Default::default() };
    store.update_user(&s, alice.id, &patch, at(2000)).await.expect("update").expect("user");
    assert_eq!(owned(store, &s, &codes, now).await, [false; 3], "removing the email voids them");

    let codes = one_code_of_each_kind(store, &s, alice.id, at(2500)).await;
    let patch = UserPatch { email: email("alice@example.com"), ..Default::default() };
    store.update_user(&s, alice.id, &patch, at(3000)).await.expect("update").expect("user");
    assert_eq!(owned(store, &s, &codes, now).await, [false; 3], "adding an email voids them");

    assert_eq!(owned(store, &s, &bobs, now).await, [true; 3], "another user's codes stay");
}

/// An `update_user` that leaves the password and the email as they are (a new `extra`,
/// group, username, confirmation state, activation, or the same email again, however
/// its domain is cased) keeps the user's codes.
pub async fn update_without_password_or_email_change_keeps_codes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
    let codes = one_code_of_each_kind(store, &s, alice.id, at(0)).await;
    let patches = [
        UserPatch { extra: Some(obj(json!({"plan": "gold"}))), ..Default::default() },
        UserPatch { group: Some(Group::parse("staff").expect("group")), ..Default::default() },
        UserPatch { username: Some(Some(Username::parse("alicia").expect("u"))), ..Default::default() },
        UserPatch { confirmation: Some(Some(Confirmation::Pending)), ..Default::default() },
        UserPatch { active: Some(true), ..Default::default() },
        UserPatch { email: Some(Some(Email::parse("alice@EXAMPLE.com").expect("e"))), ..Default::default() },
    ];
    for (i, patch) in patches.iter().enumerate() {
        let t = at(1000 * (i as i64 + 1));
        store.update_user(&s, alice.id, patch, t).await.expect("update").expect("user");
        assert_eq!(owned(store, &s, &codes, at(10_000)).await, [true; 3], "{patch:?}");
    }
}

/// `request_code`: one counter per throttle key, counted the same whether the login
/// names a user or nobody; a code is stored (voiding the user's older one of the kind)
/// only for a user and only within the limit; other scopes see nothing.
pub async fn request_code_counts_known_and_unknown_alike(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (s, other) = (scope("a"), scope("b"));
    let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
    let older = add_code(store, &s, alice.id, CodeKind::Reset, at(0)).await;
    let request = |login: UserRef, key: &str, n: i64, limit: u32| CodeRequest {
        login,
        kind: CodeKind::Reset,
        code_hash: TokenHash::of(&format!("request-{key}-{n}")),
        created_at: at(n * SEC),
        expires_at: at(n * SEC + 60 * MIN),
        throttle_key: key.to_owned(),
        window: time::Duration::hours(1),
        limit,
        outbox: None,
    };
    let known = request(by_username("ALICE"), "code:reset:alice", 1, 2);
    let out = store.request_code(&s, &known).await.expect("request");
    assert_eq!((out.user_id, out.stored, out.requests.failures), (Some(alice.id), true, 1));
    assert_eq!(out.requests.expires_at, at(SEC + 60 * MIN));
    let now = at(2 * SEC);
    assert_eq!(
        store.code_owner(&s, CodeKind::Reset, &known.code_hash, now).await.expect("owner"),
        Some(alice.id)
    );
    assert_eq!(
        store.code_owner(&s, CodeKind::Reset, &older.code_hash, now).await.expect("owner"),
        None,
        "the new code voids the older one"
    );

    let unknown = request(by_username("nobody"), "code:reset:nobody", 2, 2);
    let out = store.request_code(&s, &unknown).await.expect("request");
    assert_eq!((out.user_id, out.stored, out.requests.failures), (None, false, 1));
    assert_eq!(store.code_owner(&s, CodeKind::Reset, &unknown.code_hash, now).await.expect("owner"), None);
    let out = store.request_code(&s, &request(by_username("nobody"), "code:reset:nobody", 3, 2)).await;
    assert_eq!(out.expect("request").requests.failures, 2, "unknown logins count too");

    // Second request for alice: within the limit. Third: counted, no code stored.
    let by_mail = request(by_email("alice@example.com"), "code:reset:alice", 4, 2);
    let out = store.request_code(&s, &by_mail).await.expect("request");
    assert_eq!((out.user_id, out.stored, out.requests.failures), (Some(alice.id), true, 2));
    let over = request(UserRef::Id(alice.id), "code:reset:alice", 5, 2);
    let out = store.request_code(&s, &over).await.expect("request");
    assert_eq!((out.user_id, out.stored, out.requests.failures), (Some(alice.id), false, 3));
    let now = at(6 * SEC);
    assert_eq!(store.code_owner(&s, CodeKind::Reset, &over.code_hash, now).await.expect("owner"), None);
    assert_eq!(
        store.code_owner(&s, CodeKind::Reset, &by_mail.code_hash, now).await.expect("owner"),
        Some(alice.id),
        "a refused request leaves the last code"
    );
    // No limit: stored however many came before.
    let unlimited = request(by_username("alice"), "code:reset:alice", 6, 0);
    let out = store.request_code(&s, &unlimited).await.expect("request");
    assert_eq!((out.stored, out.requests.failures), (true, 4));

    // Another scope: no user, its own counter.
    let out = store.request_code(&other, &request(by_username("alice"), "code:reset:alice", 7, 2)).await;
    let out = out.expect("request");
    assert_eq!((out.user_id, out.stored, out.requests.failures), (None, false, 1));
}

/// A `request_code` that stores no code (a login naming nobody, or a user over the
/// limit) leaves nothing that can be owned or redeemed under the hash it was given, in
/// any kind, and voids none of the user's codes, whatever the backend writes to take
/// the same time (SQL backends keep an ownerless decoy row until it expires). The
/// sweeper clears whatever is left once it has expired.
pub async fn request_code_for_nobody_leaves_nothing_redeemable(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), None).await;
    let older = add_code(store, &s, alice.id, CodeKind::Reset, at(0)).await;
    let request = |login: UserRef, kind: CodeKind, key: &str, n: i64, limit: u32| CodeRequest {
        login,
        kind,
        code_hash: TokenHash::of(&format!("nobody-{key}-{n}")),
        created_at: at(n * SEC),
        expires_at: at(n * SEC + 60 * MIN),
        throttle_key: key.to_owned(),
        window: time::Duration::hours(1),
        limit,
        outbox: None,
    };
    let now = at(10 * SEC);
    let mut refused = Vec::new();
    for (n, kind) in [(1, CodeKind::Reset), (2, CodeKind::Confirm), (3, CodeKind::Reset)] {
        let req = request(by_username("nobody"), kind, "code:nobody", n, 0);
        let out = store.request_code(&s, &req).await.expect("request");
        assert_eq!((out.user_id, out.stored), (None, false));
        refused.push(req.code_hash);
    }
    // Alice over her limit of 1: the first request is stored, the second is not.
    let first = request(UserRef::Id(alice.id), CodeKind::Reset, "code:alice", 4, 1);
    assert!(store.request_code(&s, &first).await.expect("request").stored);
    let over = request(UserRef::Id(alice.id), CodeKind::Reset, "code:alice", 5, 1);
    let out = store.request_code(&s, &over).await.expect("request");
    assert_eq!((out.user_id, out.stored), (Some(alice.id), false));
    refused.push(over.code_hash);

    for hash in &refused {
        for kind in [CodeKind::Reset, CodeKind::Confirm, CodeKind::Login] {
            assert_eq!(store.code_owner(&s, kind, hash, now).await.expect("owner"), None, "{kind:?}");
        }
        assert_eq!(store.redeem_reset_code(&s, hash, now, "h", &[]).await.expect("redeem"), None);
        for kind in [CodeKind::Confirm, CodeKind::Login] {
            assert_eq!(store.redeem_code(&s, kind, hash, now, &[]).await.expect("redeem"), None, "{kind:?}");
        }
    }
    assert_eq!(
        store.code_owner(&s, CodeKind::Reset, &older.code_hash, now).await.expect("owner"),
        None,
        "voided by alice's stored request"
    );
    assert_eq!(
        store.redeem_reset_code(&s, &first.code_hash, now, "h", &[]).await.expect("redeem"),
        Some(alice.id),
        "the refused request left alice's last code working"
    );

    // Past every expiry, the sweeper leaves nothing behind (how many rows it counts
    // depends on what the backend stored).
    let later = at(2 * HOUR);
    while store.sweep_expired(later, 100).await.expect("sweep") > 0 {}
    assert_eq!(store.sweep_expired(later, 100).await.expect("sweep"), 0);
    assert!(store.delete_user(&s, alice.id, &[]).await.expect("delete"), "decoys do not block deletion");
}

/// `code_owner`: the owner of a valid code of the asked kind, in the asked scope,
/// before its expiry; reading it consumes nothing.
pub async fn code_owner_reads_without_consuming(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (s, other) = (scope("a"), scope("b"));
    let alice = add_user(store, &s, Some("alice"), None).await;
    let bob = add_user(store, &s, Some("bob"), None).await;
    let reset = add_code(store, &s, alice.id, CodeKind::Reset, at(0)).await;
    let confirm = add_code(store, &s, bob.id, CodeKind::Confirm, at(0)).await;
    let s = &s;
    let owner =
        |kind, hash, now| async move { store.code_owner(s, kind, &hash, now).await.expect("code_owner") };

    assert_eq!(owner(CodeKind::Reset, reset.code_hash, at(1000)).await, Some(alice.id));
    assert_eq!(owner(CodeKind::Reset, reset.code_hash, at(1000)).await, Some(alice.id), "not consumed");
    assert_eq!(owner(CodeKind::Confirm, confirm.code_hash, at(1000)).await, Some(bob.id));
    assert_eq!(owner(CodeKind::Confirm, reset.code_hash, at(1000)).await, None, "another kind");
    assert_eq!(owner(CodeKind::Reset, random_hash(), at(1000)).await, None, "unknown");
    assert_eq!(owner(CodeKind::Reset, reset.code_hash, at(HOUR)).await, None, "expired");
    assert_eq!(
        store.code_owner(&other, CodeKind::Reset, &reset.code_hash, at(1000)).await.expect("code_owner"),
        None,
        "another scope"
    );
    // Still redeemable once after all those reads.
    assert_eq!(
        store.redeem_reset_code(s, &reset.code_hash, at(1000), "h", &[]).await.expect("redeem"),
        Some(alice.id)
    );
    assert_eq!(owner(CodeKind::Reset, reset.code_hash, at(1000)).await, None, "redeemed");
}

/// `redeem_reset_code`: refused (changing nothing) at or after expiry, for another
/// kind or an unknown hash; otherwise sets the hash, ends the user's sessions, consumes
/// the code and returns the user's id, once.
pub async fn redeem_reset_code_semantics(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let mut rec = user(&s, Some("alice"), None);
    rec.password_hash = Some("old".into());
    store.insert_user(&rec).await.expect("insert");
    let alice = rec.user;
    let a1 = login_at(store, &s, alice.id, at(10)).await;
    let a2 = login_at(store, &s, alice.id, at(20)).await;
    let reset = add_code(store, &s, alice.id, CodeKind::Reset, at(0)).await;
    let confirm = add_code(store, &s, alice.id, CodeKind::Confirm, at(0)).await;
    let hash = || async { find_id(store, &s, alice.id).await.password_hash };

    // At the expiry instant and after: refused, nothing changes.
    assert_eq!(
        store.redeem_reset_code(&s, &reset.code_hash, at(HOUR), "x", &[]).await.expect("redeem"),
        None
    );
    assert_eq!(
        store.redeem_reset_code(&s, &reset.code_hash, at(HOUR + 1), "x", &[]).await.expect("redeem"),
        None
    );
    assert_eq!(hash().await.as_deref(), Some("old"));
    assert!(has_session(store, &s, &a1).await);

    // Wrong kind either way, or unknown: refused, nothing consumed.
    assert_eq!(
        store.redeem_code(&s, CodeKind::Confirm, &reset.code_hash, at(1000), &[]).await.expect("redeem"),
        None
    );
    assert_eq!(
        store.redeem_code(&s, CodeKind::Reset, &confirm.code_hash, at(1000), &[]).await.expect("redeem"),
        None
    );
    assert_eq!(
        store.redeem_reset_code(&s, &confirm.code_hash, at(1000), "x", &[]).await.expect("redeem"),
        None
    );
    assert_eq!(store.redeem_reset_code(&s, &random_hash(), at(1000), "x", &[]).await.expect("redeem"), None);
    assert_eq!(hash().await.as_deref(), Some("old"));
    // The confirm code was not touched by any of it.
    assert_eq!(
        store.code_owner(&s, CodeKind::Confirm, &confirm.code_hash, at(1000)).await.expect("owner"),
        Some(alice.id)
    );

    // Valid: the hash is set and every session ends.
    let got = store.redeem_reset_code(&s, &reset.code_hash, at(HOUR - 1), "new", &[]).await.expect("redeem");
    assert_eq!(got, Some(alice.id));
    assert_eq!(hash().await.as_deref(), Some("new"));
    assert!(!has_session(store, &s, &a1).await);
    assert!(!has_session(store, &s, &a2).await);

    // Single use.
    assert_eq!(
        store.redeem_reset_code(&s, &reset.code_hash, at(1000), "newer", &[]).await.expect("redeem"),
        None
    );
    assert_eq!(hash().await.as_deref(), Some("new"));
    // A new password voids the user's other codes (see `set_password_hash_voids_codes`).
    assert_eq!(
        store.redeem_code(&s, CodeKind::Confirm, &confirm.code_hash, at(1000), &[]).await.expect("redeem"),
        None
    );
}

/// Ten concurrent redemptions of one reset code (and of one confirm code): exactly one
/// succeeds, and the stored hash is the winner's.
pub async fn concurrent_redeem_is_single_use(store: Arc<dyn Store>) {
    let s = scope("a");
    let alice = add_user(store.as_ref(), &s, Some("alice"), None).await;
    let reset = add_code(store.as_ref(), &s, alice.id, CodeKind::Reset, at(0)).await;

    let mut tasks = Vec::new();
    for i in 0..10 {
        let (store, s, hash) = (store.clone(), s.clone(), reset.code_hash);
        tasks.push(tokio::spawn(async move {
            let got = store.redeem_reset_code(&s, &hash, at(1000), &format!("hash-{i}"), &[]).await;
            (i, got.expect("redeem_reset_code"))
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (i, got) = task.await.expect("task");
        if let Some(id) = got {
            assert_eq!(id, alice.id);
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption wins");
    let stored = find_id(store.as_ref(), &s, alice.id).await.password_hash;
    assert_eq!(stored, Some(format!("hash-{}", winners[0])));

    // (Issued after the reset: a new password voids the codes issued before it.)
    let confirm = add_code(store.as_ref(), &s, alice.id, CodeKind::Confirm, at(500)).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (store, s, hash) = (store.clone(), s.clone(), confirm.code_hash);
        tasks.push(tokio::spawn(async move {
            store.redeem_code(&s, CodeKind::Confirm, &hash, at(1000), &[]).await.expect("redeem_code")
        }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.expect("task").is_some());
    }
    assert_eq!(wins, 1, "exactly one confirmation wins");
}

/// `redeem_code`: a confirm code sets `confirmed = true` and clears `confirmation`; a
/// login code only answers the user; both single-use; an expired one changes nothing.
pub async fn redeem_confirm_and_login_codes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let mut pending = user(&s, Some("alice"), Some("alice@example.com"));
    pending.user.confirmation = Some(Confirmation::Pending);
    store.insert_user(&pending).await.expect("insert");
    let alice = pending.user.clone();
    let mut bob = user(&s, Some("bob"), Some("bob@example.com"));
    bob.user.confirmation = Some(Confirmation::Pending);
    store.insert_user(&bob).await.expect("insert");
    let bob = bob.user;

    let confirm = add_code(store, &s, alice.id, CodeKind::Confirm, at(0)).await;
    let got =
        store.redeem_code(&s, CodeKind::Confirm, &confirm.code_hash, at(1000), &[]).await.expect("redeem");
    assert_eq!(got, Some(alice.id));
    let u = find_id(store, &s, alice.id).await.user;
    assert!(u.confirmed);
    assert_eq!(u.confirmation, None);
    assert_eq!(
        store.redeem_code(&s, CodeKind::Confirm, &confirm.code_hash, at(1000), &[]).await.expect("redeem"),
        None
    );

    let expired = add_code(store, &s, bob.id, CodeKind::Confirm, at(0)).await;
    assert_eq!(
        store.redeem_code(&s, CodeKind::Confirm, &expired.code_hash, at(HOUR), &[]).await.expect("redeem"),
        None
    );
    let u = find_id(store, &s, bob.id).await.user;
    assert!(!u.confirmed);
    assert_eq!(u.confirmation, Some(Confirmation::Pending));

    let login = add_code(store, &s, bob.id, CodeKind::Login, at(0)).await;
    assert_eq!(
        store.redeem_code(&s, CodeKind::Login, &login.code_hash, at(10), &[]).await.expect("redeem"),
        Some(bob.id)
    );
    assert_eq!(
        store.redeem_code(&s, CodeKind::Login, &login.code_hash, at(10), &[]).await.expect("redeem"),
        None
    );
    let u = find_id(store, &s, bob.id).await.user;
    assert!(!u.confirmed, "a login code confirms nothing");
    assert_eq!(u.confirmation, Some(Confirmation::Pending));
}
