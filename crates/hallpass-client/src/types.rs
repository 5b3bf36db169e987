//! The requests and answers of the HTTP API, as `docs/openapi.json` describes them.
//! Answers ignore fields they do not know (a newer server may add some); requests send only
//! the fields that are set.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// `Debug` for a type with secrets (tokens, passwords, codes): those fields print as
/// `***` when set (house rule: a secret never reaches a log through `{:?}`).
macro_rules! redacted_debug {
    ($name:ident { $($plain:ident,)* } secret { $($secret:ident,)* }) => {
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut d = f.debug_struct(stringify!($name));
                $(d.field(stringify!($plain), &self.$plain);)*
                $(d.field(stringify!($secret), &Redacted(&self.$secret));)*
                d.finish()
            }
        }
    };
}

/// Prints `***` for a set secret (`None` stays visible: it says nothing).
struct Redacted<'a, T>(&'a T);

impl<T: RedactedValue> std::fmt::Debug for Redacted<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_set() { f.write_str("***") } else { f.write_str("None") }
    }
}

/// Whether a secret field holds anything.
trait RedactedValue {
    fn is_set(&self) -> bool;
}

impl RedactedValue for String {
    fn is_set(&self) -> bool {
        true
    }
}

impl<T> RedactedValue for Option<T> {
    fn is_set(&self) -> bool {
        self.is_some()
    }
}

impl<T> RedactedValue for Vec<T> {
    fn is_set(&self) -> bool {
        true
    }
}

/// A JSON object (a user's `extra`, a session's `data`).
pub type Object = Map<String, Value>;

/// Where a user stands with email confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmationState {
    /// A confirmation mail was taken by the mail server.
    Pending,
    /// The latest could not be delivered.
    Failed,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Server-generated UUIDv7.
    pub id: Uuid,
    /// As typed at registration.
    pub username: Option<String>,
    /// As typed.
    pub email: Option<String>,
    /// The application's grouping of users.
    pub group: String,
    /// The application's own data.
    pub extra: Object,
    /// An inactive user cannot log in and has no sessions.
    pub active: bool,
    /// Email confirmation in progress.
    pub confirmation: Option<ConfirmationState>,
    /// Whether the email was confirmed.
    pub confirmed: bool,
    /// Active, and confirmed where the scope requires confirmation.
    pub validated: bool,
    /// When the user was registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the user was last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When the user last logged in successfully.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
}

/// The end user's client as the backend reported it at login.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Browser or app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// A login session (never its token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// A handle (UUIDv7), not a credential.
    pub id: Uuid,
    /// Whose session.
    pub user_id: Uuid,
    /// When the login happened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The login or the last freshen.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Idle expiry, moved forward by freshen.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Hard expiry, never moved.
    #[serde(with = "time::serde::rfc3339")]
    pub absolute_expires_at: OffsetDateTime,
    /// The application's data on the session.
    pub data: Object,
    /// The client at login.
    pub client: Client,
    /// Authenticator assurance level: 2 after a second factor.
    pub aal: u32,
    /// How the login proved who it is (`pwd`, `otp`, ...).
    pub amr: Vec<String>,
}

impl Session {
    /// The earlier of the idle and the absolute expiry.
    pub fn ends_at(&self) -> OffsetDateTime {
        self.expires_at.min(self.absolute_expires_at)
    }
}

/// `GET /v1/session`: a session and its user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionWithUser {
    /// The session.
    pub session: Session,
    /// Its user.
    pub user: User,
}

/// A session alone (freshen, set data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionResponse {
    /// The session.
    pub session: Session,
}

/// A user's sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionList {
    /// The valid sessions, newest first.
    pub sessions: Vec<Session>,
}

/// The provider side of a login through a linked provider.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuth {
    /// The provider.
    pub provider: String,
    /// The user's id at the provider.
    pub client_id: String,
    /// The stored access token.
    pub access_token: Option<String>,
    /// When it expires, in Unix seconds.
    pub access_token_expiry: Option<i64>,
    /// Whether it has expired by the server clock.
    pub access_token_expired: bool,
    /// The stored refresh token.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// What a login returns beside the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Login {
    /// The user.
    pub user_id: Uuid,
    /// The user's username.
    pub username: Option<String>,
    /// The user's email.
    pub email: Option<String>,
    /// The user's group.
    pub group: String,
    /// The user's extra.
    pub extra: Object,
    /// The scope of the API key.
    pub scope: String,
    /// Whether the user is active.
    pub active: bool,
    /// The confirmation state.
    pub confirmation: Option<ConfirmationState>,
    /// Active and (where required) confirmed.
    pub validated: bool,
    /// Set when the login went through a provider.
    #[serde(default)]
    pub oauth: Option<OAuth>,
    /// The scope requires a second factor the user has not enrolled yet.
    #[serde(default)]
    pub mfa_enrollment_required: bool,
    /// Recovery codes left, when the login used one.
    #[serde(default)]
    pub recovery_codes_remaining: Option<u32>,
}

/// A successful login.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// The session token: send it as `X-Session-Token`. Shown once.
    pub token: String,
    /// The new session.
    pub session: Session,
    /// The login object.
    pub login: Login,
    /// This browser's device token (keep it in a long-lived cookie, send it back as
    /// `client.device`).
    pub device: String,
}

/// What a login answers instead of a session when the user has a second factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MfaChallenge {
    /// Always `true`.
    pub mfa_required: bool,
    /// The challenge to answer with [`crate::Client::answer_mfa`].
    pub challenge: String,
    /// The factors that may answer it.
    pub methods: Vec<String>,
    /// When the challenge ends.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Passkey options, when a passkey may answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

/// What `POST /v1/sessions` answered.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginOutcome {
    /// A session was made.
    Session(Box<LoginResponse>),
    /// The user has a second factor: answer the challenge.
    MfaRequired(MfaChallenge),
}

impl LoginOutcome {
    /// The session, or `None` when a second factor is required.
    pub fn session(self) -> Option<LoginResponse> {
        match self {
            LoginOutcome::Session(s) => Some(*s),
            LoginOutcome::MfaRequired(_) => None,
        }
    }
}

/// The end user's client on a login.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginClient {
    /// IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Browser or app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The device token an earlier login from this browser answered with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// `POST /v1/sessions`. Build one with [`LoginRequest::password`], [`LoginRequest::email_code`]
/// or [`LoginRequest::provider`], then add `data` or `client`.
///
/// ```
/// use hallpass_client::{LoginClient, LoginRequest};
/// let req = LoginRequest::password("ada", "analytical engine 1843")
///     .client(LoginClient { ip: Some("203.0.113.7".into()), ..Default::default() });
/// let json = serde_json::to_value(&req).unwrap();
/// assert_eq!(json, serde_json::json!({
///     "login": "ada", "password": "analytical engine 1843", "client": { "ip": "203.0.113.7" }
/// }));
/// ```
#[derive(Clone, Default, Serialize)]
pub struct LoginRequest {
    /// A username or an email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// A username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// An email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// An emailed sign-in code, with `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A provider, with `client_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The user's id at the provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Initial session data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Object>,
    /// The end user's client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<LoginClient>,
}

impl LoginRequest {
    /// `{login, password}`: `login` is a username or an email.
    pub fn password(login: impl Into<String>, password: impl Into<String>) -> Self {
        LoginRequest { login: Some(login.into()), password: Some(password.into()), ..Default::default() }
    }

    /// `{email, code}` with the code `POST /v1/email-codes` mailed.
    pub fn email_code(email: impl Into<String>, code: impl Into<String>) -> Self {
        LoginRequest { email: Some(email.into()), code: Some(code.into()), ..Default::default() }
    }

    /// `{provider, client_id}` for a provider link the backend has verified.
    pub fn provider(provider: impl Into<String>, client_id: impl Into<String>) -> Self {
        LoginRequest {
            provider: Some(provider.into()),
            client_id: Some(client_id.into()),
            ..Default::default()
        }
    }

    /// With initial session data.
    pub fn data(mut self, data: Object) -> Self {
        self.data = Some(data);
        self
    }

    /// With the end user's client.
    pub fn client(mut self, client: LoginClient) -> Self {
        self.client = Some(client);
        self
    }
}

/// `POST /v1/sessions/mfa`: the challenge and exactly one factor.
#[derive(Clone, Default, Serialize)]
pub struct MfaLoginRequest {
    /// The challenge a login answered.
    pub challenge: String,
    /// A TOTP code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
    /// One of the user's recovery codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
    /// A passkey assertion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passkey: Option<Value>,
}

/// `POST /v1/users`: a new user (a username or an email is required).
#[derive(Clone, Default, Serialize)]
pub struct RegisterRequest {
    /// Username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Password (else the user logs in only through a provider or a code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Group (default `"default"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The application's own data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<Object>,
    /// Default `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// `PATCH /v1/users/{ref}`: only the fields set change. `Some(None)` removes a username
/// or email.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdateUserRequest {
    /// New username, or `Some(None)` to remove it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<Option<String>>,
    /// New email, or `Some(None)` to remove it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<Option<String>>,
    /// New group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// New extra (replaces the old object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<Object>,
    /// New active flag (`false` ends every session of the user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// `GET /v1/users` filters.
#[derive(Debug, Clone, Default)]
pub struct ListUsers {
    /// Search in usernames and emails.
    pub query: Option<String>,
    /// Only this group.
    pub group: Option<String>,
    /// Only active (or inactive) users.
    pub active: Option<bool>,
    /// Page size.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserList {
    /// The users, by id.
    pub users: Vec<User>,
    /// The cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// A fresh reset code.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ResetCode {
    /// The single-use code; shown once.
    pub code: String,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// For whom.
    pub user_id: Uuid,
}

/// What `POST /v1/users/{ref}/confirmation` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfirmationResponse {
    /// The user's confirmation state.
    pub confirmation: Option<ConfirmationState>,
}

/// A user's link to a provider.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The provider.
    pub provider: String,
    /// The user's id at the provider.
    pub client_id: String,
    /// The provider's access token.
    pub access_token: Option<String>,
    /// When it expires, in Unix seconds.
    pub access_token_expiry: Option<i64>,
    /// Whether it has expired by the server clock.
    pub access_token_expired: bool,
    /// The provider's refresh token, kept for the application.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Why hallpass's last refresh of the expired access token failed, if it did.
    #[serde(default)]
    pub refresh_error: Option<String>,
    /// When the link was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `PUT /v1/users/{ref}/providers/{provider}`.
#[derive(Clone, Default, Serialize)]
pub struct LinkProviderRequest {
    /// The user's id at the provider.
    pub client_id: String,
    /// The provider's access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Expiry in Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_expiry: Option<i64>,
    /// Seconds from now until it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    /// The provider's refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// `PATCH /v1/users/{ref}/providers/{provider}`: `Some(None)` clears.
#[derive(Clone, Default, Serialize)]
pub struct UpdateProviderRequest {
    /// New access token, or `Some(None)` to clear it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Option<String>>,
    /// New expiry (Unix seconds), or `Some(None)` to clear it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_expiry: Option<Option<i64>>,
    /// Seconds from now until it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    /// New refresh token, or `Some(None)` to clear it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Option<String>>,
}

/// One login attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginEvent {
    /// UUIDv7.
    pub id: Uuid,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `password`, `email_code`, `provider:<name>`, `oidc:<name>`, ...
    pub method: String,
    /// `success`, `wrong_password`, ...
    pub outcome: String,
    /// The session made, on success.
    pub session_id: Option<Uuid>,
    /// The end user's IP as reported.
    pub ip: Option<String>,
    /// The end user's client as reported.
    pub user_agent: Option<String>,
}

/// A page of login events, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventList {
    /// The events.
    pub events: Vec<LoginEvent>,
    /// The cursor of the next page.
    pub next_cursor: Option<String>,
}

/// Logins in one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatBucket {
    /// Start of the bucket.
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    /// Successful logins.
    pub logins: u64,
    /// Distinct users.
    pub users: u64,
}

/// Login statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginStats {
    /// Oldest first, empty ones included.
    pub buckets: Vec<StatBucket>,
}

/// A pending TOTP, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpEnrolment {
    /// Base32 secret.
    pub secret: String,
    /// `otpauth://totp/...`.
    pub otpauth_uri: String,
}

/// Ten recovery codes, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodes {
    /// The codes.
    pub recovery_codes: Vec<String>,
}

/// A passkey ceremony started: the flow to finish it with and the options for the
/// browser (`navigator.credentials.create` or `.get`, binary fields in base64url).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasskeyOptions {
    /// Send it back to the ceremony's `finish` (single use, 5 minutes).
    pub flow: String,
    /// `{"publicKey": {...}}`.
    pub options: Value,
}

/// A registered passkey (hallpass keeps only its public key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passkey {
    /// Its id.
    pub id: Uuid,
    /// The name the user gave it.
    pub name: String,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last signed in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Whether the authenticator may synchronise it to other devices.
    pub backup_eligible: bool,
    /// Whether it is synchronised now.
    pub backup_state: bool,
}

/// `POST /v1/passkeys/login/finish`: the flow and the browser's assertion.
#[derive(Clone, Default, Serialize)]
pub struct PasskeyLoginRequest {
    /// The `flow` of [`crate::Client::passkey_login_start`].
    pub flow: String,
    /// The `PublicKeyCredential` of `navigator.credentials.get`, as JSON.
    pub credential: Value,
    /// Initial session data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// The end user's client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<LoginClient>,
}

/// A webhook endpoint of the key's scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// The events it receives.
    pub events: Vec<String>,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Until when the secret before the last rotation still signs too.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub previous_secret_until: Option<OffsetDateTime>,
}

/// A new (or rotated) endpoint with its `whsec_` secret, shown this once.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The signing secret.
    pub secret: String,
}

impl std::fmt::Debug for WebhookWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookWithSecret").field("webhook", &self.webhook).field("secret", &"***").finish()
    }
}

/// `PATCH /v1/webhooks/{id}`: only the fields set change (`description: Some(None)` clears it).
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdateWebhookRequest {
    /// New URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// New events (replacing the old list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// New description, or `Some(None)` to clear it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
}

/// One delivery of an event to an endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Its id: the `webhook-id` header of every attempt.
    pub id: Uuid,
    /// The event's type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// `queued`, `sending`, `in_doubt`, `sent` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When the next attempt is due (queued only).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The last attempt's HTTP status.
    #[serde(default)]
    pub last_status_code: Option<u16>,
    /// The last attempt's error.
    #[serde(default)]
    pub last_error: Option<String>,
    /// The last attempt's response time in milliseconds.
    #[serde(default)]
    pub response_ms: Option<u64>,
    /// When the event happened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was delivered.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
}

/// A page of deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryList {
    /// Newest first.
    pub deliveries: Vec<Delivery>,
    /// Pass as `cursor` for the next page; `None` on the last.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// Where to send the browser for an OIDC sign-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OidcStart {
    /// The provider's authorization URL.
    pub authorize_url: String,
    /// When the flow expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `POST /v1/oidc/exchange`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OidcExchangeRequest {
    /// The one-time code the browser brought back.
    pub code: String,
    /// Initial session data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Object>,
    /// The end user's client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<LoginClient>,
}

/// What an OIDC exchange ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum OidcOutcome {
    /// A login.
    Session(Box<LoginResponse>),
    /// A link flow: the identity.
    Linked(Identity),
    /// The user has a second factor.
    MfaRequired(MfaChallenge),
}

/// The health probes' answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `bucket` of the login statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Hourly.
    Hour,
    /// Daily.
    Day,
}

redacted_debug!(LoginResponse { session, login, } secret { token, device, });

redacted_debug!(LoginRequest { login, username, email, provider, client_id, data, client, } secret { password, code, });

redacted_debug!(MfaLoginRequest { challenge, } secret { totp, recovery_code, passkey, });

redacted_debug!(RegisterRequest { username, email, group, extra, active, } secret { password, });

redacted_debug!(ResetCode { expires_at, user_id, } secret { code, });

redacted_debug!(TotpEnrolment { } secret { secret, otpauth_uri, });

redacted_debug!(RecoveryCodes { } secret { recovery_codes, });

redacted_debug!(OAuth { provider, client_id, access_token_expiry, access_token_expired, } secret { access_token, refresh_token, });

redacted_debug!(Identity { provider, client_id, access_token_expiry, access_token_expired, refresh_error, created_at, updated_at, } secret { access_token, refresh_token, });

redacted_debug!(LinkProviderRequest { client_id, access_token_expiry, expires_in, } secret { access_token, refresh_token, });

redacted_debug!(UpdateProviderRequest { access_token_expiry, expires_in, } secret { access_token, refresh_token, });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let req = LoginRequest::password("ada", "hunter2 hunter2");
        let shown = format!("{req:?}");
        assert!(shown.contains("ada") && shown.contains("***") && !shown.contains("hunter2"), "{shown}");
        let codes = RecoveryCodes { recovery_codes: vec!["abcd-efgh".into()] };
        assert!(!format!("{codes:?}").contains("abcd"));
    }
}
