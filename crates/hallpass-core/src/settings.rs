//! Settings the service needs: per-scope policies with one default, and hashing costs.
//! The server fills these from its configuration file and environment.

use crate::password::HashParams;
use crate::types::Scope;
use std::collections::BTreeMap;
use time::Duration;

/// What may differ from one scope (application) to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSettings {
    /// Idle expiry of a session, moved forward by freshen.
    pub session_idle_timeout: Duration,
    /// Absolute lifetime of a session.
    pub session_absolute_timeout: Duration,
    /// Whether `validated` needs a confirmed email.
    pub require_confirmation: bool,
    /// Lifetime of reset and confirmation codes.
    pub code_ttl: Duration,
    /// Most sessions one user may hold; the oldest end first.
    pub max_sessions_per_user: u32,
    /// The lowest zxcvbn score (0-4) a new password needs; 0 turns the estimate off and
    /// leaves only the length rules. Default 3: a password zxcvbn expects to fall within
    /// 10^8 guesses is refused. Score 3 is where zxcvbn itself stops giving advice
    /// ("safely unguessable: moderate protection from an offline slow-hash attack"). See
    /// [`crate::password::strength`].
    pub min_password_score: u8,
    /// Login throttling (per account and per client IP).
    pub throttle: ThrottleSettings,
}

/// Login throttling of one scope. Counters live in the store, so every process on one
/// database shares them. Nothing here ever locks an account for good: the longest an
/// account waits is `account_max_delay`, and an IP waits at most to the end of its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Whether logins are throttled at all (default `true`).
    pub enabled: bool,
    /// Consecutive failed password logins an account may have before it is throttled
    /// (default 10). Counted by user id, or by the normalised login for unknown users.
    pub account_free_failures: u32,
    /// The wait after the first failure beyond the free ones (default 1 s); it doubles
    /// with each further failure.
    pub account_base_delay: Duration,
    /// The longest wait (default 15 min).
    pub account_max_delay: Duration,
    /// How long an account's failures are remembered, counted from the first (default
    /// 24 h). A good login forgets them at once.
    pub account_window: Duration,
    /// Failed logins one client IP (`client.ip`) may have in `ip_window` before its
    /// logins are refused until the window ends (default 100).
    pub ip_max_failures: u32,
    /// The IP window (default 15 min), counted from the IP's first failure in it.
    pub ip_window: Duration,
    /// Requests per second one API key of the scope may make, on average, through one
    /// process (a token bucket held in memory, see [`crate::Hallpass::admit_key`]); 0
    /// turns the budget off. Default 1000: a budget against a runaway or abused backend,
    /// far above what one application's normal traffic needs of one process.
    pub key_rate: u32,
    /// The requests one API key may make at once, beyond the average (default 2000).
    pub key_burst: u32,
    /// Reset codes one login may be issued per `code_request_window` (default 10); beyond,
    /// requests answer [`crate::Error::RateLimited`] until the window ends. Counted by the
    /// normalised login, so a login that names nobody counts the same. 0: no limit.
    pub code_requests: u32,
    /// The window of `code_requests` (default 1 h), counted from its first request.
    pub code_request_window: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            account_free_failures: 10,
            account_base_delay: Duration::seconds(1),
            account_max_delay: Duration::minutes(15),
            account_window: Duration::hours(24),
            ip_max_failures: 100,
            ip_window: Duration::minutes(15),
            key_rate: 1000,
            key_burst: 2000,
            code_requests: 10,
            code_request_window: Duration::hours(1),
        }
    }
}

impl ThrottleSettings {
    /// Until when an account with this counter is blocked (`None`: not blocked by it).
    pub fn account_blocked_until(&self, state: &crate::store::ThrottleState) -> Option<time::OffsetDateTime> {
        let beyond = state.failures.checked_sub(self.account_free_failures)?;
        // base * 2^beyond, capped; the exponent is capped too so the product cannot overflow.
        let factor = 1i64 << beyond.min(40);
        let delay = self
            .account_base_delay
            .checked_mul(factor.min(i64::from(i32::MAX)) as i32)
            .unwrap_or(self.account_max_delay)
            .min(self.account_max_delay);
        Some(state.last_at + delay)
    }

    /// Until when an IP with this counter is blocked (`None`: not blocked by it).
    pub fn ip_blocked_until(&self, state: &crate::store::ThrottleState) -> Option<time::OffsetDateTime> {
        (state.failures >= self.ip_max_failures.max(1)).then_some(state.expires_at)
    }
}

impl Default for ScopeSettings {
    fn default() -> Self {
        Self {
            session_idle_timeout: Duration::hours(24),
            session_absolute_timeout: Duration::days(30),
            require_confirmation: false,
            code_ttl: Duration::hours(1),
            max_sessions_per_user: 100,
            min_password_score: 3,
            throttle: ThrottleSettings::default(),
        }
    }
}

/// Caps on the application's JSON kept per session and per user, in bytes of compact JSON
/// (what the stores keep and the answers carry). Beyond a cap, a write answers
/// [`crate::Error::TooLarge`] and changes nothing. They bound what one session or user can
/// cost the database and the session cache, whatever the body limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Session `data`: at login, and the result of every merge patch (default 16 KiB).
    pub max_session_data_bytes: usize,
    /// A user's `extra`: at registration, update and import (default 64 KiB).
    pub max_user_extra_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_session_data_bytes: 16 * 1024, max_user_extra_bytes: 64 * 1024 }
    }
}

impl Limits {
    /// Refuses session `data` larger than the cap.
    pub fn check_session_data(&self, data: &crate::types::JsonObject) -> crate::Result<()> {
        let max_bytes = self.max_session_data_bytes;
        if crate::types::json_size(data) > max_bytes {
            return Err(crate::Error::TooLarge { field: "data", max_bytes });
        }
        Ok(())
    }

    /// Refuses an `extra` larger than the cap.
    pub fn check_user_extra(&self, extra: &crate::types::JsonObject) -> crate::Result<()> {
        let max_bytes = self.max_user_extra_bytes;
        if crate::types::json_size(extra) > max_bytes {
            return Err(crate::Error::TooLarge { field: "extra", max_bytes });
        }
        Ok(())
    }
}

/// All settings of the service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// For scopes without an entry of their own.
    pub default_scope: ScopeSettings,
    /// Per-scope settings.
    pub scopes: BTreeMap<String, ScopeSettings>,
    /// Argon2id parameters for new hashes.
    pub hash_params: HashParams,
    /// Most hashes at once (0: the number of CPUs).
    pub hash_threads: usize,
    /// Most hashes that may wait for a hashing thread (default 256; 0: no limit). Beyond,
    /// a login, registration or password change answers [`crate::Error::Overloaded`] at
    /// once instead of queueing for ever: with OWASP costs and 2 cores, 256 waiting is
    /// about 2.5 s of work.
    pub hash_queue_limit: usize,
    /// The session and API-key caches of the hot path.
    pub cache: crate::cache::CacheSettings,
    /// Caps on session `data` and user `extra`.
    pub limits: Limits,
    /// The most a stored or imported password hash may cost to verify; `None`:
    /// [`crate::HashCeiling::for_params`] of `hash_params`.
    pub hash_ceiling: Option<crate::password::HashCeiling>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            default_scope: ScopeSettings::default(),
            scopes: BTreeMap::new(),
            hash_params: HashParams::default(),
            hash_threads: 0,
            hash_queue_limit: 256,
            cache: crate::cache::CacheSettings::default(),
            limits: Limits::default(),
            hash_ceiling: None,
        }
    }
}

impl Settings {
    /// The ceiling on stored hashes these settings give.
    pub fn hash_ceiling(&self) -> crate::password::HashCeiling {
        self.hash_ceiling
            .unwrap_or_else(|| crate::password::HashCeiling::for_params(self.hash_params))
            .admitting(self.hash_params)
    }

    /// The settings of `scope`.
    pub fn scope(&self, scope: &Scope) -> &ScopeSettings {
        self.scopes.get(scope.as_str()).unwrap_or(&self.default_scope)
    }
}
