//! Test support (hidden from the docs): a fresh, migrated database per test on the
//! machine's PostgreSQL, dropped when the test ends. Used by this crate's tests and meant
//! for the HTTP test suite too.
//!
//! - The server: `HALLPASS_TEST_POSTGRES_URL`, default
//!   `postgres://postgres@127.0.0.1:5432/test`. That URL is only the *admin* connection:
//!   each [`TestDb`] creates its own database `hp_t_<uuid>` through it, so tests running
//!   in parallel (or several test processes) never see each other's rows.
//! - Dropping a [`TestDb`] closes its store's pool and drops the database
//!   (`DROP DATABASE ... WITH (FORCE)`, which also ends connections something still holds).
//!   `Drop` cannot await, so the drop runs on a helper thread with its own small runtime,
//!   joined before `Drop` returns (a database is gone when its test ends).
//! - When the server cannot be reached, a test is skipped, not failed: [`TestDb::create`]
//!   returns `None` after a notice on stderr — unless `CI=true`, where a missing service
//!   is a failure and it panics. A server that answers but refuses (bad credentials, no
//!   such admin database) always panics: that is a broken setup, not an absent one.

use crate::PostgresStore;
use hallpass_core::Store;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use std::any::Any;
use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The variable naming the admin connection.
pub const URL_VAR: &str = "HALLPASS_TEST_POSTGRES_URL";
/// The admin connection when [`URL_VAR`] is unset.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How long opening the admin connection may take before the server counts as absent.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// The admin connection's URL.
pub fn admin_url() -> String {
    std::env::var(URL_VAR).ok().filter(|u| !u.is_empty()).unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// Whether this run is CI (`CI=true`), where a missing database is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Writes to the process's stderr directly: the test harness captures `eprintln!`, and a
/// skipped test should be visible without `--nocapture`.
fn notice(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Opens the admin connection; `None` when the server is unreachable (and not in CI).
async fn admin(options: &PgConnectOptions) -> Option<PgConnection> {
    let url = admin_url();
    let failure = match tokio::time::timeout(REACH_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => return Some(conn),
        Ok(Err(e @ (sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut))) => e.to_string(),
        Err(_) => format!("no answer within {REACH_TIMEOUT:?}"),
        Ok(Err(e)) => panic!("PostgreSQL at {url} answered but refused the admin connection: {e}"),
    };
    if in_ci() {
        panic!("PostgreSQL is not reachable at {url} ({failure}) and CI=true: the service is missing");
    }
    notice(&format!(
        "NOTICE: PostgreSQL is not reachable at {url} ({failure}); skipping this PostgreSQL test \
         (set {URL_VAR}, or start the server)"
    ));
    None
}

/// A database of its own for one test, with a store connected to it.
pub struct TestDb {
    name: String,
    admin: PgConnectOptions,
    options: PgConnectOptions,
    store: PostgresStore,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("name", &self.name).finish_non_exhaustive()
    }
}

impl TestDb {
    /// A fresh, migrated database; `None` when the server is unreachable outside CI.
    pub async fn create() -> Option<TestDb> {
        let db = Self::create_unmigrated().await?;
        db.store.migrate().await.expect("migrating the test database");
        Some(db)
    }

    /// A fresh, empty database (no schema yet); `None` when the server is unreachable
    /// outside CI.
    pub async fn create_unmigrated() -> Option<TestDb> {
        let url = admin_url();
        let admin = PgConnectOptions::from_str(&url)
            .unwrap_or_else(|e| panic!("{URL_VAR} is not a PostgreSQL URL ({e})"))
            .application_name("hallpass-tests");
        let mut conn = crate::testing::admin(&admin).await?;
        let name = format!("hp_t_{}", uuid::Uuid::now_v7().simple());
        // The name is ours (hex and '_'), so quoting it is enough; DDL takes no parameters.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("creating the test database {name}: {e}"));
        let _ = conn.close().await;
        let options = admin.clone().database(&name).application_name("hallpass-tests");
        let store = PostgresStore::connect_with(options.clone())
            .await
            .unwrap_or_else(|e| panic!("connecting to the test database {name}: {e}"));
        Some(TestDb { name, admin, options, store })
    }

    /// The store on this database.
    pub fn store(&self) -> &PostgresStore {
        &self.store
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL of this database (for a server under test's `HALLPASS_DATABASE_URL`).
    pub fn url(&self) -> String {
        self.options.to_url_lossy().to_string()
    }

    /// The connect options of this database (to open more stores or connections on it).
    pub fn options(&self) -> &PgConnectOptions {
        &self.options
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Close the pool first, on the runtime its connections belong to, so they end with
        // a proper goodbye instead of being killed. Only possible from a multi-threaded
        // runtime (block_in_place); elsewhere the forced drop below ends them.
        if let Ok(handle) = tokio::runtime::Handle::try_current()
            && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            let pool = self.store.pool().clone();
            tokio::task::block_in_place(|| {
                let _ = handle.block_on(tokio::time::timeout(Duration::from_secs(5), pool.close()));
            });
        } else {
            // Marks the pool closed; dropping the returned future does not undo that.
            drop(self.store.pool().close());
        }
        let (name, admin) = (self.name.clone(), self.admin.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let mut conn = PgConnection::connect_with(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => notice(&format!("WARNING: could not drop the test database {}: {e}", self.name)),
            Err(_) => notice(&format!("WARNING: dropping the test database {} panicked", self.name)),
        }
    }
}

/// The `make` of the conformance suite (`conformance!(optional make)`): a store on a fresh
/// database and the [`TestDb`] as the guard that drops it; `None` (after a notice) when the
/// server is unreachable outside CI, so the case is skipped, not faked.
pub async fn conformance_store() -> Option<(Arc<dyn Store>, Box<dyn Any + Send>)> {
    let db = TestDb::create().await?;
    Some((Arc::new(db.store().clone()), Box::new(db)))
}
