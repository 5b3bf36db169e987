//! A store wrapper that tells an [`Observer`] about every call: for metrics (each call's
//! duration and outcome) and for tests (which calls a service operation makes, or a store
//! that fails on demand).

use crate::flow::{FlowKind, FlowRecord};
use crate::mfa::{FactorChange, MfaState};
use crate::model::*;
use crate::outbox::{Enqueue, OutboxClaim, OutboxMessage, OutboxStats, OutboxUpdate};
use crate::passkey::{PasskeyRecord, PasskeyUse};
use crate::secret::TokenHash;
use crate::store::{
    Change, CodeRequest, CodeRequestOutcome, ExportedUser, ImportOutcome, LoginStored, NewLogin, Store,
    StoreError, StoreResult, ThrottleState, ThrottleUpdate,
};
use crate::types::{ProviderName, Scope, UserRef};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

/// Told about every call an [`Observed`] store makes. Both methods default to nothing.
pub trait Observer: Send + Sync + 'static {
    /// Before the call `op` (the [`Store`] method's name). An error is returned to the
    /// caller instead of making the call.
    fn before(&self, op: &'static str) -> StoreResult<()> {
        let _ = op;
        Ok(())
    }
    /// After the call `op` was made: how long it took and whether it failed.
    fn after(&self, op: &'static str, elapsed: Duration, error: Option<&StoreError>) {
        let _ = (op, elapsed, error);
    }
}

/// A [`Store`] that passes every call to `inner`, telling `observer` before and after.
pub struct Observed<O> {
    inner: Arc<dyn Store>,
    observer: O,
}

impl<O: Observer> Observed<O> {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, observer: O) -> Self {
        Self { inner, observer }
    }

    /// The observer.
    pub fn observer(&self) -> &O {
        &self.observer
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }
}

impl<O> std::fmt::Debug for Observed<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed").finish_non_exhaustive()
    }
}

macro_rules! observe {
    ($self:ident, $op:literal, $call:expr) => {{
        $self.observer.before($op)?;
        let start = Instant::now();
        let out = $call.await;
        $self.observer.after($op, start.elapsed(), out.as_ref().err());
        out
    }};
}

#[async_trait]
impl<O: Observer> Store for Observed<O> {
    async fn ping(&self) -> StoreResult<()> {
        observe!(self, "ping", self.inner.ping())
    }
    async fn insert_api_key(&self, key: &ApiKey, hash: &TokenHash) -> StoreResult<()> {
        observe!(self, "insert_api_key", self.inner.insert_api_key(key, hash))
    }
    async fn find_api_key(&self, hash: &TokenHash) -> StoreResult<Option<ApiKey>> {
        observe!(self, "find_api_key", self.inner.find_api_key(hash))
    }
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        observe!(self, "list_api_keys", self.inner.list_api_keys())
    }
    async fn revoke_api_key(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<bool> {
        observe!(self, "revoke_api_key", self.inner.revoke_api_key(id, at))
    }
    async fn touch_api_key(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<()> {
        observe!(self, "touch_api_key", self.inner.touch_api_key(id, at))
    }
    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()> {
        observe!(self, "insert_user", self.inner.insert_user(user))
    }
    async fn find_user(&self, scope: &Scope, by: &UserRef) -> StoreResult<Option<UserRecord>> {
        observe!(self, "find_user", self.inner.find_user(scope, by))
    }
    async fn list_users(
        &self,
        scope: &Scope,
        filter: &UserFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<User>> {
        observe!(self, "list_users", self.inner.list_users(scope, filter, after, limit))
    }
    async fn update_user(
        &self,
        scope: &Scope,
        id: Uuid,
        patch: &UserPatch,
        at: OffsetDateTime,
    ) -> StoreResult<Option<User>> {
        observe!(self, "update_user", self.inner.update_user(scope, id, patch, at))
    }
    async fn delete_user(&self, scope: &Scope, id: Uuid, outbox: &[OutboxMessage]) -> StoreResult<bool> {
        observe!(self, "delete_user", self.inner.delete_user(scope, id, outbox))
    }
    async fn set_password_hash(
        &self,
        scope: &Scope,
        id: Uuid,
        hash: &str,
        at: OffsetDateTime,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        observe!(self, "set_password_hash", self.inner.set_password_hash(scope, id, hash, at, outbox))
    }
    async fn rehash_password(&self, scope: &Scope, id: Uuid, old: &str, new: &str) -> StoreResult<bool> {
        observe!(self, "rehash_password", self.inner.rehash_password(scope, id, old, new))
    }
    async fn insert_login(&self, login: &NewLogin) -> StoreResult<LoginStored> {
        observe!(self, "insert_login", self.inner.insert_login(login))
    }
    async fn find_session(&self, scope: &Scope, hash: &TokenHash) -> StoreResult<Option<(Session, User)>> {
        observe!(self, "find_session", self.inner.find_session(scope, hash))
    }
    async fn freshen_session(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        last_seen_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        observe!(self, "freshen_session", self.inner.freshen_session(scope, hash, last_seen_at, expires_at))
    }
    async fn patch_session_data(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        patch: &serde_json::Value,
        max_bytes: usize,
    ) -> StoreResult<Option<Session>> {
        observe!(self, "patch_session_data", self.inner.patch_session_data(scope, hash, patch, max_bytes))
    }
    async fn delete_session_by_hash(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Session>> {
        observe!(self, "delete_session_by_hash", self.inner.delete_session_by_hash(scope, hash, outbox))
    }
    async fn delete_session(
        &self,
        scope: &Scope,
        user_id: Uuid,
        session_id: Uuid,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        observe!(self, "delete_session", self.inner.delete_session(scope, user_id, session_id, outbox))
    }
    async fn delete_sessions(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<u64> {
        observe!(self, "delete_sessions", self.inner.delete_sessions(scope, user_id, keep, outbox))
    }
    async fn list_sessions(
        &self,
        scope: &Scope,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        observe!(self, "list_sessions", self.inner.list_sessions(scope, user_id, now))
    }
    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()> {
        observe!(self, "insert_code", self.inner.insert_code(code))
    }
    async fn request_code(&self, scope: &Scope, req: &CodeRequest) -> StoreResult<CodeRequestOutcome> {
        observe!(self, "request_code", self.inner.request_code(scope, req))
    }
    async fn code_owner(
        &self,
        scope: &Scope,
        kind: CodeKind,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Uuid>> {
        observe!(self, "code_owner", self.inner.code_owner(scope, kind, hash, now))
    }
    async fn redeem_reset_code(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        now: OffsetDateTime,
        new_hash: &str,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Uuid>> {
        observe!(self, "redeem_reset_code", self.inner.redeem_reset_code(scope, hash, now, new_hash, outbox))
    }
    async fn redeem_code(
        &self,
        scope: &Scope,
        kind: CodeKind,
        hash: &TokenHash,
        now: OffsetDateTime,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Uuid>> {
        observe!(self, "redeem_code", self.inner.redeem_code(scope, kind, hash, now, outbox))
    }
    async fn insert_flow(&self, flow: &FlowRecord) -> StoreResult<()> {
        observe!(self, "insert_flow", self.inner.insert_flow(flow))
    }
    async fn take_flow(
        &self,
        scope: Option<&Scope>,
        kind: FlowKind,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<FlowRecord>> {
        observe!(self, "take_flow", self.inner.take_flow(scope, kind, hash, now))
    }
    async fn mfa_state(&self, scope: &Scope, user_id: Uuid) -> StoreResult<MfaState> {
        observe!(self, "mfa_state", self.inner.mfa_state(scope, user_id))
    }
    async fn enrol_totp(
        &self,
        scope: &Scope,
        user_id: Uuid,
        secret: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        observe!(self, "enrol_totp", self.inner.enrol_totp(scope, user_id, secret, at))
    }
    async fn accept_totp_step(
        &self,
        scope: &Scope,
        user_id: Uuid,
        step: i64,
        confirm: Option<&FactorChange>,
    ) -> StoreResult<bool> {
        observe!(self, "accept_totp_step", self.inner.accept_totp_step(scope, user_id, step, confirm))
    }
    async fn replace_recovery_codes(
        &self,
        scope: &Scope,
        user_id: Uuid,
        codes: &[TokenHash],
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        observe!(self, "replace_recovery_codes", self.inner.replace_recovery_codes(scope, user_id, codes, at))
    }
    async fn use_recovery_code(
        &self,
        scope: &Scope,
        user_id: Uuid,
        hash: &TokenHash,
    ) -> StoreResult<Option<u32>> {
        observe!(self, "use_recovery_code", self.inner.use_recovery_code(scope, user_id, hash))
    }
    async fn remove_mfa(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        observe!(self, "remove_mfa", self.inner.remove_mfa(scope, user_id, keep_session, outbox))
    }
    async fn remove_totp(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        observe!(self, "remove_totp", self.inner.remove_totp(scope, user_id, keep_session, outbox))
    }
    async fn insert_passkey(
        &self,
        passkey: &PasskeyRecord,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        observe!(self, "insert_passkey", self.inner.insert_passkey(passkey, keep_session, outbox))
    }
    async fn list_passkeys(&self, scope: &Scope, user_id: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        observe!(self, "list_passkeys", self.inner.list_passkeys(scope, user_id))
    }
    async fn find_passkey(&self, scope: &Scope, credential_id: &[u8]) -> StoreResult<Option<PasskeyRecord>> {
        observe!(self, "find_passkey", self.inner.find_passkey(scope, credential_id))
    }
    async fn use_passkey(&self, scope: &Scope, id: Uuid, used: &PasskeyUse) -> StoreResult<bool> {
        observe!(self, "use_passkey", self.inner.use_passkey(scope, id, used))
    }
    async fn rename_passkey(&self, scope: &Scope, user_id: Uuid, id: Uuid, name: &str) -> StoreResult<bool> {
        observe!(self, "rename_passkey", self.inner.rename_passkey(scope, user_id, id, name))
    }
    async fn delete_passkey(
        &self,
        scope: &Scope,
        user_id: Uuid,
        id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        observe!(self, "delete_passkey", self.inner.delete_passkey(scope, user_id, id, keep_session, outbox))
    }
    async fn upsert_identity(&self, identity: &Identity, outbox: &[OutboxMessage]) -> StoreResult<()> {
        observe!(self, "upsert_identity", self.inner.upsert_identity(identity, outbox))
    }
    async fn get_identity(
        &self,
        scope: &Scope,
        user_id: Uuid,
        provider: &ProviderName,
    ) -> StoreResult<Option<Identity>> {
        observe!(self, "get_identity", self.inner.get_identity(scope, user_id, provider))
    }
    async fn find_identity(
        &self,
        scope: &Scope,
        provider: &ProviderName,
        client_id: &str,
    ) -> StoreResult<Option<Identity>> {
        observe!(self, "find_identity", self.inner.find_identity(scope, provider, client_id))
    }
    async fn list_identities(&self, scope: &Scope, user_id: Uuid) -> StoreResult<Vec<Identity>> {
        observe!(self, "list_identities", self.inner.list_identities(scope, user_id))
    }
    async fn delete_identity(
        &self,
        scope: &Scope,
        user_id: Uuid,
        provider: &ProviderName,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        observe!(self, "delete_identity", self.inner.delete_identity(scope, user_id, provider, outbox))
    }
    async fn insert_event(&self, event: &LoginEvent, outbox: &[OutboxMessage]) -> StoreResult<()> {
        observe!(self, "insert_event", self.inner.insert_event(event, outbox))
    }
    async fn list_events(
        &self,
        scope: &Scope,
        user_id: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<LoginEvent>> {
        observe!(self, "list_events", self.inner.list_events(scope, user_id, before, limit))
    }
    async fn login_stats(
        &self,
        scope: &Scope,
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: Bucket,
    ) -> StoreResult<Vec<StatBucket>> {
        observe!(self, "login_stats", self.inner.login_stats(scope, from, to, bucket))
    }
    async fn count_valid_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        observe!(self, "count_valid_sessions", self.inner.count_valid_sessions(now))
    }
    async fn insert_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        observe!(self, "insert_audit", self.inner.insert_audit(entry))
    }
    async fn list_audit(&self, before: Option<Uuid>, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        observe!(self, "list_audit", self.inner.list_audit(before, limit))
    }
    async fn scope_figures(&self, now: OffsetDateTime) -> StoreResult<Vec<ScopeFigures>> {
        observe!(self, "scope_figures", self.inner.scope_figures(now))
    }
    async fn outcome_stats(
        &self,
        scope: &Scope,
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: Bucket,
    ) -> StoreResult<Vec<OutcomeCount>> {
        observe!(self, "outcome_stats", self.inner.outcome_stats(scope, from, to, bucket))
    }
    async fn enqueue(&self, e: &Enqueue<'_>) -> StoreResult<()> {
        observe!(self, "enqueue", self.inner.enqueue(e))
    }
    async fn update_user_enqueue(
        &self,
        scope: &Scope,
        id: Uuid,
        patch: &UserPatch,
        at: OffsetDateTime,
        e: &Enqueue<'_>,
    ) -> StoreResult<Option<User>> {
        observe!(self, "update_user_enqueue", self.inner.update_user_enqueue(scope, id, patch, at, e))
    }
    async fn outbox_claim(&self, claim: &OutboxClaim) -> StoreResult<Vec<OutboxMessage>> {
        observe!(self, "outbox_claim", self.inner.outbox_claim(claim))
    }
    async fn outbox_update(&self, id: Uuid, owner: &str, update: &OutboxUpdate) -> StoreResult<bool> {
        observe!(self, "outbox_update", self.inner.outbox_update(id, owner, update))
    }
    async fn outbox_retry(&self, id: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        observe!(self, "outbox_retry", self.inner.outbox_retry(id, now))
    }
    async fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        observe!(self, "outbox_stats", self.inner.outbox_stats())
    }
    async fn outbox_lane(
        &self,
        kind: crate::outbox::OutboxKind,
        lane: &str,
        state: Option<crate::outbox::OutboxState>,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>> {
        observe!(self, "outbox_lane", self.inner.outbox_lane(kind, lane, state, before, limit))
    }
    async fn outbox_lane_stats(
        &self,
        kind: crate::outbox::OutboxKind,
    ) -> StoreResult<Vec<(String, OutboxStats)>> {
        observe!(self, "outbox_lane_stats", self.inner.outbox_lane_stats(kind))
    }
    async fn insert_webhook(&self, endpoint: &crate::webhook::WebhookEndpoint) -> StoreResult<()> {
        observe!(self, "insert_webhook", self.inner.insert_webhook(endpoint))
    }
    async fn list_webhooks(
        &self,
        scope: Option<&Scope>,
    ) -> StoreResult<Vec<crate::webhook::WebhookEndpoint>> {
        observe!(self, "list_webhooks", self.inner.list_webhooks(scope))
    }
    async fn update_webhook(&self, endpoint: &crate::webhook::WebhookEndpoint) -> StoreResult<bool> {
        observe!(self, "update_webhook", self.inner.update_webhook(endpoint))
    }
    async fn delete_webhook(&self, scope: &Scope, id: Uuid) -> StoreResult<bool> {
        observe!(self, "delete_webhook", self.inner.delete_webhook(scope, id))
    }
    async fn outbox_list(&self, before: Option<Uuid>, limit: u32) -> StoreResult<Vec<OutboxMessage>> {
        observe!(self, "outbox_list", self.inner.outbox_list(before, limit))
    }
    async fn outbox_purge_sent(
        &self,
        kind: crate::outbox::OutboxKind,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<u64> {
        observe!(self, "outbox_purge_sent", self.inner.outbox_purge_sent(kind, before, limit))
    }

    async fn sweep_expired(&self, now: OffsetDateTime, batch: u32) -> StoreResult<u64> {
        observe!(self, "sweep_expired", self.inner.sweep_expired(now, batch))
    }

    async fn throttle_get(
        &self,
        scope: &Scope,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ThrottleState>> {
        observe!(self, "throttle_get", self.inner.throttle_get(scope, key, now))
    }

    async fn throttle_hit(
        &self,
        scope: &Scope,
        key: &str,
        now: OffsetDateTime,
        window: time::Duration,
    ) -> StoreResult<ThrottleState> {
        observe!(self, "throttle_hit", self.inner.throttle_hit(scope, key, now, window))
    }

    async fn throttle_clear(&self, scope: &Scope, key: &str) -> StoreResult<()> {
        observe!(self, "throttle_clear", self.inner.throttle_clear(scope, key))
    }

    async fn throttle_update(
        &self,
        scope: &Scope,
        update: &ThrottleUpdate<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<ThrottleState>> {
        observe!(self, "throttle_update", self.inner.throttle_update(scope, update, now))
    }

    async fn export_users(&self, after: Option<(Scope, Uuid)>, limit: u32) -> StoreResult<Vec<ExportedUser>> {
        observe!(self, "export_users", self.inner.export_users(after, limit))
    }

    async fn import_users(&self, users: &[ExportedUser]) -> StoreResult<ImportOutcome> {
        observe!(self, "import_users", self.inner.import_users(users))
    }
    async fn publish_change(&self, change: &Change) -> StoreResult<()> {
        observe!(self, "publish_change", self.inner.publish_change(change))
    }
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        self.inner.changes()
    }
}
