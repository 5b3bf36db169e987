//! The one place where sqlx's errors become [`StoreError`]s, and the deadlock retry.
//!
//! Query code returns [`Fail`]: either an sqlx error or a domain answer a query reached
//! itself (corrupt data, a login for a missing user). [`finish`] classifies and logs it
//! once per store call ([`classify_quietly`] classifies without logging, for the change
//! poller, which logs once per outage), so no sqlx type and no driver message ever leaves
//! the crate:
//!
//! - duplicate key (1062) on a known unique index → `UsernameTaken` / `EmailTaken` /
//!   `IdentityTaken`. The index is read from the end of the server's message
//!   ("... for key 'users_username_key'", MySQL 8 writes 'users.users_username_key'); the
//!   duplicated value in the message is user data and is never logged;
//! - deadlock (1213) or serialization failure (SQLSTATE 40001), once the retries are
//!   spent; lock wait timeout (1205); pool timeout, closed pool, I/O, TLS; connection
//!   errors (SQLSTATE class 08) and the server refusing work for now (too many
//!   connections, shutting down, read-only, killed query) → `Unavailable`;
//! - anything else (a bug, a constraint the service should have prevented, corrupt data,
//!   wrong credentials in the URL) → `Other`.
//!
//! `attempt!` runs a store call (usually one transaction) again when
//! InnoDB chose it as a deadlock victim: InnoDB has already rolled the whole transaction
//! back, so running it again from the start is exactly right.

use hallpass_core::StoreError;
use sqlx::mysql::MySqlDatabaseError;
use std::time::Duration;

/// What a query can fail with before it is classified.
#[derive(Debug)]
pub(crate) enum Fail {
    /// sqlx (the server, the pool, the network, or decoding a value) failed.
    Db(sqlx::Error),
    /// The query reached an answer of its own.
    Store(StoreError),
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Result of a query.
pub(crate) type QResult<T> = Result<T, Fail>;

/// Stored data that does not decode into the domain type: a bug or a hand-edited row.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Fail {
    Fail::Store(StoreError::Other(format!("corrupt data in the database: {what}: {detail}")))
}

/// How many times a store call runs at most when it keeps being chosen as a deadlock
/// victim. Deadlocks here are rare and short (every transaction locks the user row first),
/// so a few quick attempts resolve them; more would only hide a real problem.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

/// Runs `$body` (an `async` block evaluating to `QResult<T>`, built afresh for each
/// attempt) and returns the classified `StoreResult<T>`. A deadlock or serialization
/// failure runs it again, after a short randomised pause, up to [`MAX_ATTEMPTS`] times.
macro_rules! attempt {
    ($op:literal, $body:expr) => {{
        let mut attempt: u32 = 1;
        loop {
            let result: $crate::error::QResult<_> = $body.await;
            match result {
                Err($crate::error::Fail::Db(ref e))
                    if attempt < $crate::error::MAX_ATTEMPTS && $crate::error::is_retryable(e) =>
                {
                    tracing::debug!(
                        op = $op,
                        attempt,
                        "mysql: deadlock victim, running the transaction again"
                    );
                    $crate::error::backoff(attempt).await;
                    attempt += 1;
                }
                other => break $crate::error::finish($op, other),
            }
        }
    }};
}

/// Whether InnoDB rolled the transaction back to break a deadlock (or a serialization
/// conflict), so that running it again may succeed.
pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
    match db_error(e) {
        Some(db) => db.number() == ER_LOCK_DEADLOCK || db.code() == Some("40001"),
        None => false,
    }
}

/// A pause before attempt `attempt + 1`: a few milliseconds, growing, with jitter so that
/// the transactions that deadlocked do not meet again in lock step.
pub(crate) async fn backoff(attempt: u32) {
    let jitter = u64::from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
            % 8,
    );
    tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 4 + jitter)).await;
}

/// Classifies the outcome of the store call `op`, logging the cause of a failure.
pub(crate) fn finish<T>(op: &'static str, result: QResult<T>) -> Result<T, StoreError> {
    result.map_err(|fail| to_store_error(op, fail))
}

/// Classifies one failure of `op` and logs it.
pub(crate) fn to_store_error(op: &'static str, fail: Fail) -> StoreError {
    match fail {
        Fail::Store(e) => {
            match &e {
                StoreError::Other(msg) => tracing::error!(op, msg, "mysql: storage error"),
                StoreError::Unavailable(msg) => tracing::warn!(op, msg, "mysql: storage unavailable"),
                _ => tracing::debug!(op, error = ?e, "mysql: refused"),
            }
            e
        }
        Fail::Db(e) => classify(op, &e, true),
    }
}

/// Classifies one failure of `op` without logging it: for a caller that logs on its own
/// terms (the change poller warns once per outage, not once per failed poll).
pub(crate) fn classify_quietly(op: &'static str, fail: &Fail) -> StoreError {
    match fail {
        Fail::Store(e) => e.clone(),
        Fail::Db(e) => classify(op, e, false),
    }
}

const ER_DUP_ENTRY: u16 = 1062;
const ER_DUP_ENTRY_WITH_KEY_NAME: u16 = 1586;
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
const ER_LOCK_DEADLOCK: u16 = 1213;

/// Server errors that mean "not now" rather than "never": the caller may retry later.
const UNAVAILABLE_NUMBERS: &[(u16, &str)] = &[
    (1040, "the database server has too many connections"),
    (1053, "the database server is shutting down"),
    (1077, "the database server is shutting down"),
    (1152, "the connection to the database was aborted"),
    (1158, "a network error reading from the database"),
    (1159, "a network timeout reading from the database"),
    (1160, "a network error writing to the database"),
    (1161, "a network timeout writing to the database"),
    (1203, "the database user has too many connections"),
    (1290, "the database server is read-only"),
    (1317, "the query was interrupted"),
    (1792, "the database transaction is read-only"),
    (1836, "the database server is read-only"),
    (1927, "the database connection was killed"),
    (1969, "the query ran past the server's time limit"),
    (3024, "the query ran past the server's time limit"),
];

fn db_error(e: &sqlx::Error) -> Option<&MySqlDatabaseError> {
    match e {
        sqlx::Error::Database(db) => db.try_downcast_ref::<MySqlDatabaseError>(),
        _ => None,
    }
}

fn classify(op: &'static str, e: &sqlx::Error, log: bool) -> StoreError {
    if let Some(db) = db_error(e) {
        let number = db.number();
        if number == ER_DUP_ENTRY || number == ER_DUP_ENTRY_WITH_KEY_NAME {
            let key = duplicate_key_name(db.message());
            let mapped = match key {
                Some("users_username_key") => Some(StoreError::UsernameTaken),
                Some("users_email_key") => Some(StoreError::EmailTaken),
                Some("identities_client_id") => Some(StoreError::IdentityTaken),
                _ => None,
            };
            return match mapped {
                Some(conflict) => {
                    if log {
                        tracing::debug!(op, key, "mysql: unique index refused the write");
                    }
                    conflict
                }
                None => {
                    // Only the index name: the message also quotes the duplicated value.
                    if log {
                        tracing::error!(op, number, key, "mysql: unexpected duplicate key");
                    }
                    StoreError::Other(format!("mysql ({op}): duplicate key {}", key.unwrap_or("?")))
                }
            };
        }
        let sqlstate = db.code().unwrap_or("");
        let unavailable = if number == ER_LOCK_DEADLOCK || sqlstate == "40001" {
            Some("the transaction kept deadlocking with others")
        } else if number == ER_LOCK_WAIT_TIMEOUT {
            Some("a row stayed locked past the lock wait timeout")
        } else if sqlstate.starts_with("08") {
            Some("the connection to the database failed")
        } else {
            UNAVAILABLE_NUMBERS.iter().find(|(n, _)| *n == number).map(|(_, why)| *why)
        };
        return match unavailable {
            Some(why) => {
                if log {
                    tracing::warn!(op, number, sqlstate, cause = db.message(), "mysql: storage unavailable");
                }
                StoreError::Unavailable(why.into())
            }
            None => {
                if log {
                    tracing::error!(op, number, sqlstate, cause = db.message(), "mysql: storage error");
                }
                StoreError::Other(format!("mysql ({op}): server error {number}"))
            }
        };
    }
    let unavailable = match e {
        sqlx::Error::PoolTimedOut => Some("no database connection became free in time"),
        sqlx::Error::PoolClosed => Some("the store is closed"),
        sqlx::Error::Io(_) => Some("the connection to the database failed"),
        sqlx::Error::Tls(_) => Some("the TLS connection to the database failed"),
        sqlx::Error::WorkerCrashed => Some("the database connection failed"),
        _ => None,
    };
    match unavailable {
        Some(why) => {
            if log {
                tracing::warn!(op, cause = %e, "mysql: storage unavailable");
            }
            StoreError::Unavailable(why.into())
        }
        None => {
            if log {
                tracing::error!(op, cause = %e, "mysql: storage error");
            }
            StoreError::Other(format!("mysql ({op}): {}", kind_of(e)))
        }
    }
}

/// A short name of an sqlx error for [`StoreError::Other`], without the driver's text.
fn kind_of(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Configuration(_) => "invalid connection settings",
        sqlx::Error::Protocol(_) => "protocol error",
        sqlx::Error::RowNotFound => "row not found",
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "a stored value did not decode",
        sqlx::Error::Encode(_) => "a value did not encode",
        _ => "driver error",
    }
}

/// The index a duplicate-key error names (`PRIMARY` for a primary key), or `None` when `e`
/// is not a duplicate-key error. The bulk import uses it to tell which user lost a race.
pub(crate) fn duplicate_key(e: &sqlx::Error) -> Option<&str> {
    let db = db_error(e)?;
    if db.number() == ER_DUP_ENTRY || db.number() == ER_DUP_ENTRY_WITH_KEY_NAME {
        duplicate_key_name(db.message())
    } else {
        None
    }
}

/// The index named at the end of a duplicate-key message: MariaDB writes
/// `Duplicate entry 'a-x' for key 'users_username_key'`, MySQL 8
/// `... for key 'users.users_username_key'`. The duplicated value comes first and may
/// itself contain "for key '", so the last occurrence is the real one.
fn duplicate_key_name(message: &str) -> Option<&str> {
    const MARK: &str = "for key '";
    let start = message.rfind(MARK)? + MARK.len();
    let key = message[start..].strip_suffix('\'')?;
    Some(key.rsplit_once('.').map_or(key, |(_, index)| index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::mysql::MySqlPool;

    /// Makes InnoDB pick a deadlock victim between two transactions and returns the
    /// victim's error.
    async fn deadlock(pool: &MySqlPool) -> sqlx::Error {
        let (mut a, mut b) = (pool.begin().await.expect("begin"), pool.begin().await.expect("begin"));
        let lock = "SELECT id FROM t WHERE id = ? FOR UPDATE";
        sqlx::query(lock).bind(1).execute(&mut *a).await.expect("a locks 1");
        sqlx::query(lock).bind(2).execute(&mut *b).await.expect("b locks 2");
        let (ra, rb) = tokio::join!(
            sqlx::query(lock).bind(2).execute(&mut *a),
            sqlx::query(lock).bind(1).execute(&mut *b)
        );
        match (ra, rb) {
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => e,
            other => panic!("expected exactly one deadlock victim, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deadlock_victims_run_again_and_then_are_unavailable() {
        let Some(db) = crate::testing::TestDatabase::create().await else { return };
        let store = db.store().await;
        let pool = store.pool();
        sqlx::raw_sql("CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO t VALUES (1), (2)")
            .execute(pool)
            .await
            .expect("table");

        let e = deadlock(pool).await;
        assert!(is_retryable(&e), "{e}");
        assert!(matches!(to_store_error("test", Fail::Db(e)), StoreError::Unavailable(_)));

        // A victim once: the second run succeeds.
        let mut runs = 0;
        let got: Result<i32, StoreError> = attempt!("test", async {
            runs += 1;
            if runs == 1 { Err(Fail::Db(deadlock(pool).await)) } else { Ok(42) }
        });
        assert_eq!((got.ok(), runs), (Some(42), 2));

        // A victim every time: `Unavailable` after MAX_ATTEMPTS runs.
        let mut runs = 0;
        let got: Result<i32, StoreError> = attempt!("test", async {
            runs += 1;
            Err(Fail::Db(deadlock(pool).await))
        });
        assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
        assert_eq!(runs, MAX_ATTEMPTS);

        // Other errors are not run again.
        let mut runs = 0;
        let got: Result<i32, StoreError> = attempt!("test", async {
            runs += 1;
            Err(Fail::Db(sqlx::query("SELECT * FROM no_such_table").execute(pool).await.expect_err("fails")))
        });
        assert!(matches!(got, Err(StoreError::Other(_))), "{got:?}");
        assert_eq!(runs, 1);
    }

    #[test]
    fn key_names_come_from_the_end_of_the_message() {
        let cases = [
            ("Duplicate entry 'a-x' for key 'users_username_key'", Some("users_username_key")),
            ("Duplicate entry 'a-x' for key 'users.users_email_key'", Some("users_email_key")),
            (
                "Duplicate entry 'a-for key 'users_email_key'' for key 'users_username_key'",
                Some("users_username_key"),
            ),
            ("Duplicate entry 'a-x.y' for key 'identities_client_id'", Some("identities_client_id")),
            ("something else", None),
        ];
        for (message, want) in cases {
            assert_eq!(duplicate_key_name(message), want, "{message}");
        }
    }
}
