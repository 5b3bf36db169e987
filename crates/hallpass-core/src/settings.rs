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
    /// Whether users should have a second factor: logins of users without one carry
    /// `mfa_enrollment_required` in the login object (enrolment never depends on it).
    pub require_mfa: bool,
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
    /// Mail the user when they log in from a client (IP and browser family) not seen for
    /// them in 90 days; never on a user's first login. Needs mail (default false).
    pub notify_new_device: bool,
    /// The WebAuthn relying party of the scope (`None`: no passkeys).
    pub webauthn: Option<crate::passkey::RelyingParty>,
}

/// Login throttling of one scope. Counters live in the store, so every process on one
/// database shares them. Nothing here ever locks an account for good: the longest an
/// account waits is `account_max_delay`, and an IP waits at most to the end of its window.
///
/// An attempt takes its place in a budget *before* its password is checked (the counter is
/// incremented first and the attempt goes on only if its number is within the budget; a
/// refused attempt gives its place back), so parallel attempts can never exceed it. The
/// budget of a counter is a schedule from its first failure: `account_free_failures`
/// attempts at once, then one more after `account_base_delay`, the next after twice that,
/// and so on, each step at most `account_max_delay`.
///
/// Failures are counted per *device* (OWASP's device-cookie design): a successful login
/// answers with a device token the application keeps for that browser and sends back on
/// later logins. A device that has logged in as the user before counts its failures on a
/// counter of its own (and is not held by the account's or the IP's counters); every other
/// attempt counts on the account's counter for unknown devices and the client IP's. An
/// attacker can therefore throttle unknown devices, never a device the owner has used.
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
    /// Costly calls ([`KeyCall::Costly`]: logins, registrations, password changes and
    /// resets, code requests) per second one API key of the scope may make, on average,
    /// through one process (a token bucket held in memory, see
    /// [`crate::Hallpass::admit_key`]); 0 turns the budget off. Default 200: these calls
    /// hash a password (about 13 ms of a core each) or issue a code, so this is a guard
    /// against a runaway or abused backend spending the hashing pool, and sits far above
    /// what one application's honest traffic sends to one process (200 a second is
    /// 720,000 logins an hour).
    pub key_rate: u32,
    /// The costly calls one API key may make at once, beyond the average (default 1000;
    /// 0: twice `key_rate`).
    pub key_burst: u32,
    /// Every other call (session checks, freshens, reads, updates) per second per key
    /// through one process; default 0, no budget: a session check is one indexed read or
    /// a cache hit, the call a backend makes on every request of its own, and a budget
    /// there would refuse a busy application its own users.
    pub key_other_rate: u32,
    /// The other calls one API key may make at once (default 0: twice `key_other_rate`).
    pub key_other_burst: u32,
    /// Reset codes one login may be issued per `code_request_window` (default 10); beyond,
    /// requests answer [`crate::Error::RateLimited`] until the window ends. Counted by the
    /// normalised login, so a login that names nobody counts the same. 0: no limit.
    pub code_requests: u32,
    /// The window of `code_requests` (default 1 h), counted from its first request.
    pub code_request_window: Duration,
    /// IPv6 client addresses are counted per network of this prefix length (default 64:
    /// one customer's network usually holds a whole /64); 128 counts each address alone.
    /// IPv4-mapped IPv6 addresses count as their IPv4 address.
    pub ipv6_prefix: u8,
    /// How long a device token stays known for a user after a successful login with it
    /// (default 365 days); afterwards the device is unknown until it logs in again.
    pub device_lifetime: Duration,
}

/// The two request budgets of an API key ([`crate::Hallpass::admit_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyCall {
    /// A call that hashes a password or issues a code: login, registration, setting or
    /// resetting a password, requesting a code.
    Costly,
    /// Any other call: session checks, freshens, reads, updates, deletions.
    Other,
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
            key_rate: 200,
            key_burst: 1000,
            key_other_rate: 0,
            key_other_burst: 0,
            code_requests: 10,
            code_request_window: Duration::hours(1),
            ipv6_prefix: 64,
            device_lifetime: Duration::days(365),
        }
    }
}

impl ThrottleSettings {
    /// Whether the `n`-th attempt counted on an account or device counter whose first
    /// failure was at `first_at` may be checked at `now`: `Ok` when it is within the
    /// budget, else `Err(until)`, when it will be.
    pub fn account_admits(
        &self,
        state: &crate::store::ThrottleState,
        now: time::OffsetDateTime,
    ) -> Result<(), time::OffsetDateTime> {
        let Some(beyond) = state.failures.checked_sub(self.account_free_failures) else { return Ok(()) };
        if beyond == 0 {
            return Ok(());
        }
        // Beyond the counter's life the attempt waits for the counter to go (a new one
        // starts); this also keeps the instant in range whatever the count.
        let until = state.first_at + self.schedule(beyond).min(state.expires_at - state.first_at);
        if now >= until { Ok(()) } else { Err(until) }
    }

    /// How long after a counter's first failure its `free + beyond`-th attempt is admitted:
    /// the sum of `beyond` waits doubling from `account_base_delay`, each at most
    /// `account_max_delay`.
    fn schedule(&self, beyond: u32) -> Duration {
        let base = self.account_base_delay.whole_milliseconds().max(0);
        let max = self.account_max_delay.whole_milliseconds().max(0);
        let mut total: i128 = 0;
        let mut step = base;
        for i in 0..beyond {
            if step >= max {
                total += i128::from(beyond - i) * max;
                break;
            }
            total += step;
            step = step.saturating_mul(2).min(max);
        }
        // A wait beyond any window is as good as for ever; keep it representable.
        Duration::milliseconds(i64::try_from(total).unwrap_or(i64::MAX / 2).min(i64::MAX / 2))
    }

    /// Whether the attempt counted as `state` on a client IP's counter may be checked:
    /// `Ok` within the budget, else `Err(until)`, the end of the IP's window.
    pub fn ip_admits(&self, state: &crate::store::ThrottleState) -> Result<(), time::OffsetDateTime> {
        if state.failures <= self.ip_max_failures.max(1) { Ok(()) } else { Err(state.expires_at) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ThrottleState;
    use time::OffsetDateTime;

    fn counter(failures: u32) -> ThrottleState {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        ThrottleState { failures, first_at: t0, last_at: t0, expires_at: t0 + Duration::hours(24) }
    }

    #[test]
    fn the_account_budget_is_ten_then_doubling_steps_from_the_first_failure() {
        let policy = ThrottleSettings::default();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        for n in 1..=10 {
            assert_eq!(policy.account_admits(&counter(n), t0), Ok(()), "attempt {n} is free");
        }
        // The 11th after 1 s, the 12th after 1 + 2 s, the 13th after 1 + 2 + 4 s.
        for (n, secs) in [(11, 1), (12, 3), (13, 7), (14, 15)] {
            let at = t0 + Duration::seconds(secs);
            assert_eq!(policy.account_admits(&counter(n), at - Duration::milliseconds(1)), Err(at), "{n}");
            assert_eq!(policy.account_admits(&counter(n), at), Ok(()), "{n}");
        }
        // Steps stop growing at 15 minutes: 1 + 2 + ... + 512 s, then 900 s each.
        let doubling: i64 = (0..10).map(|i| 1i64 << i).sum();
        let at = t0 + Duration::seconds(doubling + 3 * 900);
        assert_eq!(policy.account_admits(&counter(23), at), Ok(()));
        assert!(policy.account_admits(&counter(24), at).is_err());
        // Any count is answered, never beyond the counter's life.
        assert_eq!(policy.account_admits(&counter(u32::MAX), t0), Err(t0 + Duration::hours(24)));
    }

    #[test]
    fn the_ip_budget_is_a_count_per_window() {
        let policy = ThrottleSettings::default();
        assert_eq!(policy.ip_admits(&counter(100)), Ok(()));
        assert_eq!(policy.ip_admits(&counter(101)), Err(OffsetDateTime::UNIX_EPOCH + Duration::hours(24)));
    }
}

impl Default for ScopeSettings {
    fn default() -> Self {
        Self {
            session_idle_timeout: Duration::hours(24),
            session_absolute_timeout: Duration::days(30),
            require_confirmation: false,
            require_mfa: false,
            code_ttl: Duration::hours(1),
            max_sessions_per_user: 100,
            min_password_score: 3,
            throttle: ThrottleSettings::default(),
            notify_new_device: false,
            webauthn: None,
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
    /// Whether this server sends mail (an SMTP server is configured). Off: the mail flows
    /// answer [`crate::Error::MailNotConfigured`] and nothing is queued.
    pub mail: bool,
    /// How long a webhook endpoint's previous secret keeps signing after a rotation
    /// (both sign meanwhile, so receivers can switch without losing a delivery).
    pub webhook_secret_overlap: time::Duration,
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
            mail: false,
            webhook_secret_overlap: time::Duration::hours(24),
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
