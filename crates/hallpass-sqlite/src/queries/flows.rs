//! Flows (`hallpass_core::flow`): insert, and take = one `DELETE ... RETURNING` inside the
//! writer's transaction, so a flow is returned at most once; the sweep of expired rows.

use crate::codec::*;
use crate::error::QResult;
use hallpass_core::{FlowKind, FlowRecord, Scope, StoreError, TokenHash};
use rusqlite::{Connection, OptionalExtension};
use time::OffsetDateTime;

/// Expired flows, oldest first, through `flows_expires_at`.
pub(crate) const SWEEP_FLOWS: &str =
    "DELETE FROM flows WHERE flow_hash IN (SELECT flow_hash FROM flows WHERE expires_at <= ?1 LIMIT ?2)";

pub(crate) fn insert_flow(conn: &Connection, f: &FlowRecord) -> QResult<()> {
    let payload = serde_json::to_string(&f.payload)
        .map_err(|e| StoreError::Other(format!("cannot encode JSON: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO flows (flow_hash, scope, kind, payload, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute((
        hash(&f.hash),
        f.scope.as_str(),
        f.kind.as_str(),
        payload,
        ms(f.created_at),
        ms(f.expires_at),
    ))?;
    Ok(())
}

pub(crate) fn take_flow(
    conn: &Connection,
    scope: Option<&Scope>,
    kind: FlowKind,
    h: &TokenHash,
    now: OffsetDateTime,
) -> QResult<Option<FlowRecord>> {
    let row = conn
        .prepare_cached(
            "DELETE FROM flows WHERE flow_hash = ?1 AND kind = ?2 AND (?3 IS NULL OR scope = ?3) \
             AND expires_at > ?4 RETURNING scope, payload, created_at, expires_at",
        )?
        .query_row((hash(h), kind.as_str(), scope.map(Scope::as_str), ms(now)), |r| {
            Ok((
                get_parsed(r, 0, Scope::from_stored)?,
                r.get::<_, String>(1)?,
                get_time(r, 2)?,
                get_time(r, 3)?,
            ))
        })
        .optional()?;
    let Some((scope, payload, created_at, expires_at)) = row else { return Ok(None) };
    let payload = serde_json::from_str(&payload)
        .map_err(|e| StoreError::Other(format!("a stored flow's payload is not JSON: {e}")))?;
    Ok(Some(FlowRecord { hash: *h, scope, kind, payload, created_at, expires_at }))
}
