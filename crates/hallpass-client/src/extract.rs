//! [`Authenticated`], the axum extractor (feature `axum`): the session and user of the
//! request's token, checked through [`Sessions`], or a 401 problem.

use crate::cache::Sessions;
use crate::types::SessionWithUser;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::ops::Deref;
use std::sync::Arc;

/// The checked session and user of a request. The token is read from `X-Session-Token`,
/// else `Authorization: Bearer`, else the cookie of [`crate::CacheConfig::cookie`]. The
/// app's state must give a [`Sessions`] (`impl FromRef<AppState> for Sessions`, or the
/// state is the `Sessions` itself).
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use hallpass_client::{Authenticated, CacheConfig, Client, Sessions};
///
/// async fn me(who: Authenticated) -> String {
///     format!("hello {}", who.user.username.as_deref().unwrap_or("you"))
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let sessions = Sessions::start(Client::new("http://127.0.0.1:8080", "hp_...")?, CacheConfig::default());
/// let app: Router = Router::new().route("/me", get(me)).with_state(sessions);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<SessionWithUser>);

impl Deref for Authenticated {
    type Target = SessionWithUser;
    fn deref(&self) -> &SessionWithUser {
        &self.0
    }
}

/// Why [`Authenticated`] refused a request.
#[derive(Debug)]
pub enum Rejection {
    /// No token, or hallpass said it is not a valid session: 401 `session_invalid`.
    Unauthenticated,
    /// hallpass could not answer, or refused the app itself (a wrong API key, throttling):
    /// 503 `storage_unavailable` with `Retry-After: 1` (the cause is logged).
    Unavailable(crate::Error),
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, code, title, detail) = match &self {
            Rejection::Unauthenticated => {
                (StatusCode::UNAUTHORIZED, "session_invalid", "Session invalid", "sign in first".to_owned())
            }
            Rejection::Unavailable(e) => {
                tracing::warn!(error = %e, "hallpass could not check a session");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "Storage unavailable",
                    "sessions cannot be checked right now".to_owned(),
                )
            }
        };
        let body = serde_json::json!({
            "type": format!("/problems/{code}"), "title": title, "status": status.as_u16(),
            "detail": detail, "code": code,
        });
        let mut res = (status, body.to_string()).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        } else {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// The session token of a request: `X-Session-Token`, `Authorization: Bearer`, or the
/// cookie named `cookie`.
pub fn token_from(headers: &HeaderMap, cookie: Option<&str>) -> Option<String> {
    if let Some(t) = headers.get(crate::client::SESSION_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(t.trim().to_owned()).filter(|t| !t.is_empty());
    }
    if let Some(a) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, rest) = a.trim().split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| rest.trim().to_owned())
            .filter(|t| !t.is_empty());
    }
    let name = cookie?;
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .filter(|t| !t.is_empty())
}

impl<S> FromRequestParts<S> for Authenticated
where
    Sessions: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let sessions = Sessions::from_ref(state);
        let token = token_from(&parts.headers, sessions.cookie()).ok_or(Rejection::Unauthenticated)?;
        match sessions.check(&token).await {
            Ok(v) => Ok(Authenticated(v)),
            // Only the token's own fault is the user's 401: a wrong API key (`unauthorized`)
            // or throttling is the app's problem, answered 503 and logged.
            Err(e) if e.is_session_invalid() => Err(Rejection::Unauthenticated),
            Err(e) => Err(Rejection::Unavailable(e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn token_sources_in_order() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; sid=\"tok-c\"; b=2"));
        assert_eq!(token_from(&h, Some("sid")).as_deref(), Some("tok-c"));
        assert_eq!(token_from(&h, None), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer tok-b"));
        assert_eq!(token_from(&h, Some("sid")).as_deref(), Some("tok-b"));
        h.insert("x-session-token", HeaderValue::from_static("tok-x"));
        assert_eq!(token_from(&h, Some("sid")).as_deref(), Some("tok-x"));
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(token_from(&h, None), None);
    }
}
