//! Sessions: the login transaction (session + event + `last_login_at` + the per-user cap),
//! the get-session hot path, freshen, session data, ending sessions, listing, sweeping.

use crate::codec::*;
use crate::error::{Fail, QResult};
use crate::queries::events::insert_event;
use crate::rows::{SESSION_COLUMNS, session_cols, session_from_row, session_row, user_cols, user_from_row};
use hallpass_core::patch::merge_session_patch;
use hallpass_core::store::{LoginStored, NewLogin};
use hallpass_core::{Scope, Session, TokenHash, User};
use rusqlite::{Connection, OptionalExtension};
use time::OffsetDateTime;
use uuid::Uuid;

/// Stores a login in the caller's transaction: the session, its event, the user's
/// `last_login_at`, its new-device notice (an outbox row) when it has one, and (with a
/// cap) the end of the user's oldest sessions beyond it.
pub(crate) fn insert_login(conn: &Connection, login: &NewLogin) -> QResult<LoginStored> {
    let s = &login.session.session;
    let scope = s.scope.as_str();
    let uid = id(s.user_id);
    // First, so that a login for a missing user fails (foreign key) before anything else.
    conn.prepare_cached(concat!(
        "INSERT INTO sessions (",
        session_cols!(""),
        ", token_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?
    .execute((
        id(s.id),
        scope,
        &uid,
        ms(s.created_at),
        ms(s.last_seen_at),
        ms(s.expires_at),
        ms(s.absolute_expires_at),
        json(&s.data)?,
        s.client.ip.as_deref(),
        s.client.user_agent.as_deref(),
        s.amr_text(),
        hash(&login.session.token_hash),
    ))?;
    insert_event(conn, &login.event)?;
    if let Some(notice) = &login.notice {
        crate::queries::outbox::insert_message(conn, notice)?;
    }
    crate::queries::outbox::insert_messages(conn, &login.webhooks)?;
    conn.prepare_cached("UPDATE users SET last_login_at = ?3 WHERE scope = ?1 AND id = ?2")?.execute((
        scope,
        &uid,
        ms(s.created_at),
    ))?;
    let mut stored = LoginStored::default();
    if let Some(max) = login.max_sessions {
        // Keep the `max` newest (the new one among them, being the newest); the rest go.
        // "Oldest" is (created_at, id), as in the reference store.
        let ended = conn
            .prepare_cached(
                "DELETE FROM sessions WHERE scope = ?1 AND user_id = ?2 AND id NOT IN \
                 (SELECT id FROM sessions WHERE scope = ?1 AND user_id = ?2 \
                  ORDER BY created_at DESC, id DESC LIMIT ?3)",
            )?
            .execute((scope, &uid, i64::from(max.max(1))))?;
        stored.ended = ended as u64;
    }
    Ok(stored)
}

/// The statement of the hot path: one probe of the unique token-hash index, one of the
/// users primary key. Whatever the expiry; the service judges it.
pub(crate) const FIND_SESSION: &str = concat!(
    "SELECT ",
    session_cols!("s."),
    ", ",
    user_cols!("u."),
    " FROM sessions s JOIN users u ON u.scope = s.scope AND u.id = s.user_id",
    " WHERE s.token_hash = ?1 AND s.scope = ?2"
);

pub(crate) fn find_session(
    conn: &Connection,
    scope: &Scope,
    token: &TokenHash,
) -> QResult<Option<(Session, User)>> {
    let mut stmt = conn.prepare_cached(FIND_SESSION)?;
    let found = stmt
        .query_row((hash(token), scope.as_str()), |r| {
            Ok((session_from_row(r, 0)?, user_from_row(r, SESSION_COLUMNS)?))
        })
        .optional()?;
    Ok(found)
}

/// Sets `last_seen_at`; `expires_at` only ever moves forward (`max`), so a late or
/// concurrent freshen with an earlier expiry cannot shorten a session.
pub(crate) fn freshen_session(
    conn: &Connection,
    scope: &Scope,
    token: &TokenHash,
    last_seen_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> QResult<Option<Session>> {
    let mut stmt = conn.prepare_cached(concat!(
        "UPDATE sessions SET last_seen_at = ?3, expires_at = max(expires_at, ?4)",
        " WHERE token_hash = ?1 AND scope = ?2 RETURNING ",
        session_cols!("")
    ))?;
    Ok(stmt
        .query_row((hash(token), scope.as_str(), ms(last_seen_at), ms(expires_at)), session_row)
        .optional()?)
}

/// Read, merge, write back, all under the transaction's write lock: two concurrent
/// patches both land (neither overwrites the other's keys).
pub(crate) fn patch_session_data(
    conn: &Connection,
    scope: &Scope,
    token: &TokenHash,
    patch: &serde_json::Value,
    max_bytes: usize,
) -> QResult<Option<Session>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        session_cols!(""),
        " FROM sessions WHERE token_hash = ?1 AND scope = ?2"
    ))?;
    let Some(mut session) = stmt.query_row((hash(token), scope.as_str()), session_row).optional()? else {
        return Ok(None);
    };
    // Over the cap: an error, so the transaction writes nothing.
    merge_session_patch(&mut session.data, patch, max_bytes).map_err(Fail::Store)?;
    conn.prepare_cached("UPDATE sessions SET data = ?3 WHERE token_hash = ?1 AND scope = ?2")?.execute((
        hash(token),
        scope.as_str(),
        json(&session.data)?,
    ))?;
    Ok(Some(session))
}

pub(crate) fn delete_session_by_hash(
    conn: &Connection,
    scope: &Scope,
    token: &TokenHash,
) -> QResult<Option<Session>> {
    let mut stmt = conn.prepare_cached(concat!(
        "DELETE FROM sessions WHERE token_hash = ?1 AND scope = ?2 RETURNING ",
        session_cols!("")
    ))?;
    Ok(stmt.query_row((hash(token), scope.as_str()), session_row).optional()?)
}

pub(crate) fn delete_session(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    session_id: Uuid,
) -> QResult<bool> {
    let n = conn
        .prepare_cached("DELETE FROM sessions WHERE scope = ?1 AND user_id = ?2 AND id = ?3")?
        .execute((scope.as_str(), id(user_id), id(session_id)))?;
    Ok(n > 0)
}

/// Ends every session of the user but `keep`; how many ended. Shared by every path that
/// must end sessions in its own transaction (deactivation, password, reset, delete).
pub(crate) fn end_sessions(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> QResult<u64> {
    let n = match keep {
        None => conn
            .prepare_cached("DELETE FROM sessions WHERE scope = ?1 AND user_id = ?2")?
            .execute((scope.as_str(), id(user_id)))?,
        Some(keep) => conn
            .prepare_cached("DELETE FROM sessions WHERE scope = ?1 AND user_id = ?2 AND id <> ?3")?
            .execute((scope.as_str(), id(user_id), id(keep)))?,
    };
    Ok(n as u64)
}

/// A user's sessions valid at `?3`, newest first (the `sessions_user` index).
pub(crate) const LIST_SESSIONS: &str = concat!(
    "SELECT ",
    session_cols!(""),
    " FROM sessions WHERE scope = ?1 AND user_id = ?2 AND min(expires_at, absolute_expires_at) > ?3",
    " ORDER BY created_at DESC, id DESC"
);

/// Sessions valid at `now` (`now < min(expires_at, absolute_expires_at)`), newest first.
pub(crate) fn list_sessions(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    now: OffsetDateTime,
) -> QResult<Vec<Session>> {
    let mut stmt = conn.prepare_cached(LIST_SESSIONS)?;
    let rows = stmt.query_map((scope.as_str(), id(user_id), ms(now)), session_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Up to `?2` sessions dead at `?1`.
pub(crate) const SWEEP_SESSIONS: &str = "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions \
     WHERE min(expires_at, absolute_expires_at) <= ?1 LIMIT ?2)";

/// Sessions valid at `?1`, counted on the expiry index.
pub(crate) const COUNT_VALID: &str =
    "SELECT count(*) FROM sessions WHERE min(expires_at, absolute_expires_at) > ?1";

/// How many sessions (of every scope) are valid at `now`.
pub(crate) fn count_valid(conn: &Connection, now: OffsetDateTime) -> QResult<u64> {
    let n: i64 = conn.prepare_cached(COUNT_VALID)?.query_row([ms(now)], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Up to `?2` codes expired at `?1`.
pub(crate) const SWEEP_CODES: &str =
    "DELETE FROM codes WHERE rowid IN (SELECT rowid FROM codes WHERE expires_at <= ?1 LIMIT ?2)";

/// Sweeps dead sessions, expired codes and expired throttling counters, at most `batch` rows of each, so one sweep
/// never holds the write lock for long. The `rowid IN (... LIMIT)` form works without
/// SQLite's optional `DELETE ... LIMIT`; the inner queries use the expiry indexes (the
/// session one is on exactly this `min(...)` expression).
pub(crate) fn sweep_expired(conn: &Connection, now: OffsetDateTime, batch: u32) -> QResult<u64> {
    let now = ms(now);
    let batch = i64::from(batch);
    let sessions = conn.prepare_cached(SWEEP_SESSIONS)?.execute((now, batch))?;
    let codes = conn.prepare_cached(SWEEP_CODES)?.execute((now, batch))?;
    let throttles = conn.prepare_cached(super::throttles::SWEEP_THROTTLES)?.execute((now, batch))?;
    let flows = conn.prepare_cached(super::flows::SWEEP_FLOWS)?.execute((now, batch))?;
    Ok((sessions + codes + throttles + flows) as u64)
}
