//! How domain values are stored and read back, in one place, so every query agrees:
//!
//! - ids (UUIDv7) as `uuid`;
//! - instants as `bigint` Unix milliseconds (the precision the core's clocks keep, so a
//!   round trip is exact);
//! - JSON objects as `jsonb`;
//! - hashes as 32-byte `bytea`.
//!
//! Rows are read by column position; the column lists are spelled once (the `*_cols!`
//! macros) next to the function that reads them. Reading back re-parses the typed values
//! (`Scope`, `ProviderName`, ...); a stored value that no longer parses is corrupt data
//! and surfaces as `StoreError::Other`.

use crate::error::{QResult, corrupt};
use crate::types::{DbId, Jsonb};
use hallpass_core::clock::{from_unix_ms, to_unix_ms};
use hallpass_core::{
    ApiKey, ClientId, ClientInfo, Confirmation, Email, Group, Identity, JsonObject, LoginEvent, Outcome,
    ProviderName, Scope, Session, User, UserRecord, Username,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;
use uuid::Uuid;

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
            "user_agent"
        )
    };
}

/// The columns of an identity row in the order [`identity`] reads them.
macro_rules! identity_cols {
    () => {
        "scope, user_id, provider, client_id, access_token, access_token_expiry, created_at, updated_at"
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
        "id, scope, name, created_at, revoked_at"
    };
}

pub(crate) use {event_cols, identity_cols, key_cols, session_cols, user_cols};

/// How many columns [`session_cols!`] lists (where a joined user's columns start).
pub(crate) const SESSION_COLUMNS: usize = 10;

/// An instant as stored.
pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    to_unix_ms(t)
}

/// An optional instant as stored.
pub(crate) fn opt_ms(t: Option<OffsetDateTime>) -> Option<i64> {
    t.map(ms)
}

/// A JSON object as bound (jsonb).
pub(crate) fn json(obj: &JsonObject) -> Jsonb<&JsonObject> {
    Jsonb(obj)
}

/// An id as bound (uuid).
pub(crate) fn id(u: Uuid) -> DbId {
    DbId(u)
}

/// An optional id as bound.
pub(crate) fn opt_id(u: Option<Uuid>) -> Option<DbId> {
    u.map(DbId)
}

fn id_at(row: &PgRow, i: usize) -> QResult<Uuid> {
    Ok(row.try_get::<DbId, _>(i)?.0)
}

fn opt_id_at(row: &PgRow, i: usize) -> QResult<Option<Uuid>> {
    Ok(row.try_get::<Option<DbId>, _>(i)?.map(|d| d.0))
}

fn time_at(row: &PgRow, i: usize) -> QResult<OffsetDateTime> {
    Ok(from_unix_ms(row.try_get::<i64, _>(i)?))
}

fn opt_time_at(row: &PgRow, i: usize) -> QResult<Option<OffsetDateTime>> {
    Ok(row.try_get::<Option<i64>, _>(i)?.map(from_unix_ms))
}

fn object_at(row: &PgRow, i: usize) -> QResult<JsonObject> {
    Ok(row.try_get::<Jsonb<JsonObject>, _>(i)?.0)
}

fn scope_at(row: &PgRow, i: usize) -> QResult<Scope> {
    let s: String = row.try_get(i)?;
    Scope::from_stored(&s).map_err(|e| corrupt("scope", e))
}

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
    })
}
