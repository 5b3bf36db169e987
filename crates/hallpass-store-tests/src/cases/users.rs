//! Users: insert and lookups, uniqueness per scope, listing and its filters, updates and
//! their conflicts, deactivation, deletion, and password hash changes (and `ping`).

use super::*;

/// `ping` succeeds on a working store.
pub async fn ping_answers(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
}

/// A user reads back field for field by id, by username key (any case, NFKC) and by
/// email key (any case of the domain); unknown refs find nothing.
pub async fn insert_and_find_user(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let mut alice = user(&s, Some("Alice"), Some("Alice@Example.COM"));
    alice.user.group = Group::parse("staff").expect("group");
    alice.user.extra = obj(json!({"plan": "pro", "n": [1, 2.5, {"x": null}], "ü": "ß"}));
    alice.user.confirmation = Some(Confirmation::Pending);
    alice.user.created_at = at(1234);
    alice.user.updated_at = at(5678);
    alice.user.last_login_at = Some(at(999));
    alice.password_hash = Some("$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into());
    store.insert_user(&alice).await.expect("insert_user");

    let found = find_id(store, &s, alice.user.id).await;
    assert_eq!(found.user, alice.user);
    assert_eq!(found.password_hash, alice.password_hash);
    assert_eq!(found.user.username.as_ref().map(Username::as_str), Some("Alice"), "shown as typed");
    assert_eq!(found.user.email.as_ref().map(Email::as_str), Some("Alice@Example.COM"), "shown as typed");

    for typed in ["Alice", "alice", "ALICE", "Ａｌｉｃｅ"] {
        let got = find(store, &s, by_username(typed)).await;
        assert_eq!(got.map(|r| r.user.id), Some(alice.user.id), "username {typed}");
    }
    for typed in ["Alice@Example.COM", "Alice@example.com", "Alice@EXAMPLE.com"] {
        let got = find(store, &s, by_email(typed)).await;
        assert_eq!(got.map(|r| r.user.id), Some(alice.user.id), "email {typed}");
    }
    assert!(find(store, &s, UserRef::Id(Uuid::now_v7())).await.is_none());
    assert!(find(store, &s, by_username("bob")).await.is_none());
    assert!(find(store, &s, by_username("alic")).await.is_none(), "no prefix match");
    assert!(find(store, &s, by_email("bob@example.com")).await.is_none());

    // A user may have only an email, or only a username, and no password.
    let carol = add_user(store, &s, None, Some("carol@example.com")).await;
    let got = find(store, &s, by_email("carol@example.com")).await.expect("carol");
    assert_eq!(got.user, carol);
    assert!(got.user.username.is_none());
    assert!(got.password_hash.is_none());
    let dave = add_user(store, &s, Some("dave"), None).await;
    let got = find(store, &s, by_username("Dave")).await.expect("dave");
    assert_eq!(got.user, dave);
    assert!(got.user.email.is_none());
}

/// A username or email another user of the scope holds is refused with
/// `UsernameTaken` / `EmailTaken` (compared by key), and nothing is stored; users
/// without a username (or email) do not collide; another scope is free.
pub async fn username_and_email_are_unique_per_scope(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("Alice"), Some("alice@example.com")).await;

    let r = store.insert_user(&user(&s, Some("ALICE"), Some("other@example.com"))).await;
    assert_err(r, "UsernameTaken");
    let r = store.insert_user(&user(&s, Some("ａｌｉｃｅ"), Some("other2@example.com"))).await;
    assert_err(r, "UsernameTaken");
    let r = store.insert_user(&user(&s, Some("bob"), Some("alice@EXAMPLE.com"))).await;
    assert_err(r, "EmailTaken");
    let r = store.insert_user(&user(&s, None, Some(" alice@Example.Com "))).await;
    assert_err(r, "EmailTaken");
    assert!(find(store, &s, by_username("bob")).await.is_none(), "a refused insert stores nothing");
    assert!(
        find(store, &s, by_email("other@example.com")).await.is_none(),
        "a refused insert stores nothing"
    );
    assert_eq!(list_all(store, &s, UserFilter::default()).await, vec![alice.id]);

    // Absent usernames and emails never collide.
    let e1 = add_user(store, &s, None, Some("e1@example.com")).await;
    let e2 = add_user(store, &s, None, Some("e2@example.com")).await;
    let u1 = add_user(store, &s, Some("u1"), None).await;
    let u2 = add_user(store, &s, Some("u2"), None).await;
    assert_eq!(
        list_all(store, &s, UserFilter::default()).await,
        sorted(vec![alice.id, e1.id, e2.id, u1.id, u2.id])
    );

    // Another scope has its own names.
    let b = scope("b");
    let alice_b = add_user(store, &b, Some("alice"), Some("alice@example.com")).await;
    assert_eq!(find(store, &b, by_username("alice")).await.map(|r| r.user.id), Some(alice_b.id));
    assert_eq!(find(store, &s, by_username("alice")).await.map(|r| r.user.id), Some(alice.id));
}

/// `update_user` refuses another user's username or email and leaves the user as it
/// was; keeping one's own name (in another case) is fine; a dropped name is free again.
pub async fn update_user_conflicts(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
    let bob = add_user(store, &s, Some("bob"), Some("bob@example.com")).await;

    let patch =
        UserPatch { username: Some(Some(Username::parse("ALICE").expect("u"))), ..Default::default() };
    assert_err(store.update_user(&s, bob.id, &patch, at(1000)).await, "UsernameTaken");
    let patch =
        UserPatch { email: Some(Some(Email::parse("alice@EXAMPLE.COM").expect("e"))), ..Default::default() };
    assert_err(store.update_user(&s, bob.id, &patch, at(1000)).await, "EmailTaken");
    let patch = UserPatch {
        username: Some(Some(Username::parse("robert").expect("u"))),
        email: Some(Some(Email::parse("alice@example.com").expect("e"))),
        group: Some(Group::parse("staff").expect("g")),
        ..Default::default()
    };
    assert_err(store.update_user(&s, bob.id, &patch, at(1000)).await, "EmailTaken");
    assert_eq!(find_id(store, &s, bob.id).await.user, bob, "a refused update changes nothing");
    assert!(find(store, &s, by_username("robert")).await.is_none());

    // One's own name in another case is no conflict.
    let patch = UserPatch {
        username: Some(Some(Username::parse("ALICE").expect("u"))),
        email: Some(Some(Email::parse("alice@EXAMPLE.com").expect("e"))),
        ..Default::default()
    };
    let updated = store.update_user(&s, alice.id, &patch, at(2000)).await.expect("update").expect("alice");
    assert_eq!(updated.username.as_ref().map(Username::as_str), Some("ALICE"));
    assert_eq!(find(store, &s, by_username("alice")).await.map(|r| r.user.id), Some(alice.id));

    // A dropped username is free for someone else.
    let patch = UserPatch { username: Some(None), ..Default::default() };
    let updated = store.update_user(&s, bob.id, &patch, at(3000)).await.expect("update").expect("bob");
    assert!(updated.username.is_none());
    assert!(find(store, &s, by_username("bob")).await.is_none());
    let new_bob = add_user(store, &s, Some("Bob"), None).await;
    assert_eq!(find(store, &s, by_username("bob")).await.map(|r| r.user.id), Some(new_bob.id));
}

/// 50 concurrent registrations of one username (or one email): exactly one wins, the
/// other 49 get `UsernameTaken` (`EmailTaken`), and one user is stored.
pub async fn concurrent_registration_has_one_winner(store: Arc<dyn Store>) {
    let s = scope("a");
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (store, s) = (store.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            let name = if i % 2 == 0 { "Racer" } else { "RACER" };
            store.insert_user(&user(&s, Some(name), Some(&format!("racer{i}@example.com")))).await
        }));
    }
    let (mut ok, mut taken) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => ok += 1,
            Err(StoreError::UsernameTaken) => taken += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((ok, taken), (1, 49));

    let mut tasks = Vec::new();
    for i in 0..50 {
        let (store, s) = (store.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            store.insert_user(&user(&s, Some(&format!("mailer{i}")), Some("Same@Example.com"))).await
        }));
    }
    let (mut ok, mut taken) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => ok += 1,
            Err(StoreError::EmailTaken) => taken += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((ok, taken), (1, 49));
    assert_eq!(list_all(store.as_ref(), &s, UserFilter::default()).await.len(), 2);
}

/// `list_users` pages in id order: `limit` at a time, each page after the last id of
/// the one before, until an empty page; other scopes never show.
pub async fn list_users_pages_by_id(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (s, b) = (scope("a"), scope("b"));
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(add_user(store, &s, Some(&format!("user{i}")), None).await.id);
        add_user(store, &b, Some(&format!("user{i}")), None).await;
    }
    let ids = sorted(ids);
    let all = UserFilter::default();

    let page = store.list_users(&s, &all, None, 3).await.expect("list");
    assert_eq!(page.iter().map(|u| u.id).collect::<Vec<_>>(), ids[0..3]);
    let page = store.list_users(&s, &all, Some(ids[2]), 3).await.expect("list");
    assert_eq!(page.iter().map(|u| u.id).collect::<Vec<_>>(), ids[3..6]);
    let page = store.list_users(&s, &all, Some(ids[5]), 3).await.expect("list");
    assert_eq!(page.iter().map(|u| u.id).collect::<Vec<_>>(), ids[6..7]);
    let page = store.list_users(&s, &all, Some(ids[6]), 3).await.expect("list");
    assert!(page.is_empty());

    let everyone = store.list_users(&s, &all, None, 1000).await.expect("list");
    assert_eq!(everyone.iter().map(|u| u.id).collect::<Vec<_>>(), ids);
    assert!(everyone.iter().all(|u| u.scope == s));
    assert_eq!(everyone[0], find_id(store, &s, ids[0]).await.user, "listed users are whole");
}

/// `list_users` filters: `query` is a case-insensitive substring of the username or
/// the email (`%` and `_` are plain characters), `group` exact, `active` exact; they
/// combine, and combine with paging.
pub async fn list_users_filters(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let mut alice = user(&s, Some("alice"), Some("alice@wonderland.example"));
    alice.user.group = Group::parse("staff").expect("g");
    let mut bob = user(&s, Some("Bob"), Some("bob@builder.example"));
    bob.user.group = Group::parse("staff").expect("g");
    bob.user.active = false;
    let carol = user(&s, Some("carol"), Some("Carol.ALICE@example.org"));
    let dave = user(&s, None, Some("dave@ALICE.example"));
    let ab = user(&s, Some("a_b"), None);
    let axb = user(&s, Some("axb"), None);
    let zed = user(&s, Some("ZedUpper"), None);
    for u in [&alice, &bob, &carol, &dave, &ab, &axb, &zed] {
        store.insert_user(u).await.expect("insert_user");
    }
    let other = add_user(store, &scope("b"), Some("alice"), None).await;
    let [alice, bob, carol, dave, ab, axb, zed] = [alice, bob, carol, dave, ab, axb, zed].map(|u| u.user.id);

    let q = |q: &str| UserFilter { query: Some(q.into()), ..Default::default() };
    assert_eq!(list_all(store, &s, q("ALICE")).await, sorted(vec![alice, carol, dave]));
    assert_eq!(list_all(store, &s, q("bob")).await, vec![bob], "case-insensitive on the username");
    assert_eq!(list_all(store, &s, q("BUILDER")).await, vec![bob], "matches the email");
    assert_eq!(list_all(store, &s, q("zEDup")).await, vec![zed], "case-insensitive on the username alone");
    assert_eq!(list_all(store, &s, q("a_b")).await, vec![ab], "'_' is no wildcard");
    assert_eq!(list_all(store, &s, q("%")).await, Vec::<Uuid>::new(), "'%' is no wildcard");
    assert_eq!(list_all(store, &s, q("zzz")).await, Vec::<Uuid>::new());
    assert!(!list_all(store, &s, q("alice")).await.contains(&other.id));

    let group = |g: &str| UserFilter { group: Some(g.into()), ..Default::default() };
    assert_eq!(list_all(store, &s, group("staff")).await, sorted(vec![alice, bob]));
    assert_eq!(list_all(store, &s, group("default")).await, sorted(vec![carol, dave, ab, axb, zed]));
    assert_eq!(list_all(store, &s, group("nobody")).await, Vec::<Uuid>::new());

    let active = |a: bool| UserFilter { active: Some(a), ..Default::default() };
    assert_eq!(list_all(store, &s, active(false)).await, vec![bob]);
    assert_eq!(list_all(store, &s, active(true)).await, sorted(vec![alice, carol, dave, ab, axb, zed]));

    let f = UserFilter { query: Some("alice".into()), group: Some("default".into()), active: Some(true) };
    assert_eq!(list_all(store, &s, f).await, sorted(vec![carol, dave]));
    let f2 = UserFilter { group: Some("staff".into()), active: Some(true), ..Default::default() };
    assert_eq!(list_all(store, &s, f2).await, vec![alice]);

    // Filters and paging together.
    let want = sorted(vec![alice, carol, dave]);
    let page = store.list_users(&s, &q("alice"), None, 2).await.expect("list");
    assert_eq!(page.iter().map(|u| u.id).collect::<Vec<_>>(), want[0..2]);
    let page = store.list_users(&s, &q("alice"), Some(want[1]), 2).await.expect("list");
    assert_eq!(page.iter().map(|u| u.id).collect::<Vec<_>>(), want[2..3]);
}

/// `update_user` changes exactly the fields the patch names, sets `updated_at`, keeps
/// the rest, re-keys username and email lookups; `None` for an unknown user.
pub async fn update_user_applies_patch(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
    let patch = UserPatch {
        username: Some(Some(Username::parse("Alicia").expect("u"))),
        email: Some(None),
        group: Some(Group::parse("staff").expect("g")),
        extra: Some(obj(json!({"k": 1, "nested": {"a": [true]}}))),
        active: None,
        confirmation: Some(Some(Confirmation::Failed)),
        confirmed: Some(true),
    };
    let updated = store.update_user(&s, alice.id, &patch, at(5000)).await.expect("update").expect("alice");
    let want = User {
        username: Some(Username::parse("Alicia").expect("u")),
        email: None,
        group: Group::parse("staff").expect("g"),
        extra: obj(json!({"k": 1, "nested": {"a": [true]}})),
        confirmation: Some(Confirmation::Failed),
        confirmed: true,
        updated_at: at(5000),
        ..alice.clone()
    };
    assert_eq!(updated, want);
    assert_eq!(find_id(store, &s, alice.id).await.user, want, "the change is stored");
    assert!(find(store, &s, by_username("alice")).await.is_none());
    assert!(find(store, &s, by_email("alice@example.com")).await.is_none());
    assert_eq!(find(store, &s, by_username("ALICIA")).await.map(|r| r.user.id), Some(alice.id));

    // An empty patch only touches updated_at; confirmation can be cleared.
    let same = store.update_user(&s, alice.id, &UserPatch::default(), at(6000)).await.expect("update");
    assert_eq!(same, Some(User { updated_at: at(6000), ..want.clone() }));
    let patch = UserPatch {
        confirmation: Some(None),
        email: Some(Some(Email::parse("new@example.com").expect("e"))),
        ..Default::default()
    };
    let updated = store.update_user(&s, alice.id, &patch, at(7000)).await.expect("update").expect("alice");
    assert_eq!(updated.confirmation, None);
    assert_eq!(updated.email.as_ref().map(Email::as_str), Some("new@example.com"));
    assert_eq!(updated.created_at, alice.created_at);
    assert_eq!(find(store, &s, by_email("new@example.com")).await.map(|r| r.user.id), Some(alice.id));

    let none = store.update_user(&s, Uuid::now_v7(), &UserPatch::default(), at(8000)).await.expect("update");
    assert!(none.is_none());
}

/// Deactivating a user (`active: Some(false)`) ends all of the user's sessions at once;
/// reactivating brings none back; other users and other patches keep theirs.
pub async fn deactivation_ends_sessions(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), None).await;
    let bob = add_user(store, &s, Some("bob"), None).await;
    let a1 = login_at(store, &s, alice.id, at(1000)).await;
    let a2 = login_at(store, &s, alice.id, at(2000)).await;
    let b1 = login_at(store, &s, bob.id, at(1500)).await;

    let patch = UserPatch { group: Some(Group::parse("g2").expect("g")), ..Default::default() };
    store.update_user(&s, bob.id, &patch, at(2500)).await.expect("update").expect("bob");
    assert!(has_session(store, &s, &b1).await, "other patches end no session");

    let off = UserPatch { active: Some(false), ..Default::default() };
    let updated = store.update_user(&s, alice.id, &off, at(3000)).await.expect("update").expect("alice");
    assert!(!updated.active);
    assert!(!has_session(store, &s, &a1).await);
    assert!(!has_session(store, &s, &a2).await);
    assert!(store.list_sessions(&s, alice.id, at(3000)).await.expect("list").is_empty());
    assert!(has_session(store, &s, &b1).await, "another user's session stays");

    let on = UserPatch { active: Some(true), ..Default::default() };
    store.update_user(&s, alice.id, &on, at(4000)).await.expect("update").expect("alice");
    assert!(!has_session(store, &s, &a1).await, "reactivation restores nothing");
    assert!(find_id(store, &s, alice.id).await.user.active);
}

/// `delete_user` removes the user, their sessions, codes and provider links, keeps
/// their login events, frees their names and identities; a second delete is `false`.
pub async fn delete_user_removes_dependents_keeps_events(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
    let bob = add_user(store, &s, Some("bob"), None).await;
    let a_session = login_at(store, &s, alice.id, at(1000)).await;
    store
        .insert_event(&event(&s, Some(alice.id), at(2000), Outcome::WrongPassword), &[])
        .await
        .expect("event");
    let a_reset = add_code(store, &s, alice.id, CodeKind::Reset, at(3000)).await;
    let a_confirm = add_code(store, &s, alice.id, CodeKind::Confirm, at(3000)).await;
    store.upsert_identity(&identity(&s, alice.id, "github", "gh-1"), &[]).await.expect("identity");
    let b_session = login_at(store, &s, bob.id, at(1000)).await;
    let b_confirm = add_code(store, &s, bob.id, CodeKind::Confirm, at(3000)).await;
    store.upsert_identity(&identity(&s, bob.id, "github", "gh-2"), &[]).await.expect("identity");

    assert!(store.delete_user(&s, alice.id, &[]).await.expect("delete_user"));

    assert!(find(store, &s, UserRef::Id(alice.id)).await.is_none());
    assert!(find(store, &s, by_username("alice")).await.is_none());
    assert!(find(store, &s, by_email("alice@example.com")).await.is_none());
    assert!(!has_session(store, &s, &a_session).await);
    assert!(store.list_sessions(&s, alice.id, at(1000)).await.expect("list").is_empty());
    let now = at(4000);
    assert_eq!(store.redeem_reset_code(&s, &a_reset.code_hash, now, "h", &[]).await.expect("redeem"), None);
    assert_eq!(
        store.redeem_code(&s, CodeKind::Confirm, &a_confirm.code_hash, now, &[]).await.expect("redeem"),
        None
    );
    let github = provider("github");
    assert!(store.get_identity(&s, alice.id, &github).await.expect("get").is_none());
    assert!(store.find_identity(&s, &github, "gh-1").await.expect("find").is_none());
    assert!(store.list_identities(&s, alice.id).await.expect("list").is_empty());
    let events = store.list_events(&s, alice.id, None, 100).await.expect("events");
    assert_eq!(events.len(), 2, "login events outlive the user");

    // Bob is untouched.
    assert!(has_session(store, &s, &b_session).await);
    assert!(store.find_identity(&s, &github, "gh-2").await.expect("find").is_some());
    assert_eq!(
        store.redeem_code(&s, CodeKind::Confirm, &b_confirm.code_hash, now, &[]).await.expect("redeem"),
        Some(bob.id)
    );

    assert!(!store.delete_user(&s, alice.id, &[]).await.expect("delete_user"), "already gone");
    assert!(!store.delete_user(&s, Uuid::now_v7(), &[]).await.expect("delete_user"));

    // Names and identities are free again.
    let again = add_user(store, &s, Some("Alice"), Some("alice@example.com")).await;
    store.upsert_identity(&identity(&s, again.id, "github", "gh-1"), &[]).await.expect("identity is free");
}

/// `set_password_hash` stores the hash and ends every session of the user (no one
/// else's); `false` for an unknown user.
pub async fn set_password_hash_ends_sessions(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let mut rec = user(&s, Some("alice"), None);
    rec.password_hash = Some("old".into());
    store.insert_user(&rec).await.expect("insert");
    let alice = rec.user;
    let bob = add_user(store, &s, Some("bob"), None).await;
    let a1 = login_at(store, &s, alice.id, at(1000)).await;
    let a2 = login_at(store, &s, alice.id, at(2000)).await;
    let b1 = login_at(store, &s, bob.id, at(1000)).await;

    assert!(store.set_password_hash(&s, alice.id, "new", at(3000), &[]).await.expect("set"));
    assert_eq!(find_id(store, &s, alice.id).await.password_hash.as_deref(), Some("new"));
    assert!(!has_session(store, &s, &a1).await);
    assert!(!has_session(store, &s, &a2).await);
    assert!(has_session(store, &s, &b1).await);

    // A user without a password can be given one.
    assert!(store.set_password_hash(&s, bob.id, "bobs", at(3000), &[]).await.expect("set"));
    assert_eq!(find_id(store, &s, bob.id).await.password_hash.as_deref(), Some("bobs"));
    assert!(!has_session(store, &s, &b1).await);

    assert!(!store.set_password_hash(&s, Uuid::now_v7(), "x", at(3000), &[]).await.expect("set"));
}

/// `rehash_password` replaces the hash only while it still equals `old`, and ends no
/// session.
pub async fn rehash_password_compare_and_swap(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let mut rec = user(&s, Some("alice"), None);
    rec.password_hash = Some("h1".into());
    store.insert_user(&rec).await.expect("insert");
    let alice = rec.user;
    let a1 = login_at(store, &s, alice.id, at(1000)).await;
    let hash = |store| async move { find_id(store, &scope("a"), alice.id).await.password_hash };

    assert!(!store.rehash_password(&s, alice.id, "wrong", "h2").await.expect("rehash"));
    assert_eq!(hash(store).await.as_deref(), Some("h1"));
    assert!(store.rehash_password(&s, alice.id, "h1", "h2").await.expect("rehash"));
    assert_eq!(hash(store).await.as_deref(), Some("h2"));
    assert!(has_session(store, &s, &a1).await, "a rehash ends no session");
    assert!(!store.rehash_password(&s, alice.id, "h1", "h3").await.expect("rehash"), "stale old hash");
    assert_eq!(hash(store).await.as_deref(), Some("h2"));

    let bob = add_user(store, &s, Some("bob"), None).await;
    assert!(!store.rehash_password(&s, bob.id, "", "h").await.expect("rehash"), "no password to replace");
    assert!(find_id(store, &s, bob.id).await.password_hash.is_none());
    assert!(!store.rehash_password(&s, Uuid::now_v7(), "h2", "h").await.expect("rehash"));
}
