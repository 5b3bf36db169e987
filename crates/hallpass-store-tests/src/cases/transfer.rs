//! Export and import: paging in scope and id order, a round trip that keeps every field,
//! importing again, and conflicts reported while the rest goes in.

use super::*;

/// Asserts that two exports hold the same users, field for field, links included.
fn assert_same_export(got: &[store::ExportedUser], want: &[store::ExportedUser], what: &str) {
    let ids = |v: &[store::ExportedUser]| v.iter().map(|e| e.record.user.id).collect::<Vec<_>>();
    assert_eq!(ids(got), ids(want), "{what}: the users, in order");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.record.user, w.record.user, "{what}: user {}", w.record.user.id);
        assert_eq!(g.record.password_hash, w.record.password_hash, "{what}: hash of {}", w.record.user.id);
        assert_eq!(g.identities, w.identities, "{what}: links of {}", w.record.user.id);
    }
}

/// Every user of the store, exported `page` at a time; also checks each page's size.
async fn export_all(store: &dyn Store, page: u32) -> Vec<store::ExportedUser> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let got = store.export_users(after.clone(), page).await.expect("export_users");
        assert!(got.len() <= page as usize, "a page holds at most `limit` users");
        let Some(last) = got.last() else { break };
        after = Some((last.record.user.scope.clone(), last.record.user.id));
        all.extend(got);
    }
    all
}

/// Stores `record` and links it to each `(provider, client id)`; returns it as an
/// export shows it (links in provider order).
async fn add_exported(
    store: &dyn Store,
    record: UserRecord,
    links: &[(&str, &str)],
    n: i64,
) -> store::ExportedUser {
    store.insert_user(&record).await.expect("insert_user");
    let mut identities = Vec::new();
    for (p, c) in links {
        let link = rich_identity(&record.user.scope, record.user.id, p, c, n);
        store.upsert_identity(&link, &[]).await.expect("upsert_identity");
        identities.push(link);
    }
    identities.sort_by(|a, b| a.provider.cmp(&b.provider));
    store::ExportedUser { record, identities, mfa: Default::default() }
}

/// `export_users` lists every scope's users in (scope, id) order — scopes by their
/// bytes, so "a-b" < "a_c" < "ab" < "b" whatever the database's collation — `limit` at
/// a time, strictly after the cursor (which may name a scope without users), each user
/// whole: record, password hash and every link in provider order.
pub async fn export_pages_in_scope_and_id_order(store: Arc<dyn Store>) {
    let store = store.as_ref();
    assert!(store.export_users(None, 10).await.expect("export").is_empty(), "nothing to export yet");
    let mut want = Vec::new();
    for (k, name) in ["b", "ab", "a_c", "a-b"].into_iter().enumerate() {
        let s = scope(name);
        for i in 0..3i64 {
            let n = k as i64 * 3 + i;
            let record = rich_user(&s, &format!("user{i}"), n);
            let (g, gh) = (format!("g-{n}"), format!("gh-{n}"));
            let links: Vec<(&str, &str)> = match i {
                0 => vec![("google", &g), ("github", &gh)],
                1 => vec![],
                _ => vec![("github", &gh)],
            };
            want.push(add_exported(store, record, &links, n).await);
        }
    }
    // A user logging in or changing meanwhile shows as it is now.
    login_at(store, &scope("ab"), want[3].record.user.id, at(HOUR)).await;
    want[3].record.user.last_login_at = Some(at(HOUR));
    want.sort_by(|a, b| {
        let key = |e: &store::ExportedUser| (e.record.user.scope.as_str().to_owned(), e.record.user.id);
        key(a).cmp(&key(b))
    });
    let scopes: Vec<&str> = want.iter().map(|e| e.record.user.scope.as_str()).collect();
    assert_eq!(scopes[..4], ["a-b", "a-b", "a-b", "a_c"], "scopes in byte order");

    assert_same_export(&export_all(store, 5).await, &want, "pages of 5");
    assert_same_export(&export_all(store, 1).await, &want, "pages of 1");
    let whole = store.export_users(None, 1000).await.expect("export");
    assert_same_export(&whole, &want, "one page");
    let first = store.export_users(None, 5).await.expect("export");
    assert_same_export(&first, &want[..5], "the first page");
    let next = store.export_users(Some((scope("a_c"), want[4].record.user.id)), 5).await.expect("export");
    assert_same_export(&next, &want[5..10], "the second page crosses into the next scope");
    assert!(store.export_users(None, 0).await.expect("export").is_empty(), "limit 0");

    // Cursors naming a scope without users, or past a scope's last id.
    let after_aa = store.export_users(Some((scope("aa"), Uuid::nil())), 100).await.expect("export");
    assert_same_export(&after_aa, &want[6..], "after (aa, nil): ab and b");
    let after_ab = store.export_users(Some((scope("ab"), Uuid::max())), 100).await.expect("export");
    assert_same_export(&after_ab, &want[9..], "after (ab, max): b");
    let before_all = store.export_users(Some((scope("a"), Uuid::max())), 100).await.expect("export");
    assert_same_export(&before_all, &want, "after (a, max): everyone");
    let last = want.last().map(|e| (e.record.user.scope.clone(), e.record.user.id));
    assert!(store.export_users(last, 100).await.expect("export").is_empty(), "nothing after the last");
    assert!(store.export_users(Some((scope("c"), Uuid::nil())), 100).await.expect("export").is_empty());
}

/// What `export_users` gives, imported elsewhere (here: into a fresh scope, under new
/// ids), reads back field for field — ids, every instant, the hash, group, extra,
/// flags and links — and is found by username key, email key and provider link.
pub async fn import_round_trip_keeps_every_field(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let a = scope("a");
    for n in 0..6i64 {
        let name = format!("Ünïcode{n}");
        let mut record = rich_user(&a, &name, n);
        if n == 4 {
            record.user.username = None;
        }
        if n == 5 {
            record.user.email = None;
        }
        let (g, gh) = (format!("g-{n}"), format!("gh-{n}"));
        let links: Vec<(&str, &str)> =
            if n % 2 == 0 { vec![("google", &g), ("github", &gh)] } else { vec![] };
        add_exported(store, record, &links, n).await;
    }
    let exported = export_all(store, 4).await;
    assert_eq!(exported.len(), 6);

    let c = scope("c");
    let batch: Vec<store::ExportedUser> = exported
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.record.user.scope = c.clone();
            e.record.user.id = Uuid::now_v7();
            for link in &mut e.identities {
                link.scope = c.clone();
                link.user_id = e.record.user.id;
            }
            e
        })
        .collect();
    let outcome = store.import_users(&batch).await.expect("import_users");
    assert_eq!(outcome, store::ImportOutcome { inserted: 6, existing: 0, conflicts: vec![] });

    for e in &batch {
        let u = &e.record.user;
        let found = find_id(store, &c, u.id).await;
        assert_eq!(found.user, *u, "the user reads back field for field");
        assert_eq!(found.password_hash, e.record.password_hash, "the hash is kept");
        assert_eq!(store.list_identities(&c, u.id).await.expect("list"), e.identities, "the links are kept");
        if let Some(name) = &u.username {
            let by = UserRef::Username(Username::key_of(&name.as_str().to_uppercase()));
            assert_eq!(find(store, &c, by).await.map(|r| r.user.id), Some(u.id), "found by username");
        }
        if let Some((local, _)) = u.email.as_ref().and_then(|e| e.as_str().split_once('@')) {
            let by = UserRef::Email(Email::key_of(&format!("{local}@EXAMPLE.com")));
            assert_eq!(find(store, &c, by).await.map(|r| r.user.id), Some(u.id), "found by email");
        }
        for link in &e.identities {
            let got = store.find_identity(&c, &link.provider, link.client_id.as_str()).await.expect("find");
            assert_eq!(got.as_ref(), Some(link), "found by provider link");
        }
    }
    let mut by_id = batch.clone();
    by_id.sort_by_key(|e| e.record.user.id);
    let back = store.export_users(Some((scope("b"), Uuid::max())), 100).await.expect("export");
    assert_same_export(&back, &by_id, "the imported scope exports what was imported");
    assert_same_export(&export_all(store, 100).await[..6], &exported, "the source scope is untouched");
}

/// Importing a batch again inserts nothing, counts every user as existing, and leaves
/// every user exactly as it is now (changes made since the first import stay); a batch
/// naming one id twice inserts it once.
pub async fn import_again_changes_nothing(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let batch: Vec<store::ExportedUser> = (0..3i64)
        .map(|n| {
            let record = rich_user(&s, &format!("again{n}"), n);
            let id = record.user.id;
            let identities = vec![
                rich_identity(&s, id, "github", &format!("gh-{n}"), n),
                rich_identity(&s, id, "google", &format!("g-{n}"), n),
            ];
            store::ExportedUser { record, identities, mfa: Default::default() }
        })
        .collect();
    let first = store.import_users(&batch).await.expect("import_users");
    assert_eq!(first, store::ImportOutcome { inserted: 3, existing: 0, conflicts: vec![] });
    assert_same_export(&export_all(store, 10).await, &batch, "the first import");

    let (u0, u1, u2) = (batch[0].record.user.id, batch[1].record.user.id, batch[2].record.user.id);
    let patch = UserPatch { group: Some(Group::parse("changed").expect("g")), ..Default::default() };
    store.update_user(&s, u0, &patch, at(DAY)).await.expect("update").expect("u0");
    assert!(store.delete_identity(&s, u1, &provider("github"), &[]).await.expect("unlink"));
    assert!(store.set_password_hash(&s, u2, "new-hash", at(DAY), &[]).await.expect("set"));
    let before = export_all(store, 10).await;

    let again = store.import_users(&batch).await.expect("import_users");
    assert_eq!(again, store::ImportOutcome { inserted: 0, existing: 3, conflicts: vec![] });
    assert_same_export(&export_all(store, 10).await, &before, "a second import changes nothing");
    assert_eq!(find_id(store, &s, u0).await.user.updated_at, at(DAY));

    let twin = rich_user(&s, "twin", 7);
    let pair = [
        store::ExportedUser { record: twin.clone(), identities: vec![], mfa: Default::default() },
        store::ExportedUser { record: twin.clone(), identities: vec![], mfa: Default::default() },
    ];
    let outcome = store.import_users(&pair).await.expect("import_users");
    assert_eq!(outcome, store::ImportOutcome { inserted: 1, existing: 1, conflicts: vec![] });
    assert_eq!(find_id(store, &s, twin.user.id).await.user, twin.user);
    let empty = store.import_users(&[]).await.expect("import_users");
    assert_eq!(empty, store::ImportOutcome::default());
}

/// A user whose username, email or provider link another user of the scope holds — in
/// the store or earlier in the batch — is reported and not inserted (username checked
/// first, then email, then links); a refused user holds nothing; another scope's
/// names are free; everyone else is inserted, and the holders are untouched.
pub async fn import_reports_conflicts_and_inserts_the_rest(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (a, b) = (scope("a"), scope("b"));
    let holder = user(&a, Some("Taken"), Some("taken@example.com"));
    store.insert_user(&holder).await.expect("insert_user");
    store.upsert_identity(&identity(&a, holder.user.id, "github", "gh-taken"), &[]).await.expect("link");

    let entry = |s: &Scope, username: Option<&str>, email: Option<&str>, links: &[(&str, &str)]| {
        let record = user(s, username, email);
        let identities = links.iter().map(|(p, c)| identity(s, record.user.id, p, c)).collect();
        store::ExportedUser { record, identities, mfa: Default::default() }
    };
    let mut existing = entry(&a, Some("someone-else"), None, &[]);
    existing.record.user.id = holder.user.id;
    let batch = vec![
        entry(&a, Some("first"), Some("first@example.com"), &[("google", "g-1")]), // 0 inserted
        entry(&a, Some("TAKEN"), Some("x1@example.com"), &[]),                     // 1 username
        entry(&a, Some("x2"), Some("taken@EXAMPLE.COM"), &[]),                     // 2 email
        entry(&a, Some("x3"), None, &[("github", "gh-taken")]),                    // 3 link
        entry(&a, Some("dup"), Some("dup-a@example.com"), &[]),                    // 4 inserted
        entry(&a, Some("DUP"), Some("dup-b@example.com"), &[]),                    // 5 username (batch)
        entry(&a, Some("x6"), Some("dup-a@Example.com"), &[]),                     // 6 email (batch)
        entry(&a, None, Some("x7@example.com"), &[("google", "g-1")]),             // 7 link (batch)
        entry(&a, Some("taken"), Some("taken@example.com"), &[]),                  // 8 username first
        entry(&a, Some("x2"), Some("x1@example.com"), &[("gitlab", "gh-taken")]),  // 9 inserted
        entry(&b, Some("taken"), Some("taken@example.com"), &[("github", "gh-taken")]), // 10 inserted
        existing,                                                                  // 11 existing
    ];
    let outcome = store.import_users(&batch).await.expect("import_users");
    let id = |i: usize| batch[i].record.user.id;
    use store::ImportConflict::{Email as E, Identity as I, Username as U};
    assert_eq!(
        outcome,
        store::ImportOutcome {
            inserted: 4,
            existing: 1,
            conflicts: vec![
                (id(1), U),
                (id(2), E),
                (id(3), I),
                (id(5), U),
                (id(6), E),
                (id(7), I),
                (id(8), U)
            ],
        }
    );
    for i in [0, 4, 9, 10] {
        let s = &batch[i].record.user.scope;
        assert_eq!(find_id(store, s, id(i)).await.user, batch[i].record.user, "user {i} inserted");
    }
    for i in [1, 2, 3, 5, 6, 7, 8] {
        assert!(find(store, &a, UserRef::Id(id(i))).await.is_none(), "user {i} refused");
    }
    assert_eq!(find_id(store, &a, holder.user.id).await.user, holder.user, "the holder is untouched");
    let github = provider("github");
    let holder_of = |s: Scope, p: ProviderName, c: &'static str| async move {
        store.find_identity(&s, &p, c).await.expect("find").map(|i| i.user_id)
    };
    assert_eq!(holder_of(a.clone(), github.clone(), "gh-taken").await, Some(holder.user.id));
    assert_eq!(holder_of(b.clone(), github.clone(), "gh-taken").await, Some(id(10)));
    assert_eq!(holder_of(a.clone(), provider("gitlab"), "gh-taken").await, Some(id(9)));
    assert_eq!(holder_of(a.clone(), provider("google"), "g-1").await, Some(id(0)));
    assert_eq!(find(store, &a, by_username("Dup")).await.map(|r| r.user.id), Some(id(4)));
    assert_eq!(find(store, &a, by_email("x1@example.com")).await.map(|r| r.user.id), Some(id(9)));
    assert_eq!(find(store, &b, by_username("TAKEN")).await.map(|r| r.user.id), Some(id(10)));
    assert_eq!(list_all(store, &a, UserFilter::default()).await.len(), 4, "holder and three imported");
}

/// A user's second factors go with the user: an export carries the TOTP (as stored), the
/// unused recovery codes and the passkeys, and an import of the user stores them, the
/// same ones, under the imported user; a user without any exports none.
pub async fn second_factors_travel_with_their_users(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let a = scope("a");
    let at = crate::fixtures::at(1_700_000_000_000);
    let with = user(&a, Some("guarded"), Some("guarded@example.com"));
    let without = user(&a, Some("plain"), None);
    store.insert_user(&with).await.expect("insert_user");
    store.insert_user(&without).await.expect("insert_user");
    let uid = with.user.id;
    assert!(store.enrol_totp(&a, uid, "hp1.sealed-secret", at).await.expect("enrol"));
    let codes: Vec<TokenHash> = (0..3).map(|i| TokenHash::of(&format!("code-{i}"))).collect();
    let change =
        hallpass_core::FactorChange { recovery_codes: codes.clone(), at, keep_session: None, outbox: vec![] };
    assert!(store.accept_totp_step(&a, uid, 42, Some(&change)).await.expect("confirm"));
    let passkey = |id: Uuid, user_id: Uuid, s: &Scope, cred: &[u8]| hallpass_core::PasskeyRecord {
        id,
        scope: s.clone(),
        user_id,
        credential_id: cred.to_vec(),
        name: "Laptop".into(),
        credential: r#"{"cred":{"counter":7}}"#.into(),
        counter: 7,
        backup_eligible: true,
        backup_state: false,
        created_at: at,
        last_used_at: Some(at + time::Duration::minutes(5)),
    };
    let key = passkey(Uuid::now_v7(), uid, &a, b"credential-1");
    assert!(store.insert_passkey(&key, None, &[]).await.expect("insert_passkey"));

    let exported = export_all(store, 10).await;
    let mine = exported.iter().find(|e| e.record.user.id == uid).expect("exported");
    let totp = mine.mfa.totp.as_ref().expect("the TOTP is exported");
    assert_eq!((totp.secret.as_str(), totp.confirmed, totp.last_step), ("hp1.sealed-secret", true, Some(42)));
    let mut hashes: Vec<_> = mine.mfa.recovery_codes.iter().map(|c| c.hash).collect();
    hashes.sort_by_key(|h| h.0);
    let mut want = codes.clone();
    want.sort_by_key(|h| h.0);
    assert_eq!(hashes, want, "the unused recovery codes, as hashes");
    let stored = store.list_passkeys(&a, uid).await.expect("list_passkeys");
    assert_eq!(stored.len(), 1);
    assert_eq!(mine.mfa.passkeys, stored, "the passkey, whole");
    let plain = exported.iter().find(|e| e.record.user.id == without.user.id).expect("exported");
    assert!(plain.mfa.is_empty(), "no factors, none exported");

    // Imported as another user of another scope (as into another database): stored with it.
    let c = scope("c");
    let mut copy = mine.clone();
    copy.record.user.scope = c.clone();
    copy.record.user.id = Uuid::now_v7();
    let new_id = copy.record.user.id;
    copy.mfa.passkeys = vec![passkey(Uuid::now_v7(), new_id, &c, b"credential-1")];
    let outcome = store.import_users(std::slice::from_ref(&copy)).await.expect("import_users");
    assert_eq!(outcome.inserted, 1);
    let state = store.mfa_state(&c, new_id).await.expect("mfa_state");
    assert!(state.totp_confirmed() && state.recovery_codes == 3 && state.passkeys == 1, "{state:?}");
    assert_eq!(state.totp.expect("totp").last_step, Some(42), "a used step stays used");
    assert_eq!(store.list_passkeys(&c, new_id).await.expect("list"), copy.mfa.passkeys);
    assert!(store.use_recovery_code(&c, new_id, &codes[1]).await.expect("use").is_some(), "a code works");
    // Imported again: the user exists and is left as it is (the used code stays used).
    let again = store.import_users(std::slice::from_ref(&copy)).await.expect("import_users");
    assert_eq!((again.inserted, again.existing), (0, 1));
    assert_eq!(store.mfa_state(&c, new_id).await.expect("mfa_state").recovery_codes, 2);
}
