//! Reading rows back: every function that turns a rusqlite row into a domain value
//! (user, session, identity, login event, API key, throttle state, audit entry), with the
//! column lists that fix the positions they read (the `*_cols!` macros; a table without
//! one lists its columns in the statements of `crate::queries` that read it).
//!
//! The column values themselves are decoded by `crate::codec`. Reading back re-parses the
//! typed values (`Scope`, `ProviderName`, ...); a stored value that no longer parses is
//! corrupt data and surfaces as `StoreError::Other`.

use crate::codec::*;
use hallpass_core::{
    ApiKey, AuditEntry, ClientId, ClientInfo, Confirmation, Email, Group, Identity, LoginEvent, OutboxKind,
    OutboxMessage, OutboxState, Outcome, ProviderName, Scope, Session, ThrottleState, User, UserRecord,
    Username,
};
use rusqlite::Row;
use rusqlite::types::Type;

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

pub(crate) use {identity_cols, session_cols, user_cols};

/// How many columns [`session_cols!`] lists.
pub(crate) const SESSION_COLUMNS: usize = 11;

/// Reads a user from the [`user_cols!`] columns starting at `base`.
pub(crate) fn user_from_row(row: &Row<'_>, base: usize) -> rusqlite::Result<User> {
    let confirmation = match row.get::<_, Option<String>>(base + 7)? {
        None => None,
        Some(s) => Some(Confirmation::from_stored(&s).ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(base + 7, "confirmation".into(), Type::Text)
        })?),
    };
    Ok(User {
        scope: get_parsed(row, base, Scope::from_stored)?,
        id: get_uuid(row, base + 1)?,
        username: row.get::<_, Option<String>>(base + 2)?.map(Username::from_stored),
        email: row.get::<_, Option<String>>(base + 3)?.map(Email::from_stored),
        group: Group::from_stored(row.get(base + 4)?),
        extra: get_object(row, base + 5)?,
        active: row.get(base + 6)?,
        confirmation,
        confirmed: row.get(base + 8)?,
        created_at: get_time(row, base + 9)?,
        updated_at: get_time(row, base + 10)?,
        last_login_at: get_opt_time(row, base + 11)?,
    })
}

pub(crate) fn record_from_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord { user: user_from_row(row, 0)?, password_hash: row.get(12)? })
}

/// Reads a session from the [`session_cols!`] columns starting at `base`.
pub(crate) fn session_from_row(row: &Row<'_>, base: usize) -> rusqlite::Result<Session> {
    Ok(Session {
        id: get_uuid(row, base)?,
        scope: get_parsed(row, base + 1, Scope::from_stored)?,
        user_id: get_uuid(row, base + 2)?,
        created_at: get_time(row, base + 3)?,
        last_seen_at: get_time(row, base + 4)?,
        expires_at: get_time(row, base + 5)?,
        absolute_expires_at: get_time(row, base + 6)?,
        data: get_object(row, base + 7)?,
        client: ClientInfo { ip: row.get(base + 8)?, user_agent: row.get(base + 9)? },
        amr: Session::amr_from_text(&row.get::<_, String>(base + 10)?),
    })
}

pub(crate) fn session_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    session_from_row(row, 0)
}

pub(crate) fn identity_row(row: &Row<'_>) -> rusqlite::Result<Identity> {
    Ok(Identity {
        scope: get_parsed(row, 0, Scope::from_stored)?,
        user_id: get_uuid(row, 1)?,
        provider: get_parsed(row, 2, ProviderName::parse)?,
        client_id: get_parsed(row, 3, ClientId::parse)?,
        access_token: row.get(4)?,
        access_token_expiry: get_opt_time(row, 5)?,
        created_at: get_time(row, 6)?,
        updated_at: get_time(row, 7)?,
        refresh_token: row.get(8)?,
    })
}

pub(crate) fn event_row(row: &Row<'_>) -> rusqlite::Result<LoginEvent> {
    let outcome: String = row.get(5)?;
    Ok(LoginEvent {
        id: get_uuid(row, 0)?,
        scope: get_parsed(row, 1, Scope::from_stored)?,
        user_id: get_opt_uuid(row, 2)?,
        at: get_time(row, 3)?,
        method: row.get(4)?,
        outcome: Outcome::from_stored(&outcome)
            .ok_or_else(|| rusqlite::Error::InvalidColumnType(5, "outcome".into(), Type::Text))?,
        session_id: get_opt_uuid(row, 6)?,
        ip: row.get(7)?,
        user_agent: row.get(8)?,
    })
}

pub(crate) fn key_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: get_uuid(row, 0)?,
        scope: get_parsed(row, 1, Scope::from_stored)?,
        name: row.get(2)?,
        created_at: get_time(row, 3)?,
        revoked_at: get_opt_time(row, 4)?,
        last_used_at: get_opt_time(row, 5)?,
    })
}

pub(crate) fn state_row(row: &Row<'_>) -> rusqlite::Result<ThrottleState> {
    let failures: i64 = row.get(0)?;
    Ok(ThrottleState {
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        first_at: get_time(row, 1)?,
        last_at: get_time(row, 2)?,
        expires_at: get_time(row, 3)?,
    })
}

pub(crate) fn audit_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let scope: Option<String> = row.get(4)?;
    Ok(AuditEntry {
        id: get_uuid(row, 0)?,
        at: get_time(row, 1)?,
        admin: row.get(2)?,
        action: row.get(3)?,
        scope: scope
            .map(|s| Scope::from_stored(&s))
            .transpose()
            .map_err(|_| rusqlite::Error::InvalidColumnType(4, "scope".into(), Type::Text))?,
        target: row.get(5)?,
        detail: get_object(row, 6)?,
    })
}

/// An outbox row, columns as `crate::queries::outbox` lists them.
pub(crate) fn outbox_row(row: &Row<'_>) -> rusqlite::Result<OutboxMessage> {
    let text = |i: usize, what: &str| rusqlite::Error::InvalidColumnType(i, what.into(), Type::Text);
    let payload: String = row.get(5)?;
    Ok(OutboxMessage {
        id: get_uuid(row, 0)?,
        scope: get_parsed(row, 1, Scope::from_stored)?,
        kind: OutboxKind::from_stored(&row.get::<_, String>(2)?).ok_or_else(|| text(2, "kind"))?,
        lane: row.get(3)?,
        user_id: get_opt_uuid(row, 4)?,
        payload: serde_json::from_str(&payload).map_err(|_| text(5, "payload"))?,
        state: OutboxState::from_stored(&row.get::<_, String>(6)?).ok_or_else(|| text(6, "state"))?,
        attempts: row.get(7)?,
        next_attempt_at: get_time(row, 8)?,
        lease_until: get_opt_time(row, 9)?,
        lease_owner: row.get(10)?,
        last_error: row.get(11)?,
        created_at: get_time(row, 12)?,
        sent_at: get_opt_time(row, 13)?,
    })
}
