//! Sessions: the login write (session + event + `last_login_at` + the per-user cap, in one
//! statement), the get-session hot path, freshen, session data, ending sessions, listing,
//! sweeping.

use crate::codec::{Jsonb, id, json, ms, opt_id, opt_ms};
use crate::error::{Fail, QResult};
use crate::rows::{self, SESSION_COLUMNS, event_cols, session_cols, user_cols};
use hallpass_core::patch::merge_session_patch;
use hallpass_core::store::{Change, LoginStored, NewLogin};
use hallpass_core::{Scope, Session, StoreError, TokenHash, User};
use sqlx::{PgConnection, PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

/// The whole login write as one statement, so a login costs one round trip and one
/// commit: the user's `last_login_at` (`u`), then, only when that row was updated, the
/// session (`s`), its event (`e`), the end of the user's oldest sessions beyond the cap
/// (`d`), the login's new-device notice (`o`, an outbox row, when `$25` is not null), and
/// a `NOTIFY` of the change to other processes when `d` ended any (sent by PostgreSQL at
/// commit, so it is as atomic as the rest).
///
/// All parts see one snapshot, taken when the statement starts, so `d` does not see the
/// new session: it keeps the `$22` (cap − 1) newest of the others, and the new one stays.
///
/// Exactness of the cap under concurrent logins of one user: the update of the user row
/// waits for a concurrent login's lock, but the snapshot was taken before it committed,
/// so `d` would not see that login's session and one session too many could survive.
/// `snap` reads the user row's `xmin` in the statement's snapshot; when the row was
/// updated after it (PostgreSQL rechecks the condition against the newest version), the
/// update matches nothing, nothing is written, and the caller runs the statement again
/// with a new snapshot, at last under the row lock (`$21` true: the lock already orders
/// it, the check is off). Any other update of the user row in between (a profile change,
/// a rehash, a freeze by vacuum) costs the same harmless re-run. The answer is (user
/// found, user updated, sessions ended).
const LOGIN: &str = concat!(
    "WITH snap AS (SELECT xmin FROM users WHERE scope = $2 AND id = $3), ",
    "u AS (UPDATE users SET last_login_at = $4 FROM snap ",
    "WHERE users.scope = $2 AND users.id = $3 AND ($21 OR users.xmin = snap.xmin) RETURNING 1), ",
    "s AS (INSERT INTO sessions (",
    session_cols!(""),
    ", token_hash) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $39, $11 FROM u), ",
    "e AS (INSERT INTO login_events (",
    event_cols!(),
    ") SELECT $12, $13, $14, $15, $16, $17, $18, $19, $20 FROM u), ",
    "d AS (DELETE FROM sessions WHERE $22::bigint IS NOT NULL AND EXISTS (SELECT 1 FROM u) AND id IN ",
    "(SELECT id FROM sessions WHERE scope = $2 AND user_id = $3 ",
    "ORDER BY created_at DESC, id DESC OFFSET $22) RETURNING 1), ",
    "o AS (INSERT INTO outbox (id, scope, kind, lane, user_id, payload, state, attempts, next_attempt_at, ",
    "lease_until, lease_owner, last_error, created_at, sent_at) ",
    "SELECT $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38 FROM u WHERE $25 IS NOT NULL) ",
    "SELECT (SELECT count(*) FROM snap), (SELECT count(*) FROM u), (SELECT count(*) FROM d), ",
    "(SELECT pg_notify($23, $24) WHERE EXISTS (SELECT 1 FROM d))"
);

/// How many times [`LOGIN`] runs on its own before a login that keeps racing other
/// changes of its user takes the user's row lock first.
const UNLOCKED_ATTEMPTS: usize = 3;

/// Stores a login (see [`LOGIN`]): one statement. When a concurrent change of the user row
/// raced it (nothing was written then), the statement runs again with a new snapshot
/// (one round trip; the race means the other login has just committed), and after
/// [`UNLOCKED_ATTEMPTS`] inside a transaction that first takes the user's row lock.
/// `channel` is where other processes listen for changes; the backend tells them itself
/// when the cap ended sessions.
pub(crate) async fn insert_login(pool: &PgPool, login: &NewLogin, channel: &str) -> QResult<LoginStored> {
    // A login with webhook deliveries writes them in the same transaction: it takes the
    // locked path at once (the rows lock and the statement, then the deliveries).
    let attempts = if login.webhooks.is_empty() { UNLOCKED_ATTEMPTS } else { 0 };
    for _ in 0..attempts {
        if let Some(stored) = login_statement(pool, login, channel, false).await? {
            return Ok(stored);
        }
    }
    let s = &login.session.session;
    let mut tx = pool.begin().await?;
    // The lock an update of a non-key column takes: it queues behind (and orders) other
    // logins of the user, not behind sessions being inserted for it (their key checks).
    let locked = sqlx::query("SELECT 1 FROM users WHERE scope = $1 AND id = $2 FOR NO KEY UPDATE")
        .bind(s.scope.as_str())
        .bind(id(s.user_id))
        .fetch_optional(&mut *tx)
        .await?;
    if locked.is_none() {
        return Err(no_such_user());
    }
    let stored = login_statement(&mut *tx, login, channel, true)
        .await?
        .ok_or_else(|| Fail::Store(StoreError::Other("login raced under the user's row lock".into())))?;
    crate::queries::outbox::insert_messages(&mut tx, &login.webhooks).await?;
    tx.commit().await?;
    Ok(stored)
}

fn no_such_user() -> Fail {
    Fail::Store(StoreError::Other("login of a user that does not exist".into()))
}

/// Runs [`LOGIN`] once; `None` when it raced a concurrent change of the user row and
/// wrote nothing.
async fn login_statement(
    conn: impl sqlx::PgExecutor<'_>,
    login: &NewLogin,
    channel: &str,
    locked: bool,
) -> QResult<Option<LoginStored>> {
    let s = &login.session.session;
    let e = &login.event;
    let keep_others = login.max_sessions.map(|max| i64::from(max.max(1)) - 1);
    let q = sqlx::query(LOGIN)
        .bind(id(s.id))
        .bind(s.scope.as_str())
        .bind(id(s.user_id))
        .bind(ms(s.created_at))
        .bind(ms(s.last_seen_at))
        .bind(ms(s.expires_at))
        .bind(ms(s.absolute_expires_at))
        .bind(json(&s.data))
        .bind(s.client.ip.as_deref())
        .bind(s.client.user_agent.as_deref())
        .bind(login.session.token_hash.as_bytes().as_slice());
    let q = crate::queries::events::bind_event(q, e)
        .bind(locked)
        .bind(keep_others)
        .bind(channel)
        .bind(Change::user(&s.scope, s.user_id).to_wire());
    let n = login.notice.as_ref();
    let row = q
        .bind(n.map(|m| id(m.id)))
        .bind(n.map(|m| m.scope.as_str()))
        .bind(n.map(|m| m.kind.as_str()))
        .bind(n.map(|m| m.lane.as_str()))
        .bind(n.and_then(|m| opt_id(m.user_id)))
        .bind(n.map(|m| Jsonb(&m.payload)))
        .bind(n.map(|m| m.state.as_str()))
        .bind(n.map(|m| i32::try_from(m.attempts).unwrap_or(i32::MAX)))
        .bind(n.map(|m| ms(m.next_attempt_at)))
        .bind(n.and_then(|m| opt_ms(m.lease_until)))
        .bind(n.and_then(|m| m.lease_owner.as_deref()))
        .bind(n.and_then(|m| m.last_error.as_deref()))
        .bind(n.map(|m| ms(m.created_at)))
        .bind(n.and_then(|m| opt_ms(m.sent_at)))
        .bind(s.amr_text())
        .fetch_one(conn)
        .await?;
    let (found, updated, ended): (i64, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if found == 0 {
        return Err(no_such_user());
    }
    if updated == 0 {
        return Ok(None);
    }
    let ended = u64::try_from(ended).unwrap_or(0);
    Ok(Some(LoginStored { ended, published: ended > 0 }))
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
    max_bytes: usize,
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
    // Over the cap: an error, and the dropped transaction writes nothing.
    merge_session_patch(&mut session.data, patch, max_bytes).map_err(Fail::Store)?;
    sqlx::query("UPDATE sessions SET data = $2 WHERE id = $1")
        .bind(id(session.id))
        .bind(json(&session.data))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(session))
}

pub(crate) async fn delete_session_by_hash(
    pool: impl sqlx::PgExecutor<'_>,
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
    pool: impl sqlx::PgExecutor<'_>,
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
    let flows = sqlx::query(super::flows::SWEEP_FLOWS).bind(now).bind(batch).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(sessions.rows_affected() + codes.rows_affected() + throttles.rows_affected() + flows.rows_affected())
}
