//! Scope isolation: nothing of one scope is found, changed or counted from another.

use super::*;

/// Nothing crosses scopes: every scoped operation in scope "b" neither sees nor touches
/// scope "a"'s users, sessions, codes, identities or events, and "a" holds no claim on
/// names in "b".
pub async fn scope_isolation(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (a, b) = (scope("a"), scope("b"));
    let mut rec = user(&a, Some("alice"), Some("alice@example.com"));
    rec.password_hash = Some("h".into());
    store.insert_user(&rec).await.expect("insert");
    let alice = rec.user.clone();
    let sess = login_at(store, &a, alice.id, at(0)).await;
    store.insert_event(&event(&a, Some(alice.id), at(10), Outcome::WrongPassword), &[]).await.expect("event");
    let reset = add_code(store, &a, alice.id, CodeKind::Reset, at(0)).await;
    let confirm = add_code(store, &a, alice.id, CodeKind::Confirm, at(0)).await;
    store.upsert_identity(&identity(&a, alice.id, "github", "gh-1"), &[]).await.expect("identity");
    let github = provider("github");
    let now = at(1000);

    // Reads in b see nothing of a.
    assert!(find(store, &b, UserRef::Id(alice.id)).await.is_none());
    assert!(find(store, &b, by_username("alice")).await.is_none());
    assert!(find(store, &b, by_email("alice@example.com")).await.is_none());
    assert!(store.list_users(&b, &UserFilter::default(), None, 100).await.expect("list").is_empty());
    assert!(store.find_session(&b, &sess.token_hash).await.expect("find").is_none());
    assert!(store.list_sessions(&b, alice.id, now).await.expect("list").is_empty());
    assert!(store.get_identity(&b, alice.id, &github).await.expect("get").is_none());
    assert!(store.find_identity(&b, &github, "gh-1").await.expect("find").is_none());
    assert!(store.list_identities(&b, alice.id).await.expect("list").is_empty());
    assert!(store.list_events(&b, alice.id, None, 100).await.expect("events").is_empty());
    assert_eq!(nonzero(store.login_stats(&b, at(-DAY), at(DAY), Bucket::Hour).await.expect("stats")), vec![]);

    // Writes in b touch nothing of a.
    let off = UserPatch { active: Some(false), ..Default::default() };
    assert!(store.update_user(&b, alice.id, &off, now).await.expect("update").is_none());
    assert!(!store.delete_user(&b, alice.id, &[]).await.expect("delete"));
    assert!(!store.set_password_hash(&b, alice.id, "x", now, &[]).await.expect("set"));
    assert!(!store.rehash_password(&b, alice.id, "h", "x").await.expect("rehash"));
    assert!(store.freshen_session(&b, &sess.token_hash, now, at(DAY)).await.expect("freshen").is_none());
    assert!(
        store
            .patch_session_data(&b, &sess.token_hash, &json!({"x": 1}), NO_CAP)
            .await
            .expect("patch")
            .is_none()
    );
    assert!(store.delete_session_by_hash(&b, &sess.token_hash, &[]).await.expect("delete").is_none());
    assert!(!store.delete_session(&b, alice.id, sess.session.id, &[]).await.expect("delete"));
    assert_eq!(store.delete_sessions(&b, alice.id, None, &[]).await.expect("delete"), 0);
    assert_eq!(store.redeem_reset_code(&b, &reset.code_hash, now, "x", &[]).await.expect("redeem"), None);
    assert_eq!(
        store.redeem_code(&b, CodeKind::Confirm, &confirm.code_hash, now, &[]).await.expect("redeem"),
        None
    );
    assert!(!store.delete_identity(&b, alice.id, &github, &[]).await.expect("delete"));

    // b has its own names and identities.
    let alice_b = add_user(store, &b, Some("ALICE"), Some("alice@example.com")).await;
    store
        .upsert_identity(&identity(&b, alice_b.id, "github", "gh-1"), &[])
        .await
        .expect("same identity in b");
    let b_sess = login_at(store, &b, alice_b.id, at(100)).await;
    assert_eq!(find(store, &b, by_username("alice")).await.map(|r| r.user.id), Some(alice_b.id));
    assert_eq!(
        store.find_identity(&b, &github, "gh-1").await.expect("find").map(|i| i.user_id),
        Some(alice_b.id)
    );
    assert!(store.delete_user(&b, alice_b.id, &[]).await.expect("delete"));
    assert!(!has_session(store, &b, &b_sess).await);

    // a is whole.
    let found = find_id(store, &a, alice.id).await;
    assert_eq!(found.user, User { last_login_at: Some(at(0)), ..alice.clone() });
    assert_eq!(found.password_hash.as_deref(), Some("h"));
    let (session, _) = store.find_session(&a, &sess.token_hash).await.expect("find").expect("a's session");
    assert_eq!(session, sess.session);
    assert_eq!(find(store, &a, by_username("alice")).await.map(|r| r.user.id), Some(alice.id));
    assert_eq!(
        store.find_identity(&a, &github, "gh-1").await.expect("find").map(|i| i.user_id),
        Some(alice.id)
    );
    assert_eq!(store.list_events(&a, alice.id, None, 100).await.expect("events").len(), 2);
    assert_eq!(
        store.redeem_code(&a, CodeKind::Confirm, &confirm.code_hash, now, &[]).await.expect("redeem"),
        Some(alice.id)
    );
    assert_eq!(
        store.redeem_reset_code(&a, &reset.code_hash, now, "x", &[]).await.expect("redeem"),
        Some(alice.id)
    );
}
