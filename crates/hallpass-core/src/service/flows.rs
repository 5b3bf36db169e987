//! Flows (see [`crate::flow`]): making one and taking it back, once.

use super::Hallpass;
use crate::error::Result;
use crate::flow::{FlowHandle, FlowKind, FlowRecord};
use crate::types::Scope;
use time::{Duration, OffsetDateTime};

impl Hallpass {
    /// Stores a new flow of `kind` in `scope` carrying `payload`, takeable until `ttl` from
    /// now; answers its handle (shown once, stored only as a hash) and its expiry.
    pub async fn create_flow(
        &self,
        scope: &Scope,
        kind: FlowKind,
        payload: serde_json::Value,
        ttl: Duration,
    ) -> Result<(FlowHandle, OffsetDateTime)> {
        let handle = FlowHandle::generate();
        let expires_at = self.store_flow(scope, kind, &handle, payload, ttl).await?;
        Ok((handle, expires_at))
    }

    /// [`Hallpass::create_flow`] with a handle the caller made (and may already have put
    /// somewhere, as an OIDC `state` in an authorization URL); answers the expiry.
    pub async fn store_flow(
        &self,
        scope: &Scope,
        kind: FlowKind,
        handle: &FlowHandle,
        payload: serde_json::Value,
        ttl: Duration,
    ) -> Result<OffsetDateTime> {
        let now = self.now();
        let record = FlowRecord {
            hash: handle.hash(),
            scope: scope.clone(),
            kind,
            payload,
            created_at: now,
            expires_at: now + ttl,
        };
        self.store.insert_flow(&record).await?;
        Ok(record.expires_at)
    }

    /// Takes the flow behind `handle` if it is of `kind`, in `scope` (when given) and not
    /// expired; `None` otherwise. A flow is taken at most once, even by racing callers.
    pub async fn take_flow(
        &self,
        scope: Option<&Scope>,
        kind: FlowKind,
        handle: &FlowHandle,
    ) -> Result<Option<FlowRecord>> {
        Ok(self.store.take_flow(scope, kind, &handle.hash(), self.now()).await?)
    }
}
