//! Handlers of `/v1/users/{ref}/providers`: linking a user to an identity at an OAuth/OIDC
//! provider that the calling backend has verified, keeping the provider's access token and
//! its expiry, and unlinking. `access_token_expired` is judged by the server clock.

use crate::app::AppState;
use crate::http::dto::{IdentityDto, IdentityList, LinkProviderRequest, UpdateProviderRequest};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ApiPath, Caller};
use crate::http::user_ref;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hallpass_core::service::{Expiry, TokenUpdate};
use hallpass_core::{Identity, ProviderName, UserRef};

fn parse(r: &str, provider: &str) -> Result<(UserRef, ProviderName), ApiError> {
    Ok((user_ref(r)?, ProviderName::parse(provider)?))
}

/// Links the user to a provider identity, replacing the user's earlier link to the same
/// provider. The identity (`provider`, `client_id`) may belong to one user of the scope.
#[utoipa::path(
    put,
    path = "/v1/users/{ref}/providers/{provider}",
    tag = "providers",
    security(("bearer" = [])),
    params(
        ("ref" = String, Path, description = "The user's id, username or email"),
        ("provider" = String, Path, description = "The provider's name: `[a-z0-9][a-z0-9_-]{0,62}`"),
    ),
    request_body = LinkProviderRequest,
    responses(
        (status = 200, description = "The link", body = IdentityDto),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 409, description = "`identity_taken`: the identity is linked to another user",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn link(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((r, provider)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<LinkProviderRequest>,
) -> Result<Json<IdentityDto>, ApiError> {
    let (r, provider) = parse(&r, &provider)?;
    let (client_id, update) = req.into_domain()?;
    let identity = state.service.link_provider(caller.scope(), &r, provider, client_id, update).await?;
    Ok(Json(IdentityDto::from_identity(&identity, state.service.now())))
}

/// Changes the access token or its expiry.
#[utoipa::path(
    patch,
    path = "/v1/users/{ref}/providers/{provider}",
    operation_id = "update_provider",
    tag = "providers",
    security(("bearer" = [])),
    params(
        ("ref" = String, Path, description = "The user's id, username or email"),
        ("provider" = String, Path, description = "The provider's name"),
    ),
    request_body = UpdateProviderRequest,
    responses(
        (status = 200, description = "The changed link", body = IdentityDto),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, description = "`user_not_found` or `provider_not_linked`",
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
    ApiPath((r, provider)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<UpdateProviderRequest>,
) -> Result<Json<IdentityDto>, ApiError> {
    let (r, provider) = parse(&r, &provider)?;
    let identity = state.service.update_provider(caller.scope(), &r, &provider, req.into_domain()?).await?;
    Ok(Json(IdentityDto::from_identity(&identity, state.service.now())))
}

/// Reads the link, with whether its access token has expired. When hallpass signs users
/// in with this provider (it is configured for the scope), the access token has expired
/// (or expires within a minute) and a refresh token is stored, the token is refreshed at
/// the provider first and the new tokens are stored and shown; a refused refresh shows the
/// stored link with `refresh_error`.
#[utoipa::path(
    get,
    path = "/v1/users/{ref}/providers/{provider}",
    operation_id = "get_provider",
    tag = "providers",
    security(("bearer" = [])),
    params(
        ("ref" = String, Path, description = "The user's id, username or email"),
        ("provider" = String, Path, description = "The provider's name"),
    ),
    responses(
        (status = 200, description = "The link", body = IdentityDto),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, description = "`user_not_found` or `provider_not_linked`",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((r, provider)): ApiPath<(String, String)>,
) -> Result<Json<IdentityDto>, ApiError> {
    let (r, provider) = parse(&r, &provider)?;
    let scope = caller.scope();
    let identity = state.service.get_provider(scope, &r, &provider).await?;
    let Some(oidc) = state.oidc.provider(scope, &provider).filter(|_| needs_refresh(&state, &identity))
    else {
        return Ok(Json(IdentityDto::from_identity(&identity, state.service.now())));
    };
    // One refresh at a time per user; whoever waited reads what the first one stored.
    let _turn = oidc.refresh_lock(identity.user_id).lock().await;
    let r = UserRef::Id(identity.user_id);
    let identity = state.service.get_provider(scope, &r, &provider).await?;
    let Some(refresh_token) = identity.refresh_token.clone().filter(|_| needs_refresh(&state, &identity))
    else {
        return Ok(Json(IdentityDto::from_identity(&identity, state.service.now())));
    };
    match oidc.refresh(&refresh_token).await {
        Ok(fresh) => {
            let update = TokenUpdate {
                access_token: Some(Some(fresh.access_token)),
                expiry: Some(
                    fresh.expires_in.map(|d| Expiry::In(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))),
                ),
                // A provider that rotates refresh tokens sends the next one; others keep it.
                refresh_token: fresh.refresh_token.map(Some),
            };
            let identity = state.service.update_provider(scope, &r, &provider, update).await?;
            tracing::info!(provider = %provider.as_str(), user_id = %identity.user_id, "refreshed a provider access token");
            Ok(Json(IdentityDto::from_identity(&identity, state.service.now())))
        }
        Err(why) => {
            tracing::warn!(provider = %provider.as_str(), user_id = %identity.user_id, error = %why,
                "refreshing a provider access token failed");
            let mut dto = IdentityDto::from_identity(&identity, state.service.now());
            dto.refresh_error = Some(why);
            Ok(Json(dto))
        }
    }
}

/// How close to its expiry an access token is refreshed before it is shown.
const REFRESH_BEFORE: time::Duration = time::Duration::minutes(1);

/// Whether the link's access token is (about to be) expired and a refresh token is kept.
fn needs_refresh(state: &AppState, identity: &Identity) -> bool {
    identity.refresh_token.is_some()
        && identity.access_token_expiry.is_some_and(|e| e <= state.service.now() + REFRESH_BEFORE)
}

/// Removes the link.
#[utoipa::path(
    delete,
    path = "/v1/users/{ref}/providers/{provider}",
    tag = "providers",
    security(("bearer" = [])),
    params(
        ("ref" = String, Path, description = "The user's id, username or email"),
        ("provider" = String, Path, description = "The provider's name"),
    ),
    responses(
        (status = 204, description = "The link is gone"),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, description = "`user_not_found` or `provider_not_linked`",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`last_login_method`: the user has no password and no other identity, so unlinking would leave no way to log in",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn unlink(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((r, provider)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (r, provider) = parse(&r, &provider)?;
    state.service.unlink_provider(caller.scope(), &r, &provider).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists the user's provider links.
#[utoipa::path(
    get,
    path = "/v1/users/{ref}/providers",
    operation_id = "list_providers",
    tag = "providers",
    security(("bearer" = [])),
    params(("ref" = String, Path, description = "The user's id, username or email")),
    responses(
        (status = 200, description = "The links", body = IdentityList),
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
) -> Result<Json<IdentityList>, ApiError> {
    let identities = state.service.list_providers(caller.scope(), &user_ref(&r)?).await?;
    let now = state.service.now();
    Ok(Json(IdentityList {
        providers: identities.iter().map(|i| IdentityDto::from_identity(i, now)).collect(),
    }))
}
