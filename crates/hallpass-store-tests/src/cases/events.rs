//! Login events: the newest-first history with its cursor, and the login statistics in
//! hour and day buckets.

use super::*;

/// `list_events`: the user's events only, newest first, whole, `limit` at a time, each
/// page before the last id of the previous one.
pub async fn events_newest_first_with_cursor(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), None).await;
    let bob = add_user(store, &s, Some("bob"), None).await;

    let mut mine = Vec::new();
    let mut success = session(&s, alice.id, at(1000), at(HOUR), at(DAY));
    success.session.client =
        ClientInfo { ip: Some("198.51.100.1".into()), user_agent: Some("curl/8".into()) };
    let login = new_login(&success, None);
    store.insert_login(&login).await.expect("insert_login");
    mine.push(login.event);
    for (ms, outcome) in
        [(2000, Outcome::WrongPassword), (3000, Outcome::Inactive), (4000, Outcome::Throttled)]
    {
        let mut e = event(&s, Some(alice.id), at(ms), outcome);
        e.method = "provider:github".into();
        e.ip = Some("2001:db8::1".into());
        store.insert_event(&e, &[]).await.expect("insert_event");
        mine.push(e);
    }
    let last = login_at(store, &s, alice.id, at(5000)).await;
    let events_now = store.list_events(&s, alice.id, None, 100).await.expect("events");
    let last_event = events_now.first().cloned().expect("an event");
    assert_eq!(last_event.session_id, Some(last.session.id));
    assert_eq!(last_event.outcome, Outcome::Success);
    mine.push(last_event);
    store.insert_event(&event(&s, Some(bob.id), at(2500), Outcome::WrongPassword), &[]).await.expect("event");
    store.insert_event(&event(&s, None, at(3500), Outcome::UnknownUser), &[]).await.expect("event");

    let newest_first: Vec<LoginEvent> = mine.iter().rev().cloned().collect();
    assert_eq!(events_now, newest_first);

    let page = store.list_events(&s, alice.id, None, 2).await.expect("events");
    assert_eq!(page, newest_first[0..2]);
    let page = store.list_events(&s, alice.id, Some(page[1].id), 2).await.expect("events");
    assert_eq!(page, newest_first[2..4]);
    let page = store.list_events(&s, alice.id, Some(page[1].id), 2).await.expect("events");
    assert_eq!(page, newest_first[4..5]);
    assert!(store.list_events(&s, alice.id, Some(page[0].id), 2).await.expect("events").is_empty());

    let bobs = store.list_events(&s, bob.id, None, 10).await.expect("events");
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].outcome, Outcome::WrongPassword);
}

/// `login_stats` by hour: successful logins and distinct users per bucket, bucket
/// starts are multiples of an hour since the epoch (also when `from` is not), `[from,
/// to)` is half-open, failures and other scopes do not count.
pub async fn login_stats_hour_buckets(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), None).await;
    let bob = add_user(store, &s, Some("bob"), None).await;
    let other = add_user(store, &scope("b"), Some("alice"), None).await;
    for (who, ms) in [
        (alice.id, 10 * MIN),
        (bob.id, 30 * MIN),
        (alice.id, 50 * MIN),
        (alice.id, 2 * HOUR),
        (bob.id, 3 * HOUR - 1),
        (alice.id, 3 * HOUR),
        (alice.id, -1),
    ] {
        login_at(store, &s, who, at(ms)).await;
    }
    login_at(store, &scope("b"), other.id, at(20 * MIN)).await;
    for outcome in [Outcome::WrongPassword, Outcome::Inactive, Outcome::Throttled] {
        store
            .insert_event(&event(&s, Some(alice.id), at(HOUR + 15 * MIN), outcome), &[])
            .await
            .expect("event");
    }
    store
        .insert_event(&event(&s, None, at(HOUR + 16 * MIN), Outcome::UnknownUser), &[])
        .await
        .expect("event");

    let got = store.login_stats(&s, at(0), at(3 * HOUR), Bucket::Hour).await.expect("stats");
    assert_eq!(nonzero(got), vec![(0, 3, 2), (2 * HOUR, 2, 2)]);

    // `from` inside an hour: the bucket still starts on the hour and counts from `from`.
    let got = store.login_stats(&s, at(20 * MIN), at(3 * HOUR + 1), Bucket::Hour).await.expect("stats");
    assert_eq!(nonzero(got), vec![(0, 2, 2), (2 * HOUR, 2, 2), (3 * HOUR, 1, 1)]);

    let got = store.login_stats(&s, at(-HOUR), at(0), Bucket::Hour).await.expect("stats");
    assert_eq!(nonzero(got), vec![(-HOUR, 1, 1)]);

    let got = store.login_stats(&scope("c"), at(-DAY), at(DAY), Bucket::Hour).await.expect("stats");
    assert_eq!(nonzero(got), vec![]);
}

/// `login_stats` by day (UTC days since the epoch), with two users.
pub async fn login_stats_day_buckets(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), None).await;
    let bob = add_user(store, &s, Some("bob"), None).await;
    for (who, ms) in [
        (alice.id, HOUR),
        (alice.id, 5 * HOUR),
        (bob.id, 12 * HOUR),
        (alice.id, DAY - 1),
        (bob.id, 2 * DAY),
        (bob.id, 2 * DAY + 23 * HOUR),
        (alice.id, 3 * DAY),
    ] {
        login_at(store, &s, who, at(ms)).await;
    }
    store
        .insert_event(&event(&s, Some(bob.id), at(DAY + HOUR), Outcome::WrongPassword), &[])
        .await
        .expect("event");

    let got = store.login_stats(&s, at(0), at(3 * DAY), Bucket::Day).await.expect("stats");
    assert_eq!(nonzero(got), vec![(0, 4, 2), (2 * DAY, 2, 1)]);

    let got = store.login_stats(&s, at(12 * HOUR + 1), at(4 * DAY), Bucket::Day).await.expect("stats");
    assert_eq!(nonzero(got), vec![(0, 1, 1), (2 * DAY, 2, 1), (3 * DAY, 1, 1)]);
}
