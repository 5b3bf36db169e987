//! Handlers of `/v1/oidc`: sign-in through an identity provider, hallpass doing the
//! redirect dance (see `crate::oidc` for the provider side).
//!
//! 1. `POST /v1/oidc/{provider}/start` (API key) makes an `oidc_state` flow (10 minutes)
//!    holding the provider, `return_to`, the PKCE verifier (sealed), the nonce and, when the
//!    call carried a valid `X-Session-Token`, the user to link; its handle is the `state`.
//! 2. `GET /v1/oidc/{provider}/callback` (public: the browser comes here) takes that flow
//!    (once), exchanges the provider's code, validates the answer, and stores who signed in
//!    as an `oidc_code` flow (60 s; provider tokens sealed); the browser goes to
//!    `return_to?code=<handle>`. An unknown, used or expired state is 400 `invalid_state`
//!    and goes nowhere; a provider error goes to `return_to?error=...`.
//! 3. `POST /v1/oidc/exchange` (API key of the same scope) takes the code flow (once) and
//!    logs in (201, as a password login) or, for a link flow, links (200 `{identity}`).
//!
//! No session token is ever put in a URL: only the one-time code travels through the
//! browser, and it is worth nothing without the scope's API key.

use crate::app::AppState;
use crate::http::dto::{
    IdentityDto, LoginClientDto, LoginDto, LoginResponse, MfaChallengeResponse, SessionDto,
};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, Caller, CostlyCaller, SESSION_TOKEN_HEADER};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hallpass_core::service::ProviderIdentity;
use hallpass_core::{
    ClientId, ClientInfo, Error, FlowHandle, FlowKind, JsonObject, Outcome, ProviderName, Scope,
    ServerSecret, SessionToken,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;
use utoipa::ToSchema;
use uuid::Uuid;

/// Starts a sign-in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcStartRequest {
    /// Where the browser goes when the sign-in ends: one of the provider's configured
    /// `return_to` URLs (compared without query). It gets `?code=` (or `?error=`) added.
    pub return_to: String,
}

/// Where to send the browser.
#[derive(Debug, Serialize, ToSchema)]
pub struct OidcStartResponse {
    /// The provider's authorization URL: redirect the browser there.
    pub authorize_url: String,
    /// When the sign-in expires (10 minutes).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// What the provider sends the browser back with.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OidcCallbackQuery {
    /// The provider's authorization code.
    pub code: Option<String>,
    /// The `state` of the sign-in.
    pub state: Option<String>,
    /// The provider's error (a denied consent: `access_denied`).
    pub error: Option<String>,
    /// The provider's words about the error.
    pub error_description: Option<String>,
    /// The issuer (RFC 9207), when the provider sends it.
    pub iss: Option<String>,
}

/// Redeems the callback's one-time code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcExchangeRequest {
    /// The `code` the browser brought to `return_to`.
    pub code: String,
    /// Initial session data. Default `{}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<JsonObject>,
    /// The end user's client, and the device token of this browser.
    #[serde(default)]
    pub client: Option<LoginClientDto>,
}

/// The answer of an exchange that ended a link flow.
#[derive(Debug, Serialize, ToSchema)]
pub struct OidcLinked {
    /// The new (or refreshed) link.
    pub identity: IdentityDto,
}

/// The 200 answers of `POST /v1/oidc/exchange`: a link, or an MFA challenge.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OidcExchangeOk {
    /// A link flow ended.
    Linked(OidcLinked),
    /// The user has a second factor.
    Mfa(MfaChallengeResponse),
}

/// What the state flow keeps between start and callback.
#[derive(Debug, Serialize, Deserialize)]
struct StatePayload {
    provider: String,
    return_to: String,
    /// The PKCE verifier, sealed.
    verifier: String,
    nonce: String,
    link_user: Option<Uuid>,
}

/// What the code flow keeps between callback and exchange.
#[derive(Serialize, Deserialize)]
struct CodePayload {
    provider: String,
    link_user: Option<Uuid>,
    subject: String,
    email: Option<String>,
    email_verified: bool,
    username: Option<String>,
    /// Sealed.
    access_token: Option<String>,
    /// Unix seconds.
    access_token_expiry: Option<i64>,
    /// Sealed.
    refresh_token: Option<String>,
}

fn secret(state: &AppState) -> Result<&ServerSecret, ApiError> {
    state.service.server_secret().ok_or_else(|| {
        tracing::error!("identity providers are configured but the service has no server secret");
        ApiError::internal()
    })
}

/// What a flow's sealed values are bound to.
fn flow_aad(kind: FlowKind, scope: &Scope, what: &str) -> Vec<u8> {
    format!("flow\0{kind}\0{}\0{what}", scope.as_str()).into_bytes()
}

fn open(
    secret: &ServerSecret,
    kind: FlowKind,
    scope: &Scope,
    what: &str,
    sealed: &str,
) -> Result<String, ApiError> {
    secret.open_text(&flow_aad(kind, scope, what), sealed).map_err(|e| {
        tracing::error!(error = %e, "a flow's sealed value does not open");
        ApiError::internal()
    })
}

/// `return_to` with one more query parameter.
fn redirect_to(return_to: &str, key: &str, value: &str) -> Response {
    let location = match Url::parse(return_to) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair(key, value);
            url.to_string()
        }
        Err(_) => return ApiError::internal().into_response(),
    };
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Starts a sign-in with a provider configured for the key's scope. With a valid
/// `X-Session-Token` the sign-in links the provider identity to that session's user
/// instead of logging in. Redirect the browser to `authorize_url`.
#[utoipa::path(
    post,
    path = "/v1/oidc/{provider}/start",
    tag = "oidc",
    security(("bearer" = [])),
    params(
        ("provider" = String, Path, description = "The provider's name in the scope's configuration"),
        ("X-Session-Token" = Option<String>, Header, description = "A session of the user to link the identity to"),
    ),
    request_body = OidcStartRequest,
    responses(
        (status = 200, description = "The authorization URL", body = OidcStartResponse),
        (status = 400, description = "`invalid_return_to` or `invalid_request`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`, or `session_invalid` for a token that is not valid",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`provider_unknown`", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 502, description = "`provider_failed`: the provider's discovery could not be read",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(provider): ApiPath<String>,
    ApiJson(req): ApiJson<OidcStartRequest>,
) -> Result<Json<OidcStartResponse>, ApiError> {
    let scope = caller.scope();
    let name = ProviderName::parse(&provider)?;
    let provider = state.oidc.provider(scope, &name).ok_or(Error::ProviderUnknown)?;
    let return_to = Url::parse(req.return_to.trim()).map_err(|_| Error::InvalidReturnTo)?;
    if !provider.spec.allows_return_to(&return_to) {
        return Err(Error::InvalidReturnTo.into());
    }
    let link_user = match headers.get(SESSION_TOKEN_HEADER) {
        None => None,
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| ApiError::session_invalid("the session token is unknown, expired or ended"))?;
            let (session, _) = state.service.get_session(scope, &SessionToken::from_presented(text)).await?;
            Some(session.user_id)
        }
    };
    let redirect_uri = state.oidc.redirect_uri(&name).ok_or_else(ApiError::internal)?;
    let secret = secret(&state)?;
    // The handle is made first: it is the `state` the authorization URL carries.
    let handle = FlowHandle::generate();
    let started = provider.start(&redirect_uri, handle.expose()).await.map_err(|e| {
        tracing::warn!(provider = %name.as_str(), error = %format!("{e:#}"), "starting a sign-in failed");
        Error::ProviderFailed(format!("{e:#}"))
    })?;
    let payload = StatePayload {
        provider: name.as_str().to_owned(),
        return_to: return_to.to_string(),
        verifier: secret.seal_text(&flow_aad(FlowKind::OidcState, scope, "verifier"), &started.pkce_verifier),
        nonce: started.nonce,
        link_user,
    };
    let payload = serde_json::to_value(&payload).map_err(|_| ApiError::internal())?;
    let expires_at = state
        .service
        .store_flow(scope, FlowKind::OidcState, &handle, payload, crate::oidc::STATE_TTL)
        .await?;
    Ok(Json(OidcStartResponse { authorize_url: started.authorize_url, expires_at }))
}

/// Where the provider sends the browser back (public: no API key). Checks the `state`,
/// exchanges the provider's code, validates the ID token, then redirects to the sign-in's
/// `return_to` with a one-time `code` (60 s) for `POST /v1/oidc/exchange`, or with
/// `error` (the provider's, or `token_exchange_failed` / `id_token_invalid`).
#[utoipa::path(
    get,
    path = "/v1/oidc/{provider}/callback",
    tag = "oidc",
    params(
        ("provider" = String, Path, description = "The provider's name"),
        OidcCallbackQuery,
    ),
    responses(
        (status = 302, description = "To `return_to?code=...` or `return_to?error=...`"),
        (status = 400, description = "`invalid_state`: unknown, used or expired; the browser is sent nowhere",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn callback(
    State(state): State<AppState>,
    crate::admin::ClientIp(ip): crate::admin::ClientIp,
    headers: HeaderMap,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(query): ApiQuery<OidcCallbackQuery>,
) -> Result<Response, ApiError> {
    // The browser itself is the client here: its address as the connection reports it
    // (never `X-Forwarded-For`) and its user agent go into any failure recorded below.
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect::<String>());
    let browser = ClientInfo { ip, user_agent };
    let name = ProviderName::parse(&provider).map_err(|_| Error::InvalidState)?;
    let handle = FlowHandle::from_presented(query.state.as_deref().unwrap_or_default());
    let flow = match query.state.as_deref() {
        Some(s) if !s.trim().is_empty() => {
            state.service.take_flow(None, FlowKind::OidcState, &handle).await?
        }
        _ => None,
    };
    let payload = flow
        .as_ref()
        .and_then(|f| serde_json::from_value::<StatePayload>(f.payload.clone()).ok())
        .filter(|p| p.provider == name.as_str());
    let (Some(flow), Some(payload)) = (flow, payload) else {
        tracing::warn!(provider = %name.as_str(), "a sign-in came back with an unknown, used or expired state");
        // The state is the only thing that tells the scope; without it the failure is
        // recorded, without a user, in every scope that has a provider of that name (an
        // operator of each may be the one probed). A name no scope has belongs to nobody:
        // the log line above is all.
        for scope in state.oidc.scopes_with(&name) {
            state.service.record_oidc_failure(&scope, &name, None, Outcome::InvalidState, &browser).await?;
        }
        return Err(Error::InvalidState.into());
    };
    let scope = flow.scope;
    if let Some(error) = query.error.as_deref() {
        tracing::info!(provider = %name.as_str(), error, description = query.error_description.as_deref().unwrap_or(""),
            "the provider ended a sign-in with an error");
        return Ok(redirect_to(&payload.return_to, "error", error));
    }
    let Some(provider) = state.oidc.provider(&scope, &name) else {
        return Ok(redirect_to(&payload.return_to, "error", "provider_unknown"));
    };
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return Ok(redirect_to(&payload.return_to, "error", "invalid_request"));
    };
    let secret = secret(&state)?;
    let verifier = open(secret, FlowKind::OidcState, &scope, "verifier", &payload.verifier)?;
    let redirect_uri = state.oidc.redirect_uri(&name).ok_or_else(ApiError::internal)?;
    let finished =
        provider.finish(&redirect_uri, code, &verifier, &payload.nonce, query.iss.as_deref()).await;
    let (who, expires_in) = match finished {
        Ok(done) => done,
        Err(failure) => {
            tracing::warn!(provider = %name.as_str(), scope = %scope.as_str(), reason = failure.error_code(),
                detail = %failure.detail, "a sign-in failed at the callback");
            state
                .service
                .record_oidc_failure(&scope, &name, payload.link_user, failure.outcome, &browser)
                .await?;
            return Ok(redirect_to(&payload.return_to, "error", failure.error_code()));
        }
    };
    let seal = |what: &str, t: &Option<String>| {
        t.as_deref().map(|t| secret.seal_text(&flow_aad(FlowKind::OidcCode, &scope, what), t))
    };
    let expiry = expires_in
        .and_then(|d| time::Duration::try_from(d).ok())
        .map(|d| (state.service.now() + d).unix_timestamp());
    let code_payload = CodePayload {
        provider: name.as_str().to_owned(),
        link_user: payload.link_user,
        subject: who.subject.as_str().to_owned(),
        email: who.email.clone(),
        email_verified: who.email_verified,
        username: who.username.clone(),
        access_token: seal("access", &who.access_token),
        access_token_expiry: expiry,
        refresh_token: seal("refresh", &who.refresh_token),
    };
    let value = serde_json::to_value(&code_payload).map_err(|_| ApiError::internal())?;
    let handle = FlowHandle::generate();
    state.service.store_flow(&scope, FlowKind::OidcCode, &handle, value, crate::oidc::CODE_TTL).await?;
    Ok(redirect_to(&payload.return_to, "code", handle.expose()))
}

/// Redeems the callback's one-time code with the API key of the sign-in's scope: a login
/// exactly like a password login (201, `login.oauth` filled, event `oidc:<provider>`), or
/// for a link flow the new link (200). A first sign-in creates the user unless the
/// provider refuses new users (403 `identity_unknown`). A link flow must be ended with the
/// `X-Session-Token` of the user who started it (401 `session_invalid` without a valid
/// one, 400 `invalid_code` with another user's), so nobody can have their link flow
/// completed in someone else's browser.
#[utoipa::path(
    post,
    path = "/v1/oidc/exchange",
    tag = "oidc",
    security(("bearer" = [])),
    params(
        ("X-Session-Token" = Option<String>, Header, description = "For a link flow: the session of the user who started it"),
    ),
    request_body = OidcExchangeRequest,
    responses(
        (status = 201, description = "Logged in: the token (shown once), the session and the login object",
            body = LoginResponse),
        (status = 200, description = "A link flow ended: the link (`{identity}`); or the user has a second factor: an MFA challenge (`{mfa_required: true, challenge, ...}`) to answer at `POST /v1/sessions/mfa`", body = OidcExchangeOk),
        (status = 400, description = "`invalid_code` (unknown, used, expired or another scope's) or `invalid_request`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`, or `session_invalid`: a link flow without the valid session of its user",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`identity_unknown` (new users refused) or `user_inactive`",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`provider_unknown` (removed from the configuration meanwhile) or `user_not_found`",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`identity_taken`: a link flow met an identity of another user",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn exchange(
    State(state): State<AppState>,
    CostlyCaller(caller): CostlyCaller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<OidcExchangeRequest>,
) -> Result<Response, ApiError> {
    let scope = caller.scope();
    let (client, device) = req.client.map(LoginClientDto::into_domain).transpose()?.unwrap_or_default();
    let data = req.data.unwrap_or_default();
    let handle = FlowHandle::from_presented(&req.code);
    let flow =
        state.service.take_flow(Some(scope), FlowKind::OidcCode, &handle).await?.ok_or(Error::InvalidCode)?;
    let payload: CodePayload = serde_json::from_value(flow.payload).map_err(|_| Error::InvalidCode)?;
    let secret = secret(&state)?;
    let unseal = |what: &str, t: &Option<String>| -> Result<Option<String>, ApiError> {
        t.as_deref().map(|t| open(secret, FlowKind::OidcCode, scope, what, t)).transpose()
    };
    let name = ProviderName::parse(&payload.provider).map_err(|_| ApiError::internal())?;
    let who = ProviderIdentity {
        provider: name.clone(),
        subject: ClientId::parse(&payload.subject).map_err(|_| ApiError::internal())?,
        email: payload.email,
        email_verified: payload.email_verified,
        username: payload.username,
        access_token: unseal("access", &payload.access_token)?,
        access_token_expiry: payload
            .access_token_expiry
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
        refresh_token: unseal("refresh", &payload.refresh_token)?,
    };
    if let Some(user_id) = payload.link_user {
        // A link ends only in the browser session that started it: otherwise anyone could
        // send a user their own half-done link flow and get the user's identity linked to
        // their account. The backend passes the session token it has for this browser.
        let text = headers.get(SESSION_TOKEN_HEADER).and_then(|v| v.to_str().ok()).ok_or_else(|| {
            ApiError::session_invalid(
                "a link flow ends with the X-Session-Token of the session that started it",
            )
        })?;
        let (session, _) = state.service.get_session(scope, &SessionToken::from_presented(text)).await?;
        if session.user_id != user_id {
            return Err(Error::InvalidCode.into());
        }
        let identity = state.service.oidc_link(scope, user_id, who).await?;
        let body = OidcLinked { identity: IdentityDto::from_identity(&identity, state.service.now()) };
        return Ok((StatusCode::OK, Json(body)).into_response());
    }
    let provider = state.oidc.provider(scope, &name).ok_or(Error::ProviderUnknown)?;
    let result = state.service.oidc_login(scope, who, provider.spec.policy, data, client, device).await;
    state.metrics.login(true, &result);
    let done = match result {
        Err(Error::MfaRequired(challenge)) => {
            return Ok((StatusCode::OK, Json(MfaChallengeResponse::from(&*challenge))).into_response());
        }
        other => other?,
    };
    let body = LoginResponse {
        token: done.token.expose().to_owned(),
        session: SessionDto::from(&done.session),
        login: LoginDto::from(&done.login),
        device: done.device.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
