//! What the admin web page needs beyond the API: its audit trail, the figures of every
//! scope, and login attempts counted per outcome.

use crate::codec::*;
use crate::error::QResult;
use crate::rows::audit_row;
use hallpass_core::clock::{from_unix_ms, to_unix_ms};
use hallpass_core::{AuditEntry, Bucket, Outcome, OutcomeCount, Scope, ScopeFigures};
use rusqlite::Connection;
use rusqlite::types::Type;
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) fn insert_audit(conn: &Connection, e: &AuditEntry) -> QResult<()> {
    conn.prepare_cached(
        "INSERT INTO admin_audit (id, at, admin, action, scope, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((
        id(e.id),
        ms(e.at),
        &e.admin,
        &e.action,
        e.scope.as_ref().map(Scope::as_str),
        e.target.as_deref(),
        json(&e.detail)?,
    ))?;
    Ok(())
}

pub(crate) fn list_audit(conn: &Connection, before: Option<Uuid>, limit: u32) -> QResult<Vec<AuditEntry>> {
    const COLS: &str = "id, at, admin, action, scope, target, detail";
    let rows = match before {
        None => {
            let sql = format!("SELECT {COLS} FROM admin_audit ORDER BY id DESC LIMIT ?1");
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map([limit], audit_row)?.collect::<Result<_, _>>()?
        }
        Some(before) => {
            let sql = format!("SELECT {COLS} FROM admin_audit WHERE id < ?1 ORDER BY id DESC LIMIT ?2");
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map((id(before), limit), audit_row)?.collect::<Result<_, _>>()?
        }
    };
    Ok(rows)
}

/// One row per scope that has a user or a key. The counts use the primary key of `users`
/// (scope first), `sessions_user` and a scan of `api_keys`: an operator's page, not a hot
/// path.
const SCOPE_FIGURES: &str = "SELECT s.scope, \
     (SELECT count(*) FROM users u WHERE u.scope = s.scope), \
     (SELECT count(*) FROM users u WHERE u.scope = s.scope AND u.active = 1), \
     (SELECT count(*) FROM sessions x WHERE x.scope = s.scope AND min(x.expires_at, x.absolute_expires_at) > ?1), \
     (SELECT count(*) FROM api_keys k WHERE k.scope = s.scope AND k.revoked_at IS NULL) \
     FROM (SELECT scope FROM users UNION SELECT scope FROM api_keys) s";

pub(crate) fn scope_figures(conn: &Connection, now: OffsetDateTime) -> QResult<Vec<ScopeFigures>> {
    let mut stmt = conn.prepare_cached(SCOPE_FIGURES)?;
    let rows = stmt.query_map([ms(now)], |r| {
        Ok(ScopeFigures {
            scope: get_parsed(r, 0, Scope::from_stored)?,
            users: r.get::<_, i64>(1)?.unsigned_abs(),
            active_users: r.get::<_, i64>(2)?.unsigned_abs(),
            live_sessions: r.get::<_, i64>(3)?.unsigned_abs(),
            api_keys: r.get::<_, i64>(4)?.unsigned_abs(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Attempts per bucket and outcome over `[from, to)`, buckets as in `events::LOGIN_STATS`;
/// answered from the (scope, at, outcome, user_id) index.
const OUTCOME_STATS: &str = "SELECT at - ((at % ?4) + ?4) % ?4 AS start, outcome, count(*) \
     FROM login_events WHERE scope = ?1 AND at >= ?2 AND at < ?3 GROUP BY start, outcome";

pub(crate) fn outcome_stats(
    conn: &Connection,
    scope: &Scope,
    from: OffsetDateTime,
    to: OffsetDateTime,
    bucket: Bucket,
) -> QResult<Vec<OutcomeCount>> {
    let mut stmt = conn.prepare_cached(OUTCOME_STATS)?;
    let rows = stmt.query_map((scope.as_str(), to_unix_ms(from), to_unix_ms(to), bucket.millis()), |r| {
        let outcome: String = r.get(1)?;
        Ok(OutcomeCount {
            start: from_unix_ms(r.get(0)?),
            outcome: Outcome::from_stored(&outcome)
                .ok_or_else(|| rusqlite::Error::InvalidColumnType(1, "outcome".into(), Type::Text))?,
            count: r.get::<_, i64>(2)?.unsigned_abs(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
