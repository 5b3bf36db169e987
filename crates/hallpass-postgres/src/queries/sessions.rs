//! Sessions: the login transaction (session + event + `last_login_at` + the per-user cap),
//! the get-session hot path, freshen, session data, ending sessions, listing, sweeping.

use crate::error::{Fail, QResult};
use crate::queries::events::insert_event_in;
use crate::rows::{self, SESSION_COLUMNS, id, json, ms, opt_id, session_cols, user_cols};
use hallpass_core::service::merge_patch;
use hallpass_core::store::NewLogin;
use hallpass_core::{Scope, Session, StoreError, TokenHash, User};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// Stores a login in one transaction: the user's `last_login_at` first, the session, its
/// event, and (with a cap) the end of the user's oldest sessions beyond it.
///
/// Updating the user row first does two things: it refuses a login of a missing user
/// before anything is written, and its row lock serialises concurrent logins of one user
/// until commit, so the cap is exact (two logins at once cannot each see only the other's
/// predecessors and both keep one session too many).
pub(crate) async fn insert_login(pool: &PgPool, login: &NewLogin) -> QResult<()> {
    let s = &login.session.session;
    let scope = s.scope.as_str();
    let mut tx = pool.begin().await?;
    let done = sqlx::query("UPDATE users SET last_login_at = $3 WHERE scope = $1 AND id = $2")
        .bind(scope)
        .bind(id(s.user_id))
        .bind(ms(s.created_at))
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Fail::Store(StoreError::Other("login of a user that does not exist".into())));
    }
    sqlx::query(concat!(
        "INSERT INTO sessions (",
        session_cols!(""),
        ", token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(id(s.id))
    .bind(scope)
    .bind(id(s.user_id))
    .bind(ms(s.created_at))
    .bind(ms(s.last_seen_at))
    .bind(ms(s.expires_at))
    .bind(ms(s.absolute_expires_at))
    .bind(json(&s.data))
    .bind(s.client.ip.as_deref())
    .bind(s.client.user_agent.as_deref())
    .bind(login.session.token_hash.as_bytes().as_slice())
    .execute(&mut *tx)
    .await?;
    insert_event_in(&mut tx, &login.event).await?;
    if let Some(max) = login.max_sessions {
        // Keep the `max` newest (the new one among them, being the newest); the rest go.
        // "Oldest" is (created_at, id), as in the reference store.
        sqlx::query(
            "DELETE FROM sessions WHERE scope = $1 AND user_id = $2 AND id NOT IN \
             (SELECT id FROM sessions WHERE scope = $1 AND user_id = $2 \
              ORDER BY created_at DESC, id DESC LIMIT $3)",
        )
        .bind(scope)
        .bind(id(s.user_id))
        .bind(i64::from(max))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The statement of the hot path: one probe of the unique token-hash index, one of the
/// users primary key, no write. Whatever the expiry; the service judges it.
pub(crate) const FIND_SESSION: &str = concat!(
    "SELECT ",
    session_cols!("s."),
    ", ",
    user_cols!("u."),
    " FROM sessions s JOIN users u ON u.scope = s.scope AND u.id = s.user_id",
    " WHERE s.token_hash = $1 AND s.scope = $2"
);

pub(crate) async fn find_session(
    pool: &PgPool,
    scope: &Scope,
    token: &TokenHash,
) -> QResult<Option<(Session, User)>> {
    let row = sqlx::query(FIND_SESSION)
        .bind(token.as_bytes().as_slice())
        .bind(scope.as_str())
        .fetch_optional(pool)
        .await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some((rows::session(&r, 0)?, rows::user(&r, SESSION_COLUMNS)?))),
    }
}

/// Sets `last_seen_at`; `expires_at` only ever moves forward (`GREATEST`), so a late or
/// concurrent freshen with an earlier expiry cannot shorten a session. One statement.
pub(crate) async fn freshen_session(
    pool: &PgPool,
    scope: &Scope,
    token: &TokenHash,
    last_seen_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> QResult<Option<Session>> {
    let row = sqlx::query(concat!(
        "UPDATE sessions SET last_seen_at = $3, expires_at = GREATEST(expires_at, $4)",
        " WHERE token_hash = $1 AND scope = $2 RETURNING ",
        session_cols!("")
    ))
    .bind(token.as_bytes().as_slice())
    .bind(scope.as_str())
    .bind(ms(last_seen_at))
    .bind(ms(expires_at))
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(|r| rows::session(r, 0)).transpose()
}

/// Read, merge, write back, in one transaction with the row locked `FOR UPDATE`: two
/// concurrent patches of one session both land (the second reads what the first wrote).
/// The merge is the core's RFC 7396 implementation, so every backend merges alike.
pub(crate) async fn patch_session_data(
    pool: &PgPool,
    scope: &Scope,
    token: &TokenHash,
    patch: &serde_json::Value,
) -> QResult<Option<Session>> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        session_cols!(""),
        " FROM sessions WHERE token_hash = $1 AND scope = $2 FOR UPDATE"
    ))
    .bind(token.as_bytes().as_slice())
    .bind(scope.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut session = rows::session(&row, 0)?;
    merge_patch(&mut session.data, patch).map_err(|e| Fail::Store(StoreError::Other(e.to_string())))?;
    sqlx::query("UPDATE sessions SET data = $2 WHERE id = $1")
        .bind(id(session.id))
        .bind(json(&session.data))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(session))
}

pub(crate) async fn delete_session_by_hash(
    pool: &PgPool,
    scope: &Scope,
    token: &TokenHash,
) -> QResult<Option<Session>> {
    let row = sqlx::query(concat!(
        "DELETE FROM sessions WHERE token_hash = $1 AND scope = $2 RETURNING ",
        session_cols!("")
    ))
    .bind(token.as_bytes().as_slice())
    .bind(scope.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(|r| rows::session(r, 0)).transpose()
}

pub(crate) async fn delete_session(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    session_id: Uuid,
) -> QResult<bool> {
    let done = sqlx::query("DELETE FROM sessions WHERE scope = $1 AND user_id = $2 AND id = $3")
        .bind(scope.as_str())
        .bind(id(user_id))
        .bind(id(session_id))
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends every session of the user but `keep`; how many ended. Shared by every path that
/// must end sessions inside its own transaction (deactivation, password, reset, delete).
pub(crate) async fn end_sessions(
    conn: &mut PgConnection,
    scope: &Scope,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> QResult<u64> {
    // `id IS DISTINCT FROM NULL` is true for every row, so one statement serves both.
    let done =
        sqlx::query("DELETE FROM sessions WHERE scope = $1 AND user_id = $2 AND id IS DISTINCT FROM $3")
            .bind(scope.as_str())
            .bind(id(user_id))
            .bind(opt_id(keep))
            .execute(conn)
            .await?;
    Ok(done.rows_affected())
}

/// A user's sessions valid at `$3` (`now < LEAST(expires_at, absolute_expires_at)`),
/// newest first, from the `sessions_user` index.
pub(crate) const LIST_SESSIONS: &str = concat!(
    "SELECT ",
    session_cols!(""),
    " FROM sessions WHERE scope = $1 AND user_id = $2 AND LEAST(expires_at, absolute_expires_at) > $3",
    " ORDER BY created_at DESC, id DESC"
);

pub(crate) async fn list_sessions(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    now: OffsetDateTime,
) -> QResult<Vec<Session>> {
    let found = sqlx::query(LIST_SESSIONS)
        .bind(scope.as_str())
        .bind(id(user_id))
        .bind(ms(now))
        .fetch_all(pool)
        .await?;
    found.iter().map(|r| rows::session(r, 0)).collect()
}

/// Up to `$2` sessions dead at `$1`, found through the `sessions_valid_until` expression
/// index. `SKIP LOCKED`: several hallpass processes may sweep at once without waiting on
/// each other, and a sweep never waits on a session being freshened or patched.
pub(crate) const SWEEP_SESSIONS: &str = "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions \
     WHERE LEAST(expires_at, absolute_expires_at) <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)";

/// How many sessions (of every scope) are valid at `now`, counted on the expiry index.
pub(crate) async fn count_valid(pool: &PgPool, now: OffsetDateTime) -> QResult<u64> {
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sessions WHERE LEAST(expires_at, absolute_expires_at) > $1")
            .bind(ms(now))
            .fetch_one(pool)
            .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Up to `$2` codes expired at `$1`.
pub(crate) const SWEEP_CODES: &str = "DELETE FROM codes WHERE code_hash IN (SELECT code_hash FROM codes \
     WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)";

/// Sweeps dead sessions, expired codes and expired throttling counters, at most `batch` rows of each, in one short
/// transaction, so one sweep never holds many row locks for long.
pub(crate) async fn sweep_expired(pool: &PgPool, now: OffsetDateTime, batch: u32) -> QResult<u64> {
    let (now, batch) = (ms(now), i64::from(batch));
    let mut tx = pool.begin().await?;
    let sessions = sqlx::query(SWEEP_SESSIONS).bind(now).bind(batch).execute(&mut *tx).await?;
    let codes = sqlx::query(SWEEP_CODES).bind(now).bind(batch).execute(&mut *tx).await?;
    let throttles =
        sqlx::query(super::throttles::SWEEP_THROTTLES).bind(now).bind(batch).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(sessions.rows_affected() + codes.rows_affected() + throttles.rows_affected())
}
