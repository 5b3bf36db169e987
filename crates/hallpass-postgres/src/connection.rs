//! Opening: the database URL, the pool and the settings every connection gets, and why.
//!
//! - The URL is parsed by sqlx (`PgConnectOptions`), with the `PG*` environment variables
//!   and `~/.pgpass` filling what it leaves out, as with `psql`; a parse error is logged
//!   only at debug level, since it may quote the password.
//! - `application_name = hallpass` unless the URL sets one: it shows in
//!   `pg_stat_activity`, so an operator can tell hallpass's connections apart.
//! - The pool holds up to [`MAX_CONNECTIONS`] and opens them on demand; a call waits at
//!   most [`ACQUIRE_TIMEOUT`] for one, so an outage answers 503 instead of hanging.
//!   Connections are not pinged before every use (sqlx's default, a round trip added to
//!   every session check), only after [`PING_IF_IDLE_FOR`] idle: the ones a database
//!   restart or a firewall's idle timeout may have cut. Connections are recycled after
//!   10 minutes idle or 30 minutes of life.
//!
//! No SQL runs per connection: the store relies on PostgreSQL's defaults (READ COMMITTED
//! isolation; the session time zone does not matter, instants being integers), and the
//! database's UTF8 encoding is checked once, by `crate::migrate`.

use crate::error::to_store_error;
use hallpass_core::StoreError;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Most connections the pool opens. Session checks are short single-statement reads, so
/// a few connections serve many requests; 16 leaves room under PostgreSQL's default
/// `max_connections = 100` for several hallpass processes and the operator's own tools.
pub const MAX_CONNECTIONS: u32 = 16;

/// How long a call waits for a connection (opening one included) before it fails with
/// `StoreError::Unavailable`: while the database is down, requests answer 503 within this
/// time instead of hanging.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection idle longer than this is pinged before it is handed out (see
/// [`crate::PostgresStore::connect_with`]).
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(60);

/// The options a `postgres://` (or `postgresql://`) URL names.
pub(crate) fn options_from_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url).map_err(|e| {
        // The parse error may quote the URL, password included: log it only at debug.
        tracing::debug!(error = %e, "postgres: invalid database URL");
        StoreError::Other("invalid PostgreSQL URL (expected postgres://USER@HOST:PORT/DATABASE)".into())
    })
}

/// Opens the pool (at least one connection, so a wrong URL or an unreachable server fails
/// here) with the settings above.
pub(crate) async fn pool(mut options: PgConnectOptions) -> Result<PgPool, StoreError> {
    if options.get_application_name().is_none() {
        // Shows in pg_stat_activity, so an operator can tell hallpass's connections apart.
        options = options.application_name("hallpass");
    }
    let pool = PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(Some(Duration::from_secs(600)))
        .max_lifetime(Some(Duration::from_secs(1800)))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_IF_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| to_store_error("connect", e.into()))?;
    let options = pool.connect_options();
    tracing::debug!(host = options.get_host(), database = options.get_database(), "postgres: connected");
    Ok(pool)
}
