//! Flows (`hallpass_core::flow`): insert, and take = one `DELETE ... RETURNING`, so of
//! concurrent takes exactly one gets the row; the sweep of expired rows.

use crate::codec::*;
use crate::error::QResult;
use hallpass_core::{FlowKind, FlowRecord, Scope, StoreError, TokenHash};
use sqlx::Row;
use sqlx::postgres::PgPool;
use time::OffsetDateTime;

/// Expired flows, through `flows_expires_at`.
pub(crate) const SWEEP_FLOWS: &str =
    "DELETE FROM flows WHERE flow_hash IN (SELECT flow_hash FROM flows WHERE expires_at <= $1 LIMIT $2)";

pub(crate) async fn insert_flow(pool: &PgPool, f: &FlowRecord) -> QResult<()> {
    let payload = serde_json::to_string(&f.payload)
        .map_err(|e| StoreError::Other(format!("cannot encode JSON: {e}")))?;
    sqlx::query(
        "INSERT INTO flows (flow_hash, scope, kind, payload, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(f.hash.as_bytes().as_slice())
    .bind(f.scope.as_str())
    .bind(f.kind.as_str())
    .bind(payload)
    .bind(ms(f.created_at))
    .bind(ms(f.expires_at))
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn take_flow(
    pool: &PgPool,
    scope: Option<&Scope>,
    kind: FlowKind,
    h: &TokenHash,
    now: OffsetDateTime,
) -> QResult<Option<FlowRecord>> {
    let row = sqlx::query(
        "DELETE FROM flows WHERE flow_hash = $1 AND kind = $2 AND ($3::text IS NULL OR scope = $3) \
         AND expires_at > $4 RETURNING scope, payload, created_at, expires_at",
    )
    .bind(h.as_bytes().as_slice())
    .bind(kind.as_str())
    .bind(scope.map(Scope::as_str))
    .bind(ms(now))
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let payload: String = row.try_get(1)?;
    let payload = serde_json::from_str(&payload)
        .map_err(|e| StoreError::Other(format!("a stored flow's payload is not JSON: {e}")))?;
    Ok(Some(FlowRecord {
        hash: *h,
        scope: scope_at(&row, 0)?,
        kind,
        payload,
        created_at: time_at(&row, 2)?,
        expires_at: time_at(&row, 3)?,
    }))
}
