//! Talking to one provider: the authorization URL (PKCE S256, `state`, `nonce`), the code
//! exchange, ID token validation, userinfo; and the HTTP client all of it goes through.
//!
//! - **HTTP.** One reqwest client (rustls with ring), given to the `openidconnect` and
//!   `oauth2` crates as their `AsyncHttpClient`. It follows no redirects (a token or
//!   discovery answer that redirects is an error, so a provider's compromised redirect
//!   cannot send a client secret elsewhere), times out after 10 s, and reads at most
//!   1 MiB of an answer.
//! - **Discovery and keys are cached** per provider (an hour). An ID token signed with a
//!   key id the cached set lacks makes one fresh fetch of the JWKS (at most one per 10 s per
//!   provider, so hostile tokens cannot make hallpass hammer the provider), then one more
//!   try.
//! - **ID token validation** (OpenID Connect Core 3.1.3.7): the signature against the
//!   issuer's JWKS, `iss` equal to the configured issuer, `aud` holding our client id and no
//!   untrusted audience, `azp` equal to our client id where present, the flow's `nonce`,
//!   `exp` (60 s leeway) and `iat` (not more than 60 s in the future, nor older than a
//!   flow). Claims the ID token lacks are read from the userinfo endpoint, whose `sub`
//!   must be the ID token's.
//! - **Plain OAuth 2.0** providers (GitHub style) have no ID token: the user is whoever
//!   the userinfo endpoint says the access token belongs to (`subject_claim`).

use super::{ProviderKind, ProviderSpec, STATE_TTL};
use crate::oidc::ProviderKind::OAuth2;
use anyhow::Context as _;
use base64::Engine as _;
use hallpass_core::service::ProviderIdentity;
use hallpass_core::{ClientId, Outcome};
use oauth2::basic::BasicClient;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreProviderMetadata,
};
use openidconnect::{
    AccessToken, AuthUrl, AuthorizationCode, ClaimsVerificationError, ClientSecret, CsrfToken, HttpRequest,
    HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    SignatureVerificationError, TokenResponse, TokenUrl,
};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// Largest answer read from a provider.
const MAX_BODY: usize = 1024 * 1024;
/// How long discovery and keys are trusted before they are fetched again.
const CACHE_FOR: Duration = Duration::from_secs(3600);
/// Shortest time between two fetches of the keys for an unknown key id.
const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// Clock difference allowed with the provider.
const LEEWAY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The HTTP client every provider call goes through: no redirects, 10 s timeout.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    crate::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("hallpass/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client for identity providers")
}

/// Why a provider call failed.
#[derive(Debug)]
pub struct HttpError(String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

/// One request of the protocol crates, sent with `client`.
async fn send(client: reqwest::Client, request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let (parts, body) = request.into_parts();
    let mut response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(format!("request to the provider failed: {e}")))?;
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| HttpError(format!("reading the provider's answer failed: {e}")))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(HttpError("the provider's answer is larger than 1 MiB".into()));
        }
        body.extend_from_slice(&chunk);
    }
    builder.body(body).map_err(|e| HttpError(format!("unreadable answer: {e}")))
}

/// A failed sign-in at the callback: the outcome to record and a detail for the log
/// (never a token).
#[derive(Debug)]
pub struct Failure {
    /// `token_exchange_failed` or `id_token_invalid`.
    pub outcome: Outcome,
    /// What went wrong, for the operator's log.
    pub detail: String,
}

impl Failure {
    fn exchange(detail: impl std::fmt::Display) -> Self {
        Self { outcome: Outcome::TokenExchangeFailed, detail: detail.to_string() }
    }
    fn token(detail: impl std::fmt::Display) -> Self {
        Self { outcome: Outcome::IdTokenInvalid, detail: detail.to_string() }
    }
    /// The `error` the browser is sent back with.
    pub fn error_code(&self) -> &'static str {
        self.outcome.as_str()
    }
}

/// What discovery found, and when.
#[derive(Clone)]
struct Discovered {
    metadata: CoreProviderMetadata,
    jwks: CoreJsonWebKeySet,
    at: Instant,
    /// When the keys were last fetched for an unknown key id (`None`: not yet).
    refetched_at: Option<Instant>,
}

/// How many locks the refreshes of one provider's tokens are spread over (by user).
const REFRESH_STRIPES: usize = 16;

/// One provider of one scope, with its cache.
pub struct Provider {
    /// What the configuration says.
    pub spec: ProviderSpec,
    http: reqwest::Client,
    discovered: RwLock<Option<Discovered>>,
    /// One refresh at a time per user (in this process): providers that rotate refresh
    /// tokens accept each one once, so two concurrent refreshes would lose one.
    refreshing: [tokio::sync::Mutex<()>; REFRESH_STRIPES],
}

/// What a refresh of the access token brought.
pub struct Refreshed {
    /// The new access token.
    pub access_token: String,
    /// How long it lasts, when the provider says.
    pub expires_in: Option<Duration>,
    /// A new refresh token, when the provider rotates them.
    pub refresh_token: Option<String>,
}

impl Refreshed {
    fn from(answer: &impl OAuth2TokenResponse) -> Self {
        Self {
            access_token: answer.access_token().secret().clone(),
            expires_in: answer.expires_in(),
            refresh_token: answer.refresh_token().map(|t| t.secret().clone()),
        }
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").field("spec", &self.spec).finish_non_exhaustive()
    }
}

/// What `start` hands the flow to keep until the callback.
pub struct Started {
    /// Where to send the browser.
    pub authorize_url: String,
    /// The PKCE verifier (secret until the exchange).
    pub pkce_verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
}

impl Provider {
    pub(super) fn new(spec: ProviderSpec, http: reqwest::Client) -> Self {
        Self { spec, http, discovered: RwLock::new(None), refreshing: Default::default() }
    }

    /// The lock a refresh of `user`'s tokens holds.
    pub fn refresh_lock(&self, user: uuid::Uuid) -> &tokio::sync::Mutex<()> {
        &self.refreshing[(user.as_u128() % REFRESH_STRIPES as u128) as usize]
    }

    /// A new access token for `refresh_token` from the token endpoint (RFC 6749 section 6);
    /// the error says why not, without a secret.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Refreshed, String> {
        let http = |r| send(self.http.clone(), r);
        let refresh_token = oauth2::RefreshToken::new(refresh_token.to_owned());
        let token = match &self.spec.kind {
            ProviderKind::Oidc { .. } => {
                let d = self.discovered().await.map_err(|e| format!("{e:#}"))?;
                let client = CoreClient::from_provider_metadata(
                    d.metadata.clone(),
                    openidconnect::ClientId::new(self.spec.client_id.clone()),
                    Some(ClientSecret::new(self.spec.client_secret.clone())),
                );
                let answer = client
                    .exchange_refresh_token(&refresh_token)
                    .map_err(|e| format!("the provider has no token endpoint: {e}"))?
                    .request_async(&http)
                    .await
                    .map_err(|e| describe(&e))?;
                Refreshed::from(&answer)
            }
            OAuth2 { token_endpoint, .. } => {
                let client = BasicClient::new(oauth2::ClientId::new(self.spec.client_id.clone()))
                    .set_client_secret(oauth2::ClientSecret::new(self.spec.client_secret.clone()))
                    .set_token_uri(TokenUrl::from_url(token_endpoint.clone()));
                let answer = client
                    .exchange_refresh_token(&refresh_token)
                    .request_async(&http)
                    .await
                    .map_err(|e| describe(&e))?;
                Refreshed::from(&answer)
            }
        };
        Ok(token)
    }

    fn issuer(&self) -> Option<&str> {
        match &self.spec.kind {
            ProviderKind::Oidc { issuer } => Some(issuer),
            OAuth2 { .. } => None,
        }
    }

    /// The discovery document and keys, from the cache while fresh.
    async fn discovered(&self) -> anyhow::Result<Discovered> {
        if let Some(d) = self.discovered.read().await.as_ref()
            && d.at.elapsed() < CACHE_FOR
        {
            return Ok(d.clone());
        }
        let issuer = self.issuer().context("not an OpenID provider")?;
        let issuer_url = IssuerUrl::new(issuer.to_owned()).context("the issuer is not a URL")?;
        let http = |r| send(self.http.clone(), r);
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &http)
            .await
            .with_context(|| format!("OpenID discovery at {issuer} failed"))?;
        let jwks = metadata.jwks().clone();
        let d = Discovered { metadata, jwks, at: Instant::now(), refetched_at: None };
        *self.discovered.write().await = Some(d.clone());
        Ok(d)
    }

    /// The keys fetched again (an unknown key id), unless they were fetched a moment ago;
    /// `None` when nothing new was fetched.
    async fn refetch_keys(&self, d: &Discovered) -> Option<CoreJsonWebKeySet> {
        let mut guard = self.discovered.write().await;
        let current = guard.as_mut()?;
        if let Some(at) = current.refetched_at
            && at.elapsed() < REFETCH_AFTER
        {
            // Fetched a moment ago: by another sign-in meanwhile (use those keys), or for an
            // earlier unknown key id (nothing new to try).
            return (current.refetched_at != d.refetched_at).then(|| current.jwks.clone());
        }
        current.refetched_at = Some(Instant::now());
        let http = |r| send(self.http.clone(), r);
        match CoreJsonWebKeySet::fetch_async(d.metadata.jwks_uri(), &http).await {
            Ok(jwks) => {
                tracing::info!(provider = %self.spec.name.as_str(), "fetched the provider's keys again for an unknown key id");
                current.jwks = jwks.clone();
                Some(jwks)
            }
            Err(e) => {
                tracing::warn!(provider = %self.spec.name.as_str(), error = %e, "fetching the provider's keys failed");
                None
            }
        }
    }

    /// The authorization URL of a new sign-in whose `state` is `state`, with a fresh
    /// PKCE verifier (S256) and nonce.
    pub async fn start(&self, redirect_uri: &str, state: &str) -> anyhow::Result<Started> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).context("the callback URL")?;
        let state = CsrfToken::new(state.to_owned());
        let nonce = Nonce::new_random();
        let url = match &self.spec.kind {
            ProviderKind::Oidc { .. } => {
                let d = self.discovered().await?;
                let client = CoreClient::from_provider_metadata(
                    d.metadata.clone(),
                    openidconnect::ClientId::new(self.spec.client_id.clone()),
                    Some(ClientSecret::new(self.spec.client_secret.clone())),
                )
                .set_redirect_uri(redirect);
                let mut request =
                    client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, move || state, {
                        let nonce = nonce.clone();
                        move || nonce
                    });
                // `openid` is always asked for by the crate.
                for s in self.spec.scopes.iter().filter(|s| *s != "openid") {
                    request = request.add_scope(openidconnect::Scope::new(s.clone()));
                }
                // OpenID Connect Core 1.0 section 11: `offline_access` (a refresh token) is
                // asked for with `prompt=consent`, or providers ignore it.
                if self.spec.scopes.iter().any(|s| s == "offline_access") {
                    request = request.add_prompt(openidconnect::core::CoreAuthPrompt::Consent);
                }
                request.set_pkce_challenge(challenge).url().0
            }
            OAuth2 { authorization_endpoint, token_endpoint, .. } => {
                let client = BasicClient::new(oauth2::ClientId::new(self.spec.client_id.clone()))
                    .set_client_secret(oauth2::ClientSecret::new(self.spec.client_secret.clone()))
                    .set_auth_uri(AuthUrl::from_url(authorization_endpoint.clone()))
                    .set_token_uri(TokenUrl::from_url(token_endpoint.clone()))
                    .set_redirect_uri(redirect);
                let mut request = client.authorize_url(move || state);
                for s in &self.spec.scopes {
                    request = request.add_scope(oauth2::Scope::new(s.clone()));
                }
                request.set_pkce_challenge(challenge).url().0
            }
        };
        Ok(Started {
            authorize_url: url.to_string(),
            pkce_verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
        })
    }

    /// The callback's second half: exchanges `code` (with the flow's PKCE verifier),
    /// validates what comes back, and answers who signed in and for how long the access
    /// token is good (the caller dates it by the service's clock).
    pub async fn finish(
        &self,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        iss: Option<&str>,
    ) -> Result<(ProviderIdentity, Option<Duration>), Failure> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(Failure::exchange)?;
        let http = |r| send(self.http.clone(), r);
        match &self.spec.kind {
            ProviderKind::Oidc { issuer } => {
                // RFC 9207: an `iss` on the callback must be our issuer (a mix-up defence).
                if let Some(iss) = iss
                    && iss != issuer
                {
                    return Err(Failure::token(format!("the callback's iss {iss:?} is not the issuer")));
                }
                let d = self.discovered().await.map_err(|e| Failure::exchange(format!("{e:#}")))?;
                let client = CoreClient::from_provider_metadata(
                    d.metadata.clone(),
                    openidconnect::ClientId::new(self.spec.client_id.clone()),
                    Some(ClientSecret::new(self.spec.client_secret.clone())),
                )
                .set_redirect_uri(redirect);
                let token = client
                    .exchange_code(AuthorizationCode::new(code.to_owned()))
                    .map_err(Failure::exchange)?
                    .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
                    .request_async(&http)
                    .await
                    .map_err(|e| Failure::exchange(describe(&e)))?;
                let id_token =
                    token.id_token().ok_or_else(|| Failure::token("the token answer has no ID token"))?;
                let nonce = Nonce::new(nonce.to_owned());
                let claims = match self.verify(&d, &d.jwks, id_token, &nonce) {
                    Err(ClaimsVerificationError::SignatureVerification(
                        SignatureVerificationError::NoMatchingKey,
                    )) => match self.refetch_keys(&d).await {
                        Some(jwks) => self.verify(&d, &jwks, id_token, &nonce),
                        None => Err(ClaimsVerificationError::SignatureVerification(
                            SignatureVerificationError::NoMatchingKey,
                        )),
                    },
                    other => other,
                }
                .map_err(|e| Failure::token(format!("the ID token is invalid: {e}{}", source_of(&e))))?;
                let subject = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
                let mut claims = claims;
                if let Some(userinfo) = d.metadata.userinfo_endpoint() {
                    let more = self
                        .userinfo(userinfo.url().as_str(), token.access_token())
                        .await
                        .map_err(|e| Failure::exchange(format!("userinfo: {e:#}")))?;
                    if more.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                        return Err(Failure::token("the userinfo answer is about another subject"));
                    }
                    for (k, v) in more {
                        claims.entry(k).or_insert(v);
                    }
                }
                self.identity(&claims, "sub", token.access_token(), token.expires_in(), token.refresh_token())
            }
            OAuth2 { authorization_endpoint, token_endpoint, userinfo_endpoint, subject_claim } => {
                let client = BasicClient::new(oauth2::ClientId::new(self.spec.client_id.clone()))
                    .set_client_secret(oauth2::ClientSecret::new(self.spec.client_secret.clone()))
                    .set_auth_uri(AuthUrl::from_url(authorization_endpoint.clone()))
                    .set_token_uri(TokenUrl::from_url(token_endpoint.clone()))
                    .set_redirect_uri(redirect);
                let token = client
                    .exchange_code(AuthorizationCode::new(code.to_owned()))
                    .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
                    .request_async(&http)
                    .await
                    .map_err(|e| Failure::exchange(describe(&e)))?;
                let claims = self
                    .userinfo(userinfo_endpoint.as_str(), token.access_token())
                    .await
                    .map_err(|e| Failure::exchange(format!("userinfo: {e:#}")))?;
                self.identity(
                    &claims,
                    subject_claim,
                    token.access_token(),
                    token.expires_in(),
                    token.refresh_token(),
                )
            }
        }
    }

    /// The ID token's claims, if it validates against `jwks` (see the module header).
    fn verify(
        &self,
        d: &Discovered,
        jwks: &CoreJsonWebKeySet,
        id_token: &openidconnect::core::CoreIdToken,
        nonce: &Nonce,
    ) -> Result<Map<String, Value>, ClaimsVerificationError> {
        let verifier = CoreIdTokenVerifier::new_confidential_client(
            openidconnect::ClientId::new(self.spec.client_id.clone()),
            ClientSecret::new(self.spec.client_secret.clone()),
            d.metadata.issuer().clone(),
            jwks.clone(),
        )
        // `exp` with leeway: "now" is a minute earlier for the expiry check.
        .set_time_fn(|| chrono::Utc::now() - LEEWAY)
        .set_issue_time_verifier_fn(|iat| {
            let now = chrono::Utc::now();
            let oldest = now - LEEWAY - chrono::TimeDelta::seconds(STATE_TTL.whole_seconds());
            if iat > now + LEEWAY {
                Err(format!("issued in the future ({iat})"))
            } else if iat < oldest {
                Err(format!("issued too long ago ({iat})"))
            } else {
                Ok(())
            }
        });
        // The configured issuer must be what discovery said (the crate checks that on
        // discovery) and what the token says (`iss`, checked by the verifier).
        id_token.claims(&verifier, nonce)?;
        // Verified: now its payload can be read whole for the claim mapping.
        let compact = id_token.to_string();
        let payload = compact.split('.').nth(1).unwrap_or_default();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|e| ClaimsVerificationError::Other(format!("payload: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| ClaimsVerificationError::Other(format!("payload: {e}")))
    }

    /// The userinfo endpoint's JSON object for `token`.
    async fn userinfo(&self, url: &str, token: &AccessToken) -> anyhow::Result<Map<String, Value>> {
        let request = http::Request::builder()
            .method(http::Method::GET)
            .uri(url)
            .header(http::header::AUTHORIZATION, format!("Bearer {}", token.secret()))
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())?;
        let response = send(self.http.clone(), request).await?;
        if !response.status().is_success() {
            anyhow::bail!("the userinfo endpoint answered {}", response.status());
        }
        serde_json::from_slice(response.body()).context("the userinfo answer is not a JSON object")
    }

    /// The identity the claims describe.
    fn identity(
        &self,
        claims: &Map<String, Value>,
        subject_claim: &str,
        access_token: &AccessToken,
        expires_in: Option<Duration>,
        refresh_token: Option<&oauth2::RefreshToken>,
    ) -> Result<(ProviderIdentity, Option<Duration>), Failure> {
        let subject = match claims.get(subject_claim) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(Failure::token(format!("no `{subject_claim}` claim names the user"))),
        };
        let subject = ClientId::parse(&subject).map_err(|e| Failure::token(format!("the subject {e}")))?;
        let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
        let email_verified = match claims.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        let identity = ProviderIdentity {
            provider: self.spec.name.clone(),
            subject,
            email: text("email"),
            email_verified,
            username: text(&self.spec.username_claim),
            access_token: Some(access_token.secret().clone()),
            access_token_expiry: None,
            refresh_token: refresh_token.map(|t| t.secret().clone()),
        };
        Ok((identity, expires_in))
    }
}

/// A token request's failure, without any secret: the provider's error code and
/// description, or what the transport said.
fn describe<RE: std::error::Error + 'static, T: oauth2::ErrorResponse + 'static>(
    e: &oauth2::RequestTokenError<RE, T>,
) -> String {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => format!("the provider refused: {r}"),
        oauth2::RequestTokenError::Request(r) => format!("the token request failed: {r}"),
        oauth2::RequestTokenError::Parse(e, _) => format!("the token answer is unreadable: {e}"),
        oauth2::RequestTokenError::Other(s) => format!("the token request failed: {s}"),
    }
}

/// `: <cause>` when the error has one (a signature failure says why).
fn source_of(e: &dyn std::error::Error) -> String {
    e.source().map(|s| format!(": {s}")).unwrap_or_default()
}
