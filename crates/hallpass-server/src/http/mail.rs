//! Handlers of the mail flows: sending (again) a user's confirmation mail, redeeming a
//! confirmation code, and mailing a sign-in code. (Reset by mail is `send_email: true` on
//! `POST /v1/password-resets`, in `resets.rs`; the emailed code's login is
//! `POST /v1/sessions {email, code}`, in `sessions.rs`.) Each answers 400
//! `mail_not_configured` when the server sends no mail.

use crate::app::AppState;
use crate::http::dto::{
    ConfirmationDto, ConfirmationResponse, EmailCodeRequest, RedeemConfirmationRequest, UserDto,
};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ApiPath, CostlyCaller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hallpass_core::{Code, Email};

/// Sends the user's email a new confirmation mail, voiding the older code. The mail goes
/// through the outbox: it is sent (and retried) after the answer.
#[utoipa::path(
    post,
    path = "/v1/users/{ref}/confirmation",
    tag = "mail",
    security(("bearer" = [])),
    params(("ref" = String, Path, description = "The user's id, username or email")),
    responses(
        (status = 202, description = "The mail is queued; the user's confirmation state so far", body = ConfirmationResponse),
        (status = 400, description = "`mail_not_configured`, or `invalid_request` (no email, or already confirmed)",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn send_confirmation(
    State(state): State<AppState>,
    CostlyCaller(caller): CostlyCaller,
    ApiPath(r): ApiPath<String>,
) -> Result<(StatusCode, Json<ConfirmationResponse>), ApiError> {
    let r = crate::http::user_ref(&r)?;
    let confirmation = state.service.send_confirmation(caller.scope(), &r).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ConfirmationResponse { confirmation: confirmation.map(ConfirmationDto::from) }),
    ))
}

/// Confirms the email of the user the code was mailed to: `confirmed: true`,
/// `confirmation: null`. The code works once.
#[utoipa::path(
    post,
    path = "/v1/confirmations/redeem",
    tag = "mail",
    security(("bearer" = [])),
    request_body = RedeemConfirmationRequest,
    responses(
        (status = 200, description = "The confirmed user", body = UserDto),
        (status = 400, description = "`invalid_code` (unknown, used, voided or expired) or `invalid_request`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn redeem_confirmation(
    State(state): State<AppState>,
    CostlyCaller(caller): CostlyCaller,
    ApiJson(req): ApiJson<RedeemConfirmationRequest>,
) -> Result<Json<UserDto>, ApiError> {
    let code = Code::from_presented(req.code.expose());
    let user = state.service.redeem_confirmation(caller.scope(), &code).await?;
    Ok(Json(UserDto::from_user(&state.service, &user)))
}

/// Mails a short sign-in code (6 digits, 10 minutes, single use) to the user of the scope
/// with that email; answers 202 whoever it names, in the same time. Log in with
/// `POST /v1/sessions {email, code}`. Requests per email are limited as reset codes are.
#[utoipa::path(
    post,
    path = "/v1/email-codes",
    tag = "mail",
    security(("bearer" = [])),
    request_body = EmailCodeRequest,
    responses(
        (status = 202, description = "A code is mailed if a user has that email"),
        (status = 400, description = "`mail_not_configured` or `invalid_request`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 429, response = crate::http::doc::RateLimited),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn email_code(
    State(state): State<AppState>,
    CostlyCaller(caller): CostlyCaller,
    ApiJson(req): ApiJson<EmailCodeRequest>,
) -> Result<StatusCode, ApiError> {
    let email = Email::parse(&req.email)?;
    state.service.mail_email_code(caller.scope(), &email).await?;
    Ok(StatusCode::ACCEPTED)
}
