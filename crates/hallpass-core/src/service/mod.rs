//! The service: every operation of the API, on top of a [`Store`], a [`Clock`] and the
//! [`PasswordHasher`]. Inputs arrive already typed; this module enforces the semantics
//! (expiry, single-use codes, equal cost of unknown user and wrong password, inactive
//! users get no session) and leaves atomicity to the one store call each write makes.
//!
//! The operations are grouped by section, each an `impl Hallpass` block in a file of its
//! own: `keys.rs` (API keys and their request budget), `users.rs`, `login.rs` (password
//! and provider logins) with `throttle.rs` (the counters a login attempt reserves and
//! settles), `sessions.rs`, `codes.rs` (reset codes), `providers.rs` (linked identities)
//! and `history.rs` (login events and statistics). This file owns the [`Hallpass`] value
//! itself: construction, the caches, settings, and the paging helpers the sections share.

mod codes;
mod flows;
mod history;
mod keys;
mod login;
mod mail;
mod mfa;
mod oidc;
mod passkeys;
mod providers;
mod sessions;
mod throttle;
mod users;
mod webhooks;

use crate::cache::{CacheMode, CacheSettings, Caches};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::model::*;
use crate::password::PasswordHasher;
use crate::settings::{ScopeSettings, Settings};
use crate::store::{Change, Store};
use crate::types::*;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

pub use crate::patch::{merge_patch, merge_session_patch};
pub use codes::IssuedCode;
pub use login::{Credentials, LoginRequest, LoginResult};
pub use mail::{EMAIL_CODE_DIGITS, EMAIL_CODE_MAX_GUESSES, EMAIL_CODE_TTL};
pub use mfa::{MfaChallenge, MfaProof, TotpEnrolment};
pub use oidc::{NewUsers, OidcPolicy, ProviderIdentity};
pub use passkeys::PasskeyCeremony;
pub use providers::{Expiry, TokenUpdate, open_identity_with, seal_identity_with};
pub use sessions::freshen_interval;
pub use users::NewUser;
pub use webhooks::{DIRECTORY_TTL, Delivery, WebhookInput, check_url};

/// Largest page a listing returns.
pub const MAX_PAGE: u32 = 1000;
/// Page size when none is asked for.
pub const DEFAULT_PAGE: u32 = 50;
/// Most buckets one statistics call may span.
pub const MAX_BUCKETS: i64 = 5000;

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
    key_buckets: std::sync::Mutex<std::collections::HashMap<(Uuid, crate::settings::KeyCall), KeyBucket>>,
    /// When this process last recorded each key's use, in Unix milliseconds (see
    /// `note_key_use`): a read lock and an atomic on the path of every request, the write
    /// lock only for a key's first use.
    key_uses: std::sync::RwLock<std::collections::HashMap<Uuid, std::sync::atomic::AtomicI64>>,
    /// Sessions and API keys cached in this process (see [`crate::cache`]); `None`: off.
    caches: Option<Arc<Caches>>,
    /// The change stream's feed (see [`crate::feed`]), fed by the store's change channel.
    feed: Arc<crate::feed::Feed>,
    /// The store has no channel (or no runtime ran at construction): this process's own
    /// changes are pushed to the feed directly.
    feed_direct: bool,
    /// Told when this process queues a delivery (see [`Hallpass::outbox_signal`]).
    outbox_signal: Arc<tokio::sync::Notify>,
    /// Seals provider tokens before they are stored (see [`crate::server_secret`]);
    /// `None`: they are stored as given.
    server_secret: Option<crate::server_secret::ServerSecret>,
    /// Which webhook endpoints want which events (see `webhooks.rs`).
    webhooks: std::sync::RwLock<webhooks::Directory>,
    /// Told when this process queues a webhook delivery.
    webhook_signal: Arc<tokio::sync::Notify>,
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
        let (caches, feed, feed_direct) = Self::start_changes(&store, &settings.cache);
        Ok(Self {
            store,
            clock,
            hasher,
            settings,
            key_buckets: Default::default(),
            key_uses: Default::default(),
            caches,
            feed,
            feed_direct,
            outbox_signal: Default::default(),
            server_secret: None,
            webhooks: Default::default(),
            webhook_signal: Default::default(),
        })
    }

    /// The service with `secret` sealing provider tokens at rest (and opening the ones it
    /// sealed before).
    pub fn with_server_secret(mut self, secret: crate::server_secret::ServerSecret) -> Self {
        self.server_secret = Some(secret);
        self
    }

    /// The server secret, when one is configured.
    pub fn server_secret(&self) -> Option<&crate::server_secret::ServerSecret> {
        self.server_secret.as_ref()
    }

    /// The caches the settings and the store allow and the change feed, with a task
    /// applying the store's channel (every process's changes) to both when the store has a
    /// channel and a Tokio runtime is running. The flag: the feed has no channel and is
    /// fed by this process's own changes.
    fn start_changes(
        store: &Arc<dyn Store>,
        settings: &CacheSettings,
    ) -> (Option<Arc<Caches>>, Arc<crate::feed::Feed>, bool) {
        let feed = Arc::new(crate::feed::Feed::new());
        let runtime = tokio::runtime::Handle::try_current().ok();
        let changes = runtime.as_ref().and_then(|_| store.changes());
        let (Some(runtime), Some(mut changes)) = (runtime, changes) else {
            // No channel: caching could only bound staleness by the TTL; only when asked.
            let caches = (settings.mode == CacheMode::On).then(|| Arc::new(Caches::new(settings)));
            return (caches, feed, true);
        };
        let caches = (settings.mode != CacheMode::Off).then(|| Arc::new(Caches::new(settings)));
        let weak_caches = caches.as_ref().map(Arc::downgrade);
        let weak_feed = Arc::downgrade(&feed);
        runtime.spawn(async move {
            loop {
                let change = match changes.recv().await {
                    Ok(change) => change,
                    // Missed some: drop everything.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Change::All,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                // The feed lives as long as the service: gone, nobody listens.
                let Some(feed) = weak_feed.upgrade() else { break };
                if let Some(caches) = weak_caches.as_ref().and_then(std::sync::Weak::upgrade) {
                    caches.apply(&change);
                }
                feed.push(change);
            }
        });
        (caches, feed, false)
    }

    /// The change feed behind `GET /v1/changes` (see [`crate::feed`]).
    pub fn feed(&self) -> &Arc<crate::feed::Feed> {
        &self.feed
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
        if self.feed_direct {
            self.feed.push(change.clone());
        }
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
            recovery_codes_remaining: None,
            mfa_enrollment_required: false,
        }
    }

    /// Whether storage answers.
    pub async fn ready(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    // ------------------------------------------------------------------ maintenance

    /// Deletes expired sessions and codes in a batch; returns how many rows went.
    pub async fn sweep(&self, batch: u32) -> Result<u64> {
        Ok(self.store.sweep_expired(self.now(), batch).await?)
    }
}
