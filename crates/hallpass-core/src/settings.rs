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
        }
    }
}

/// All settings of the service.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// For scopes without an entry of their own.
    pub default_scope: ScopeSettings,
    /// Per-scope settings.
    pub scopes: BTreeMap<String, ScopeSettings>,
    /// Argon2id parameters for new hashes.
    pub hash_params: HashParams,
    /// Most hashes at once (0: the number of CPUs).
    pub hash_threads: usize,
}

impl Settings {
    /// The settings of `scope`.
    pub fn scope(&self, scope: &Scope) -> &ScopeSettings {
        self.scopes.get(scope.as_str()).unwrap_or(&self.default_scope)
    }
}
