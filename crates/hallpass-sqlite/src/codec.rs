//! How domain values are stored, in one place, so every query agrees:
//!
//! - ids (UUIDv7) as lower-case hyphenated TEXT: readable in the `sqlite3` shell, and
//!   text order equals UUID order, so `ORDER BY id` is time order;
//! - instants as INTEGER Unix milliseconds (the precision the core's clocks keep);
//! - JSON objects as TEXT;
//! - hashes as 32-byte BLOBs.
//!
//! Reading back re-parses the typed values (`Scope`, `ProviderName`, ...); a stored value
//! that no longer parses is corrupt data and surfaces as `StoreError::Other`.

use hallpass_core::clock::{from_unix_ms, to_unix_ms};
use hallpass_core::{JsonObject, StoreError, TokenHash};
use rusqlite::Row;
use rusqlite::types::Type;
use time::OffsetDateTime;
use uuid::Uuid;

/// An id as stored. Always bound as text, never through rusqlite's optional `uuid`
/// feature (which would bind a BLOB and silently match nothing).
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
pub(crate) fn json(obj: &JsonObject) -> Result<String, StoreError> {
    serde_json::to_string(obj).map_err(|e| StoreError::Other(format!("cannot encode JSON: {e}")))
}

/// A stored value that does not decode: reported like rusqlite's own conversion failures.
fn corrupt(i: usize, ty: Type, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, ty, Box::new(e))
}

pub(crate) fn get_uuid(row: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    let s: String = row.get(i)?;
    Uuid::parse_str(&s).map_err(|e| corrupt(i, Type::Text, e))
}

pub(crate) fn get_opt_uuid(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Uuid>> {
    let s: Option<String> = row.get(i)?;
    s.map(|s| Uuid::parse_str(&s).map_err(|e| corrupt(i, Type::Text, e))).transpose()
}

pub(crate) fn get_time(row: &Row<'_>, i: usize) -> rusqlite::Result<OffsetDateTime> {
    Ok(from_unix_ms(row.get(i)?))
}

pub(crate) fn get_opt_time(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<OffsetDateTime>> {
    Ok(row.get::<_, Option<i64>>(i)?.map(from_unix_ms))
}

pub(crate) fn get_object(row: &Row<'_>, i: usize) -> rusqlite::Result<JsonObject> {
    let s: String = row.get(i)?;
    serde_json::from_str(&s).map_err(|e| corrupt(i, Type::Text, e))
}

/// A stored name parsed back into its type (`Scope::parse`, `ProviderName::parse`, ...).
pub(crate) fn get_parsed<T, E>(
    row: &Row<'_>,
    i: usize,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let s: String = row.get(i)?;
    parse(&s).map_err(|e| corrupt(i, Type::Text, e))
}
