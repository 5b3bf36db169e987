//! Reading rows back: every function that turns a `MySqlRow` into a domain value (user,
//! session, identity, login event, API key, throttle state, audit entry), with the column
//! lists that fix the positions they read (the `*_cols!` macros; a table without one lists
//! its columns in the statements of `crate::queries` that read it).
//!
//! The column values themselves are decoded by `crate::codec`. Reading back re-parses the
//! typed values (`Scope`, `ProviderName`, ...); a stored value that no longer parses is
//! corrupt data and surfaces as `StoreError::Other`.

use crate::codec::*;
use crate::error::{QResult, corrupt};
use hallpass_core::{
    ApiKey, AuditEntry, ClientId, ClientInfo, Confirmation, Email, Group, Identity, LoginEvent, OutboxKind,
    OutboxMessage, OutboxState, Outcome, ProviderName, Scope, Session, ThrottleState, User, UserRecord,
    Username,
};
use sqlx::Row;
use sqlx::mysql::MySqlRow;

/// The columns of a user row in the order [`user_from_row`] reads them; the
/// argument is a table alias prefix such as `"u."` (or `""`).
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

/// The columns of a session row in the order [`session_from_row`] reads them.
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

/// The columns of an identity row in the order [`identity_row`] reads them.
macro_rules! identity_cols {
    () => {
        "scope, user_id, provider, client_id, access_token, access_token_expiry, created_at, updated_at, \
         refresh_token"
    };
}

/// The columns of a login event row in the order [`event_row`] reads them.
macro_rules! event_cols {
    () => {
        "id, scope, user_id, at, method, outcome, session_id, ip, user_agent"
    };
}

pub(crate) use {event_cols, identity_cols, session_cols, user_cols};

/// How many columns [`session_cols!`] lists.
pub(crate) const SESSION_COLUMNS: usize = 11;

/// Reads a user from the [`user_cols!`] columns starting at `base`.
pub(crate) fn user_from_row(row: &MySqlRow, base: usize) -> QResult<User> {
    let confirmation = match row.try_get::<Option<String>, _>(base + 7)? {
        None => None,
        Some(s) => Some(Confirmation::from_stored(&s).ok_or_else(|| corrupt("confirmation", &s))?),
    };
    Ok(User {
        scope: get_parsed(row, base, Scope::from_stored)?,
        id: get_uuid(row, base + 1)?,
        username: row.try_get::<Option<String>, _>(base + 2)?.map(Username::from_stored),
        email: row.try_get::<Option<String>, _>(base + 3)?.map(Email::from_stored),
        group: Group::from_stored(get_bytes_text(row, base + 4)?),
        extra: get_object(row, base + 5)?,
        active: row.try_get(base + 6)?,
        confirmation,
        confirmed: row.try_get(base + 8)?,
        created_at: get_time(row, base + 9)?,
        updated_at: get_time(row, base + 10)?,
        last_login_at: get_opt_time(row, base + 11)?,
    })
}

pub(crate) fn record_from_row(row: &MySqlRow) -> QResult<UserRecord> {
    Ok(UserRecord { user: user_from_row(row, 0)?, password_hash: get_opt_bytes_text(row, 12)? })
}

/// Reads a session from the [`session_cols!`] columns starting at `base`.
pub(crate) fn session_from_row(row: &MySqlRow, base: usize) -> QResult<Session> {
    Ok(Session {
        id: get_uuid(row, base)?,
        scope: get_parsed(row, base + 1, Scope::from_stored)?,
        user_id: get_uuid(row, base + 2)?,
        created_at: get_time(row, base + 3)?,
        last_seen_at: get_time(row, base + 4)?,
        expires_at: get_time(row, base + 5)?,
        absolute_expires_at: get_time(row, base + 6)?,
        data: get_object(row, base + 7)?,
        client: ClientInfo { ip: row.try_get(base + 8)?, user_agent: row.try_get(base + 9)? },
        amr: Session::amr_from_text(&row.try_get::<String, _>(base + 10)?),
    })
}

pub(crate) fn session_row(row: &MySqlRow) -> QResult<Session> {
    session_from_row(row, 0)
}

pub(crate) fn identity_row(row: &MySqlRow) -> QResult<Identity> {
    Ok(Identity {
        scope: get_parsed(row, 0, Scope::from_stored)?,
        user_id: get_uuid(row, 1)?,
        provider: get_parsed(row, 2, ProviderName::parse)?,
        client_id: ClientId::parse(&get_bytes_text(row, 3)?)
            .map_err(|e| crate::error::corrupt("client id", e))?,
        access_token: row.try_get(4)?,
        access_token_expiry: get_opt_time(row, 5)?,
        created_at: get_time(row, 6)?,
        updated_at: get_time(row, 7)?,
        refresh_token: row.try_get(8)?,
    })
}

pub(crate) fn event_row(row: &MySqlRow) -> QResult<LoginEvent> {
    let outcome: String = row.try_get(5)?;
    Ok(LoginEvent {
        id: get_uuid(row, 0)?,
        scope: get_parsed(row, 1, Scope::from_stored)?,
        user_id: get_opt_uuid(row, 2)?,
        at: get_time(row, 3)?,
        method: row.try_get(4)?,
        outcome: Outcome::from_stored(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
        session_id: get_opt_uuid(row, 6)?,
        ip: row.try_get(7)?,
        user_agent: row.try_get(8)?,
    })
}

pub(crate) fn key_row(row: &MySqlRow) -> QResult<ApiKey> {
    Ok(ApiKey {
        id: get_uuid(row, 0)?,
        scope: get_parsed(row, 1, Scope::from_stored)?,
        name: row.try_get(2)?,
        created_at: get_time(row, 3)?,
        revoked_at: get_opt_time(row, 4)?,
        last_used_at: get_opt_time(row, 5)?,
    })
}

pub(crate) fn state(row: &MySqlRow) -> QResult<ThrottleState> {
    let failures: i64 = row.try_get(0)?;
    Ok(ThrottleState {
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        first_at: get_time(row, 1)?,
        last_at: get_time(row, 2)?,
        expires_at: get_time(row, 3)?,
    })
}

pub(crate) fn audit_row(row: &MySqlRow) -> QResult<AuditEntry> {
    let scope: Option<String> = row.try_get(4)?;
    Ok(AuditEntry {
        id: get_uuid(row, 0)?,
        at: get_time(row, 1)?,
        admin: row.try_get(2)?,
        action: row.try_get(3)?,
        scope: scope.map(|s| Scope::from_stored(&s).map_err(|e| corrupt("scope", e))).transpose()?,
        target: row.try_get(5)?,
        detail: get_object(row, 6)?,
    })
}

/// An outbox row, columns as `crate::queries::outbox` lists them.
pub(crate) fn outbox_row(r: &MySqlRow) -> QResult<OutboxMessage> {
    let kind: String = r.try_get(2)?;
    let state: String = r.try_get(6)?;
    let payload: String = r.try_get(5)?;
    let attempts: i32 = r.try_get(7)?;
    Ok(OutboxMessage {
        id: get_uuid(r, 0)?,
        scope: get_parsed(r, 1, Scope::from_stored)?,
        kind: OutboxKind::from_stored(&kind).ok_or_else(|| corrupt("outbox kind", &kind))?,
        lane: r.try_get(3)?,
        user_id: get_opt_uuid(r, 4)?,
        payload: serde_json::from_str(&payload).map_err(|e| corrupt("outbox payload", e))?,
        state: OutboxState::from_stored(&state).ok_or_else(|| corrupt("outbox state", &state))?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at: get_time(r, 8)?,
        lease_until: get_opt_time(r, 9)?,
        lease_owner: r.try_get(10)?,
        last_error: r.try_get(11)?,
        created_at: get_time(r, 12)?,
        sent_at: get_opt_time(r, 13)?,
    })
}
