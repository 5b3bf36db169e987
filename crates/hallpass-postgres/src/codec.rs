//! How values are stored, both ways, in one place, so every query agrees:
//!
//! - ids (UUIDv7) as `uuid`;
//! - instants as `bigint` Unix milliseconds (the precision the core's clocks keep, so a
//!   round trip is exact);
//! - JSON objects as `jsonb`;
//! - hashes as 32-byte `bytea`.
//!
//! The binding helpers (`id`, `ms`, `json`, ...) and the column readers (`id_at`,
//! `time_at`, ...) used by `crate::queries` and `crate::rows` are at the end. Before them,
//! the two PostgreSQL column types hallpass uses that the workspace's sqlx build does not
//! map: `uuid` and `jsonb`.
//!
//! The workspace enables no sqlx type features (`uuid`, `json`, ...): each of them turns on
//! a weak `sqlx-sqlite?/...` feature, which drags sqlx's libsqlite3-sys into the lock file
//! where it collides with rusqlite's (see the workspace `Cargo.toml`). Rather than give up
//! the native column types (and bind ids as text with casts in every statement), these two
//! newtypes implement sqlx's public `Type` / `Encode` / `Decode` traits the way sqlx's own
//! feature-gated impls do:
//!
//! - [`DbId`]: a `Uuid` as `uuid` (OID 2950), 16 bytes in binary, parsed from text;
//! - [`Jsonb`]: a JSON value as `jsonb` (OID 3802): version byte `1` then the JSON text in
//!   binary, the bare JSON text in text format.
//!
//! For the bulk import and export, `DbId` also binds as `uuid[]` (OID 2951), and
//! [`JsonbText`] (JSON serialised beforehand) as `jsonb` and `jsonb[]` (OID 3807). These
//! OIDs are fixed by PostgreSQL for built-in types, so no lookup is needed.

use crate::error::{QResult, corrupt};
use hallpass_core::clock::{from_unix_ms, to_unix_ms};
use hallpass_core::{JsonObject, Scope};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::PgRow;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueFormat, PgValueRef, Postgres};
use sqlx::{Decode, Encode, Row, Type, ValueRef};
use time::OffsetDateTime;
use uuid::Uuid;

const UUID_OID: Oid = Oid(2950);
const UUID_ARRAY_OID: Oid = Oid(2951);
const JSONB_OID: Oid = Oid(3802);
const JSONB_ARRAY_OID: Oid = Oid(3807);
const JSON_OID: Oid = Oid(114);

/// A UUID bound to or read from a `uuid` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DbId(pub(crate) Uuid);

impl Type<Postgres> for DbId {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(UUID_OID)
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        ty.oid() == Some(UUID_OID)
    }
}

/// `uuid[]`: lets a `Vec<DbId>` bind as one array parameter (`= ANY($1)`, `unnest`).
impl PgHasArrayType for DbId {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(UUID_ARRAY_OID)
    }
}

impl Encode<'_, Postgres> for DbId {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

impl Decode<'_, Postgres> for DbId {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        let id = match value.format() {
            PgValueFormat::Binary => Uuid::from_slice(value.as_bytes()?)?,
            PgValueFormat::Text => value.as_str()?.parse()?,
        };
        Ok(DbId(id))
    }
}

/// A JSON value bound to or read from a `jsonb` column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Jsonb<T>(pub(crate) T);

impl<T> Type<Postgres> for Jsonb<T> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(JSONB_OID)
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        matches!(ty.oid(), Some(JSONB_OID | JSON_OID))
    }
}

impl<T: Serialize> Encode<'_, Postgres> for Jsonb<T> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        // jsonb's binary input format: a version byte, then the JSON text.
        buf.push(1);
        serde_json::to_writer(&mut **buf, &self.0)?;
        Ok(IsNull::No)
    }
}

/// A JSON text serialised beforehand, bound to a `jsonb` column as it is (the bulk import
/// serialises each `extra` once: its length decides how rows are split into statements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonbText<'a>(pub(crate) &'a str);

impl Type<Postgres> for JsonbText<'_> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(JSONB_OID)
    }
}

impl PgHasArrayType for JsonbText<'_> {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(JSONB_ARRAY_OID)
    }
}

impl Encode<'_, Postgres> for JsonbText<'_> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.push(1);
        buf.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

impl<T: DeserializeOwned> Decode<'_, Postgres> for Jsonb<T> {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        let mut bytes = value.as_bytes()?;
        if value.format() == PgValueFormat::Binary && value.type_info().oid() == Some(JSONB_OID) {
            match bytes.split_first() {
                Some((1, rest)) => bytes = rest,
                Some((v, _)) => return Err(format!("unsupported jsonb format version {v}").into()),
                None => return Err("empty jsonb value".into()),
            }
        }
        Ok(Jsonb(serde_json::from_slice(bytes)?))
    }
}

// ---- binding values and reading columns, for `crate::queries` and `crate::rows`

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

pub(crate) fn id_at(row: &PgRow, i: usize) -> QResult<Uuid> {
    Ok(row.try_get::<DbId, _>(i)?.0)
}

pub(crate) fn opt_id_at(row: &PgRow, i: usize) -> QResult<Option<Uuid>> {
    Ok(row.try_get::<Option<DbId>, _>(i)?.map(|d| d.0))
}

pub(crate) fn time_at(row: &PgRow, i: usize) -> QResult<OffsetDateTime> {
    Ok(from_unix_ms(row.try_get::<i64, _>(i)?))
}

pub(crate) fn opt_time_at(row: &PgRow, i: usize) -> QResult<Option<OffsetDateTime>> {
    Ok(row.try_get::<Option<i64>, _>(i)?.map(from_unix_ms))
}

pub(crate) fn object_at(row: &PgRow, i: usize) -> QResult<JsonObject> {
    Ok(row.try_get::<Jsonb<JsonObject>, _>(i)?.0)
}

pub(crate) fn scope_at(row: &PgRow, i: usize) -> QResult<Scope> {
    let s: String = row.try_get(i)?;
    Scope::from_stored(&s).map_err(|e| corrupt("scope", e))
}
