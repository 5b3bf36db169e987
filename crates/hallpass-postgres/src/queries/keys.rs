//! API keys. Not scoped by the caller: a key names its scope, and the server looks keys up
//! by hash before it knows the scope.

use crate::codec::{id, ms, opt_ms};
use crate::error::QResult;
use crate::rows::{self, key_cols};
use hallpass_core::{ApiKey, TokenHash};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) async fn insert_api_key(pool: &PgPool, key: &ApiKey, key_hash: &TokenHash) -> QResult<()> {
    sqlx::query(concat!(
        "INSERT INTO api_keys (",
        key_cols!(),
        ", key_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(id(key.id))
    .bind(key.scope.as_str())
    .bind(key.name.as_deref())
    .bind(ms(key.created_at))
    .bind(opt_ms(key.revoked_at))
    .bind(opt_ms(key.last_used_at))
    .bind(key_hash.as_bytes().as_slice())
    .execute(pool)
    .await?;
    Ok(())
}

/// The unrevoked key with that hash: one probe of the unique `api_keys_key_hash` index.
pub(crate) async fn find_api_key(pool: &PgPool, key_hash: &TokenHash) -> QResult<Option<ApiKey>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        key_cols!(),
        " FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
    ))
    .bind(key_hash.as_bytes().as_slice())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(rows::api_key).transpose()
}

pub(crate) async fn list_api_keys(pool: &PgPool) -> QResult<Vec<ApiKey>> {
    let found = sqlx::query(concat!("SELECT ", key_cols!(), " FROM api_keys ORDER BY created_at, id"))
        .fetch_all(pool)
        .await?;
    found.iter().map(rows::api_key).collect()
}

pub(crate) async fn revoke_api_key(pool: &PgPool, key_id: Uuid, at: OffsetDateTime) -> QResult<bool> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id(key_id))
        .bind(ms(at))
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A key's last use: only ever moved forward (two processes may record out of order).
pub(crate) async fn touch_api_key(pool: &PgPool, key_id: Uuid, at: OffsetDateTime) -> QResult<()> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
    )
    .bind(id(key_id))
    .bind(ms(at))
    .execute(pool)
    .await?;
    Ok(())
}
