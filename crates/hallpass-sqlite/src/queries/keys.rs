//! API keys. Not scoped by the caller: a key names its scope, and the server looks keys up
//! by hash before it knows the scope.

use crate::codec::*;
use crate::error::QResult;
use crate::rows::key_row;
use hallpass_core::{ApiKey, TokenHash};
use rusqlite::{Connection, OptionalExtension};
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) fn insert_api_key(conn: &Connection, key: &ApiKey, key_hash: &TokenHash) -> QResult<()> {
    conn.prepare_cached(
        "INSERT INTO api_keys (id, scope, name, key_hash, created_at, revoked_at, last_used_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((
        id(key.id),
        key.scope.as_str(),
        key.name.as_deref(),
        hash(key_hash),
        ms(key.created_at),
        opt_ms(key.revoked_at),
        opt_ms(key.last_used_at),
    ))?;
    Ok(())
}

pub(crate) fn find_api_key(conn: &Connection, key_hash: &TokenHash) -> QResult<Option<ApiKey>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, scope, name, created_at, revoked_at, last_used_at FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
    )?;
    Ok(stmt.query_row([hash(key_hash)], key_row).optional()?)
}

pub(crate) fn list_api_keys(conn: &Connection) -> QResult<Vec<ApiKey>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, scope, name, created_at, revoked_at, last_used_at FROM api_keys ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([], key_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn revoke_api_key(conn: &Connection, key_id: Uuid, at: OffsetDateTime) -> QResult<bool> {
    let n = conn
        .prepare_cached("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")?
        .execute((id(key_id), ms(at)))?;
    Ok(n > 0)
}

/// A key's last use: only ever moved forward (two processes may record out of order).
pub(crate) fn touch_api_key(conn: &Connection, key_id: Uuid, at: OffsetDateTime) -> QResult<()> {
    conn.prepare_cached(
        "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
    )?
    .execute((id(key_id), ms(at)))?;
    Ok(())
}
