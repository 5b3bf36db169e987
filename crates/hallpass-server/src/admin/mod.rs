//! The admin web page at `/admin`: server-rendered HTML (askama templates in
//! `templates/admin/`, one CSS file; script only for passkey ceremonies) for operators.
//!
//! Map of the module:
//! - this file: [`AdminOptions`] (cookie and origin policy), the router, the security
//!   headers every admin answer carries, the signed-in `Admin` extractor (session
//!   cookie → an ordinary session of the internal scope `_admin`), CSRF and `Origin` checks,
//!   and `PageError`, the one map from domain errors to an HTML error page;
//! - `pages`: the handlers and their view models; `chart`: the SVG chart of logins;
//!   `ShownOnce`: a new API key's (or webhook endpoint's) secret, carried from the POST
//!   that made it to the one GET that shows it.
//!
//! Invariants:
//! - Admins are users of [`Scope::admin`]; no page takes that scope from a request
//!   ([`Scope::parse`] refuses `_admin`), so admins cannot be listed or edited here and no
//!   API key reaches them.
//! - Every POST is checked before anything changes: a valid admin session, the CSRF token
//!   of that session in the form (SHA-256 of a label and the session token, compared in
//!   constant time), and, when the browser sends one, an `Origin` of this site.
//!   A failed check answers 403 and changes nothing.
//! - No inline script, ever. Passkeys need `navigator.credentials`, so the pages that
//!   offer them (sign-in, the second-factor step, the admin's own account) load the one
//!   script file `static/passkey.js` under [`PASSKEY_CSP`]; everything else on those pages
//!   works without it, and every other page still forbids script altogether.
//! - The session token lives only in an `HttpOnly; SameSite=Strict; Path=/` cookie
//!   (`__Host-` prefixed and `Secure` behind HTTPS); it never appears in a URL or a log.
//! - Every state-changing action writes an audit entry (`Hallpass::audit`).
//! - Every successful POST answers a redirect (POST/redirect/GET), so reloading a page
//!   never repeats an action; a refused form is re-rendered with a 4xx and changes nothing.
//! - A destructive POST (revoking a key, deactivating a user, ending every session,
//!   deleting a webhook endpoint or rotating its secret) first answers a confirmation page naming what will happen; only the form on that page, which
//!   adds `confirm=yes`, acts. No script is needed for that.

mod chart;
mod pages;

use crate::app::AppState;
use crate::config::Config;
use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hallpass_core::{Error, Scope, SessionToken, TokenHash};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How the admin page sets its cookie and which `Origin` it accepts.
#[derive(Debug, Clone, Default)]
pub struct AdminOptions {
    /// `Secure` + `__Host-` cookie (the page is reached over HTTPS).
    pub secure_cookies: bool,
    /// The origin (`scheme://host[:port]`) of `HALLPASS_PUBLIC_URL`, when set: the only
    /// `Origin` a form may come from. Unset: the request's own `Host`.
    pub public_origin: Option<String>,
    /// New API keys waiting for the page that shows them once (one store per app).
    pub(crate) shown_once: Arc<ShownOnce>,
    /// Passwordless sign-ins started per client address (each stores a flow before anyone
    /// is signed in).
    pub(crate) passkey_starts: Arc<StartLimiter>,
}

/// How many passwordless sign-ins one client address may start per minute on the admin
/// page: far more than a person tries, few enough that nobody fills the flow table.
const PASSKEY_STARTS_PER_MINUTE: u32 = 20;

/// Counts the passwordless sign-ins each client address started in the current minute (in
/// this process's memory; at most [`StartLimiter::MAX_CLIENTS`] addresses are remembered).
#[derive(Debug, Default)]
pub(crate) struct StartLimiter {
    seen: Mutex<HashMap<String, (Instant, u32)>>,
}

impl StartLimiter {
    const MAX_CLIENTS: usize = 10_000;
    const WINDOW: Duration = Duration::from_secs(60);

    /// Counts one start from `client`: `Err(seconds to wait)` when its minute is used up.
    pub fn allow(&self, client: &str) -> Result<(), u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= Self::MAX_CLIENTS {
            seen.retain(|_, (since, _)| since.elapsed() < Self::WINDOW);
        }
        if seen.len() >= Self::MAX_CLIENTS {
            // Every remembered address is fresh: a flood from many addresses; refuse new ones.
            return Err(Self::WINDOW.as_secs());
        }
        let entry = seen.entry(client.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= Self::WINDOW {
            *entry = (Instant::now(), 0);
        }
        if entry.1 >= PASSKEY_STARTS_PER_MINUTE {
            return Err(Self::WINDOW.saturating_sub(entry.0.elapsed()).as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// A new API key (or webhook secret) as the page shows it once.
#[derive(Clone)]
pub(crate) struct NewKey {
    /// What it is: `key`, or a webhook endpoint's secret (`webhook`); a page shows only
    /// its own kind.
    pub kind: &'static str,
    pub id: String,
    pub scope: String,
    pub name: String,
    pub secret: String,
}

/// How long a new key waits for its page: the redirect is followed at once, so a minute
/// or two is plenty; a key never looked at is lost (the operator revokes it and makes
/// another), which beats a secret lying around.
const SHOWN_ONCE_TTL: Duration = Duration::from_secs(300);

/// New API keys between the POST that made them and the GET that shows them: in this
/// process's memory only (never the database, a URL or a cookie), under a random id that
/// the redirect carries, bound to the admin session that made the key, handed out once
/// and then forgotten. Another session, a second look or a late one finds nothing.
#[derive(Default)]
pub(crate) struct ShownOnce {
    held: Mutex<HashMap<String, (Instant, String, NewKey)>>,
}

impl std::fmt::Debug for ShownOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShownOnce").finish_non_exhaustive()
    }
}

impl ShownOnce {
    /// Keeps `key` for the session whose CSRF token is `session`; returns the random id
    /// to put in the redirect.
    pub fn put(&self, session: &str, key: NewKey) -> String {
        let id: String =
            hallpass_core::secret::random_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect();
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|_, (at, _, _)| at.elapsed() < SHOWN_ONCE_TTL);
        held.insert(id.clone(), (Instant::now(), session.to_owned(), key));
        id
    }

    /// The key kept under `id` for this session, removed: it is shown this once.
    pub fn take(&self, session: &str, id: &str) -> Option<NewKey> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = held.get(id).is_some_and(|(at, s, _)| s == session && at.elapsed() < SHOWN_ONCE_TTL);
        if fresh { held.remove(id).map(|(_, _, k)| k) } else { None }
    }
}

impl AdminOptions {
    /// From the configuration: secure cookies when `admin_secure_cookies` says so, else
    /// when `public_url` is `https://...`.
    pub fn from_config(config: &Config) -> Self {
        let public = config.public_url.as_deref();
        let https = public.is_some_and(|u| u.starts_with("https://"));
        Self {
            secure_cookies: config.admin_secure_cookies.unwrap_or(https),
            public_origin: public.and_then(origin_of),
            shown_once: Arc::default(),
            passkey_starts: Arc::default(),
        }
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure_cookies { "__Host-hallpass_admin" } else { "hallpass_admin" }
    }

    /// The device cookie's name: this browser's device token of the admin sign-in, kept a
    /// year so that an attacker's failed sign-ins never throttle a browser that has signed
    /// in before (see `hallpass_core::ThrottleSettings`).
    pub fn device_cookie_name(&self) -> &'static str {
        if self.secure_cookies { "__Host-hallpass_admin_device" } else { "hallpass_admin_device" }
    }

    fn device_cookie(&self, value: &str) -> HeaderValue {
        self.cookie_named(self.device_cookie_name(), value, Some(365 * 24 * 3600))
    }

    fn cookie(&self, value: &str, max_age: Option<u32>) -> HeaderValue {
        self.cookie_named(self.cookie_name(), value, max_age)
    }

    fn cookie_named(&self, name: &str, value: &str, max_age: Option<u32>) -> HeaderValue {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
        if self.secure_cookies {
            c.push_str("; Secure");
        }
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// `scheme://host[:port]` of a URL.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{}://{}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
}

/// The host of an authority (`host[:port]`, `[v6][:port]`), without port or brackets.
pub(crate) fn host_only(authority: &str) -> &str {
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
}

/// The routes of the admin page (merged into the app by `build_app`).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/admin", get(pages::dashboard))
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        .route("/admin/login", get(pages::login_form).post(pages::login))
        .route("/admin/login/mfa", post(pages::login_mfa))
        .route("/admin/login/passkey/start", post(pages::passkey_login_start))
        .route("/admin/login/passkey", post(pages::passkey_login))
        .route("/admin/account", get(pages::account))
        .route("/admin/account/totp", post(pages::totp_start))
        .route("/admin/account/totp/confirm", post(pages::totp_confirm))
        .route("/admin/account/recovery-codes", post(pages::new_recovery_codes))
        .route("/admin/account/factors/remove", post(pages::remove_own_factors))
        .route("/admin/account/passkeys/start", post(pages::passkey_register_start))
        .route("/admin/account/passkeys", post(pages::passkey_register))
        .route("/admin/account/passkeys/delete", post(pages::passkey_delete))
        .route("/admin/logout", post(pages::logout))
        .route("/admin/users", get(pages::users))
        .route("/admin/users/{scope}/{id}", get(pages::user).post(pages::update_user))
        .route("/admin/users/{scope}/{id}/active", post(pages::set_active))
        .route("/admin/users/{scope}/{id}/password", post(pages::set_password))
        .route("/admin/users/{scope}/{id}/sessions/end", post(pages::end_session))
        .route("/admin/users/{scope}/{id}/sessions/end-all", post(pages::end_all_sessions))
        .route("/admin/users/{scope}/{id}/mfa/remove", post(pages::remove_factors))
        .route("/admin/keys", get(pages::keys).post(pages::create_key))
        .route("/admin/keys/revoke", post(pages::revoke_key))
        .route("/admin/webhooks", get(pages::webhooks).post(pages::create_webhook))
        .route("/admin/webhooks/{scope}/{id}", get(pages::webhook))
        .route("/admin/webhooks/{scope}/{id}/retry", post(pages::retry_delivery))
        .route("/admin/webhooks/{scope}/{id}/rotate", post(pages::rotate_webhook))
        .route("/admin/webhooks/{scope}/{id}/delete", post(pages::delete_webhook))
        .route("/admin/audit", get(pages::audit))
        .route("/admin/outbox", get(pages::outbox))
        .route("/admin/outbox/retry", post(pages::retry_outbox))
        .route("/admin/static/admin.css", get(css))
        .route("/admin/static/passkey.js", get(passkey_js))
        // Anything else under /admin is an HTML 404 (the API's fallback answers JSON).
        .route("/admin/{*rest}", axum::routing::any(not_found))
        .layer(axum::middleware::from_fn_with_state(state.clone(), error_with_navigation))
        .layer(axum::middleware::map_response(security_headers))
}

/// What an error page said, left on the answer so that [`error_with_navigation`] can draw
/// it again inside the signed-in frame.
#[derive(Clone)]
struct ErrorShown {
    status: StatusCode,
    message: String,
}

/// An error page for a signed-in admin keeps the navigation and the logout button: the
/// operator who mistyped a URL or met a 404 should not feel signed out. The error itself
/// is drawn without knowing the request (`PageError` has no state), so the frame is added
/// here, after a session lookup that only error answers pay for.
async fn error_with_navigation(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let token = cookie(req.headers(), state.admin.cookie_name());
    let mut res = next.run(req).await;
    let (Some(shown), Some(token)) = (res.extensions_mut().remove::<ErrorShown>(), token) else { return res };
    let token = SessionToken::from_presented(&token);
    let Ok((_, user)) = state.service.get_session(&Scope::admin(), &token).await else { return res };
    let username = user.username.map(|u| u.as_str().to_owned()).unwrap_or_else(|| user.id.to_string());
    let l = pages::Layout::error(username, csrf_of(&token));
    let page = pages::ErrorPage { l, status: shown.status.as_u16(), message: shown.message };
    let mut framed = render(shown.status, &page);
    if let Some(wait) = res.headers().get(header::RETRY_AFTER) {
        framed.headers_mut().insert(header::RETRY_AFTER, wait.clone());
    }
    framed
}

async fn not_found() -> PageError {
    PageError::Status(StatusCode::NOT_FOUND, "No such page.".into())
}

/// The page's only style sheet, compiled in.
const CSS: &str = include_str!("../../static/admin.css");

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

/// The page's one script (passkey ceremonies), compiled in.
const PASSKEY_JS: &str = include_str!("../../static/passkey.js");

async fn passkey_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], PASSKEY_JS).into_response()
}

/// The Content-Security-Policy of every admin answer: nothing but our own style sheet and
/// same-origin forms; no script at all.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// The policy of the pages that offer passkeys (`with_passkey_script`): [`CSP`] plus our
/// own script file and same-origin `fetch` (the ceremony's start). No inline script.
pub const PASSKEY_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                               script-src 'self'; connect-src 'self'; form-action 'self'; \
                               frame-ancestors 'none'; base-uri 'none'";

/// A page that runs `passkey.js` when `passkeys` (passkeys work at this address): its
/// answer then carries [`PASSKEY_CSP`] instead of [`CSP`].
pub(crate) fn with_passkey_script(mut res: Response, passkeys: bool) -> Response {
    if passkeys {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PASSKEY_CSP));
    }
    res
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // `same-origin`, not `no-referrer`: under `no-referrer` Chromium sends `Origin: null`
    // on form posts, and the origin check could not tell our forms from anyone's. Other
    // sites still get no referrer.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// The value of cookie `name` in the request, if any.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Refuses a form posted from another site: when the browser names an `Origin` (every
/// current browser does on POST), it must be this site's; `Sec-Fetch-Site`, when sent,
/// must be `same-origin` or `none`. The CSRF token is checked besides.
fn check_origin(
    headers: &HeaderMap,
    authority: Option<&str>,
    options: &AdminOptions,
) -> Result<(), PageError> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin"
        && site != "none"
    {
        return Err(PageError::Forbidden("This form came from another site."));
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
    let ok = match &options.public_origin {
        Some(public) => origin == *public,
        None => {
            // HTTP/1.1 names the host in `Host`; HTTP/2 in the `:authority` (the URI).
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).or(authority).unwrap_or("");
            origin_of(&origin)
                .is_some_and(|o| o.split_once("://").is_some_and(|(_, h)| h == host.to_ascii_lowercase()))
        }
    };
    if ok { Ok(()) } else { Err(PageError::Forbidden("This form came from another site.")) }
}

/// The CSRF token of a session: SHA-256 of a label and the session token, in hex. It
/// proves the form was rendered for this session, and reveals nothing of the token.
fn csrf_of(token: &SessionToken) -> String {
    TokenHash::of(&format!("hallpass-admin-csrf\0{}", token.expose())).to_hex()
}

/// A signed-in admin (extracted from the session cookie); on a POST also checked for a
/// same-site `Origin`. No valid session: a redirect to the login page.
#[derive(Debug)]
pub(crate) struct Admin {
    /// The admin's username.
    pub username: String,
    /// The session's token (to end it at logout).
    pub token: SessionToken,
    /// The session's CSRF token.
    pub csrf: String,
    /// The admin's user id (scope `_admin`).
    pub user_id: Uuid,
    /// The session's id (kept when the admin changes their own second factors).
    pub session_id: Uuid,
}

impl Admin {
    /// Checks the CSRF token a form carried.
    pub fn check_csrf(&self, presented: &str) -> Result<(), PageError> {
        if TokenHash::of(presented).ct_eq(&TokenHash::of(&self.csrf)) {
            Ok(())
        } else {
            Err(PageError::Forbidden(
                "The form's security token is missing or wrong; reload the page and try again.",
            ))
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let token = cookie(&parts.headers, state.admin.cookie_name()).ok_or(PageError::Login)?;
        let token = SessionToken::from_presented(&token);
        let admin = Scope::admin();
        let (session, user) = match state.service.get_session(&admin, &token).await {
            Ok(found) => found,
            Err(Error::SessionInvalid) => return Err(PageError::Login),
            Err(e) => return Err(e.into()),
        };
        if parts.method != Method::GET && parts.method != Method::HEAD {
            check_origin(&parts.headers, parts.uri.authority().map(|a| a.as_str()), &state.admin)?;
        }
        // Using the page keeps the admin signed in (idle expiry moves forward). Freshen
        // reads the database, never a cached copy: an admin deleted or signed out through
        // another process is refused here at once.
        match state.service.freshen(&admin, &token).await {
            Ok(_) => {}
            Err(Error::SessionInvalid) => return Err(PageError::Login),
            Err(e) => return Err(e.into()),
        }
        let username = user.username.map(|u| u.as_str().to_owned()).unwrap_or_else(|| user.id.to_string());
        Ok(Admin { username, csrf: csrf_of(&token), token, user_id: user.id, session_id: session.id })
    }
}

/// The client's address as the connection reports it (never `X-Forwarded-For`).
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())))
    }
}

/// Why a page was not shown: a redirect to the login page, or an HTML error page with
/// its status.
#[derive(Debug)]
pub(crate) enum PageError {
    /// No valid admin session: to the login page.
    Login,
    /// 403: a CSRF or origin check failed.
    Forbidden(&'static str),
    /// Any other status with a sentence for the operator.
    Status(StatusCode, String),
    /// A status that asks to retry after so many seconds (503, 429).
    Wait(StatusCode, String, u32),
}

impl From<Error> for PageError {
    /// The status comes from the API's one exhaustive map (`http::error`), so a new
    /// domain error cannot answer differently here; the page only chooses the words.
    fn from(e: Error) -> Self {
        let words = match &e {
            Error::Invalid(i) => Some(i.to_string()),
            Error::WeakPassword(advice) => Some(format!("The password is too weak: {advice}")),
            Error::UserNotFound => Some("No such user.".into()),
            Error::SessionNotFound => Some("No such session.".into()),
            Error::KeyNotFound => Some("No such API key, or it is already revoked.".into()),
            Error::ProviderNotLinked => Some("No such provider link.".into()),
            Error::UsernameTaken => Some("That username is taken.".into()),
            Error::EmailTaken => Some("That email is taken.".into()),
            Error::TooLarge { field, max_bytes } => Some(format!(
                "The {field} would be larger than {max_bytes} bytes of JSON; nothing was changed."
            )),
            Error::RateLimited { retry_after_secs } => {
                Some(format!("Too many attempts; try again in {retry_after_secs} seconds."))
            }
            Error::Overloaded => Some("The server is busy hashing passwords; retry in a moment.".into()),
            Error::StorageUnavailable(_) => Some("The database is unavailable; retry in a moment.".into()),
            _ => None,
        };
        // Logs the cause of a 5xx, as for the API.
        let api = crate::http::error::ApiError::from(e);
        let status = api.status();
        let message = words.unwrap_or_else(|| {
            if status.is_server_error() {
                "Something went wrong; the server log has the details.".into()
            } else {
                format!("{} ({}).", status.canonical_reason().unwrap_or("Refused"), api.code())
            }
        });
        match api.retry_after() {
            0 => PageError::Status(status, message),
            secs => PageError::Wait(status, message, secs),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message, wait) = match self {
            PageError::Login => return Redirect::to("/admin/login").into_response(),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, m.to_owned(), 0),
            PageError::Status(status, m) => (status, m, 0),
            PageError::Wait(status, m, secs) => (status, m, secs),
        };
        let page = pages::ErrorPage {
            l: pages::Layout::bare("Error"),
            status: status.as_u16(),
            message: message.clone(),
        };
        let mut res = render(status, &page);
        res.extensions_mut().insert(ErrorShown { status, message });
        if wait > 0 {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        }
        res
    }
}

/// Renders a template as an HTML answer with `status`.
pub(crate) fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "admin: rendering a template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>Rendering failed."),
            )
                .into_response()
        }
    }
}

/// Parses an id in a path, a 404 page when it is not one.
pub(crate) fn path_id(s: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(s).map_err(|_| PageError::Status(StatusCode::NOT_FOUND, "No such user.".into()))
}

/// The words for a login outcome, as the dashboard's caption says them.
pub(crate) fn outcome_words(code: &str) -> &str {
    match code {
        "success" => "success",
        "wrong_password" => "wrong password",
        "unknown_user" => "unknown user",
        "inactive" => "user inactive",
        "throttled" => "throttled (too many attempts)",
        "invalid_state" => "sign-in state unknown, used or expired",
        "token_exchange_failed" => "provider refused the code",
        "id_token_invalid" => "provider's ID token invalid",
        "identity_unknown" => "identity unknown (new users refused)",
        other => other,
    }
}

/// Parses a scope in a path or form; `_admin` and other invalid names are refused.
pub(crate) fn scope_of(s: &str) -> Result<Scope, PageError> {
    Scope::parse(s).map_err(|e| PageError::Status(StatusCode::BAD_REQUEST, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every domain error answers the page with the API's status (one map); an
    /// overloaded hashing pool is a 503 page with `Retry-After`, never a 500.
    #[test]
    fn the_page_answers_every_domain_error_with_the_apis_status() {
        for (e, status, code) in crate::http::error::every_error_sample() {
            let res = PageError::from(e).into_response();
            assert_eq!(res.status().as_u16(), status, "{code}");
            assert_eq!(
                res.headers().contains_key(header::RETRY_AFTER),
                matches!(status, 429 | 503),
                "{code}"
            );
        }
        let res = PageError::from(Error::Overloaded).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn passwordless_starts_are_bounded_per_client() {
        let limiter = StartLimiter::default();
        for _ in 0..PASSKEY_STARTS_PER_MINUTE {
            assert!(limiter.allow("192.0.2.1").is_ok());
        }
        let wait = limiter.allow("192.0.2.1").unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(limiter.allow("192.0.2.2").is_ok(), "another client has its own count");
    }

    #[test]
    fn origins_and_cookies() {
        assert_eq!(origin_of("https://Admin.Example.com/x?y").as_deref(), Some("https://admin.example.com"));
        assert_eq!(origin_of("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(origin_of("nope"), None);
        assert_eq!(host_only("localhost:8080"), "localhost");
        assert_eq!(host_only("[::1]:8080"), "::1");
        assert_eq!(host_only("auth.example.com"), "auth.example.com");
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; hallpass_admin=hps_x; b=2"));
        assert_eq!(cookie(&h, "hallpass_admin").as_deref(), Some("hps_x"));
        assert_eq!(cookie(&h, "c"), None);
        let secure = AdminOptions { secure_cookies: true, ..AdminOptions::default() };
        let c = secure.cookie("v", None);
        assert_eq!(c.to_str().unwrap(), "__Host-hallpass_admin=v; Path=/; HttpOnly; SameSite=Strict; Secure");
    }

    #[test]
    fn origin_check() {
        let opts = AdminOptions::default();
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(check_origin(&h, None, &opts).is_ok(), "no Origin: the CSRF token decides");
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(check_origin(&h, None, &opts).is_ok());
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(check_origin(&h, None, &opts).is_err());
        let public = AdminOptions {
            secure_cookies: true,
            public_origin: Some("https://auth.example.com".into()),
            ..AdminOptions::default()
        };
        h.insert(header::ORIGIN, HeaderValue::from_static("https://auth.example.com"));
        assert!(check_origin(&h, None, &public).is_ok());
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(check_origin(&h, None, &public).is_err());
    }
}
