//! Reading rows back: every function that turns a `PgRow` into a domain value (user,
//! session, identity, login event, API key, throttle state, audit entry), with the column
//! lists that fix the positions they read (the `*_cols!` macros; a table without one lists
//! its columns in the statements of `crate::queries` that read it).
//!
//! The column values themselves are decoded by `crate::codec`. Reading back re-parses the
//! typed values (`Scope`, `ProviderName`, ...); a stored value that no longer parses is
//! corrupt data and surfaces as `StoreError::Other`.

use crate::codec::{DbId, Jsonb, id_at, object_at, opt_id_at, opt_time_at, scope_at, time_at};
use crate::error::{QResult, corrupt};
use hallpass_core::clock::from_unix_ms;
use hallpass_core::{
    ApiKey, AuditEntry, ClientId, ClientInfo, Confirmation, Email, Group, Identity, JsonObject, LoginEvent,
    OutboxKind, OutboxMessage, OutboxState, Outcome, ProviderName, Scope, Session, ThrottleState, User,
    UserRecord, Username,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

/// The columns of a user row in the order [`user`] reads them; the argument is a table
/// alias prefix such as `"u."` (or `""`).
macro_rules! user_cols {
    ($p:literal) => {
        concat!(
            $p,
            "scope, ",
            $p,
            "id, ",
            $p,
            "username, ",
            $p,
            "email, ",
            $p,
            "group_name, ",
            $p,
            "extra, ",
            $p,
            "active, ",
            $p,
            "confirmation, ",
            $p,
            "confirmed, ",
            $p,
            "created_at, ",
            $p,
            "updated_at, ",
            $p,
            "last_login_at, ",
            $p,
            "password_hash"
        )
    };
}

/// The columns of a session row in the order [`session`] reads them.
macro_rules! session_cols {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "scope, ",
            $p,
            "user_id, ",
            $p,
            "created_at, ",
            $p,
            "last_seen_at, ",
            $p,
            "expires_at, ",
            $p,
            "absolute_expires_at, ",
            $p,
            "data, ",
            $p,
            "ip, ",
            $p,
            "user_agent, ",
            $p,
            "amr"
        )
    };
}

/// The columns of an identity row in the order [`identity`] reads them.
macro_rules! identity_cols {
    () => {
        "scope, user_id, provider, client_id, access_token, access_token_expiry, created_at, updated_at, \
         refresh_token"
    };
}

/// The columns of an event row in the order [`event`] reads them.
macro_rules! event_cols {
    () => {
        "id, scope, user_id, at, method, outcome, session_id, ip, user_agent"
    };
}

/// The columns of an API key row in the order [`api_key`] reads them.
macro_rules! key_cols {
    () => {
        "id, scope, name, created_at, revoked_at, last_used_at"
    };
}

pub(crate) use {event_cols, identity_cols, key_cols, session_cols, user_cols};

/// How many columns [`session_cols!`] lists (where a joined user's columns start).
pub(crate) const SESSION_COLUMNS: usize = 11;

/// Reads a user from the [`user_cols!`] columns starting at `base`.
pub(crate) fn user(row: &PgRow, base: usize) -> QResult<User> {
    let confirmation = match row.try_get::<Option<String>, _>(base + 7)? {
        None => None,
        Some(s) => Some(Confirmation::from_stored(&s).ok_or_else(|| corrupt("confirmation", s))?),
    };
    Ok(User {
        scope: scope_at(row, base)?,
        id: id_at(row, base + 1)?,
        username: row.try_get::<Option<String>, _>(base + 2)?.map(Username::from_stored),
        email: row.try_get::<Option<String>, _>(base + 3)?.map(Email::from_stored),
        group: Group::from_stored(row.try_get(base + 4)?),
        extra: object_at(row, base + 5)?,
        active: row.try_get(base + 6)?,
        confirmation,
        confirmed: row.try_get(base + 8)?,
        created_at: time_at(row, base + 9)?,
        updated_at: time_at(row, base + 10)?,
        last_login_at: opt_time_at(row, base + 11)?,
    })
}

/// Reads a user with its password hash from the [`user_cols!`] columns.
pub(crate) fn user_record(row: &PgRow) -> QResult<UserRecord> {
    Ok(UserRecord { user: user(row, 0)?, password_hash: row.try_get(12)? })
}

/// Reads a session from the [`session_cols!`] columns starting at `base`.
pub(crate) fn session(row: &PgRow, base: usize) -> QResult<Session> {
    Ok(Session {
        id: id_at(row, base)?,
        scope: scope_at(row, base + 1)?,
        user_id: id_at(row, base + 2)?,
        created_at: time_at(row, base + 3)?,
        last_seen_at: time_at(row, base + 4)?,
        expires_at: time_at(row, base + 5)?,
        absolute_expires_at: time_at(row, base + 6)?,
        data: object_at(row, base + 7)?,
        client: ClientInfo { ip: row.try_get(base + 8)?, user_agent: row.try_get(base + 9)? },
        amr: Session::amr_from_text(&row.try_get::<String, _>(base + 10)?),
    })
}

/// Reads an identity from the [`identity_cols!`] columns.
pub(crate) fn identity(row: &PgRow) -> QResult<Identity> {
    let provider: String = row.try_get(2)?;
    let client_id: String = row.try_get(3)?;
    Ok(Identity {
        scope: scope_at(row, 0)?,
        user_id: id_at(row, 1)?,
        provider: ProviderName::parse(&provider).map_err(|e| corrupt("provider", e))?,
        client_id: ClientId::parse(&client_id).map_err(|e| corrupt("client_id", e))?,
        access_token: row.try_get(4)?,
        access_token_expiry: opt_time_at(row, 5)?,
        created_at: time_at(row, 6)?,
        updated_at: time_at(row, 7)?,
        refresh_token: row.try_get(8)?,
    })
}

/// Reads a login event from the [`event_cols!`] columns.
pub(crate) fn event(row: &PgRow) -> QResult<LoginEvent> {
    let outcome: String = row.try_get(5)?;
    Ok(LoginEvent {
        id: id_at(row, 0)?,
        scope: scope_at(row, 1)?,
        user_id: opt_id_at(row, 2)?,
        at: time_at(row, 3)?,
        method: row.try_get(4)?,
        outcome: Outcome::from_stored(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
        session_id: opt_id_at(row, 6)?,
        ip: row.try_get(7)?,
        user_agent: row.try_get(8)?,
    })
}

/// Reads an API key from the [`key_cols!`] columns.
pub(crate) fn api_key(row: &PgRow) -> QResult<ApiKey> {
    Ok(ApiKey {
        id: id_at(row, 0)?,
        scope: scope_at(row, 1)?,
        name: row.try_get(2)?,
        created_at: time_at(row, 3)?,
        revoked_at: opt_time_at(row, 4)?,
        last_used_at: opt_time_at(row, 5)?,
    })
}

pub(crate) fn state(row: &PgRow) -> QResult<ThrottleState> {
    let failures: i64 = row.try_get(0)?;
    Ok(ThrottleState {
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        first_at: from_unix_ms(row.try_get(1)?),
        last_at: from_unix_ms(row.try_get(2)?),
        expires_at: from_unix_ms(row.try_get(3)?),
    })
}

pub(crate) fn audit_row(row: &PgRow) -> QResult<AuditEntry> {
    let scope: Option<String> = row.try_get(4)?;
    Ok(AuditEntry {
        id: row.try_get::<DbId, _>(0)?.0,
        at: from_unix_ms(row.try_get::<i64, _>(1)?),
        admin: row.try_get(2)?,
        action: row.try_get(3)?,
        scope: scope.map(|s| Scope::from_stored(&s).map_err(|e| corrupt("scope", e))).transpose()?,
        target: row.try_get(5)?,
        detail: row.try_get::<Jsonb<JsonObject>, _>(6)?.0,
    })
}

/// An outbox row, columns as `crate::queries::outbox` lists them.
pub(crate) fn outbox_row(r: &PgRow) -> QResult<OutboxMessage> {
    let kind: String = r.try_get(2)?;
    let state: String = r.try_get(6)?;
    let attempts: i32 = r.try_get(7)?;
    Ok(OutboxMessage {
        id: id_at(r, 0)?,
        scope: scope_at(r, 1)?,
        kind: OutboxKind::from_stored(&kind).ok_or_else(|| corrupt("outbox kind", &kind))?,
        lane: r.try_get(3)?,
        user_id: opt_id_at(r, 4)?,
        payload: r.try_get::<Jsonb<serde_json::Value>, _>(5)?.0,
        state: OutboxState::from_stored(&state).ok_or_else(|| corrupt("outbox state", &state))?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at: time_at(r, 8)?,
        lease_until: opt_time_at(r, 9)?,
        lease_owner: r.try_get(10)?,
        last_error: r.try_get(11)?,
        created_at: time_at(r, 12)?,
        sent_at: opt_time_at(r, 13)?,
    })
}
