//! The one place where SQLite's errors become [`StoreError`]s.
//!
//! Query code returns [`Fail`], which holds either a rusqlite error or a domain answer a
//! query decided on itself (a pre-checked `UsernameTaken`). [`to_store_error`] classifies
//! and logs it once, at the edge of the pool, so no rusqlite type ever leaves the crate:
//!
//! - a UNIQUE violation of a known index → `UsernameTaken` / `EmailTaken` / `IdentityTaken`
//!   (SQLite names the columns in its message; see `migrations/0001_init.sql`);
//! - busy, locked, I/O, full disk, cannot open → `Unavailable` (the caller may retry);
//! - anything else (a bug, corrupt data, a foreign key to a missing user) → `Other`.

use hallpass_core::StoreError;
use rusqlite::ErrorCode;

/// What a query can fail with before it is classified.
#[derive(Debug)]
pub(crate) enum Fail {
    /// SQLite (or rusqlite's conversion of a value) failed.
    Sql(rusqlite::Error),
    /// The query reached a domain answer itself.
    Store(StoreError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
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

/// Classifies a failure of the store operation `op` and logs its cause.
pub(crate) fn to_store_error(op: &'static str, fail: Fail) -> StoreError {
    match fail {
        Fail::Store(e) => {
            log(op, &e, None);
            e
        }
        Fail::Sql(e) => {
            let mapped = classify(&e, op);
            log(op, &mapped, Some(&e));
            mapped
        }
    }
}

fn log(op: &'static str, mapped: &StoreError, cause: Option<&rusqlite::Error>) {
    let cause = cause.map(|c| c.to_string());
    match mapped {
        // Conflicts are answers to the client (409), not faults of the store.
        StoreError::UsernameTaken | StoreError::EmailTaken | StoreError::IdentityTaken => {
            tracing::debug!(op, ?mapped, cause, "sqlite: unique constraint");
        }
        StoreError::Unavailable(_) => tracing::warn!(op, cause, "sqlite: storage unavailable"),
        StoreError::TooLarge { .. } => tracing::debug!(op, ?mapped, "sqlite: over a size cap"),
        StoreError::Other(msg) => tracing::error!(op, cause, msg, "sqlite: storage error"),
    }
}

fn classify(e: &rusqlite::Error, op: &'static str) -> StoreError {
    if let rusqlite::Error::SqliteFailure(code, message) = e {
        match code.code {
            ErrorCode::ConstraintViolation => {
                if let Some(conflict) = conflict_of(message.as_deref()) {
                    return conflict;
                }
            }
            ErrorCode::DatabaseBusy => {
                return StoreError::Unavailable("the database is locked by another writer".into());
            }
            ErrorCode::DatabaseLocked => return StoreError::Unavailable("a table is locked".into()),
            ErrorCode::SystemIoFailure | ErrorCode::FileLockingProtocolFailed => {
                return StoreError::Unavailable("database I/O error".into());
            }
            ErrorCode::DiskFull => return StoreError::Unavailable("the disk is full".into()),
            ErrorCode::CannotOpen => return StoreError::Unavailable("cannot open the database file".into()),
            _ => {}
        }
    }
    StoreError::Other(format!("sqlite ({op}): {e}"))
}

/// Which domain conflict a constraint message stands for. SQLite reports a violated
/// UNIQUE index on plain columns as `UNIQUE constraint failed: table.col, table.col`;
/// the last column is the one that tells our indexes apart.
fn conflict_of(message: Option<&str>) -> Option<StoreError> {
    let message = message?;
    if !message.starts_with("UNIQUE constraint failed") {
        return None;
    }
    if message.contains("users.username_key") || message.contains("users_username_key") {
        Some(StoreError::UsernameTaken)
    } else if message.contains("users.email_key") || message.contains("users_email_key") {
        Some(StoreError::EmailTaken)
    } else if message.contains("identities.client_id") || message.contains("identities_client_id") {
        Some(StoreError::IdentityTaken)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32, msg: &str) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(msg.into()))
    }

    #[test]
    fn constraint_messages_map_to_conflicts() {
        let unique = rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE;
        let cases = [
            ("UNIQUE constraint failed: users.scope, users.username_key", Some("UsernameTaken")),
            ("UNIQUE constraint failed: users.scope, users.email_key", Some("EmailTaken")),
            (
                "UNIQUE constraint failed: identities.scope, identities.provider, identities.client_id",
                Some("IdentityTaken"),
            ),
            ("UNIQUE constraint failed: api_keys.key_hash", None),
        ];
        for (msg, want) in cases {
            let got = to_store_error("test", Fail::Sql(failure(unique, msg)));
            match want {
                Some(name) => assert_eq!(format!("{got:?}"), name, "{msg}"),
                None => assert!(matches!(got, StoreError::Other(_)), "{msg}: {got:?}"),
            }
        }
        let fk = failure(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY, "FOREIGN KEY constraint failed");
        assert!(matches!(to_store_error("test", Fail::Sql(fk)), StoreError::Other(_)));
    }

    #[test]
    fn busy_and_io_are_unavailable() {
        for code in [
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_LOCKED,
            rusqlite::ffi::SQLITE_IOERR,
            rusqlite::ffi::SQLITE_FULL,
        ] {
            let got = to_store_error("test", Fail::Sql(failure(code, "x")));
            assert!(matches!(got, StoreError::Unavailable(_)), "{code}: {got:?}");
        }
        let got = to_store_error("test", Fail::Sql(rusqlite::Error::QueryReturnedNoRows));
        assert!(matches!(got, StoreError::Other(_)));
    }
}
