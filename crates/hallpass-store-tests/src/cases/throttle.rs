//! Throttling counters: hits counted and expired, concurrent hits, clearing and isolation,
//! reads of many, the reservation update (hits, undoes, clears) under concurrency, and the
//! sweep.

use super::*;

/// Hits count while the counter lives; after `expires_at` a hit starts it again.
pub async fn throttle_hits_count_and_expire(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let a = scope("a");
    let window = time::Duration::minutes(15);
    assert_eq!(store.throttle_get(&a, "acct:x", at(0)).await.expect("get"), None);
    let first = store.throttle_hit(&a, "acct:x", at(0), window).await.expect("hit");
    assert_eq!(
        first,
        ThrottleState { failures: 1, first_at: at(0), last_at: at(0), expires_at: at(15 * MIN) }
    );
    let second = store.throttle_hit(&a, "acct:x", at(SEC), window).await.expect("hit");
    assert_eq!(
        second,
        ThrottleState { failures: 2, first_at: at(0), last_at: at(SEC), expires_at: at(15 * MIN) }
    );
    // A later hit with another window keeps the counter's own expiry.
    let third = store.throttle_hit(&a, "acct:x", at(2 * SEC), time::Duration::hours(5)).await.expect("hit");
    assert_eq!((third.failures, third.expires_at), (3, at(15 * MIN)));
    assert_eq!(store.throttle_get(&a, "acct:x", at(2 * SEC)).await.expect("get"), Some(third));
    assert_eq!(store.throttle_get(&a, "acct:x", at(15 * MIN - 1)).await.expect("get"), Some(third));
    assert_eq!(store.throttle_get(&a, "acct:x", at(15 * MIN)).await.expect("get"), None, "expired");
    let again = store.throttle_hit(&a, "acct:x", at(15 * MIN), window).await.expect("hit");
    assert_eq!(
        again,
        ThrottleState {
            failures: 1,
            first_at: at(15 * MIN),
            last_at: at(15 * MIN),
            expires_at: at(30 * MIN)
        }
    );
}

/// 20 concurrent hits on one counter count exactly 20.
pub async fn throttle_concurrent_hits_all_count(store: Arc<dyn Store>) {
    let a = scope("a");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (store, a) = (store.clone(), a.clone());
        tasks.push(tokio::spawn(async move {
            store.throttle_hit(&a, "ip:10.0.0.1", at(i * 10), time::Duration::hours(1)).await
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.expect("task").expect("hit").failures);
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<u32>>(), "each hit saw its own count");
    let state = store.throttle_get(&a, "ip:10.0.0.1", at(300)).await.expect("get").expect("live");
    assert_eq!(state.failures, 20);
}

/// Clearing forgets one counter; keys and scopes do not share counters.
pub async fn throttle_clear_and_isolation(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (a, b) = (scope("a"), scope("b"));
    let w = time::Duration::hours(1);
    for _ in 0..3 {
        store.throttle_hit(&a, "acct:x", at(0), w).await.expect("hit");
    }
    store.throttle_hit(&a, "acct:y", at(0), w).await.expect("hit");
    store.throttle_hit(&b, "acct:x", at(0), w).await.expect("hit");
    let failures = |sc: Scope, key: &'static str| async move {
        store.throttle_get(&sc, key, at(1)).await.expect("get").map(|s| s.failures)
    };
    assert_eq!(failures(a.clone(), "acct:x").await, Some(3));
    assert_eq!(failures(a.clone(), "acct:y").await, Some(1));
    assert_eq!(failures(b.clone(), "acct:x").await, Some(1));
    assert_eq!(failures(a.clone(), "ip:acct:x").await, None);
    store.throttle_clear(&a, "acct:x").await.expect("clear");
    store.throttle_clear(&a, "acct:never").await.expect("clearing nothing is fine");
    assert_eq!(failures(a.clone(), "acct:x").await, None);
    assert_eq!(failures(a.clone(), "acct:y").await, Some(1));
    assert_eq!(failures(b.clone(), "acct:x").await, Some(1), "other scope untouched");
    let restart = store.throttle_hit(&a, "acct:x", at(2), w).await.expect("hit");
    assert_eq!(restart.failures, 1);
}

/// `throttle_update` clears, then gives one count back (a counter of one, or an
/// expired one, goes), then hits, in one call, answering the hits' states in order;
/// other scopes and keys are untouched.
pub async fn throttle_update_hits_undoes_and_clears(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (a, b) = (scope("a"), scope("b"));
    let (hour, minute) = (time::Duration::hours(1), time::Duration::minutes(1));
    async fn update(
        store: &dyn Store,
        a: &Scope,
        hit: &[(&str, time::Duration)],
        undo: &[&str],
        clear: &[&str],
        now: OffsetDateTime,
    ) -> Vec<ThrottleState> {
        store.throttle_update(a, &ThrottleUpdate { hit, undo, clear }, now).await.expect("update")
    }
    let failures = |sc: Scope, key: &'static str, now| async move {
        store.throttle_get(&sc, key, now).await.expect("get").map(|s| s.failures)
    };
    store.throttle_hit(&b, "acct:x", at(0), hour).await.expect("hit");

    let first = update(store, &a, &[("acct:x", hour), ("ip:1", minute)], &[], &[], at(0)).await;
    assert_eq!(
        first,
        vec![
            ThrottleState { failures: 1, first_at: at(0), last_at: at(0), expires_at: at(60 * MIN) },
            ThrottleState { failures: 1, first_at: at(0), last_at: at(0), expires_at: at(MIN) },
        ]
    );
    let second = update(store, &a, &[("ip:1", minute), ("acct:x", hour)], &[], &[], at(SEC)).await;
    assert_eq!(second.iter().map(|s| (s.failures, s.last_at)).collect::<Vec<_>>(), vec![(2, at(SEC)); 2]);
    assert_eq!(second[0].expires_at, at(MIN), "in the order asked");

    // An undo gives one back; at one, the counter goes.
    assert_eq!(update(store, &a, &[], &["acct:x"], &[], at(2 * SEC)).await, vec![]);
    assert_eq!(failures(a.clone(), "acct:x", at(2 * SEC)).await, Some(1));
    update(store, &a, &[], &["acct:x", "acct:never"], &[], at(2 * SEC)).await;
    assert_eq!(failures(a.clone(), "acct:x", at(2 * SEC)).await, None);
    let restarted = update(store, &a, &[("acct:x", hour)], &[], &[], at(3 * SEC)).await;
    assert_eq!((restarted[0].failures, restarted[0].first_at), (1, at(3 * SEC)), "starts again");

    // An expired counter is removed by an undo whatever its count.
    update(store, &a, &[("ip:1", minute)], &[], &[], at(4 * SEC)).await;
    assert_eq!(failures(a.clone(), "ip:1", at(4 * SEC)).await, Some(3));
    update(store, &a, &[], &["ip:1"], &[], at(MIN)).await;
    let after = update(store, &a, &[("ip:1", minute)], &[], &[], at(MIN)).await;
    assert_eq!((after[0].failures, after[0].first_at), (1, at(MIN)));

    // All three kinds at once.
    update(store, &a, &[("ip:2", hour)], &[], &[], at(MIN)).await;
    update(store, &a, &[("ip:2", hour)], &[], &[], at(MIN)).await;
    let mixed = update(store, &a, &[("known:d", hour)], &["ip:2"], &["acct:x"], at(MIN + SEC)).await;
    assert_eq!(mixed.len(), 1);
    assert_eq!(mixed[0].failures, 1);
    assert_eq!(failures(a.clone(), "acct:x", at(MIN + SEC)).await, None, "cleared");
    assert_eq!(failures(a.clone(), "ip:2", at(MIN + SEC)).await, Some(1), "one given back");
    assert_eq!(failures(a.clone(), "known:d", at(MIN + SEC)).await, Some(1));
    assert_eq!(failures(b.clone(), "acct:x", at(MIN + SEC)).await, Some(1), "other scope untouched");
    update(store, &a, &[], &[], &["acct:never"], at(MIN)).await;
}

/// 50 concurrent reservations of two counters each see a count no other saw (so a
/// budget of k lets at most k through), and 50 concurrent undos give every one back.
pub async fn throttle_update_reservations_count_under_concurrency(store: Arc<dyn Store>) {
    let a = scope("a");
    let hour = time::Duration::hours(1);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (store, a) = (store.clone(), a.clone());
        tasks.push(tokio::spawn(async move {
            let hit: &[(&str, time::Duration)] = &[("acct:burst", hour), ("ip:10.9.9.9", hour)];
            store.throttle_update(&a, &ThrottleUpdate { hit, ..Default::default() }, at(i)).await
        }));
    }
    let (mut accounts, mut ips) = (Vec::new(), Vec::new());
    for t in tasks {
        let states = t.await.expect("task").expect("update");
        accounts.push(states[0].failures);
        ips.push(states[1].failures);
    }
    accounts.sort_unstable();
    ips.sort_unstable();
    assert_eq!(accounts, (1..=50).collect::<Vec<u32>>(), "each reservation saw its own count");
    assert_eq!(ips, (1..=50).collect::<Vec<u32>>());
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (store, a) = (store.clone(), a.clone());
        tasks.push(tokio::spawn(async move {
            let undo: &[&str] = &["acct:burst", "ip:10.9.9.9"];
            store.throttle_update(&a, &ThrottleUpdate { undo, ..Default::default() }, at(60)).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("undo");
    }
    for key in ["acct:burst", "ip:10.9.9.9"] {
        assert_eq!(store.throttle_get(&a, key, at(61)).await.expect("get"), None, "{key}: all given back");
    }
}

/// The sweep removes expired counters (within its batch) and keeps live ones.
pub async fn throttle_sweep_removes_expired(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (a, b) = (scope("a"), scope("b"));
    let short = time::Duration::minutes(1);
    store.throttle_hit(&a, "ip:1", at(0), short).await.expect("hit");
    store.throttle_hit(&a, "ip:2", at(0), short).await.expect("hit");
    store.throttle_hit(&b, "ip:1", at(0), short).await.expect("hit");
    store.throttle_hit(&a, "ip:3", at(0), time::Duration::hours(1)).await.expect("hit");
    let now = at(MIN);
    assert_eq!(store.sweep_expired(now, 2).await.expect("sweep"), 2);
    assert_eq!(store.sweep_expired(now, 2).await.expect("sweep"), 1);
    assert_eq!(store.sweep_expired(now, 2).await.expect("sweep"), 0);
    assert!(store.throttle_get(&a, "ip:3", now).await.expect("get").is_some(), "live counter kept");
    // A swept counter starts again from one.
    assert_eq!(store.throttle_hit(&a, "ip:1", now, short).await.expect("hit").failures, 1);
}
