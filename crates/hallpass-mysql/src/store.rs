//! [`MySqlStore`]: its constructors (`connect`, `connect_with`; the pool and how each
//! connection is set up are in `crate::connection`), `migrate`, and the
//! [`hallpass_core::Store`] implementation.
//!
//! Each trait method picks its transaction boundary and calls one function of
//! `crate::queries`: a read runs on a pooled connection, a multi-statement write in one
//! transaction (`tx!`), a single-statement write on its own (autocommit, which is a
//! transaction of one statement). Everything runs inside `attempt!`, which classifies
//! errors and runs a deadlock victim again. Nothing else happens here, so the SQL and its
//! transaction boundaries can be read in one place.

use crate::error::{QResult, finish};
use crate::migrate;
use crate::queries::{
    admin, bulk, codes, events, flows, identities, keys, mfa, outbox, passkeys, sessions, throttles, users,
    webhooks,
};
use crate::{changes, connection};
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
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool};
use sqlx::{ConnectOptions, Connection};
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// hallpass storage on MariaDB / MySQL. Cheap to clone (the pool is shared).
///
/// Several stores — in one process or several, such as the server and a CLI command —
/// may use one database at the same time; the database orders their transactions.
#[derive(Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
    /// Changes for caches, read from the change log by the poller (this process's own
    /// too), started by the first `changes()`.
    changes: Arc<std::sync::OnceLock<tokio::sync::broadcast::Sender<Change>>>,
    /// Held while the store lives; the poller ends when only its weak handle is left.
    alive: Arc<()>,
}

impl std::fmt::Debug for MySqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options = self.pool.connect_options();
        f.debug_struct("MySqlStore")
            .field("host", &options.get_host())
            .field("database", &options.get_database())
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
    }
}

/// Runs a transaction on the store's pool: `tx!(self, "op", |c| expr)` begins, evaluates
/// `expr` (which uses `c: &mut MySqlConnection` and `?`), commits, and returns the
/// classified result. An error drops the transaction, which rolls it back. A deadlock runs
/// the whole thing again (see `attempt!`).
macro_rules! tx {
    ($store:expr, $op:literal, |$c:ident| $e:expr) => {
        attempt!($op, async {
            let mut tx = $store.pool.begin().await?;
            let $c: &mut MySqlConnection = &mut tx;
            let out = $e;
            tx.commit().await?;
            Ok(out)
        })
    };
}

/// Runs one statement (or several reads) on a pooled connection, in autocommit mode.
macro_rules! on_conn {
    ($store:expr, $op:literal, |$c:ident| $e:expr) => {
        attempt!($op, async {
            let mut conn = $store.pool.acquire().await?;
            let $c: &mut MySqlConnection = &mut conn;
            Ok($e)
        })
    };
}

impl MySqlStore {
    /// Connects to the database a URL names (`mysql://USER:PASSWORD@HOST:PORT/DATABASE`,
    /// with sqlx's options such as `?ssl-mode=required`) and opens one connection to check
    /// it. Does not migrate: call [`MySqlStore::migrate`].
    ///
    /// `Unavailable` when the server cannot be reached; `Other` for a malformed URL or
    /// refused credentials.
    pub async fn connect(url: &str) -> Result<MySqlStore, StoreError> {
        Self::connect_with(connection::options_from_url(url)?).await
    }

    /// Connects with explicit options (see [`MySqlStore::connect`]). The store overrides
    /// the character set, collation and SQL mode settings: it depends on them.
    pub async fn connect_with(options: MySqlConnectOptions) -> Result<MySqlStore, StoreError> {
        let pool = connection::pool(options).await?;
        Ok(MySqlStore { pool, changes: Default::default(), alive: Arc::new(()) })
    }

    /// Applies the embedded migrations that are not applied yet (`migrations/*.sql`).
    /// Safe when several processes migrate one database at once: they take turns under a
    /// named lock, and the later ones find nothing left to do (see `crate::migrate`).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let options = self.pool.connect_options();
        let result: QResult<()> = async {
            // A connection of its own: the migration lock belongs to the connection, and
            // dropping this one (even mid-way, on cancellation) releases it.
            let mut conn = options.connect().await?;
            connection::configure(&mut conn).await?;
            let applied = migrate::run(&mut conn).await;
            if let Err(e) = conn.close().await {
                tracing::debug!(error = %e, "mysql: closing the migration connection failed");
            }
            applied
        }
        .await;
        finish("migrate", result)
    }

    /// The connection pool, for what the `Store` trait does not cover (health details,
    /// tests).
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Closes every connection, waiting for the ones in use to come back. The change
    /// poller, if started, ends at its next poll.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Store for MySqlStore {
    async fn ping(&self) -> StoreResult<()> {
        on_conn!(self, "ping", |c| c.ping().await?)
    }

    // ---- API keys

    async fn insert_api_key(&self, key: &ApiKey, hash: &TokenHash) -> StoreResult<()> {
        on_conn!(self, "insert_api_key", |c| keys::insert_api_key(c, key, hash).await?)
    }

    async fn find_api_key(&self, hash: &TokenHash) -> StoreResult<Option<ApiKey>> {
        on_conn!(self, "find_api_key", |c| keys::find_api_key(c, hash).await?)
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        on_conn!(self, "list_api_keys", |c| keys::list_api_keys(c).await?)
    }

    async fn touch_api_key(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<()> {
        on_conn!(self, "touch_api_key", |c| keys::touch_api_key(c, id, at).await?)
    }

    async fn revoke_api_key(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<bool> {
        on_conn!(self, "revoke_api_key", |c| keys::revoke_api_key(c, id, at).await?)
    }

    // ---- users

    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()> {
        on_conn!(self, "insert_user", |c| users::insert_user(c, user).await?)
    }

    async fn find_user(&self, scope: &Scope, by: &UserRef) -> StoreResult<Option<UserRecord>> {
        on_conn!(self, "find_user", |c| users::find_user(c, scope, by).await?)
    }

    async fn list_users(
        &self,
        scope: &Scope,
        filter: &UserFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<User>> {
        on_conn!(self, "list_users", |c| users::list_users(c, scope, filter, after, limit).await?)
    }

    async fn update_user(
        &self,
        scope: &Scope,
        id: Uuid,
        patch: &UserPatch,
        at: OffsetDateTime,
    ) -> StoreResult<Option<User>> {
        tx!(self, "update_user", |c| users::update_user(c, scope, id, patch, at).await?)
    }

    async fn delete_user(&self, scope: &Scope, id: Uuid, outbox: &[OutboxMessage]) -> StoreResult<bool> {
        tx!(self, "delete_user", |c| users::delete_user(c, scope, id, outbox).await?)
    }

    async fn set_password_hash(
        &self,
        scope: &Scope,
        id: Uuid,
        hash: &str,
        at: OffsetDateTime,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        tx!(self, "set_password_hash", |c| users::set_password_hash(c, scope, id, hash, at, outbox).await?)
    }

    async fn rehash_password(&self, scope: &Scope, id: Uuid, old: &str, new: &str) -> StoreResult<bool> {
        on_conn!(self, "rehash_password", |c| users::rehash_password(c, scope, id, old, new).await?)
    }

    // ---- sessions

    async fn insert_login(&self, login: &NewLogin) -> StoreResult<LoginStored> {
        tx!(self, "insert_login", |c| sessions::insert_login(c, login).await?)
    }

    async fn find_session(&self, scope: &Scope, hash: &TokenHash) -> StoreResult<Option<(Session, User)>> {
        on_conn!(self, "find_session", |c| sessions::find_session(c, scope, hash).await?)
    }

    async fn freshen_session(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        last_seen_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        tx!(self, "freshen_session", |c| sessions::freshen_session(c, scope, hash, last_seen_at, expires_at)
            .await?)
    }

    async fn patch_session_data(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        patch: &serde_json::Value,
        max_bytes: usize,
    ) -> StoreResult<Option<Session>> {
        tx!(self, "patch_session_data", |c| sessions::patch_session_data(c, scope, hash, patch, max_bytes)
            .await?)
    }

    async fn delete_session_by_hash(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Session>> {
        tx!(self, "delete_session_by_hash", |c| {
            let ended = sessions::delete_session_by_hash(&mut *c, scope, hash).await?;
            if ended.is_some() {
                outbox::insert_messages(c, outbox).await?;
            }
            ended
        })
    }

    async fn delete_session(
        &self,
        scope: &Scope,
        user_id: Uuid,
        session_id: Uuid,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        if outbox.is_empty() {
            return on_conn!(self, "delete_session", |c| sessions::delete_session(
                c, scope, user_id, session_id
            )
            .await?);
        }
        tx!(self, "delete_session", |c| {
            let ended = sessions::delete_session(&mut *c, scope, user_id, session_id).await?;
            if ended {
                outbox::insert_messages(c, outbox).await?;
            }
            ended
        })
    }

    async fn delete_sessions(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<u64> {
        if outbox.is_empty() {
            return on_conn!(self, "delete_sessions", |c| sessions::end_sessions(c, scope, user_id, keep)
                .await?);
        }
        tx!(self, "delete_sessions", |c| {
            let ended = sessions::end_sessions(&mut *c, scope, user_id, keep).await?;
            if ended > 0 {
                outbox::insert_messages(c, outbox).await?;
            }
            ended
        })
    }

    async fn list_sessions(
        &self,
        scope: &Scope,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        on_conn!(self, "list_sessions", |c| sessions::list_sessions(c, scope, user_id, now).await?)
    }

    // ---- one-time codes

    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()> {
        tx!(self, "insert_code", |c| codes::insert_code(c, code).await?)
    }

    async fn request_code(&self, scope: &Scope, req: &CodeRequest) -> StoreResult<CodeRequestOutcome> {
        tx!(self, "request_code", |c| codes::request_code(c, scope, req).await?)
    }

    async fn code_owner(
        &self,
        scope: &Scope,
        kind: CodeKind,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Uuid>> {
        on_conn!(self, "code_owner", |c| codes::code_owner(c, scope, kind, hash, now).await?)
    }

    async fn redeem_reset_code(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        now: OffsetDateTime,
        new_hash: &str,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Uuid>> {
        tx!(self, "redeem_reset_code", |c| {
            let user = codes::redeem_reset_code(&mut *c, scope, hash, now, new_hash).await?;
            if user.is_some() {
                outbox::insert_messages(c, outbox).await?;
            }
            user
        })
    }

    async fn redeem_code(
        &self,
        scope: &Scope,
        kind: CodeKind,
        hash: &TokenHash,
        now: OffsetDateTime,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Uuid>> {
        tx!(self, "redeem_code", |c| {
            let user = codes::redeem_code(&mut *c, scope, kind, hash, now).await?;
            if user.is_some() {
                outbox::insert_messages(c, outbox).await?;
            }
            user
        })
    }

    // ---- provider identities

    async fn insert_flow(&self, flow: &FlowRecord) -> StoreResult<()> {
        on_conn!(self, "insert_flow", |c| flows::insert_flow(c, flow).await?)
    }

    async fn take_flow(
        &self,
        scope: Option<&Scope>,
        kind: FlowKind,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<FlowRecord>> {
        tx!(self, "take_flow", |c| flows::take_flow(c, scope, kind, hash, now).await?)
    }

    async fn mfa_state(&self, scope: &Scope, user_id: Uuid) -> StoreResult<MfaState> {
        on_conn!(self, "mfa_state", |c| mfa::mfa_state(c, scope, user_id).await?)
    }

    async fn enrol_totp(
        &self,
        scope: &Scope,
        user_id: Uuid,
        secret: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        tx!(self, "enrol_totp", |c| mfa::enrol_totp(c, scope, user_id, secret, at).await?)
    }

    async fn accept_totp_step(
        &self,
        scope: &Scope,
        user_id: Uuid,
        step: i64,
        confirm: Option<&FactorChange>,
    ) -> StoreResult<bool> {
        tx!(self, "accept_totp_step", |c| mfa::accept_totp_step(c, scope, user_id, step, confirm).await?)
    }

    async fn replace_recovery_codes(
        &self,
        scope: &Scope,
        user_id: Uuid,
        codes: &[TokenHash],
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        tx!(self, "replace_recovery_codes", |c| mfa::replace_recovery_codes(c, scope, user_id, codes, at)
            .await?)
    }

    async fn use_recovery_code(
        &self,
        scope: &Scope,
        user_id: Uuid,
        hash: &TokenHash,
    ) -> StoreResult<Option<u32>> {
        tx!(self, "use_recovery_code", |c| mfa::use_recovery_code(c, scope, user_id, hash).await?)
    }

    async fn remove_mfa(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        tx!(self, "remove_mfa", |c| mfa::remove_mfa(c, scope, user_id, keep_session, outbox).await?)
    }

    async fn remove_totp(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        tx!(self, "remove_totp", |c| mfa::remove_totp(c, scope, user_id, keep_session, outbox).await?)
    }

    async fn insert_passkey(
        &self,
        passkey: &PasskeyRecord,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        tx!(self, "insert_passkey", |c| passkeys::insert_passkey(c, passkey, keep_session, outbox).await?)
    }

    async fn list_passkeys(&self, scope: &Scope, user_id: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        on_conn!(self, "list_passkeys", |c| passkeys::list_passkeys(c, scope, user_id).await?)
    }

    async fn find_passkey(&self, scope: &Scope, credential_id: &[u8]) -> StoreResult<Option<PasskeyRecord>> {
        on_conn!(self, "find_passkey", |c| passkeys::find_passkey(c, scope, credential_id).await?)
    }

    async fn use_passkey(&self, scope: &Scope, id: Uuid, used: &PasskeyUse) -> StoreResult<bool> {
        tx!(self, "use_passkey", |c| passkeys::use_passkey(c, scope, id, used).await?)
    }

    async fn rename_passkey(&self, scope: &Scope, user_id: Uuid, id: Uuid, name: &str) -> StoreResult<bool> {
        tx!(self, "rename_passkey", |c| passkeys::rename_passkey(c, scope, user_id, id, name).await?)
    }

    async fn delete_passkey(
        &self,
        scope: &Scope,
        user_id: Uuid,
        id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        tx!(self, "delete_passkey", |c| passkeys::delete_passkey(c, scope, user_id, id, keep_session, outbox)
            .await?)
    }

    async fn upsert_identity(&self, identity: &Identity, outbox: &[OutboxMessage]) -> StoreResult<()> {
        tx!(self, "upsert_identity", |c| identities::upsert_identity(c, identity, outbox).await?)
    }

    async fn get_identity(
        &self,
        scope: &Scope,
        user_id: Uuid,
        provider: &ProviderName,
    ) -> StoreResult<Option<Identity>> {
        on_conn!(self, "get_identity", |c| identities::get_identity(c, scope, user_id, provider).await?)
    }

    async fn find_identity(
        &self,
        scope: &Scope,
        provider: &ProviderName,
        client_id: &str,
    ) -> StoreResult<Option<Identity>> {
        on_conn!(self, "find_identity", |c| identities::find_identity(c, scope, provider, client_id).await?)
    }

    async fn list_identities(&self, scope: &Scope, user_id: Uuid) -> StoreResult<Vec<Identity>> {
        on_conn!(self, "list_identities", |c| identities::list_identities(c, scope, user_id).await?)
    }

    async fn delete_identity(
        &self,
        scope: &Scope,
        user_id: Uuid,
        provider: &ProviderName,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        tx!(self, "delete_identity", |c| identities::delete_identity(c, scope, user_id, provider, outbox)
            .await?)
    }

    // ---- login events

    async fn insert_event(&self, event: &LoginEvent, outbox: &[OutboxMessage]) -> StoreResult<()> {
        if outbox.is_empty() {
            return on_conn!(self, "insert_event", |c| events::insert_event(c, event).await?);
        }
        tx!(self, "insert_event", |c| events::insert_failure(c, event, outbox).await?)
    }

    async fn list_events(
        &self,
        scope: &Scope,
        user_id: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<LoginEvent>> {
        on_conn!(self, "list_events", |c| events::list_events(c, scope, user_id, before, limit).await?)
    }

    async fn login_stats(
        &self,
        scope: &Scope,
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: Bucket,
    ) -> StoreResult<Vec<StatBucket>> {
        on_conn!(self, "login_stats", |c| events::login_stats(c, scope, from, to, bucket).await?)
    }

    // ---- admin web page

    async fn enqueue(&self, e: &Enqueue<'_>) -> StoreResult<()> {
        tx!(self, "enqueue", |c| outbox::enqueue(c, e).await?)
    }

    async fn update_user_enqueue(
        &self,
        scope: &Scope,
        id: Uuid,
        patch: &UserPatch,
        at: OffsetDateTime,
        e: &Enqueue<'_>,
    ) -> StoreResult<Option<User>> {
        tx!(self, "update_user_enqueue", |c| {
            match users::update_user(&mut *c, scope, id, patch, at).await? {
                Some(user) => {
                    outbox::enqueue(&mut *c, &Enqueue { user: None, ..*e }).await?;
                    Some(user)
                }
                None => None,
            }
        })
    }

    async fn outbox_claim(&self, claim: &OutboxClaim) -> StoreResult<Vec<OutboxMessage>> {
        tx!(self, "outbox_claim", |c| outbox::claim(c, claim).await?)
    }

    async fn outbox_update(&self, id: Uuid, owner: &str, update: &OutboxUpdate) -> StoreResult<bool> {
        tx!(self, "outbox_update", |c| outbox::update(c, id, owner, update).await?)
    }

    async fn outbox_retry(&self, id: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        on_conn!(self, "outbox_retry", |c| outbox::retry(c, id, now).await?)
    }

    async fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        on_conn!(self, "outbox_stats", |c| outbox::stats(c).await?)
    }

    async fn outbox_purge_sent(
        &self,
        kind: OutboxKind,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<u64> {
        on_conn!(self, "outbox_purge_sent", |c| outbox::purge_sent(c, kind, before, limit).await?)
    }

    async fn outbox_list(&self, before: Option<Uuid>, limit: u32) -> StoreResult<Vec<OutboxMessage>> {
        on_conn!(self, "outbox_list", |c| outbox::list(c, before, limit).await?)
    }

    async fn outbox_lane(
        &self,
        kind: OutboxKind,
        lane: &str,
        state: Option<OutboxState>,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>> {
        on_conn!(self, "outbox_lane", |c| outbox::lane(c, kind, lane, state, before, limit).await?)
    }

    async fn outbox_lane_stats(&self, kind: OutboxKind) -> StoreResult<Vec<(String, OutboxStats)>> {
        on_conn!(self, "outbox_lane_stats", |c| outbox::lane_stats(c, kind).await?)
    }

    async fn insert_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        on_conn!(self, "insert_webhook", |c| webhooks::insert(c, endpoint).await?)
    }

    async fn list_webhooks(&self, scope: Option<&Scope>) -> StoreResult<Vec<WebhookEndpoint>> {
        on_conn!(self, "list_webhooks", |c| webhooks::list(c, scope).await?)
    }

    async fn update_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<bool> {
        on_conn!(self, "update_webhook", |c| webhooks::update(c, endpoint).await?)
    }

    async fn delete_webhook(&self, scope: &Scope, id: Uuid) -> StoreResult<bool> {
        tx!(self, "delete_webhook", |c| webhooks::delete(c, scope, id).await?)
    }

    async fn insert_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        on_conn!(self, "insert_audit", |c| admin::insert_audit(c, entry).await?)
    }

    async fn list_audit(&self, before: Option<Uuid>, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        on_conn!(self, "list_audit", |c| admin::list_audit(c, before, limit).await?)
    }

    async fn scope_figures(&self, now: OffsetDateTime) -> StoreResult<Vec<ScopeFigures>> {
        on_conn!(self, "scope_figures", |c| admin::scope_figures(c, now).await?)
    }

    async fn outcome_stats(
        &self,
        scope: &Scope,
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: Bucket,
    ) -> StoreResult<Vec<OutcomeCount>> {
        on_conn!(self, "outcome_stats", |c| admin::outcome_stats(c, scope, from, to, bucket).await?)
    }

    // ---- maintenance

    async fn count_valid_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        on_conn!(self, "count_valid_sessions", |c| sessions::count_valid(c, now).await?)
    }

    async fn sweep_expired(&self, now: OffsetDateTime, batch: u32) -> StoreResult<u64> {
        tx!(self, "sweep_expired", |c| sessions::sweep_expired(c, now, batch).await?)
    }

    // ---- throttling counters

    async fn throttle_get(
        &self,
        scope: &Scope,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ThrottleState>> {
        on_conn!(self, "throttle_get", |c| throttles::get(c, scope, key, now).await?)
    }

    async fn throttle_hit(
        &self,
        scope: &Scope,
        key: &str,
        now: OffsetDateTime,
        window: time::Duration,
    ) -> StoreResult<ThrottleState> {
        tx!(self, "throttle_hit", |c| throttles::hit(c, scope, key, now, window).await?)
    }

    async fn throttle_clear(&self, scope: &Scope, key: &str) -> StoreResult<()> {
        on_conn!(self, "throttle_clear", |c| throttles::clear(c, scope, key).await?)
    }

    async fn throttle_update(
        &self,
        scope: &Scope,
        update: &hallpass_core::ThrottleUpdate<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<ThrottleState>> {
        tx!(self, "throttle_update", |c| throttles::update(c, scope, update, now).await?)
    }

    // ---- export and import

    async fn export_users(&self, after: Option<(Scope, Uuid)>, limit: u32) -> StoreResult<Vec<ExportedUser>> {
        on_conn!(self, "export_users", |c| bulk::export_users(c, after.clone(), limit).await?)
    }

    async fn import_users(&self, users: &[ExportedUser]) -> StoreResult<ImportOutcome> {
        tx!(self, "import_users", |c| bulk::import_users(c, users).await?)
    }

    // ---- telling other processes

    /// One row of the change log (`hallpass_changes`), read by every process's poller,
    /// this one's included (see `crate::changes`).
    async fn publish_change(&self, change: &Change) -> StoreResult<()> {
        on_conn!(self, "publish_change", |c| changes::publish(c, change).await?)
    }

    /// Starts the poller on the first call, and blocks until it has read where the change
    /// log ends (one query, at most `changes::BASELINE_WAIT`): a change committed after
    /// this returns is delivered.
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        // The first subscriber's receiver exists before the poller starts: nothing the
        // poller sends can pass before it.
        let mut first = None;
        let tx = self.changes.get_or_init(|| {
            let (tx, rx) = tokio::sync::broadcast::channel(1024);
            first = Some(rx);
            changes::start(self.pool.clone(), tx.clone(), Arc::downgrade(&self.alive));
            tx
        });
        Some(first.unwrap_or_else(|| tx.subscribe()))
    }
}
