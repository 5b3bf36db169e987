//! Errors as HTTP answers: every failure leaves as `application/problem+json` (RFC 9457)
//! with a stable snake_case `code`.
//!
//! This module owns the one exhaustive `match` from [`hallpass_core::Error`] to status and
//! code, and the problems the HTTP layer raises itself (authentication, unreadable
//! requests, unknown routes). Causes of 5xx answers are logged here and never sent: the
//! client sees a generic detail. A login failure reads the same whichever half was wrong.

use crate::http::dto::LoginDto;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hallpass_core::Error;
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The base of every problem `type`: the code is appended. A relative reference, so it
/// resolves to the page this same server serves (see [`crate::http::problems`]).
pub const PROBLEM_TYPE_BASE: &str = "/problems/";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct Problem {
    /// `/problems/<code>`: a page of this server (resolved against the request's URL) that
    /// says what the code means and what to do.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short summary of the problem type; the same for every problem of a code.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this occurrence. For `invalid_request`, it names the field.
    pub detail: String,
    /// A stable snake_case identifier: `invalid_request`, `unauthorized`,
    /// `invalid_credentials`, `user_inactive`, `session_invalid`, `user_not_found`,
    /// `session_not_found`, `provider_not_linked`, `username_taken`, `email_taken`,
    /// `identity_taken`, `weak_password`, `invalid_code`, `mail_not_configured`,
    /// `payload_too_large`, `unsupported_media_type`, `not_found`, `method_not_allowed`,
    /// `rate_limited`, `storage_unavailable`, `internal`.
    pub code: &'static str,
    /// For `invalid_request` raised on a known field, and for a `payload_too_large` of one
    /// JSON field over its cap (`data`, `extra`): that field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// For `user_inactive`: the login object of the refused user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<Box<LoginDto>>,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    problem: Problem,
    /// Seconds for a `Retry-After` header; 0: none. (A `u32` keeps `ApiError` small.)
    retry_after: u32,
    www_authenticate: bool,
}

impl ApiError {
    /// A problem with `status`, `code`, `title` and `detail`.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            problem: Problem {
                type_: format!("{PROBLEM_TYPE_BASE}{code}"),
                title,
                status: status.as_u16(),
                detail: detail.into(),
                code,
                field: None,
                login: None,
            },
            retry_after: 0,
            www_authenticate: false,
        }
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Its stable code.
    pub fn code(&self) -> &'static str {
        self.problem.code
    }

    /// The seconds of its `Retry-After` (0: none).
    pub fn retry_after(&self) -> u32 {
        self.retry_after
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", "Invalid request", detail)
    }

    /// 401 `unauthorized`, with `WWW-Authenticate: Bearer`.
    pub fn unauthorized() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "a valid API key is required as `Authorization: Bearer <key>`",
        );
        e.www_authenticate = true;
        e
    }

    /// 401 `session_invalid` with a specific detail (a missing header, say).
    pub fn session_invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "session_invalid", "Session invalid", detail)
    }

    /// 400 `mail_not_configured`: the operation needs mail and this server sends none.
    pub fn mail_not_configured() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "mail_not_configured",
            "Mail not configured",
            "this server is not configured to send mail",
        )
    }

    /// 404 `not_found`: no such route.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found", "no such resource")
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
            "the resource does not support this method",
        )
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large",
            "the request body is larger than the server accepts",
        )
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            "the request body must be JSON, sent with `Content-Type: application/json`",
        )
    }

    /// The problem for an error status some layer answered without a body of ours.
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::not_found(),
            StatusCode::METHOD_NOT_ALLOWED => Self::method_not_allowed(),
            StatusCode::PAYLOAD_TOO_LARGE => Self::payload_too_large(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::unsupported_media_type(),
            StatusCode::UNAUTHORIZED => Self::unauthorized(),
            StatusCode::SERVICE_UNAVAILABLE => Self::storage_unavailable(),
            StatusCode::TOO_MANY_REQUESTS => Self::rate_limited(),
            s if s.is_client_error() => {
                let mut e = Self::invalid_request("the request could not be processed");
                e.status = s;
                e.problem.status = s.as_u16();
                e
            }
            _ => Self::internal(),
        }
    }

    /// 429 `rate_limited` with `Retry-After: <secs>`.
    pub fn rate_limited_for(secs: u64) -> Self {
        let mut e = Self::rate_limited();
        e.retry_after = u32::try_from(secs).unwrap_or(u32::MAX).max(1);
        e
    }

    /// 429 `rate_limited`. (Whoever throttles sets `Retry-After`.)
    pub fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Rate limited",
            "too many requests; retry later",
        )
    }

    /// 500 `internal`. The caller logs the cause; the client learns nothing of it.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server failed to answer; the cause has been logged",
        )
    }

    /// 503 `storage_unavailable`, with `Retry-After: 1`.
    pub fn storage_unavailable() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "Storage unavailable",
            "storage cannot be reached now; retry later",
        );
        e.retry_after = 1;
        e
    }
}

impl From<Error> for ApiError {
    /// The one map from domain errors to HTTP. Exhaustive on purpose: a new variant in the
    /// core does not compile until it has an answer here.
    fn from(e: Error) -> Self {
        use StatusCode as S;
        match e {
            Error::Invalid(input) => {
                let mut err = Self::invalid_request(input.to_string());
                err.problem.field = Some(input.field);
                err
            }
            Error::WeakPassword(why) => Self::new(S::BAD_REQUEST, "weak_password", "Weak password", why),
            // Both halves answer the same bytes: the client must not learn which was wrong.
            Error::InvalidCredentials(_) => Self::new(
                S::UNAUTHORIZED,
                "invalid_credentials",
                "Invalid credentials",
                "the login or the password is wrong",
            ),
            Error::UserInactive(login) => {
                let mut err =
                    Self::new(S::FORBIDDEN, "user_inactive", "User inactive", "the user is inactive");
                err.problem.login = Some(Box::new(LoginDto::from(&*login)));
                err
            }
            Error::MailNotConfigured => Self::mail_not_configured(),
            Error::SessionInvalid => Self::session_invalid("the session token is unknown, expired or ended"),
            Error::UserNotFound => {
                Self::new(S::NOT_FOUND, "user_not_found", "User not found", "no such user")
            }
            Error::SessionNotFound => Self::new(
                S::NOT_FOUND,
                "session_not_found",
                "Session not found",
                "the user has no such session",
            ),
            Error::ProviderNotLinked => Self::new(
                S::NOT_FOUND,
                "provider_not_linked",
                "Provider not linked",
                "the user is not linked to that provider",
            ),
            Error::KeyNotFound => {
                Self::new(S::NOT_FOUND, "key_not_found", "API key not found", "no such API key")
            }
            Error::WebhookNotFound => {
                Self::new(S::NOT_FOUND, "webhook_not_found", "Webhook not found", "no such webhook endpoint")
            }
            Error::DeliveryNotFound => {
                Self::new(S::NOT_FOUND, "delivery_not_found", "Delivery not found", "no such delivery")
            }
            Error::UsernameTaken => {
                Self::new(S::CONFLICT, "username_taken", "Username taken", "the username is taken")
            }
            Error::EmailTaken => Self::new(S::CONFLICT, "email_taken", "Email taken", "the email is taken"),
            Error::IdentityTaken => Self::new(
                S::CONFLICT,
                "identity_taken",
                "Identity taken",
                "that provider identity is linked to another user",
            ),
            Error::InvalidCode => Self::new(
                S::BAD_REQUEST,
                "invalid_code",
                "Invalid code",
                "the code is unknown, used or expired",
            ),
            Error::MfaRequired(_) => Self::new(
                S::UNAUTHORIZED,
                "mfa_required",
                "Second factor required",
                "the login needs a second factor: answer the challenge at POST /v1/sessions/mfa",
            ),
            Error::InvalidChallenge => Self::new(
                S::BAD_REQUEST,
                "invalid_challenge",
                "Invalid challenge",
                "the MFA challenge is unknown, used, expired or ended by wrong answers",
            ),
            Error::InvalidFactor => Self::new(
                S::UNAUTHORIZED,
                "invalid_factor",
                "Invalid second factor",
                "the TOTP code or recovery code is wrong or was used already",
            ),
            Error::MfaAlreadyEnabled => Self::new(
                S::CONFLICT,
                "mfa_already_enabled",
                "Second factor already enabled",
                "the user already has a confirmed TOTP; remove it first",
            ),
            Error::MfaNotEnabled => Self::new(
                S::CONFLICT,
                "mfa_not_enabled",
                "No second factor",
                "the user has no (pending, for a confirmation) TOTP",
            ),
            Error::SecretKeyNotConfigured => Self::new(
                S::BAD_REQUEST,
                "secret_key_not_configured",
                "Server key not configured",
                "second factors are sealed with the server key (HALLPASS_SECRET_KEY), and none is configured",
            ),
            Error::PasskeysNotConfigured => Self::new(
                S::BAD_REQUEST,
                "passkeys_not_configured",
                "Passkeys not configured",
                "this scope has no WebAuthn relying party ([scopes.NAME.webauthn])",
            ),
            Error::InvalidFlow => Self::new(
                S::BAD_REQUEST,
                "invalid_flow",
                "Invalid passkey ceremony",
                "the passkey ceremony's flow is unknown, used or expired",
            ),
            Error::PasskeyRegistrationFailed(_) => Self::new(
                S::BAD_REQUEST,
                "passkey_registration_failed",
                "Passkey registration refused",
                "the authenticator's answer did not verify (origin, challenge, relying party or user verification)",
            ),
            Error::InvalidPasskey => Self::new(
                S::UNAUTHORIZED,
                "invalid_passkey",
                "Invalid passkey",
                "the passkey's assertion did not verify",
            ),
            Error::PasskeyTaken => Self::new(
                S::CONFLICT,
                "passkey_already_registered",
                "Passkey already registered",
                "that credential is registered already",
            ),
            Error::PasskeyNotFound => Self::new(
                S::NOT_FOUND,
                "passkey_not_found",
                "Passkey not found",
                "the user has no passkey with that id",
            ),
            Error::InvalidState => Self::new(
                S::BAD_REQUEST,
                "invalid_state",
                "Invalid state",
                "the sign-in state is unknown, used or expired",
            ),
            Error::InvalidReturnTo => Self::new(
                S::BAD_REQUEST,
                "invalid_return_to",
                "Invalid return_to",
                "return_to is not one of the provider's allowed URLs",
            ),
            Error::IdentityUnknown => Self::new(
                S::FORBIDDEN,
                "identity_unknown",
                "Identity unknown",
                "that provider identity is linked to no user, and this scope does not create users",
            ),
            Error::LastLoginMethod => Self::new(
                S::CONFLICT,
                "last_login_method",
                "Last login method",
                "the user would have no way left to log in",
            ),
            Error::ProviderUnknown => Self::new(
                S::NOT_FOUND,
                "provider_unknown",
                "Provider unknown",
                "no provider of that name is configured for this scope",
            ),
            Error::ProviderFailed(_) => Self::new(
                S::BAD_GATEWAY,
                "provider_failed",
                "Provider failed",
                "the identity provider refused the sign-in or could not be reached",
            ),
            Error::TooLarge { field, max_bytes } => {
                let mut err = Self::new(
                    S::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "Payload too large",
                    format!("`{field}` would be larger than {max_bytes} bytes of JSON; nothing was changed"),
                );
                err.problem.field = Some(field);
                err
            }
            Error::RateLimited { retry_after_secs } => Self::rate_limited_for(retry_after_secs),
            Error::Overloaded => {
                let mut e = Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "Overloaded",
                    "too many logins and password changes wait already; retry shortly",
                );
                e.retry_after = 1;
                e
            }
            Error::StorageUnavailable(cause) => {
                tracing::warn!(error = %cause, "storage unavailable");
                Self::storage_unavailable()
            }
            Error::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                Self::internal()
            }
        }
    }
}

impl From<hallpass_core::InvalidInput> for ApiError {
    fn from(e: hallpass_core::InvalidInput) -> Self {
        Error::Invalid(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match serde_json::to_vec(&self.problem) {
            Ok(b) => (self.status, b),
            Err(e) => {
                // Nothing in a problem can fail to serialise; should it ever, say so generically.
                tracing::error!(error = %e, "serialising a problem");
                let internal = Self::internal();
                (internal.status, serde_json::to_vec(&internal.problem).unwrap_or_default())
            }
        };
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.retry_after > 0 {
            h.insert(header::RETRY_AFTER, HeaderValue::from(self.retry_after));
        }
        if self.www_authenticate {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// One of each domain error with the status and code the API answers it with (tests of
/// this map and of the admin page, which takes its statuses from it).
#[cfg(test)]
pub(crate) fn every_error_sample() -> Vec<(Error, u16, &'static str)> {
    use hallpass_core::{CredentialFailure, StoreError};
    vec![
        (Error::invalid("username", "bad"), 400, "invalid_request"),
        (Error::WeakPassword("short".into()), 400, "weak_password"),
        (Error::InvalidCredentials(CredentialFailure::WrongPassword), 401, "invalid_credentials"),
        (Error::InvalidCredentials(CredentialFailure::UserNotFound), 401, "invalid_credentials"),
        (Error::SessionInvalid, 401, "session_invalid"),
        (
            Error::UserInactive(Box::new(hallpass_core::LoginInfo {
                user_id: uuid::Uuid::nil(),
                username: Some("alice".into()),
                email: None,
                group: "default".into(),
                extra: Default::default(),
                scope: hallpass_core::Scope::parse("default").expect("scope"),
                active: false,
                confirmation: None,
                validated: false,
                oauth: None,
                recovery_codes_remaining: None,
                mfa_enrollment_required: false,
            })),
            403,
            "user_inactive",
        ),
        (Error::UserNotFound, 404, "user_not_found"),
        (Error::SessionNotFound, 404, "session_not_found"),
        (Error::ProviderNotLinked, 404, "provider_not_linked"),
        (Error::KeyNotFound, 404, "key_not_found"),
        (Error::WebhookNotFound, 404, "webhook_not_found"),
        (Error::DeliveryNotFound, 404, "delivery_not_found"),
        (Error::UsernameTaken, 409, "username_taken"),
        (Error::EmailTaken, 409, "email_taken"),
        (Error::IdentityTaken, 409, "identity_taken"),
        (Error::InvalidCode, 400, "invalid_code"),
        (Error::InvalidState, 400, "invalid_state"),
        (Error::InvalidChallenge, 400, "invalid_challenge"),
        (Error::InvalidFactor, 401, "invalid_factor"),
        (Error::MfaAlreadyEnabled, 409, "mfa_already_enabled"),
        (Error::MfaNotEnabled, 409, "mfa_not_enabled"),
        (Error::SecretKeyNotConfigured, 400, "secret_key_not_configured"),
        (Error::PasskeysNotConfigured, 400, "passkeys_not_configured"),
        (Error::InvalidFlow, 400, "invalid_flow"),
        (Error::PasskeyRegistrationFailed("x".into()), 400, "passkey_registration_failed"),
        (Error::InvalidPasskey, 401, "invalid_passkey"),
        (Error::PasskeyTaken, 409, "passkey_already_registered"),
        (Error::PasskeyNotFound, 404, "passkey_not_found"),
        (
            Error::MfaRequired(Box::new(hallpass_core::service::MfaChallenge {
                challenge: hallpass_core::FlowHandle::generate(),
                methods: vec!["totp"],
                expires_at: time::OffsetDateTime::UNIX_EPOCH,
                options: None,
            })),
            401,
            "mfa_required",
        ),
        (Error::InvalidReturnTo, 400, "invalid_return_to"),
        (Error::IdentityUnknown, 403, "identity_unknown"),
        (Error::LastLoginMethod, 409, "last_login_method"),
        (Error::ProviderUnknown, 404, "provider_unknown"),
        (Error::ProviderFailed("x".into()), 502, "provider_failed"),
        (Error::TooLarge { field: "data", max_bytes: 16 }, 413, "payload_too_large"),
        (Error::RateLimited { retry_after_secs: 3 }, 429, "rate_limited"),
        (Error::Overloaded, 503, "overloaded"),
        (
            Error::StorageUnavailable(StoreError::Unavailable("db down at 10.0.0.5".into())),
            503,
            "storage_unavailable",
        ),
        (Error::Internal("secret cause".into()), 500, "internal"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallpass_core::CredentialFailure;

    #[test]
    fn every_domain_error_has_its_status_and_code() {
        let cases = every_error_sample();
        for (e, status, code) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.status().as_u16(), api.code()), (status, code));
            assert_eq!(api.problem.type_, format!("{PROBLEM_TYPE_BASE}{code}"));
            assert!(!api.problem.detail.contains("secret") && !api.problem.detail.contains("10.0.0.5"));
        }
    }

    /// Every problem the API can answer has its page, with the same status and title.
    #[test]
    fn every_problem_has_a_page_in_the_catalog() {
        let mut made: Vec<ApiError> =
            every_error_sample().into_iter().map(|(e, _, _)| ApiError::from(e)).collect();
        made.extend([
            ApiError::invalid_request("x"),
            ApiError::unauthorized(),
            ApiError::session_invalid("x"),
            ApiError::mail_not_configured(),
            ApiError::not_found(),
            ApiError::method_not_allowed(),
            ApiError::payload_too_large(),
            ApiError::unsupported_media_type(),
            ApiError::rate_limited(),
            ApiError::internal(),
            ApiError::storage_unavailable(),
        ]);
        for e in &made {
            let page =
                crate::http::problems::find(e.code()).unwrap_or_else(|| panic!("no page for {}", e.code()));
            assert_eq!((page.status, page.title), (e.status().as_u16(), e.problem.title), "{}", e.code());
        }
        let codes: std::collections::BTreeSet<_> = made.iter().map(ApiError::code).collect();
        for page in crate::http::problems::CATALOG {
            assert!(codes.contains(page.code), "{} has a page but no problem makes it", page.code);
        }
    }

    #[test]
    fn both_credential_failures_answer_the_same_bytes() {
        let a = ApiError::from(Error::InvalidCredentials(CredentialFailure::WrongPassword));
        let b = ApiError::from(Error::InvalidCredentials(CredentialFailure::UserNotFound));
        assert_eq!(serde_json::to_string(&a.problem).ok(), serde_json::to_string(&b.problem).ok());
    }

    #[test]
    fn headers_of_unauthorized_and_unavailable() {
        let res = ApiError::unauthorized().into_response();
        assert_eq!(res.headers().get(header::WWW_AUTHENTICATE).map(|v| v.as_bytes()), Some(&b"Bearer"[..]));
        assert_eq!(
            res.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(PROBLEM_JSON.as_bytes())
        );
        let res = ApiError::storage_unavailable().into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()), Some(&b"1"[..]));
        let res = ApiError::from(Error::RateLimited { retry_after_secs: 42 }).into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()), Some(&b"42"[..]));
    }
}
