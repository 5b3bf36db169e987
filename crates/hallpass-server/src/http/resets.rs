//! Handlers of password resets: issuing a reset code to the backend, and redeeming it for
//! a new password (which ends every session of the user), or mailing it (`send_email:
//! true`: 202 whoever the login names; 400 `mail_not_configured` without mail).

use crate::app::AppState;
use crate::http::dto::{RedeemResetRequest, RedeemResetResponse, ResetCodeResponse, ResetRequest};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, CostlyCaller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hallpass_core::{Code, Password, UserRef};

/// Issues a single-use reset code for the user with that username or email, and voids the
/// user's older reset codes. The code is returned to the calling backend, which delivers
/// it to the user.
#[utoipa::path(
    post,
    path = "/v1/password-resets",
    operation_id = "create_password_reset",
    tag = "password-resets",
    security(("bearer" = [])),
    request_body = ResetRequest,
    responses(
        (status = 201, description = "The code (shown once)", body = ResetCodeResponse),
        (status = 202, description = "`send_email: true`: a mail is queued if the login names a user with an email"),
        (status = 400, description = "`invalid_request`, or `mail_not_configured` for `send_email: true`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 429, response = crate::http::doc::RateLimited),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    CostlyCaller(caller): CostlyCaller,
    ApiJson(req): ApiJson<ResetRequest>,
) -> Result<Response, ApiError> {
    let login = UserRef::login(&req.login)?;
    if req.send_email == Some(true) {
        state.service.mail_reset_code(caller.scope(), &login).await?;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let issued = state.service.create_reset_code(caller.scope(), &login).await?;
    Ok((
        StatusCode::CREATED,
        Json(ResetCodeResponse {
            code: issued.code.expose().to_owned(),
            expires_at: issued.expires_at,
            user_id: issued.user_id,
        }),
    )
        .into_response())
}

/// Redeems a reset code: sets the new password and ends every session of the user.
#[utoipa::path(
    post,
    path = "/v1/password-resets/redeem",
    tag = "password-resets",
    security(("bearer" = [])),
    request_body = RedeemResetRequest,
    responses(
        (status = 200, description = "Whose password was set", body = RedeemResetResponse),
        (status = 400, description = "`invalid_code` (unknown, used, voided or expired), `weak_password` or `invalid_request`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn redeem(
    State(state): State<AppState>,
    CostlyCaller(caller): CostlyCaller,
    ApiJson(req): ApiJson<RedeemResetRequest>,
) -> Result<Json<RedeemResetResponse>, ApiError> {
    let password = Password::new(req.password.expose())?;
    let code = Code::from_presented(req.code.expose());
    let user_id = state.service.redeem_reset_code(caller.scope(), &code, password).await?;
    Ok(Json(RedeemResetResponse { user_id }))
}
