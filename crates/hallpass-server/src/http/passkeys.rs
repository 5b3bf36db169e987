//! Handlers of passkeys (WebAuthn): registration (`/v1/users/{ref}/passkeys/register/start`
//! and `.../finish`), the user's list, rename and removal, and passwordless sign-in
//! (`/v1/passkeys/login/start` and `.../finish`).
//!
//! Each ceremony is two calls: `start` answers the options for the browser's
//! `navigator.credentials.create` / `.get` and a `flow` handle; `finish` sends the handle
//! and the browser's `PublicKeyCredential` (as JSON, binary fields in base64url). The
//! ceremony's state waits in the database, so any server process can finish it, once.
//! Adding or removing a passkey ends the user's other sessions (the one of
//! `X-Session-Token`, when given and the user's, stays).

use crate::app::AppState;
use crate::http::dto::{
    LoginDto, LoginResponse, PasskeyDto, PasskeyList, PasskeyLoginFinishRequest, PasskeyLoginStartRequest,
    PasskeyOptionsResponse, PasskeyRegisterFinishRequest, PasskeyRenameRequest, SessionDto,
};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ApiPath, Caller, CostlyCaller};
use crate::http::mfa::kept_session;
use crate::http::user_ref;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hallpass_core::FlowHandle;
use uuid::Uuid;

/// Starts registering a passkey for the user.
///
/// Answers the options for `navigator.credentials.create` (a discoverable credential with
/// user verification, bound to the scope's relying party; the user's passkeys are
/// excluded) and the `flow` to finish with (single use, 5 minutes). Enrolment depends on
/// no policy.
#[utoipa::path(
    post,
    path = "/v1/users/{ref}/passkeys/register/start",
    tag = "passkeys",
    security(("bearer" = [])),
    params(("ref" = String, Path, description = "The user's id, username or email")),
    responses(
        (status = 200, description = "The options for the browser and the flow", body = PasskeyOptionsResponse),
        (status = 400, description = "`passkeys_not_configured` (the scope has no `[scopes.NAME.webauthn]`) or `invalid_request`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn register_start(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(r): ApiPath<String>,
) -> Result<Json<PasskeyOptionsResponse>, ApiError> {
    let ceremony = state.service.start_passkey_registration(caller.scope(), &user_ref(&r)?).await?;
    Ok(Json(PasskeyOptionsResponse { flow: ceremony.flow.expose().to_owned(), options: ceremony.options }))
}

/// Finishes a passkey registration with the browser's answer.
///
/// Verifies it against the flow (origin, relying party, challenge, user verification) and
/// stores the passkey. The user's other sessions end (the one of `X-Session-Token`, when
/// given and the user's, stays).
#[utoipa::path(
    post,
    path = "/v1/users/{ref}/passkeys/register/finish",
    tag = "passkeys",
    security(("bearer" = [])),
    params(
        ("ref" = String, Path, description = "The user's id, username or email"),
        ("X-Session-Token" = Option<String>, Header, description = "The session to keep, if the user's"),
    ),
    request_body = PasskeyRegisterFinishRequest,
    responses(
        (status = 201, description = "The passkey", body = PasskeyDto),
        (status = 400, description = "`invalid_flow` (unknown, used, expired or another user's), `passkey_registration_failed`, `passkeys_not_configured` or `invalid_request`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 409, description = "`passkey_already_registered`",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn register_finish(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(r): ApiPath<String>,
    ApiJson(req): ApiJson<PasskeyRegisterFinishRequest>,
) -> Result<(StatusCode, Json<PasskeyDto>), ApiError> {
    let r = user_ref(&r)?;
    let keep = kept_session(&state, caller.scope(), &r, &headers).await;
    let flow = FlowHandle::from_presented(&req.flow);
    let passkey = state
        .service
        .finish_passkey_registration(caller.scope(), &r, &flow, req.credential, req.name.as_deref(), keep)
        .await?;
    Ok((StatusCode::CREATED, Json(PasskeyDto::from(&passkey))))
}

/// The user's passkeys, oldest first.
#[utoipa::path(
    get,
    path = "/v1/users/{ref}/passkeys",
    operation_id = "list_passkeys",
    tag = "passkeys",
    security(("bearer" = [])),
    params(("ref" = String, Path, description = "The user's id, username or email")),
    responses(
        (status = 200, description = "The passkeys", body = PasskeyList),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(r): ApiPath<String>,
) -> Result<Json<PasskeyList>, ApiError> {
    let list = state.service.list_passkeys(caller.scope(), &user_ref(&r)?).await?;
    Ok(Json(PasskeyList { passkeys: list.iter().map(PasskeyDto::from).collect() }))
}

/// Renames one of the user's passkeys.
#[utoipa::path(
    patch,
    path = "/v1/users/{ref}/passkeys/{id}",
    tag = "passkeys",
    security(("bearer" = [])),
    params(
        ("ref" = String, Path, description = "The user's id, username or email"),
        ("id" = Uuid, Path, description = "The passkey's id"),
    ),
    request_body = PasskeyRenameRequest,
    responses(
        (status = 200, description = "The passkey", body = PasskeyDto),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, description = "`user_not_found` or `passkey_not_found`",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((r, id)): ApiPath<(String, Uuid)>,
    ApiJson(req): ApiJson<PasskeyRenameRequest>,
) -> Result<Json<PasskeyDto>, ApiError> {
    let passkey = state.service.rename_passkey(caller.scope(), &user_ref(&r)?, id, &req.name).await?;
    Ok(Json(PasskeyDto::from(&passkey)))
}

/// Removes one of the user's passkeys.
///
/// The user's other sessions end (the one of `X-Session-Token`, when given and the
/// user's, stays). Refused (409 `last_login_method`) when it is the user's last way to
/// log in: no password, no provider link, no other passkey.
#[utoipa::path(
    delete,
    path = "/v1/users/{ref}/passkeys/{id}",
    operation_id = "delete_passkey",
    tag = "passkeys",
    security(("bearer" = [])),
    params(
        ("ref" = String, Path, description = "The user's id, username or email"),
        ("id" = Uuid, Path, description = "The passkey's id"),
        ("X-Session-Token" = Option<String>, Header, description = "The session to keep, if the user's"),
    ),
    responses(
        (status = 204, description = "The passkey is gone"),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, description = "`user_not_found` or `passkey_not_found`",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`last_login_method`: the user could no longer log in",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath((r, id)): ApiPath<(String, Uuid)>,
) -> Result<StatusCode, ApiError> {
    let r = user_ref(&r)?;
    let keep = kept_session(&state, caller.scope(), &r, &headers).await;
    state.service.delete_passkey(caller.scope(), &r, id, keep).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a passwordless sign-in.
///
/// With `login`, the options name that user's passkeys; without (or when the login names
/// nobody, or a user without passkeys: the answer tells nothing of who exists), any
/// discoverable passkey of the scope may answer. Send `{}` for a discoverable sign-in.
#[utoipa::path(
    post,
    path = "/v1/passkeys/login/start",
    tag = "passkeys",
    security(("bearer" = [])),
    request_body = PasskeyLoginStartRequest,
    responses(
        (status = 200, description = "The options for `navigator.credentials.get` and the flow", body = PasskeyOptionsResponse),
        (status = 400, description = "`passkeys_not_configured` or `invalid_request`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn login_start(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<PasskeyLoginStartRequest>,
) -> Result<Json<PasskeyOptionsResponse>, ApiError> {
    let ceremony = state.service.start_passkey_login(caller.scope(), req.login.as_deref()).await?;
    Ok(Json(PasskeyOptionsResponse { flow: ceremony.flow.expose().to_owned(), options: ceremony.options }))
}

/// Finishes a passwordless sign-in with the browser's assertion.
///
/// 201 as a password login (event method `passkey`; the session's `amr` is `["passkey"]`
/// and its `aal` 2: a passkey is something the user has, unlocked by user verification).
/// A refused assertion is 401 `invalid_passkey`, recorded with outcome `invalid_passkey`,
/// or `passkey_cloned` when its signature counter went back (a cloned authenticator).
#[utoipa::path(
    post,
    path = "/v1/passkeys/login/finish",
    tag = "passkeys",
    security(("bearer" = [])),
    request_body = PasskeyLoginFinishRequest,
    responses(
        (status = 201, description = "The token (shown once), the session and the login object", body = LoginResponse),
        (status = 400, description = "`invalid_flow` (unknown, used or expired), `passkeys_not_configured` or `invalid_request`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_passkey` or `unauthorized`",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`user_inactive`",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 429, response = crate::http::doc::RateLimited),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn login_finish(
    State(state): State<AppState>,
    CostlyCaller(caller): CostlyCaller,
    ApiJson(req): ApiJson<PasskeyLoginFinishRequest>,
) -> Result<(StatusCode, Json<LoginResponse>), ApiError> {
    let (client, _device) = req.client.unwrap_or_default().into_domain()?;
    let flow = FlowHandle::from_presented(&req.flow);
    let data = req.data.unwrap_or_default();
    let result =
        state.service.finish_passkey_login(caller.scope(), &flow, req.credential, data, client).await;
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
