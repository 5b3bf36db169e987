//! What the conformance suite cannot say about PostgreSQL in particular: concurrent
//! migrations, a database of an earlier version migrating on, refusing a schema this build does not know, outage behaviour, locale-aware
//! search, and the exactness of the login cap and session-data merges under concurrency.
//! Each test gets its own database (`hallpass_postgres::testing`) and is skipped, with a
//! notice, when the server is unreachable outside CI.

use hallpass_core::store::Store;
use hallpass_core::{StoreError, UserFilter};
use hallpass_postgres::testing::TestDb;
use hallpass_postgres::{ACQUIRE_TIMEOUT, MIGRATION_NAMES, PostgresStore, SCHEMA_VERSION};
use hallpass_store_tests::fixtures::*;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Several processes migrating one fresh database at once all succeed, and the schema is
/// applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_all_succeed() {
    let Some(db) = TestDb::create_unmigrated().await else { return };
    let mut stores = vec![db.store().clone()];
    for _ in 0..3 {
        stores.push(PostgresStore::connect_with(db.options().clone()).await.expect("connect"));
    }
    let tasks: Vec<_> =
        stores.iter().cloned().map(|s| tokio::spawn(async move { s.migrate().await })).collect();
    for task in tasks {
        task.await.expect("task").expect("a racing migrate succeeds");
    }
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM hallpass_migrations")
        .fetch_one(db.store().pool())
        .await
        .expect("count");
    assert_eq!(applied, SCHEMA_VERSION, "each migration recorded once");
    db.store().migrate().await.expect("migrating again is a no-op");
    db.store().ping().await.expect("ping");
    for s in &stores[1..] {
        s.close().await;
    }
}

/// A database migrated by a build before `0005_changes` (versions 1 to 4 recorded) takes
/// the comment-only fifth migration and the later ones: the ledger then names every
/// migration of [`MIGRATION_NAMES`] (the list every backend shares), and the data stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_at_version_4_takes_the_empty_fifth() {
    let Some(db) = TestDb::create().await else { return };
    let pool = db.store().pool();
    add_user(db.store(), &scope("s"), Some("alice"), None).await;
    sqlx::query("DELETE FROM hallpass_migrations WHERE version >= 5").execute(pool).await.expect("as of 4");
    sqlx::query("ALTER TABLE api_keys DROP COLUMN last_used_at").execute(pool).await.expect("before 0006");
    sqlx::query("DROP TABLE outbox").execute(pool).await.expect("before 0007");
    sqlx::query("DROP TABLE flows").execute(pool).await.expect("before 0008");
    sqlx::query("ALTER TABLE identities DROP COLUMN refresh_token").execute(pool).await.expect("before 0008");
    sqlx::query("DROP TABLE mfa_totp, mfa_recovery_codes").execute(pool).await.expect("before 0009");
    sqlx::query("ALTER TABLE sessions DROP COLUMN amr").execute(pool).await.expect("before 0009");
    sqlx::query("DROP TABLE passkeys").execute(pool).await.expect("before 0012");
    sqlx::query("DROP TABLE webhook_endpoints").execute(pool).await.expect("before 0011");
    db.store().migrate().await.expect("migrate");
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM hallpass_migrations ORDER BY version")
        .fetch_all(pool)
        .await
        .expect("names");
    assert_eq!(names, MIGRATION_NAMES);
    assert_eq!(SCHEMA_VERSION, 12);
    let users = db.store().list_users(&scope("s"), &UserFilter::default(), None, 10).await.expect("list");
    assert_eq!(users.len(), 1);
}

/// A database migrated by a newer hallpass (a migration this build does not know), or
/// with an edited migration, is refused, and nothing is changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_refuses_unknown_or_edited_migrations() {
    let Some(db) = TestDb::create().await else { return };
    let pool = db.store().pool();
    sqlx::query("INSERT INTO hallpass_migrations (version, name, checksum) VALUES (999, '0999_future', '')")
        .execute(pool)
        .await
        .expect("insert");
    let err = db.store().migrate().await.expect_err("a newer schema is refused");
    assert!(matches!(&err, StoreError::Other(m) if m.contains("999")), "{err:?}");

    sqlx::query("DELETE FROM hallpass_migrations WHERE version = 999").execute(pool).await.expect("delete");
    sqlx::query("UPDATE hallpass_migrations SET checksum = '\\x00' WHERE version = 1")
        .execute(pool)
        .await
        .expect("update");
    let err = db.store().migrate().await.expect_err("an edited migration is refused");
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
}

/// No server: `connect` fails with `Unavailable` (503 material), within the acquire
/// timeout. Needs no database.
#[tokio::test]
async fn unreachable_server_is_unavailable_within_the_timeout() {
    let started = Instant::now();
    let err = PostgresStore::connect("postgres://postgres@127.0.0.1:1/nothing").await.expect_err("no server");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < ACQUIRE_TIMEOUT + Duration::from_secs(3), "took {:?}", started.elapsed());

    let err = PostgresStore::connect("postgres://[::1").await.expect_err("not a URL");
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
}

/// Connections killed under the store (a database restart, a failover) cost at most a
/// call each, answered `Unavailable`, never `Other`; the pool then recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_are_unavailable_then_recover() {
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().clone();
    for _ in 0..4 {
        store.ping().await.expect("ping");
    }
    let admin = PostgresStore::connect(&hallpass_postgres::testing::admin_url()).await.expect("admin");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(db.name())
        .execute(admin.pool())
        .await
        .expect("terminate");
    admin.close().await;
    let mut recovered = false;
    for _ in 0..(hallpass_postgres::MAX_CONNECTIONS + 2) {
        match store.ping().await {
            Ok(()) => {
                recovered = true;
                break;
            }
            Err(StoreError::Unavailable(_)) => {}
            Err(e) => panic!("a dropped connection must read as Unavailable, got {e:?}"),
        }
    }
    assert!(recovered, "the pool replaces dead connections");
}

/// The search folds case beyond ASCII where the database's locale can (any UTF-8 locale).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_folds_non_ascii_case() {
    let Some(db) = TestDb::create().await else { return };
    let ctype: String =
        sqlx::query_scalar("SHOW lc_ctype").fetch_one(db.store().pool()).await.expect("ctype");
    if matches!(ctype.as_str(), "C" | "POSIX") {
        eprintln!("lc_ctype is {ctype}: ILIKE folds ASCII only; nothing to check");
        return;
    }
    let store = db.store();
    let s = scope("a");
    let elodie = add_user(store, &s, Some("Élodie"), Some("ÉLODIE@Example.com")).await;
    for q in ["élo", "ÉLO", "éLODIE@example", "odie"] {
        let filter = UserFilter { query: Some(q.into()), ..Default::default() };
        let found = store.list_users(&s, &filter, None, 10).await.expect("list");
        assert_eq!(found.iter().map(|u| u.id).collect::<Vec<_>>(), vec![elodie.id], "query {q}");
    }
    let filter = UserFilter { query: Some("\\".into()), ..Default::default() };
    assert!(store.list_users(&s, &filter, None, 10).await.expect("list").is_empty(), "'\\' is literal");
}

/// Concurrent logins of one user with a cap leave exactly the cap's worth of sessions
/// (the user-row lock in `insert_login` serialises them).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_logins_respect_the_cap() {
    let Some(db) = TestDb::create().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().clone());
    let s = scope("a");
    let alice = add_user(store.as_ref(), &s, Some("alice"), None).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, s) = (store.clone(), s.clone());
            tokio::spawn(async move {
                let rec = session(&s, alice.id, at(i * 1000), at(i * 1000 + HOUR), at(i * 1000 + DAY));
                store.insert_login(&new_login(&rec, Some(3))).await.expect("insert_login");
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let live = store.list_sessions(&s, alice.id, at(20_000)).await.expect("list");
    assert_eq!(live.len(), 3, "exactly the cap survives");
}

/// The login statement's snapshot is taken before it waits for the user's row lock; when
/// the login holding that lock commits meanwhile, the statement writes nothing and runs
/// again, so the cap counts the other login's session too (ends exactly the oldest).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_racing_another_runs_again_and_keeps_the_cap_exact() {
    let Some(db) = TestDb::create().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().clone());
    let s = scope("a");
    let alice = add_user(store.as_ref(), &s, Some("alice"), None).await;
    let first = session(&s, alice.id, at(1000), at(DAY), at(DAY));
    store.insert_login(&new_login(&first, Some(2))).await.expect("first login");
    // Another login of alice, not yet committed: her row updated, its session added.
    let mut other = db.store().pool().begin().await.expect("begin");
    let ms = |t| hallpass_core::clock::to_unix_ms(at(t));
    sqlx::query("UPDATE users SET last_login_at = $2 WHERE scope = 'a' AND id = $1::text::uuid")
        .bind(alice.id.to_string())
        .bind(ms(2000))
        .execute(&mut *other)
        .await
        .expect("update");
    sqlx::query(
        "INSERT INTO sessions (id, scope, user_id, token_hash, created_at, last_seen_at, expires_at, \
         absolute_expires_at) VALUES (gen_random_uuid(), 'a', $1::text::uuid, $2, $3, $3, $4, $4)",
    )
    .bind(alice.id.to_string())
    .bind(random_hash().as_bytes().to_vec())
    .bind(ms(2000))
    .bind(ms(DAY))
    .execute(&mut *other)
    .await
    .expect("insert");
    let third = session(&s, alice.id, at(3000), at(DAY), at(DAY));
    let racing = {
        let (store, third) = (store.clone(), third.clone());
        tokio::spawn(async move { store.insert_login(&new_login(&third, Some(2))).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!racing.is_finished(), "the login waits for the other one's row lock");
    other.commit().await.expect("commit");
    let stored = racing.await.expect("task").expect("insert_login");
    assert_eq!(stored.ended, 1, "the first session ended");
    assert!(stored.published, "told other processes in its own transaction");
    let live = store.list_sessions(&s, alice.id, at(5000)).await.expect("list");
    assert_eq!(live.len(), 2, "exactly the cap survives: {live:?}");
    assert_eq!(live[0].id, third.session.id);
    assert!(store.find_session(&s, &first.token_hash).await.expect("find").is_none(), "the oldest ended");
}

/// Concurrent merge patches of one session all land (read-modify-write under FOR UPDATE).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_session_patches_all_land() {
    let Some(db) = TestDb::create().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().clone());
    let s = scope("a");
    let alice = add_user(store.as_ref(), &s, Some("alice"), None).await;
    let rec = login_at(store.as_ref(), &s, alice.id, at(0)).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, s, hash) = (store.clone(), s.clone(), rec.token_hash);
            tokio::spawn(async move {
                let patch = json!({ format!("k{i}"): i, "nested": { format!("n{i}"): true } });
                store.patch_session_data(&s, &hash, &patch, 1 << 20).await.expect("patch").expect("session");
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let (session, _) = store.find_session(&s, &rec.token_hash).await.expect("find").expect("session");
    assert_eq!(session.data.len(), 21, "20 keys and the nested object");
    assert_eq!(session.data["nested"].as_object().map(|o| o.len()), Some(20));
}

/// JSON that jsonb cannot hold (a NUL character in a string) is refused as a storage
/// error, not silently altered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonb_refuses_nul_characters() {
    let Some(db) = TestDb::create().await else { return };
    let s = scope("a");
    let mut rec = user(&s, Some("alice"), None);
    rec.user.extra = obj(json!({"bad": "a\u{0}b"}));
    let err = db.store().insert_user(&rec).await.expect_err("refused");
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
}

/// Anyone who may `NOTIFY` can put any text on the change channel. Malformed messages (a
/// 64-byte non-ASCII "session hash" once panicked the listener, silently ending
/// cross-process invalidation) each drop every cached copy, and the changes after them
/// still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_change_messages_never_stop_the_listener() {
    use hallpass_core::store::Change;
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().clone();
    let mut rx = store.changes().expect("PostgreSQL has a change channel");
    // A liveness bound, not a timing claim: on a loaded machine the listener's first
    // connection alone has taken over 5 s.
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("in time").expect("open")
    };
    // The listener says `All` once it listens; wait for that before sending.
    assert_eq!(next().await, Change::All);
    let hostile =
        [format!("s:€{}", "a".repeat(61)), "s:".to_owned(), "u:not-a-uuid".to_owned(), "ünïcode".to_owned()];
    for payload in &hostile {
        sqlx::query("SELECT pg_notify('hallpass_changes', $1)")
            .bind(payload)
            .execute(store.pool())
            .await
            .expect("notify");
        assert_eq!(next().await, Change::All, "{payload:?}");
    }
    let real = Change::user(&hallpass_core::types::Scope::default_scope(), uuid::Uuid::now_v7());
    store.publish_change(&real).await.expect("publish");
    assert_eq!(next().await, real, "invalidation still works");
}
