//! The one error enum of the domain. The HTTP layer maps it to status and `code` in one
//! exhaustive `match`; the library hands it to the embedding program as it is.

use crate::model::LoginInfo;
use crate::store::StoreError;
use crate::types::InvalidInput;

/// Result with the domain [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which half of a failed login was wrong. The HTTP API answers both the same way, in the
/// same time; an embedding program may tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialFailure {
    /// The user exists and the password (or code) was wrong.
    WrongPassword,
    /// No user has that login.
    UserNotFound,
}

/// Everything that can go wrong in the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is malformed.
    #[error("invalid request: {0}")]
    Invalid(#[from] InvalidInput),
    /// A new password does not meet the policy.
    #[error("weak password: {0}")]
    WeakPassword(String),
    /// Login refused; see [`CredentialFailure`].
    #[error("invalid credentials")]
    InvalidCredentials(CredentialFailure),
    /// The credentials were right but the user is inactive. Carries the login object.
    #[error("user is inactive")]
    UserInactive(Box<LoginInfo>),
    /// The session token is unknown, expired or ended.
    #[error("session is invalid")]
    SessionInvalid,
    /// No such user in the scope.
    #[error("user not found")]
    UserNotFound,
    /// No such session of the user.
    #[error("session not found")]
    SessionNotFound,
    /// The user has no link to that provider.
    #[error("provider not linked")]
    ProviderNotLinked,
    /// No such API key.
    #[error("api key not found")]
    KeyNotFound,
    /// No such webhook endpoint in the scope.
    #[error("webhook not found")]
    WebhookNotFound,
    /// No such delivery of the endpoint.
    #[error("delivery not found")]
    DeliveryNotFound,
    /// The username is taken in the scope.
    #[error("username taken")]
    UsernameTaken,
    /// The email is taken in the scope.
    #[error("email taken")]
    EmailTaken,
    /// That provider identity is linked to another user of the scope.
    #[error("provider identity linked to another user")]
    IdentityTaken,
    /// A one-time code is unknown, used, voided or expired.
    #[error("invalid or expired code")]
    InvalidCode,
    /// The operation sends mail and this server has no SMTP server configured.
    #[error("mail is not configured")]
    MailNotConfigured,
    /// A provider sign-in's `state` is unknown, used or expired.
    #[error("invalid or expired sign-in state")]
    InvalidState,
    /// A sign-in wanted to end at a `return_to` the provider's configuration does not list.
    #[error("return_to is not allowed")]
    InvalidReturnTo,
    /// A provider identity linked to nobody, where the scope does not create users.
    #[error("unknown provider identity")]
    IdentityUnknown,
    /// Removing this would leave the user no way to log in (no password, no other identity).
    #[error("that is the user's last way to log in")]
    LastLoginMethod,
    /// No provider of that name is configured for the scope.
    #[error("provider not configured")]
    ProviderUnknown,
    /// The provider refused the sign-in or could not be used; `reason` says how (never
    /// a token).
    #[error("provider sign-in failed: {0}")]
    ProviderFailed(String),
    /// A JSON field (session `data`, a user's `extra`) would be larger, serialised, than
    /// the configured cap ([`crate::Limits`]); nothing was changed.
    #[error("{field} is larger than {max_bytes} bytes")]
    TooLarge {
        /// The field (`data` or `extra`).
        field: &'static str,
        /// The cap, in bytes of compact JSON.
        max_bytes: usize,
    },
    /// The first factor of a login was right and the user has a second factor: no session
    /// yet; answer the challenge with [`crate::Hallpass::complete_mfa`].
    #[error("a second factor is required")]
    MfaRequired(Box<crate::service::MfaChallenge>),
    /// An MFA challenge is unknown, used, expired or ended by wrong answers.
    #[error("invalid or expired challenge")]
    InvalidChallenge,
    /// The second factor offered (TOTP or recovery code) was wrong or already used.
    #[error("invalid second factor")]
    InvalidFactor,
    /// The user already has a confirmed TOTP (remove it first).
    #[error("a second factor is already enabled")]
    MfaAlreadyEnabled,
    /// The user has no (pending, for a confirmation) TOTP.
    #[error("no second factor is enabled")]
    MfaNotEnabled,
    /// Second factors need the server secret key (TOTP secrets are sealed with it), and
    /// none is configured.
    #[error("no server secret key is configured")]
    SecretKeyNotConfigured,
    /// The scope has no WebAuthn relying party (`[scopes.NAME.webauthn]`).
    #[error("passkeys are not configured for the scope")]
    PasskeysNotConfigured,
    /// A passkey ceremony (registration or sign-in) is unknown, used or expired.
    #[error("invalid or expired passkey ceremony")]
    InvalidFlow,
    /// The authenticator's answer to a registration did not verify (origin, challenge,
    /// relying party, user verification).
    #[error("passkey registration refused: {0}")]
    PasskeyRegistrationFailed(String),
    /// A passkey assertion did not verify (origin, challenge, relying party, signature,
    /// unknown credential, or a signature counter that went back: a cloned authenticator).
    #[error("invalid passkey")]
    InvalidPasskey,
    /// That credential is registered already.
    #[error("passkey already registered")]
    PasskeyTaken,
    /// No such passkey of the user.
    #[error("passkey not found")]
    PasskeyNotFound,
    /// Too many failed attempts: throttled; try again after `retry_after_secs` seconds.
    #[error("rate limited; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until an attempt may succeed (at least 1).
        retry_after_secs: u64,
    },
    /// Too many password hashes wait already (see [`crate::Settings::hash_queue_limit`]):
    /// the server is saturated; try again shortly.
    #[error("too many logins at once")]
    Overloaded,
    /// Storage cannot be reached now; try again.
    #[error("storage unavailable")]
    StorageUnavailable(#[source] StoreError),
    /// A bug or an unexpected storage failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UsernameTaken => Self::UsernameTaken,
            StoreError::EmailTaken => Self::EmailTaken,
            StoreError::IdentityTaken => Self::IdentityTaken,
            StoreError::Unavailable(_) => Self::StorageUnavailable(e),
            StoreError::TooLarge { field, max_bytes } => Self::TooLarge { field, max_bytes },
            StoreError::Other(m) => Self::Internal(m),
        }
    }
}

impl Error {
    /// Shorthand for an [`Error::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid(InvalidInput::new(field, reason))
    }
}
