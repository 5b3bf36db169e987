//! What only the SQLite backend has to prove (the shared behaviour is in conformance.rs):
//! the schema is migrated once and versioned, the file keeps data across opens, several
//! handles (server + CLI) share one file safely, writers wait for another process's lock
//! and report `Unavailable` past the timeout, readers are not blocked by a writer, real
//! constraint violations map to domain conflicts, and user search treats `%`, `_` and `\`
//! literally and folds Unicode case.

use hallpass_core::store::StoreError;
use hallpass_core::*;
use hallpass_sqlite::{SCHEMA_VERSION, SqliteStore};
use hallpass_store_tests::fixtures::*;
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// A plain connection to the file, as a second process (or the `sqlite3` shell) has.
fn raw(path: &Path) -> Connection {
    let c = Connection::open(path).expect("open a raw connection");
    c.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    c
}

fn user_version(path: &Path) -> i64 {
    raw(path).query_row("PRAGMA user_version", [], |r| r.get(0)).expect("user_version")
}

fn by_name(name: &str) -> UserRef {
    UserRef::Username(Username::key_of(name))
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_are_idempotent_and_versioned() {
    let dir = temp();
    let path = dir.path().join("h.db");
    assert!(!path.exists());
    let store = SqliteStore::open(&path).unwrap();
    assert!(path.exists(), "open creates the file");
    assert_eq!(store.path(), path);
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    let mode: String = raw(&path).query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal", "journal mode is persistent in the file");
    drop(store);

    // Opening again (and again) applies nothing and keeps the version.
    for _ in 0..3 {
        SqliteStore::open(&path).unwrap();
        assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    }
    let tables: i64 = raw(&path)
        .query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'users'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(tables, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_schema_is_refused() {
    let dir = temp();
    let path = dir.path().join("h.db");
    SqliteStore::open(&path).unwrap();
    raw(&path).pragma_update(None, "user_version", i64::from(SCHEMA_VERSION) + 1).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(&err, StoreError::Other(m) if m.contains("newer")), "{err:?}");
}

#[test]
fn concurrent_opens_of_a_fresh_file_migrate_once() {
    // Server and CLI starting at the same moment on a file that does not exist yet. The
    // race is narrow (switching the fresh file to WAL once answered SQLITE_BUSY without
    // waiting), so several rounds on fresh files.
    let dir = temp();
    for round in 0..10 {
        let path = dir.path().join(format!("h{round}.db"));
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteStore::open(path).map(drop)
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reopening_keeps_data() {
    let dir = temp();
    let path = dir.path().join("h.db");
    let s = scope("app");
    let (user, session) = {
        let store = SqliteStore::open(&path).unwrap();
        let user = add_user(&store, &s, Some("Alice"), Some("alice@example.com")).await;
        let session = login_at(&store, &s, user.id, at(0)).await;
        (user, session)
    };
    let store = SqliteStore::open(&path).unwrap();
    let found = store.find_user(&s, &by_name("alice")).await.unwrap().unwrap();
    assert_eq!(found.user.id, user.id);
    assert_eq!(found.user.last_login_at, Some(at(0)));
    let (sess, u) = store.find_session(&s, &session.token_hash).await.unwrap().unwrap();
    assert_eq!(sess, session.session);
    assert_eq!(u.id, user.id);
}

#[tokio::test(flavor = "multi_thread")]
async fn from_url_opens_the_named_file() {
    let dir = temp();
    let path = dir.path().join("url.db");
    let store = SqliteStore::from_url(&format!("sqlite://{}", path.display())).unwrap();
    assert_eq!(store.path(), path);
    store.ping().await.unwrap();
    let again = SqliteStore::from_url(&format!("sqlite:{}?mode=rwc", path.display())).unwrap();
    assert_eq!(again.path(), path);
    assert!(SqliteStore::from_url("sqlite::memory:").is_err());
    assert!(SqliteStore::from_url("postgres://localhost/x").is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_handles_on_one_file_see_each_others_writes() {
    // Like the server and a CLI command: two independent stores, one file.
    let dir = temp();
    let path = dir.path().join("h.db");
    let server = SqliteStore::open(&path).unwrap();
    let cli = SqliteStore::open(&path).unwrap();
    let s = scope("app");

    let user = add_user(&cli, &s, Some("bob"), None).await;
    assert!(server.find_user(&s, &UserRef::Id(user.id)).await.unwrap().is_some());

    let session = login_at(&server, &s, user.id, at(0)).await;
    assert!(cli.find_session(&s, &session.token_hash).await.unwrap().is_some());

    // The CLI deactivates the user: the server's next check sees no session at all.
    let patch = UserPatch { active: Some(false), ..Default::default() };
    cli.update_user(&s, user.id, &patch, at(SEC)).await.unwrap().unwrap();
    assert!(server.find_session(&s, &session.token_hash).await.unwrap().is_none());

    // A name taken through one handle is taken for the other.
    let err = server.insert_user(&user_rec(&s, "BOB")).await.unwrap_err();
    assert!(matches!(err, StoreError::UsernameTaken), "{err:?}");
}

fn user_rec(s: &Scope, name: &str) -> UserRecord {
    user(s, Some(name), None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn fifty_registrations_across_two_handles_have_one_winner() {
    let dir = temp();
    let path = dir.path().join("h.db");
    let stores = [Arc::new(SqliteStore::open(&path).unwrap()), Arc::new(SqliteStore::open(&path).unwrap())];
    let s = scope("app");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&stores[i % 2]);
            let s = s.clone();
            let name = if i % 3 == 0 { "Winner" } else { "WINNER" };
            tokio::spawn(async move { store.insert_user(&user_rec(&s, name)).await })
        })
        .collect();
    let (mut ok, mut taken) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::UsernameTaken) => taken += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((ok, taken), (1, 49));
    let all = stores[0].list_users(&s, &UserFilter::default(), None, 100).await.unwrap();
    assert_eq!(all.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_reset_redemption_across_handles_is_single_use() {
    let dir = temp();
    let path = dir.path().join("h.db");
    let a = Arc::new(SqliteStore::open(&path).unwrap());
    let b = Arc::new(SqliteStore::open(&path).unwrap());
    let s = scope("app");
    let user = add_user(a.as_ref(), &s, Some("carol"), None).await;
    let code = add_code(a.as_ref(), &s, user.id, CodeKind::Reset, at(0)).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = if i % 2 == 0 { Arc::clone(&a) } else { Arc::clone(&b) };
            let (s, hash) = (s.clone(), code.code_hash);
            tokio::spawn(async move {
                store.redeem_reset_code(&s, &hash, at(MIN), &format!("hash{i}"), &[]).await
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_writer_waits_for_another_process_lock() {
    let dir = temp();
    let path = dir.path().join("h.db");
    let store = SqliteStore::open(&path).unwrap();
    let s = scope("app");
    let user = add_user(&store, &s, Some("dave"), None).await;

    // Another "process" holds the write lock for a moment.
    let holder_path = path.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let mut c = raw(&holder_path);
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        tx.commit().unwrap();
    });
    locked_rx.recv().unwrap();

    // Reads go on meanwhile (WAL): no waiting for the writer.
    let started = Instant::now();
    assert!(store.find_user(&s, &UserRef::Id(user.id)).await.unwrap().is_some());
    assert!(started.elapsed() < Duration::from_millis(300), "a read waited for the writer");

    // A write waits (busy timeout) and then succeeds.
    let started = Instant::now();
    let patch = UserPatch { group: Some(Group::parse("staff").unwrap()), ..Default::default() };
    store.update_user(&s, user.id, &patch, at(SEC)).await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200), "the write should have waited for the lock");
    holder.join().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_held_past_the_busy_timeout_is_unavailable() {
    let dir = temp();
    let path = dir.path().join("h.db");
    let store = SqliteStore::open(&path).unwrap();
    let s = scope("app");

    let holder_path = path.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut c = raw(&holder_path);
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
        locked_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        tx.rollback().unwrap();
    });
    locked_rx.recv().unwrap();
    let err = store.insert_user(&user_rec(&s, "erin")).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    // The store recovers once the lock is gone.
    store.insert_user(&user_rec(&s, "erin")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn constraint_violations_map_to_conflicts() {
    let dir = temp();
    let path = dir.path().join("h.db");
    let store = SqliteStore::open(&path).unwrap();
    let s = scope("app");
    let alice = add_user(&store, &s, Some("alice"), Some("alice@example.com")).await;
    let bob = add_user(&store, &s, Some("bob"), Some("bob@example.com")).await;

    let err = store.insert_user(&user(&s, Some("ALICE"), None)).await.unwrap_err();
    assert!(matches!(err, StoreError::UsernameTaken), "{err:?}");
    let err = store.insert_user(&user(&s, None, Some("alice@EXAMPLE.com"))).await.unwrap_err();
    assert!(matches!(err, StoreError::EmailTaken), "{err:?}");
    // Both taken: the username is reported, as the reference store does.
    let err = store.insert_user(&user(&s, Some("Bob"), Some("alice@example.com"))).await.unwrap_err();
    assert!(matches!(err, StoreError::UsernameTaken), "{err:?}");
    // Another scope is another namespace.
    store.insert_user(&user(&scope("other"), Some("alice"), Some("alice@example.com"))).await.unwrap();

    let patch =
        UserPatch { email: Some(Some(Email::parse("bob@example.com").unwrap())), ..Default::default() };
    let err = store.update_user(&s, alice.id, &patch, at(SEC)).await.unwrap_err();
    assert!(matches!(err, StoreError::EmailTaken), "{err:?}");

    store.upsert_identity(&identity(&s, alice.id, "github", "gh-1"), &[]).await.unwrap();
    // Re-linking the same identity to the same user is an update, not a conflict.
    let mut relink = identity(&s, alice.id, "github", "gh-1");
    relink.access_token = Some("tok".into());
    store.upsert_identity(&relink, &[]).await.unwrap();
    assert_eq!(
        store.get_identity(&s, alice.id, &provider("github")).await.unwrap().unwrap().access_token.as_deref(),
        Some("tok")
    );
    let err = store.upsert_identity(&identity(&s, bob.id, "github", "gh-1"), &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::IdentityTaken), "{err:?}");

    // The unique indexes themselves, hit directly (not via the store's pre-check), raise
    // exactly the constraint messages the mapping in src/error.rs recognises.
    let c = raw(&path);
    let insert = |name: &str, key: &str, email_key: Option<&str>| {
        c.execute(
            "INSERT INTO users (scope, id, username, username_key, email, email_key, group_name, extra, active, \
             confirmed, created_at, updated_at) VALUES ('app', ?1, ?2, ?3, ?4, ?4, 'default', '{}', 1, 0, 0, 0)",
            (Uuid::now_v7().to_string(), name, key, email_key),
        )
    };
    let msg = |e: rusqlite::Error| match e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(msg(insert("x", "alice", None).unwrap_err()).contains("users.username_key"));
    assert!(msg(insert("y", "y", Some("alice@example.com")).unwrap_err()).contains("users.email_key"));
    let err = c
        .execute(
            "INSERT INTO identities (scope, user_id, provider, client_id, created_at, updated_at) \
             VALUES ('app', ?1, 'github', 'gh-1', 0, 0)",
            [bob.id.to_string()],
        )
        .unwrap_err();
    assert!(msg(err).contains("identities.client_id"));
}

#[tokio::test(flavor = "multi_thread")]
async fn search_treats_like_wildcards_literally_and_folds_unicode_case() {
    let dir = temp();
    let store = SqliteStore::open(dir.path().join("h.db")).unwrap();
    let s = scope("app");
    let percent = add_user(&store, &s, None, Some("100%sure@example.com")).await;
    let plain = add_user(&store, &s, None, Some("100xsure@example.com")).await;
    let under = add_user(&store, &s, Some("a_b"), None).await;
    let axb = add_user(&store, &s, Some("axb"), None).await;
    // Usernames may no longer hold '\', but older rows may.
    let slash = add_user_stored_before_the_rules(&store, &s, "back\\slash").await;
    let elodie = add_user(&store, &s, Some("Élodie"), None).await;

    let find = |q: &str| {
        let store = store.clone();
        let s = s.clone();
        let f = UserFilter { query: Some(q.into()), ..Default::default() };
        async move {
            store.list_users(&s, &f, None, 100).await.unwrap().into_iter().map(|u| u.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(find("0%s").await, vec![percent.id], "'%' matches only itself");
    assert_eq!(find("%").await, vec![percent.id]);
    assert_eq!(find("a_b").await, vec![under.id], "'_' matches only itself");
    assert_eq!(find("_").await, vec![under.id]);
    assert_eq!(find("k\\s").await, vec![slash.id], "the escape character matches itself");
    assert_eq!(find("\\").await, vec![slash.id]);
    assert_eq!(find("ÉLODIE").await, vec![elodie.id], "case folding is Unicode-aware");
    assert_eq!(find("élo").await, vec![elodie.id]);
    let mut both = vec![percent.id, plain.id];
    both.sort();
    assert_eq!(find("SURE@").await, both);
    assert_eq!(find("axb").await, vec![axb.id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_session_data_patches_all_land() {
    let dir = temp();
    let store = Arc::new(SqliteStore::open(dir.path().join("h.db")).unwrap());
    let s = scope("app");
    let user = add_user(store.as_ref(), &s, Some("frank"), None).await;
    let session = login_at(store.as_ref(), &s, user.id, at(0)).await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (store, s, hash) = (Arc::clone(&store), s.clone(), session.token_hash);
            tokio::spawn(async move {
                store.patch_session_data(&s, &hash, &serde_json::json!({ format!("k{i}"): i }), 1 << 20).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap().unwrap();
    }
    let (sess, _) = store.find_session(&s, &session.token_hash).await.unwrap().unwrap();
    assert_eq!(sess.data.len(), 40, "no read-modify-write lost an update");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_user_leaves_no_orphans() {
    let dir = temp();
    let path = dir.path().join("h.db");
    let store = SqliteStore::open(&path).unwrap();
    let s = scope("app");
    let user = add_user(&store, &s, Some("gina"), None).await;
    login_at(&store, &s, user.id, at(0)).await;
    add_code(&store, &s, user.id, CodeKind::Confirm, at(0)).await;
    store.upsert_identity(&identity(&s, user.id, "github", "gh-9"), &[]).await.unwrap();
    assert!(store.delete_user(&s, user.id, &[]).await.unwrap());
    let c = raw(&path);
    for table in ["sessions", "codes", "identities", "users"] {
        let n: i64 = c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0, "{table}");
    }
    let events: i64 = c.query_row("SELECT count(*) FROM login_events", [], |r| r.get(0)).unwrap();
    assert_eq!(events, 1, "events outlive the user");
    let fk: Vec<String> = c
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(fk.is_empty(), "{fk:?}");
}

#[cfg(unix)]
#[test]
fn a_new_database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    let _store = hallpass_sqlite::SqliteStore::open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the database holds password hashes");
}
