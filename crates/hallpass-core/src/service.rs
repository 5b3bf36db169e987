//! The service: every operation of the API, on top of a [`Store`], a [`Clock`] and the
//! [`PasswordHasher`]. Inputs arrive already typed; this module enforces the semantics
//! (expiry, single-use codes, equal cost of unknown user and wrong password, inactive
//! users get no session) and leaves atomicity to the one store call each write makes.

use crate::cache::{CacheMode, CacheSettings, Caches};
use crate::clock::{Clock, SystemClock};
use crate::error::{CredentialFailure, Error, Result};
use crate::model::*;
use crate::password::{PasswordHasher, strength};
use crate::secret::{ApiKeySecret, Code, DeviceToken, SessionToken};
use crate::settings::{ScopeSettings, Settings};
use crate::store::{Change, CodeRequest, NewLogin, Store, ThrottleUpdate};
use crate::types::*;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

pub use crate::patch::{merge_patch, merge_session_patch};

/// Largest page a listing returns.
pub const MAX_PAGE: u32 = 1000;
/// Page size when none is asked for.
pub const DEFAULT_PAGE: u32 = 50;
/// Most buckets one statistics call may span.
pub const MAX_BUCKETS: i64 = 5000;

/// A new user.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Username (this or email is required).
    pub username: Option<Username>,
    /// Email (this or username is required).
    pub email: Option<Email>,
    /// Password; a user without one logs in only through a provider or a code.
    pub password: Option<Password>,
    /// Group; `"default"` when absent.
    pub group: Option<Group>,
    /// The application's data; `{}` when absent.
    pub extra: Option<JsonObject>,
    /// Active; `true` when absent.
    pub active: Option<bool>,
}

/// The throttling counters one password login attempt counts against (see
/// [`crate::ThrottleSettings`]).
#[derive(Debug)]
struct AttemptKeys {
    /// Where this attempt's failure counts: the account's counter for unknown devices,
    /// `acct:<user id>` (or `acct:u:#<sha256 of the username key>` / `acct:e:#...` for an
    /// unknown user: what was typed may be a password, never kept in clear), or for a
    /// device known to the user its own counter, `dev:#<sha256 of account and device>`.
    account: String,
    /// `ip:<canonical client address>` when the backend reported one, unless the device
    /// is known (a known device is held only by its own counter).
    ip: Option<String>,
    /// The device token presented has logged in as this user before.
    known_device: bool,
}

/// What a login whose proof was accepted does with the counters its attempt reserved.
#[derive(Debug, Default)]
struct Settle {
    /// The account's or device's counter, forgotten (a good login).
    clear: Option<String>,
    /// The client IP's, given back its place (a good login is no failure).
    undo: Option<String>,
    /// The device was known already: nothing to remember.
    known_device: bool,
}

/// `prefix` + `value`, or, when that would exceed 200 bytes (a `client.ip` is whatever
/// the backend sent), `prefix` + `#` + the SHA-256 of `value` in hex, so every backend's
/// key column holds it.
fn bounded_key(prefix: &str, value: &str) -> String {
    if prefix.len() + value.len() <= 200 {
        return format!("{prefix}{value}");
    }
    hashed_key(prefix, value)
}

/// The counter of an account's failures from unknown devices: by user id, or by the
/// normalised login (hashed) when no user has it, so unknown users cost and behave alike.
fn account_key(login: &UserRef, user_id: Option<Uuid>) -> String {
    match (user_id, login) {
        (Some(id), _) | (None, &UserRef::Id(id)) => format!("acct:{id}"),
        (None, UserRef::Username(key)) => hashed_key("acct:u:", key),
        (None, UserRef::Email(key)) => hashed_key("acct:e:", key),
    }
}

/// A key of one device for one account (`prefix` + the SHA-256 of both): `known:` marks a
/// device that has logged in as the account, `dev:` counts that device's failures.
fn device_key(prefix: &str, account: &str, device: &DeviceToken) -> String {
    hashed_key(prefix, &format!("{account}|{}", device.expose()))
}

/// The counter of a client address: one per IPv4 address (an IPv4-mapped IPv6 address
/// is its IPv4 address), one per IPv6 network of `v6_prefix` bits (an attacker usually
/// holds a whole /64). What does not parse as an address counts as the text it is.
/// `None` for an empty address.
fn ip_key(ip: &str, v6_prefix: u8) -> Option<String> {
    let ip = ip.trim();
    if ip.is_empty() {
        return None;
    }
    let bare = ip.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).unwrap_or(ip);
    Some(match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => format!("ip:{v4}"),
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let bits = v6_prefix.min(128);
                let mask = u128::MAX.checked_shl(u32::from(128 - bits)).unwrap_or(0);
                format!("ip:{}/{bits}", std::net::Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
        Err(_) => bounded_key("ip:", ip),
    })
}

/// `prefix` and the SHA-256 of `value`: for what a person typed as a login that matched no
/// user, which may be a mistyped password and must not sit in the database in clear.
fn hashed_key(prefix: &str, value: &str) -> String {
    let digest = crate::secret::TokenHash::of(value);
    let hex: String = digest.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}#{hex}")
}

/// The counter code requests for `login` count against: by the login as typed (normalised
/// and hashed), so a login that names nobody is counted exactly like one that names a user.
fn code_request_key(kind: CodeKind, login: &UserRef) -> String {
    let prefix = format!("code:{}:", kind.as_str());
    match login {
        UserRef::Id(id) => hashed_key(&prefix, &format!("i:{id}")),
        UserRef::Username(key) => hashed_key(&prefix, &format!("u:{key}")),
        UserRef::Email(key) => hashed_key(&prefix, &format!("e:{key}")),
    }
}

/// The least a freshen moves a session's expiry by before it writes: a hundredth of the
/// idle timeout, at most a minute (24 h idle: a minute; 90 s idle: 0.9 s).
pub fn freshen_interval(idle: Duration) -> Duration {
    (idle / 100_i32).min(Duration::minutes(1))
}

/// How a login proves who it is.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A username or email with a password.
    Password {
        /// Whom (never `UserRef::Id`; use username or email).
        login: UserRef,
        /// The password offered.
        password: Password,
    },
    /// A provider identity the calling backend vouches for.
    Provider {
        /// The provider.
        provider: ProviderName,
        /// The user's id at the provider.
        client_id: ClientId,
    },
}

/// A login request.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// The proof.
    pub credentials: Credentials,
    /// Initial session data.
    pub data: JsonObject,
    /// The end user's client, as the backend reports it.
    pub client: ClientInfo,
    /// The device token an earlier login of this browser answered with, if the
    /// application kept one (see [`crate::ThrottleSettings`]).
    pub device: Option<DeviceToken>,
}

/// What a successful login gives: the token (once), the session and the login object.
#[derive(Debug, Clone)]
pub struct LoginResult {
    /// The bearer token; hallpass keeps only its hash.
    pub token: SessionToken,
    /// The new session.
    pub session: Session,
    /// The login object.
    pub login: LoginInfo,
    /// The device token for the application to keep for this browser (a long-lived
    /// cookie) and send back as the `device` of later logins: the one presented, or a
    /// new one.
    pub device: DeviceToken,
}

/// A freshly issued reset code.
#[derive(Debug, Clone)]
pub struct IssuedCode {
    /// The code, shown once.
    pub code: Code,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// For whom.
    pub user_id: Uuid,
}

/// When a provider's access token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// At this instant.
    At(OffsetDateTime),
    /// This many seconds from now.
    In(i64),
}

/// A change to a provider link's token.
#[derive(Debug, Clone, Default)]
pub struct TokenUpdate {
    /// New access token; `Some(None)` clears it.
    pub access_token: Option<Option<String>>,
    /// New expiry; `Some(None)` clears it.
    pub expiry: Option<Option<Expiry>>,
}

fn parse_cursor(cursor: Option<&str>) -> Result<Option<Uuid>> {
    match cursor {
        None | Some("") => Ok(None),
        Some(c) => Uuid::parse_str(c)
            .map(Some)
            .map_err(|_| Error::invalid("cursor", "is not a cursor this server issued")),
    }
}

fn page_limit(limit: Option<u32>) -> Result<u32> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(Error::invalid("limit", format!("must be between 1 and {MAX_PAGE}"))),
    }
}

/// The account and session service. Cheap to share behind an `Arc`.
pub struct Hallpass {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hasher: Arc<PasswordHasher>,
    settings: Settings,
    /// The request budget of each API key seen by this process (see [`Hallpass::admit_key`]).
    key_buckets: std::sync::Mutex<std::collections::HashMap<Uuid, KeyBucket>>,
    /// Sessions and API keys cached in this process (see [`crate::cache`]); `None`: off.
    caches: Option<Arc<Caches>>,
}

/// A token bucket: `milli` thousandths of a request left at `at`.
#[derive(Debug, Clone, Copy)]
struct KeyBucket {
    milli: u64,
    at: OffsetDateTime,
}

impl std::fmt::Debug for Hallpass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hallpass").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Hallpass {
    /// A service on `store` with the system clock.
    pub fn new(store: Arc<dyn Store>, settings: Settings) -> Result<Self> {
        Self::with_clock(store, settings, Arc::new(SystemClock))
    }

    /// A service with a clock of the caller's choosing (a [`crate::FakeClock`] in tests).
    pub fn with_clock(store: Arc<dyn Store>, settings: Settings, clock: Arc<dyn Clock>) -> Result<Self> {
        let threads = if settings.hash_threads == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
        } else {
            settings.hash_threads
        };
        let hasher = Arc::new(
            PasswordHasher::new(settings.hash_params, threads)?
                .with_queue_limit(settings.hash_queue_limit)
                .with_ceiling(settings.hash_ceiling()),
        );
        let caches = Self::start_caches(&store, &settings.cache);
        Ok(Self { store, clock, hasher, settings, key_buckets: Default::default(), caches })
    }

    /// The caches the settings and the store allow, with a task applying other processes'
    /// changes to them when the store has a channel (and a Tokio runtime is running).
    fn start_caches(store: &Arc<dyn Store>, settings: &CacheSettings) -> Option<Arc<Caches>> {
        if settings.mode == CacheMode::Off {
            return None;
        }
        let runtime = tokio::runtime::Handle::try_current().ok();
        let changes = runtime.as_ref().and_then(|_| store.changes());
        let (Some(runtime), Some(mut changes)) = (runtime, changes) else {
            // No channel: caching could only bound staleness by the TTL; only when asked.
            return (settings.mode == CacheMode::On).then(|| Arc::new(Caches::new(settings)));
        };
        let caches = Arc::new(Caches::new(settings));
        let weak = Arc::downgrade(&caches);
        runtime.spawn(async move {
            loop {
                let change = match changes.recv().await {
                    Ok(change) => change,
                    // Missed some: drop everything.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Change::All,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                match weak.upgrade() {
                    Some(caches) => caches.apply(&change),
                    None => break,
                }
            }
        });
        Some(caches)
    }

    /// Whether this service caches sessions and keys.
    pub fn caching(&self) -> bool {
        self.caches.is_some()
    }

    /// Sessions in this process's cache now (approximate; 0 when not caching).
    pub fn cached_sessions(&self) -> u64 {
        self.caches.as_ref().map_or(0, |c| c.len())
    }

    /// After a committed write: drops what it touched from this process's caches and tells
    /// the other processes. A failed notification is logged, not returned: the write is
    /// done, and other processes' copies expire within the cache TTL anyway.
    async fn changed(&self, change: Change) {
        if let Some(caches) = &self.caches {
            caches.apply(&change);
        }
        self.publish(change).await;
    }

    /// Tells the other processes of a committed change (the second half of
    /// [`Hallpass::changed`]).
    async fn publish(&self, change: Change) {
        if let Err(e) = self.store.publish_change(&change).await {
            tracing::warn!(error = %e, "could not tell other processes of a change; their caches expire within the TTL");
        }
    }

    /// The storage backend.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The password hasher (for its queue depth).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The settings of one scope.
    pub fn scope_settings(&self, scope: &Scope) -> &ScopeSettings {
        self.settings.scope(scope)
    }

    /// Now, by the service's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Whether the user is validated: active, and confirmed where the scope requires it.
    pub fn validated(&self, user: &User) -> bool {
        user.active && (user.confirmed || !self.scope_settings(&user.scope).require_confirmation)
    }

    /// The login object of a user.
    pub fn login_info(&self, user: &User, oauth: Option<OAuthInfo>) -> LoginInfo {
        LoginInfo {
            user_id: user.id,
            username: user.username.as_ref().map(|u| u.as_str().to_owned()),
            email: user.email.as_ref().map(|e| e.as_str().to_owned()),
            group: user.group.as_str().to_owned(),
            extra: user.extra.clone(),
            scope: user.scope.clone(),
            active: user.active,
            confirmation: user.confirmation,
            validated: self.validated(user),
            oauth,
        }
    }

    /// Whether storage answers.
    pub async fn ready(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    // ------------------------------------------------------------------ API keys

    /// Creates an API key for `scope`; the secret is returned once and stored hashed.
    pub async fn create_api_key(&self, scope: Scope, name: Option<String>) -> Result<(ApiKey, ApiKeySecret)> {
        if let Some(n) = &name
            && (n.chars().count() > 200 || n.chars().any(char::is_control))
        {
            return Err(Error::invalid("name", "must be at most 200 characters without control characters"));
        }
        let secret = ApiKeySecret::generate();
        let key = ApiKey { id: Uuid::now_v7(), scope, name, created_at: self.now(), revoked_at: None };
        self.store.insert_api_key(&key, &secret.hash()).await?;
        Ok((key, secret))
    }

    /// Spends one request of the key's budget (a token bucket of
    /// [`crate::ThrottleSettings::key_burst`] requests refilled at `key_rate` per second,
    /// by the service's clock); [`Error::RateLimited`] when it is empty. The buckets live
    /// in this process: with several processes, each grants the budget on its own.
    pub fn admit_key(&self, key: &ApiKey) -> Result<()> {
        let policy = &self.scope_settings(&key.scope).throttle;
        if !policy.enabled || policy.key_rate == 0 {
            return Ok(());
        }
        let (rate, full) = (u64::from(policy.key_rate), u64::from(policy.key_burst.max(1)) * 1000);
        let now = self.now();
        let mut buckets = self.key_buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(key.id).or_insert(KeyBucket { milli: full, at: now });
        let elapsed_ms = u64::try_from((now - bucket.at).whole_milliseconds()).unwrap_or(0);
        // A token per second is a thousandth per millisecond: `rate` thousandths per ms.
        bucket.milli = bucket.milli.saturating_add(elapsed_ms.saturating_mul(rate)).min(full);
        bucket.at = bucket.at.max(now);
        if bucket.milli >= 1000 {
            bucket.milli -= 1000;
            return Ok(());
        }
        let wait_ms = (1000 - bucket.milli).div_ceil(rate);
        Err(Error::RateLimited { retry_after_secs: wait_ms.div_ceil(1000).max(1) })
    }

    /// The unrevoked key a client presented, if any.
    pub async fn authenticate_key(&self, presented: &str) -> Result<Option<ApiKey>> {
        if !presented.starts_with(ApiKeySecret::PREFIX) || presented.len() > 128 {
            return Ok(None);
        }
        let hash = ApiKeySecret::from_presented(presented).hash();
        let key = match &self.caches {
            Some(caches) => match caches.key(&hash) {
                Some(hit) => Some(hit),
                None => {
                    let ticket = caches.ticket();
                    let found = self.store.find_api_key(&hash).await?;
                    if let Some(key) = found.as_ref().filter(|k| k.revoked_at.is_none()) {
                        caches.keep_key(hash, key.clone(), ticket);
                    }
                    found
                }
            },
            None => self.store.find_api_key(&hash).await?,
        };
        Ok(key.filter(|k| k.revoked_at.is_none()))
    }

    /// Every key.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        Ok(self.store.list_api_keys().await?)
    }

    /// Revokes a key.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<()> {
        if self.store.revoke_api_key(id, self.now()).await? {
            self.changed(Change::Keys).await;
            Ok(())
        } else {
            Err(Error::KeyNotFound)
        }
    }

    // ------------------------------------------------------------------ users

    async fn resolve(&self, scope: &Scope, r: &UserRef) -> Result<UserRecord> {
        self.store.find_user(scope, r).await?.ok_or(Error::UserNotFound)
    }

    /// Registers a user.
    pub async fn register(&self, scope: &Scope, new: NewUser) -> Result<User> {
        if new.username.is_none() && new.email.is_none() {
            return Err(Error::invalid("username", "a username or an email is required"));
        }
        if let Some(extra) = &new.extra {
            check_json_object("extra", extra)?;
            self.settings.limits.check_user_extra(extra)?;
        }
        let password_hash = match new.password {
            Some(p) => {
                self.check_password_strength(scope, &p, new.username.as_ref(), new.email.as_ref()).await?;
                Some(self.hasher.hash(p).await?)
            }
            None => None,
        };
        let now = self.now();
        let user = User {
            id: Uuid::now_v7(),
            scope: scope.clone(),
            username: new.username,
            email: new.email,
            group: new.group.unwrap_or_else(Group::default_group),
            extra: new.extra.unwrap_or_default(),
            active: new.active.unwrap_or(true),
            confirmation: None,
            confirmed: false,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        self.store.insert_user(&UserRecord { user: user.clone(), password_hash }).await?;
        Ok(user)
    }

    /// A user by id, username or email.
    pub async fn get_user(&self, scope: &Scope, r: &UserRef) -> Result<User> {
        Ok(self.resolve(scope, r).await?.user)
    }

    /// Users of the scope, a page at a time.
    pub async fn list_users(
        &self,
        scope: &Scope,
        filter: &UserFilter,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<User>> {
        let limit = page_limit(limit)?;
        let after = parse_cursor(cursor)?;
        if filter.query.as_ref().is_some_and(|q| q.chars().count() > 320 || q.contains('\0')) {
            return Err(Error::invalid("query", "must be at most 320 characters without NUL"));
        }
        if filter.group.as_ref().is_some_and(|g| g.chars().count() > 64 || g.contains('\0')) {
            return Err(Error::invalid("group", "must be at most 64 characters without NUL"));
        }
        let mut items = self.store.list_users(scope, filter, after, limit + 1).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|u| u.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Changes a user. Deactivation ends every session of the user.
    pub async fn update_user(&self, scope: &Scope, r: &UserRef, patch: UserPatch) -> Result<User> {
        if let Some(extra) = &patch.extra {
            check_json_object("extra", extra)?;
            self.settings.limits.check_user_extra(extra)?;
        }
        let current = self.resolve(scope, r).await?.user;
        let username_left = match &patch.username {
            Some(u) => u.is_some(),
            None => current.username.is_some(),
        };
        let email_left = match &patch.email {
            Some(e) => e.is_some(),
            None => current.email.is_some(),
        };
        if !username_left && !email_left {
            return Err(Error::invalid("username", "a user must keep a username or an email"));
        }
        let updated = self.store.update_user(scope, current.id, &patch, self.now()).await?;
        self.changed(Change::User(current.id)).await;
        updated.ok_or(Error::UserNotFound)
    }

    /// Deletes a user with their sessions, codes and provider links.
    pub async fn delete_user(&self, scope: &Scope, r: &UserRef) -> Result<()> {
        let user = self.resolve(scope, r).await?.user;
        let deleted = self.store.delete_user(scope, user.id).await?;
        self.changed(Change::User(user.id)).await;
        if deleted { Ok(()) } else { Err(Error::UserNotFound) }
    }

    /// Refuses a new password that is too easy to guess for the scope's
    /// `min_password_score` ([`Error::WeakPassword`] with advice a person can act on),
    /// counting the user's own username and email as known to the attacker (see
    /// [`crate::password::strength`]). [`Password::new`] has already checked the length.
    ///
    /// Every operation that sets a new password calls this before hashing; a login never
    /// does. The estimate is CPU-bound (up to ~100 ms for adversarial input), so it runs on
    /// the bounded hashing pool, never on the async workers.
    pub async fn check_password_strength(
        &self,
        scope: &Scope,
        password: &Password,
        username: Option<&Username>,
        email: Option<&Email>,
    ) -> Result<()> {
        let min_score = self.scope_settings(scope).min_password_score;
        if min_score == 0 {
            return Ok(());
        }
        let words = strength::user_words(username.map(Username::as_str), email.map(Email::as_str));
        let password = password.clone();
        self.hasher
            .run(move || strength::check(&password, min_score, &words))
            .await?
            .map_err(Error::WeakPassword)
    }

    /// Sets a user's password and ends every session of the user.
    pub async fn set_password(&self, scope: &Scope, r: &UserRef, password: Password) -> Result<()> {
        let user = self.resolve(scope, r).await?.user;
        self.check_password_strength(scope, &password, user.username.as_ref(), user.email.as_ref()).await?;
        let hash = self.hasher.hash(password).await?;
        let set = self.store.set_password_hash(scope, user.id, &hash, self.now()).await?;
        self.changed(Change::User(user.id)).await;
        if set {
            // A new password from the application also ends the account's throttle.
            self.store.throttle_clear(scope, &format!("acct:{}", user.id)).await?;
            Ok(())
        } else {
            Err(Error::UserNotFound)
        }
    }

    // ------------------------------------------------------------------ login

    async fn record_failure(
        &self,
        scope: &Scope,
        user_id: Option<Uuid>,
        method: &LoginMethod,
        outcome: Outcome,
        client: &ClientInfo,
    ) -> Result<()> {
        let event = LoginEvent {
            id: Uuid::now_v7(),
            scope: scope.clone(),
            user_id,
            at: self.now(),
            method: method.to_text(),
            outcome,
            session_id: None,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        };
        Ok(self.store.insert_event(&event).await?)
    }

    /// The throttling counters a password login attempt counts against: for a device
    /// token that has logged in as this account before, the device's own counter alone;
    /// else the account's counter for unknown devices and, when the backend reported one,
    /// the client IP's. Reads whether the device is known (one read, made whenever a
    /// device is presented, for known and unknown logins alike).
    async fn attempt_keys(
        &self,
        scope: &Scope,
        account: String,
        client: &ClientInfo,
        device: Option<&DeviceToken>,
    ) -> Result<AttemptKeys> {
        let policy = &self.scope_settings(scope).throttle;
        if policy.enabled
            && let Some(device) = device
        {
            let marker = device_key("known:", &account, device);
            if self.store.throttle_get(scope, &marker, self.now()).await?.is_some() {
                return Ok(AttemptKeys {
                    account: device_key("dev:", &account, device),
                    ip: None,
                    known_device: true,
                });
            }
        }
        let ip = client.ip.as_deref().and_then(|ip| ip_key(ip, policy.ipv6_prefix));
        Ok(AttemptKeys { account, ip, known_device: false })
    }

    /// Takes this attempt's place in the budget of each of its counters before anything
    /// is checked (one atomic store call), so that parallel attempts can never exceed a
    /// budget; an attempt beyond one gives every place back and answers
    /// [`Error::RateLimited`]. A kept place is the attempt's failure unless the login
    /// succeeds and [`Settle`]s it.
    async fn reserve(&self, scope: &Scope, keys: &AttemptKeys) -> Result<()> {
        let policy = &self.scope_settings(scope).throttle;
        if !policy.enabled {
            return Ok(());
        }
        let mut hit = vec![(keys.account.as_str(), policy.account_window)];
        if let Some(ip) = &keys.ip {
            hit.push((ip.as_str(), policy.ip_window));
        }
        let now = self.now();
        let states = self
            .store
            .throttle_update(scope, &ThrottleUpdate { hit: &hit, ..Default::default() }, now)
            .await?;
        let mut until: Option<OffsetDateTime> = None;
        if let Some(Err(at)) = states.first().map(|state| policy.account_admits(state, now)) {
            until = until.max(Some(at));
        }
        if keys.ip.is_some()
            && let Some(Err(at)) = states.get(1).map(|state| policy.ip_admits(state))
        {
            until = until.max(Some(at));
        }
        let Some(until) = until else { return Ok(()) };
        let undo: Vec<&str> = hit.iter().map(|(key, _)| *key).collect();
        self.store.throttle_update(scope, &ThrottleUpdate { undo: &undo, ..Default::default() }, now).await?;
        let wait = (until - now).whole_milliseconds().max(0);
        let retry_after_secs = u64::try_from((wait + 999) / 1000).unwrap_or(u64::MAX).max(1);
        Err(Error::RateLimited { retry_after_secs })
    }

    /// Logs a user in. Wrong password and unknown user cost the same and both answer
    /// [`Error::InvalidCredentials`]; an inactive user gets [`Error::UserInactive`] and no
    /// session. Every attempt leaves a login event.
    ///
    /// Password logins are throttled (see [`crate::ThrottleSettings`]): each attempt first
    /// takes its place in the budget of its counters (the device's own for a device known
    /// to the user, else the account's for unknown devices and the client IP's); one
    /// beyond a budget answers [`Error::RateLimited`] without verifying anything and is
    /// recorded with outcome `throttled`. A failure keeps its places; a good password
    /// clears the account's (or device's) counter and gives the IP's place back. Every
    /// successful login answers with a device token, remembered as known to the user.
    pub async fn login(&self, scope: &Scope, req: LoginRequest) -> Result<LoginResult> {
        let LoginRequest { credentials, data, client, device } = req;
        check_json_object("data", &data)?;
        self.settings.limits.check_session_data(&data)?;
        if client.user_agent.as_ref().is_some_and(|ua| ua.contains('\0'))
            || client.ip.as_ref().is_some_and(|ip| ip.contains('\0'))
        {
            return Err(Error::invalid("client", "must not contain NUL characters"));
        }
        let mut settle = Settle::default();
        let (method, record, oauth) = match credentials {
            Credentials::Password { login, password } => {
                let method = LoginMethod::Password;
                let record = self.store.find_user(scope, &login).await?;
                let user_id = record.as_ref().map(|r| r.user.id);
                let account = account_key(&login, user_id);
                let keys = self.attempt_keys(scope, account, &client, device.as_ref()).await?;
                if let Err(e) = self.reserve(scope, &keys).await {
                    self.record_failure(scope, user_id, &method, Outcome::Throttled, &client).await?;
                    return Err(e);
                }
                let stored = record.as_ref().and_then(|r| r.password_hash.clone());
                let verified = self.hasher.verify(password.clone(), stored.clone()).await?;
                // A failure keeps the places `reserve` took: they are its count.
                let Some(record) = record else {
                    self.record_failure(scope, None, &method, Outcome::UnknownUser, &client).await?;
                    return Err(Error::InvalidCredentials(CredentialFailure::UserNotFound));
                };
                if !verified.ok {
                    self.record_failure(
                        scope,
                        Some(record.user.id),
                        &method,
                        Outcome::WrongPassword,
                        &client,
                    )
                    .await?;
                    return Err(Error::InvalidCredentials(CredentialFailure::WrongPassword));
                }
                settle = Settle { clear: Some(keys.account), undo: keys.ip, known_device: keys.known_device };
                if verified.needs_rehash
                    && record.user.active
                    && let Some(old) = stored
                {
                    let new = self.hasher.hash(password).await?;
                    self.store.rehash_password(scope, record.user.id, &old, &new).await?;
                }
                (method, record, None)
            }
            Credentials::Provider { provider, client_id } => {
                let method = LoginMethod::Provider(provider.clone());
                let identity = self.store.find_identity(scope, &provider, client_id.as_str()).await?;
                let record = match &identity {
                    Some(i) => self.store.find_user(scope, &UserRef::Id(i.user_id)).await?,
                    None => None,
                };
                let (Some(identity), Some(record)) = (identity, record) else {
                    self.record_failure(scope, None, &method, Outcome::UnknownUser, &client).await?;
                    return Err(Error::InvalidCredentials(CredentialFailure::UserNotFound));
                };
                let now = self.now();
                let oauth = OAuthInfo {
                    provider: identity.provider.as_str().to_owned(),
                    client_id: identity.client_id.as_str().to_owned(),
                    access_token: identity.access_token.clone(),
                    access_token_expiry: identity.access_token_expiry,
                    access_token_expired: identity.access_token_expired(now),
                };
                (method, record, Some(oauth))
            }
        };
        self.finish_login(scope, record.user, method, oauth, data, client, device, settle).await
    }

    /// Makes the session of a login whose proof was accepted, or refuses an inactive user.
    /// Either way the counters the attempt reserved are settled; an active user's device
    /// is remembered as known to the user (one store call for all of it).
    #[allow(clippy::too_many_arguments)]
    async fn finish_login(
        &self,
        scope: &Scope,
        user: User,
        method: LoginMethod,
        oauth: Option<OAuthInfo>,
        data: JsonObject,
        client: ClientInfo,
        device: Option<DeviceToken>,
        settle: Settle,
    ) -> Result<LoginResult> {
        let device = device.unwrap_or_else(DeviceToken::generate);
        let policy = &self.scope_settings(scope).throttle;
        if policy.enabled {
            let marker = (user.active && !settle.known_device)
                .then(|| device_key("known:", &format!("acct:{}", user.id), &device));
            let hit: Vec<(&str, Duration)> =
                marker.as_deref().map(|m| (m, policy.device_lifetime)).into_iter().collect();
            let clear: Vec<&str> = settle.clear.as_deref().into_iter().collect();
            let undo: Vec<&str> = settle.undo.as_deref().into_iter().collect();
            if !(hit.is_empty() && clear.is_empty() && undo.is_empty()) {
                let update = ThrottleUpdate { hit: &hit, undo: &undo, clear: &clear };
                self.store.throttle_update(scope, &update, self.now()).await?;
            }
        }
        if !user.active {
            self.record_failure(scope, Some(user.id), &method, Outcome::Inactive, &client).await?;
            return Err(Error::UserInactive(Box::new(self.login_info(&user, oauth))));
        }
        let settings = self.scope_settings(scope);
        let now = self.now();
        let token = SessionToken::generate();
        let session = Session {
            id: Uuid::now_v7(),
            user_id: user.id,
            scope: scope.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: (now + settings.session_idle_timeout).min(now + settings.session_absolute_timeout),
            absolute_expires_at: now + settings.session_absolute_timeout,
            data,
            client: client.clone(),
        };
        let event = LoginEvent {
            id: Uuid::now_v7(),
            scope: scope.clone(),
            user_id: Some(user.id),
            at: now,
            method: method.to_text(),
            outcome: Outcome::Success,
            session_id: Some(session.id),
            ip: client.ip,
            user_agent: client.user_agent,
        };
        let login = NewLogin {
            session: SessionRecord { session: session.clone(), token_hash: token.hash() },
            event,
            max_sessions: Some(settings.max_sessions_per_user),
        };
        let stored = self.store.insert_login(&login).await?;
        // The user's `last_login_at` moved and the cap may have ended older sessions: this
        // process's copies go at once. Other processes must hear of ended sessions only; a
        // moved `last_login_at` alone is not worth a cross-process message (on PostgreSQL a
        // `NOTIFY` is a transaction of its own, committed under a global lock, that wakes
        // every listener), so their copies of the user may show the previous login's time
        // until their cache TTL (see `cache.rs`). Where the backend already told them in
        // the login's own transaction, it is not said twice.
        if let Some(caches) = &self.caches {
            caches.apply(&Change::User(user.id));
        }
        if stored.ended > 0 && !stored.published {
            self.publish(Change::User(user.id)).await;
        }
        let mut user = user;
        user.last_login_at = Some(now);
        Ok(LoginResult { token, session, login: self.login_info(&user, oauth), device })
    }

    /// The valid session of a token and its user. With `cached`, a good cached copy
    /// answers; a copy that would refuse (expired, inactive user) never does on its own:
    /// another process may have freshened the session since, so the database decides.
    async fn valid_session_from(
        &self,
        scope: &Scope,
        token: &SessionToken,
        cached: bool,
    ) -> Result<Arc<SessionView>> {
        if !token.expose().starts_with(SessionToken::PREFIX) || token.expose().len() > 128 {
            return Err(Error::SessionInvalid);
        }
        let hash = token.hash();
        let now = self.now();
        let valid = |session: &Session, user: &User| {
            // A cached copy is keyed by the token alone: it answers for its own scope only.
            session.scope == *scope && session.is_valid_at(now) && user.active
        };
        let caches = self.caches.as_ref().filter(|_| cached);
        if let Some(caches) = caches
            && let Some(view) = caches.session(&hash)
            && valid(&view.session, &view.user)
        {
            return Ok(view);
        }
        let ticket = caches.map(|c| c.ticket());
        let (session, user) = self.store.find_session(scope, &hash).await?.ok_or(Error::SessionInvalid)?;
        if !valid(&session, &user) {
            return Err(Error::SessionInvalid);
        }
        let view = Arc::new(SessionView::new(session, user));
        if let (Some(caches), Some(ticket)) = (caches, ticket) {
            caches.keep_session(hash, Arc::clone(&view), ticket);
        }
        Ok(view)
    }

    async fn valid_session(&self, scope: &Scope, token: &SessionToken) -> Result<Arc<SessionView>> {
        self.valid_session_from(scope, token, true).await
    }

    /// The session of a token and its user. Does not extend the session.
    pub async fn get_session(&self, scope: &Scope, token: &SessionToken) -> Result<(Session, User)> {
        let view = self.valid_session(scope, token).await?;
        Ok((view.session.clone(), view.user.clone()))
    }

    /// [`Hallpass::get_session`] without copying: a cached session answers with the very
    /// view it keeps, shared by every caller (see [`SessionView::rendered`]).
    pub async fn get_session_view(&self, scope: &Scope, token: &SessionToken) -> Result<Arc<SessionView>> {
        self.valid_session(scope, token).await
    }

    /// Extends the session's idle expiry (never past its absolute expiry).
    ///
    /// Writes at most once per [`freshen_interval`] of the scope's idle timeout: when the
    /// expiry would move by less, nothing is written and the session is returned as it is
    /// (its `last_seen_at` then lags by less than the interval). An application that
    /// freshens on every request costs one write per interval, not one per request.
    pub async fn freshen(&self, scope: &Scope, token: &SessionToken) -> Result<Session> {
        // From the database, not the cache: the answer is what is stored now.
        let session = self.valid_session_from(scope, token, false).await?.session.clone();
        let now = self.now();
        let idle = self.scope_settings(scope).session_idle_timeout;
        let expires_at = (now + idle).min(session.absolute_expires_at);
        if expires_at - session.expires_at < freshen_interval(idle) {
            return Ok(session);
        }
        let freshened = self.store.freshen_session(scope, &token.hash(), now, expires_at).await?;
        self.changed(Change::Session(token.hash())).await;
        freshened.ok_or(Error::SessionInvalid)
    }

    /// Applies a JSON merge patch to the session's data. A result larger than
    /// [`crate::Limits::max_session_data_bytes`] answers [`Error::TooLarge`] and changes
    /// nothing.
    pub async fn patch_session_data(
        &self,
        scope: &Scope,
        token: &SessionToken,
        patch: &serde_json::Value,
    ) -> Result<Session> {
        if !patch.is_object() {
            return Err(Error::invalid("data", "a merge patch of session data must be a JSON object"));
        }
        check_json("data", patch)?;
        self.valid_session(scope, token).await?;
        let max_bytes = self.settings.limits.max_session_data_bytes;
        let patched = self.store.patch_session_data(scope, &token.hash(), patch, max_bytes).await?;
        self.changed(Change::Session(token.hash())).await;
        patched.ok_or(Error::SessionInvalid)
    }

    /// Ends a session. Ending one that is already ended (or never existed) succeeds.
    pub async fn end_session(&self, scope: &Scope, token: &SessionToken) -> Result<()> {
        self.store.delete_session_by_hash(scope, &token.hash()).await?;
        self.changed(Change::Session(token.hash())).await;
        Ok(())
    }

    /// Ends every other session of the token's user, keeping this one.
    pub async fn end_other_sessions(&self, scope: &Scope, token: &SessionToken) -> Result<u64> {
        let view = self.valid_session(scope, token).await?;
        let user_id = view.user.id;
        let ended = self.store.delete_sessions(scope, user_id, Some(view.session.id)).await?;
        self.changed(Change::User(user_id)).await;
        Ok(ended)
    }

    /// The user's valid sessions, newest first.
    pub async fn list_sessions(&self, scope: &Scope, r: &UserRef) -> Result<Vec<Session>> {
        let user = self.resolve(scope, r).await?.user;
        Ok(self.store.list_sessions(scope, user.id, self.now()).await?)
    }

    /// Ends one session of a user.
    pub async fn end_user_session(&self, scope: &Scope, r: &UserRef, session_id: Uuid) -> Result<()> {
        let user = self.resolve(scope, r).await?.user;
        let ended = self.store.delete_session(scope, user.id, session_id).await?;
        self.changed(Change::User(user.id)).await;
        if ended { Ok(()) } else { Err(Error::SessionNotFound) }
    }

    /// Ends every session of a user.
    pub async fn end_user_sessions(&self, scope: &Scope, r: &UserRef) -> Result<u64> {
        let user = self.resolve(scope, r).await?.user;
        let ended = self.store.delete_sessions(scope, user.id, None).await?;
        self.changed(Change::User(user.id)).await;
        Ok(ended)
    }

    // ------------------------------------------------------------------ codes

    /// Issues a password-reset code for the user with that login; voids older ones.
    ///
    /// A login that names a user and one that names nobody take the same path, so they
    /// cost the same: one store call, [`Store::request_code`], one write transaction that
    /// counts the request against the login's counter (`code:reset:` + a hash of the
    /// normalised login, never the user id) and stores the code only when there is a user.
    /// The answer then differs ([`Error::UserNotFound`]): the application holds the key and
    /// is trusted with it; the time it took does not tell an onlooker which it was. More
    /// than [`crate::ThrottleSettings::code_requests`] requests for one login in the
    /// window answer [`Error::RateLimited`], whoever the login names.
    pub async fn create_reset_code(&self, scope: &Scope, login: &UserRef) -> Result<IssuedCode> {
        let policy = &self.scope_settings(scope).throttle;
        let code = Code::generate();
        let now = self.now();
        let expires_at = now + self.scope_settings(scope).code_ttl;
        let req = CodeRequest {
            login: login.clone(),
            kind: CodeKind::Reset,
            code_hash: code.hash(),
            created_at: now,
            expires_at,
            throttle_key: code_request_key(CodeKind::Reset, login),
            window: policy.code_request_window,
            limit: if policy.enabled { policy.code_requests } else { 0 },
        };
        let outcome = self.store.request_code(scope, &req).await?;
        if !req.within_limit(&outcome.requests) {
            let wait = (outcome.requests.expires_at - now).whole_milliseconds();
            let retry_after_secs = u64::try_from((wait + 999) / 1000).unwrap_or(u64::MAX).max(1);
            return Err(Error::RateLimited { retry_after_secs });
        }
        match outcome.user_id {
            Some(user_id) if outcome.stored => Ok(IssuedCode { code, expires_at, user_id }),
            _ => Err(Error::UserNotFound),
        }
    }

    /// Redeems a reset code: sets the password and ends every session of the user.
    ///
    /// The code is looked at first (without consuming it), so an invalid code costs no
    /// hash and the new password is checked against the names of the user it belongs to;
    /// the redemption itself then decides atomically whether the code is still good.
    pub async fn redeem_reset_code(&self, scope: &Scope, code: &Code, password: Password) -> Result<Uuid> {
        if !code.expose().starts_with(Code::PREFIX) || code.expose().len() > 128 {
            return Err(Error::InvalidCode);
        }
        let owner = self
            .store
            .code_owner(scope, CodeKind::Reset, &code.hash(), self.now())
            .await?
            .ok_or(Error::InvalidCode)?;
        let user = self.store.find_user(scope, &UserRef::Id(owner)).await?.ok_or(Error::InvalidCode)?.user;
        self.check_password_strength(scope, &password, user.username.as_ref(), user.email.as_ref()).await?;
        let hash = self.hasher.hash(password).await?;
        let id = self
            .store
            .redeem_reset_code(scope, &code.hash(), self.now(), &hash)
            .await?
            .ok_or(Error::InvalidCode)?;
        self.changed(Change::User(id)).await;
        // Whoever proved control of the account's mail may log in at once: a reset is
        // the way out of a throttle an attacker keeps renewing.
        self.store.throttle_clear(scope, &format!("acct:{id}")).await?;
        Ok(id)
    }

    // ------------------------------------------------------------------ providers

    fn apply_token(&self, identity: &mut Identity, update: TokenUpdate) -> Result<()> {
        if let Some(t) = update.access_token {
            if let Some(t) = &t {
                crate::types::check_access_token(t)?;
            }
            identity.access_token = t;
        }
        if let Some(e) = update.expiry {
            identity.access_token_expiry = match e {
                None => None,
                Some(Expiry::At(t)) => Some(t),
                Some(Expiry::In(secs)) => {
                    if !(-1_000_000_000..=1_000_000_000).contains(&secs) {
                        return Err(Error::invalid("expires_in", "is out of range"));
                    }
                    Some(self.now() + Duration::seconds(secs))
                }
            };
        }
        Ok(())
    }

    /// Links a user to a provider identity (replacing the user's earlier link to the same
    /// provider).
    pub async fn link_provider(
        &self,
        scope: &Scope,
        r: &UserRef,
        provider: ProviderName,
        client_id: ClientId,
        update: TokenUpdate,
    ) -> Result<Identity> {
        let user = self.resolve(scope, r).await?.user;
        let now = self.now();
        let existing = self.store.get_identity(scope, user.id, &provider).await?;
        let mut identity = Identity {
            user_id: user.id,
            scope: scope.clone(),
            provider,
            client_id,
            access_token: None,
            access_token_expiry: None,
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        };
        self.apply_token(&mut identity, update)?;
        self.store.upsert_identity(&identity).await?;
        Ok(identity)
    }

    /// Changes the token or expiry of a link.
    pub async fn update_provider(
        &self,
        scope: &Scope,
        r: &UserRef,
        provider: &ProviderName,
        update: TokenUpdate,
    ) -> Result<Identity> {
        let user = self.resolve(scope, r).await?.user;
        let mut identity =
            self.store.get_identity(scope, user.id, provider).await?.ok_or(Error::ProviderNotLinked)?;
        self.apply_token(&mut identity, update)?;
        identity.updated_at = self.now();
        self.store.upsert_identity(&identity).await?;
        Ok(identity)
    }

    /// A user's link to a provider.
    pub async fn get_provider(
        &self,
        scope: &Scope,
        r: &UserRef,
        provider: &ProviderName,
    ) -> Result<Identity> {
        let user = self.resolve(scope, r).await?.user;
        self.store.get_identity(scope, user.id, provider).await?.ok_or(Error::ProviderNotLinked)
    }

    /// A user's provider links.
    pub async fn list_providers(&self, scope: &Scope, r: &UserRef) -> Result<Vec<Identity>> {
        let user = self.resolve(scope, r).await?.user;
        Ok(self.store.list_identities(scope, user.id).await?)
    }

    /// Removes a user's link to a provider.
    pub async fn unlink_provider(&self, scope: &Scope, r: &UserRef, provider: &ProviderName) -> Result<()> {
        let user = self.resolve(scope, r).await?.user;
        if self.store.delete_identity(scope, user.id, provider).await? {
            Ok(())
        } else {
            Err(Error::ProviderNotLinked)
        }
    }

    // ------------------------------------------------------------------ history

    /// A user's login events, newest first.
    pub async fn login_history(
        &self,
        scope: &Scope,
        r: &UserRef,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<LoginEvent>> {
        let limit = page_limit(limit)?;
        let before = parse_cursor(cursor)?;
        let user = self.resolve(scope, r).await?.user;
        let mut items = self.store.list_events(scope, user.id, before, limit + 1).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|e| e.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Successful logins and distinct users per bucket over `[from, to)`, every bucket
    /// present (zeros included). Defaults: `to` = now; `from` = 24 hours (hour buckets) or
    /// 30 days (day buckets) before `to`.
    pub async fn login_stats(
        &self,
        scope: &Scope,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
        bucket: Bucket,
    ) -> Result<Vec<StatBucket>> {
        let width = bucket.millis();
        let to = to.unwrap_or_else(|| self.now());
        let from = from.unwrap_or(match bucket {
            Bucket::Hour => to - Duration::hours(24),
            Bucket::Day => to - Duration::days(30),
        });
        if from >= to {
            return Err(Error::invalid("from", "must be before `to`"));
        }
        let first = crate::clock::to_unix_ms(from).div_euclid(width) * width;
        let end = crate::clock::to_unix_ms(to);
        if (end - first) / width > MAX_BUCKETS {
            return Err(Error::invalid("from", format!("the range spans more than {MAX_BUCKETS} buckets")));
        }
        let found = self.store.login_stats(scope, from, to, bucket).await?;
        let mut out = Vec::new();
        let mut start = first;
        while start < end {
            let at = crate::clock::from_unix_ms(start);
            let hit = found.iter().find(|b| b.start == at);
            out.push(StatBucket {
                start: at,
                logins: hit.map_or(0, |b| b.logins),
                users: hit.map_or(0, |b| b.users),
            });
            start += width;
        }
        Ok(out)
    }

    // ------------------------------------------------------------------ maintenance

    /// Deletes expired sessions and codes in a batch; returns how many rows went.
    pub async fn sweep(&self, batch: u32) -> Result<u64> {
        Ok(self.store.sweep_expired(self.now(), batch).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_one_ip_counter_whatever_its_form() {
        let key = |ip: &str, bits: u8| ip_key(ip, bits).unwrap_or_default();
        assert_eq!(key("203.0.113.5", 64), "ip:203.0.113.5");
        assert_eq!(key("::ffff:203.0.113.5", 64), "ip:203.0.113.5");
        assert_eq!(key(" [::ffff:cb00:7105] ", 128), "ip:203.0.113.5");
        assert_eq!(key("2001:db8:1:2:3:4:5:6", 64), "ip:2001:db8:1:2::/64");
        assert_eq!(key("2001:DB8:1:2::9", 64), "ip:2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:3:4:5:6", 128), "ip:2001:db8:1:2:3:4:5:6/128");
        assert_eq!(key("2001:db8:1:2:3:4:5:6", 48), "ip:2001:db8:1::/48");
        assert_eq!(key("2001:db8::1", 0), "ip:::/0");
        assert_eq!(key("not an address", 64), "ip:not an address");
        assert_eq!(ip_key("  ", 64), None);
    }
}
