//! [`SqliteStore`]: its constructors (`open`, `from_url`: the order of the steps, whose
//! details live in `crate::connection`, `crate::migrate` and `crate::pool`) and the
//! [`hallpass_core::Store`] implementation.
//!
//! Each trait method clones what it needs into an owned closure (the closure runs on a
//! blocking thread, see `crate::pool`) and calls the matching function of
//! `crate::queries`: reads on a reader, writes in one `BEGIN IMMEDIATE` transaction on
//! the writer. Nothing else happens here, so the SQL and its transaction boundaries can be
//! read in one place.

use crate::changes;
use crate::connection::{self, Role, path_of_url, restrict_to_owner};
use crate::error::to_store_error;
use crate::migrate;
use crate::pool::Pool;
use crate::queries::{
    admin, bulk, codes, events, flows, identities, keys, mfa, outbox, passkeys, sessions, throttles, users,
    webhooks,
};
use async_trait::async_trait;
use hallpass_core::model::*;
use hallpass_core::store::{
    Change, CodeRequest, CodeRequestOutcome, ExportedUser, ImportOutcome, LoginStored, NewLogin, Store,
    StoreError, StoreResult, ThrottleState,
};
use hallpass_core::{
    Enqueue, FactorChange, FlowKind, FlowRecord, MfaState, OutboxClaim, OutboxKind, OutboxMessage,
    OutboxState, OutboxStats, OutboxUpdate, PasskeyRecord, PasskeyUse, ProviderName, Scope, TokenHash,
    UserRef, WebhookEndpoint,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// hallpass storage in one SQLite file. Cheap to clone (the connections are shared).
///
/// Several `SqliteStore`s — in one process or several, such as the server and a CLI
/// command — may use one file at the same time: SQLite's file locks and the busy timeout
/// order their writes, and WAL lets their reads go on meanwhile.
#[derive(Clone)]
pub struct SqliteStore {
    path: Arc<PathBuf>,
    pool: Arc<Pool>,
    /// Changes for caches: this process's own, and other processes' seen by the watcher.
    changes: Arc<std::sync::OnceLock<tokio::sync::broadcast::Sender<Change>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file if it is missing (not its
    /// directory), and brings its schema up to date. Blocks while it opens the file and
    /// migrates (at most the busy timeout when another process holds the write lock):
    /// call it at startup or inside `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let fail = |e: rusqlite::Error| to_store_error("open", e.into());
        let created = !path.exists();
        let mut writer = connection::open(&path, Role::Writer).map_err(fail)?;
        if created {
            restrict_to_owner(&path);
        }
        migrate::run(&mut writer).map_err(|e| to_store_error("migrate", e))?;
        let pool = Pool::new(&path, writer).map_err(fail)?;
        tracing::debug!(path = %path.display(), "sqlite: store opened");
        Ok(SqliteStore { path: Arc::new(path), pool: Arc::new(pool), changes: Default::default() })
    }

    /// Opens the database a URL names: `sqlite://PATH` or `sqlite:PATH`, the path relative
    /// to the working directory or absolute (`sqlite:///var/lib/hallpass.db`). The query
    /// `?mode=rwc` (create if missing, as sqlx spells it) is accepted and is what `open`
    /// does anyway; in-memory databases are refused, since the server and the CLI must
    /// share the file.
    pub fn from_url(url: &str) -> Result<SqliteStore, StoreError> {
        Self::open(path_of_url(url)?)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.pool.read("ping", |c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).map(drop)?)).await
    }

    // ---- API keys

    async fn insert_api_key(&self, key: &ApiKey, hash: &TokenHash) -> StoreResult<()> {
        let (key, hash) = (key.clone(), *hash);
        self.pool.write("insert_api_key", move |tx| keys::insert_api_key(tx, &key, &hash)).await
    }

    async fn find_api_key(&self, hash: &TokenHash) -> StoreResult<Option<ApiKey>> {
        let hash = *hash;
        self.pool.read("find_api_key", move |c| keys::find_api_key(c, &hash)).await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.pool.read("list_api_keys", keys::list_api_keys).await
    }

    async fn touch_api_key(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<()> {
        self.pool.write("touch_api_key", move |tx| keys::touch_api_key(tx, id, at)).await
    }

    async fn revoke_api_key(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<bool> {
        self.pool.write("revoke_api_key", move |tx| keys::revoke_api_key(tx, id, at)).await
    }

    // ---- users

    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()> {
        let user = user.clone();
        self.pool.write("insert_user", move |tx| users::insert_user(tx, &user)).await
    }

    async fn find_user(&self, scope: &Scope, by: &UserRef) -> StoreResult<Option<UserRecord>> {
        let (scope, by) = (scope.clone(), by.clone());
        self.pool.read("find_user", move |c| users::find_user(c, &scope, &by)).await
    }

    async fn list_users(
        &self,
        scope: &Scope,
        filter: &UserFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<User>> {
        let (scope, filter) = (scope.clone(), filter.clone());
        self.pool.read("list_users", move |c| users::list_users(c, &scope, &filter, after, limit)).await
    }

    async fn update_user(
        &self,
        scope: &Scope,
        id: Uuid,
        patch: &UserPatch,
        at: OffsetDateTime,
    ) -> StoreResult<Option<User>> {
        let (scope, patch) = (scope.clone(), patch.clone());
        self.pool.write("update_user", move |tx| users::update_user(tx, &scope, id, &patch, at)).await
    }

    async fn delete_user(&self, scope: &Scope, id: Uuid, outbox: &[OutboxMessage]) -> StoreResult<bool> {
        let (scope, outbox) = (scope.clone(), outbox.to_vec());
        self.pool.write("delete_user", move |tx| users::delete_user(tx, &scope, id, &outbox)).await
    }

    async fn set_password_hash(
        &self,
        scope: &Scope,
        id: Uuid,
        hash: &str,
        at: OffsetDateTime,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        let (scope, hash, outbox) = (scope.clone(), hash.to_owned(), outbox.to_vec());
        self.pool
            .write("set_password_hash", move |tx| {
                users::set_password_hash(tx, &scope, id, &hash, at, &outbox)
            })
            .await
    }

    async fn rehash_password(&self, scope: &Scope, id: Uuid, old: &str, new: &str) -> StoreResult<bool> {
        let (scope, old, new) = (scope.clone(), old.to_owned(), new.to_owned());
        self.pool.write("rehash_password", move |tx| users::rehash_password(tx, &scope, id, &old, &new)).await
    }

    // ---- sessions

    async fn insert_login(&self, login: &NewLogin) -> StoreResult<LoginStored> {
        let login = login.clone();
        self.pool.write("insert_login", move |tx| sessions::insert_login(tx, &login)).await
    }

    async fn find_session(&self, scope: &Scope, hash: &TokenHash) -> StoreResult<Option<(Session, User)>> {
        let (scope, hash) = (scope.clone(), *hash);
        self.pool.read("find_session", move |c| sessions::find_session(c, &scope, &hash)).await
    }

    async fn freshen_session(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        last_seen_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        let (scope, hash) = (scope.clone(), *hash);
        self.pool
            .write("freshen_session", move |tx| {
                sessions::freshen_session(tx, &scope, &hash, last_seen_at, expires_at)
            })
            .await
    }

    async fn patch_session_data(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        patch: &serde_json::Value,
        max_bytes: usize,
    ) -> StoreResult<Option<Session>> {
        let (scope, hash, patch) = (scope.clone(), *hash, patch.clone());
        self.pool
            .write("patch_session_data", move |tx| {
                sessions::patch_session_data(tx, &scope, &hash, &patch, max_bytes)
            })
            .await
    }

    async fn delete_session_by_hash(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Session>> {
        let (scope, hash, outbox) = (scope.clone(), *hash, outbox.to_vec());
        self.pool
            .write("delete_session_by_hash", move |tx| {
                let ended = sessions::delete_session_by_hash(tx, &scope, &hash)?;
                if ended.is_some() {
                    outbox::insert_messages(tx, &outbox)?;
                }
                Ok(ended)
            })
            .await
    }

    async fn delete_session(
        &self,
        scope: &Scope,
        user_id: Uuid,
        session_id: Uuid,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        let (scope, outbox) = (scope.clone(), outbox.to_vec());
        self.pool
            .write("delete_session", move |tx| {
                let ended = sessions::delete_session(tx, &scope, user_id, session_id)?;
                if ended {
                    outbox::insert_messages(tx, &outbox)?;
                }
                Ok(ended)
            })
            .await
    }

    async fn delete_sessions(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<u64> {
        let (scope, outbox) = (scope.clone(), outbox.to_vec());
        self.pool
            .write("delete_sessions", move |tx| {
                let ended = sessions::end_sessions(tx, &scope, user_id, keep)?;
                if ended > 0 {
                    outbox::insert_messages(tx, &outbox)?;
                }
                Ok(ended)
            })
            .await
    }

    async fn list_sessions(
        &self,
        scope: &Scope,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        let scope = scope.clone();
        self.pool.read("list_sessions", move |c| sessions::list_sessions(c, &scope, user_id, now)).await
    }

    // ---- one-time codes

    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()> {
        let code = code.clone();
        self.pool.write("insert_code", move |tx| codes::insert_code(tx, &code)).await
    }

    async fn request_code(&self, scope: &Scope, req: &CodeRequest) -> StoreResult<CodeRequestOutcome> {
        let (scope, req) = (scope.clone(), req.clone());
        self.pool.write("request_code", move |tx| codes::request_code(tx, &scope, &req)).await
    }

    async fn code_owner(
        &self,
        scope: &Scope,
        kind: CodeKind,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Uuid>> {
        let (scope, hash) = (scope.clone(), *hash);
        self.pool.read("code_owner", move |c| codes::code_owner(c, &scope, kind, &hash, now)).await
    }

    async fn redeem_reset_code(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        now: OffsetDateTime,
        new_hash: &str,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Uuid>> {
        let (scope, hash, new_hash, outbox) = (scope.clone(), *hash, new_hash.to_owned(), outbox.to_vec());
        self.pool
            .write("redeem_reset_code", move |tx| {
                let user = codes::redeem_reset_code(tx, &scope, &hash, now, &new_hash)?;
                if user.is_some() {
                    outbox::insert_messages(tx, &outbox)?;
                }
                Ok(user)
            })
            .await
    }

    async fn redeem_code(
        &self,
        scope: &Scope,
        kind: CodeKind,
        hash: &TokenHash,
        now: OffsetDateTime,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Uuid>> {
        let (scope, hash, outbox) = (scope.clone(), *hash, outbox.to_vec());
        self.pool
            .write("redeem_code", move |tx| {
                let user = codes::redeem_code(tx, &scope, kind, &hash, now)?;
                if user.is_some() {
                    outbox::insert_messages(tx, &outbox)?;
                }
                Ok(user)
            })
            .await
    }

    // ---- provider identities

    async fn insert_flow(&self, flow: &FlowRecord) -> StoreResult<()> {
        let flow = flow.clone();
        self.pool.write("insert_flow", move |tx| flows::insert_flow(tx, &flow)).await
    }

    async fn take_flow(
        &self,
        scope: Option<&Scope>,
        kind: FlowKind,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<FlowRecord>> {
        let (scope, hash) = (scope.cloned(), *hash);
        self.pool.write("take_flow", move |tx| flows::take_flow(tx, scope.as_ref(), kind, &hash, now)).await
    }

    // ---- second factors

    async fn mfa_state(&self, scope: &Scope, user_id: Uuid) -> StoreResult<MfaState> {
        let scope = scope.clone();
        self.pool.read("mfa_state", move |c| mfa::mfa_state(c, &scope, user_id)).await
    }

    async fn enrol_totp(
        &self,
        scope: &Scope,
        user_id: Uuid,
        secret: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let (scope, secret) = (scope.clone(), secret.to_owned());
        self.pool.write("enrol_totp", move |tx| mfa::enrol_totp(tx, &scope, user_id, &secret, at)).await
    }

    async fn accept_totp_step(
        &self,
        scope: &Scope,
        user_id: Uuid,
        step: i64,
        confirm: Option<&FactorChange>,
    ) -> StoreResult<bool> {
        let (scope, confirm) = (scope.clone(), confirm.cloned());
        self.pool
            .write("accept_totp_step", move |tx| {
                mfa::accept_totp_step(tx, &scope, user_id, step, confirm.as_ref())
            })
            .await
    }

    async fn replace_recovery_codes(
        &self,
        scope: &Scope,
        user_id: Uuid,
        codes: &[TokenHash],
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let (scope, codes) = (scope.clone(), codes.to_vec());
        self.pool
            .write("replace_recovery_codes", move |tx| {
                mfa::replace_recovery_codes(tx, &scope, user_id, &codes, at)
            })
            .await
    }

    async fn use_recovery_code(
        &self,
        scope: &Scope,
        user_id: Uuid,
        hash: &TokenHash,
    ) -> StoreResult<Option<u32>> {
        let (scope, hash) = (scope.clone(), *hash);
        self.pool
            .write("use_recovery_code", move |tx| mfa::use_recovery_code(tx, &scope, user_id, &hash))
            .await
    }

    async fn remove_mfa(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        let (scope, outbox) = (scope.clone(), outbox.to_vec());
        self.pool
            .write("remove_mfa", move |tx| mfa::remove_mfa(tx, &scope, user_id, keep_session, &outbox))
            .await
    }

    async fn remove_totp(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        let (scope, outbox) = (scope.clone(), outbox.to_vec());
        self.pool
            .write("remove_totp", move |tx| mfa::remove_totp(tx, &scope, user_id, keep_session, &outbox))
            .await
    }

    // ---- passkeys

    async fn insert_passkey(
        &self,
        passkey: &PasskeyRecord,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        let (passkey, outbox) = (passkey.clone(), outbox.to_vec());
        self.pool
            .write("insert_passkey", move |tx| passkeys::insert_passkey(tx, &passkey, keep_session, &outbox))
            .await
    }

    async fn list_passkeys(&self, scope: &Scope, user_id: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        let scope = scope.clone();
        self.pool.read("list_passkeys", move |c| passkeys::list_passkeys(c, &scope, user_id)).await
    }

    async fn find_passkey(&self, scope: &Scope, credential_id: &[u8]) -> StoreResult<Option<PasskeyRecord>> {
        let (scope, credential_id) = (scope.clone(), credential_id.to_vec());
        self.pool.read("find_passkey", move |c| passkeys::find_passkey(c, &scope, &credential_id)).await
    }

    async fn use_passkey(&self, scope: &Scope, id: Uuid, used: &PasskeyUse) -> StoreResult<bool> {
        let (scope, used) = (scope.clone(), used.clone());
        self.pool.write("use_passkey", move |tx| passkeys::use_passkey(tx, &scope, id, &used)).await
    }

    async fn rename_passkey(&self, scope: &Scope, user_id: Uuid, id: Uuid, name: &str) -> StoreResult<bool> {
        let (scope, name) = (scope.clone(), name.to_owned());
        self.pool
            .write("rename_passkey", move |tx| passkeys::rename_passkey(tx, &scope, user_id, id, &name))
            .await
    }

    async fn delete_passkey(
        &self,
        scope: &Scope,
        user_id: Uuid,
        id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        let (scope, outbox) = (scope.clone(), outbox.to_vec());
        self.pool
            .write("delete_passkey", move |tx| {
                passkeys::delete_passkey(tx, &scope, user_id, id, keep_session, &outbox)
            })
            .await
    }

    async fn upsert_identity(&self, identity: &Identity, outbox: &[OutboxMessage]) -> StoreResult<()> {
        let (identity, outbox) = (identity.clone(), outbox.to_vec());
        self.pool
            .write("upsert_identity", move |tx| identities::upsert_identity(tx, &identity, &outbox))
            .await
    }

    async fn get_identity(
        &self,
        scope: &Scope,
        user_id: Uuid,
        provider: &ProviderName,
    ) -> StoreResult<Option<Identity>> {
        let (scope, provider) = (scope.clone(), provider.clone());
        self.pool.read("get_identity", move |c| identities::get_identity(c, &scope, user_id, &provider)).await
    }

    async fn find_identity(
        &self,
        scope: &Scope,
        provider: &ProviderName,
        client_id: &str,
    ) -> StoreResult<Option<Identity>> {
        let (scope, provider, client_id) = (scope.clone(), provider.clone(), client_id.to_owned());
        self.pool
            .read("find_identity", move |c| identities::find_identity(c, &scope, &provider, &client_id))
            .await
    }

    async fn list_identities(&self, scope: &Scope, user_id: Uuid) -> StoreResult<Vec<Identity>> {
        let scope = scope.clone();
        self.pool.read("list_identities", move |c| identities::list_identities(c, &scope, user_id)).await
    }

    async fn delete_identity(
        &self,
        scope: &Scope,
        user_id: Uuid,
        provider: &ProviderName,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        let (scope, provider, outbox) = (scope.clone(), provider.clone(), outbox.to_vec());
        self.pool
            .write("delete_identity", move |tx| {
                identities::delete_identity(tx, &scope, user_id, &provider, &outbox)
            })
            .await
    }

    // ---- login events

    async fn insert_event(&self, event: &LoginEvent, outbox: &[OutboxMessage]) -> StoreResult<()> {
        let (event, outbox) = (event.clone(), outbox.to_vec());
        self.pool.write("insert_event", move |tx| events::insert_failure(tx, &event, &outbox)).await
    }

    async fn list_events(
        &self,
        scope: &Scope,
        user_id: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<LoginEvent>> {
        let scope = scope.clone();
        self.pool.read("list_events", move |c| events::list_events(c, &scope, user_id, before, limit)).await
    }

    async fn login_stats(
        &self,
        scope: &Scope,
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: Bucket,
    ) -> StoreResult<Vec<StatBucket>> {
        let scope = scope.clone();
        self.pool.read("login_stats", move |c| events::login_stats(c, &scope, from, to, bucket)).await
    }

    // ---- admin web page

    async fn enqueue(&self, e: &Enqueue<'_>) -> StoreResult<()> {
        let user = e.user.cloned();
        let code = e.code.cloned();
        let messages = e.messages.to_vec();
        self.pool
            .write("enqueue", move |tx| {
                outbox::enqueue(
                    tx,
                    &Enqueue { user: user.as_ref(), code: code.as_ref(), messages: &messages },
                )
            })
            .await
    }

    async fn update_user_enqueue(
        &self,
        scope: &Scope,
        id: Uuid,
        patch: &UserPatch,
        at: OffsetDateTime,
        e: &Enqueue<'_>,
    ) -> StoreResult<Option<User>> {
        let (scope, patch) = (scope.clone(), patch.clone());
        let (code, messages) = (e.code.cloned(), e.messages.to_vec());
        self.pool
            .write("update_user_enqueue", move |tx| {
                let Some(user) = users::update_user(tx, &scope, id, &patch, at)? else { return Ok(None) };
                outbox::enqueue(tx, &Enqueue { user: None, code: code.as_ref(), messages: &messages })?;
                Ok(Some(user))
            })
            .await
    }

    async fn outbox_claim(&self, claim: &OutboxClaim) -> StoreResult<Vec<OutboxMessage>> {
        let claim = claim.clone();
        self.pool.write("outbox_claim", move |tx| outbox::claim(tx, &claim)).await
    }

    async fn outbox_update(&self, id: Uuid, owner: &str, update: &OutboxUpdate) -> StoreResult<bool> {
        let (owner, update) = (owner.to_owned(), update.clone());
        self.pool.write("outbox_update", move |tx| outbox::update(tx, id, &owner, &update)).await
    }

    async fn outbox_retry(&self, id: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        self.pool.write("outbox_retry", move |tx| outbox::retry(tx, id, now)).await
    }

    async fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        self.pool.read("outbox_stats", outbox::stats).await
    }

    async fn outbox_purge_sent(
        &self,
        kind: OutboxKind,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<u64> {
        self.pool.write("outbox_purge_sent", move |tx| outbox::purge_sent(tx, kind, before, limit)).await
    }

    async fn outbox_list(&self, before: Option<Uuid>, limit: u32) -> StoreResult<Vec<OutboxMessage>> {
        self.pool.read("outbox_list", move |c| outbox::list(c, before, limit)).await
    }

    async fn outbox_lane(
        &self,
        kind: OutboxKind,
        lane: &str,
        state: Option<OutboxState>,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let lane = lane.to_owned();
        self.pool.read("outbox_lane", move |c| outbox::lane(c, kind, &lane, state, before, limit)).await
    }

    async fn outbox_lane_stats(&self, kind: OutboxKind) -> StoreResult<Vec<(String, OutboxStats)>> {
        self.pool.read("outbox_lane_stats", move |c| outbox::lane_stats(c, kind)).await
    }

    async fn insert_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        let endpoint = endpoint.clone();
        self.pool.write("insert_webhook", move |tx| webhooks::insert(tx, &endpoint)).await
    }

    async fn list_webhooks(&self, scope: Option<&Scope>) -> StoreResult<Vec<WebhookEndpoint>> {
        let scope = scope.cloned();
        self.pool.read("list_webhooks", move |c| webhooks::list(c, scope.as_ref())).await
    }

    async fn update_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<bool> {
        let endpoint = endpoint.clone();
        self.pool.write("update_webhook", move |tx| webhooks::update(tx, &endpoint)).await
    }

    async fn delete_webhook(&self, scope: &Scope, id: Uuid) -> StoreResult<bool> {
        let scope = scope.clone();
        self.pool.write("delete_webhook", move |tx| webhooks::delete(tx, &scope, id)).await
    }

    async fn insert_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let entry = entry.clone();
        self.pool.write("insert_audit", move |tx| admin::insert_audit(tx, &entry)).await
    }

    async fn list_audit(&self, before: Option<Uuid>, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        self.pool.read("list_audit", move |c| admin::list_audit(c, before, limit)).await
    }

    async fn scope_figures(&self, now: OffsetDateTime) -> StoreResult<Vec<ScopeFigures>> {
        self.pool.read("scope_figures", move |c| admin::scope_figures(c, now)).await
    }

    async fn outcome_stats(
        &self,
        scope: &Scope,
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: Bucket,
    ) -> StoreResult<Vec<OutcomeCount>> {
        let scope = scope.clone();
        self.pool.read("outcome_stats", move |c| admin::outcome_stats(c, &scope, from, to, bucket)).await
    }

    // ---- maintenance

    async fn count_valid_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.pool.read("count_valid_sessions", move |c| sessions::count_valid(c, now)).await
    }

    async fn sweep_expired(&self, now: OffsetDateTime, batch: u32) -> StoreResult<u64> {
        self.pool.write("sweep_expired", move |tx| sessions::sweep_expired(tx, now, batch)).await
    }

    // ---- throttling counters

    async fn throttle_get(
        &self,
        scope: &Scope,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ThrottleState>> {
        let (scope, key) = (scope.clone(), key.to_owned());
        self.pool.read("throttle_get", move |c| throttles::get(c, &scope, &key, now)).await
    }

    async fn throttle_hit(
        &self,
        scope: &Scope,
        key: &str,
        now: OffsetDateTime,
        window: Duration,
    ) -> StoreResult<ThrottleState> {
        let (scope, key) = (scope.clone(), key.to_owned());
        self.pool.write("throttle_hit", move |tx| throttles::hit(tx, &scope, &key, now, window)).await
    }

    async fn throttle_clear(&self, scope: &Scope, key: &str) -> StoreResult<()> {
        let (scope, key) = (scope.clone(), key.to_owned());
        self.pool.write("throttle_clear", move |tx| throttles::clear(tx, &scope, &key)).await
    }

    async fn throttle_update(
        &self,
        scope: &Scope,
        update: &hallpass_core::ThrottleUpdate<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<ThrottleState>> {
        let (scope, update) = (scope.clone(), throttles::OwnedUpdate::of(update));
        self.pool.write("throttle_update", move |tx| throttles::update(tx, &scope, &update, now)).await
    }

    // ---- export and import

    async fn export_users(&self, after: Option<(Scope, Uuid)>, limit: u32) -> StoreResult<Vec<ExportedUser>> {
        self.pool.read("export_users", move |c| bulk::export_users(c, after, limit)).await
    }

    async fn import_users(&self, users: &[ExportedUser]) -> StoreResult<ImportOutcome> {
        let users = users.to_vec();
        self.pool.write("import_users", move |tx| bulk::import_users(tx, &users)).await
    }

    // ---- telling other processes

    /// Other processes learn of this one's writes by themselves (their watchers see
    /// `data_version` move); this process's other services on this store hear of it here.
    async fn publish_change(&self, change: &Change) -> StoreResult<()> {
        if let Some(tx) = self.changes.get() {
            let _ = tx.send(change.clone());
        }
        Ok(())
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        let tx = self.changes.get_or_init(|| {
            let (tx, _) = tokio::sync::broadcast::channel(1024);
            changes::watch_other_processes(self.pool.writer_weak(), tx.clone());
            tx
        });
        Some(tx.subscribe())
    }
}
