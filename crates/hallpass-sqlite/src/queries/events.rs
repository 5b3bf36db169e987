//! Login events: insert, a user's history (newest first, paged by id) and the bucketed
//! statistics of successful logins.

use crate::codec::*;
use crate::error::QResult;
use crate::rows::event_row;
use hallpass_core::clock::{from_unix_ms, to_unix_ms};
use hallpass_core::{Bucket, LoginEvent, Scope, StatBucket};
use rusqlite::Connection;
use time::OffsetDateTime;
use uuid::Uuid;

/// Stores a failed attempt's event and its webhook deliveries.
pub(crate) fn insert_failure(
    conn: &Connection,
    e: &LoginEvent,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<()> {
    insert_event(conn, e)?;
    crate::queries::outbox::insert_messages(conn, outbox)
}

pub(crate) fn insert_event(conn: &Connection, e: &LoginEvent) -> QResult<()> {
    conn.prepare_cached(
        "INSERT INTO login_events (id, scope, user_id, at, method, outcome, session_id, ip, user_agent) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute((
        id(e.id),
        e.scope.as_str(),
        opt_id(e.user_id),
        ms(e.at),
        &e.method,
        e.outcome.as_str(),
        opt_id(e.session_id),
        e.ip.as_deref(),
        e.user_agent.as_deref(),
    ))?;
    Ok(())
}

pub(crate) fn list_events(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    before: Option<Uuid>,
    limit: u32,
) -> QResult<Vec<LoginEvent>> {
    // Two statements rather than `(?3 IS NULL OR id < ?3)`, so the cursor is a range on
    // the (scope, user_id, id) index.
    const COLS: &str = "id, scope, user_id, at, method, outcome, session_id, ip, user_agent";
    let rows = match before {
        None => {
            let sql = format!(
                "SELECT {COLS} FROM login_events WHERE scope = ?1 AND user_id = ?2 ORDER BY id DESC LIMIT ?3"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map((scope.as_str(), id(user_id), limit), event_row)?.collect::<Result<_, _>>()?
        }
        Some(before) => {
            let sql = format!(
                "SELECT {COLS} FROM login_events WHERE scope = ?1 AND user_id = ?2 AND id < ?3 \
                 ORDER BY id DESC LIMIT ?4"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map((scope.as_str(), id(user_id), id(before), limit), event_row)?
                .collect::<Result<_, _>>()?
        }
    };
    Ok(rows)
}

/// Successful logins and distinct users per bucket over `[from, to)`. A bucket starts at a
/// multiple of its width since the epoch: `at - (at mod w)` with a floored modulo (SQLite's
/// `%` truncates toward zero, wrong before 1970). Answered from the
/// (scope, at, outcome, user_id) index alone.
pub(crate) const LOGIN_STATS: &str = "SELECT at - ((at % ?4) + ?4) % ?4 AS start, count(*), \
     count(DISTINCT user_id) FROM login_events \
     WHERE scope = ?1 AND at >= ?2 AND at < ?3 AND outcome = 'success' GROUP BY start ORDER BY start";

/// Runs [`LOGIN_STATS`] for `[from, to)` with buckets of `bucket`'s width.
pub(crate) fn login_stats(
    conn: &Connection,
    scope: &Scope,
    from: OffsetDateTime,
    to: OffsetDateTime,
    bucket: Bucket,
) -> QResult<Vec<StatBucket>> {
    let mut stmt = conn.prepare_cached(LOGIN_STATS)?;
    let rows = stmt.query_map((scope.as_str(), to_unix_ms(from), to_unix_ms(to), bucket.millis()), |r| {
        Ok(StatBucket {
            start: from_unix_ms(r.get(0)?),
            logins: r.get::<_, i64>(1)?.unsigned_abs(),
            users: r.get::<_, i64>(2)?.unsigned_abs(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
