//! Maintenance reads and writes: the sweep of expired sessions and codes, and the count
//! of valid sessions every scope holds.

use super::*;

/// `sweep_expired` deletes, in every scope, up to `batch` sessions no longer valid and
/// up to `batch` expired codes per call, counts them, and leaves valid ones working.
pub async fn sweep_expired_respects_validity_and_batch(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (a, b) = (scope("a"), scope("b"));
    let alice = add_user(store, &a, Some("alice"), None).await;
    let bob = add_user(store, &b, Some("bob"), None).await;
    let now = at(100_000);
    let mut sessions = Vec::new();
    for (sc, who, expires, absolute) in [
        (&a, alice.id, 100_000, 1_000_000), // idle expiry reached
        (&a, alice.id, 1_000_000, 50_000),  // absolute expiry passed
        (&b, bob.id, 90_000, 1_000_000),    // idle expiry passed, other scope
        (&a, alice.id, 100_001, 1_000_000), // valid
        (&b, bob.id, 200_000, 200_000),     // valid
    ] {
        let rec = session(sc, who, at(0), at(expires), at(absolute));
        store.insert_login(&new_login(&rec, None)).await.expect("insert_login");
        sessions.push(rec);
    }
    let dead_reset = add_code(store, &a, alice.id, CodeKind::Reset, at(100_000 - HOUR)).await;
    let _dead_login = add_code(store, &a, alice.id, CodeKind::Login, at(-HOUR)).await;
    let _dead_b = add_code(store, &b, bob.id, CodeKind::Confirm, at(-2 * HOUR)).await;
    let valid = add_code(store, &a, alice.id, CodeKind::Confirm, at(100_001 - HOUR)).await;

    assert_eq!(store.sweep_expired(now, 2).await.expect("sweep"), 4, "two sessions and two codes");
    assert_eq!(store.sweep_expired(now, 2).await.expect("sweep"), 2, "the rest");
    assert_eq!(store.sweep_expired(now, 2).await.expect("sweep"), 0);

    for rec in &sessions[0..3] {
        assert!(!has_session(store, &rec.session.scope, rec).await, "dead session swept");
    }
    for rec in &sessions[3..5] {
        assert!(has_session(store, &rec.session.scope, rec).await, "valid session kept");
    }
    assert_eq!(
        store.redeem_reset_code(&a, &dead_reset.code_hash, at(0), "h", &[]).await.expect("redeem"),
        None
    );
    assert_eq!(
        store.redeem_code(&a, CodeKind::Confirm, &valid.code_hash, now, &[]).await.expect("redeem"),
        Some(alice.id)
    );
}

/// `count_valid_sessions` counts, over every scope, the sessions before both their
/// idle and absolute expiry at `now` (an expiry equal to `now` has passed).
pub async fn count_valid_sessions_counts_every_scope_at_an_instant(store: Arc<dyn Store>) {
    let store = store.as_ref();
    assert_eq!(store.count_valid_sessions(at(0)).await.expect("count"), 0, "empty store");
    let (a, b) = (scope("a"), scope("b"));
    let alice = add_user(store, &a, Some("alice"), None).await;
    let bob = add_user(store, &b, Some("bob"), None).await;
    for (sc, who, expires, absolute) in [
        (&a, alice.id, 100_000, 1_000_000),
        (&a, alice.id, 1_000_000, 50_000),
        (&b, bob.id, 90_000, 1_000_000),
        (&a, alice.id, 100_001, 1_000_000),
        (&b, bob.id, 200_000, 200_000),
    ] {
        let rec = session(sc, who, at(0), at(expires), at(absolute));
        store.insert_login(&new_login(&rec, None)).await.expect("insert_login");
    }
    assert_eq!(store.count_valid_sessions(at(0)).await.expect("count"), 5);
    assert_eq!(store.count_valid_sessions(at(50_000)).await.expect("count"), 4, "absolute expiry reached");
    assert_eq!(store.count_valid_sessions(at(100_000)).await.expect("count"), 2);
    assert_eq!(store.count_valid_sessions(at(100_001)).await.expect("count"), 1);
    assert_eq!(store.count_valid_sessions(at(200_000)).await.expect("count"), 0);
    store.sweep_expired(at(100_000), 100).await.expect("sweep");
    assert_eq!(store.count_valid_sessions(at(100_000)).await.expect("count"), 2, "sweeping changes nothing");
}
