//! Sessions: the login transaction (session + event + `last_login_at` + the per-user cap),
//! the get-session hot path, freshen, session data, ending sessions, listing, sweeping.

use crate::codec::*;
use crate::error::{QResult, corrupt};
use crate::queries::events::insert_event;
use crate::queries::users::no_such_user;
use crate::rows::{SESSION_COLUMNS, session_cols, session_from_row, session_row, user_cols, user_from_row};
use hallpass_core::patch::merge_session_patch;
use hallpass_core::store::{LoginStored, NewLogin};
use hallpass_core::{Scope, Session, TokenHash, User};
use sqlx::mysql::MySqlConnection;
use time::OffsetDateTime;
use uuid::Uuid;

const INSERT_SESSION: &str = concat!(
    "INSERT INTO sessions (",
    session_cols!(""),
    ", token_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
);

/// Stores a login in the caller's transaction: the user's `last_login_at` (which also
/// takes the user's row lock, so two logins of one user queue and the cap below counts
/// right), the session, its event, its new-device notice (an outbox row) when it has one,
/// and with a cap the end of the user's oldest sessions beyond it.
pub(crate) async fn insert_login(c: &mut MySqlConnection, login: &NewLogin) -> QResult<LoginStored> {
    let s = &login.session.session;
    let scope = s.scope.as_str();
    let uid = id(s.user_id);
    let n = sqlx::query("UPDATE users SET last_login_at = ? WHERE scope = ? AND id = ?")
        .bind(ms(s.created_at))
        .bind(scope)
        .bind(&uid)
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(no_such_user("login"));
    }
    sqlx::query(INSERT_SESSION)
        .bind(id(s.id))
        .bind(scope)
        .bind(&uid)
        .bind(ms(s.created_at))
        .bind(ms(s.last_seen_at))
        .bind(ms(s.expires_at))
        .bind(ms(s.absolute_expires_at))
        .bind(json(&s.data)?)
        .bind(s.client.ip.as_deref())
        .bind(s.client.user_agent.as_deref())
        .bind(s.amr_text())
        .bind(hash(&login.session.token_hash))
        .execute(&mut *c)
        .await?;
    insert_event(c, &login.event).await?;
    if let Some(notice) = &login.notice {
        crate::queries::outbox::insert_message(&mut *c, notice).await?;
    }
    crate::queries::outbox::insert_messages(&mut *c, &login.webhooks).await?;
    let mut stored = LoginStored::default();
    if let Some(max) = login.max_sessions {
        // A locking count: it waits for (and then sees) a concurrent logout's delete, so
        // the cap never ends one session too many. "Oldest" is (created_at, id), as in
        // the reference store; the new session counts.
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE scope = ? AND user_id = ? FOR UPDATE")
                .bind(scope)
                .bind(&uid)
                .fetch_one(&mut *c)
                .await?;
        let surplus = count - i64::from(max.max(1));
        if surplus > 0 {
            stored.ended = sqlx::query(
                "DELETE FROM sessions WHERE scope = ? AND user_id = ? ORDER BY created_at, id LIMIT ?",
            )
            .bind(scope)
            .bind(&uid)
            .bind(surplus)
            .execute(&mut *c)
            .await?
            .rows_affected();
        }
    }
    Ok(stored)
}

/// The statement of the hot path: one probe of the unique `sessions_token_hash` index,
/// one of the users primary key. Whatever the expiry; the service judges it.
const FIND_SESSION: &str = concat!(
    "SELECT ",
    session_cols!("s."),
    ", ",
    user_cols!("u."),
    " FROM sessions s JOIN users u ON u.scope = s.scope AND u.id = s.user_id",
    " WHERE s.token_hash = ? AND s.scope = ?"
);

pub(crate) async fn find_session(
    c: &mut MySqlConnection,
    scope: &Scope,
    token: &TokenHash,
) -> QResult<Option<(Session, User)>> {
    let row =
        sqlx::query(FIND_SESSION).bind(hash(token)).bind(scope.as_str()).fetch_optional(&mut *c).await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some((session_from_row(&r, 0)?, user_from_row(&r, SESSION_COLUMNS)?))),
    }
}

const SESSION_BY_HASH: &str =
    concat!("SELECT ", session_cols!(""), " FROM sessions WHERE token_hash = ? AND scope = ?");
const LOCK_SESSION_BY_HASH: &str =
    concat!("SELECT ", session_cols!(""), " FROM sessions WHERE token_hash = ? AND scope = ? FOR UPDATE");

/// Sets `last_seen_at`; `expires_at` only ever moves forward (`GREATEST`), so a late or
/// concurrent freshen with an earlier expiry cannot shorten a session. MariaDB has no
/// `UPDATE ... RETURNING`: the row is read back in the same transaction, where our
/// update's lock keeps it as we left it.
pub(crate) async fn freshen_session(
    c: &mut MySqlConnection,
    scope: &Scope,
    token: &TokenHash,
    last_seen_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> QResult<Option<Session>> {
    let n = sqlx::query(
        "UPDATE sessions SET last_seen_at = ?, expires_at = GREATEST(expires_at, ?) WHERE token_hash = ? AND scope = ?",
    )
    .bind(ms(last_seen_at))
    .bind(ms(expires_at))
    .bind(hash(token))
    .bind(scope.as_str())
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(None);
    }
    let row =
        sqlx::query(SESSION_BY_HASH).bind(hash(token)).bind(scope.as_str()).fetch_optional(&mut *c).await?;
    row.as_ref().map(session_row).transpose()
}

/// Read under `FOR UPDATE`, merge, write back: two concurrent patches of one session both
/// land (the second reads what the first wrote).
pub(crate) async fn patch_session_data(
    c: &mut MySqlConnection,
    scope: &Scope,
    token: &TokenHash,
    patch: &serde_json::Value,
    max_bytes: usize,
) -> QResult<Option<Session>> {
    let row = sqlx::query(LOCK_SESSION_BY_HASH)
        .bind(hash(token))
        .bind(scope.as_str())
        .fetch_optional(&mut *c)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut session = session_row(&row)?;
    // Over the cap: an error, and the caller's transaction rolls back.
    merge_session_patch(&mut session.data, patch, max_bytes)?;
    sqlx::query("UPDATE sessions SET data = ? WHERE token_hash = ? AND scope = ?")
        .bind(json(&session.data)?)
        .bind(hash(token))
        .bind(scope.as_str())
        .execute(&mut *c)
        .await?;
    Ok(Some(session))
}

/// Reads the session under lock and deletes it (MySQL has no `DELETE ... RETURNING`);
/// of two concurrent logouts, one returns the session and the other `None`.
pub(crate) async fn delete_session_by_hash(
    c: &mut MySqlConnection,
    scope: &Scope,
    token: &TokenHash,
) -> QResult<Option<Session>> {
    let row = sqlx::query(LOCK_SESSION_BY_HASH)
        .bind(hash(token))
        .bind(scope.as_str())
        .fetch_optional(&mut *c)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let session = session_row(&row)?;
    let n = sqlx::query("DELETE FROM sessions WHERE token_hash = ? AND scope = ?")
        .bind(hash(token))
        .bind(scope.as_str())
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n != 1 {
        // The row was locked by us; it cannot have gone. Say so rather than guess.
        return Err(corrupt("session", "a locked session vanished"));
    }
    Ok(Some(session))
}

pub(crate) async fn delete_session(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    session_id: Uuid,
) -> QResult<bool> {
    let n = sqlx::query("DELETE FROM sessions WHERE scope = ? AND user_id = ? AND id = ?")
        .bind(scope.as_str())
        .bind(id(user_id))
        .bind(id(session_id))
        .execute(&mut *c)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Ends every session of the user but `keep`; how many ended. Shared by every path that
/// must end sessions in its own transaction (deactivation, password, reset, delete).
pub(crate) async fn end_sessions(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> QResult<u64> {
    let done = match keep {
        None => {
            sqlx::query("DELETE FROM sessions WHERE scope = ? AND user_id = ?")
                .bind(scope.as_str())
                .bind(id(user_id))
                .execute(&mut *c)
                .await?
        }
        Some(keep) => {
            sqlx::query("DELETE FROM sessions WHERE scope = ? AND user_id = ? AND id <> ?")
                .bind(scope.as_str())
                .bind(id(user_id))
                .bind(id(keep))
                .execute(&mut *c)
                .await?
        }
    };
    Ok(done.rows_affected())
}

/// A user's sessions valid at `?` (`now < valid_until`), newest first: the
/// `sessions_user` index, `valid_until` checked on its rows.
const LIST_SESSIONS: &str = concat!(
    "SELECT ",
    session_cols!(""),
    " FROM sessions WHERE scope = ? AND user_id = ? AND valid_until > ?",
    " ORDER BY created_at DESC, id DESC"
);

pub(crate) async fn list_sessions(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    now: OffsetDateTime,
) -> QResult<Vec<Session>> {
    let rows = sqlx::query(LIST_SESSIONS)
        .bind(scope.as_str())
        .bind(id(user_id))
        .bind(ms(now))
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(session_row).collect()
}

/// How many sessions (of every scope) are valid at `now`, counted on `sessions_valid_until`.
pub(crate) async fn count_valid(c: &mut MySqlConnection, now: OffsetDateTime) -> QResult<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE valid_until > ?")
        .bind(ms(now))
        .fetch_one(&mut *c)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Sweeps dead sessions and expired codes, at most `batch` rows of each, so one sweep
/// never holds many locks for long. Both deletes walk their expiry index
/// (`sessions_valid_until`, `codes_expires_at`) and stop after `batch` rows.
pub(crate) async fn sweep_expired(c: &mut MySqlConnection, now: OffsetDateTime, batch: u32) -> QResult<u64> {
    let now = ms(now);
    let sessions = sqlx::query("DELETE FROM sessions WHERE valid_until <= ? ORDER BY valid_until LIMIT ?")
        .bind(now)
        .bind(batch)
        .execute(&mut *c)
        .await?
        .rows_affected();
    let codes = sqlx::query("DELETE FROM codes WHERE expires_at <= ? ORDER BY expires_at LIMIT ?")
        .bind(now)
        .bind(batch)
        .execute(&mut *c)
        .await?
        .rows_affected();
    let throttles = super::throttles::sweep(&mut *c, now, batch).await?;
    let flows = super::flows::sweep(&mut *c, now, batch).await?;
    Ok(sessions + codes + throttles + flows)
}
