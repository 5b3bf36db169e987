//! The HTTP API: routes, middleware and the OpenAPI document, as one value.
//!
//! `api_router` is the API's part of the application; [`crate::app::build_app`]
//! (re-exported here as [`build_app`], with [`AppState`]) assembles the whole of it.
//! Handlers are thin: an extractor parses (and authenticates), the service does the work,
//! a DTO maps the answer back out.
//!
//! Map of the module:
//! - [`extract`]: the API key ([`extract::Caller`]), the session token header, and
//!   JSON/path/query extractors whose failures are problem documents.
//! - [`dto`]: the JSON shapes; [`error`]: the one map from domain errors to HTTP.
//! - [`users`], [`sessions`], [`resets`], [`providers`], [`oidc`], [`mfa`], [`passkeys`],
//!   [`activity`]: the handlers.
//! - [`doc`]: the frame of the OpenAPI document (security scheme, shared responses).
//! - [`problems`]: the page of each problem `code` (`GET /problems/{code}`), which every
//!   problem's `type` points to.
//! - `GET /metrics` and the request-counting middleware live in [`crate::metrics`].
//!
//! Invariants: every `/v1` route authenticates first, and only the key's scope is ever
//! passed to the service; every answer that is not a success is `application/problem+json`,
//! including unknown routes (404), wrong methods (405), oversized bodies (413) and panics
//! (500); `Authorization` and `X-Session-Token` are marked sensitive before anything logs.

pub mod activity;
pub mod changes;
pub mod doc;
pub mod dto;
pub mod edge;
pub mod error;
pub mod extract;
pub mod mail;
pub mod mfa;
pub mod oidc;
pub mod passkeys;
pub mod problems;
pub mod providers;
pub mod resets;
pub mod sessions;
pub mod users;
pub mod webhooks;

use crate::http::dto::Health;
use crate::http::error::ApiError;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hallpass_core::UserRef;
use std::sync::OnceLock;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use crate::app::{AppState, DEFAULT_BODY_LIMIT, build_app};

/// Reads a `{ref}` path segment.
pub(crate) fn user_ref(s: &str) -> Result<UserRef, ApiError> {
    Ok(UserRef::parse(s)?)
}

/// Every documented route, with its OpenAPI description. One `routes!` per path: the macro
/// registers all its handlers on every path it names.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(doc::ApiDoc::openapi())
        .routes(routes!(users::register, users::list))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(users::set_password))
        .routes(routes!(sessions::login))
        .routes(routes!(mfa::answer_challenge))
        .routes(routes!(mfa::enrol_totp, mfa::delete_totp))
        .routes(routes!(mfa::confirm_totp))
        .routes(routes!(mfa::recovery_codes))
        .routes(routes!(mfa::remove_all))
        .routes(routes!(passkeys::register_start))
        .routes(routes!(passkeys::register_finish))
        .routes(routes!(passkeys::list))
        .routes(routes!(passkeys::rename, passkeys::delete))
        .routes(routes!(passkeys::login_start))
        .routes(routes!(passkeys::login_finish))
        .routes(routes!(sessions::get, sessions::patch_data, sessions::end))
        .routes(routes!(sessions::freshen))
        .routes(routes!(sessions::end_others))
        .routes(routes!(sessions::list_for_user, sessions::end_all_for_user))
        .routes(routes!(sessions::end_one_for_user))
        .routes(routes!(resets::create))
        .routes(routes!(resets::redeem))
        .routes(routes!(mail::send_confirmation))
        .routes(routes!(mail::redeem_confirmation))
        .routes(routes!(mail::email_code))
        .routes(routes!(providers::list))
        .routes(routes!(providers::link, providers::update, providers::get, providers::unlink))
        .routes(routes!(oidc::start))
        .routes(routes!(oidc::callback))
        .routes(routes!(oidc::exchange))
        .routes(routes!(changes::stream))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::retry))
        .routes(routes!(activity::history))
        .routes(routes!(activity::stats))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(openapi_json))
        .routes(routes!(crate::metrics::metrics_text))
}

/// The OpenAPI 3.1 document of the API (also served at `GET /openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api_routes().into_openapi();
    utoipa::Modify::modify(&doc::RateLimitAddon, &mut doc);
    doc
}

fn openapi_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        openapi().to_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "serialising the OpenAPI document");
            "{}".to_owned()
        })
    })
}

/// The API's part of the application: every documented route, the problem+json answers
/// for unknown routes and wrong methods, and the safety net that turns any other error
/// answer into a problem document. [`crate::app::build_app`] adds the admin page and the
/// outer layers.
pub(crate) fn api_router() -> Router<AppState> {
    let (router, _) = api_routes().split_for_parts();
    router
        .route("/problems", axum::routing::get(problems::index))
        .route("/problems/{code}", axum::routing::get(problems::show))
        .fallback(not_found)
        // Must follow every route: it is set on the method routers that exist now.
        .method_not_allowed_fallback(method_not_allowed)
}

/// The 500 problem that answers a panicking handler (the edge layer calls it).
pub(crate) fn on_panic(cause: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = cause
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| cause.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = %what, "a handler panicked");
    ApiError::internal().into_response()
}

/// Keeps the promise that every error answer is a problem document, whatever layer made
/// it: an error status without `application/problem+json` is replaced by the problem of
/// that status (keeping `Allow`, `Retry-After` and `WWW-Authenticate`). Handlers never
/// rely on this; it catches what a framework layer might answer on its own. An HTML
/// answer is left alone: those are the admin page's own error pages, made for a browser.
pub(crate) fn problem_safety_net(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == error::PROBLEM_JSON.as_bytes());
    let is_html =
        res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_problem || is_html {
        return res;
    }
    tracing::warn!(%status, "an error answer was not a problem document; replacing it");
    let mut fresh = ApiError::for_status(status).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = res.headers().get(&name) {
            fresh.headers_mut().insert(name, v.clone());
        }
    }
    fresh
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// Liveness: the process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process is up", body = Health))
)]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// Readiness: storage answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Storage answers", body = Health),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Health>, ApiError> {
    match state.service.ready().await {
        Ok(()) => Ok(axum::Json(Health { status: "ok" })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::storage_unavailable())
        }
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], openapi_text()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn error_answers_from_other_layers_become_problems() {
        let app = Router::new()
            .route("/boom", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "stack trace with secrets") }))
            .route(
                "/busy",
                get(|| async { (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "7")], "slow down") }),
            )
            .route("/fine", get(|| async { "ok" }))
            .route(
                "/page",
                get(|| async { (StatusCode::FORBIDDEN, axum::response::Html("<p>not yours</p>")) }),
            )
            .layer(tower::util::MapResponseLayer::new(problem_safety_net));
        let call = |path: &'static str| {
            let app = app.clone();
            async move {
                let res = app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
                let status = res.status();
                let headers = res.headers().clone();
                let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
                (status, headers, String::from_utf8(body.to_vec()).unwrap())
            }
        };
        let (status, headers, body) = call("/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(headers[header::CONTENT_TYPE], error::PROBLEM_JSON);
        assert!(body.contains(r#""code":"internal""#) && !body.contains("secrets"), "{body}");
        let (status, headers, body) = call("/busy").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "7");
        assert!(body.contains(r#""code":"rate_limited""#), "{body}");
        let (status, _, body) = call("/fine").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
        // The admin page's own HTML error pages pass through.
        let (status, _, body) = call("/page").await;
        assert_eq!((status, body.as_str()), (StatusCode::FORBIDDEN, "<p>not yours</p>"));
    }
}
