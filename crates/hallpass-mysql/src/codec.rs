//! How domain values are stored, in one place, so every query agrees (the schema is in
//! `migrations/0001_init.sql`):
//!
//! - ids (UUIDv7) as CHAR(36) lower-case hyphenated ASCII: text order is UUID order, so
//!   `ORDER BY id` is time order. Bound as text, never through sqlx's `uuid` feature
//!   (which would bind 16 bytes and silently match nothing);
//! - instants as BIGINT Unix milliseconds (the precision the core's clocks keep);
//! - JSON objects as LONGTEXT;
//! - hashes as BINARY(32);
//! - exact-match text (keys, group, client id, password hash) as VARBINARY, bound as the
//!   UTF-8 bytes and read back as bytes.
//!
//! Reading back re-parses the typed values (`Scope`, `ProviderName`, ...); a stored value
//! that no longer parses is corrupt data and surfaces as `StoreError::Other`.

use crate::error::{QResult, corrupt};
use hallpass_core::clock::{from_unix_ms, to_unix_ms};
use hallpass_core::{JsonObject, StoreError, TokenHash};
use sqlx::Row;
use sqlx::mysql::MySqlRow;
use time::OffsetDateTime;
use uuid::Uuid;

/// An id as stored.
pub(crate) fn id(u: Uuid) -> String {
    u.hyphenated().to_string()
}

/// An optional id as stored.
pub(crate) fn opt_id(u: Option<Uuid>) -> Option<String> {
    u.map(id)
}

/// An instant as stored.
pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    to_unix_ms(t)
}

/// An optional instant as stored.
pub(crate) fn opt_ms(t: Option<OffsetDateTime>) -> Option<i64> {
    t.map(ms)
}

/// A hash as stored.
pub(crate) fn hash(h: &TokenHash) -> &[u8] {
    h.as_bytes()
}

/// A JSON object as stored.
pub(crate) fn json(obj: &JsonObject) -> QResult<String> {
    serde_json::to_string(obj).map_err(|e| StoreError::Other(format!("cannot encode JSON: {e}")).into())
}

pub(crate) fn get_uuid(row: &MySqlRow, i: usize) -> QResult<Uuid> {
    let s: String = row.try_get(i)?;
    Uuid::parse_str(&s).map_err(|e| corrupt("id", e))
}

pub(crate) fn get_opt_uuid(row: &MySqlRow, i: usize) -> QResult<Option<Uuid>> {
    let s: Option<String> = row.try_get(i)?;
    s.map(|s| Uuid::parse_str(&s).map_err(|e| corrupt("id", e))).transpose()
}

pub(crate) fn get_time(row: &MySqlRow, i: usize) -> QResult<OffsetDateTime> {
    Ok(from_unix_ms(row.try_get(i)?))
}

pub(crate) fn get_opt_time(row: &MySqlRow, i: usize) -> QResult<Option<OffsetDateTime>> {
    Ok(row.try_get::<Option<i64>, _>(i)?.map(from_unix_ms))
}

pub(crate) fn get_object(row: &MySqlRow, i: usize) -> QResult<JsonObject> {
    let s: String = row.try_get(i)?;
    serde_json::from_str(&s).map_err(|e| corrupt("JSON object", e))
}

/// Text kept in a VARBINARY column.
pub(crate) fn get_bytes_text(row: &MySqlRow, i: usize) -> QResult<String> {
    let b: Vec<u8> = row.try_get(i)?;
    String::from_utf8(b).map_err(|e| corrupt("text", e))
}

/// Optional text kept in a VARBINARY column.
pub(crate) fn get_opt_bytes_text(row: &MySqlRow, i: usize) -> QResult<Option<String>> {
    let b: Option<Vec<u8>> = row.try_get(i)?;
    b.map(|b| String::from_utf8(b).map_err(|e| corrupt("text", e))).transpose()
}

/// A stored name parsed back into its type (`Scope::parse`, `ProviderName::parse`, ...).
pub(crate) fn get_parsed<T, E: std::fmt::Display>(
    row: &MySqlRow,
    i: usize,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> QResult<T> {
    let s: String = row.try_get(i)?;
    parse(&s).map_err(|e| corrupt("name", e))
}
