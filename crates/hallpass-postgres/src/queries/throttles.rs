//! Login throttling counters: read, count a failure (one upsert), clear, sweep.

use crate::error::QResult;
use crate::rows::ms;
use hallpass_core::clock::from_unix_ms;
use hallpass_core::{Scope, ThrottleState};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use time::{Duration, OffsetDateTime};

fn state(row: &PgRow) -> QResult<ThrottleState> {
    let failures: i64 = row.try_get(0)?;
    Ok(ThrottleState {
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        first_at: from_unix_ms(row.try_get(1)?),
        last_at: from_unix_ms(row.try_get(2)?),
        expires_at: from_unix_ms(row.try_get(3)?),
    })
}

pub(crate) async fn get(
    pool: &PgPool,
    scope: &Scope,
    key: &str,
    now: OffsetDateTime,
) -> QResult<Option<ThrottleState>> {
    let row = sqlx::query(
        "SELECT failures, first_at, last_at, expires_at FROM throttles \
         WHERE scope = $1 AND key = $2 AND expires_at > $3",
    )
    .bind(scope.as_str())
    .bind(key)
    .bind(ms(now))
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(state).transpose()
}

/// Several counters in one read, in the order of `keys` (`None` where none lives).
pub(crate) async fn get_many(
    pool: &PgPool,
    scope: &Scope,
    keys: &[&str],
    now: OffsetDateTime,
) -> QResult<Vec<Option<ThrottleState>>> {
    let rows = sqlx::query(
        "SELECT failures, first_at, last_at, expires_at, key FROM throttles \
         WHERE scope = $1 AND key = ANY($2) AND expires_at > $3",
    )
    .bind(scope.as_str())
    .bind(keys)
    .bind(ms(now))
    .fetch_all(pool)
    .await?;
    let mut found = vec![None; keys.len()];
    for row in &rows {
        let key: &str = row.try_get(4)?;
        let got = state(row)?;
        for (i, k) in keys.iter().enumerate() {
            if *k == key {
                found[i] = Some(got);
            }
        }
    }
    Ok(found)
}

/// One statement: a live counter grows by one; a missing or expired one starts at one.
/// The conflicting row is locked by the upsert, so concurrent hits are serialised and
/// each counts; in `SET`, `throttles.*` is the row before the update.
pub(crate) async fn hit(
    conn: impl sqlx::PgExecutor<'_>,
    scope: &Scope,
    key: &str,
    now: OffsetDateTime,
    window: Duration,
) -> QResult<ThrottleState> {
    let row = sqlx::query(
        "INSERT INTO throttles AS t (scope, key, failures, first_at, last_at, expires_at) \
         VALUES ($1, $2, 1, $3, $3, $4) \
         ON CONFLICT ON CONSTRAINT throttles_pkey DO UPDATE SET \
           failures = CASE WHEN t.expires_at > EXCLUDED.last_at THEN t.failures + 1 ELSE 1 END, \
           first_at = CASE WHEN t.expires_at > EXCLUDED.last_at THEN t.first_at ELSE EXCLUDED.first_at END, \
           expires_at = CASE WHEN t.expires_at > EXCLUDED.last_at THEN t.expires_at ELSE EXCLUDED.expires_at END, \
           last_at = EXCLUDED.last_at \
         RETURNING failures, first_at, last_at, expires_at",
    )
    .bind(scope.as_str())
    .bind(key)
    .bind(ms(now))
    .bind(ms(now + window))
    .fetch_one(conn)
    .await?;
    state(&row)
}

pub(crate) async fn clear(pool: &PgPool, scope: &Scope, key: &str) -> QResult<()> {
    sqlx::query("DELETE FROM throttles WHERE scope = $1 AND key = $2")
        .bind(scope.as_str())
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

/// Up to `$2` counters expired at `$1`.
pub(crate) const SWEEP_THROTTLES: &str = "DELETE FROM throttles WHERE (scope, key) IN (SELECT scope, key \
     FROM throttles WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)";
