//! Sessions: the login write, the per-user cap, freshen, the session data patch and its
//! cap, ending sessions, listing them.

use super::*;

/// `insert_login` stores the session (found by its token hash with its user, whatever
/// its expiry), the success event, and sets the user's `last_login_at`.
pub async fn insert_login_stores_session_event_and_last_login(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
    let mut rec = session(&s, alice.id, at(10_000), at(10_000 + HOUR), at(10_000 + DAY));
    rec.session.data = obj(json!({"cart": [1, 2], "theme": "dark"}));
    rec.session.client =
        ClientInfo { ip: Some("203.0.113.7".into()), user_agent: Some("Mozilla/5.0 (X11)".into()) };
    let login = new_login(&rec, None);
    store.insert_login(&login).await.expect("insert_login");

    let (found, u) = store.find_session(&s, &rec.token_hash).await.expect("find").expect("session");
    assert_eq!(found, rec.session);
    assert_eq!(u.id, alice.id);
    assert_eq!(u.username, alice.username);
    assert_eq!(u.last_login_at, Some(at(10_000)));
    assert_eq!(find_id(store, &s, alice.id).await.user.last_login_at, Some(at(10_000)));
    assert_eq!(store.list_events(&s, alice.id, None, 10).await.expect("events"), vec![login.event.clone()]);

    let later = login_at(store, &s, alice.id, at(20_000)).await;
    assert_eq!(find_id(store, &s, alice.id).await.user.last_login_at, Some(at(20_000)));
    let (_, u) = store.find_session(&s, &rec.token_hash).await.expect("find").expect("session");
    assert_eq!(u.last_login_at, Some(at(20_000)), "find_session returns the current user");
    assert!(has_session(store, &s, &later).await);

    // The store does not judge expiry: a session long expired is still found.
    let old = session(&s, alice.id, at(-10 * DAY), at(-10 * DAY + 1), at(-10 * DAY + 2));
    store.insert_login(&new_login(&old, None)).await.expect("insert_login");
    let (found, _) = store.find_session(&s, &old.token_hash).await.expect("find").expect("expired session");
    assert_eq!(found, old.session);

    assert!(store.find_session(&s, &random_hash()).await.expect("find").is_none());
}

/// With `max_sessions`, the user's oldest sessions beyond the cap (the new one counts)
/// end in the same write; other users' sessions never do; without it, no cap.
pub async fn max_sessions_ends_the_oldest(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), None).await;
    let bob = add_user(store, &s, Some("bob"), None).await;
    let b1 = login_at(store, &s, bob.id, at(500)).await;
    let mut all = Vec::new();
    let mut log = |n: i64, cap: Option<u32>| {
        let rec = session(&s, alice.id, at(n * 1000), at(n * 1000 + HOUR), at(n * 1000 + DAY));
        all.push(rec.clone());
        async move { store.insert_login(&new_login(&rec, cap)).await.expect("insert_login").ended }
    };
    assert_eq!(log(1, Some(3)).await, 0, "nothing ends below the cap");
    assert_eq!(log(2, Some(3)).await, 0);
    assert_eq!(log(3, Some(3)).await, 0);
    let ids = |v: Vec<Session>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let live = || async { ids(store.list_sessions(&s, alice.id, at(10_000)).await.expect("list")) };
    assert_eq!(log(4, Some(3)).await, 1, "the login reports how many the cap ended");
    assert_eq!(log(5, Some(2)).await, 2);
    assert_eq!(log(6, None).await, 0);
    let [s1, s2, s3, s4, s5, s6] = [0, 1, 2, 3, 4, 5].map(|i| all[i].clone());
    assert!(!has_session(store, &s, &s1).await);
    assert!(!has_session(store, &s, &s2).await);
    assert!(!has_session(store, &s, &s3).await);
    assert_eq!(live().await, vec![s6.session.id, s5.session.id, s4.session.id]);
    assert!(has_session(store, &s, &b1).await, "another user's sessions are not counted");

    // Step by step: with cap 1 only the newest stays.
    let s7 = session(&s, alice.id, at(7000), at(7000 + HOUR), at(7000 + DAY));
    let stored = store.insert_login(&new_login(&s7, Some(1))).await.expect("insert_login");
    assert_eq!(stored.ended, 3);
    assert_eq!(live().await, vec![s7.session.id]);
    assert!(has_session(store, &s, &b1).await);
}

/// A login for a user that does not exist (deleted while its password was checked)
/// fails and stores nothing: no session, no event, and no other session ends.
pub async fn login_of_a_missing_user_stores_nothing(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), None).await;
    let kept = login_at(store, &s, alice.id, at(1000)).await;
    let ghost_id = Uuid::now_v7();
    let ghost = session(&s, ghost_id, at(2000), at(2000 + HOUR), at(2000 + DAY));
    let got = store.insert_login(&new_login(&ghost, Some(1))).await;
    assert!(matches!(got, Err(StoreError::Other(_))), "{got:?}");
    assert!(store.find_session(&s, &ghost.token_hash).await.expect("find").is_none());
    assert!(store.list_events(&s, ghost_id, None, 10).await.expect("events").is_empty());
    // The same user id in another scope is another (missing) user.
    let elsewhere = session(&scope("b"), alice.id, at(3000), at(3000 + HOUR), at(3000 + DAY));
    assert!(store.insert_login(&new_login(&elsewhere, Some(1))).await.is_err());
    assert!(store.find_session(&scope("b"), &elsewhere.token_hash).await.expect("find").is_none());
    assert!(has_session(store, &s, &kept).await, "nothing of alice's ended");
}

/// `freshen_session` sets `last_seen_at` and moves `expires_at` forward, never back;
/// `absolute_expires_at` never moves; `None` for an unknown hash.
pub async fn freshen_never_moves_expiry_backwards(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), None).await;
    let rec = session(&s, alice.id, at(0), at(60_000), at(600_000));
    store.insert_login(&new_login(&rec, None)).await.expect("insert_login");

    let fresh = store.freshen_session(&s, &rec.token_hash, at(10_000), at(70_000)).await.expect("freshen");
    let want = Session { last_seen_at: at(10_000), expires_at: at(70_000), ..rec.session.clone() };
    assert_eq!(fresh, Some(want.clone()));
    let (stored, _) = store.find_session(&s, &rec.token_hash).await.expect("find").expect("session");
    assert_eq!(stored, want);

    let fresh = store.freshen_session(&s, &rec.token_hash, at(20_000), at(65_000)).await.expect("freshen");
    let want = Session { last_seen_at: at(20_000), ..want };
    assert_eq!(fresh, Some(want.clone()), "expires_at never moves backwards");
    let (stored, _) = store.find_session(&s, &rec.token_hash).await.expect("find").expect("session");
    assert_eq!(stored, want);

    assert!(store.freshen_session(&s, &random_hash(), at(1), at(2)).await.expect("freshen").is_none());
}

/// `patch_session_data` applies an RFC 7396 merge patch to the stored data (null
/// removes, objects merge, anything else replaces) and keeps it; other sessions keep
/// theirs; `None` for an unknown hash.
pub async fn patch_session_data_merges(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), None).await;
    let mut rec = session(&s, alice.id, at(0), at(HOUR), at(DAY));
    rec.session.data = obj(json!({"a": 1, "b": {"c": 2, "d": 3}, "keep": true}));
    store.insert_login(&new_login(&rec, None)).await.expect("insert_login");
    let mut other = session(&s, alice.id, at(1), at(HOUR), at(DAY));
    other.session.data = obj(json!({"a": 1}));
    store.insert_login(&new_login(&other, None)).await.expect("insert_login");

    let patch = json!({"a": null, "b": {"c": 5, "e": [1, 2]}, "f": "x", "keep": null});
    let got =
        store.patch_session_data(&s, &rec.token_hash, &patch, NO_CAP).await.expect("patch").expect("session");
    let want = obj(json!({"b": {"c": 5, "d": 3, "e": [1, 2]}, "f": "x"}));
    assert_eq!(got.data, want);
    assert_eq!(got.id, rec.session.id);
    let (stored, _) = store.find_session(&s, &rec.token_hash).await.expect("find").expect("session");
    assert_eq!(stored.data, want);

    let got = store.patch_session_data(&s, &rec.token_hash, &json!({"b": 7}), NO_CAP).await.expect("patch");
    assert_eq!(got.map(|s| s.data), Some(obj(json!({"b": 7, "f": "x"}))));
    let got = store.patch_session_data(&s, &rec.token_hash, &json!({}), NO_CAP).await.expect("patch");
    assert_eq!(got.map(|s| s.data), Some(obj(json!({"b": 7, "f": "x"}))));

    let (stored, _) = store.find_session(&s, &other.token_hash).await.expect("find").expect("session");
    assert_eq!(stored.data, obj(json!({"a": 1})));
    assert!(
        store
            .patch_session_data(&s, &random_hash(), &json!({"a": 1}), NO_CAP)
            .await
            .expect("patch")
            .is_none()
    );
}

/// `patch_session_data` with a cap: a merge whose result would be larger than the cap
/// (compact JSON) fails with `TooLarge` and changes nothing; one that lands exactly on
/// it, or shrinks data already over it, passes. Concurrent patches never add up beyond
/// the cap: each is judged on what the previous ones left.
pub async fn patch_session_data_over_the_cap_changes_nothing(store: Arc<dyn Store>) {
    let s = scope("a");
    let alice = add_user(store.as_ref(), &s, Some("alice"), None).await;
    let mut rec = session(&s, alice.id, at(0), at(HOUR), at(DAY));
    rec.session.data = obj(json!({"a": "x".repeat(50)}));
    store.insert_login(&new_login(&rec, None)).await.expect("insert_login");
    let size = |d: &JsonObject| serde_json::to_vec(d).expect("json").len();
    let stored =
        || async { store.find_session(&s, &rec.token_hash).await.expect("find").expect("session").0.data };
    let before = stored().await;
    assert_eq!(size(&before), 58);

    // {"a":"x...x","b":"..."}: 58 + 7 + len bytes.
    let over = store.patch_session_data(&s, &rec.token_hash, &json!({"b": "y".repeat(36)}), 100).await;
    assert!(matches!(over, Err(StoreError::TooLarge { field: "data", max_bytes: 100 })), "{over:?}");
    assert_eq!(stored().await, before, "nothing half-written");
    let exact = store.patch_session_data(&s, &rec.token_hash, &json!({"b": "y".repeat(35)}), 100).await;
    assert_eq!(size(&exact.expect("patch").expect("session").data), 100);
    assert_eq!(size(&stored().await), 100);
    // Already over a lower cap: a patch that shrinks the data passes.
    let smaller = store.patch_session_data(&s, &rec.token_hash, &json!({"b": null}), 80).await;
    assert_eq!(smaller.expect("patch").expect("session").data, before);

    // Twenty concurrent patches of 20 bytes each against room for about five.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (store, s, hash) = (store.clone(), s.clone(), rec.token_hash);
        tasks.push(tokio::spawn(async move {
            store.patch_session_data(&s, &hash, &json!({ format!("k{i:02}"): "z".repeat(12) }), 160).await
        }));
    }
    let mut landed = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(Some(_)) => landed += 1,
            Err(StoreError::TooLarge { .. }) => {}
            other => panic!("unexpected: {other:?}"),
        }
    }
    let data = stored().await;
    assert!(size(&data) <= 160, "{} bytes", size(&data));
    assert_eq!(data.len(), 1 + landed, "every patch that answered Ok landed, no other");
    assert_eq!(landed, 4, "58 bytes + 4 x 21 = 142; a fifth would make 163");
}

/// Ending sessions: by token hash (returns it once), one by id (only the user's own),
/// all but one, all.
pub async fn delete_session_variants(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), None).await;
    let bob = add_user(store, &s, Some("bob"), None).await;
    let [a1, a2, a3, a4] = [
        login_at(store, &s, alice.id, at(1000)).await,
        login_at(store, &s, alice.id, at(2000)).await,
        login_at(store, &s, alice.id, at(3000)).await,
        login_at(store, &s, alice.id, at(4000)).await,
    ];
    let b1 = login_at(store, &s, bob.id, at(1000)).await;

    let gone = store.delete_session_by_hash(&s, &a1.token_hash, &[]).await.expect("delete");
    assert_eq!(gone, Some(a1.session.clone()));
    assert!(!has_session(store, &s, &a1).await);
    assert_eq!(store.delete_session_by_hash(&s, &a1.token_hash, &[]).await.expect("delete"), None);

    assert!(store.delete_session(&s, alice.id, a2.session.id, &[]).await.expect("delete"));
    assert!(!has_session(store, &s, &a2).await);
    assert!(!store.delete_session(&s, alice.id, a2.session.id, &[]).await.expect("delete"));
    assert!(
        !store.delete_session(&s, bob.id, a3.session.id, &[]).await.expect("delete"),
        "not bob's session"
    );
    assert!(has_session(store, &s, &a3).await);

    assert_eq!(store.delete_sessions(&s, alice.id, Some(a4.session.id), &[]).await.expect("delete"), 1);
    assert!(!has_session(store, &s, &a3).await);
    assert!(has_session(store, &s, &a4).await);
    assert_eq!(store.delete_sessions(&s, alice.id, None, &[]).await.expect("delete"), 1);
    assert!(!has_session(store, &s, &a4).await);
    assert_eq!(store.delete_sessions(&s, alice.id, None, &[]).await.expect("delete"), 0);
    assert!(has_session(store, &s, &b1).await, "bob's session outlives all of it");
}

/// `list_sessions` shows the user's sessions valid at `now` (before both the idle and
/// the absolute expiry, which are exclusive), newest first.
pub async fn list_sessions_valid_newest_first(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), None).await;
    let bob = add_user(store, &s, Some("bob"), None).await;
    let now = at(100_000);
    let insert = |created: i64, expires: i64, absolute: i64, who: Uuid| {
        let rec = session(&s, who, at(created), at(expires), at(absolute));
        async move {
            store.insert_login(&new_login(&rec, None)).await.expect("insert_login");
            rec.session
        }
    };
    let old = insert(1000, 200_000, 1_000_000, alice.id).await;
    let newest = insert(3000, 100_001, 1_000_000, alice.id).await;
    let middle = insert(2000, 200_000, 100_001, alice.id).await;
    insert(4000, 100_000, 1_000_000, alice.id).await; // idle expiry reached at `now`
    insert(5000, 99_999, 1_000_000, alice.id).await; // idle expiry passed
    insert(6000, 200_000, 100_000, alice.id).await; // absolute expiry reached
    insert(7000, 200_000, 1_000_000, bob.id).await;

    let listed = store.list_sessions(&s, alice.id, now).await.expect("list");
    assert_eq!(listed, vec![newest, middle, old.clone()]);
    let listed = store.list_sessions(&s, alice.id, at(150_000)).await.expect("list");
    assert_eq!(listed, vec![old]);
    assert!(store.list_sessions(&s, alice.id, at(300_000)).await.expect("list").is_empty());
    assert!(store.list_sessions(&s, Uuid::now_v7(), now).await.expect("list").is_empty());
}
