//! Login throttling counters: read, count a failure (one upsert), clear, sweep.

use crate::codec::*;
use crate::error::QResult;
use hallpass_core::{Scope, ThrottleState};
use rusqlite::{Connection, OptionalExtension, Row};
use time::{Duration, OffsetDateTime};

fn state_row(row: &Row<'_>) -> rusqlite::Result<ThrottleState> {
    let failures: i64 = row.get(0)?;
    Ok(ThrottleState {
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        first_at: get_time(row, 1)?,
        last_at: get_time(row, 2)?,
        expires_at: get_time(row, 3)?,
    })
}

pub(crate) fn get(
    conn: &Connection,
    scope: &Scope,
    key: &str,
    now: OffsetDateTime,
) -> QResult<Option<ThrottleState>> {
    Ok(conn
        .prepare_cached(
            "SELECT failures, first_at, last_at, expires_at FROM throttles \
             WHERE scope = ?1 AND key = ?2 AND expires_at > ?3",
        )?
        .query_row((scope.as_str(), key, ms(now)), state_row)
        .optional()?)
}

/// One statement: a live counter grows by one; a missing or expired one starts at one.
/// In an upsert's `SET`, every expression reads the row as it was before the update.
pub(crate) fn hit(
    conn: &Connection,
    scope: &Scope,
    key: &str,
    now: OffsetDateTime,
    window: Duration,
) -> QResult<ThrottleState> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO throttles (scope, key, failures, first_at, last_at, expires_at) \
             VALUES (?1, ?2, 1, ?3, ?3, ?4) \
             ON CONFLICT (scope, key) DO UPDATE SET \
               failures = CASE WHEN throttles.expires_at > excluded.last_at \
                          THEN throttles.failures + 1 ELSE 1 END, \
               first_at = CASE WHEN throttles.expires_at > excluded.last_at \
                          THEN throttles.first_at ELSE excluded.first_at END, \
               expires_at = CASE WHEN throttles.expires_at > excluded.last_at \
                            THEN throttles.expires_at ELSE excluded.expires_at END, \
               last_at = excluded.last_at \
             RETURNING failures, first_at, last_at, expires_at",
        )?
        .query_row((scope.as_str(), key, ms(now), ms(now + window)), state_row)?)
}

pub(crate) fn clear(conn: &Connection, scope: &Scope, key: &str) -> QResult<()> {
    conn.prepare_cached("DELETE FROM throttles WHERE scope = ?1 AND key = ?2")?
        .execute((scope.as_str(), key))?;
    Ok(())
}

/// Up to `?2` counters expired at `?1`.
pub(crate) const SWEEP_THROTTLES: &str = "DELETE FROM throttles WHERE (scope, key) IN \
     (SELECT scope, key FROM throttles WHERE expires_at <= ?1 LIMIT ?2)";
