//! The admin page's storage: the internal `_admin` scope, the audit trail, the figures
//! of every scope and the login outcome statistics.

use super::*;

/// Users, sessions and events of the internal admin scope (`_admin`, which
/// `Scope::parse` refuses) are stored and read back like any scope's, and stay apart
/// from a scope of users with the same names.
pub async fn admin_scope_round_trips(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let admin = Scope::admin();
    let root = add_user(store, &admin, Some("root"), None).await;
    let other = add_user(store, &scope("a"), Some("root"), None).await;
    let found = store.find_user(&admin, &UserRef::parse("root").expect("ref")).await;
    let found = found.expect("find").expect("found");
    assert_eq!(found.user, root);
    assert!(found.user.scope.is_admin());
    let session = login_at(store, &admin, root.id, at(0)).await;
    let (s, u) = store.find_session(&admin, &session.token_hash).await.expect("find").expect("found");
    assert_eq!((s.scope.clone(), u.id), (admin.clone(), root.id));
    assert!(store.find_session(&scope("a"), &session.token_hash).await.expect("find").is_none());
    let events = store.list_events(&admin, root.id, None, 10).await.expect("events");
    assert_eq!(events.len(), 1);
    assert!(events[0].scope.is_admin());
    assert!(store.list_events(&scope("a"), other.id, None, 10).await.expect("events").is_empty());
}

fn audit_entry(t: OffsetDateTime, action: &str, scope: Option<Scope>) -> AuditEntry {
    AuditEntry {
        id: id_at(t),
        at: t,
        admin: "root".into(),
        action: action.into(),
        scope,
        target: Some("target-1".into()),
        detail: obj(json!({"fields": ["active"], "n": 2})),
    }
}

/// `list_audit` gives entries newest first, every field as written, paged by id.
pub async fn audit_newest_first_with_cursor(store: Arc<dyn Store>) {
    let store = store.as_ref();
    assert!(store.list_audit(None, 10).await.expect("list").is_empty());
    let entries: Vec<AuditEntry> = (0..5)
        .map(|i| audit_entry(at(i * SEC), &format!("action_{i}"), (i % 2 == 0).then(|| scope("a"))))
        .collect();
    for e in &entries {
        store.insert_audit(e).await.expect("insert");
    }
    let mut no_target = audit_entry(at(10 * SEC), "admin_login", None);
    no_target.target = None;
    no_target.detail = JsonObject::new();
    store.insert_audit(&no_target).await.expect("insert");
    let first = store.list_audit(None, 3).await.expect("list");
    assert_eq!(first, vec![no_target.clone(), entries[4].clone(), entries[3].clone()]);
    let next = store.list_audit(Some(entries[3].id), 10).await.expect("list");
    assert_eq!(next, vec![entries[2].clone(), entries[1].clone(), entries[0].clone()]);
    assert!(store.list_audit(Some(entries[0].id), 10).await.expect("list").is_empty());
}

/// `scope_figures` counts, per scope with a user or a key: users, active users,
/// sessions valid at `now`, unrevoked keys.
pub async fn scope_figures_count_per_scope(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (a, b, k) = (scope("a"), scope("b"), scope("keys-only"));
    let alice = add_user(store, &a, Some("alice"), None).await;
    let bob = add_user(store, &a, Some("bob"), None).await;
    let carol = add_user(store, &a, Some("carol"), None).await;
    let dave = add_user(store, &b, Some("dave"), None).await;
    let patch = UserPatch { active: Some(false), ..UserPatch::default() };
    store.update_user(&a, carol.id, &patch, at(0)).await.expect("update").expect("user");
    let now = at(10 * MIN);
    login_at(store, &a, alice.id, at(0)).await; // valid until 1 h
    login_at(store, &a, bob.id, at(0)).await;
    login_at(store, &a, bob.id, at(-2 * HOUR)).await; // idle-expired at `now`
    login_at(store, &b, dave.id, at(0)).await;
    let key = |sc: &Scope| ApiKey {
        id: Uuid::now_v7(),
        scope: sc.clone(),
        name: None,
        created_at: at(0),
        revoked_at: None,
        last_used_at: None,
    };
    store.insert_api_key(&key(&a), &random_hash()).await.expect("key");
    let revoked = key(&k);
    store.insert_api_key(&revoked, &random_hash()).await.expect("key");
    assert!(store.revoke_api_key(revoked.id, at(0)).await.expect("revoke"));
    let mut got = store.scope_figures(now).await.expect("figures");
    got.sort_by(|x, y| x.scope.cmp(&y.scope));
    let row = |scope: &Scope, users, active_users, live_sessions, api_keys| ScopeFigures {
        scope: scope.clone(),
        users,
        active_users,
        live_sessions,
        api_keys,
    };
    assert_eq!(got, vec![row(&a, 3, 2, 2, 1), row(&b, 1, 1, 1, 0), row(&k, 0, 0, 0, 0)]);
}

/// `outcome_stats` counts attempts of every outcome per bucket, in `[from, to)`, of
/// the scope only.
pub async fn outcome_stats_count_every_outcome(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (a, b) = (scope("a"), scope("b"));
    let alice = add_user(store, &a, Some("alice"), None).await;
    login_at(store, &a, alice.id, at(HOUR)).await;
    login_at(store, &a, alice.id, at(2 * HOUR)).await;
    for (t, outcome) in [
        (at(3 * HOUR), Outcome::WrongPassword),
        (at(4 * HOUR), Outcome::WrongPassword),
        (at(5 * HOUR), Outcome::UnknownUser),
        (at(DAY + HOUR), Outcome::Throttled),
        (at(DAY + 2 * HOUR), Outcome::Inactive),
        (at(-1), Outcome::WrongPassword),
        (at(2 * DAY), Outcome::WrongPassword),
    ] {
        store.insert_event(&event(&a, Some(alice.id), t, outcome), &[]).await.expect("event");
    }
    store.insert_event(&event(&b, None, at(HOUR), Outcome::UnknownUser), &[]).await.expect("event");
    let mut got: Vec<(i64, &str, u64)> = store
        .outcome_stats(&a, at(0), at(2 * DAY), Bucket::Day)
        .await
        .expect("stats")
        .into_iter()
        .map(|c| (hallpass_core::clock::to_unix_ms(c.start) - T0_MS, c.outcome.as_str(), c.count))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (0, "success", 2),
            (0, "unknown_user", 1),
            (0, "wrong_password", 2),
            (DAY, "inactive", 1),
            (DAY, "throttled", 1),
        ]
    );
    let none = store.outcome_stats(&scope("c"), at(0), at(2 * DAY), Bucket::Day).await.expect("stats");
    assert!(none.is_empty());
}
