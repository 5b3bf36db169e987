//! The JSON shapes of the HTTP API: request bodies and query strings (parsed here into the
//! core's typed inputs) and response bodies (built here from the core's records).
//!
//! This module owns the wire format and nothing else. Every request type refuses unknown
//! fields, so a typo is a 400 and never a silent no-op. Timestamps are RFC 3339 in UTC,
//! except a provider's `access_token_expiry`, which is Unix seconds as OAuth clients expect.
//! No type here can carry a password hash or a token hash: they have no field for one.

use hallpass_core::service::{Credentials, Expiry, LoginRequest as CoreLoginRequest, NewUser, TokenUpdate};
use hallpass_core::{
    Bucket, ClientId, ClientInfo, Confirmation, DeviceToken, Email, Error, Group, Hallpass, Identity,
    LoginEvent, LoginInfo, OAuthInfo, Outcome, Password, ProviderName, Session, StatBucket, User, UserFilter,
    UserPatch, UserRef, Username,
};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A JSON object (`extra` of a user, `data` of a session).
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Longest `client.user_agent` accepted, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 1024;

// ---------------------------------------------------------------------------- helpers

/// A secret a client sends (a password, a code). Its `Debug` prints `***`, so a request
/// logged by mistake shows no credential.
#[derive(Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// The text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Reads a field that may be absent (`None`), `null` (`Some(None)`) or a value.
/// Used with `#[serde(default)]` where `null` means "remove".
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Reads a field that may be absent but, when present, may not be `null`.
/// Used with `#[serde(default)]` where `null` has no meaning (a user's `group`, say).
fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

fn unix_seconds(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// Unix seconds a client sent, bounded to what RFC 3339 can show (years 1970 to 9999).
fn from_unix_seconds(field: &'static str, secs: i64) -> Result<OffsetDateTime, Error> {
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if !(0..=MAX).contains(&secs) {
        return Err(Error::invalid(field, "must be Unix seconds between 0 and 253402300799"));
    }
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| Error::invalid(field, "is out of range"))
}

// ---------------------------------------------------------------------------- users

/// Where a user stands with email confirmation.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ConfirmationState)]
pub enum ConfirmationDto {
    /// A confirmation was sent and not yet redeemed.
    Pending,
    /// Delivering the confirmation failed.
    Failed,
}

impl From<Confirmation> for ConfirmationDto {
    fn from(c: Confirmation) -> Self {
        match c {
            Confirmation::Pending => Self::Pending,
            Confirmation::Failed => Self::Failed,
        }
    }
}

/// A user account.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserDto {
    /// Server-generated UUIDv7.
    pub id: Uuid,
    /// As typed at registration; unique in the scope case-insensitively (after NFKC).
    #[schema(required = true)]
    pub username: Option<String>,
    /// As typed; unique in the scope after normalisation.
    #[schema(required = true)]
    pub email: Option<String>,
    /// The application's grouping of users.
    pub group: String,
    /// The application's own data.
    #[schema(value_type = Object)]
    pub extra: JsonObject,
    /// An inactive user cannot log in and has no sessions.
    pub active: bool,
    /// Email confirmation in progress: `pending`, `failed` or `null`.
    #[schema(required = true)]
    pub confirmation: Option<ConfirmationDto>,
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
    #[schema(required = true)]
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
}

impl UserDto {
    /// The JSON of a user (`validated` needs the scope's settings, hence the service).
    pub fn from_user(service: &Hallpass, u: &User) -> Self {
        Self {
            id: u.id,
            username: u.username.as_ref().map(|x| x.as_str().to_owned()),
            email: u.email.as_ref().map(|x| x.as_str().to_owned()),
            group: u.group.as_str().to_owned(),
            extra: u.extra.clone(),
            active: u.active,
            confirmation: u.confirmation.map(Into::into),
            confirmed: u.confirmed,
            validated: service.validated(u),
            created_at: u.created_at,
            updated_at: u.updated_at,
            last_login_at: u.last_login_at,
        }
    }
}

/// `POST /v1/users`: a new user. A username or an email is required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 1 to 64 characters, shown as typed and compared case-insensitively after Unicode
    /// NFKC. Refused (400 `invalid_request`), as typed and once normalised: spaces, '@', a
    /// UUID's shape; invisible, formatting, private-use and unassigned characters (general
    /// category C: controls, zero-width characters, BOM, soft hyphen, bidi marks, overrides
    /// and isolates, tag characters; and every Default_Ignorable_Code_Point: variation
    /// selectors, Hangul fillers; as in the PRECIS username profile, RFC 8265); and what a
    /// URL client would rewrite in a path segment: exactly `.` or `..`, and any of `/`,
    /// `\`, `?`, `#`, `%`. So a username always stands unchanged as `{ref}` in a path.
    pub username: Option<String>,
    /// An email address (at most 254 characters), shown as typed. Compared by its local
    /// part as typed and its domain mapped by UTS #46 (IDNA) to ASCII, so `Example.COM`,
    /// `ｅｘａｍｐｌｅ.com`, `bücher.example` and `xn--bcher-kva.example` compare as the
    /// domains they name. A domain IDNA refuses is 400 `invalid_request`.
    pub email: Option<String>,
    /// 8 to 256 characters, never truncated, and hard enough to guess for the scope's
    /// `min_password_score` (zxcvbn; the user's own username and email count for nothing):
    /// else 400 `weak_password` with advice. Without one the user logs in only through a
    /// provider or a code.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    /// Default `"default"`.
    pub group: Option<String>,
    /// The application's own data. Default `{}`.
    #[schema(value_type = Option<Object>)]
    pub extra: Option<JsonObject>,
    /// Default `true`.
    pub active: Option<bool>,
}

impl RegisterRequest {
    /// The core's typed input.
    pub fn into_domain(self) -> Result<NewUser, Error> {
        Ok(NewUser {
            username: self.username.as_deref().map(Username::parse).transpose()?,
            email: self.email.as_deref().map(Email::parse).transpose()?,
            password: self.password.as_ref().map(|p| Password::new(p.expose())).transpose()?,
            group: self.group.as_deref().map(Group::parse).transpose()?,
            extra: self.extra,
            active: self.active,
        })
    }
}

/// `PATCH /v1/users/{ref}`: only the fields present change. `username` or `email` set to
/// `null` removes it (a user keeps at least one). Setting `active` to `false` ends every
/// session of the user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// New username (the rules of registration's), or `null` to remove it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub username: Option<Option<String>>,
    /// New email, or `null` to remove it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// New group.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = String)]
    pub group: Option<String>,
    /// New extra; replaces the old object.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Object)]
    pub extra: Option<JsonObject>,
    /// New active flag.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = bool)]
    pub active: Option<bool>,
}

impl UpdateUserRequest {
    /// The core's typed patch.
    pub fn into_domain(self) -> Result<UserPatch, Error> {
        Ok(UserPatch {
            username: self.username.map(|u| u.as_deref().map(Username::parse).transpose()).transpose()?,
            email: self.email.map(|e| e.as_deref().map(Email::parse).transpose()).transpose()?,
            group: self.group.as_deref().map(Group::parse).transpose()?,
            extra: self.extra,
            active: self.active,
            confirmation: None,
            confirmed: None,
        })
    }
}

/// `GET /v1/users` query string.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListUsersQuery {
    /// Substring of the username or email, compared case-insensitively.
    pub query: Option<String>,
    /// Only users of this group.
    pub group: Option<String>,
    /// Only active (`true`) or inactive (`false`) users.
    pub active: Option<bool>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListUsersQuery {
    /// The core's filter.
    pub fn filter(&self) -> UserFilter {
        UserFilter {
            query: self.query.clone().filter(|q| !q.is_empty()),
            group: self.group.clone().filter(|g| !g.is_empty()),
            active: self.active,
        }
    }
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    /// The users, ordered by id (that is, by registration time).
    pub users: Vec<UserDto>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// `PUT /v1/users/{ref}/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    /// The new password: 8 to 256 characters, hard enough to guess for the scope's
    /// `min_password_score` (else 400 `weak_password` with advice).
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

// ---------------------------------------------------------------------------- sessions

/// The end user's client as the backend reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Client)]
pub struct ClientDto {
    /// The end user's IP address (IPv4 or IPv6).
    #[serde(default)]
    pub ip: Option<String>,
    /// The end user's browser or app, at most 1024 characters.
    #[serde(default)]
    pub user_agent: Option<String>,
}

impl ClientDto {
    fn into_domain(self) -> Result<ClientInfo, Error> {
        let ip = match self.ip {
            None => None,
            Some(s) => Some(
                s.trim()
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| Error::invalid("client.ip", "must be an IPv4 or IPv6 address"))?
                    .to_string(),
            ),
        };
        if let Some(ua) = &self.user_agent
            && (ua.chars().count() > MAX_USER_AGENT_CHARS || ua.chars().any(char::is_control))
        {
            return Err(Error::invalid(
                "client.user_agent",
                "must be at most 1024 characters without control characters",
            ));
        }
        Ok(ClientInfo { ip, user_agent: self.user_agent })
    }

    fn from_domain(c: &ClientInfo) -> Self {
        Self { ip: c.ip.clone(), user_agent: c.user_agent.clone() }
    }
}

/// The end user's client on a login: what the backend reports, and the device token an
/// earlier login of this browser answered with.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LoginClient)]
pub struct LoginClientDto {
    /// The end user's IP address (IPv4 or IPv6).
    #[serde(default)]
    pub ip: Option<String>,
    /// The end user's browser or app, at most 1024 characters.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// The `device` token an earlier successful login from this browser answered with
    /// (keep it in a long-lived cookie). Failed logins from unknown devices throttle
    /// unknown devices only: a device that has logged in as the user keeps its own
    /// attempts, so nobody can lock the owner out. Anything but a token hallpass issued is
    /// 400 `invalid_request`.
    #[serde(default)]
    pub device: Option<String>,
}

impl LoginClientDto {
    /// The client and the device token, checked.
    pub(crate) fn into_domain(self) -> Result<(ClientInfo, Option<DeviceToken>), Error> {
        let device = match self.device {
            None => None,
            Some(d) => Some(DeviceToken::parse(d.trim()).ok_or_else(|| {
                Error::invalid("client.device", "must be a device token a login of hallpass answered with")
            })?),
        };
        let client = ClientDto { ip: self.ip, user_agent: self.user_agent }.into_domain()?;
        Ok((client, device))
    }
}

/// A login session. The token is never part of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionDto {
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
    #[schema(value_type = Object)]
    pub data: JsonObject,
    /// The client at login.
    pub client: ClientDto,
    /// The authenticator assurance level: 2 when the login used a second factor, else 1.
    pub aal: u8,
    /// How the login proved who it is: the first factor (`pwd`, `email_code`, `oidc`) and
    /// the second (`otp`, `recovery`), if any; empty for sessions made before hallpass
    /// recorded it.
    pub amr: Vec<String>,
}

impl From<&Session> for SessionDto {
    fn from(s: &Session) -> Self {
        Self {
            id: s.id,
            user_id: s.user_id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            absolute_expires_at: s.absolute_expires_at,
            data: s.data.clone(),
            client: ClientDto::from_domain(&s.client),
            aal: s.aal(),
            amr: s.amr.clone(),
        }
    }
}

/// `POST /v1/sessions`: a login. Give exactly one of these shapes:
/// `{login, password}` (login is a username or an email), `{username, password}`,
/// `{email, password}`, or `{provider, client_id}` for a provider link the calling backend
/// has verified, or `{email, code}` with the code `POST /v1/email-codes` mailed. `data` and
/// `client` may come with any of them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// A username or an email.
    pub login: Option<String>,
    /// A username.
    pub username: Option<String>,
    /// An email.
    pub email: Option<String>,
    /// The password, with `login`, `username` or `email`.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    /// The emailed sign-in code (6 to 8 digits), with `email` (event method `email_code`).
    #[schema(value_type = Option<String>, format = Password)]
    pub code: Option<SecretString>,
    /// A provider name, with `client_id`.
    pub provider: Option<String>,
    /// The user's id at the provider, with `provider`.
    pub client_id: Option<String>,
    /// Initial session data. Default `{}`.
    #[schema(value_type = Option<Object>)]
    pub data: Option<JsonObject>,
    /// The end user's client, and the device token of this browser.
    pub client: Option<LoginClientDto>,
}

fn bounded(field: &'static str, s: &str) -> Result<(), Error> {
    let s = s.trim();
    if s.is_empty() || s.len() > 320 {
        return Err(Error::invalid(field, "must be 1 to 320 characters"));
    }
    Ok(())
}

impl LoginRequest {
    /// The core's typed login.
    pub fn into_domain(self) -> Result<CoreLoginRequest, Error> {
        let LoginRequest { login, username, email, password, code, provider, client_id, data, client } = self;
        let named = [login.is_some(), username.is_some(), email.is_some()].iter().filter(|x| **x).count();
        let credentials = match (provider, client_id) {
            _ if code.is_some() => {
                let (Some(email), 1, None) = (email, named, &password) else {
                    return Err(Error::invalid("code", "a code login takes `email` and `code` only"));
                };
                let email = Email::parse(&email)?;
                let code = code.map(|c| c.expose().trim().to_owned()).unwrap_or_default();
                if code.is_empty() || code.len() > 16 {
                    return Err(Error::invalid("code", "must be the digits of the mailed code"));
                }
                Credentials::EmailCode { email, code }
            }
            (None, None) => {
                let login = match (login, username, email) {
                    _ if named > 1 => {
                        return Err(Error::invalid(
                            "login",
                            "give only one of `login`, `username` and `email`",
                        ));
                    }
                    (Some(l), _, _) => UserRef::login(&l)?,
                    (_, Some(u), _) => {
                        bounded("username", &u)?;
                        UserRef::Username(Username::key_of(&u))
                    }
                    (_, _, Some(e)) => {
                        bounded("email", &e)?;
                        UserRef::Email(Email::key_of(&e))
                    }
                    (None, None, None) => {
                        return Err(Error::invalid(
                            "login",
                            "give `login`, `username` or `email` with `password`, or `provider` with `client_id`",
                        ));
                    }
                };
                let password = password.ok_or_else(|| Error::invalid("password", "is required"))?;
                Credentials::Password { login, password: Password::for_login(password.expose())? }
            }
            (Some(p), Some(c)) => {
                if named > 0 || password.is_some() {
                    return Err(Error::invalid(
                        "provider",
                        "a provider login takes no `login`, `username`, `email` or `password`",
                    ));
                }
                Credentials::Provider { provider: ProviderName::parse(&p)?, client_id: ClientId::parse(&c)? }
            }
            (Some(_), None) => return Err(Error::invalid("client_id", "is required with `provider`")),
            (None, Some(_)) => return Err(Error::invalid("provider", "is required with `client_id`")),
        };
        let (client, device) = client.map(LoginClientDto::into_domain).transpose()?.unwrap_or_default();
        Ok(CoreLoginRequest { credentials, data: data.unwrap_or_default(), client, device })
    }
}

/// The provider side of a login through a linked provider.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = OAuth)]
pub struct OAuthDto {
    /// The provider.
    pub provider: String,
    /// The user's id at the provider.
    pub client_id: String,
    /// The stored access token.
    #[schema(required = true)]
    pub access_token: Option<String>,
    /// When it expires, in Unix seconds.
    #[schema(required = true)]
    pub access_token_expiry: Option<i64>,
    /// Whether it has expired by the server clock.
    pub access_token_expired: bool,
    /// The provider's refresh token, when it gave one (ask for `offline_access`).
    #[schema(required = true)]
    pub refresh_token: Option<String>,
}

impl From<&OAuthInfo> for OAuthDto {
    fn from(o: &OAuthInfo) -> Self {
        Self {
            provider: o.provider.clone(),
            client_id: o.client_id.clone(),
            access_token: o.access_token.clone(),
            access_token_expiry: o.access_token_expiry.map(unix_seconds),
            access_token_expired: o.access_token_expired,
            refresh_token: o.refresh_token.clone(),
        }
    }
}

/// What a login returns beside the session.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Login)]
pub struct LoginDto {
    /// The user.
    pub user_id: Uuid,
    /// The user's username.
    #[schema(required = true)]
    pub username: Option<String>,
    /// The user's email.
    #[schema(required = true)]
    pub email: Option<String>,
    /// The user's group.
    pub group: String,
    /// The user's extra.
    #[schema(value_type = Object)]
    pub extra: JsonObject,
    /// The scope of the API key.
    pub scope: String,
    /// Whether the user is active.
    pub active: bool,
    /// The confirmation state.
    #[schema(required = true)]
    pub confirmation: Option<ConfirmationDto>,
    /// Active and (where the scope requires it) confirmed.
    pub validated: bool,
    /// Set when the login went through a provider, else `null`.
    #[schema(required = true)]
    pub oauth: Option<OAuthDto>,
    /// Set when the login used a recovery code: how many the user has left (`0`: that was
    /// the last one; make a new set with `POST /v1/users/{ref}/mfa/recovery-codes`). Else
    /// `null`.
    #[schema(required = true)]
    pub recovery_codes_remaining: Option<u32>,
    /// `true` when the scope sets `require_mfa` and the user has no second factor yet:
    /// have the user enrol one (`POST /v1/users/{ref}/mfa/totp`).
    pub mfa_enrollment_required: bool,
}

impl From<&LoginInfo> for LoginDto {
    fn from(l: &LoginInfo) -> Self {
        Self {
            user_id: l.user_id,
            username: l.username.clone(),
            email: l.email.clone(),
            group: l.group.clone(),
            extra: l.extra.clone(),
            scope: l.scope.as_str().to_owned(),
            active: l.active,
            confirmation: l.confirmation.map(Into::into),
            validated: l.validated,
            oauth: l.oauth.as_ref().map(Into::into),
            recovery_codes_remaining: l.recovery_codes_remaining,
            mfa_enrollment_required: l.mfa_enrollment_required,
        }
    }
}

/// A successful login.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The session token: send it as `X-Session-Token`. Shown once; hallpass keeps only
    /// its hash.
    pub token: String,
    /// The new session.
    pub session: SessionDto,
    /// The login object.
    pub login: LoginDto,
    /// This browser's device token: keep it for the browser (a long-lived cookie) and send
    /// it back as `client.device` on its later logins. Not a credential; it keeps the
    /// owner's devices out of throttling that attackers cause.
    pub device: String,
}

/// A session and its user.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionWithUser {
    /// The session.
    pub session: SessionDto,
    /// Its user.
    pub user: UserDto,
}

/// A session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// The session.
    pub session: SessionDto,
}

/// A user's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// The valid sessions, newest first (no tokens).
    pub sessions: Vec<SessionDto>,
}

// ---------------------------------------------------------------------------- resets

/// `POST /v1/password-resets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The user's username or email.
    pub login: String,
    /// Mail the code to the user instead of returning it (needs mail configured).
    pub send_email: Option<bool>,
}

/// A fresh reset code. Any older reset code of the user stops working.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetCodeResponse {
    /// The single-use code; shown once.
    pub code: String,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// For whom.
    pub user_id: Uuid,
}

/// `POST /v1/password-resets/redeem`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemResetRequest {
    /// The reset code.
    #[schema(value_type = String)]
    pub code: SecretString,
    /// The new password: 8 to 256 characters, hard enough to guess for the scope's
    /// `min_password_score` (else 400 `weak_password` with advice).
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// A redeemed reset code.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedeemResetResponse {
    /// Whose password was set.
    pub user_id: Uuid,
}

// ---------------------------------------------------------------------------- providers

/// A user's link to a provider.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Identity)]
pub struct IdentityDto {
    /// The provider.
    pub provider: String,
    /// The user's id at the provider.
    pub client_id: String,
    /// The provider's access token, kept for the application.
    #[schema(required = true)]
    pub access_token: Option<String>,
    /// When the access token expires, in Unix seconds.
    #[schema(required = true)]
    pub access_token_expiry: Option<i64>,
    /// Whether the access token has expired by the server clock (`false` without expiry).
    pub access_token_expired: bool,
    /// The provider's refresh token, kept for the application (a sign-in through hallpass
    /// stores the one the provider gave; a backend may set its own).
    #[schema(required = true)]
    pub refresh_token: Option<String>,
    /// Set when hallpass tried to refresh the expired access token with the refresh token
    /// and the provider refused (or could not be reached): why. The link is shown as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_error: Option<String>,
    /// When the link was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the link last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl IdentityDto {
    /// The JSON of a link, with `access_token_expired` judged at `now`.
    pub fn from_identity(i: &Identity, now: OffsetDateTime) -> Self {
        Self {
            provider: i.provider.as_str().to_owned(),
            client_id: i.client_id.as_str().to_owned(),
            access_token: i.access_token.clone(),
            access_token_expiry: i.access_token_expiry.map(unix_seconds),
            access_token_expired: i.access_token_expired(now),
            refresh_token: i.refresh_token.clone(),
            refresh_error: None,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// A user's provider links.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityList {
    /// The links.
    pub providers: Vec<IdentityDto>,
}

fn expiry(
    field_at: &'static str,
    at: Option<Option<i64>>,
    expires_in: Option<i64>,
) -> Result<Option<Option<Expiry>>, Error> {
    match (at, expires_in) {
        (Some(_), Some(_)) => {
            Err(Error::invalid(field_at, "give `access_token_expiry` or `expires_in`, not both"))
        }
        (Some(None), None) => Ok(Some(None)),
        (Some(Some(secs)), None) => Ok(Some(Some(Expiry::At(from_unix_seconds(field_at, secs)?)))),
        (None, Some(secs)) => Ok(Some(Some(Expiry::In(secs)))),
        (None, None) => Ok(None),
    }
}

/// `PUT /v1/users/{ref}/providers/{provider}`: links the user (replacing an earlier link
/// of the user to the same provider). Give `access_token_expiry` or `expires_in`, not both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkProviderRequest {
    /// The user's id at the provider.
    pub client_id: String,
    /// The provider's access token.
    pub access_token: Option<String>,
    /// When the access token expires, in Unix seconds.
    pub access_token_expiry: Option<i64>,
    /// Seconds from now until the access token expires (as in an OAuth token response).
    pub expires_in: Option<i64>,
    /// The provider's refresh token.
    pub refresh_token: Option<String>,
}

impl LinkProviderRequest {
    /// The client id and the token part of the link.
    pub fn into_domain(self) -> Result<(ClientId, TokenUpdate), Error> {
        let client_id = ClientId::parse(&self.client_id)?;
        let update = TokenUpdate {
            access_token: self.access_token.map(Some),
            expiry: expiry("access_token_expiry", self.access_token_expiry.map(Some), self.expires_in)?,
            refresh_token: self.refresh_token.map(Some),
        };
        Ok((client_id, update))
    }
}

/// `PATCH /v1/users/{ref}/providers/{provider}`: only the fields present change; `null`
/// clears the token or the expiry. Give `access_token_expiry` or `expires_in`, not both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProviderRequest {
    /// The new access token, or `null` to clear it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub access_token: Option<Option<String>>,
    /// The new expiry in Unix seconds, or `null` to clear it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub access_token_expiry: Option<Option<i64>>,
    /// Seconds from now until the access token expires.
    pub expires_in: Option<i64>,
    /// The new refresh token, or `null` to clear it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub refresh_token: Option<Option<String>>,
}

impl UpdateProviderRequest {
    /// The core's token update.
    pub fn into_domain(self) -> Result<TokenUpdate, Error> {
        Ok(TokenUpdate {
            access_token: self.access_token,
            expiry: expiry("access_token_expiry", self.access_token_expiry, self.expires_in)?,
            refresh_token: self.refresh_token,
        })
    }
}

// ---------------------------------------------------------------------------- history, stats

/// How a login attempt ended.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Outcome)]
pub enum OutcomeDto {
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
    /// The provider refused to exchange its authorization code, or could not be reached.
    TokenExchangeFailed,
    /// The provider's ID token (or userinfo answer) did not validate.
    IdTokenInvalid,
    /// A provider identity linked to nobody where the scope does not create users.
    IdentityUnknown,
    /// The first factor was right; the second (TOTP or recovery code) was wrong.
    WrongFactor,
    /// A passkey assertion did not verify (origin, challenge, relying party, signature, or
    /// an unknown credential).
    InvalidPasskey,
    /// A passkey's signature counter went back (a cloned authenticator): refused.
    PasskeyCloned,
}

impl From<Outcome> for OutcomeDto {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Success => Self::Success,
            Outcome::WrongPassword => Self::WrongPassword,
            Outcome::UnknownUser => Self::UnknownUser,
            Outcome::Inactive => Self::Inactive,
            Outcome::Throttled => Self::Throttled,
            Outcome::InvalidState => Self::InvalidState,
            Outcome::TokenExchangeFailed => Self::TokenExchangeFailed,
            Outcome::IdTokenInvalid => Self::IdTokenInvalid,
            Outcome::IdentityUnknown => Self::IdentityUnknown,
            Outcome::WrongFactor => Self::WrongFactor,
            Outcome::InvalidPasskey => Self::InvalidPasskey,
            Outcome::PasskeyCloned => Self::PasskeyCloned,
        }
    }
}

/// One login attempt.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LoginEvent)]
pub struct EventDto {
    /// UUIDv7, time-ordered.
    pub id: Uuid,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `password`, `email_code`, `provider:<name>` or `oidc:<name>`.
    pub method: String,
    /// How it ended.
    pub outcome: OutcomeDto,
    /// The session made, on success.
    #[schema(required = true)]
    pub session_id: Option<Uuid>,
    /// The end user's IP as reported.
    #[schema(required = true)]
    pub ip: Option<String>,
    /// The end user's client as reported.
    #[schema(required = true)]
    pub user_agent: Option<String>,
}

impl From<&LoginEvent> for EventDto {
    fn from(e: &LoginEvent) -> Self {
        Self {
            id: e.id,
            at: e.at,
            method: e.method.clone(),
            outcome: e.outcome.into(),
            session_id: e.session_id,
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
        }
    }
}

/// `GET /v1/users/{ref}/logins` query string.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of a user's login events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// The events.
    pub events: Vec<EventDto>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// `GET /v1/stats/logins` query string.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Start (RFC 3339, inclusive). Default: 24 hours (`hour`) or 30 days (`day`) before `to`.
    pub from: Option<String>,
    /// End (RFC 3339, exclusive). Default: now.
    pub to: Option<String>,
    /// `hour` (default) or `day` (UTC days).
    pub bucket: Option<String>,
}

/// An RFC 3339 instant from 1970 on (so every bucket start, defaults included, can be
/// written back as RFC 3339).
fn rfc3339(field: &'static str, s: &str) -> Result<OffsetDateTime, Error> {
    use time::format_description::well_known::Rfc3339;
    let t = OffsetDateTime::parse(s, &Rfc3339)
        // A '+' in an unencoded query string arrives as a space: accept it as meant.
        .or_else(|_| OffsetDateTime::parse(&s.replace(' ', "+"), &Rfc3339))
        .map_err(|_| Error::invalid(field, "must be an RFC 3339 timestamp, like 2030-01-01T00:00:00Z"))?;
    if t < OffsetDateTime::UNIX_EPOCH {
        return Err(Error::invalid(field, "must not be before 1970-01-01T00:00:00Z"));
    }
    Ok(t)
}

impl StatsQuery {
    /// `from`, `to` and the bucket width, parsed.
    pub fn into_domain(self) -> Result<(Option<OffsetDateTime>, Option<OffsetDateTime>, Bucket), Error> {
        let from = self.from.as_deref().map(|s| rfc3339("from", s)).transpose()?;
        let to = self.to.as_deref().map(|s| rfc3339("to", s)).transpose()?;
        let bucket = match self.bucket.as_deref() {
            None | Some("hour") => Bucket::Hour,
            Some("day") => Bucket::Day,
            Some(_) => return Err(Error::invalid("bucket", "must be `hour` or `day`")),
        };
        Ok((from, to, bucket))
    }
}

/// Logins in one bucket.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = StatBucket)]
pub struct StatBucketDto {
    /// Start of the bucket.
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    /// Successful logins.
    pub logins: u64,
    /// Distinct users who logged in.
    pub users: u64,
}

impl From<&StatBucket> for StatBucketDto {
    fn from(b: &StatBucket) -> Self {
        Self { start: b.start, logins: b.logins, users: b.users }
    }
}

/// Login statistics: every bucket over the range, empty ones included.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginStats {
    /// The buckets, oldest first.
    pub buckets: Vec<StatBucketDto>,
}

// ---------------------------------------------------------------------------- health

/// The answer of the health probes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// `POST /v1/confirmations/redeem`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemConfirmationRequest {
    /// The confirmation code from the mail.
    #[schema(value_type = String)]
    pub code: SecretString,
}

/// What `POST /v1/users/{ref}/confirmation` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfirmationResponse {
    /// The user's confirmation state: `pending` once a confirmation mail was taken by the
    /// mail server, `failed` when the latest could not be delivered, `null` before the
    /// first was sent. The new mail is on its way.
    pub confirmation: Option<ConfirmationDto>,
}

/// `POST /v1/email-codes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailCodeRequest {
    /// The email to mail a sign-in code to, if a user of the scope has it.
    pub email: String,
}

/// What a login answers instead of a session when the user has a second factor.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaChallengeResponse {
    /// Always `true`: no session was made yet.
    pub mfa_required: bool,
    /// The challenge to answer at `POST /v1/sessions/mfa` (single use, 5 minutes).
    pub challenge: String,
    /// The factors that may answer it: `totp`, `recovery_code`, `passkey`.
    pub methods: Vec<String>,
    /// When the challenge ends.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// With `passkey` among the methods: the options for `navigator.credentials.get`
    /// (`{"publicKey": {...}}`, binary fields in base64url).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub options: Option<serde_json::Value>,
}

impl From<&hallpass_core::service::MfaChallenge> for MfaChallengeResponse {
    fn from(c: &hallpass_core::service::MfaChallenge) -> Self {
        Self {
            mfa_required: true,
            challenge: c.challenge.expose().to_owned(),
            methods: c.methods.iter().map(|m| (*m).to_owned()).collect(),
            expires_at: c.expires_at,
            options: c.options.clone(),
        }
    }
}

/// The answer to an MFA challenge: the challenge and exactly one factor.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaLoginRequest {
    /// The `challenge` a login answered.
    pub challenge: String,
    /// A TOTP code (6 digits).
    #[schema(value_type = Option<String>, format = Password)]
    pub totp: Option<SecretString>,
    /// One of the user's recovery codes.
    #[schema(value_type = Option<String>, format = Password)]
    pub recovery_code: Option<SecretString>,
    /// A passkey's answer to the challenge's `options`: the `PublicKeyCredential` of
    /// `navigator.credentials.get`, as JSON (binary fields in base64url).
    #[schema(value_type = Option<Object>)]
    pub passkey: Option<serde_json::Value>,
}

// ---------------------------------------------------------------------------- passkeys

/// A ceremony started: the flow to finish it with and the options for the browser.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyOptionsResponse {
    /// The handle to send back to `.../finish` (single use, 5 minutes).
    pub flow: String,
    /// The options for `navigator.credentials.create` (registration) or `.get` (sign-in):
    /// `{"publicKey": {...}}`, binary fields in base64url.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// The end of a passkey registration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRegisterFinishRequest {
    /// The `flow` of `.../register/start`.
    pub flow: String,
    /// The `PublicKeyCredential` of `navigator.credentials.create`, as JSON (binary fields
    /// in base64url).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// A name for it (1 to 100 characters; default `Passkey`).
    pub name: Option<String>,
}

/// A passkey (no secret: hallpass keeps its public key).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Passkey)]
pub struct PasskeyDto {
    /// Its id.
    pub id: Uuid,
    /// The name the user gave it.
    pub name: String,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last signed in (`null`: never).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Whether the authenticator may synchronise it to other devices.
    pub backup_eligible: bool,
    /// Whether it is synchronised now.
    pub backup_state: bool,
}

impl From<&hallpass_core::PasskeyRecord> for PasskeyDto {
    fn from(p: &hallpass_core::PasskeyRecord) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
            backup_eligible: p.backup_eligible,
            backup_state: p.backup_state,
        }
    }
}

/// A user's passkeys.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyList {
    /// Oldest first.
    pub passkeys: Vec<PasskeyDto>,
}

/// A passkey's new name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRenameRequest {
    /// 1 to 100 characters.
    pub name: String,
}

/// The start of a passwordless sign-in.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyLoginStartRequest {
    /// A username or email: the options then name that user's passkeys. Without it, any
    /// discoverable passkey of the scope may answer.
    pub login: Option<String>,
}

/// The end of a passwordless sign-in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyLoginFinishRequest {
    /// The `flow` of `/v1/passkeys/login/start`.
    pub flow: String,
    /// The `PublicKeyCredential` of `navigator.credentials.get`, as JSON (binary fields in
    /// base64url).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// Initial session data. Default `{}`.
    #[schema(value_type = Option<Object>)]
    pub data: Option<JsonObject>,
    /// The end user's client.
    pub client: Option<LoginClientDto>,
}

/// A pending TOTP: shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolResponse {
    /// The secret in base32 (for typing into an authenticator app).
    pub secret: String,
    /// The `otpauth://totp/...` URI (for a QR code).
    pub otpauth_uri: String,
}

/// The first code of a pending TOTP.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirmRequest {
    /// The code the authenticator app shows now (6 digits).
    #[schema(value_type = String, format = Password)]
    pub code: SecretString,
}

/// A new set of recovery codes: shown once; each works once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodesResponse {
    /// Ten codes.
    pub recovery_codes: Vec<String>,
}
