//! Throw-away databases for tests: this crate's conformance and MySQL tests, and the HTTP
//! suite of `hallpass-server`. Not for production use (hidden from the documentation).
//!
//! The server is the one `HALLPASS_TEST_MYSQL_URL` names (default
//! `mysql://root@127.0.0.1:3306/test`; the database in it is only used to log in). Each
//! [`TestDatabase`] is a fresh, empty database `hp_t_<uuid>` on that server, so tests run
//! in parallel without seeing each other; dropping it closes the pools made through it
//! and drops the database.
//!
//! When the server cannot be reached, a test is skipped — a notice on stderr, and
//! [`TestDatabase::create`] answers `None` — unless the environment has `CI=true`, where
//! it panics: CI must not pass by skipping.

use crate::MySqlStore;
use hallpass_core::Store;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};
use std::any::Any;
use std::io::Write;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// The environment variable naming the test server.
pub const URL_ENV: &str = "HALLPASS_TEST_MYSQL_URL";
/// The test server when [`URL_ENV`] is unset.
pub const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/test";
/// How long to wait for the server before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The URL of the test server.
pub fn server_url() -> String {
    std::env::var(URL_ENV).ok().filter(|u| !u.trim().is_empty()).unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// Whether unreachable servers must fail the tests (`CI=true`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Writes to the process's stderr directly: the test harness captures `eprintln!` of a
/// passing test (and loses it on `process::exit`), but not this.
fn notice(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// `url` with another database in its path (the query string is kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!("{}{}:***{}", &url[..authority_start], &rest[..colon], &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// A fresh database on the test server, dropped with this value.
pub struct TestDatabase {
    name: String,
    url: String,
    admin: MySqlConnectOptions,
    pools: Mutex<Vec<MySqlPool>>,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase").field("name", &self.name).finish_non_exhaustive()
    }
}

impl TestDatabase {
    /// Creates a fresh, empty database (no schema). `None` when the server cannot be
    /// reached and this is not CI (a notice went to stderr: skip the test); panics in CI.
    pub async fn create() -> Option<TestDatabase> {
        let server = server_url();
        let admin = MySqlConnectOptions::from_str(&server)
            .unwrap_or_else(|e| panic!("{URL_ENV}={} is not a MySQL URL: {e}", redact(&server)));
        let conn = match tokio::time::timeout(CONNECT_TIMEOUT, admin.connect()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return unreachable(&server, &e.to_string()),
            Err(_) => return unreachable(&server, "timed out"),
        };
        let mut conn = conn;
        let name = format!("hp_t_{}", Uuid::now_v7().simple());
        // The name is ours (hex digits); nothing from outside goes into this statement.
        let create = format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin");
        if let Err(e) = conn.execute(AssertSqlSafe(create)).await {
            panic!("cannot create a test database on {}: {e}", redact(&server));
        }
        let _ = conn.close().await;
        Some(TestDatabase { url: with_database(&server, &name), name, admin, pools: Mutex::new(Vec::new()) })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL of the database, to give to a server under test.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A migrated store on the database. Its pool is closed when the database is dropped.
    pub async fn store(&self) -> MySqlStore {
        let store = self.store_unmigrated().await;
        store.migrate().await.expect("migrate the test database");
        store
    }

    /// A store on the database, without migrating it.
    pub async fn store_unmigrated(&self) -> MySqlStore {
        let store = MySqlStore::connect(&self.url).await.expect("connect to the test database");
        self.pools.lock().unwrap_or_else(|e| e.into_inner()).push(store.pool().clone());
        store
    }
}

fn unreachable(server: &str, why: &str) -> Option<TestDatabase> {
    let message = format!(
        "hallpass-mysql tests: the MariaDB/MySQL server at {} cannot be reached ({why}); \
         set {URL_ENV} to a reachable server",
        redact(server)
    );
    if in_ci() {
        panic!("{message} (CI=true: a missing database fails the run)");
    }
    // Once per test binary, not once per test.
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| notice(&format!("{message}. Skipping these tests.")));
    None
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let pools = std::mem::take(&mut *self.pools.lock().unwrap_or_else(|e| e.into_inner()));
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime, where we may not block on a future: a
        // thread of its own with a small runtime of its own does the async work.
        let dropper = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                for pool in pools {
                    // Bounded: the pool's sockets belong to the test's runtime.
                    let _ = tokio::time::timeout(Duration::from_secs(2), pool.close()).await;
                }
                let mut conn = admin.connect().await.map_err(|e| e.to_string())?;
                // A connection still inside a transaction on the database (a test that
                // panicked mid-way) would make DROP wait for its metadata lock: not for long.
                conn.execute("SET SESSION lock_wait_timeout = 10").await.map_err(|e| e.to_string())?;
                let drop = format!("DROP DATABASE IF EXISTS `{name}`");
                conn.execute(AssertSqlSafe(drop)).await.map_err(|e| e.to_string())?;
                let _ = conn.close().await;
                Ok(())
            })
        });
        match dropper.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => notice(&format!("note: test database {} was left behind: {e}", self.name)),
            Err(_) => {
                notice(&format!("note: test database {} was left behind (the dropper panicked)", self.name))
            }
        }
    }
}

/// The `make` of the conformance suite (`conformance!(optional make)`): a migrated store on
/// a fresh database, and the database as the guard; `None` (after the notice) when the
/// server cannot be reached outside CI, so the case is skipped rather than faked.
pub async fn conformance_store() -> Option<(Arc<dyn Store>, Box<dyn Any + Send>)> {
    let db = TestDatabase::create().await?;
    let store = db.store().await;
    Some((Arc::new(store), Box::new(db)))
}

#[cfg(test)]
mod tests {
    use super::{redact, with_database};

    #[test]
    fn urls_get_another_database() {
        assert_eq!(with_database("mysql://root@127.0.0.1:3306/test", "x"), "mysql://root@127.0.0.1:3306/x");
        assert_eq!(with_database("mysql://root@h", "x"), "mysql://root@h/x");
        assert_eq!(
            with_database("mysql://u:p@h/db?ssl-mode=disabled", "x"),
            "mysql://u:p@h/x?ssl-mode=disabled"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("mysql://u:secret@h:1/db"), "mysql://u:***@h:1/db");
        assert_eq!(redact("mysql://root@h/db"), "mysql://root@h/db");
        assert_eq!(redact("mysql://h/db"), "mysql://h/db");
    }
}
