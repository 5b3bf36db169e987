//! The records the service hands out and storage keeps. Plain data: no HTTP shapes here
//! (the server maps these to its JSON), and no secret in clear but the one-time values the
//! service returns to the caller exactly once.

use crate::secret::TokenHash;
use crate::types::{ClientId, Email, Group, JsonObject, ProviderName, Scope, Username};
use time::OffsetDateTime;
use uuid::Uuid;

pub use crate::patch::UserPatch;

/// Where a user stands with email confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// A confirmation was sent and not yet redeemed.
    Pending,
    /// Delivering the confirmation failed.
    Failed,
}

impl Confirmation {
    /// The stable name used in storage and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Failed => "failed",
        }
    }
    /// Reads a stored name.
    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A user account, as the API shows it (no password hash).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Server-generated UUIDv7.
    pub id: Uuid,
    /// The scope the user belongs to.
    pub scope: Scope,
    /// Unique within the scope after normalisation.
    pub username: Option<Username>,
    /// Unique within the scope after normalisation.
    pub email: Option<Email>,
    /// The application's grouping of users.
    pub group: Group,
    /// The application's own data.
    pub extra: JsonObject,
    /// An inactive user cannot log in and has no sessions.
    pub active: bool,
    /// Email confirmation in progress, if any.
    pub confirmation: Option<Confirmation>,
    /// Whether the email was confirmed.
    pub confirmed: bool,
    /// When the user was registered.
    pub created_at: OffsetDateTime,
    /// When the user was last changed.
    pub updated_at: OffsetDateTime,
    /// When the user last logged in successfully.
    pub last_login_at: Option<OffsetDateTime>,
}

/// A user with the password hash storage keeps beside it. Never leaves the core.
#[derive(Clone)]
pub struct UserRecord {
    /// The user.
    pub user: User,
    /// PHC string of the password, if the user has one.
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("user", &self.user)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "***"))
            .finish()
    }
}

/// What the backend reported about the end user's client at login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The end user's IP address.
    pub ip: Option<String>,
    /// The end user's browser or app.
    pub user_agent: Option<String>,
}

/// A login session. The token that proves it is never stored; only its hash is.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// A handle (UUIDv7), not a credential.
    pub id: Uuid,
    /// Whose session.
    pub user_id: Uuid,
    /// The scope.
    pub scope: Scope,
    /// When the login happened.
    pub created_at: OffsetDateTime,
    /// Last login or freshen.
    pub last_seen_at: OffsetDateTime,
    /// Idle expiry, moved forward by freshen.
    pub expires_at: OffsetDateTime,
    /// Hard expiry, never moved.
    pub absolute_expires_at: OffsetDateTime,
    /// The application's data on the session.
    pub data: JsonObject,
    /// The client at login.
    pub client: ClientInfo,
    /// How the login proved who it is (RFC 8176 style): the first factor (`pwd`,
    /// `email_code`, `oidc`) and the second (`otp`, `recovery`), if any. Empty for
    /// sessions made before hallpass recorded it.
    pub amr: Vec<String>,
}

impl Session {
    /// The authenticator assurance level: 2 when a second factor was used, else 1.
    pub fn aal(&self) -> u8 {
        if self.amr.iter().any(|m| matches!(m.as_str(), "otp" | "recovery" | "passkey")) { 2 } else { 1 }
    }

    /// [`Session::amr`] as stored: comma-separated.
    pub fn amr_text(&self) -> String {
        self.amr.join(",")
    }

    /// [`Session::amr`] from its stored text.
    pub fn amr_from_text(text: &str) -> Vec<String> {
        text.split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect()
    }
}

/// A valid session with its user: what get-session answers. A cached copy hands out the
/// same view to every caller (an `Arc`, no copying), so what a caller renders of it can be
/// kept with it ([`SessionView::rendered`]).
#[derive(Debug)]
pub struct SessionView {
    /// The session.
    pub session: Session,
    /// Its user.
    pub user: User,
    rendered: std::sync::OnceLock<std::sync::Arc<[u8]>>,
}

impl SessionView {
    /// A view of `session` and its `user`.
    pub fn new(session: Session, user: User) -> Self {
        Self { session, user, rendered: std::sync::OnceLock::new() }
    }

    /// The caller's rendering of this view (e.g. the JSON of an HTTP answer), made by
    /// `render` on the first successful call and kept for the view's life. A view never
    /// changes: a change to the session or user makes a new view, so the rendering cannot
    /// go stale. `render` must depend on the view alone (and on settings fixed for the
    /// process).
    pub fn rendered<E>(
        &self,
        render: impl FnOnce(&Session, &User) -> std::result::Result<Vec<u8>, E>,
    ) -> std::result::Result<std::sync::Arc<[u8]>, E> {
        if let Some(kept) = self.rendered.get() {
            return Ok(std::sync::Arc::clone(kept));
        }
        let made: std::sync::Arc<[u8]> = render(&self.session, &self.user)?.into();
        // Two first callers may race; both renderings are the same bytes.
        Ok(std::sync::Arc::clone(self.rendered.get_or_init(|| made)))
    }
}

impl Session {
    /// The instant the session stops being valid unless ended earlier.
    pub fn valid_until(&self) -> OffsetDateTime {
        self.expires_at.min(self.absolute_expires_at)
    }
    /// Whether it is valid at `now` (it exists, so it was not ended).
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        now < self.valid_until()
    }
}

/// A session with the hash of its token, as storage keeps it.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// The session.
    pub session: Session,
    /// SHA-256 of the token.
    pub token_hash: TokenHash,
}

/// A user's identity at an OAuth/OIDC provider.
#[derive(Clone, PartialEq)]
pub struct Identity {
    /// Whose identity.
    pub user_id: Uuid,
    /// The scope.
    pub scope: Scope,
    /// The provider.
    pub provider: ProviderName,
    /// The user's id at the provider.
    pub client_id: ClientId,
    /// The provider's access token, kept for the application.
    pub access_token: Option<String>,
    /// When the access token expires.
    pub access_token_expiry: Option<OffsetDateTime>,
    /// The provider's refresh token, when a sign-in through hallpass received one. Like the
    /// access token, sealed by the server secret before it is stored (see
    /// `crate::server_secret`); the store keeps whatever text it is given.
    pub refresh_token: Option<String>,
    /// When the link was made.
    pub created_at: OffsetDateTime,
    /// When the link was last changed.
    pub updated_at: OffsetDateTime,
}

impl Identity {
    /// Whether the access token has expired at `now` (`false` when no expiry is known).
    pub fn access_token_expired(&self, now: OffsetDateTime) -> bool {
        self.access_token_expiry.is_some_and(|e| e <= now)
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("user_id", &self.user_id)
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field("access_token", &self.access_token.as_ref().map(|_| "***"))
            .field("access_token_expiry", &self.access_token_expiry)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// How a login proved who it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginMethod {
    /// Username or email and password.
    Password,
    /// A code sent by email.
    EmailCode,
    /// A provider link the backend vouches for.
    Provider(ProviderName),
    /// An OIDC sign-in through hallpass.
    Oidc(ProviderName),
}

impl LoginMethod {
    /// The authentication method reference of this first factor (`pwd`, `email_code`,
    /// `oidc`; a provider link the backend vouches for counts as `oidc`).
    pub fn amr(&self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::EmailCode => "email_code",
            Self::Provider(_) | Self::Oidc(_) => "oidc",
        }
    }

    /// The stable text form (`password`, `email_code`, `provider:<name>`, `oidc:<name>`).
    pub fn to_text(&self) -> String {
        match self {
            Self::Password => "password".into(),
            Self::EmailCode => "email_code".into(),
            Self::Provider(p) => format!("provider:{p}"),
            Self::Oidc(p) => format!("oidc:{p}"),
        }
    }
}

/// How a login attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A session was made.
    Success,
    /// The user exists; the password was wrong.
    WrongPassword,
    /// No such user.
    UnknownUser,
    /// The credentials were right but the user is inactive.
    Inactive,
    /// Refused by throttling before the credentials were checked.
    Throttled,
    /// A provider sign-in came back with an unknown, used or expired `state`.
    InvalidState,
    /// The provider refused to exchange its authorization code (or could not be reached).
    TokenExchangeFailed,
    /// The provider's ID token (or userinfo answer) did not validate.
    IdTokenInvalid,
    /// A provider identity linked to nobody where the scope does not create users.
    IdentityUnknown,
    /// The first factor was right; the second (a TOTP or recovery code) was wrong.
    WrongFactor,
    /// A passkey assertion did not verify (wrong origin, challenge, relying party or
    /// signature, or an unknown credential).
    InvalidPasskey,
    /// A passkey's signature counter went back: a cloned authenticator; refused.
    PasskeyCloned,
}

impl Outcome {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::WrongPassword => "wrong_password",
            Self::UnknownUser => "unknown_user",
            Self::Inactive => "inactive",
            Self::Throttled => "throttled",
            Self::InvalidState => "invalid_state",
            Self::TokenExchangeFailed => "token_exchange_failed",
            Self::IdTokenInvalid => "id_token_invalid",
            Self::IdentityUnknown => "identity_unknown",
            Self::WrongFactor => "wrong_factor",
            Self::InvalidPasskey => "invalid_passkey",
            Self::PasskeyCloned => "passkey_cloned",
        }
    }
    /// Reads a stored name.
    pub fn from_stored(s: &str) -> Option<Self> {
        Some(match s {
            "success" => Self::Success,
            "wrong_password" => Self::WrongPassword,
            "unknown_user" => Self::UnknownUser,
            "inactive" => Self::Inactive,
            "throttled" => Self::Throttled,
            "invalid_state" => Self::InvalidState,
            "token_exchange_failed" => Self::TokenExchangeFailed,
            "id_token_invalid" => Self::IdTokenInvalid,
            "identity_unknown" => Self::IdentityUnknown,
            "wrong_factor" => Self::WrongFactor,
            "invalid_passkey" => Self::InvalidPasskey,
            "passkey_cloned" => Self::PasskeyCloned,
            _ => return None,
        })
    }
}

/// One login attempt, kept for operators.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginEvent {
    /// UUIDv7, time-ordered.
    pub id: Uuid,
    /// The scope.
    pub scope: Scope,
    /// The user, when one was found.
    pub user_id: Option<Uuid>,
    /// When.
    pub at: OffsetDateTime,
    /// `password`, `email_code`, `provider:<name>`, `oidc:<name>`.
    pub method: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The session made, on success.
    pub session_id: Option<Uuid>,
    /// The end user's IP as reported.
    pub ip: Option<String>,
    /// The end user's client as reported.
    pub user_agent: Option<String>,
}

/// What a login returns beside the session.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginInfo {
    /// The user.
    pub user_id: Uuid,
    /// The user's username.
    pub username: Option<String>,
    /// The user's email.
    pub email: Option<String>,
    /// The user's group.
    pub group: String,
    /// The user's extra.
    pub extra: JsonObject,
    /// The scope.
    pub scope: Scope,
    /// Whether the user is active.
    pub active: bool,
    /// The confirmation state.
    pub confirmation: Option<Confirmation>,
    /// Active and (where required) confirmed.
    pub validated: bool,
    /// Set when the login went through a provider.
    pub oauth: Option<OAuthInfo>,
    /// Set when the login used a recovery code: how many the user has left (0: the last
    /// was used; the user should make a new set).
    pub recovery_codes_remaining: Option<u32>,
    /// The scope requires a second factor ([`crate::ScopeSettings::require_mfa`]) and
    /// this user has none: the application should have the user enrol one.
    pub mfa_enrollment_required: bool,
}

/// The provider side of a login through a linked provider.
#[derive(Clone, PartialEq)]
pub struct OAuthInfo {
    /// The provider.
    pub provider: String,
    /// The user's id at the provider.
    pub client_id: String,
    /// The stored access token.
    pub access_token: Option<String>,
    /// Its expiry.
    pub access_token_expiry: Option<OffsetDateTime>,
    /// Whether it has expired by the server clock.
    pub access_token_expired: bool,
    /// The stored refresh token, when the provider gave one.
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for OAuthInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthInfo")
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field("access_token", &self.access_token.as_ref().map(|_| "***"))
            .field("access_token_expired", &self.access_token_expired)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    /// The key's id.
    pub id: Uuid,
    /// The one scope it reaches.
    pub scope: Scope,
    /// A label for people.
    pub name: Option<String>,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
    /// When it was last used, to within a minute or so (each process records a key's use
    /// at most once a minute, in the background: see [`crate::Hallpass::authenticate_key`]).
    /// `None`: never used, or made before hallpass kept this.
    pub last_used_at: Option<OffsetDateTime>,
}

/// What a one-time code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// Password reset.
    Reset,
    /// Email confirmation.
    Confirm,
    /// Email-code login.
    Login,
}

impl CodeKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reset => "reset",
            Self::Confirm => "confirm",
            Self::Login => "login",
        }
    }
}

/// A one-time code as stored (its hash only).
#[derive(Debug, Clone)]
pub struct CodeRecord {
    /// SHA-256 of the code.
    pub code_hash: TokenHash,
    /// The scope.
    pub scope: Scope,
    /// For whom.
    pub user_id: Uuid,
    /// For what.
    pub kind: CodeKind,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// Filters of a user listing.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Substring of the username or email, compared case-insensitively.
    pub query: Option<String>,
    /// Only this group.
    pub group: Option<String>,
    /// Only active (or only inactive) users.
    pub active: Option<bool>,
}

/// The width of a statistics bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

impl Bucket {
    /// Width in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }
}

/// Logins in one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatBucket {
    /// Start of the bucket.
    pub start: OffsetDateTime,
    /// Successful logins.
    pub logins: u64,
    /// Distinct users who logged in.
    pub users: u64,
}

/// A page of results and the cursor of the next page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts; `None` at the end.
    pub next_cursor: Option<String>,
}

/// One action of an admin of the web page, kept for the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// UUIDv7, time-ordered.
    pub id: Uuid,
    /// When.
    pub at: OffsetDateTime,
    /// The admin's username.
    pub admin: String,
    /// What was done, a stable snake_case name (`admin_login`, `user_update`, ...).
    pub action: String,
    /// The scope acted on, when the action is about one.
    pub scope: Option<Scope>,
    /// What was acted on (a user id, a key id, a session id), when there is one.
    pub target: Option<String>,
    /// More about the action (changed fields, counts); never a secret.
    pub detail: JsonObject,
}

/// The figures of one scope at an instant, for the admin dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeFigures {
    /// The scope.
    pub scope: Scope,
    /// Users of the scope.
    pub users: u64,
    /// Active users of the scope.
    pub active_users: u64,
    /// Sessions valid at the instant (`now < min(expires_at, absolute_expires_at)`).
    pub live_sessions: u64,
    /// Unrevoked API keys of the scope.
    pub api_keys: u64,
}

/// Login attempts of one outcome in one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeCount {
    /// Start of the bucket (a multiple of its width since the Unix epoch).
    pub start: OffsetDateTime,
    /// How the attempts ended.
    pub outcome: Outcome,
    /// How many.
    pub count: u64,
}
