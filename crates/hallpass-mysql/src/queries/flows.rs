//! Flows (`hallpass_core::flow`). A take reads the row, then deletes it with every
//! condition again: the `DELETE` is a locking read of the latest committed row, so of
//! concurrent takes exactly one sees one affected row and returns the flow; the others
//! return nothing (MySQL has no `DELETE ... RETURNING`).

use crate::codec::*;
use crate::error::QResult;
use hallpass_core::{FlowKind, FlowRecord, Scope, StoreError, TokenHash};
use sqlx::Row;
use sqlx::mysql::MySqlConnection;
use time::OffsetDateTime;

pub(crate) async fn insert_flow(c: &mut MySqlConnection, f: &FlowRecord) -> QResult<()> {
    let payload = serde_json::to_string(&f.payload)
        .map_err(|e| StoreError::Other(format!("cannot encode JSON: {e}")))?;
    sqlx::query(
        "INSERT INTO flows (flow_hash, scope, kind, payload, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(hash(&f.hash))
    .bind(f.scope.as_str())
    .bind(f.kind.as_str())
    .bind(payload)
    .bind(ms(f.created_at))
    .bind(ms(f.expires_at))
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(crate) async fn take_flow(
    c: &mut MySqlConnection,
    scope: Option<&Scope>,
    kind: FlowKind,
    h: &TokenHash,
    now: OffsetDateTime,
) -> QResult<Option<FlowRecord>> {
    let scope = scope.map(Scope::as_str);
    let row = sqlx::query(
        "SELECT scope, payload, created_at, expires_at FROM flows \
         WHERE flow_hash = ? AND kind = ? AND (? IS NULL OR scope = ?) AND expires_at > ?",
    )
    .bind(hash(h))
    .bind(kind.as_str())
    .bind(scope)
    .bind(scope)
    .bind(ms(now))
    .fetch_optional(&mut *c)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let deleted = sqlx::query(
        "DELETE FROM flows WHERE flow_hash = ? AND kind = ? AND (? IS NULL OR scope = ?) AND expires_at > ?",
    )
    .bind(hash(h))
    .bind(kind.as_str())
    .bind(scope)
    .bind(scope)
    .bind(ms(now))
    .execute(&mut *c)
    .await?
    .rows_affected();
    if deleted != 1 {
        return Ok(None);
    }
    let payload: String = row.try_get(1)?;
    let payload = serde_json::from_str(&payload)
        .map_err(|e| StoreError::Other(format!("a stored flow's payload is not JSON: {e}")))?;
    Ok(Some(FlowRecord {
        hash: *h,
        scope: get_parsed(&row, 0, Scope::from_stored)?,
        kind,
        payload,
        created_at: get_time(&row, 2)?,
        expires_at: get_time(&row, 3)?,
    }))
}

/// Deletes up to `batch` expired flows (through `flows_expires_at`).
pub(crate) async fn sweep(c: &mut MySqlConnection, now: i64, batch: u32) -> QResult<u64> {
    Ok(sqlx::query("DELETE FROM flows WHERE expires_at <= ? ORDER BY expires_at LIMIT ?")
        .bind(now)
        .bind(batch)
        .execute(&mut *c)
        .await?
        .rows_affected())
}
