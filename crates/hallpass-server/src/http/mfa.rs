//! Handlers of second factors: TOTP enrolment (`/v1/users/{ref}/mfa/totp`, `.../confirm`),
//! recovery codes, removing every factor (`DELETE /v1/users/{ref}/mfa`, audited), and the
//! answer to a login's MFA challenge (`POST /v1/sessions/mfa`).
//!
//! A change of factor ends the user's other sessions: a call that carries the
//! `X-Session-Token` of one of the user's sessions keeps that one, every other ends.

use crate::app::AppState;
use crate::http::dto::{
    LoginDto, LoginResponse, MfaLoginRequest, RecoveryCodesResponse, SessionDto, TotpConfirmRequest,
    TotpEnrolResponse,
};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ApiPath, Caller, CostlyCaller, SESSION_TOKEN_HEADER};
use crate::http::user_ref;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hallpass_core::service::MfaProof;
use hallpass_core::{Error, FlowHandle, Scope, SessionToken, UserRef};
use uuid::Uuid;

/// The session to keep when a factor change ends the user's others: the caller's, when it
/// sent a valid `X-Session-Token` of that user.
pub(crate) async fn kept_session(
    state: &AppState,
    scope: &Scope,
    r: &UserRef,
    headers: &HeaderMap,
) -> Option<Uuid> {
    let text = headers.get(SESSION_TOKEN_HEADER).and_then(|v| v.to_str().ok())?;
    let (session, user) = state.service.get_session(scope, &SessionToken::from_presented(text)).await.ok()?;
    let same = match r {
        UserRef::Id(id) => *id == user.id,
        UserRef::Username(key) => user.username.as_ref().is_some_and(|u| u.key() == key),
        UserRef::Email(key) => user.email.as_ref().is_some_and(|e| e.key() == key),
    };
    same.then_some(session.id)
}

/// Enrols a new, pending TOTP (RFC 6238: SHA-1, 6 digits, 30 s) for the user.
///
/// Answers the secret (base32) and an `otpauth://` URI, shown once; the secret is stored
/// sealed by the server secret key. The TOTP counts only once confirmed with a first code
/// (`POST /v1/users/{ref}/mfa/totp/confirm`); enrolling again replaces a pending one.
#[utoipa::path(
    post,
    path = "/v1/users/{ref}/mfa/totp",
    tag = "mfa",
    security(("bearer" = [])),
    params(("ref" = String, Path, description = "The user's id, username or email")),
    responses(
        (status = 200, description = "The pending TOTP's secret and URI (shown once)", body = TotpEnrolResponse),
        (status = 400, description = "`invalid_request`, or `secret_key_not_configured` (no server secret key to seal TOTP secrets with)",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 409, description = "`mfa_already_enabled`: the user has a confirmed TOTP",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn enrol_totp(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(r): ApiPath<String>,
) -> Result<Json<TotpEnrolResponse>, ApiError> {
    let enrolment = state.service.enrol_totp(caller.scope(), &user_ref(&r)?).await?;
    Ok(Json(TotpEnrolResponse { secret: enrolment.secret, otpauth_uri: enrolment.otpauth_uri }))
}

/// Confirms the user's pending TOTP with the code the app shows now.
///
/// Answers ten recovery codes, shown once (each works once). The user's other sessions
/// end (the one of `X-Session-Token`, when given and the user's, stays). The code's time
/// step is used: it does not work again.
#[utoipa::path(
    post,
    path = "/v1/users/{ref}/mfa/totp/confirm",
    tag = "mfa",
    security(("bearer" = [])),
    params(
        ("ref" = String, Path, description = "The user's id, username or email"),
        ("X-Session-Token" = Option<String>, Header, description = "The session to keep, if the user's"),
    ),
    request_body = TotpConfirmRequest,
    responses(
        (status = 200, description = "The TOTP is confirmed; ten recovery codes (shown once)", body = RecoveryCodesResponse),
        (status = 400, description = "`invalid_code` (wrong or used code), `invalid_request` or `secret_key_not_configured`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 409, description = "`mfa_not_enabled` (nothing pending) or `mfa_already_enabled`",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn confirm_totp(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(r): ApiPath<String>,
    ApiJson(req): ApiJson<TotpConfirmRequest>,
) -> Result<Json<RecoveryCodesResponse>, ApiError> {
    let r = user_ref(&r)?;
    let keep = kept_session(&state, caller.scope(), &r, &headers).await;
    let recovery_codes = state.service.confirm_totp(caller.scope(), &r, req.code.expose(), keep).await?;
    Ok(Json(RecoveryCodesResponse { recovery_codes }))
}

/// Removes the user's TOTP (pending or confirmed); the user's passkeys stay.
///
/// The recovery codes go with it when the user has no passkey (otherwise they stay, to
/// back up the passkeys). The user's other sessions end (the one of `X-Session-Token`,
/// when given and the user's, stays). 204 also when there was none.
#[utoipa::path(
    delete,
    path = "/v1/users/{ref}/mfa/totp",
    tag = "mfa",
    security(("bearer" = [])),
    params(
        ("ref" = String, Path, description = "The user's id, username or email"),
        ("X-Session-Token" = Option<String>, Header, description = "The session to keep, if the user's"),
    ),
    responses(
        (status = 204, description = "The user has no TOTP"),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn delete_totp(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(r): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let r = user_ref(&r)?;
    let keep = kept_session(&state, caller.scope(), &r, &headers).await;
    state.service.remove_totp(caller.scope(), &r, keep).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a new set of ten recovery codes (shown once), voiding the older set.
#[utoipa::path(
    post,
    path = "/v1/users/{ref}/mfa/recovery-codes",
    tag = "mfa",
    security(("bearer" = [])),
    params(("ref" = String, Path, description = "The user's id, username or email")),
    responses(
        (status = 200, description = "Ten new recovery codes (shown once)", body = RecoveryCodesResponse),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 409, description = "`mfa_not_enabled`: the user has no confirmed second factor",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn recovery_codes(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(r): ApiPath<String>,
) -> Result<Json<RecoveryCodesResponse>, ApiError> {
    let recovery_codes = state.service.regenerate_recovery_codes(caller.scope(), &user_ref(&r)?).await?;
    Ok(Json(RecoveryCodesResponse { recovery_codes }))
}

/// Removes every second factor of the user and ends every session of the user.
///
/// For a user who lost their authenticator and recovery codes. Recorded in the admin
/// audit trail (action `mfa_remove`, by `api_key:<key id>`). 204 also when there was none.
#[utoipa::path(
    delete,
    path = "/v1/users/{ref}/mfa",
    tag = "mfa",
    security(("bearer" = [])),
    params(("ref" = String, Path, description = "The user's id, username or email")),
    responses(
        (status = 204, description = "The user has no second factor and no session"),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn remove_all(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(r): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let scope = caller.scope();
    let user = state.service.get_user(scope, &user_ref(&r)?).await?;
    let removed = state.service.remove_mfa(scope, &UserRef::Id(user.id), None).await?;
    let mut detail = hallpass_core::JsonObject::new();
    detail.insert("removed".into(), removed.into());
    state
        .service
        .audit(
            &format!("api_key:{}", caller.key.id),
            "mfa_remove",
            Some(scope),
            Some(user.id.to_string()),
            detail,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Answers a login's MFA challenge with a second factor: exactly one of `totp`,
/// `recovery_code` and `passkey` (the `PublicKeyCredential` answering the challenge's
/// `options`).
///
/// 201 as a login (`login.recovery_codes_remaining` tells how many recovery codes are
/// left when one was used). A wrong or used code (or a refused passkey assertion) is 401
/// `invalid_factor`, recorded with outcome `wrong_factor` (`invalid_passkey`,
/// `passkey_cloned`); after five wrong answers the challenge ends (400
/// `invalid_challenge`). Answers are throttled per user like passwords (429).
#[utoipa::path(
    post,
    path = "/v1/sessions/mfa",
    tag = "sessions",
    security(("bearer" = [])),
    request_body = MfaLoginRequest,
    responses(
        (status = 201, description = "The token (shown once), the session and the login object", body = LoginResponse),
        (status = 400, description = "`invalid_challenge` (unknown, used, expired or ended), `invalid_request` or `secret_key_not_configured`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_factor` (wrong or used code) or `unauthorized`",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`user_inactive`: deactivated since the first factor",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 429, response = crate::http::doc::RateLimited),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn answer_challenge(
    State(state): State<AppState>,
    CostlyCaller(caller): CostlyCaller,
    ApiJson(req): ApiJson<MfaLoginRequest>,
) -> Result<(StatusCode, Json<LoginResponse>), ApiError> {
    let proof = match (req.totp, req.recovery_code, req.passkey) {
        (Some(code), None, None) => MfaProof::Totp(code.expose().to_owned()),
        (None, Some(code), None) => MfaProof::RecoveryCode(code.expose().to_owned()),
        (None, None, Some(credential)) => MfaProof::Passkey(credential),
        _ => {
            return Err(
                Error::invalid("totp", "give exactly one of `totp`, `recovery_code` and `passkey`").into()
            );
        }
    };
    let handle = FlowHandle::from_presented(&req.challenge);
    let result = state.service.complete_mfa(caller.scope(), &handle, proof).await;
    state.metrics.login(false, &result);
    let done = result?;
    Ok((
        StatusCode::CREATED,
        Json(LoginResponse {
            token: done.token.expose().to_owned(),
            session: SessionDto::from(&done.session),
            login: LoginDto::from(&done.login),
            device: done.device.expose().to_owned(),
        }),
    ))
}
