//! Configuration: defaults, then a TOML file (`--config FILE` or `HALLPASS_CONFIG`), then
//! `HALLPASS_*` environment variables, the environment winning. Per-scope settings live in
//! one place, the `[scopes.NAME]` tables (or `HALLPASS_SCOPES__NAME__KEY` variables); a
//! scope without a table uses the top-level values.

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use hallpass_core::{
    CacheMode, CacheSettings, HashCeiling, HashParams, Limits, Scope, ScopeSettings, Settings,
    ThrottleSettings,
};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The prefix of every environment variable of a setting.
pub const ENV_PREFIX: &str = "HALLPASS_";

/// How logs are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Whether sessions and API keys are cached in the process (`HALLPASS_CACHE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheConfig {
    /// Cache where the database tells of other processes' changes: SQLite (`data_version`),
    /// PostgreSQL (`LISTEN`), MariaDB (the `hallpass_changes` log, polled every 20 ms).
    Auto,
    /// Always, also on a store without a change channel (a change through another process
    /// then shows after at most `cache_ttl`). Every backend hallpass ships has one.
    On,
    /// Never.
    Off,
}

/// A duration written like `90s`, `30m`, `24h`, `30d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub std::time::Duration);

impl HumanDuration {
    /// The longest duration accepted: 100 years. Longer ones (`1000000y`) would push
    /// expiry instants past what a date can hold.
    pub const MAX: std::time::Duration = std::time::Duration::from_secs(100 * 31_557_600);

    /// Parses `90s`, `30m`, `24h`, `30d`, `1h 30m`.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let d = humantime::parse_duration(s.trim())
            .with_context(|| format!("`{s}` is not a duration like 90s, 30m, 24h or 30d"))?;
        if d.is_zero() {
            bail!("a duration must be longer than zero");
        }
        if d > Self::MAX {
            bail!("a duration must be at most 100 years");
        }
        Ok(Self(d))
    }

    /// As a `time::Duration`.
    pub fn to_time(self) -> time::Duration {
        time::Duration::try_from(self.0).unwrap_or(time::Duration::MAX)
    }
}

impl std::fmt::Display for HumanDuration {
    /// The largest unit that says it exactly: `365d`, `36h`, `90s`, `1500ms`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (secs, nanos) = (self.0.as_secs(), self.0.subsec_nanos());
        if nanos != 0 || secs == 0 {
            return write!(f, "{}", humantime::format_duration(self.0));
        }
        match secs {
            s if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            s if s % 3_600 == 0 => write!(f, "{}h", s / 3_600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|e| serde::de::Error::custom(format!("{e:#}")))
    }
}

/// Settings one scope may override; absent fields fall back to the top level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeConfig {
    /// Idle expiry of sessions.
    pub session_idle_timeout: Option<HumanDuration>,
    /// Absolute lifetime of sessions.
    pub session_absolute_timeout: Option<HumanDuration>,
    /// Whether `validated` needs a confirmed email.
    pub require_confirmation: Option<bool>,
    /// Whether users of the scope should have a second factor: logins of users without
    /// one carry `mfa_enrollment_required: true` in the login object. Default false.
    pub require_mfa: Option<bool>,
    /// Lifetime of reset and confirmation codes.
    pub code_ttl: Option<HumanDuration>,
    /// Most sessions per user.
    pub max_sessions_per_user: Option<u32>,
    /// Lowest zxcvbn score (0-4) of a new password.
    pub min_password_score: Option<u8>,
    /// Whether password logins are throttled.
    pub throttle_enabled: Option<bool>,
    /// Consecutive failed logins of an account before it is throttled.
    pub throttle_account_failures: Option<u32>,
    /// The first wait of a throttled account; doubles with each further failure.
    pub throttle_account_base_delay: Option<HumanDuration>,
    /// The longest wait of a throttled account.
    pub throttle_account_max_delay: Option<HumanDuration>,
    /// How long an account's failures are remembered (from the first).
    pub throttle_account_window: Option<HumanDuration>,
    /// Failed logins from one client IP per window before the IP waits out the window.
    pub throttle_ip_failures: Option<u32>,
    /// The client-IP window.
    pub throttle_ip_window: Option<HumanDuration>,
    /// Costly calls (logins, registrations, password changes, code requests) per second
    /// per API key and process; 0: no budget.
    pub throttle_key_rate: Option<u32>,
    /// Costly calls one API key may make at once beyond the average; 0: twice the rate.
    pub throttle_key_burst: Option<u32>,
    /// Every other call per second per API key and process; 0: no budget.
    pub throttle_key_other_rate: Option<u32>,
    /// Other calls one API key may make at once beyond the average; 0: twice the rate.
    pub throttle_key_other_burst: Option<u32>,
    /// Reset codes one login may be issued per window; 0: no limit.
    pub throttle_code_requests: Option<u32>,
    /// The window of `throttle_code_requests`.
    pub throttle_code_request_window: Option<HumanDuration>,
    /// IPv6 clients are counted per network of this many bits.
    pub throttle_ipv6_prefix: Option<u8>,
    /// How long a device stays known after a successful login from it.
    pub throttle_device_lifetime: Option<HumanDuration>,
    /// The scope's mail (`[scopes.NAME.mail]`), field by field over `[mail]`.
    pub mail: Option<crate::mail::MailConfig>,
    /// Identity providers users of the scope may sign in with (`[scopes.NAME.oidc.PROVIDER]`).
    pub oidc: Option<BTreeMap<String, OidcProviderConfig>>,
    /// The scope's WebAuthn relying party (`[scopes.NAME.webauthn]`): without one, the
    /// scope has no passkeys.
    pub webauthn: Option<WebauthnConfig>,
}

/// The WebAuthn relying party of a scope (`[scopes.NAME.webauthn]`), checked when the
/// configuration is read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebauthnConfig {
    /// The relying party id: the domain passkeys are bound to (`example.com`).
    pub rp_id: String,
    /// The name authenticators show (default: the rp id).
    pub rp_name: Option<String>,
    /// The web origins the sign-in pages run on (`https://app.example.com`): the rp id or
    /// subdomains of it.
    pub origins: Vec<String>,
}

/// Whether a first sign-in of an unknown identity creates a user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NewUsersConfig {
    /// Create it (the default).
    #[default]
    Create,
    /// Refuse with 403 `identity_unknown`.
    Refuse,
}

/// One identity provider of a scope (`[scopes.NAME.oidc.PROVIDER]`): an OpenID Connect
/// issuer found by discovery (`issuer`), or a plain OAuth 2.0 provider given by its
/// endpoints (`authorization_endpoint`, `token_endpoint`, `userinfo_endpoint`,
/// `subject_claim`). Checked when the configuration is read (`crate::oidc::ProviderSpec`).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderConfig {
    /// The OpenID Connect issuer; discovery reads `{issuer}/.well-known/openid-configuration`.
    pub issuer: Option<String>,
    /// Plain OAuth 2.0: where the browser is sent to sign in.
    pub authorization_endpoint: Option<String>,
    /// Plain OAuth 2.0: where the code is exchanged for tokens.
    pub token_endpoint: Option<String>,
    /// Plain OAuth 2.0: where the user's claims are read with the access token.
    pub userinfo_endpoint: Option<String>,
    /// Plain OAuth 2.0: the userinfo field that is the user's stable id (default `sub`).
    pub subject_claim: Option<String>,
    /// The client id hallpass has at the provider.
    pub client_id: Option<String>,
    /// The client secret (or `client_secret_file`).
    pub client_secret: Option<String>,
    /// A file holding the client secret (surrounding whitespace ignored).
    pub client_secret_file: Option<String>,
    /// Scopes asked for; default `["openid", "email", "profile"]` (OIDC), none (OAuth 2.0).
    pub scopes: Option<Vec<String>>,
    /// The exact URLs a sign-in may end at (query ignored).
    pub return_to: Option<Vec<String>>,
    /// `create` (default) or `refuse`.
    pub new_users: Option<NewUsersConfig>,
    /// A first sign-in whose verified email is a user's links to that user (default false).
    pub link_by_verified_email: Option<bool>,
    /// The claim that becomes a new user's username (default `preferred_username`).
    pub username_claim: Option<String>,
}

impl std::fmt::Debug for OidcProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProviderConfig")
            .field("issuer", &self.issuer)
            .field("authorization_endpoint", &self.authorization_endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("return_to", &self.return_to)
            .finish_non_exhaustive()
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`HALLPASS_LISTEN`); port 0 picks a free port.
    pub listen: String,
    /// `sqlite://PATH`, later `postgres://...`, `mysql://...` (`HALLPASS_DATABASE_URL`).
    pub database_url: String,
    /// Idle expiry of sessions (`HALLPASS_SESSION_IDLE_TIMEOUT`).
    pub session_idle_timeout: HumanDuration,
    /// Absolute lifetime of sessions (`HALLPASS_SESSION_ABSOLUTE_TIMEOUT`).
    pub session_absolute_timeout: HumanDuration,
    /// `text` or `json` (`HALLPASS_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Where mail goes; unset: no mail (`HALLPASS_SMTP_URL`): `smtp://[user:password@]host[:port]`
    /// (STARTTLS when offered; `?tls=required` to insist, `?tls=none` never), `smtps://...`.
    pub smtp_url: Option<String>,
    /// A file holding the SMTP password (`HALLPASS_SMTP_PASSWORD_FILE`), instead of the URL's.
    pub smtp_password_file: Option<String>,
    /// PEM certificates the SMTP server's TLS certificate may chain to besides the public
    /// roots (`HALLPASS_SMTP_CA_FILE`): a private CA, a self-signed relay.
    pub smtp_ca_file: Option<String>,
    /// How long delivered (`sent`) outbox rows are kept before the mail worker deletes
    /// them (`HALLPASS_OUTBOX_KEEP_SENT`, default `7d`); failed and in-doubt rows are kept.
    pub outbox_keep_sent: HumanDuration,
    /// How long a webhook endpoint's previous secret keeps signing after
    /// `rotate-secret` (`HALLPASS_WEBHOOK_SECRET_OVERLAP`, default `24h`): both sign
    /// meanwhile, so receivers switch without losing a delivery.
    pub webhook_secret_overlap: HumanDuration,
    /// Refuse webhook deliveries to private, loopback, link-local and other non-public
    /// addresses (`HALLPASS_WEBHOOK_REFUSE_PRIVATE`, default `false`: self-hosted
    /// receivers often live on the same network).
    pub webhook_refuse_private: bool,
    /// Most deliveries in flight to one webhook endpoint at once
    /// (`HALLPASS_WEBHOOK_CONCURRENCY_PER_ENDPOINT`, default 4).
    pub webhook_concurrency_per_endpoint: usize,
    /// Mail settings of every scope (`[mail]`: `from`, `reply_to`, `notify_new_device`,
    /// `templates_dir`, `links`); a scope's `[scopes.NAME.mail]` overrides them.
    pub mail: crate::mail::MailConfig,
    /// The base of links in mails and of the OIDC callback (`HALLPASS_PUBLIC_URL`).
    pub public_url: Option<String>,
    /// The server secret that seals provider tokens at rest: 32 bytes, base64
    /// (`HALLPASS_SECRET_KEY`). Unset: `secret_key_file`, else (SQLite) a generated file
    /// beside the database (see `crate::secret_key`).
    pub secret_key: Option<String>,
    /// A file holding the server secret (`HALLPASS_SECRET_KEY_FILE`).
    pub secret_key_file: Option<String>,
    /// Whether the admin page's cookie is `Secure` and `__Host-` prefixed
    /// (`HALLPASS_ADMIN_SECURE_COOKIES`); unset: when `public_url` starts with `https://`.
    pub admin_secure_cookies: Option<bool>,
    /// Largest request body in bytes (`HALLPASS_BODY_LIMIT`).
    pub body_limit: usize,
    /// Whether `validated` needs a confirmed email (`HALLPASS_REQUIRE_CONFIRMATION`).
    pub require_confirmation: bool,
    /// Lifetime of reset and confirmation codes (`HALLPASS_CODE_TTL`).
    pub code_ttl: HumanDuration,
    /// Most sessions per user; the oldest end first (`HALLPASS_MAX_SESSIONS_PER_USER`).
    pub max_sessions_per_user: u32,
    /// Lowest zxcvbn score (0-4) a new password needs; 0: length rules only
    /// (`HALLPASS_MIN_PASSWORD_SCORE`).
    pub min_password_score: u8,
    /// Argon2id memory in KiB (`HALLPASS_ARGON2_MEMORY_KIB`).
    pub argon2_memory_kib: u32,
    /// Argon2id passes (`HALLPASS_ARGON2_ITERATIONS`).
    pub argon2_iterations: u32,
    /// Argon2id lanes (`HALLPASS_ARGON2_PARALLELISM`).
    pub argon2_parallelism: u32,
    /// Most Argon2 memory (KiB) a stored or imported hash may take
    /// (`HALLPASS_HASH_CEILING_ARGON2_MEMORY_KIB`; default 4 × `argon2_memory_kib`, at least
    /// 64 MiB). Above any of these ceilings, `import` refuses the hash and a login with it
    /// fails after one hash at the server's own cost.
    pub hash_ceiling_argon2_memory_kib: Option<u32>,
    /// Most Argon2 passes (`HALLPASS_HASH_CEILING_ARGON2_ITERATIONS`; default 4 ×
    /// `argon2_iterations`, at least 4).
    pub hash_ceiling_argon2_iterations: Option<u32>,
    /// Most Argon2 lanes (`HALLPASS_HASH_CEILING_ARGON2_PARALLELISM`; default 4 ×
    /// `argon2_parallelism`, at least 8).
    pub hash_ceiling_argon2_parallelism: Option<u32>,
    /// Highest bcrypt cost (`HALLPASS_HASH_CEILING_BCRYPT_COST`, default 14).
    pub hash_ceiling_bcrypt_cost: Option<u32>,
    /// Most scrypt memory in KiB (`HALLPASS_HASH_CEILING_SCRYPT_MEMORY_KIB`; default the
    /// Argon2 memory ceiling).
    pub hash_ceiling_scrypt_memory_kib: Option<u64>,
    /// Most PBKDF2 rounds (`HALLPASS_HASH_CEILING_PBKDF2_ROUNDS`, default 2000000).
    pub hash_ceiling_pbkdf2_rounds: Option<u32>,
    /// Most password hashes at once; 0 = number of CPUs (`HALLPASS_HASH_THREADS`).
    pub hash_threads: usize,
    /// How often expired sessions and codes are swept (`HALLPASS_SWEEP_INTERVAL`).
    pub sweep_interval: HumanDuration,
    /// Most password hashes waiting for a hashing thread before logins answer 503
    /// `overloaded` (`HALLPASS_HASH_QUEUE_LIMIT`, default 256; 0: no limit).
    pub hash_queue_limit: usize,
    /// Session and API-key caching (`HALLPASS_CACHE`: `auto` (default), `on`, `off`).
    pub cache: CacheConfig,
    /// The longest a cached copy is used (`HALLPASS_CACHE_TTL`, default 10s): the bound
    /// on staleness should a change notification be lost.
    pub cache_ttl: HumanDuration,
    /// Most sessions cached (`HALLPASS_CACHE_SIZE`, default 50000).
    pub cache_size: u64,
    /// Most bytes the session cache holds, by an estimate made once per entry
    /// (`HALLPASS_CACHE_MAX_BYTES`, default 100 MiB).
    pub cache_max_bytes: u64,
    /// Largest session `data` in bytes of compact JSON, at login and after every patch
    /// (`HALLPASS_MAX_SESSION_DATA_BYTES`, default 16 KiB); beyond: 413 `payload_too_large`.
    pub max_session_data_bytes: usize,
    /// Largest user `extra` in bytes of compact JSON, at registration, update and import
    /// (`HALLPASS_MAX_USER_EXTRA_BYTES`, default 64 KiB); beyond: 413 `payload_too_large`.
    pub max_user_extra_bytes: usize,
    /// Whether password logins are throttled (`HALLPASS_THROTTLE_ENABLED`, default true).
    pub throttle_enabled: bool,
    /// Consecutive failed logins of an account before it is throttled
    /// (`HALLPASS_THROTTLE_ACCOUNT_FAILURES`, default 10).
    pub throttle_account_failures: u32,
    /// The first wait of a throttled account, doubling with each further failure
    /// (`HALLPASS_THROTTLE_ACCOUNT_BASE_DELAY`, default 1s).
    pub throttle_account_base_delay: HumanDuration,
    /// The longest wait of a throttled account (`HALLPASS_THROTTLE_ACCOUNT_MAX_DELAY`,
    /// default 15m); never a permanent lock.
    pub throttle_account_max_delay: HumanDuration,
    /// How long an account's failures are remembered, from the first
    /// (`HALLPASS_THROTTLE_ACCOUNT_WINDOW`, default 24h).
    pub throttle_account_window: HumanDuration,
    /// Failed logins from one `client.ip` per window before that IP waits for the window
    /// to end (`HALLPASS_THROTTLE_IP_FAILURES`, default 100).
    pub throttle_ip_failures: u32,
    /// The client-IP window (`HALLPASS_THROTTLE_IP_WINDOW`, default 15m).
    pub throttle_ip_window: HumanDuration,
    /// Costly calls (logins, registrations, setting or resetting a password, code
    /// requests: they hash a password or issue a code) one API key may make per second,
    /// on average, through one process (`HALLPASS_THROTTLE_KEY_RATE`, default 200; 0: no
    /// budget). Held in memory: with N processes a key may make N times as many.
    pub throttle_key_rate: u32,
    /// Costly calls one API key may make at once beyond the average
    /// (`HALLPASS_THROTTLE_KEY_BURST`, default 1000; 0: twice the rate).
    pub throttle_key_burst: u32,
    /// Every other call (session checks, freshens, reads, updates) one API key may make
    /// per second through one process (`HALLPASS_THROTTLE_KEY_OTHER_RATE`, default 0: no
    /// budget, so a busy backend's session checks are never refused).
    pub throttle_key_other_rate: u32,
    /// Other calls one API key may make at once beyond the average
    /// (`HALLPASS_THROTTLE_KEY_OTHER_BURST`, default 0: twice the rate).
    pub throttle_key_other_burst: u32,
    /// Reset codes one login (as typed, whether or not it names a user) may be issued per
    /// window (`HALLPASS_THROTTLE_CODE_REQUESTS`, default 10; 0: no limit).
    pub throttle_code_requests: u32,
    /// The window of `throttle_code_requests` (`HALLPASS_THROTTLE_CODE_REQUEST_WINDOW`,
    /// default 1h), counted from its first request.
    pub throttle_code_request_window: HumanDuration,
    /// IPv6 client addresses count per network of this prefix length
    /// (`HALLPASS_THROTTLE_IPV6_PREFIX`, default 64; 128: each address alone). IPv4-mapped
    /// addresses count as their IPv4 address.
    pub throttle_ipv6_prefix: u8,
    /// How long a device token stays known to a user after a successful login with it
    /// (`HALLPASS_THROTTLE_DEVICE_LIFETIME`, default 365d).
    pub throttle_device_lifetime: HumanDuration,
    /// Per-scope overrides (`[scopes.NAME]`, `HALLPASS_SCOPES__NAME__KEY`).
    pub scopes: BTreeMap<String, ScopeConfig>,
}

impl Default for Config {
    fn default() -> Self {
        let d = ScopeSettings::default();
        let p = HashParams::default();
        let dur = |t: time::Duration| HumanDuration(t.try_into().unwrap_or_default());
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://hallpass.db".into(),
            session_idle_timeout: dur(d.session_idle_timeout),
            session_absolute_timeout: dur(d.session_absolute_timeout),
            log_format: LogFormat::Text,
            smtp_url: None,
            smtp_password_file: None,
            smtp_ca_file: None,
            outbox_keep_sent: HumanDuration(std::time::Duration::from_secs(7 * 86_400)),
            webhook_secret_overlap: HumanDuration(std::time::Duration::from_secs(86_400)),
            webhook_refuse_private: false,
            webhook_concurrency_per_endpoint: 4,
            mail: Default::default(),
            public_url: None,
            secret_key: None,
            secret_key_file: None,
            admin_secure_cookies: None,
            body_limit: 64 * 1024,
            require_confirmation: d.require_confirmation,
            code_ttl: dur(d.code_ttl),
            max_sessions_per_user: d.max_sessions_per_user,
            min_password_score: d.min_password_score,
            argon2_memory_kib: p.m_cost,
            argon2_iterations: p.t_cost,
            argon2_parallelism: p.p_cost,
            hash_ceiling_argon2_memory_kib: None,
            hash_ceiling_argon2_iterations: None,
            hash_ceiling_argon2_parallelism: None,
            hash_ceiling_bcrypt_cost: None,
            hash_ceiling_scrypt_memory_kib: None,
            hash_ceiling_pbkdf2_rounds: None,
            hash_threads: 0,
            sweep_interval: HumanDuration(std::time::Duration::from_secs(60)),
            hash_queue_limit: Settings::default().hash_queue_limit,
            cache: CacheConfig::Auto,
            cache_ttl: HumanDuration(CacheSettings::default().ttl),
            cache_size: CacheSettings::default().capacity,
            cache_max_bytes: CacheSettings::default().max_bytes,
            max_session_data_bytes: Limits::default().max_session_data_bytes,
            max_user_extra_bytes: Limits::default().max_user_extra_bytes,
            throttle_enabled: d.throttle.enabled,
            throttle_account_failures: d.throttle.account_free_failures,
            throttle_account_base_delay: dur(d.throttle.account_base_delay),
            throttle_account_max_delay: dur(d.throttle.account_max_delay),
            throttle_account_window: dur(d.throttle.account_window),
            throttle_ip_failures: d.throttle.ip_max_failures,
            throttle_ip_window: dur(d.throttle.ip_window),
            throttle_key_rate: d.throttle.key_rate,
            throttle_key_burst: d.throttle.key_burst,
            throttle_key_other_rate: d.throttle.key_other_rate,
            throttle_key_other_burst: d.throttle.key_other_burst,
            throttle_code_requests: d.throttle.code_requests,
            throttle_code_request_window: dur(d.throttle.code_request_window),
            throttle_ipv6_prefix: d.throttle.ipv6_prefix,
            throttle_device_lifetime: dur(d.throttle.device_lifetime),
            scopes: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Reads defaults, then `file` (if given), then the environment. Refuses a setting
    /// it does not know, in the file or as a `HALLPASS_*` variable, naming the closest
    /// known one.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_with_sources(file).map(|(config, _)| config)
    }

    /// [`Config::load`], also returning the merged sources, which know where each value
    /// came from (see [`crate::config_check`]).
    pub(crate) fn load_with_sources(file: Option<&Path>) -> anyhow::Result<(Self, Figment)> {
        crate::config_check::check_variable_names(
            std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()),
        )?;
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                bail!("config file {} does not exist", file.display());
            }
            crate::config_check::check_file_keys(file)?;
            fig = fig.merge(Toml::file_exact(file));
        }
        fig = fig.merge(
            Env::prefixed(ENV_PREFIX)
                .filter(|k| !crate::config_check::is_not_a_setting(k.as_str()))
                .split("__"),
        );
        let config: Config = fig.extract().map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        config.check()?;
        Ok((config, fig))
    }

    fn check(&self) -> anyhow::Result<()> {
        for name in self.scopes.keys() {
            Scope::parse(name).map_err(|e| anyhow::anyhow!("configuration: [scopes.{name}]: {e}"))?;
        }
        crate::oidc::ProviderSpec::all(self)?;
        crate::secret_key::check(self)?;
        let scheme = self.database_url.split_once(':').map_or("", |(s, _)| s);
        if !matches!(scheme, "sqlite" | "postgres" | "postgresql" | "mysql" | "mariadb") {
            bail!(
                "configuration: database_url must start with sqlite://, postgres:// or mysql:// (got {:?})",
                crate::serve::redact_url(&self.database_url)
            );
        }
        if self.body_limit < 1024 {
            bail!("configuration: body_limit must be at least 1024 bytes");
        }
        if self.max_session_data_bytes < 2 || self.max_user_extra_bytes < 2 {
            bail!(
                "configuration: max_session_data_bytes and max_user_extra_bytes must be at least 2 (`{{}}`)"
            );
        }
        self.settings()?;
        crate::mail::Mailer::from_config(self).map_err(|e| anyhow::anyhow!("configuration: {e:#}"))?;
        Ok(())
    }

    fn scope_settings(&self, over: &ScopeConfig) -> anyhow::Result<ScopeSettings> {
        let notify_new_device = over
            .mail
            .as_ref()
            .and_then(|m| m.notify_new_device)
            .or(self.mail.notify_new_device)
            .unwrap_or(false);
        let s = ScopeSettings {
            notify_new_device,
            session_idle_timeout: over.session_idle_timeout.unwrap_or(self.session_idle_timeout).to_time(),
            session_absolute_timeout: over
                .session_absolute_timeout
                .unwrap_or(self.session_absolute_timeout)
                .to_time(),
            require_confirmation: over.require_confirmation.unwrap_or(self.require_confirmation),
            require_mfa: over.require_mfa.unwrap_or(false),
            code_ttl: over.code_ttl.unwrap_or(self.code_ttl).to_time(),
            max_sessions_per_user: over.max_sessions_per_user.unwrap_or(self.max_sessions_per_user),
            min_password_score: over.min_password_score.unwrap_or(self.min_password_score),
            throttle: ThrottleSettings {
                enabled: over.throttle_enabled.unwrap_or(self.throttle_enabled),
                account_free_failures: over
                    .throttle_account_failures
                    .unwrap_or(self.throttle_account_failures),
                account_base_delay: over
                    .throttle_account_base_delay
                    .unwrap_or(self.throttle_account_base_delay)
                    .to_time(),
                account_max_delay: over
                    .throttle_account_max_delay
                    .unwrap_or(self.throttle_account_max_delay)
                    .to_time(),
                account_window: over
                    .throttle_account_window
                    .unwrap_or(self.throttle_account_window)
                    .to_time(),
                ip_max_failures: over.throttle_ip_failures.unwrap_or(self.throttle_ip_failures),
                ip_window: over.throttle_ip_window.unwrap_or(self.throttle_ip_window).to_time(),
                key_rate: over.throttle_key_rate.unwrap_or(self.throttle_key_rate),
                key_burst: over.throttle_key_burst.unwrap_or(self.throttle_key_burst),
                key_other_rate: over.throttle_key_other_rate.unwrap_or(self.throttle_key_other_rate),
                key_other_burst: over.throttle_key_other_burst.unwrap_or(self.throttle_key_other_burst),
                code_requests: over.throttle_code_requests.unwrap_or(self.throttle_code_requests),
                code_request_window: over
                    .throttle_code_request_window
                    .unwrap_or(self.throttle_code_request_window)
                    .to_time(),
                ipv6_prefix: over.throttle_ipv6_prefix.unwrap_or(self.throttle_ipv6_prefix),
                device_lifetime: over
                    .throttle_device_lifetime
                    .unwrap_or(self.throttle_device_lifetime)
                    .to_time(),
            },
            webauthn: None,
        };
        if s.throttle.ipv6_prefix > 128 {
            bail!("configuration: throttle_ipv6_prefix must be at most 128");
        }
        if s.throttle.ip_max_failures == 0 {
            bail!("configuration: throttle_ip_failures must be at least 1");
        }
        if s.throttle.account_max_delay < s.throttle.account_base_delay {
            bail!(
                "configuration: throttle_account_max_delay must not be shorter than throttle_account_base_delay"
            );
        }
        if s.max_sessions_per_user == 0 {
            bail!("configuration: max_sessions_per_user must be at least 1");
        }
        if s.min_password_score > hallpass_core::password::strength::MAX_SCORE {
            bail!("configuration: min_password_score must be between 0 and 4");
        }
        Ok(s)
    }

    /// The WebAuthn relying party of the admin page's own passkeys: the host of
    /// `public_url` when set (passkeys then work on that origin only); otherwise
    /// `localhost` on any port, the one name a browser treats as secure over plain HTTP
    /// (a page opened at `http://127.0.0.1:...` cannot use passkeys: an IP address is no
    /// relying party id).
    pub fn admin_relying_party(&self) -> hallpass_core::RelyingParty {
        let public = self.public_url.as_deref().and_then(|u| {
            let origin = crate::admin::origin_of(u)?;
            // The rp id is the host alone, without port.
            let host = crate::admin::host_only(origin.split_once("://")?.1).to_owned();
            Some((origin, host))
        });
        let (origins, rp_id, any_port) = match public {
            Some((origin, host)) => (vec![origin], host, false),
            None => (vec!["http://localhost".to_owned()], "localhost".to_owned(), true),
        };
        hallpass_core::RelyingParty { rp_id, rp_name: "hallpass admin".into(), origins, any_port }
    }

    /// The service settings this configuration describes.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut scopes = BTreeMap::new();
        for (name, over) in &self.scopes {
            let mut settings = self.scope_settings(over)?;
            if let Some(w) = &over.webauthn {
                let rp = hallpass_core::RelyingParty {
                    rp_id: w.rp_id.clone(),
                    rp_name: w.rp_name.clone().unwrap_or_else(|| w.rp_id.clone()),
                    origins: w.origins.clone(),
                    any_port: false,
                };
                rp.build().map_err(|e| anyhow::anyhow!("configuration: [scopes.{name}.webauthn]: {e}"))?;
                settings.webauthn = Some(rp);
            }
            scopes.insert(name.clone(), settings);
        }
        // The admins sign in with passkeys too: the relying party of the page itself.
        let mut admin = self.scope_settings(&ScopeConfig::default())?;
        admin.webauthn = Some(self.admin_relying_party());
        scopes.insert(Scope::ADMIN.to_owned(), admin);
        let hash_params = HashParams {
            m_cost: self.argon2_memory_kib,
            t_cost: self.argon2_iterations,
            p_cost: self.argon2_parallelism,
        };
        hash_params.validate().map_err(|e| anyhow::anyhow!("configuration: argon2 parameters: {e}"))?;
        let d = HashCeiling::for_params(hash_params);
        let argon2_m_cost = self.hash_ceiling_argon2_memory_kib.unwrap_or(d.argon2_m_cost);
        let hash_ceiling = HashCeiling {
            argon2_m_cost,
            argon2_t_cost: self.hash_ceiling_argon2_iterations.unwrap_or(d.argon2_t_cost),
            argon2_p_cost: self.hash_ceiling_argon2_parallelism.unwrap_or(d.argon2_p_cost),
            bcrypt_cost: self.hash_ceiling_bcrypt_cost.unwrap_or(d.bcrypt_cost),
            scrypt_memory_kib: self.hash_ceiling_scrypt_memory_kib.unwrap_or(u64::from(argon2_m_cost)),
            pbkdf2_rounds: self.hash_ceiling_pbkdf2_rounds.unwrap_or(d.pbkdf2_rounds),
        };
        Ok(Settings {
            default_scope: self.scope_settings(&ScopeConfig::default())?,
            scopes,
            hash_params,
            hash_threads: self.hash_threads,
            hash_queue_limit: self.hash_queue_limit,
            cache: CacheSettings {
                mode: match self.cache {
                    CacheConfig::Auto => CacheMode::Auto,
                    CacheConfig::On => CacheMode::On,
                    CacheConfig::Off => CacheMode::Off,
                },
                ttl: self.cache_ttl.0,
                capacity: self.cache_size,
                max_bytes: self.cache_max_bytes,
            },
            limits: Limits {
                max_session_data_bytes: self.max_session_data_bytes,
                max_user_extra_bytes: self.max_user_extra_bytes,
            },
            hash_ceiling: Some(hash_ceiling),
            mail: self.smtp_url.is_some(),
            webhook_secret_overlap: time::Duration::try_from(self.webhook_secret_overlap.0)
                .map_err(|_| anyhow::anyhow!("configuration: webhook_secret_overlap is too long"))?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(HumanDuration::parse("90s").unwrap().0.as_secs(), 90);
        assert_eq!(HumanDuration::parse("30m").unwrap().0.as_secs(), 1800);
        assert_eq!(HumanDuration::parse("24h").unwrap().0.as_secs(), 86400);
        assert_eq!(HumanDuration::parse("30d").unwrap().0.as_secs(), 30 * 86400);
        assert!(HumanDuration::parse("soon").is_err());
        for written in ["365d", "36h", "90m", "90s", "1d"] {
            assert_eq!(HumanDuration::parse(written).unwrap().to_string(), written);
        }
        assert!(HumanDuration::parse("0s").is_err());
        assert!(HumanDuration::parse("100y").is_ok());
        assert!(HumanDuration::parse("1000000y").is_err(), "would overflow expiry instants");
    }

    proptest::proptest! {
        #[test]
        fn duration_parsing_never_panics_and_accepts_only_positive_durations(s in "\\PC{0,40}") {
            if let Ok(d) = HumanDuration::parse(&s) {
                proptest::prop_assert!(!d.0.is_zero() && d.0 <= HumanDuration::MAX);
                let _ = d.to_time();
            }
        }

        #[test]
        fn an_accepted_duration_keeps_expiry_instants_representable(n in 1u64..=u64::MAX / 1_000_000, unit in proptest::sample::select(vec!["s", "m", "h", "d", "w", "y"])) {
            if let Ok(d) = HumanDuration::parse(&format!("{n}{unit}")) {
                let now = time::OffsetDateTime::now_utc();
                proptest::prop_assert!(now.checked_add(d.to_time()).is_some(), "{}{} overflows", n, unit);
            }
        }

        #[test]
        fn durations_survive_writing_and_reading(secs in 1u64..100 * 31_557_600, nanos in 0u32..1_000_000_000) {
            let d = std::time::Duration::new(secs, nanos);
            let written = humantime::format_duration(d).to_string();
            let read = HumanDuration::parse(&written);
            proptest::prop_assert_eq!(read.map(|r| r.0).ok(), Some(d), "{}", written);
            // What the configuration serialises it reads back.
            let json = serde_json::to_string(&HumanDuration(d)).expect("serialise");
            let back: HumanDuration = serde_json::from_str(&json).expect("deserialise");
            proptest::prop_assert_eq!(back.0, d);
        }

        #[test]
        fn units_mean_what_they_say(n in 1u64..=1_000_000, unit in proptest::sample::select(vec![("s", 1u64), ("m", 60), ("h", 3600), ("d", 86400)])) {
            let parsed = HumanDuration::parse(&format!("{n}{}", unit.0));
            if n * unit.1 > HumanDuration::MAX.as_secs() {
                proptest::prop_assert!(parsed.is_err());
            } else {
                let d = parsed.expect("a duration");
                proptest::prop_assert_eq!(d.0.as_secs(), n * unit.1);
                proptest::prop_assert_eq!(d.to_time().whole_seconds() as u64, n * unit.1);
            }
        }
    }

    #[test]
    fn file_then_environment_with_per_scope_overrides() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "h.toml",
                r#"
                listen = "127.0.0.1:9000"
                session_idle_timeout = "2h"
                [scopes.shop]
                session_idle_timeout = "10m"
                "#,
            )?;
            jail.set_env("HALLPASS_LISTEN", "127.0.0.1:0");
            jail.set_env("HALLPASS_SCOPES__SHOP__REQUIRE_CONFIRMATION", "true");
            let c = Config::load(Some(Path::new("h.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.listen, "127.0.0.1:0");
            let s = c.settings().map_err(|e| e.to_string())?;
            assert_eq!(s.default_scope.session_idle_timeout, time::Duration::hours(2));
            let shop = s.scope(&Scope::parse("shop").unwrap());
            assert_eq!(shop.session_idle_timeout, time::Duration::minutes(10));
            assert!(shop.require_confirmation);
            assert_eq!(shop.session_absolute_timeout, time::Duration::days(30));
            Ok(())
        });
    }

    #[test]
    fn a_scope_relying_party_is_read_and_checked() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "h.toml",
                r#"
                [scopes.shop.webauthn]
                rp_id = "example.com"
                origins = ["https://shop.example.com"]
                [scopes.bad.webauthn]
                rp_id = "example.com"
                origins = ["https://example.org"]
                "#,
            )?;
            // Refused when the file is read, saying which scope and why.
            let err = Config::load(Some(Path::new("h.toml"))).map(|_| ()).unwrap_err().to_string();
            assert!(err.contains("[scopes.bad.webauthn]") && err.contains("not on rp_id"), "{err}");
            jail.create_file(
                "h.toml",
                r#"
                [scopes.shop.webauthn]
                rp_id = "example.com"
                origins = ["https://shop.example.com"]
                "#,
            )?;
            let s = Config::load(Some(Path::new("h.toml")))
                .map_err(|e| e.to_string())?
                .settings()
                .map_err(|e| e.to_string())?;
            let rp = s.scope(&Scope::parse("shop").unwrap()).webauthn.clone().expect("a relying party");
            assert_eq!((rp.rp_id.as_str(), rp.rp_name.as_str()), ("example.com", "example.com"));
            assert!(s.default_scope.webauthn.is_none());
            Ok(())
        });
    }

    #[test]
    fn throttling_is_on_by_default_and_configurable_per_scope() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "h.toml",
                r#"
                throttle_account_failures = 5
                throttle_ip_window = "1h"
                [scopes.lab]
                throttle_enabled = false
                "#,
            )?;
            jail.set_env("HALLPASS_THROTTLE_ACCOUNT_MAX_DELAY", "2m");
            jail.set_env("HALLPASS_SCOPES__SHOP__THROTTLE_KEY_RATE", "0");
            let s = Config::load(Some(Path::new("h.toml")))
                .map_err(|e| e.to_string())?
                .settings()
                .map_err(|e| e.to_string())?;
            let d = &s.default_scope.throttle;
            assert!(d.enabled);
            assert_eq!(d.account_free_failures, 5);
            assert_eq!(d.account_max_delay, time::Duration::minutes(2));
            assert_eq!(d.ip_window, time::Duration::hours(1));
            assert_eq!(d.ip_max_failures, 100);
            assert_eq!((d.key_rate, d.key_other_rate), (200, 0));
            assert!(!s.scope(&Scope::parse("lab").unwrap()).throttle.enabled);
            let shop = &s.scope(&Scope::parse("shop").unwrap()).throttle;
            assert_eq!((shop.key_rate, shop.account_free_failures), (0, 5));
            Ok(())
        });
        assert_eq!(Config::default().settings().unwrap().default_scope.throttle, ThrottleSettings::default());
    }

    #[test]
    fn min_password_score_has_a_default_a_top_level_value_and_scope_overrides() {
        assert_eq!(Config::default().min_password_score, 3);
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "h.toml",
                r#"
                min_password_score = 2
                [scopes.bank]
                min_password_score = 4
                [scopes.shop]
                code_ttl = "15m"
                "#,
            )?;
            jail.set_env("HALLPASS_SCOPES__LAB__MIN_PASSWORD_SCORE", "0");
            let s = Config::load(Some(Path::new("h.toml")))
                .map_err(|e| e.to_string())?
                .settings()
                .map_err(|e| e.to_string())?;
            assert_eq!(s.default_scope.min_password_score, 2);
            assert_eq!(s.scope(&Scope::parse("bank").unwrap()).min_password_score, 4);
            assert_eq!(
                s.scope(&Scope::parse("shop").unwrap()).min_password_score,
                2,
                "falls back to the top level"
            );
            assert_eq!(s.scope(&Scope::parse("lab").unwrap()).min_password_score, 0);
            jail.set_env("HALLPASS_MIN_PASSWORD_SCORE", "4");
            let c = Config::load(Some(Path::new("h.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.min_password_score, 4, "the environment wins");
            jail.set_env("HALLPASS_MIN_PASSWORD_SCORE", "5");
            let e = Config::load(None).unwrap_err().to_string();
            assert!(e.contains("min_password_score"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn caps_and_the_hash_ceiling_have_defaults_and_follow_the_environment() {
        let s = Config::default().settings().unwrap();
        assert_eq!((s.limits.max_session_data_bytes, s.limits.max_user_extra_bytes), (16384, 65536));
        assert_eq!(s.cache.max_bytes, 100 << 20);
        let c = s.hash_ceiling();
        assert_eq!(
            (c.argon2_m_cost, c.argon2_t_cost, c.bcrypt_cost, c.pbkdf2_rounds),
            (77824, 8, 14, 2_000_000)
        );
        figment::Jail::expect_with(|jail| {
            jail.set_env("HALLPASS_MAX_SESSION_DATA_BYTES", "1024");
            jail.set_env("HALLPASS_HASH_CEILING_ARGON2_MEMORY_KIB", "262144");
            jail.set_env("HALLPASS_HASH_CEILING_BCRYPT_COST", "12");
            let s = Config::load(None).map_err(|e| e.to_string())?.settings().map_err(|e| e.to_string())?;
            assert_eq!(s.limits.max_session_data_bytes, 1024);
            let c = s.hash_ceiling();
            assert_eq!((c.argon2_m_cost, c.scrypt_memory_kib, c.bcrypt_cost), (262144, 262144, 12));
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_refused_with_the_name() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HALLPASS_SESSION_IDLE_TIMEOUT", "forever");
            let e = Config::load(None).unwrap_err().to_string();
            assert!(e.to_lowercase().contains("session_idle_timeout"), "{e}");
            Ok(())
        });
    }
}
