//! Handlers of logins and sessions: `POST /v1/sessions` (login), the caller's own session
//! under `/v1/session` (identified by `X-Session-Token`), and a user's sessions under
//! `/v1/users/{ref}/sessions` (identified by id, for the backend's account pages).

use crate::app::AppState;
use crate::http::dto::{
    LoginDto, LoginRequest, LoginResponse, MfaChallengeResponse, SessionDto, SessionList, SessionResponse,
    SessionWithUser, UserDto,
};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ApiPath, Caller, CostlyCaller, SessionHeader};
use crate::http::user_ref;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hallpass_core::Error;
use uuid::Uuid;

/// Logs a user in and opens a session.
///
/// A wrong password and an unknown user answer the same 401 `invalid_credentials`, in the
/// same time. An inactive user's correct login answers 403 `user_inactive` with the login
/// object in the problem (`login`) and opens no session. Every attempt is recorded in the
/// user's login history.
///
/// Password logins are throttled: after 10 consecutive failures for one account (by
/// default) each further attempt waits a delay that doubles from 1 s up to 15 min, and
/// after 100 failures from one `client.ip` in 15 min that IP waits for the window to end.
/// A throttled attempt answers 429 `rate_limited` with `Retry-After` (even with the right
/// password) and is recorded with outcome `throttled`; a good login clears the account's
/// count.
#[utoipa::path(
    post,
    path = "/v1/sessions",
    tag = "sessions",
    security(("bearer" = [])),
    request_body = LoginRequest,
    responses(
        (status = 201, description = "The token (shown once), the session and the login object", body = LoginResponse),
        (status = 200, description = "The first factor was right and the user has a second factor: no session yet; answer the challenge at `POST /v1/sessions/mfa`", body = MfaChallengeResponse),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, description = "`invalid_credentials` (wrong password or unknown user, indistinguishably) or `unauthorized`",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`user_inactive`: the credentials were right; `login` holds the login object",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 429, response = crate::http::doc::RateLimited),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    CostlyCaller(caller): CostlyCaller,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let req = req.into_domain()?;
    let provider = matches!(req.credentials, hallpass_core::service::Credentials::Provider { .. });
    let result = state.service.login(caller.scope(), req).await;
    state.metrics.login(provider, &result);
    let done = match result {
        Err(Error::MfaRequired(challenge)) => {
            return Ok((StatusCode::OK, Json(MfaChallengeResponse::from(&*challenge))).into_response());
        }
        other => other?,
    };
    Ok((
        StatusCode::CREATED,
        Json(LoginResponse {
            token: done.token.expose().to_owned(),
            session: SessionDto::from(&done.session),
            login: LoginDto::from(&done.login),
            device: done.device.expose().to_owned(),
        }),
    )
        .into_response())
}

/// Checks a session token: the session and its user. Does not extend the session.
#[utoipa::path(
    get,
    path = "/v1/session",
    operation_id = "get_session",
    tag = "sessions",
    security(("bearer" = [])),
    params(("X-Session-Token" = String, Header, description = "The token of a login")),
    responses(
        (status = 200, description = "The session and its user", body = SessionWithUser),
        (status = 401, description = "`session_invalid` or `unauthorized`",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    SessionHeader(token): SessionHeader,
) -> Result<Response, ApiError> {
    let view = state.service.get_session_view(caller.scope(), &token).await?;
    // A cached session is served many times over: its JSON is made once and kept with it.
    let body = view
        .rendered(|session, user| {
            serde_json::to_vec(&SessionWithUser {
                session: SessionDto::from(session),
                user: UserDto::from_user(&state.service, user),
            })
        })
        .map_err(|e| {
            tracing::error!(error = %e, "serialising a session");
            ApiError::internal()
        })?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], Bytes::from_owner(body))
        .into_response())
}

/// Extends the session's idle expiry (never past its absolute expiry).
#[utoipa::path(
    post,
    path = "/v1/session/freshen",
    tag = "sessions",
    security(("bearer" = [])),
    params(("X-Session-Token" = String, Header, description = "The token of a login")),
    responses(
        (status = 200, description = "The extended session", body = SessionResponse),
        (status = 401, description = "`session_invalid` or `unauthorized`",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn freshen(
    State(state): State<AppState>,
    caller: Caller,
    SessionHeader(token): SessionHeader,
) -> Result<Json<SessionResponse>, ApiError> {
    let session = state.service.freshen(caller.scope(), &token).await?;
    Ok(Json(SessionResponse { session: SessionDto::from(&session) }))
}

/// Changes the session's `data` with a JSON merge patch (RFC 7396): members set to `null`
/// go, objects merge, anything else replaces. The body must be a JSON object
/// (`application/json` or `application/merge-patch+json`).
#[utoipa::path(
    patch,
    path = "/v1/session",
    tag = "sessions",
    security(("bearer" = [])),
    params(("X-Session-Token" = String, Header, description = "The token of a login")),
    request_body(content = Object, description = "A merge patch of `data`",
        content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The session with its new data", body = SessionResponse),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, description = "`session_invalid` or `unauthorized`",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn patch_data(
    State(state): State<AppState>,
    caller: Caller,
    SessionHeader(token): SessionHeader,
    ApiJson(patch): ApiJson<serde_json::Value>,
) -> Result<Json<SessionResponse>, ApiError> {
    let session = state.service.patch_session_data(caller.scope(), &token, &patch).await?;
    Ok(Json(SessionResponse { session: SessionDto::from(&session) }))
}

/// Ends the session (logout). Succeeds also when it has already ended.
#[utoipa::path(
    delete,
    path = "/v1/session",
    tag = "sessions",
    security(("bearer" = [])),
    params(("X-Session-Token" = String, Header, description = "The token of a login")),
    responses(
        (status = 204, description = "The session is ended (or already was)"),
        (status = 401, description = "`unauthorized`, or `session_invalid` when the header is missing",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn end(
    State(state): State<AppState>,
    caller: Caller,
    SessionHeader(token): SessionHeader,
) -> Result<StatusCode, ApiError> {
    state.service.end_session(caller.scope(), &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every other session of the token's user, keeping this one.
#[utoipa::path(
    delete,
    path = "/v1/session/others",
    tag = "sessions",
    security(("bearer" = [])),
    params(("X-Session-Token" = String, Header, description = "The token of a login")),
    responses(
        (status = 204, description = "The user's other sessions are ended"),
        (status = 401, description = "`session_invalid` or `unauthorized`",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn end_others(
    State(state): State<AppState>,
    caller: Caller,
    SessionHeader(token): SessionHeader,
) -> Result<StatusCode, ApiError> {
    state.service.end_other_sessions(caller.scope(), &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists a user's valid sessions, newest first (never their tokens).
#[utoipa::path(
    get,
    path = "/v1/users/{ref}/sessions",
    tag = "sessions",
    security(("bearer" = [])),
    params(("ref" = String, Path, description = "The user's id, username or email")),
    responses(
        (status = 200, description = "The sessions", body = SessionList),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn list_for_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(r): ApiPath<String>,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = state.service.list_sessions(caller.scope(), &user_ref(&r)?).await?;
    Ok(Json(SessionList { sessions: sessions.iter().map(SessionDto::from).collect() }))
}

/// Ends every session of a user.
#[utoipa::path(
    delete,
    path = "/v1/users/{ref}/sessions",
    tag = "sessions",
    security(("bearer" = [])),
    params(("ref" = String, Path, description = "The user's id, username or email")),
    responses(
        (status = 204, description = "The user's sessions are ended"),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn end_all_for_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(r): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.service.end_user_sessions(caller.scope(), &user_ref(&r)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends one session of a user, by its id.
#[utoipa::path(
    delete,
    path = "/v1/users/{ref}/sessions/{session_id}",
    tag = "sessions",
    security(("bearer" = [])),
    params(
        ("ref" = String, Path, description = "The user's id, username or email"),
        ("session_id" = Uuid, Path, description = "The session's id"),
    ),
    responses(
        (status = 204, description = "The session is ended"),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, description = "`user_not_found` or `session_not_found`",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn end_one_for_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((r, session_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let r = user_ref(&r)?;
    let id = Uuid::parse_str(session_id.trim())
        .map_err(|_| Error::invalid("session_id", "must be a session id (a UUID)"))?;
    state.service.end_user_session(caller.scope(), &r, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
