//! Handlers of `/v1/users`: register, read, list and search, change, delete, set a
//! password. Each one parses, calls the service once and maps the answer.

use crate::app::AppState;
use crate::http::dto::{
    ListUsersQuery, RegisterRequest, SetPasswordRequest, UpdateUserRequest, UserDto, UserList,
};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, Caller, CostlyCaller};
use crate::http::user_ref;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hallpass_core::Password;

/// Registers a user.
#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "users",
    security(("bearer" = [])),
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The user", body = UserDto,
            headers(("Location" = String, description = "`/v1/users/{id}`"))),
        (status = 400, description = "`invalid_request` (the detail names the field) or `weak_password`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 409, description = "`username_taken` or `email_taken`",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    CostlyCaller(caller): CostlyCaller,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    let user = state.service.register(caller.scope(), req.into_domain()?).await?;
    let location = HeaderValue::from_str(&format!("/v1/users/{}", user.id)).ok();
    let mut res = (StatusCode::CREATED, Json(UserDto::from_user(&state.service, &user))).into_response();
    if let Some(l) = location {
        res.headers_mut().insert(header::LOCATION, l);
    }
    Ok(res)
}

/// Lists or searches the users of the scope, a page at a time, ordered by id.
#[utoipa::path(
    get,
    path = "/v1/users",
    operation_id = "list_users",
    tag = "users",
    security(("bearer" = [])),
    params(ListUsersQuery),
    responses(
        (status = 200, description = "A page of users", body = UserList),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListUsersQuery>,
) -> Result<Json<UserList>, ApiError> {
    let page = state.service.list_users(caller.scope(), &q.filter(), q.limit, q.cursor.as_deref()).await?;
    Ok(Json(UserList {
        users: page.items.iter().map(|u| UserDto::from_user(&state.service, u)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Reads a user by id, username or email.
#[utoipa::path(
    get,
    path = "/v1/users/{ref}",
    operation_id = "get_user",
    tag = "users",
    security(("bearer" = [])),
    params(("ref" = String, Path, description = "The user's id, username or email")),
    responses(
        (status = 200, description = "The user", body = UserDto),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(r): ApiPath<String>,
) -> Result<Json<UserDto>, ApiError> {
    let user = state.service.get_user(caller.scope(), &user_ref(&r)?).await?;
    Ok(Json(UserDto::from_user(&state.service, &user)))
}

/// Changes a user. Deactivating (`active: false`) ends every session of the user.
#[utoipa::path(
    patch,
    path = "/v1/users/{ref}",
    operation_id = "update_user",
    tag = "users",
    security(("bearer" = [])),
    params(("ref" = String, Path, description = "The user's id, username or email")),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The changed user", body = UserDto),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 409, description = "`username_taken` or `email_taken`",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(r): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> Result<Json<UserDto>, ApiError> {
    let r = user_ref(&r)?;
    let user = state.service.update_user(caller.scope(), &r, req.into_domain()?).await?;
    Ok(Json(UserDto::from_user(&state.service, &user)))
}

/// Deletes a user with their sessions, codes and provider links.
#[utoipa::path(
    delete,
    path = "/v1/users/{ref}",
    operation_id = "delete_user",
    tag = "users",
    security(("bearer" = [])),
    params(("ref" = String, Path, description = "The user's id, username or email")),
    responses(
        (status = 204, description = "The user is gone"),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(r): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_user(caller.scope(), &user_ref(&r)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a user's password and ends every session of the user.
#[utoipa::path(
    put,
    path = "/v1/users/{ref}/password",
    tag = "users",
    security(("bearer" = [])),
    params(("ref" = String, Path, description = "The user's id, username or email")),
    request_body = SetPasswordRequest,
    responses(
        (status = 204, description = "The password is set; the user's sessions are ended"),
        (status = 400, description = "`invalid_request` or `weak_password`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn set_password(
    State(state): State<AppState>,
    CostlyCaller(caller): CostlyCaller,
    ApiPath(r): ApiPath<String>,
    ApiJson(req): ApiJson<SetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let r = user_ref(&r)?;
    let password = Password::new(req.password.expose())?;
    state.service.set_password(caller.scope(), &r, password).await?;
    Ok(StatusCode::NO_CONTENT)
}
