//! The one place where sqlx's errors become [`StoreError`]s.
//!
//! Query code returns [`Fail`], which holds either a sqlx error or a domain answer a query
//! decided on itself. [`to_store_error`] classifies and logs it once, at the edge of the
//! store, so no sqlx type ever leaves the crate:
//!
//! - SQLSTATE 23505 (unique violation) on a known constraint → `UsernameTaken` /
//!   `EmailTaken` / `IdentityTaken` (recognised by constraint name, see
//!   `migrations/0001_init.sql`);
//! - no connection (I/O, TLS, pool timeout, pool closed, a new connection closed by the
//!   server before it answered — see `is_closed_at_ssl_request`), the server shutting down or
//!   refusing connections, too many connections, a failover to a read-only standby, a
//!   cancelled statement, a serialization failure or deadlock → `Unavailable` (the caller
//!   may retry);
//! - anything else (a bug, corrupt data, a foreign key to a missing user) → `Other`.
//!
//! The message inside `Unavailable` / `Other` names the operation and the kind of failure
//! but not the driver's text; the full cause goes to the log.

use hallpass_core::StoreError;

/// What a query can fail with before it is classified.
#[derive(Debug)]
pub(crate) enum Fail {
    /// sqlx (the driver, the pool, or a decode) failed.
    Sql(sqlx::Error),
    /// The query reached a domain answer itself (or found corrupt data).
    Store(StoreError),
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Result of a query.
pub(crate) type QResult<T> = Result<T, Fail>;

/// A stored value that does not decode into its domain type: corrupt data.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Fail {
    Fail::Store(StoreError::Other(format!("corrupt {what} in the database: {detail}")))
}

/// Classifies a failure of the store operation `op` and logs its cause.
pub(crate) fn to_store_error(op: &'static str, fail: Fail) -> StoreError {
    match fail {
        Fail::Store(e) => {
            log(op, &e, None);
            e
        }
        Fail::Sql(e) => {
            let mapped = classify(op, &e);
            log(op, &mapped, Some(&e));
            mapped
        }
    }
}

fn log(op: &'static str, mapped: &StoreError, cause: Option<&dyn std::error::Error>) {
    let cause = cause.map(|c| c.to_string());
    match mapped {
        // Conflicts are answers to the client (409), not faults of the store.
        StoreError::UsernameTaken | StoreError::EmailTaken | StoreError::IdentityTaken => {
            tracing::debug!(op, ?mapped, cause, "postgres: unique constraint");
        }
        StoreError::Unavailable(msg) => tracing::warn!(op, cause, msg, "postgres: storage unavailable"),
        StoreError::TooLarge { .. } => tracing::debug!(op, ?mapped, "postgres: over a size cap"),
        StoreError::Other(msg) => tracing::error!(op, cause, msg, "postgres: storage error"),
    }
}

/// Which domain conflict a violated unique constraint stands for.
pub(crate) fn conflict_of(constraint: &str) -> Option<StoreError> {
    match constraint {
        "users_username_key" => Some(StoreError::UsernameTaken),
        "users_email_key" => Some(StoreError::EmailTaken),
        "identities_client_id" => Some(StoreError::IdentityTaken),
        _ => None,
    }
}

/// Whether a SQLSTATE means "the database cannot serve this now; try again".
pub(crate) fn is_transient(sqlstate: &str) -> bool {
    // Class 08: connection exception. Class 53: insufficient resources (disk full, out of
    // memory, too many connections). Class 57P: the server is shutting down, crashed or
    // starting up. 57014: statement cancelled (statement_timeout). 40001 / 40P01:
    // serialization failure / deadlock — the transaction was rolled back and a retry can
    // succeed. 55P03: lock_timeout. 25006: a write reached a read-only standby (failover
    // in progress).
    sqlstate.starts_with("08")
        || sqlstate.starts_with("53")
        || sqlstate.starts_with("57P")
        || matches!(sqlstate, "57014" | "40001" | "40P01" | "55P03" | "25006")
}

/// Whether a protocol error is sqlx's report of a server that closed a new connection
/// before answering it. With `sslmode=prefer` (the default) or `require`, sqlx sends an
/// SSLRequest and reads one byte of answer without checking for end of file, so a server
/// (or a proxy in front of it, such as PgBouncer or a load balancer) that accepts and
/// closes the connection at once — one shutting down, restarting or without a backend —
/// shows as "unexpected response from SSLRequest: 0x00" instead of an I/O error. That is
/// "not reachable now", not a bug.
fn is_closed_at_ssl_request(msg: &str) -> bool {
    msg.starts_with("unexpected response from SSLRequest: 0x00")
}

fn classify(op: &'static str, e: &sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if code == "23505"
                && let Some(conflict) = db.constraint().and_then(conflict_of)
            {
                return conflict;
            }
            if is_transient(&code) {
                return StoreError::Unavailable(format!("postgres ({op}): server error {code}"));
            }
            StoreError::Other(format!("postgres ({op}): database error {code}"))
        }
        sqlx::Error::Io(_) => StoreError::Unavailable(format!("postgres ({op}): connection I/O error")),
        sqlx::Error::Tls(_) => StoreError::Unavailable(format!("postgres ({op}): TLS error")),
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable(format!("postgres ({op}): no connection available in time"))
        }
        sqlx::Error::PoolClosed => StoreError::Unavailable(format!("postgres ({op}): the pool is closed")),
        sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(format!("postgres ({op}): the connection worker crashed"))
        }
        sqlx::Error::Protocol(msg) if is_closed_at_ssl_request(msg) => {
            StoreError::Unavailable(format!("postgres ({op}): the server closed the connection at once"))
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Other(format!("postgres ({op}): a stored value does not decode"))
        }
        sqlx::Error::Configuration(_) => {
            StoreError::Other(format!("postgres ({op}): invalid connection configuration"))
        }
        _ => StoreError::Other(format!("postgres ({op}): driver error")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraint_names_map_to_conflicts() {
        assert!(matches!(conflict_of("users_username_key"), Some(StoreError::UsernameTaken)));
        assert!(matches!(conflict_of("users_email_key"), Some(StoreError::EmailTaken)));
        assert!(matches!(conflict_of("identities_client_id"), Some(StoreError::IdentityTaken)));
        assert!(conflict_of("sessions_token_hash").is_none());
        assert!(conflict_of("users_pkey").is_none());
    }

    #[test]
    fn transient_sqlstates() {
        for code in ["08006", "08001", "53300", "53100", "57P01", "57P03", "57014", "40001", "40P01", "25006"]
        {
            assert!(is_transient(code), "{code}");
        }
        for code in ["23505", "23503", "42P01", "22P02", ""] {
            assert!(!is_transient(code), "{code}");
        }
    }

    #[test]
    fn connection_failures_are_unavailable() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        for e in [io, sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            let got = to_store_error("test", Fail::Sql(e));
            assert!(matches!(got, StoreError::Unavailable(_)), "{got:?}");
        }
        let closed = sqlx::Error::Protocol("unexpected response from SSLRequest: 0x00".into());
        let got = to_store_error("test", Fail::Sql(closed));
        assert!(matches!(got, StoreError::Unavailable(_)), "{got:?}");
        let other = sqlx::Error::Protocol("unexpected response from SSLRequest: 0x45".into());
        let got = to_store_error("test", Fail::Sql(other));
        assert!(matches!(got, StoreError::Other(_)), "{got:?}");
        let got = to_store_error("test", Fail::Sql(sqlx::Error::RowNotFound));
        assert!(matches!(got, StoreError::Other(_)), "{got:?}");
    }
}
