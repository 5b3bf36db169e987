//! The storage trait every backend implements, and its error.
//!
//! Each method is one atomic unit: a backend runs it in one transaction (or one statement)
//! so nothing is ever half-written. Where a method says "ends every session", the session
//! rows go in the same transaction as the change that ends them. A backend turns its own
//! constraint violations into [`StoreError::UsernameTaken`] and friends and never lets a
//! driver error type escape. Every method that takes a [`Scope`] touches that scope only.
//!
//! The conformance suite (`hallpass-store-tests`) states the expected behaviour of every
//! method; each backend runs it unchanged.

use crate::flow::{FlowKind, FlowRecord};
use crate::mfa::{FactorChange, MfaState};
use crate::model::*;
use crate::outbox::{
    Enqueue, OutboxClaim, OutboxKind, OutboxMessage, OutboxState, OutboxStats, OutboxUpdate,
};
use crate::passkey::{PasskeyRecord, PasskeyUse};
use crate::secret::TokenHash;
use crate::types::{ProviderName, Scope, UserRef};
use crate::webhook::WebhookEndpoint;
use async_trait::async_trait;
use std::collections::HashSet;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// What a storage backend can report.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Unique username violated.
    #[error("username taken")]
    UsernameTaken,
    /// Unique email violated.
    #[error("email taken")]
    EmailTaken,
    /// Unique (provider, client_id) violated.
    #[error("identity linked to another user")]
    IdentityTaken,
    /// The database cannot be reached, is locked past the timeout, or is shutting down:
    /// the caller may retry.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A change would make a JSON field larger than its cap (see
    /// [`Store::patch_session_data`]); nothing was changed.
    #[error("{field} would be larger than {max_bytes} bytes")]
    TooLarge {
        /// The field (`data`).
        field: &'static str,
        /// The cap, in bytes of compact JSON.
        max_bytes: usize,
    },
    /// Anything else (a bug, corrupt data).
    #[error("storage error: {0}")]
    Other(String),
}

/// Result of a storage call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A login to be stored: the new session and its success event, in one transaction that
/// also sets the user's `last_login_at` to the session's `created_at`, and queues the
/// login's new-device notice when there is one (so the notice exists exactly when the
/// login committed).
#[derive(Debug, Clone)]
pub struct NewLogin {
    /// The session.
    pub session: SessionRecord,
    /// The event (outcome success, `session_id` set).
    pub event: LoginEvent,
    /// When set, the user's oldest sessions beyond this many are ended in the same
    /// transaction (the new one counts, and always stays: a cap of 0 acts as 1).
    pub max_sessions: Option<u32>,
    /// An outbox row (the new-device notice) written in the same transaction.
    pub notice: Option<OutboxMessage>,
    /// Webhook deliveries of the login (`login.succeeded`, see [`crate::webhook`]),
    /// written in the same transaction, only when the login is.
    pub webhooks: Vec<OutboxMessage>,
}

/// What [`Store::insert_login`] did beyond storing the login, so the service knows whom
/// to tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginStored {
    /// How many of the user's older sessions the cap ([`NewLogin::max_sessions`]) ended.
    pub ended: u64,
    /// Whether the backend already told the other processes of those ended sessions, as
    /// [`Store::publish_change`] with [`Change::User`] would, from inside the login's own
    /// transaction (PostgreSQL: a `NOTIFY` sent at its commit); then the service does not
    /// publish again. `false` when nothing ended.
    pub published: bool,
}

/// Storage of users, sessions, codes, identities, login events and API keys.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when the database answers.
    async fn ping(&self) -> StoreResult<()>;

    // ---- API keys (not scoped: a key names its scope) ----

    /// Stores a new key.
    async fn insert_api_key(&self, key: &ApiKey, hash: &TokenHash) -> StoreResult<()>;
    /// The unrevoked key with that hash.
    async fn find_api_key(&self, hash: &TokenHash) -> StoreResult<Option<ApiKey>>;
    /// Every key, revoked ones too, oldest first.
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>>;
    /// Revokes a key; `false` when no unrevoked key has that id.
    async fn revoke_api_key(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<bool>;
    /// Records that the key was used at `at`: its `last_used_at` becomes `at` unless it is
    /// already later. An unknown key is no error (it may have been removed meanwhile).
    async fn touch_api_key(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<()>;

    // ---- users ----

    /// Stores a new user. `UsernameTaken`/`EmailTaken` when a key is taken in the scope.
    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// Finds a user of the scope by id, username key or email key.
    async fn find_user(&self, scope: &Scope, by: &UserRef) -> StoreResult<Option<UserRecord>>;
    /// Users of the scope matching `filter`, ordered by id, with ids greater than `after`.
    async fn list_users(
        &self,
        scope: &Scope,
        filter: &UserFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<User>>;
    /// Applies `patch` to the user and sets `updated_at`; returns the new user, `None` when
    /// there is no such user. Deactivation (`active: Some(false)`) ends every session of
    /// the user in the same transaction. A change of email (the normalised key differs:
    /// a new one, one set where there was none, or one removed) deletes every one-time
    /// code of the user, of every kind, in the same transaction. Conflicts as in
    /// `insert_user`.
    async fn update_user(
        &self,
        scope: &Scope,
        id: Uuid,
        patch: &UserPatch,
        at: OffsetDateTime,
    ) -> StoreResult<Option<User>>;
    /// Deletes the user with its sessions, codes and identities (events stay) and queues
    /// `outbox` (webhook deliveries of the deletion), in one transaction; `false` (nothing
    /// written) when there is no such user.
    async fn delete_user(&self, scope: &Scope, id: Uuid, outbox: &[OutboxMessage]) -> StoreResult<bool>;
    /// Sets the password hash, ends every session of the user, deletes every one-time
    /// code of the user (of every kind) and queues `outbox`, in one transaction; `false`
    /// (nothing written) when there is no such user.
    async fn set_password_hash(
        &self,
        scope: &Scope,
        id: Uuid,
        hash: &str,
        at: OffsetDateTime,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool>;
    /// Replaces the hash only while it still equals `old` (a rehash after a good login with
    /// old parameters); sessions and codes stay (a rehash is not a change of password).
    /// Returns whether it was replaced.
    async fn rehash_password(&self, scope: &Scope, id: Uuid, old: &str, new: &str) -> StoreResult<bool>;

    // ---- sessions ----

    /// Stores a login: session, event and `last_login_at`, and with a cap ends the user's
    /// oldest sessions beyond it, in one transaction. Fails (storing nothing) when the
    /// user does not exist. Reports how many sessions the cap ended.
    async fn insert_login(&self, login: &NewLogin) -> StoreResult<LoginStored>;
    /// The session with that token hash and its user, whatever its expiry (the service
    /// judges expiry). One indexed read.
    async fn find_session(&self, scope: &Scope, hash: &TokenHash) -> StoreResult<Option<(Session, User)>>;
    /// Sets `last_seen_at` and moves `expires_at` to `expires_at` unless it already is
    /// later (never backwards); returns the session after the change, `None` when there is
    /// no such session.
    async fn freshen_session(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        last_seen_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<Option<Session>>;
    /// Applies an RFC 7396 merge patch to the session's data atomically (with
    /// [`crate::patch::merge_session_patch`]); returns the new session, `None` when no
    /// session. When the merged data would be larger than `max_bytes` of compact JSON,
    /// changes nothing and fails with [`StoreError::TooLarge`] (the cap is judged inside
    /// the transaction, so concurrent patches cannot add up beyond it).
    async fn patch_session_data(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        patch: &serde_json::Value,
        max_bytes: usize,
    ) -> StoreResult<Option<Session>>;
    /// Ends the session with that token hash; returns it when there was one.
    async fn delete_session_by_hash(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Session>>;
    /// Ends one session of a user; `false` when the user has no such session. `outbox`
    /// (webhook deliveries of the end) is queued in the same transaction, only when a
    /// session ended; so for the other methods that end sessions here.
    async fn delete_session(
        &self,
        scope: &Scope,
        user_id: Uuid,
        session_id: Uuid,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool>;
    /// Ends every session of the user except `keep`; returns how many ended.
    async fn delete_sessions(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<u64>;
    /// The user's sessions still valid at `now`, newest first.
    async fn list_sessions(
        &self,
        scope: &Scope,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>>;

    // ---- one-time codes ----

    /// Stores a code and deletes the user's older codes of the same kind (a new one voids
    /// the older), in one transaction.
    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()>;
    /// A code asked for by login, done the same way whether or not the login names a user,
    /// so that both cost the same (one write transaction, the same statements): in one
    /// transaction, counts one request against the counter `req.throttle_key` (exactly as
    /// [`Store::throttle_hit`] with `req.window`), finds the user `req.login` names in the
    /// scope, and when there is one and the counter after the hit is within `req.limit`
    /// (0: no limit), stores the code for that user as [`Store::insert_code`] does
    /// (voiding the user's older codes of the kind), and then queues `req.outbox` when its
    /// `user_id` is that user. Otherwise nothing the code's hash can
    /// own or redeem may be left; a backend may write an ownerless decoy in its place (the
    /// SQL backends do, through the same statements as a real code) that no reader returns
    /// and [`Store::sweep_expired`] removes once it expires.
    async fn request_code(&self, scope: &Scope, req: &CodeRequest) -> StoreResult<CodeRequestOutcome>;
    /// The user the valid (unexpired) code of `kind` with that hash belongs to, read
    /// without consuming the code. The service asks before a reset so it can check the new
    /// password against the user's own names; the redemption that follows decides,
    /// atomically, whether the code is still good.
    async fn code_owner(
        &self,
        scope: &Scope,
        kind: CodeKind,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Uuid>>;
    /// Redeems a reset code: if a code of kind reset with that hash exists in the scope and
    /// `now < expires_at`, deletes it and the user's other codes, sets the user's password
    /// hash to `new_hash` and ends every session of the user, all in one transaction, and
    /// returns the user's id.
    /// Otherwise changes nothing and returns `None`. Two concurrent redemptions of one code
    /// give one `Some`.
    async fn redeem_reset_code(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        now: OffsetDateTime,
        new_hash: &str,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Uuid>>;
    /// Redeems a code of another kind: deletes it if valid and returns the user's id.
    /// For [`CodeKind::Confirm`] it also sets `confirmed = true`, `confirmation = null`.
    async fn redeem_code(
        &self,
        scope: &Scope,
        kind: CodeKind,
        hash: &TokenHash,
        now: OffsetDateTime,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Uuid>>;

    // ---- provider identities ----

    /// Links (or re-links) the user to the provider identity: one link per (user,
    /// provider); `IdentityTaken` when (provider, client_id) belongs to another user. The
    /// `outbox` rows (an `identity.linked` event) are written in the same transaction.
    async fn upsert_identity(&self, identity: &Identity, outbox: &[OutboxMessage]) -> StoreResult<()>;
    /// The user's link to the provider.
    async fn get_identity(
        &self,
        scope: &Scope,
        user_id: Uuid,
        provider: &ProviderName,
    ) -> StoreResult<Option<Identity>>;
    /// The link with that provider and client id.
    async fn find_identity(
        &self,
        scope: &Scope,
        provider: &ProviderName,
        client_id: &str,
    ) -> StoreResult<Option<Identity>>;
    /// The user's links, ordered by provider.
    async fn list_identities(&self, scope: &Scope, user_id: Uuid) -> StoreResult<Vec<Identity>>;
    /// Removes the link, writing the `outbox` rows in the same transaction; `false`, writing
    /// nothing, when there was none.
    async fn delete_identity(
        &self,
        scope: &Scope,
        user_id: Uuid,
        provider: &ProviderName,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool>;

    // ---- flows (see `crate::flow`) ----

    /// Stores a new flow (its handle's hash is fresh: a collision is a broken RNG).
    async fn insert_flow(&self, flow: &FlowRecord) -> StoreResult<()>;
    /// Takes the flow with that hash and kind (and scope, when given) that has not expired
    /// at `now`: reads and removes it in one atomic step, so of concurrent takes exactly
    /// one gets it. A flow of another kind or scope is left as it is.
    async fn take_flow(
        &self,
        scope: Option<&Scope>,
        kind: FlowKind,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<FlowRecord>>;

    // ---- second factors (see `crate::mfa`) ----

    /// The user's TOTP (pending or confirmed) and how many unused recovery codes the user
    /// has. A user without either (or no such user) has the default state.
    async fn mfa_state(&self, scope: &Scope, user_id: Uuid) -> StoreResult<MfaState>;
    /// Stores `secret` (sealed) as the user's pending TOTP, replacing a pending one;
    /// `false`, changing nothing, when the user's TOTP is confirmed or there is no such
    /// user.
    async fn enrol_totp(
        &self,
        scope: &Scope,
        user_id: Uuid,
        secret: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Accepts time step `step` of the user's TOTP only while it is greater than the last
    /// accepted step, recording it as the last in the same statement: of racing calls
    /// with one step, exactly one is accepted. Without `confirm`, only a confirmed TOTP
    /// accepts. With `confirm`, only a pending one, which becomes confirmed; then, in the
    /// same transaction, `confirm.recovery_codes` replace the user's set, every session
    /// of the user but `confirm.keep_session` ends and `confirm.outbox` is written. Returns
    /// whether the step was accepted
    /// (`false`: nothing changed).
    async fn accept_totp_step(
        &self,
        scope: &Scope,
        user_id: Uuid,
        step: i64,
        confirm: Option<&FactorChange>,
    ) -> StoreResult<bool>;
    /// Replaces the user's recovery codes with these hashes in one transaction; `false`,
    /// changing nothing, when the user has no confirmed TOTP.
    async fn replace_recovery_codes(
        &self,
        scope: &Scope,
        user_id: Uuid,
        codes: &[TokenHash],
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Uses one of the user's recovery codes: deletes it (one atomic step: of racing uses
    /// exactly one gets it) and answers how many the user has left; `None` when the user
    /// has no such code.
    async fn use_recovery_code(
        &self,
        scope: &Scope,
        user_id: Uuid,
        hash: &TokenHash,
    ) -> StoreResult<Option<u32>>;
    /// Removes the user's TOTP, recovery codes and passkeys and, when there was any, ends
    /// every session of the user but `keep_session` and writes the `outbox` rows, in one
    /// transaction. Returns whether there was anything to remove.
    async fn remove_mfa(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool>;
    /// Removes the user's TOTP (pending or confirmed), and the recovery codes too when the
    /// user has no passkey left (they stay to back up the passkeys otherwise); when there
    /// was a TOTP, ends every session of the user but `keep_session` and writes the
    /// `outbox` rows, in one transaction. Passkeys are never touched. Returns whether there
    /// was a TOTP.
    async fn remove_totp(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool>;

    // ---- passkeys (see `crate::passkey`) ----

    /// Stores a new passkey, ends every session of its user but `keep_session` and writes
    /// the `outbox` rows, in one transaction; `false`, changing nothing, when its
    /// credential id is registered in the scope already or there is no such user.
    async fn insert_passkey(
        &self,
        passkey: &PasskeyRecord,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool>;
    /// The user's passkeys, oldest first.
    async fn list_passkeys(&self, scope: &Scope, user_id: Uuid) -> StoreResult<Vec<PasskeyRecord>>;
    /// The passkey with that credential id in the scope.
    async fn find_passkey(&self, scope: &Scope, credential_id: &[u8]) -> StoreResult<Option<PasskeyRecord>>;
    /// Records a use of the passkey (credential, counter, backup flags, last use); `false`
    /// when it is gone.
    async fn use_passkey(&self, scope: &Scope, id: Uuid, used: &PasskeyUse) -> StoreResult<bool>;
    /// Renames the user's passkey; `false` when the user has no such passkey.
    async fn rename_passkey(&self, scope: &Scope, user_id: Uuid, id: Uuid, name: &str) -> StoreResult<bool>;
    /// Removes the user's passkey and, when there was one, ends every session of the user
    /// but `keep_session` and writes the `outbox` rows, in one transaction; when it was the
    /// user's last second factor (no other passkey, no confirmed TOTP), the recovery codes
    /// go too. `false`, writing nothing, when the user has no such passkey.
    async fn delete_passkey(
        &self,
        scope: &Scope,
        user_id: Uuid,
        id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool>;

    // ---- login events ----

    /// Stores an event (failed attempts; successes come with [`Store::insert_login`]) and
    /// queues `outbox` (its webhook deliveries) in the same transaction.
    async fn insert_event(&self, event: &LoginEvent, outbox: &[OutboxMessage]) -> StoreResult<()>;
    /// The user's events, newest first, with ids less than `before`.
    async fn list_events(
        &self,
        scope: &Scope,
        user_id: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<LoginEvent>>;
    /// Successful logins and distinct users per bucket in `[from, to)`; buckets with no
    /// login may be left out. `start` is the bucket's start (multiples of the width since
    /// the Unix epoch), ascending.
    async fn login_stats(
        &self,
        scope: &Scope,
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: Bucket,
    ) -> StoreResult<Vec<StatBucket>>;

    // ---- admin web page ----

    /// Stores one entry of the admin audit trail.
    async fn insert_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// Audit entries, newest first (by id), with ids less than `before`; at most `limit`.
    async fn list_audit(&self, before: Option<Uuid>, limit: u32) -> StoreResult<Vec<AuditEntry>>;
    /// The figures of every scope that has a user or an API key (revoked or not), the
    /// internal admin scope included, in any order; live sessions judged at `now`.
    async fn scope_figures(&self, now: OffsetDateTime) -> StoreResult<Vec<ScopeFigures>>;
    /// Login attempts of the scope per bucket and outcome in `[from, to)` (every outcome,
    /// failures too); pairs with no attempt are left out; in any order. Buckets start as
    /// in [`Store::login_stats`].
    async fn outcome_stats(
        &self,
        scope: &Scope,
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: Bucket,
    ) -> StoreResult<Vec<OutcomeCount>>;

    // ---- throttling counters ----

    /// The counter `key` of the scope while it lives (`now < expires_at`), else `None`.
    async fn throttle_get(
        &self,
        scope: &Scope,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ThrottleState>>;
    /// Counts one failure against `key`, atomically (concurrent hits all count): while the
    /// counter lives (`now < expires_at`) its `failures` grows by one and `last_at`
    /// becomes `now`; otherwise (none, or expired) it starts again at one failure with
    /// `first_at = last_at = now` and `expires_at = now + window`. Returns the counter after.
    async fn throttle_hit(
        &self,
        scope: &Scope,
        key: &str,
        now: OffsetDateTime,
        window: Duration,
    ) -> StoreResult<ThrottleState>;
    /// Forgets the counter `key` of the scope (a good login); nothing when there is none.
    async fn throttle_clear(&self, scope: &Scope, key: &str) -> StoreResult<()>;
    /// Changes several counters of the scope at once, atomically (one transaction; hits
    /// alone are one statement on PostgreSQL): first forgets every counter of `update.clear`, then
    /// gives back one count of every counter of `update.undo` (a live counter of more than
    /// one loses one; one of one, or an expired one, is removed), then counts one more against every
    /// counter of `update.hit` exactly as [`Store::throttle_hit`] does. Returns the states
    /// after the hits, in the order of `update.hit`. Concurrent updates of one counter
    /// each count: every hit sees a count no other hit saw. This is how a login reserves
    /// its place in a budget before its password is checked, and settles it after.
    async fn throttle_update(
        &self,
        scope: &Scope,
        update: &ThrottleUpdate<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<ThrottleState>>;

    // ---- the outbox (see [`crate::outbox`]) ----

    /// In one transaction: inserts `e.user` (conflicts as [`Store::insert_user`]), stores
    /// `e.code` (as [`Store::insert_code`]: voids the user's older code of its kind) and
    /// queues `e.messages`. Nothing is written when any part fails.
    async fn enqueue(&self, e: &Enqueue<'_>) -> StoreResult<()>;
    /// [`Store::update_user`] and, when the user exists and the update succeeds, `e.code`
    /// and `e.messages` as [`Store::enqueue`] stores them, in the same transaction (after
    /// the update, so a code stored here survives the voiding an email change does).
    /// `e.user` must be `None`. Nothing is written when any part fails.
    async fn update_user_enqueue(
        &self,
        scope: &Scope,
        id: Uuid,
        patch: &UserPatch,
        at: OffsetDateTime,
        e: &Enqueue<'_>,
    ) -> StoreResult<Option<User>>;
    /// Claims up to `claim.limit` due rows of `claim.kind`, oldest due first: `queued`
    /// rows with `next_attempt_at <= now` and `sending` rows whose lease ended before
    /// `now`. Each becomes `sending` under the claim's lease and owner with one more
    /// attempt, and is returned as changed. Two concurrent claims never return one row.
    async fn outbox_claim(&self, claim: &OutboxClaim) -> StoreResult<Vec<OutboxMessage>>;
    /// Changes the row `id` while `owner` holds it (it is `sending` or `in_doubt` with
    /// that lease owner): to `update.state`; `queued` and the final states drop the lease;
    /// `sent` sets `sent_at`; `error` and `payload` replace theirs when given; with
    /// `user_confirmation`, the row's user (if any, and not confirmed) gets that
    /// confirmation state in the same transaction. `false` when the owner no longer holds
    /// the row (nothing changed).
    async fn outbox_update(&self, id: Uuid, owner: &str, update: &OutboxUpdate) -> StoreResult<bool>;
    /// An operator's retry: an `in_doubt` row, or a [`OutboxKind::Webhook`] row that is
    /// `queued` or `failed` (a webhook delivery may be sent again: receivers deduplicate),
    /// becomes `queued`, due at `now`, without its lease; a webhook row's attempts start
    /// again at 0. `false` when there is no such row in those states.
    async fn outbox_retry(&self, id: Uuid, now: OffsetDateTime) -> StoreResult<bool>;
    /// Rows of `kind` in `lane` (a webhook endpoint's deliveries), in `state` when given,
    /// newest first (by id), with ids less than `before`; at most `limit`.
    async fn outbox_lane(
        &self,
        kind: OutboxKind,
        lane: &str,
        state: Option<OutboxState>,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>>;
    /// [`Store::outbox_stats`] of the rows of `kind`, per lane.
    async fn outbox_lane_stats(&self, kind: OutboxKind) -> StoreResult<Vec<(String, OutboxStats)>>;

    // ---- webhooks ----

    /// Stores a new endpoint.
    async fn insert_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<()>;
    /// The endpoints of `scope` (every scope's when `None`), oldest first.
    async fn list_webhooks(&self, scope: Option<&Scope>) -> StoreResult<Vec<WebhookEndpoint>>;
    /// Replaces the endpoint with `endpoint.id` in `endpoint.scope` (url, events,
    /// description, secrets, `updated_at`); `false` when there is none.
    async fn update_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<bool>;
    /// Deletes the endpoint and its deliveries (outbox rows of kind webhook in its lane)
    /// in one transaction; `false` when there is none.
    async fn delete_webhook(&self, scope: &Scope, id: Uuid) -> StoreResult<bool>;
    /// Rows per state and the oldest undelivered row's age, over every scope.
    async fn outbox_stats(&self) -> StoreResult<OutboxStats>;
    /// Rows of every scope, newest first (by id), with ids less than `before`; at most
    /// `limit`.
    async fn outbox_list(&self, before: Option<Uuid>, limit: u32) -> StoreResult<Vec<OutboxMessage>>;
    /// Housekeeping: deletes up to `limit` rows of `kind` that are `sent` with a `sent_at`
    /// before `before` (their payload was scrubbed already); answers how many. Rows in any
    /// other state (`failed` and `in_doubt` included: an operator may want them) stay.
    async fn outbox_purge_sent(
        &self,
        kind: OutboxKind,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<u64>;

    // ---- maintenance ----

    /// Deletes up to `batch` sessions no longer valid at `now`, up to `batch` expired
    /// codes, up to `batch` expired throttling counters and up to `batch` expired flows;
    /// returns how many rows went.
    async fn sweep_expired(&self, now: OffsetDateTime, batch: u32) -> StoreResult<u64>;
    /// How many sessions of every scope are valid at `now` (before both expiries), for
    /// the `hallpass_active_sessions` metric. One read on the sessions' expiry index.
    async fn count_valid_sessions(&self, now: OffsetDateTime) -> StoreResult<u64>;

    // ---- export and import ----

    /// Users of every scope with their password hashes and provider links, ordered by
    /// (scope, id), strictly after `after`; at most `limit`. Scopes compare as Rust's
    /// `str` does (byte order), whatever the database's collation; each user's links come
    /// in provider order.
    async fn export_users(&self, after: Option<(Scope, Uuid)>, limit: u32) -> StoreResult<Vec<ExportedUser>>;
    /// Inserts users as given (ids, timestamps, hashes and links kept), in one
    /// transaction per call. A user whose id already exists in its scope is left exactly as
    /// it is (so re-running an import changes nothing); a user whose username, email or
    /// provider link is held by another user of the scope is not inserted and is reported
    /// in `conflicts`; the others are inserted.
    ///
    /// The batch is decided as if its users were inserted one at a time, in order (see
    /// [`ImportTaken::plan`]): an earlier user of the batch holds its keys against later
    /// ones, a refused one holds nothing. Each user's links are [`ExportedUser::links`].
    /// A conflict never fails the call; a storage error fails it whole (nothing stored).
    async fn import_users(&self, users: &[ExportedUser]) -> StoreResult<ImportOutcome>;

    // ---- telling other processes (caches)

    /// Tells the other processes on this database of a change their caches must drop,
    /// after the change was committed. The default does nothing: a backend without a
    /// channel of its own (then [`Store::changes`] is `None` too).
    async fn publish_change(&self, change: &Change) -> StoreResult<()> {
        let _ = change;
        Ok(())
    }

    /// Changes made by other processes on this database, as they are heard of (PostgreSQL:
    /// `LISTEN`; SQLite: another connection's commit seen in `PRAGMA data_version`, as
    /// [`Change::All`]; MariaDB: rows of the `hallpass_changes` log, polled). `None`: this
    /// backend cannot tell, so a cache can only bound how stale it gets. A lost connection
    /// to the channel sends [`Change::All`].
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }
}

/// A change that cached copies must drop (see [`Store::publish_change`]). It is also what
/// the change stream (`GET /v1/changes`, [`crate::feed`]) tells a scope's clients, so each
/// names its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A user's record or sessions changed: updated, deactivated, deleted, a password set,
    /// sessions ended, a factor added or removed.
    User {
        /// The user's scope.
        scope: Scope,
        /// The user.
        id: Uuid,
    },
    /// One session changed or ended.
    Session(SessionChange),
    /// An API key was created (`revoked: false`) or revoked.
    Key {
        /// The key's scope.
        scope: Scope,
        /// The key.
        id: Uuid,
        /// Revoked, not created.
        revoked: bool,
    },
    /// Anything may have changed (a missed notification, another process's write).
    All,
}

/// What [`Change::Session`] says: the session by its token's hash (what caches key on) and,
/// where the writer knew them, its id and user (what the change stream names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionChange {
    /// The session's scope.
    pub scope: Scope,
    /// The hash of its token.
    pub hash: TokenHash,
    /// The session's id, when known.
    pub id: Option<Uuid>,
    /// Its user, when known.
    pub user: Option<Uuid>,
    /// Ended (rather than freshened or its data changed).
    pub ended: bool,
}

impl Change {
    /// A user's change.
    pub fn user(scope: &Scope, id: Uuid) -> Change {
        Change::User { scope: scope.clone(), id }
    }

    /// The text form sent between processes: `u:<scope>:<uuid>`,
    /// `s:<scope>:<hex>:<id or ->:<user or ->:<e or c>`, `k:<scope>:<uuid>:<r or c>`, `*`.
    /// Scope names hold no `:` ([`Scope::parse`]).
    pub fn to_wire(&self) -> String {
        let opt = |id: &Option<Uuid>| id.map_or_else(|| "-".to_owned(), |id| id.to_string());
        match self {
            Change::User { scope, id } => format!("u:{scope}:{id}"),
            Change::Session(s) => {
                let hex = s.hash.to_hex();
                let how = if s.ended { 'e' } else { 'c' };
                format!("s:{}:{hex}:{}:{}:{how}", s.scope, opt(&s.id), opt(&s.user))
            }
            Change::Key { scope, id, revoked } => {
                format!("k:{scope}:{id}:{}", if *revoked { 'r' } else { 'c' })
            }
            Change::All => "*".to_owned(),
        }
    }

    /// Reads [`Change::to_wire`]'s form; anything else (any text at all: it comes from
    /// the database, where anyone with access may `NOTIFY`, or from an older version of
    /// hallpass) is [`Change::All`] (safe: drop all). Never panics: the hex is read byte by
    /// byte, never sliced.
    pub fn from_wire(s: &str) -> Change {
        Self::parse_wire(s).unwrap_or(Change::All)
    }

    fn parse_wire(s: &str) -> Option<Change> {
        let mut parts = s.split(':');
        let kind = parts.next()?;
        let scope = Scope::from_stored(parts.next()?).ok()?;
        let uuid = |s: &str| Uuid::parse_str(s).ok();
        let opt = |s: &str| if s == "-" { Some(None) } else { uuid(s).map(Some) };
        let change = match kind {
            "u" => Change::User { scope, id: uuid(parts.next()?)? },
            "s" => {
                let hash = TokenHash::from_hex(parts.next()?)?;
                let id = opt(parts.next()?)?;
                let user = opt(parts.next()?)?;
                let ended = match parts.next()? {
                    "e" => true,
                    "c" => false,
                    _ => return None,
                };
                Change::Session(SessionChange { scope, hash, id, user, ended })
            }
            "k" => {
                let id = uuid(parts.next()?)?;
                let revoked = match parts.next()? {
                    "r" => true,
                    "c" => false,
                    _ => return None,
                };
                Change::Key { scope, id, revoked }
            }
            _ => return None,
        };
        parts.next().is_none().then_some(change)
    }
}

/// A one-time code asked for by a login that may or may not name a user (see
/// [`Store::request_code`]).
#[derive(Debug, Clone)]
pub struct CodeRequest {
    /// Who the code is for, if anyone.
    pub login: UserRef,
    /// Reset or confirm.
    pub kind: CodeKind,
    /// SHA-256 of the code.
    pub code_hash: TokenHash,
    /// Now.
    pub created_at: OffsetDateTime,
    /// When the code stops working.
    pub expires_at: OffsetDateTime,
    /// The counter this request counts against (derived from the login, never from whether
    /// it names a user).
    pub throttle_key: String,
    /// The counter's window when this request starts it.
    pub window: Duration,
    /// Requests the counter allows in its window; beyond, no code is stored. 0: no limit.
    pub limit: u32,
    /// A delivery of the code (a mail) queued in the same transaction when, and only when,
    /// the code is stored for the user the row names (`user_id`): a request that names
    /// nobody, or somebody else by then, queues nothing.
    pub outbox: Option<OutboxMessage>,
}

/// What [`Store::request_code`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeRequestOutcome {
    /// The user the login names, if any.
    pub user_id: Option<Uuid>,
    /// Whether a code was stored (a user was found and the counter is within its limit).
    pub stored: bool,
    /// The counter after this request.
    pub requests: ThrottleState,
}

impl CodeRequest {
    /// Whether a counter at `requests` allows a code to be stored.
    pub fn within_limit(&self, requests: &ThrottleState) -> bool {
        self.limit == 0 || requests.failures <= self.limit
    }

    /// The code record to store for `user_id`.
    pub fn record(&self, scope: &Scope, user_id: Uuid) -> CodeRecord {
        CodeRecord {
            code_hash: self.code_hash,
            scope: scope.clone(),
            user_id,
            kind: self.kind,
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

/// Several counter changes that [`Store::throttle_update`] makes at once. Keys do not
/// repeat within or across the lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThrottleUpdate<'a> {
    /// Counters to count one more against, each with the window it starts with.
    pub hit: &'a [(&'a str, Duration)],
    /// Counters to give one count back to (a reservation not used).
    pub undo: &'a [&'a str],
    /// Counters to forget (a good login).
    pub clear: &'a [&'a str],
}

/// A throttling counter: consecutive failures counted against one key (such as
/// `acct:<login>` or `ip:<address>`) of one scope. The service derives from it whether
/// and until when the key is blocked; the store only counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleState {
    /// Failures counted since `first_at`.
    pub failures: u32,
    /// The first failure of this counter.
    pub first_at: OffsetDateTime,
    /// The latest failure.
    pub last_at: OffsetDateTime,
    /// When the counter is forgotten (`first_at` + the window of its first hit).
    pub expires_at: OffsetDateTime,
}

/// One user as exported and imported: the record (with its password hash), its links and
/// its second factors.
#[derive(Debug, Clone)]
pub struct ExportedUser {
    /// The user and password hash.
    pub record: UserRecord,
    /// The user's provider links.
    pub identities: Vec<Identity>,
    /// The user's second factors (empty for most users). An import stores them only for the
    /// users it inserts, in the same transaction, under the record's scope and id.
    pub mfa: ExportedMfa,
}

/// A user's second factors as storage keeps them, for export and import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportedMfa {
    /// The authenticator app, its secret as stored: sealed by the server secret key of the
    /// database it is in (`hallpass export` opens it, `hallpass import` seals it again).
    pub totp: Option<crate::mfa::TotpRecord>,
    /// The unused recovery codes: their hashes (bound to the user's id, which an export
    /// keeps) and when they were made.
    pub recovery_codes: Vec<RecoveryCodeHash>,
    /// The passkeys (public keys and counters; nothing secret).
    pub passkeys: Vec<PasskeyRecord>,
}

/// One stored recovery code: its hash and when it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryCodeHash {
    /// The hash ([`crate::mfa::recovery_code_hash`]).
    pub hash: TokenHash,
    /// When the set it belongs to was made.
    pub created_at: OffsetDateTime,
}

impl ExportedMfa {
    /// Whether the user has none.
    pub fn is_empty(&self) -> bool {
        self.totp.is_none() && self.recovery_codes.is_empty() && self.passkeys.is_empty()
    }
}

/// What an import batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Users inserted.
    pub inserted: u64,
    /// Users skipped because their id already existed in the scope.
    pub existing: u64,
    /// Users not inserted because a unique key belongs to another user: (id, why).
    pub conflicts: Vec<(Uuid, ImportConflict)>,
}

/// Why an imported user was not inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportConflict {
    /// Another user of the scope has the username.
    Username,
    /// Another user of the scope has the email.
    Email,
    /// Another user of the scope holds a (provider, client id) of the user's links.
    Identity,
}

impl ExportedUser {
    /// The links an import stores for this user: its identities, under the record's scope
    /// and id (their own `scope` and `user_id` are not consulted), one per provider (the
    /// last given for a provider wins, as with repeated [`Store::upsert_identity`]), in
    /// provider order.
    pub fn links(&self) -> Vec<Identity> {
        let user = &self.record.user;
        let mut links: Vec<Identity> = Vec::with_capacity(self.identities.len());
        for identity in &self.identities {
            let link = Identity { user_id: user.id, scope: user.scope.clone(), ..identity.clone() };
            match links.iter_mut().find(|l| l.provider == link.provider) {
                Some(earlier) => *earlier = link,
                None => links.push(link),
            }
        }
        links.sort_by(|a, b| a.provider.cmp(&b.provider));
        links
    }
}

/// What storage already holds that the users of an import batch could collide with: the
/// part of each unique key a backend found taken, looked up for the batch's keys only
/// (scopes as `str`, username and email keys as [`Username::key`](crate::Username::key) /
/// [`Email::key`](crate::Email::key), client ids as given).
///
/// A backend fills it (one query per kind, or one probe per key), then calls
/// [`ImportTaken::plan`], so every backend decides a batch the same way.
#[derive(Debug, Clone, Default)]
pub struct ImportTaken {
    /// (scope, id) of the users that exist.
    pub ids: HashSet<(String, Uuid)>,
    /// (scope, username key) held.
    pub usernames: HashSet<(String, String)>,
    /// (scope, email key) held.
    pub emails: HashSet<(String, String)>,
    /// (scope, provider, client id) held.
    pub identities: HashSet<(String, String, String)>,
}

/// What becomes of one user of an import batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportDecision {
    /// Insert it (with its links).
    Insert,
    /// Its id exists in its scope: leave it.
    Existing,
    /// Refused: a key is held by another user.
    Conflict(ImportConflict),
}

/// An import batch decided: one [`ImportDecision`] per user, in batch order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportPlan {
    /// The decision of each user of the batch, by position.
    pub decisions: Vec<ImportDecision>,
}

impl ImportTaken {
    /// Decides the batch as if its users were inserted one at a time, in order, into a
    /// store holding `self`: for each user, an id that exists in its scope makes it
    /// `Existing`; else a taken username key, then a taken email key, then a taken
    /// (provider, client id) of one of its [`ExportedUser::links`] make it a `Conflict`
    /// (checked in that order); else it is inserted, and from then on holds its keys
    /// against the users after it.
    pub fn plan(mut self, users: &[ExportedUser]) -> ImportPlan {
        let mut decisions = Vec::with_capacity(users.len());
        for exported in users {
            let user = &exported.record.user;
            let scope = user.scope.as_str();
            let id_key = (scope.to_owned(), user.id);
            if self.ids.contains(&id_key) {
                decisions.push(ImportDecision::Existing);
                continue;
            }
            let username = user.username.as_ref().map(|u| (scope.to_owned(), u.key().to_owned()));
            let email = user.email.as_ref().map(|e| (scope.to_owned(), e.key().to_owned()));
            let links: Vec<(String, String, String)> = exported
                .links()
                .into_iter()
                .map(|l| (scope.to_owned(), l.provider.as_str().to_owned(), l.client_id.as_str().to_owned()))
                .collect();
            let conflict = if username.as_ref().is_some_and(|k| self.usernames.contains(k)) {
                Some(ImportConflict::Username)
            } else if email.as_ref().is_some_and(|k| self.emails.contains(k)) {
                Some(ImportConflict::Email)
            } else if links.iter().any(|k| self.identities.contains(k)) {
                Some(ImportConflict::Identity)
            } else {
                None
            };
            if let Some(conflict) = conflict {
                decisions.push(ImportDecision::Conflict(conflict));
                continue;
            }
            self.ids.insert(id_key);
            self.usernames.extend(username);
            self.emails.extend(email);
            self.identities.extend(links);
            decisions.push(ImportDecision::Insert);
        }
        ImportPlan { decisions }
    }
}

impl ImportPlan {
    /// The positions of the users to insert, in batch order.
    pub fn to_insert(&self) -> Vec<usize> {
        (0..self.decisions.len()).filter(|&i| self.decisions[i] == ImportDecision::Insert).collect()
    }

    /// The outcome to report for `users` (the batch this plan decided), conflicts in
    /// batch order.
    pub fn outcome(&self, users: &[ExportedUser]) -> ImportOutcome {
        let mut outcome = ImportOutcome::default();
        for (decision, exported) in self.decisions.iter().zip(users) {
            match decision {
                ImportDecision::Insert => outcome.inserted += 1,
                ImportDecision::Existing => outcome.existing += 1,
                ImportDecision::Conflict(why) => outcome.conflicts.push((exported.record.user.id, *why)),
            }
        }
        outcome
    }
}
