//! API keys. Not scoped by the caller: a key names its scope, and the server looks keys up
//! by hash before it knows the scope.

use crate::codec::*;
use crate::error::QResult;
use crate::rows::key_row;
use hallpass_core::{ApiKey, TokenHash};
use sqlx::mysql::MySqlConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) async fn insert_api_key(
    c: &mut MySqlConnection,
    key: &ApiKey,
    key_hash: &TokenHash,
) -> QResult<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, scope, name, key_hash, created_at, revoked_at, last_used_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id(key.id))
    .bind(key.scope.as_str())
    .bind(key.name.as_deref())
    .bind(hash(key_hash))
    .bind(ms(key.created_at))
    .bind(opt_ms(key.revoked_at))
    .bind(opt_ms(key.last_used_at))
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(crate) async fn find_api_key(c: &mut MySqlConnection, key_hash: &TokenHash) -> QResult<Option<ApiKey>> {
    let row = sqlx::query(
        "SELECT id, scope, name, created_at, revoked_at, last_used_at FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
    )
    .bind(hash(key_hash))
    .fetch_optional(&mut *c)
    .await?;
    row.as_ref().map(key_row).transpose()
}

pub(crate) async fn list_api_keys(c: &mut MySqlConnection) -> QResult<Vec<ApiKey>> {
    let rows = sqlx::query(
        "SELECT id, scope, name, created_at, revoked_at, last_used_at FROM api_keys ORDER BY created_at, id",
    )
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(key_row).collect()
}

pub(crate) async fn revoke_api_key(
    c: &mut MySqlConnection,
    key_id: Uuid,
    at: OffsetDateTime,
) -> QResult<bool> {
    let n = sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(ms(at))
        .bind(id(key_id))
        .execute(&mut *c)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// A key's last use: only ever moved forward (two processes may record out of order).
pub(crate) async fn touch_api_key(c: &mut MySqlConnection, key_id: Uuid, at: OffsetDateTime) -> QResult<()> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
    )
    .bind(ms(at))
    .bind(id(key_id))
    .bind(ms(at))
    .execute(&mut *c)
    .await?;
    Ok(())
}
