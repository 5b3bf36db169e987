//! The client's one error type: what the server refused (an RFC 9457 problem whose `code`
//! is the [`ProblemCode`] enum), what never reached it, and answers that were not what the
//! API promises.

use crate::types::Login;
use std::time::Duration;

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a problem document (4xx, or 503 while storage is down).
    #[error("hallpass answered {}: {} ({})", .0.status, .0.code, .0.detail)]
    Api(Box<Problem>),
    /// The server answered an error status without a problem document (a proxy between, or
    /// something that is not hallpass).
    #[error("unexpected answer {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The body, cut at 1 KiB.
        body: String,
    },
    /// No answer: connection refused or reset, timed out, TLS failed.
    #[error("could not reach hallpass: {0}")]
    Transport(#[source] reqwest::Error),
    /// The answer's body was not what the API says it is.
    #[error("could not read hallpass's answer: {0}")]
    Decode(String),
    /// A base URL that cannot be one (`ClientBuilder::base_url`).
    #[error("invalid base URL: {0}")]
    BaseUrl(String),
}

impl Error {
    /// The problem's code, for an [`Error::Api`].
    pub fn code(&self) -> Option<&ProblemCode> {
        match self {
            Error::Api(p) => Some(&p.code),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(p) => Some(p.status),
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the server said the session token is not (or no longer) valid.
    pub fn is_session_invalid(&self) -> bool {
        matches!(self.code(), Some(ProblemCode::SessionInvalid))
    }
}

/// An RFC 9457 problem document as hallpass sends it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Problem {
    /// `/problems/<code>`.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// A short summary, the same for every problem of a code.
    #[serde(default)]
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this occurrence.
    #[serde(default)]
    pub detail: String,
    /// The stable code.
    pub code: ProblemCode,
    /// The field an `invalid_request` or `payload_too_large` is about.
    #[serde(default)]
    pub field: Option<String>,
    /// For `user_inactive`: the login object of the refused user.
    #[serde(default)]
    pub login: Option<Login>,
    /// `Retry-After` of a 429 or 503, when sent.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

macro_rules! problem_codes {
    ($($variant:ident = $code:literal),* $(,)?) => {
        /// A problem's stable `code`. Codes a newer server added arrive as
        /// [`ProblemCode::Other`].
        ///
        /// ```
        /// use hallpass_client::ProblemCode;
        /// assert_eq!(ProblemCode::parse("session_invalid"), ProblemCode::SessionInvalid);
        /// assert_eq!(ProblemCode::parse("brand_new").as_str(), "brand_new");
        /// assert!(matches!(ProblemCode::parse("brand_new"), ProblemCode::Other(_)));
        /// ```
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ProblemCode {
            $(
                #[doc = concat!("`", $code, "`")]
                $variant,
            )*
            /// A code this client does not know yet.
            Other(String),
        }

        impl ProblemCode {
            /// The code as the server spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ProblemCode::$variant => $code,)*
                    ProblemCode::Other(s) => s,
                }
            }

            /// The code of `s` (never fails: unknown codes are [`ProblemCode::Other`]).
            pub fn parse(s: &str) -> ProblemCode {
                match s {
                    $($code => ProblemCode::$variant,)*
                    other => ProblemCode::Other(other.to_owned()),
                }
            }

            /// Every code this client knows.
            pub const KNOWN: &'static [&'static str] = &[$($code),*];
        }
    };
}

problem_codes! {
    InvalidRequest = "invalid_request",
    InvalidCode = "invalid_code",
    InvalidChallenge = "invalid_challenge",
    InvalidState = "invalid_state",
    InvalidReturnTo = "invalid_return_to",
    InvalidFlow = "invalid_flow",
    PasskeyRegistrationFailed = "passkey_registration_failed",
    PasskeysNotConfigured = "passkeys_not_configured",
    InvalidPasskey = "invalid_passkey",
    PasskeyNotFound = "passkey_not_found",
    WebhookNotFound = "webhook_not_found",
    DeliveryNotFound = "delivery_not_found",
    PasskeyAlreadyRegistered = "passkey_already_registered",
    MailNotConfigured = "mail_not_configured",
    SecretKeyNotConfigured = "secret_key_not_configured",
    WeakPassword = "weak_password",
    Unauthorized = "unauthorized",
    InvalidCredentials = "invalid_credentials",
    InvalidFactor = "invalid_factor",
    MfaRequired = "mfa_required",
    SessionInvalid = "session_invalid",
    IdentityUnknown = "identity_unknown",
    UserInactive = "user_inactive",
    ProviderUnknown = "provider_unknown",
    NotFound = "not_found",
    UserNotFound = "user_not_found",
    SessionNotFound = "session_not_found",
    ProviderNotLinked = "provider_not_linked",
    KeyNotFound = "key_not_found",
    MethodNotAllowed = "method_not_allowed",
    LastLoginMethod = "last_login_method",
    MfaAlreadyEnabled = "mfa_already_enabled",
    MfaNotEnabled = "mfa_not_enabled",
    UsernameTaken = "username_taken",
    EmailTaken = "email_taken",
    IdentityTaken = "identity_taken",
    PayloadTooLarge = "payload_too_large",
    UnsupportedMediaType = "unsupported_media_type",
    RateLimited = "rate_limited",
    Internal = "internal",
    ProviderFailed = "provider_failed",
    Overloaded = "overloaded",
    StorageUnavailable = "storage_unavailable",
}

impl std::fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ProblemCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(ProblemCode::parse(&s))
    }
}

impl serde::Serialize for ProblemCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
