//! [`PostgresStore`]: its constructors (`connect`, `connect_with`; the details in
//! `crate::connection`), `migrate`, and the [`Store`] implementation. Each trait method calls the matching function of `crate::queries` and
//! classifies its failure through `crate::error` — nothing else happens here, so the SQL
//! and its transaction boundaries can be read in one place.

use crate::error::{QResult, to_store_error};
use crate::queries::{
    admin, bulk, codes, events, flows, identities, keys, mfa, outbox, passkeys, sessions, throttles, users,
    webhooks,
};
use crate::{changes, connection, migrate};
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
use sqlx::postgres::{PgConnectOptions, PgPool};
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// hallpass storage on PostgreSQL. Cheap to clone: clones share one pool.
///
/// Several processes may share one database: every write is a single statement or one
/// transaction, and the uniqueness rules are constraints the database enforces, so
/// processes need no coordination of their own.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Changes for caches, heard on the `LISTEN` connection (this process's own too).
    changes: Arc<std::sync::OnceLock<tokio::sync::broadcast::Sender<Change>>>,
    /// Held while the store lives; the listener task ends when only it is left.
    alive: Arc<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        let options = self.pool.connect_options();
        f.debug_struct("PostgresStore")
            .field("host", &options.get_host())
            .field("database", &options.get_database())
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database a `postgres://` (or `postgresql://`) URL names, with the
    /// URL's parameters (`sslmode`, `application_name`, ...; the `PG*` environment
    /// variables and `~/.pgpass` fill what the URL leaves out, as with `psql`).
    ///
    /// It does **not** migrate: call [`PostgresStore::migrate`] next (the server does on
    /// every start, and `hallpass migrate` does only that). Fails with
    /// `StoreError::Unavailable` when no connection can be opened within
    /// [`ACQUIRE_TIMEOUT`](crate::ACQUIRE_TIMEOUT), with `StoreError::Other` when the URL is invalid.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        Self::connect_with(connection::options_from_url(url)?).await
    }

    /// Connects with explicit options (what [`PostgresStore::connect`] parses a URL into).
    ///
    /// The pool holds up to [`MAX_CONNECTIONS`](crate::MAX_CONNECTIONS) and opens them on demand. It does not ping
    /// a connection before every use (sqlx's default), which would add a round trip to
    /// every session check; it pings only connections idle for over a minute, the ones a
    /// database restart or a firewall's idle timeout may have cut. A connection that fails
    /// anyway costs that one call a `StoreError::Unavailable` and is then discarded.
    pub async fn connect_with(options: PgConnectOptions) -> Result<PostgresStore, StoreError> {
        let pool = connection::pool(options).await?;
        Ok(PostgresStore { pool, changes: Default::default(), alive: Arc::new(()) })
    }

    /// Brings the schema up to date (the embedded migrations in `migrations/`);
    /// idempotent, cheap when there is nothing to do, and safe when several processes
    /// migrate one database at once (a transaction-level advisory lock orders them; see `crate::migrate`).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate::run(&self.pool).await.map(drop).map_err(|e| to_store_error("migrate", e))
    }

    /// The connection pool, for what the `Store` trait does not cover (operators' tools,
    /// tests). Statements run through it bypass the store's guarantees.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool: waits for connections in use to come back, then closes them all.
    /// Later calls fail with `StoreError::Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Classifies a failure of `op` (see `crate::error`).
fn done<T>(op: &'static str, result: QResult<T>) -> StoreResult<T> {
    result.map_err(|e| to_store_error(op, e))
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        let result = sqlx::query("SELECT 1").execute(&self.pool).await;
        done("ping", result.map(drop).map_err(Into::into))
    }

    // ---- API keys

    async fn insert_api_key(&self, key: &ApiKey, hash: &TokenHash) -> StoreResult<()> {
        done("insert_api_key", keys::insert_api_key(&self.pool, key, hash).await)
    }

    async fn find_api_key(&self, hash: &TokenHash) -> StoreResult<Option<ApiKey>> {
        done("find_api_key", keys::find_api_key(&self.pool, hash).await)
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        done("list_api_keys", keys::list_api_keys(&self.pool).await)
    }

    async fn touch_api_key(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<()> {
        done("touch_api_key", keys::touch_api_key(&self.pool, id, at).await)
    }

    async fn revoke_api_key(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<bool> {
        done("revoke_api_key", keys::revoke_api_key(&self.pool, id, at).await)
    }

    // ---- users

    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()> {
        done("insert_user", users::insert_user(&self.pool, user).await)
    }

    async fn find_user(&self, scope: &Scope, by: &UserRef) -> StoreResult<Option<UserRecord>> {
        done("find_user", users::find_user(&self.pool, scope, by).await)
    }

    async fn list_users(
        &self,
        scope: &Scope,
        filter: &UserFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<User>> {
        done("list_users", users::list_users(&self.pool, scope, filter, after, limit).await)
    }

    async fn update_user(
        &self,
        scope: &Scope,
        id: Uuid,
        patch: &UserPatch,
        at: OffsetDateTime,
    ) -> StoreResult<Option<User>> {
        done("update_user", users::update_user(&self.pool, scope, id, patch, at).await)
    }

    async fn delete_user(&self, scope: &Scope, id: Uuid, outbox: &[OutboxMessage]) -> StoreResult<bool> {
        done("delete_user", users::delete_user(&self.pool, scope, id, outbox).await)
    }

    async fn set_password_hash(
        &self,
        scope: &Scope,
        id: Uuid,
        hash: &str,
        at: OffsetDateTime,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        done("set_password_hash", users::set_password_hash(&self.pool, scope, id, hash, at, outbox).await)
    }

    async fn rehash_password(&self, scope: &Scope, id: Uuid, old: &str, new: &str) -> StoreResult<bool> {
        done("rehash_password", users::rehash_password(&self.pool, scope, id, old, new).await)
    }

    // ---- sessions

    async fn insert_login(&self, login: &NewLogin) -> StoreResult<LoginStored> {
        done("insert_login", sessions::insert_login(&self.pool, login, changes::CHANNEL).await)
    }

    async fn find_session(&self, scope: &Scope, hash: &TokenHash) -> StoreResult<Option<(Session, User)>> {
        done("find_session", sessions::find_session(&self.pool, scope, hash).await)
    }

    async fn freshen_session(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        last_seen_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        done(
            "freshen_session",
            sessions::freshen_session(&self.pool, scope, hash, last_seen_at, expires_at).await,
        )
    }

    async fn patch_session_data(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        patch: &serde_json::Value,
        max_bytes: usize,
    ) -> StoreResult<Option<Session>> {
        done(
            "patch_session_data",
            sessions::patch_session_data(&self.pool, scope, hash, patch, max_bytes).await,
        )
    }

    async fn delete_session_by_hash(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Session>> {
        if outbox.is_empty() {
            return done(
                "delete_session_by_hash",
                sessions::delete_session_by_hash(&self.pool, scope, hash).await,
            );
        }
        let result = async {
            let mut tx = self.pool.begin().await?;
            let ended = sessions::delete_session_by_hash(&mut *tx, scope, hash).await?;
            if ended.is_some() {
                outbox::insert_messages(&mut tx, outbox).await?;
            }
            tx.commit().await?;
            Ok(ended)
        };
        done("delete_session_by_hash", result.await)
    }

    async fn delete_session(
        &self,
        scope: &Scope,
        user_id: Uuid,
        session_id: Uuid,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        if outbox.is_empty() {
            return done(
                "delete_session",
                sessions::delete_session(&self.pool, scope, user_id, session_id).await,
            );
        }
        let result = async {
            let mut tx = self.pool.begin().await?;
            let ended = sessions::delete_session(&mut *tx, scope, user_id, session_id).await?;
            if ended {
                outbox::insert_messages(&mut tx, outbox).await?;
            }
            tx.commit().await?;
            Ok(ended)
        };
        done("delete_session", result.await)
    }

    async fn delete_sessions(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<u64> {
        if outbox.is_empty() {
            let result = async {
                let mut conn = self.pool.acquire().await?;
                sessions::end_sessions(&mut conn, scope, user_id, keep).await
            };
            return done("delete_sessions", result.await);
        }
        let result = async {
            let mut tx = self.pool.begin().await?;
            let ended = sessions::end_sessions(&mut tx, scope, user_id, keep).await?;
            if ended > 0 {
                outbox::insert_messages(&mut tx, outbox).await?;
            }
            tx.commit().await?;
            Ok(ended)
        };
        done("delete_sessions", result.await)
    }

    async fn list_sessions(
        &self,
        scope: &Scope,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        done("list_sessions", sessions::list_sessions(&self.pool, scope, user_id, now).await)
    }

    // ---- one-time codes

    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()> {
        done("insert_code", codes::insert_code(&self.pool, code).await)
    }

    async fn request_code(&self, scope: &Scope, req: &CodeRequest) -> StoreResult<CodeRequestOutcome> {
        done("request_code", codes::request_code(&self.pool, scope, req).await)
    }

    async fn code_owner(
        &self,
        scope: &Scope,
        kind: CodeKind,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Uuid>> {
        done("code_owner", codes::code_owner(&self.pool, scope, kind, hash, now).await)
    }

    async fn redeem_reset_code(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        now: OffsetDateTime,
        new_hash: &str,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Uuid>> {
        done(
            "redeem_reset_code",
            codes::redeem_reset_code(&self.pool, scope, hash, now, new_hash, outbox).await,
        )
    }

    async fn redeem_code(
        &self,
        scope: &Scope,
        kind: CodeKind,
        hash: &TokenHash,
        now: OffsetDateTime,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Uuid>> {
        done("redeem_code", codes::redeem_code(&self.pool, scope, kind, hash, now, outbox).await)
    }

    // ---- provider identities

    async fn insert_flow(&self, flow: &FlowRecord) -> StoreResult<()> {
        done("insert_flow", flows::insert_flow(&self.pool, flow).await)
    }

    async fn take_flow(
        &self,
        scope: Option<&Scope>,
        kind: FlowKind,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<FlowRecord>> {
        done("take_flow", flows::take_flow(&self.pool, scope, kind, hash, now).await)
    }

    async fn mfa_state(&self, scope: &Scope, user_id: Uuid) -> StoreResult<MfaState> {
        done("mfa_state", mfa::mfa_state(&self.pool, scope, user_id).await)
    }

    async fn enrol_totp(
        &self,
        scope: &Scope,
        user_id: Uuid,
        secret: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        done("enrol_totp", mfa::enrol_totp(&self.pool, scope, user_id, secret, at).await)
    }

    async fn accept_totp_step(
        &self,
        scope: &Scope,
        user_id: Uuid,
        step: i64,
        confirm: Option<&FactorChange>,
    ) -> StoreResult<bool> {
        done("accept_totp_step", mfa::accept_totp_step(&self.pool, scope, user_id, step, confirm).await)
    }

    async fn replace_recovery_codes(
        &self,
        scope: &Scope,
        user_id: Uuid,
        codes: &[TokenHash],
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        done(
            "replace_recovery_codes",
            mfa::replace_recovery_codes(&self.pool, scope, user_id, codes, at).await,
        )
    }

    async fn use_recovery_code(
        &self,
        scope: &Scope,
        user_id: Uuid,
        hash: &TokenHash,
    ) -> StoreResult<Option<u32>> {
        done("use_recovery_code", mfa::use_recovery_code(&self.pool, scope, user_id, hash).await)
    }

    async fn remove_mfa(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        done("remove_mfa", mfa::remove_mfa(&self.pool, scope, user_id, keep_session, outbox).await)
    }

    async fn remove_totp(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        done("remove_totp", mfa::remove_totp(&self.pool, scope, user_id, keep_session, outbox).await)
    }

    async fn insert_passkey(
        &self,
        passkey: &PasskeyRecord,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        done("insert_passkey", passkeys::insert_passkey(&self.pool, passkey, keep_session, outbox).await)
    }

    async fn list_passkeys(&self, scope: &Scope, user_id: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        done("list_passkeys", passkeys::list_passkeys(&self.pool, scope, user_id).await)
    }

    async fn find_passkey(&self, scope: &Scope, credential_id: &[u8]) -> StoreResult<Option<PasskeyRecord>> {
        done("find_passkey", passkeys::find_passkey(&self.pool, scope, credential_id).await)
    }

    async fn use_passkey(&self, scope: &Scope, id: Uuid, used: &PasskeyUse) -> StoreResult<bool> {
        done("use_passkey", passkeys::use_passkey(&self.pool, scope, id, used).await)
    }

    async fn rename_passkey(&self, scope: &Scope, user_id: Uuid, id: Uuid, name: &str) -> StoreResult<bool> {
        done("rename_passkey", passkeys::rename_passkey(&self.pool, scope, user_id, id, name).await)
    }

    async fn delete_passkey(
        &self,
        scope: &Scope,
        user_id: Uuid,
        id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        done(
            "delete_passkey",
            passkeys::delete_passkey(&self.pool, scope, user_id, id, keep_session, outbox).await,
        )
    }

    async fn upsert_identity(&self, identity: &Identity, outbox: &[OutboxMessage]) -> StoreResult<()> {
        done("upsert_identity", identities::upsert_identity(&self.pool, identity, outbox).await)
    }

    async fn get_identity(
        &self,
        scope: &Scope,
        user_id: Uuid,
        provider: &ProviderName,
    ) -> StoreResult<Option<Identity>> {
        done("get_identity", identities::get_identity(&self.pool, scope, user_id, provider).await)
    }

    async fn find_identity(
        &self,
        scope: &Scope,
        provider: &ProviderName,
        client_id: &str,
    ) -> StoreResult<Option<Identity>> {
        done("find_identity", identities::find_identity(&self.pool, scope, provider, client_id).await)
    }

    async fn list_identities(&self, scope: &Scope, user_id: Uuid) -> StoreResult<Vec<Identity>> {
        done("list_identities", identities::list_identities(&self.pool, scope, user_id).await)
    }

    async fn delete_identity(
        &self,
        scope: &Scope,
        user_id: Uuid,
        provider: &ProviderName,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        done(
            "delete_identity",
            identities::delete_identity(&self.pool, scope, user_id, provider, outbox).await,
        )
    }

    // ---- login events

    async fn insert_event(&self, event: &LoginEvent, outbox: &[OutboxMessage]) -> StoreResult<()> {
        done("insert_event", events::insert_event(&self.pool, event, outbox).await)
    }

    async fn list_events(
        &self,
        scope: &Scope,
        user_id: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<LoginEvent>> {
        done("list_events", events::list_events(&self.pool, scope, user_id, before, limit).await)
    }

    async fn login_stats(
        &self,
        scope: &Scope,
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: Bucket,
    ) -> StoreResult<Vec<StatBucket>> {
        done("login_stats", events::login_stats(&self.pool, scope, from, to, bucket).await)
    }

    // ---- admin web page

    async fn enqueue(&self, e: &Enqueue<'_>) -> StoreResult<()> {
        done("enqueue", outbox::enqueue(&self.pool, e).await)
    }

    async fn update_user_enqueue(
        &self,
        scope: &Scope,
        id: Uuid,
        patch: &UserPatch,
        at: OffsetDateTime,
        e: &Enqueue<'_>,
    ) -> StoreResult<Option<User>> {
        done("update_user_enqueue", outbox::update_user_enqueue(&self.pool, scope, id, patch, at, e).await)
    }

    async fn outbox_claim(&self, claim: &OutboxClaim) -> StoreResult<Vec<OutboxMessage>> {
        done("outbox_claim", outbox::claim(&self.pool, claim).await)
    }

    async fn outbox_update(&self, id: Uuid, owner: &str, update: &OutboxUpdate) -> StoreResult<bool> {
        done("outbox_update", outbox::update(&self.pool, id, owner, update).await)
    }

    async fn outbox_retry(&self, id: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        done("outbox_retry", outbox::retry(&self.pool, id, now).await)
    }

    async fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        done("outbox_stats", outbox::stats(&self.pool).await)
    }

    async fn outbox_purge_sent(
        &self,
        kind: OutboxKind,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<u64> {
        done("outbox_purge_sent", outbox::purge_sent(&self.pool, kind, before, limit).await)
    }

    async fn outbox_list(&self, before: Option<Uuid>, limit: u32) -> StoreResult<Vec<OutboxMessage>> {
        done("outbox_list", outbox::list(&self.pool, before, limit).await)
    }

    async fn outbox_lane(
        &self,
        kind: OutboxKind,
        lane: &str,
        state: Option<OutboxState>,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>> {
        done("outbox_lane", outbox::lane(&self.pool, kind, lane, state, before, limit).await)
    }

    async fn outbox_lane_stats(&self, kind: OutboxKind) -> StoreResult<Vec<(String, OutboxStats)>> {
        done("outbox_lane_stats", outbox::lane_stats(&self.pool, kind).await)
    }

    async fn insert_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        done("insert_webhook", webhooks::insert(&self.pool, endpoint).await)
    }

    async fn list_webhooks(&self, scope: Option<&Scope>) -> StoreResult<Vec<WebhookEndpoint>> {
        done("list_webhooks", webhooks::list(&self.pool, scope).await)
    }

    async fn update_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<bool> {
        done("update_webhook", webhooks::update(&self.pool, endpoint).await)
    }

    async fn delete_webhook(&self, scope: &Scope, id: Uuid) -> StoreResult<bool> {
        done("delete_webhook", webhooks::delete(&self.pool, scope, id).await)
    }

    async fn insert_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        done("insert_audit", admin::insert_audit(&self.pool, entry).await)
    }

    async fn list_audit(&self, before: Option<Uuid>, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        done("list_audit", admin::list_audit(&self.pool, before, limit).await)
    }

    async fn scope_figures(&self, now: OffsetDateTime) -> StoreResult<Vec<ScopeFigures>> {
        done("scope_figures", admin::scope_figures(&self.pool, now).await)
    }

    async fn outcome_stats(
        &self,
        scope: &Scope,
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: Bucket,
    ) -> StoreResult<Vec<OutcomeCount>> {
        done("outcome_stats", admin::outcome_stats(&self.pool, scope, from, to, bucket).await)
    }

    // ---- maintenance

    async fn count_valid_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        done("count_valid_sessions", sessions::count_valid(&self.pool, now).await)
    }

    async fn sweep_expired(&self, now: OffsetDateTime, batch: u32) -> StoreResult<u64> {
        done("sweep_expired", sessions::sweep_expired(&self.pool, now, batch).await)
    }

    // ---- throttling counters

    async fn throttle_get(
        &self,
        scope: &Scope,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ThrottleState>> {
        done("throttle_get", throttles::get(&self.pool, scope, key, now).await)
    }

    async fn throttle_hit(
        &self,
        scope: &Scope,
        key: &str,
        now: OffsetDateTime,
        window: time::Duration,
    ) -> StoreResult<ThrottleState> {
        done("throttle_hit", throttles::hit(&self.pool, scope, key, now, window).await)
    }

    async fn throttle_clear(&self, scope: &Scope, key: &str) -> StoreResult<()> {
        done("throttle_clear", throttles::clear(&self.pool, scope, key).await)
    }

    async fn throttle_update(
        &self,
        scope: &Scope,
        update: &hallpass_core::ThrottleUpdate<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<ThrottleState>> {
        done("throttle_update", throttles::update(&self.pool, scope, update, now).await)
    }

    // ---- export and import

    async fn export_users(&self, after: Option<(Scope, Uuid)>, limit: u32) -> StoreResult<Vec<ExportedUser>> {
        done("export_users", bulk::export_users(&self.pool, after, limit).await)
    }

    async fn import_users(&self, users: &[ExportedUser]) -> StoreResult<ImportOutcome> {
        done("import_users", bulk::import_users(&self.pool, users).await)
    }

    // ---- telling other processes

    async fn publish_change(&self, change: &Change) -> StoreResult<()> {
        done("publish_change", changes::publish(&self.pool, change).await)
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let tx = self.changes.get_or_init(|| {
            let (tx, _) = tokio::sync::broadcast::channel(1024);
            runtime.spawn(changes::supervise(self.pool.clone(), tx.clone(), Arc::downgrade(&self.alive)));
            tx
        });
        Some(tx.subscribe())
    }
}
