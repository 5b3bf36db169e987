//! Login throttling counters: read, count a failure (an upsert, then a read of the row it
//! locked), clear, sweep.

use crate::codec::*;
use crate::error::QResult;
use crate::rows::state;
use hallpass_core::{Scope, ThrottleState};
use sqlx::Row;
use sqlx::mysql::MySqlConnection;
use time::{Duration, OffsetDateTime};

pub(crate) async fn get(
    c: &mut MySqlConnection,
    scope: &Scope,
    key: &str,
    now: OffsetDateTime,
) -> QResult<Option<ThrottleState>> {
    let row = sqlx::query(
        "SELECT failures, first_at, last_at, expires_at FROM throttles \
         WHERE scope = ? AND throttle_key = ? AND expires_at > ?",
    )
    .bind(scope.as_str())
    .bind(key.as_bytes())
    .bind(ms(now))
    .fetch_optional(&mut *c)
    .await?;
    row.as_ref().map(state).transpose()
}

/// Runs inside a transaction: the upsert locks the row until commit, so the read that
/// follows sees exactly this hit's count, and concurrent hits each count once. MySQL
/// applies `ON DUPLICATE KEY UPDATE` assignments left to right, each seeing the ones
/// before, so `expires_at` (which the conditions read) is assigned last.
pub(crate) async fn hit(
    c: &mut MySqlConnection,
    scope: &Scope,
    key: &str,
    now: OffsetDateTime,
    window: Duration,
) -> QResult<ThrottleState> {
    sqlx::query(
        "INSERT INTO throttles (scope, throttle_key, failures, first_at, last_at, expires_at) \
         VALUES (?, ?, 1, ?, ?, ?) \
         ON DUPLICATE KEY UPDATE \
           failures = IF(expires_at > VALUES(last_at), failures + 1, 1), \
           first_at = IF(expires_at > VALUES(last_at), first_at, VALUES(first_at)), \
           last_at = VALUES(last_at), \
           expires_at = IF(expires_at > VALUES(last_at), expires_at, VALUES(expires_at))",
    )
    .bind(scope.as_str())
    .bind(key.as_bytes())
    .bind(ms(now))
    .bind(ms(now))
    .bind(ms(now + window))
    .execute(&mut *c)
    .await?;
    let row = sqlx::query(
        "SELECT failures, first_at, last_at, expires_at FROM throttles WHERE scope = ? AND throttle_key = ?",
    )
    .bind(scope.as_str())
    .bind(key.as_bytes())
    .fetch_one(&mut *c)
    .await?;
    state(&row)
}

pub(crate) async fn clear(c: &mut MySqlConnection, scope: &Scope, key: &str) -> QResult<()> {
    sqlx::query("DELETE FROM throttles WHERE scope = ? AND throttle_key = ?")
        .bind(scope.as_str())
        .bind(key.as_bytes())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// [`hallpass_core::Store::throttle_update`] inside the caller's transaction: clears, then
/// undos (each counter locked and read, then decremented, or removed at one or expired),
/// then each hit as [`hit`] makes it.
pub(crate) async fn update(
    c: &mut MySqlConnection,
    scope: &Scope,
    update: &hallpass_core::ThrottleUpdate<'_>,
    now: OffsetDateTime,
) -> QResult<Vec<ThrottleState>> {
    for key in update.clear {
        clear(c, scope, key).await?;
    }
    for key in update.undo {
        // Locked first, then judged: two undos of one counter each count.
        let row = sqlx::query(
            "SELECT failures, expires_at FROM throttles WHERE scope = ? AND throttle_key = ? FOR UPDATE",
        )
        .bind(scope.as_str())
        .bind(key.as_bytes())
        .fetch_optional(&mut *c)
        .await?;
        let Some(row) = row else { continue };
        let (failures, expires_at): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        let sql = if failures <= 1 || expires_at <= ms(now) {
            "DELETE FROM throttles WHERE scope = ? AND throttle_key = ?"
        } else {
            "UPDATE throttles SET failures = failures - 1 WHERE scope = ? AND throttle_key = ?"
        };
        sqlx::query(sql).bind(scope.as_str()).bind(key.as_bytes()).execute(&mut *c).await?;
    }
    let mut states = Vec::with_capacity(update.hit.len());
    for (key, window) in update.hit {
        states.push(hit(c, scope, key, now, *window).await?);
    }
    Ok(states)
}

/// Deletes up to `batch` counters expired at `now`.
pub(crate) async fn sweep(c: &mut MySqlConnection, now: i64, batch: u32) -> QResult<u64> {
    Ok(sqlx::query("DELETE FROM throttles WHERE expires_at <= ? ORDER BY expires_at LIMIT ?")
        .bind(now)
        .bind(batch)
        .execute(&mut *c)
        .await?
        .rows_affected())
}
