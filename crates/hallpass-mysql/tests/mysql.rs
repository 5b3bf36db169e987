//! What only the MySQL backend has to prove (the shared behaviour is in conformance.rs):
//! migrations are safe to race and idempotent, a ledger of the old numbering is
//! renumbered, every connection gets the session settings the store depends on, keys
//! compare byte for byte (no case, accent or trailing-space folding by a collation), the
//! longest possible keys fit their indexes, same-value updates still count as found,
//! user search escapes its wildcards, and an unreachable server is `Unavailable`.
//!
//! Each test creates its own database (see `hallpass_mysql::testing`); without a
//! reachable server they are skipped (outside CI).

use hallpass_core::store::StoreError;
use hallpass_core::*;
use hallpass_mysql::testing::TestDatabase;
use hallpass_mysql::{MySqlStore, SCHEMA_VERSION};
use hallpass_store_tests::fixtures::*;
use sqlx::Row;

fn by_name(name: &str) -> UserRef {
    UserRef::Username(Username::key_of(name))
}

fn by_email(email: &str) -> UserRef {
    UserRef::Email(Email::key_of(email))
}

async fn tables(store: &MySqlStore) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .expect("list tables")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_migrations_both_succeed_once() {
    let Some(db) = TestDatabase::create().await else { return };
    let (a, b) = (db.store_unmigrated().await, db.store_unmigrated().await);
    assert!(tables(&a).await.is_empty(), "a fresh database is empty");

    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.expect("the first migration");
    rb.expect("the second migration");

    let recorded: Vec<i64> = sqlx::query_scalar("SELECT version FROM hallpass_migrations ORDER BY version")
        .fetch_all(a.pool())
        .await
        .expect("versions");
    assert_eq!(recorded, (1..=SCHEMA_VERSION).collect::<Vec<_>>(), "each migration recorded once");
    assert_eq!(
        tables(&a).await,
        [
            "admin_audit",
            "api_keys",
            "codes",
            "flows",
            "hallpass_changes",
            "hallpass_migrations",
            "identities",
            "login_events",
            "mfa_recovery_codes",
            "mfa_totp",
            "outbox",
            "passkeys",
            "sessions",
            "throttles",
            "users",
            "webhook_endpoints"
        ]
    );
    let engines: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT CAST(engine AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE()",
    )
    .fetch_all(a.pool())
    .await
    .expect("engines");
    assert_eq!(engines, ["InnoDB"]);

    // Again, and again at once: nothing left to do, nothing breaks, the data stays.
    add_user(&a, &scope("s"), Some("alice"), None).await;
    a.migrate().await.expect("a third migration");
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.expect("racing again");
    rb.expect("racing again");
    assert!(b.find_user(&scope("s"), &by_name("alice")).await.expect("find").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_migration_stopped_half_way_is_completed() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = db.store_unmigrated().await;
    // As if an earlier run died after its first statements: some tables, no record.
    sqlx::raw_sql(
        "CREATE TABLE api_keys (id CHAR(36) NOT NULL PRIMARY KEY, scope VARCHAR(63) NOT NULL, name TEXT, \
         key_hash BINARY(32) NOT NULL, created_at BIGINT NOT NULL, revoked_at BIGINT, \
         UNIQUE KEY api_keys_key_hash (key_hash)) ENGINE=InnoDB",
    )
    .execute(store.pool())
    .await
    .expect("a half-made schema");
    store.migrate().await.expect("the migration completes");
    assert_eq!(tables(&store).await.len(), 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edited_applied_migration_is_refused() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = db.store().await;
    sqlx::query("UPDATE hallpass_migrations SET checksum = REPEAT(X'00', 32) WHERE version = 1")
        .execute(store.pool())
        .await
        .expect("tamper");
    assert!(matches!(store.migrate().await, Err(StoreError::Other(_))));
}

/// SHA-256 of the MariaDB migrations 4 (change log) and 5 (decoy codes) as numbered up to
/// commit 46f87f7 (`git show 46f87f7:crates/hallpass-mysql/migrations/0004_changes.sql |
/// sha256sum`, likewise for `0005_decoy_codes.sql`), as the ledgers of databases
/// migrated by those builds hold them.
const OLD_4_CHANGES: &str = "961d08a5db2dd0bc5f01297dddecd8ee93b0c017676adcfebbb43e15698d193a";
const OLD_5_DECOY_CODES: &str = "5c860a2c38050252f7699a3e89f47fcad9a104e432a272fb6fdd811045e26b9a";

/// The ledger as (version, description, hex checksum), in version order.
async fn ledger(store: &MySqlStore) -> Vec<(i64, String, String)> {
    sqlx::query_as(
        "SELECT version, CAST(description AS CHAR), LOWER(HEX(checksum)) FROM hallpass_migrations \
         ORDER BY version",
    )
    .fetch_all(store.pool())
    .await
    .expect("ledger")
}

/// Whether `codes.user_id` takes NULL (what the decoy codes migration does).
async fn code_owner_nullable(store: &MySqlStore) -> bool {
    let nullable: String = sqlx::query_scalar(
        "SELECT CAST(is_nullable AS CHAR) FROM information_schema.columns \
         WHERE table_schema = DATABASE() AND table_name = 'codes' AND column_name = 'user_id'",
    )
    .fetch_one(store.pool())
    .await
    .expect("column");
    nullable == "YES"
}

/// Rewrites a migrated database's ledger into the numbering of builds up to commit
/// 46f87f7: 4 = changes, and with `decoys` 5 = decoy codes; without, the decoy codes are
/// undone and unrecorded, as on a database those builds migrated before 0005 existed.
async fn make_old_ledger(store: &MySqlStore, decoys: bool) {
    let pool = store.pool();
    let run = |sql: String| async move {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(pool).await.expect("old ledger")
    };
    // Those builds predate 0006 to 0012 as well (0008 to 0012 are idempotent: their
    // records go).
    run("DELETE FROM hallpass_migrations WHERE version = 12".into()).await;
    run("DELETE FROM hallpass_migrations WHERE version = 11".into()).await;
    run("DELETE FROM hallpass_migrations WHERE version = 10".into()).await;
    run("DELETE FROM hallpass_migrations WHERE version = 9".into()).await;
    run("DELETE FROM hallpass_migrations WHERE version = 8".into()).await;
    run("DELETE FROM hallpass_migrations WHERE version = 7".into()).await;
    run("DROP TABLE outbox".into()).await;
    run("DELETE FROM hallpass_migrations WHERE version = 6".into()).await;
    run("ALTER TABLE api_keys DROP COLUMN last_used_at".into()).await;
    run("UPDATE hallpass_migrations SET version = -1 WHERE version = 4".into()).await;
    run(format!(
        "UPDATE hallpass_migrations SET version = 4, description = 'changes', checksum = UNHEX('{OLD_4_CHANGES}') \
         WHERE version = 5"
    ))
    .await;
    if decoys {
        run(format!(
            "UPDATE hallpass_migrations SET version = 5, description = 'decoy codes', \
             checksum = UNHEX('{OLD_5_DECOY_CODES}') WHERE version = -1"
        ))
        .await;
    } else {
        run("DELETE FROM hallpass_migrations WHERE version = -1".into()).await;
        run("ALTER TABLE codes MODIFY user_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL".into()).await;
    }
}

/// What a store opened on a renumbered database must still do: users, a decoy code (the
/// decoy codes migration), a published change (the change log migration).
async fn still_works(store: &MySqlStore) {
    add_user(store, &scope("s"), Some("alice"), None).await;
    assert!(store.find_user(&scope("s"), &by_name("alice")).await.expect("find").is_some());
    sqlx::query("INSERT INTO codes VALUES (REPEAT(X'01', 32), 's', NULL, 'reset', 0, 1)")
        .execute(store.pool())
        .await
        .expect("a code with no user");
    store.publish_change(&hallpass_core::store::Change::All).await.expect("publish");
    let logged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hallpass_changes")
        .fetch_one(store.pool())
        .await
        .expect("change log");
    assert!(logged >= 1);
}

/// A database migrated by a build that numbered the change log 4 and the decoy codes 5
/// opens: its ledger is rewritten to the shared numbering (the same rows a fresh
/// database gets), once, and nothing is applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_ledger_is_renumbered() {
    let Some(fresh) = TestDatabase::create().await else { return };
    let Some(db) = TestDatabase::create().await else { return };
    let want = ledger(&fresh.store().await).await;
    assert_eq!(
        want.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        [
            "init",
            "throttles",
            "admin",
            "decoy codes",
            "changes",
            "key last used",
            "outbox",
            "oidc",
            "mfa",
            "change stream",
            "webhooks",
            "passkeys"
        ]
    );

    let old = db.store().await;
    make_old_ledger(&old, true).await;
    let before = ledger(&old).await;
    assert_eq!((before[3].0, before[3].2.as_str()), (4, OLD_4_CHANGES));
    assert_eq!((before[4].0, before[4].2.as_str()), (5, OLD_5_DECOY_CODES));

    let store = db.store().await; // migrates
    let got = ledger(&store).await;
    assert_eq!(got, want, "the ledger of a fresh database");
    store.migrate().await.expect("again: nothing to do");
    assert_eq!(ledger(&store).await, got);
    assert!(code_owner_nullable(&store).await);
    still_works(&store).await;
}

/// A database migrated by such a build before the decoy codes existed (versions 1 to 4,
/// 4 being the change log) opens: the change log becomes 5, and the decoy codes are
/// applied and recorded as 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_ledger_without_decoy_codes_gets_them_as_version_4() {
    let Some(fresh) = TestDatabase::create().await else { return };
    let Some(db) = TestDatabase::create().await else { return };
    let want = ledger(&fresh.store().await).await;

    let old = db.store().await;
    make_old_ledger(&old, false).await;
    assert_eq!(ledger(&old).await.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(!code_owner_nullable(&old).await);

    let store = db.store().await; // migrates
    assert_eq!(ledger(&store).await, want);
    assert!(code_owner_nullable(&store).await, "decoy codes applied");
    still_works(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_connection_has_the_session_settings() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = db.store().await;
    // Several connections at once, so more than one pooled connection is checked.
    let mut conns = Vec::new();
    for _ in 0..3 {
        conns.push(store.pool().acquire().await.expect("acquire"));
    }
    for conn in &mut conns {
        let row = sqlx::query(
            "SELECT CAST(@@SESSION.sql_mode AS CHAR), CAST(@@character_set_connection AS CHAR), \
             CAST(@@collation_connection AS CHAR), CAST(@@SESSION.time_zone AS CHAR), \
             @@SESSION.innodb_lock_wait_timeout",
        )
        .fetch_one(&mut **conn)
        .await
        .expect("settings");
        let sql_mode: String = row.get(0);
        assert!(sql_mode.contains("STRICT_ALL_TABLES"), "{sql_mode}");
        assert!(sql_mode.contains("NO_ENGINE_SUBSTITUTION"), "{sql_mode}");
        assert!(
            !sql_mode.contains("NO_BACKSLASH_ESCAPES") && !sql_mode.contains("ANSI_QUOTES"),
            "{sql_mode}"
        );
        assert_eq!(row.get::<String, _>(1), "utf8mb4");
        assert_eq!(row.get::<String, _>(2), "utf8mb4_bin");
        assert_eq!(row.get::<String, _>(3), "+00:00");
        assert_eq!(row.get::<u64, _>(4), 10);
        // MariaDB before 11.1 names the variable tx_isolation, MySQL 8 transaction_isolation.
        let isolation = match sqlx::query_scalar::<_, String>("SELECT CAST(@@SESSION.tx_isolation AS CHAR)")
            .fetch_one(&mut **conn)
            .await
        {
            Ok(level) => level,
            Err(_) => sqlx::query_scalar("SELECT CAST(@@SESSION.transaction_isolation AS CHAR)")
                .fetch_one(&mut **conn)
                .await
                .expect("isolation"),
        };
        assert_eq!(isolation, "READ-COMMITTED");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_compare_byte_for_byte() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = db.store().await;
    let s = scope("a");
    // A case- or accent-insensitive collation would merge each of these pairs.
    let straße = add_user(&store, &s, Some("straße"), Some("Bob@example.com")).await;
    let strasse = add_user(&store, &s, Some("strasse"), Some("bob@example.com")).await;
    let resume = add_user(&store, &s, Some("résumé"), None).await;
    let resume_plain = add_user(&store, &s, Some("resume"), None).await;
    assert_eq!(store.find_user(&s, &by_name("STRASSE")).await.unwrap().map(|r| r.user.id), Some(strasse.id));
    assert_eq!(store.find_user(&s, &by_name("Straße")).await.unwrap().map(|r| r.user.id), Some(straße.id));
    assert_eq!(store.find_user(&s, &by_name("RÉSUMÉ")).await.unwrap().map(|r| r.user.id), Some(resume.id));
    assert_eq!(
        store.find_user(&s, &by_name("resume")).await.unwrap().map(|r| r.user.id),
        Some(resume_plain.id)
    );
    assert_eq!(
        store.find_user(&s, &by_email("Bob@EXAMPLE.com")).await.unwrap().map(|r| r.user.id),
        Some(straße.id)
    );
    assert_eq!(
        store.find_user(&s, &by_email("bob@example.com")).await.unwrap().map(|r| r.user.id),
        Some(strasse.id)
    );
    assert!(store.find_user(&s, &by_email("BOB@example.com")).await.unwrap().is_none());

    // PAD SPACE collations would find "strasse" for "strasse " and call "x" and "x " taken.
    assert!(store.find_user(&s, &UserRef::Username("strasse ".into())).await.unwrap().is_none());
    store.upsert_identity(&identity(&s, strasse.id, "github", "x"), &[]).await.expect("x");
    store
        .upsert_identity(&identity(&s, straße.id, "github", "x "), &[])
        .await
        .expect("'x ' is another client id");
    let found = store.find_identity(&s, &provider("github"), "x ").await.unwrap().expect("x ");
    assert_eq!(found.user_id, straße.id);
    assert_eq!(found.client_id.as_str(), "x ");

    // The group filter is exact too.
    let mut staff = user(&s, Some("staffer"), None);
    staff.user.group = Group::parse("Staff").unwrap();
    store.insert_user(&staff).await.expect("insert");
    let f = |g: &str| UserFilter { group: Some(g.into()), ..Default::default() };
    assert_eq!(store.list_users(&s, &f("Staff"), None, 10).await.unwrap().len(), 1);
    assert!(store.list_users(&s, &f("staff"), None, 10).await.unwrap().is_empty());
    assert!(store.list_users(&s, &f("Staff "), None, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_longest_keys_fit() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = db.store().await;
    let s = scope("a");
    // U+FDFA expands to 18 characters (33 bytes) under NFKC: nine of them make the longest
    // key of that kind a username may have (it must fit a ref, 320 bytes).
    let longest = "\u{FDFA}".repeat(9);
    let u = add_user(&store, &s, Some(&longest), None).await;
    assert_eq!(Username::key_of(&longest).len(), 9 * 33);
    assert!(Username::key_of(&longest).len() <= Username::MAX_KEY_BYTES);
    assert_eq!(store.find_user(&s, &by_name(&longest)).await.unwrap().map(|r| r.user.id), Some(u.id));
    let r = store.insert_user(&user(&s, Some(&longest), None)).await;
    assert!(matches!(r, Err(StoreError::UsernameTaken)), "{r:?}");

    // A 254-character email (64-character local part, 63-character labels).
    let domain = format!("{}.{}.{}.COM", "A".repeat(63), "B".repeat(63), "C".repeat(57));
    let email = format!("{}@{domain}", "l".repeat(64));
    assert_eq!(email.len(), 254);
    let e = add_user(&store, &s, None, Some(&email)).await;
    assert_eq!(store.find_user(&s, &by_email(&email)).await.unwrap().map(|r| r.user.id), Some(e.id));

    // A 255-character client id of four-byte characters, and emoji everywhere.
    let client_id = "😀".repeat(255);
    let mut i = identity(&s, u.id, "github", &client_id);
    i.access_token = Some("token 😀".into());
    store.upsert_identity(&i, &[]).await.expect("a long client id");
    assert_eq!(store.find_identity(&s, &provider("github"), &client_id).await.unwrap(), Some(i));
    let mut emoji = user(&s, Some("😀"), None);
    emoji.user.extra = obj(serde_json::json!({"😀": "𝄞", "n": 1.5}));
    store.insert_user(&emoji).await.expect("emoji");
    assert_eq!(store.find_user(&s, &by_name("😀")).await.unwrap().map(|r| r.user), Some(emoji.user));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_value_writes_still_count_as_found() {
    // MySQL reports changed rows unless the client asks for found rows; the store relies
    // on found rows. These writes change nothing and must still say "found".
    let Some(db) = TestDatabase::create().await else { return };
    let store = db.store().await;
    let s = scope("a");
    let alice = add_user(&store, &s, Some("alice"), None).await;
    assert!(store.set_password_hash(&s, alice.id, "h", at(1), &[]).await.unwrap());
    assert!(store.set_password_hash(&s, alice.id, "h", at(1), &[]).await.unwrap(), "same hash, same instant");
    assert!(store.rehash_password(&s, alice.id, "h", "h").await.unwrap());
    let link = identity(&s, alice.id, "github", "gh-1");
    store.upsert_identity(&link, &[]).await.expect("link");
    store.upsert_identity(&link, &[]).await.expect("the very same link again");
    assert_eq!(store.list_identities(&s, alice.id).await.unwrap(), vec![link]);
    let rec = login_at(&store, &s, alice.id, at(0)).await;
    let first = store.freshen_session(&s, &rec.token_hash, at(10), at(HOUR)).await.unwrap();
    assert_eq!(store.freshen_session(&s, &rec.token_hash, at(10), at(HOUR)).await.unwrap(), first);
    assert!(first.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_escapes_wildcards_and_folds_case() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = db.store().await;
    let s = scope("a");
    let bang = add_user(&store, &s, Some("a!b"), None).await;
    // Usernames may no longer hold '%' or '\', but older rows may.
    let pct = add_user_stored_before_the_rules(&store, &s, "100%").await;
    let under = add_user(&store, &s, Some("x_y"), None).await;
    let back = add_user_stored_before_the_rules(&store, &s, "c\\d").await;
    let umlaut = add_user(&store, &s, Some("ÄRGER"), Some("Öl@EXAMPLE.com")).await;
    let _plain = add_user(&store, &s, Some("axb"), None).await;
    let q = |q: &str| UserFilter { query: Some(q.into()), ..Default::default() };
    let ids = |v: Vec<User>| v.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_users(&s, &q("!"), None, 10).await.unwrap()), vec![bang.id]);
    assert_eq!(ids(store.list_users(&s, &q("a!b"), None, 10).await.unwrap()), vec![bang.id]);
    assert_eq!(ids(store.list_users(&s, &q("0%"), None, 10).await.unwrap()), vec![pct.id]);
    assert_eq!(ids(store.list_users(&s, &q("_"), None, 10).await.unwrap()), vec![under.id]);
    assert_eq!(ids(store.list_users(&s, &q("\\"), None, 10).await.unwrap()), vec![back.id]);
    assert_eq!(ids(store.list_users(&s, &q("ärg"), None, 10).await.unwrap()), vec![umlaut.id]);
    assert_eq!(ids(store.list_users(&s, &q("öl@example"), None, 10).await.unwrap()), vec![umlaut.id]);
    assert!(store.list_users(&s, &q("arg"), None, 10).await.unwrap().is_empty(), "accents are not folded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_servers_are_unavailable() {
    // Port 1 on the loopback refuses connections at once.
    let got = MySqlStore::connect("mysql://root@127.0.0.1:1/test").await;
    assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
    let got = MySqlStore::connect("postgres://nope").await;
    assert!(matches!(got, Err(StoreError::Other(_))), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closed_store_is_unavailable() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = db.store().await;
    store.ping().await.expect("ping");
    store.close().await;
    let got = store.ping().await;
    assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unexpected_duplicates_are_other_and_quote_no_data() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = db.store().await;
    let key = ApiKey {
        id: id_at(at(0)),
        scope: scope("a"),
        name: None,
        created_at: at(0),
        revoked_at: None,
        last_used_at: None,
    };
    let hash = random_hash();
    store.insert_api_key(&key, &hash).await.expect("insert");
    let again = ApiKey { id: id_at(at(1)), ..key.clone() };
    match store.insert_api_key(&again, &hash).await {
        Err(StoreError::Other(msg)) => {
            assert!(msg.contains("api_keys_key_hash"), "{msg}");
            assert!(!msg.contains("Duplicate entry"), "no driver text: {msg}");
        }
        other => panic!("expected Other, got {other:?}"),
    }
    // A login for a user that does not exist is refused, and stores nothing.
    let ghost = session(&scope("a"), uuid::Uuid::now_v7(), at(0), at(HOUR), at(DAY));
    let got = store.insert_login(&new_login(&ghost, None)).await;
    assert!(matches!(got, Err(StoreError::Other(_))), "{got:?}");
    assert!(store.find_session(&scope("a"), &ghost.token_hash).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_of_one_session_all_land() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = std::sync::Arc::new(db.store().await);
    let s = scope("a");
    let alice = add_user(store.as_ref(), &s, Some("alice"), None).await;
    let rec = login_at(store.as_ref(), &s, alice.id, at(0)).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (store, s, hash) = (store.clone(), s.clone(), rec.token_hash);
        tasks.push(tokio::spawn(async move {
            store.patch_session_data(&s, &hash, &serde_json::json!({ format!("k{i}"): i }), 1 << 20).await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("patch").expect("the session");
    }
    let (session, _) = store.find_session(&s, &rec.token_hash).await.unwrap().expect("session");
    assert_eq!(session.data.len(), 20, "no patch overwrote another: {:?}", session.data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_logins_respect_the_cap() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = std::sync::Arc::new(db.store().await);
    let s = scope("a");
    let alice = add_user(store.as_ref(), &s, Some("alice"), None).await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let (store, s) = (store.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            let rec = session(&s, alice.id, at(i * 1000), at(i * 1000 + HOUR), at(i * 1000 + DAY));
            store.insert_login(&new_login(&rec, Some(3))).await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("insert_login");
    }
    let live = store.list_sessions(&s, alice.id, at(0)).await.unwrap();
    assert_eq!(live.len(), 3, "the cap holds under concurrency");
    assert_eq!(store.list_events(&s, alice.id, None, 100).await.unwrap().len(), 30);
}

/// Every kind of write about one user at once: each must succeed (the user-row-first
/// locking order and the deadlock retry), none may surface as `Unavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_writes_on_one_user_all_succeed() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = std::sync::Arc::new(db.store().await);
    let s = scope("a");
    let alice = add_user(store.as_ref(), &s, Some("alice"), Some("alice@example.com")).await;
    let mut tasks: Vec<tokio::task::JoinHandle<Result<(), StoreError>>> = Vec::new();
    for i in 0..12i64 {
        let (st, sc) = (store.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            let rec = session(&sc, alice.id, at(i), at(i + HOUR), at(i + DAY));
            st.insert_login(&new_login(&rec, Some(2))).await?;
            st.freshen_session(&sc, &rec.token_hash, at(i + 1), at(i + 2 * HOUR)).await?;
            st.patch_session_data(&sc, &rec.token_hash, &serde_json::json!({"i": i}), 1 << 20).await?;
            Ok(())
        }));
        let (st, sc) = (store.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            let code = add_code(st.as_ref(), &sc, alice.id, CodeKind::Reset, at(i)).await;
            st.redeem_reset_code(&sc, &code.code_hash, at(i + 1), "h", &[]).await?;
            let confirm = add_code(st.as_ref(), &sc, alice.id, CodeKind::Confirm, at(i)).await;
            st.redeem_code(&sc, CodeKind::Confirm, &confirm.code_hash, at(i + 1), &[]).await?;
            Ok(())
        }));
        let (st, sc) = (store.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            st.set_password_hash(&sc, alice.id, &format!("h{i}"), at(i), &[]).await?;
            st.upsert_identity(&identity(&sc, alice.id, "github", &format!("gh-{i}")), &[]).await?;
            let patch = UserPatch { active: Some(i % 3 != 0), ..Default::default() };
            st.update_user(&sc, alice.id, &patch, at(i)).await?;
            st.delete_sessions(&sc, alice.id, None, &[]).await?;
            st.sweep_expired(at(DAY * 2), 100).await?;
            Ok(())
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("every write succeeds");
    }
}
