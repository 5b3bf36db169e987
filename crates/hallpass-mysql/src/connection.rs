//! Opening: the database URL, the pool and the settings every connection gets, and why.
//!
//! The pool holds up to [`MAX_CONNECTIONS`], waits at most [`ACQUIRE_TIMEOUT`] for one
//! (an outage answers 503 instead of hanging) and pings only connections idle for
//! [`PING_WHEN_IDLE_FOR`].
//!
//! Every connection (pooled or the migrator's) starts with:
//!
//! - `SET NAMES utf8mb4 COLLATE utf8mb4_bin`: four-byte UTF-8 both ways (MySQL's `utf8` is
//!   three-byte and would mangle emoji), and string parameters compare exactly;
//! - strict SQL mode (`STRICT_ALL_TABLES`, ...): a value that does not fit is an error,
//!   never silently truncated or replaced by a default;
//! - `time_zone = '+00:00'` (sqlx's default; we store no TIMESTAMPs anyway);
//! - `innodb_lock_wait_timeout = 10`: a request waiting on a row lock gives up after 10 s
//!   with `Unavailable` instead of InnoDB's default 50 s;
//! - **`READ COMMITTED`** isolation. Every read-modify-write here locks what it reads
//!   (`SELECT ... FOR UPDATE`, or an `UPDATE` that locks the row it changes), and locking
//!   reads see the latest committed data at any isolation level; no method needs a
//!   snapshot spanning several plain reads. So REPEATABLE READ (InnoDB's default) would
//!   buy nothing and cost next-key and gap locks: with it, the concurrent logins, code
//!   redemptions and registrations of the conformance suite lock ranges instead of rows
//!   and deadlock far more often. READ COMMITTED is also PostgreSQL's default, so both
//!   server backends reason alike. (With binary logging on, READ COMMITTED needs
//!   `binlog_format` ROW or MIXED — the default of MySQL 8 and MariaDB 10.11.)
//!
//! Tables are created `ENGINE=InnoDB` explicitly, and `NO_ENGINE_SUBSTITUTION` turns a
//! missing InnoDB into an error instead of a silent MyISAM table without transactions.

use crate::error::finish;
use hallpass_core::StoreError;
use sqlx::Connection;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Most connections one store keeps open.
pub const MAX_CONNECTIONS: u32 = 16;

/// How long a call waits for a free connection before it fails with `Unavailable`.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled connection idle longer than this is pinged before it is handed out, so one
/// the server dropped meanwhile (restart, `wait_timeout`) is replaced instead of failing a
/// request. Busy connections are not pinged: that would cost a round trip per call.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(30);

/// The session setup of every connection (see the module docs).
const SESSION_SETUP: &str = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,ONLY_FULL_GROUP_BY,\
     ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', \
     SESSION innodb_lock_wait_timeout = 10; \
     SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// Runs [`SESSION_SETUP`] on a fresh connection.
pub(crate) async fn configure(conn: &mut MySqlConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(SESSION_SETUP).execute(conn).await?;
    Ok(())
}

/// The options a `mysql://` (or `mariadb://`) URL names.
pub(crate) fn options_from_url(url: &str) -> Result<MySqlConnectOptions, StoreError> {
    // sqlx reads any URL as MySQL options; a `postgres://` URL here is a mistake.
    if !(url.starts_with("mysql:") || url.starts_with("mariadb:")) {
        tracing::error!("mysql: the database URL does not start with mysql: or mariadb:");
        return Err(StoreError::Other("a MySQL URL starts with mysql:// (or mariadb://)".into()));
    }
    MySqlConnectOptions::from_str(url).map_err(|e| {
        // The URL may hold a password: say what is wrong with it, not what it is.
        tracing::error!(error = %e, "mysql: invalid database URL");
        StoreError::Other(format!("invalid MySQL URL: {}", e.to_string().replace(url, "<url>")))
    })
}

/// Opens the pool (one connection at once, to check the URL and the credentials) with the
/// settings above. The store overrides the character set, collation and SQL mode settings
/// of `options`: it depends on them.
pub(crate) async fn pool(options: MySqlConnectOptions) -> Result<MySqlPool, StoreError> {
    let options = options
        .charset("utf8mb4")
        .collation("utf8mb4_bin")
        .timezone(Some("+00:00".to_owned()))
        // Both are part of SESSION_SETUP's complete sql_mode instead.
        .pipes_as_concat(false)
        .no_engine_substitution(false);
    let pool = MySqlPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(Duration::from_secs(600))
        .max_lifetime(Duration::from_secs(1800))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_WHEN_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .after_connect(|conn, _meta| Box::pin(configure(conn)))
        .connect_with(options)
        .await;
    let pool = finish("connect", pool.map_err(Into::into))?;
    tracing::debug!(database = ?pool.connect_options().get_database(), "mysql: store connected");
    Ok(pool)
}
