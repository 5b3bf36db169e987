//! Login throttling counters: read, count a failure (one upsert), give one back, clear,
//! several at once, sweep.

use crate::codec::*;
use crate::error::QResult;
use crate::rows::state_row;
use hallpass_core::{Scope, ThrottleState};
use rusqlite::{Connection, OptionalExtension};
use time::{Duration, OffsetDateTime};

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

/// Gives one count back to `key`: a live counter of more than one loses one; a counter of
/// one, or an expired one, is removed. Two statements inside the caller's transaction (the
/// delete first, so a counter of two ends at one).
pub(crate) fn undo(conn: &Connection, scope: &Scope, key: &str, now: OffsetDateTime) -> QResult<()> {
    conn.prepare_cached(
        "DELETE FROM throttles WHERE scope = ?1 AND key = ?2 AND (failures <= 1 OR expires_at <= ?3)",
    )?
    .execute((scope.as_str(), key, ms(now)))?;
    conn.prepare_cached(
        "UPDATE throttles SET failures = failures - 1 WHERE scope = ?1 AND key = ?2 AND failures > 1",
    )?
    .execute((scope.as_str(), key))?;
    Ok(())
}

/// [`hallpass_core::Store::throttle_update`] inside the caller's write transaction.
pub(crate) fn update(
    conn: &Connection,
    scope: &Scope,
    update: &OwnedUpdate,
    now: OffsetDateTime,
) -> QResult<Vec<ThrottleState>> {
    for key in &update.clear {
        clear(conn, scope, key)?;
    }
    for key in &update.undo {
        undo(conn, scope, key, now)?;
    }
    update.hit.iter().map(|(key, window)| hit(conn, scope, key, now, *window)).collect()
}

/// A [`hallpass_core::ThrottleUpdate`] that can move to the writer thread.
pub(crate) struct OwnedUpdate {
    pub(crate) hit: Vec<(String, Duration)>,
    pub(crate) undo: Vec<String>,
    pub(crate) clear: Vec<String>,
}

impl OwnedUpdate {
    pub(crate) fn of(update: &hallpass_core::ThrottleUpdate<'_>) -> Self {
        Self {
            hit: update.hit.iter().map(|(key, window)| ((*key).to_owned(), *window)).collect(),
            undo: update.undo.iter().map(|key| (*key).to_owned()).collect(),
            clear: update.clear.iter().map(|key| (*key).to_owned()).collect(),
        }
    }
}

/// Up to `?2` counters expired at `?1`.
pub(crate) const SWEEP_THROTTLES: &str = "DELETE FROM throttles WHERE (scope, key) IN \
     (SELECT scope, key FROM throttles WHERE expires_at <= ?1 LIMIT ?2)";
