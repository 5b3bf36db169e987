//! Extractors: how a handler gets its inputs, with every failure as a problem document.
//!
//! This module owns the edge of a request: the API key ([`Caller`], which fixes the one
//! scope the request may touch), the session token header ([`SessionHeader`]), and
//! wrappers around axum's `Json`, `Path` and `Query` ([`ApiJson`], [`ApiPath`],
//! [`ApiQuery`]) that turn axum's plain-text rejections into `application/problem+json`.
//!
//! A JSON body sent without a JSON `Content-Type` is 415 `unsupported_media_type`; a body
//! over the limit is 413 `payload_too_large`; anything else unreadable is 400
//! `invalid_request`.

use crate::app::AppState;
use crate::http::error::ApiError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use hallpass_core::{ApiKey, KeyCall, Scope, SessionToken};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// The header that carries a session token.
pub const SESSION_TOKEN_HEADER: &str = "x-session-token";

/// The authenticated API key of a request. Its scope is the only scope the request touches.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key (shared with the process's key cache: nothing is copied per request).
    pub key: Arc<ApiKey>,
}

impl Caller {
    /// The scope of the key.
    pub fn scope(&self) -> &Scope {
        &self.key.scope
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

impl Caller {
    async fn authenticate(parts: &Parts, state: &AppState, call: KeyCall) -> Result<Self, ApiError> {
        let presented = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        let key = state.service.authenticate_key(presented).await?.ok_or_else(ApiError::unauthorized)?;
        let span = tracing::Span::current();
        span.record("scope", tracing::field::display(&key.scope));
        span.record("key_id", tracing::field::display(key.id));
        // The key's request budget of this kind of call (per process); 429 `rate_limited`
        // with `Retry-After`.
        state.service.admit_key(&key, call)?;
        Ok(Self { key })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Self::authenticate(parts, state, KeyCall::Other).await
    }
}

/// The caller of a costly call, one that hashes a password or issues a code (login,
/// registration, setting or resetting a password, requesting a code): the same key check
/// as [`Caller`], spending the key's costly-call budget (`HALLPASS_THROTTLE_KEY_RATE`)
/// instead of the budget of other calls, which is off by default.
#[derive(Debug, Clone)]
pub struct CostlyCaller(pub Caller);

impl FromRequestParts<AppState> for CostlyCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Caller::authenticate(parts, state, KeyCall::Costly).await.map(Self)
    }
}

/// The session token of the `X-Session-Token` header. Missing or unreadable: 401
/// `session_invalid`, as for a token that was never issued.
#[derive(Debug)]
pub struct SessionHeader(pub SessionToken);

impl<S: Send + Sync> FromRequestParts<S> for SessionHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(SESSION_TOKEN_HEADER)
            .ok_or_else(|| ApiError::session_invalid("the X-Session-Token header is missing"))?;
        let text = value
            .to_str()
            .map_err(|_| ApiError::session_invalid("the session token is unknown, expired or ended"))?;
        Ok(Self(SessionToken::from_presented(text)))
    }
}

/// A JSON request body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::unsupported_media_type()),
            Err(JsonRejection::BytesRejection(r)) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::payload_too_large())
            }
            Err(JsonRejection::BytesRejection(r)) => Err(ApiError::invalid_request(format!(
                "the request body could not be read: {}",
                r.body_text()
            ))),
            Err(JsonRejection::JsonDataError(r)) => Err(ApiError::invalid_request(r.body_text())),
            Err(JsonRejection::JsonSyntaxError(r)) => Err(ApiError::invalid_request(r.body_text())),
            Err(other) => Err(ApiError::invalid_request(other.body_text())),
        }
    }
}

/// Path parameters.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(r) if r.status().is_server_error() => {
                // A route whose parameters do not fit its handler: a bug, not the client's.
                tracing::error!(error = %r.body_text(), "path parameters do not fit the handler");
                Err(ApiError::internal())
            }
            Err(r) => Err(path_rejection(r)),
        }
    }
}

fn path_rejection(r: PathRejection) -> ApiError {
    ApiError::invalid_request(r.body_text())
}

/// A query string.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|r: QueryRejection| ApiError::invalid_request(r.body_text()))
    }
}
