//! [`Client`]: one method per operation of the HTTP API (the list is
//! [`crate::operations::OPERATIONS`]), over one shared connection pool. Calls time out;
//! GETs are retried on transport errors and 503s, any call when the connection was refused
//! before anything was sent; nothing else is retried.

use crate::changes::ChangeStream;
use crate::error::{Error, Problem, ProblemCode};
use crate::types::*;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The header a session token travels in.
pub const SESSION_HEADER: &str = "x-session-token";

/// How a [`Client`] is made: `Client::builder(base_url, api_key)`, then options, then
/// [`ClientBuilder::build`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    api_key: String,
    timeout: Duration,
    connect_timeout: Duration,
    retries: u32,
    retry_delay: Duration,
}

impl ClientBuilder {
    /// The time a whole call may take, answer included (default 10 s). Not applied to the
    /// change stream, which is watched for silence instead.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The time connecting may take (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many times a safe call is tried again (default 2; 0 turns retries off). The
    /// delay doubles from [`ClientBuilder::retry_delay`], or follows `Retry-After` of a 503
    /// when that is shorter than the call's timeout.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The first delay before a retry (default 50 ms).
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// Makes the client.
    pub fn build(self) -> Result<Client, Error> {
        let mut base = Url::parse(&self.base_url).map_err(|e| Error::BaseUrl(e.to_string()))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(Error::BaseUrl(format!("{}: not an http(s) URL", self.base_url)));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let mut key = HeaderValue::from_str(&format!("Bearer {}", self.api_key))
            .map_err(|_| Error::BaseUrl("the API key is not a valid header value".into()))?;
        key.set_sensitive(true);
        let builder = || {
            http_builder()
                .connect_timeout(self.connect_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("hallpass-client/", env!("CARGO_PKG_VERSION")))
        };
        let http = builder().timeout(self.timeout).build().map_err(Error::Transport)?;
        // The change stream stays open: no total timeout, but a silence longer than two
        // pings means the connection is gone.
        let stream_http =
            builder().read_timeout(crate::changes::SILENCE).build().map_err(Error::Transport)?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                stream_http,
                base,
                key,
                retries: self.retries,
                retry_delay: self.retry_delay,
                timeout: self.timeout,
            }),
        })
    }
}

/// A `reqwest::ClientBuilder` with TLS on rustls and ring (installed as the process's
/// default provider, as hallpass's own server does), without aws-lc-rs.
pub fn http_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// A client of one hallpass server and one scope (the API key's). Cheap to clone.
///
/// ```no_run
/// # async fn run() -> Result<(), hallpass_client::Error> {
/// use hallpass_client::{Client, LoginRequest, RegisterRequest};
/// let hp = Client::new("http://127.0.0.1:8080", "hp_...")?;
/// hp.register(&RegisterRequest { username: Some("ada".into()), password: Some("analytical engine 1843".into()), ..Default::default() }).await?;
/// let login = hp.login(&LoginRequest::password("ada", "analytical engine 1843")).await?.session().expect("no second factor");
/// let me = hp.get_session(&login.token).await?;
/// assert_eq!(me.user.username.as_deref(), Some("ada"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    stream_http: reqwest::Client,
    base: Url,
    key: HeaderValue,
    retries: u32,
    retry_delay: Duration,
    timeout: Duration,
}

/// One call to make.
struct Req {
    method: Method,
    url: Url,
    token: Option<HeaderValue>,
    body: Option<(Vec<u8>, &'static str)>,
}

/// What came back.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn token_header(token: &str) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(token).map_err(|_| {
        // Not something the server could have issued: the answer it would give.
        Error::Api(Box::new(Problem {
            type_: "/problems/session_invalid".into(),
            title: "Session invalid".into(),
            status: 401,
            detail: "the session token is not a valid header value".into(),
            code: ProblemCode::SessionInvalid,
            field: None,
            login: None,
            retry_after: None,
        }))
    })?;
    v.set_sensitive(true);
    Ok(v)
}

impl Client {
    /// A client with the default options (see [`ClientBuilder`]).
    pub fn new(base_url: &str, api_key: &str) -> Result<Client, Error> {
        Client::builder(base_url, api_key).build()
    }

    /// A builder for a client of `base_url` (the server's root, e.g.
    /// `http://127.0.0.1:8080`) with `api_key`.
    pub fn builder(base_url: &str, api_key: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_owned(),
            api_key: api_key.to_owned(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            retries: 2,
            retry_delay: Duration::from_millis(50),
        }
    }

    /// The server's root URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The URL of `segments` under the base, each percent-encoded as one path segment.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        {
            // The base is an http(s) URL (checked in build), so it has path segments.
            #[allow(clippy::expect_used)]
            let mut segs = url.path_segments_mut().expect("an http(s) URL");
            segs.pop_if_empty();
            for s in segments {
                segs.push(s);
            }
        }
        url
    }

    fn req(&self, method: Method, segments: &[&str]) -> Req {
        Req { method, url: self.url(segments), token: None, body: None }
    }

    async fn execute(&self, req: Req) -> Result<Answer, Error> {
        let inner = &self.inner;
        let idempotent = req.method == Method::GET;
        let mut attempt = 0u32;
        loop {
            let mut rb =
                inner.http.request(req.method.clone(), req.url.clone()).header("authorization", &inner.key);
            if let Some(t) = &req.token {
                rb = rb.header(SESSION_HEADER, t);
            }
            if let Some((body, ct)) = &req.body {
                rb = rb.header("content-type", *ct).body(body.clone());
            }
            let retry_in = |attempt: u32| inner.retry_delay.saturating_mul(1 << attempt.min(10));
            match rb.send().await {
                Ok(res) => {
                    let status = res.status();
                    let headers = res.headers().clone();
                    if idempotent && status == StatusCode::SERVICE_UNAVAILABLE && attempt < inner.retries {
                        let wait = retry_after(&headers).unwrap_or_else(|| retry_in(attempt));
                        if wait < inner.timeout {
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                            continue;
                        }
                    }
                    let body = match res.bytes().await {
                        Ok(b) => b.to_vec(),
                        Err(e) if idempotent && attempt < inner.retries => {
                            tracing::debug!(error = %e, "hallpass: reading the answer failed; trying again");
                            tokio::time::sleep(retry_in(attempt)).await;
                            attempt += 1;
                            continue;
                        }
                        Err(e) => return Err(Error::Transport(e)),
                    };
                    return Ok(Answer { status, headers, body });
                }
                // A refused connection sent nothing: safe to try again for any method.
                Err(e) if attempt < inner.retries && (idempotent || e.is_connect()) => {
                    tracing::debug!(error = %e, "hallpass: call failed; trying again");
                    tokio::time::sleep(retry_in(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(Error::Transport(e)),
            }
        }
    }

    /// Makes the call; a non-2xx answer is an error.
    async fn ok(&self, req: Req) -> Result<Answer, Error> {
        let a = self.execute(req).await?;
        if a.status.is_success() || a.status.is_redirection() { Ok(a) } else { Err(problem(a)) }
    }

    async fn json<T: DeserializeOwned>(&self, req: Req) -> Result<T, Error> {
        let a = self.ok(req).await?;
        decode(&a.body)
    }

    async fn empty(&self, req: Req) -> Result<(), Error> {
        self.ok(req).await.map(drop)
    }

    fn with_json<B: Serialize + ?Sized>(mut req: Req, body: &B) -> Result<Req, Error> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::Decode(e.to_string()))?;
        req.body = Some((bytes, "application/json"));
        Ok(req)
    }

    fn with_token(mut req: Req, token: Option<&str>) -> Result<Req, Error> {
        req.token = token.map(token_header).transpose()?;
        Ok(req)
    }

    // ---- probes and documents ----

    /// `GET /healthz`: the process is up.
    pub async fn healthz(&self) -> Result<Health, Error> {
        self.json(self.req(Method::GET, &["healthz"])).await
    }

    /// `GET /readyz`: storage is reachable (else an error with status 503).
    pub async fn readyz(&self) -> Result<Health, Error> {
        self.json(self.req(Method::GET, &["readyz"])).await
    }

    /// `GET /metrics`: the Prometheus text.
    pub async fn metrics(&self) -> Result<String, Error> {
        let a = self.ok(self.req(Method::GET, &["metrics"])).await?;
        String::from_utf8(a.body).map_err(|e| Error::Decode(e.to_string()))
    }

    /// `GET /openapi.json`: the server's OpenAPI document.
    pub async fn openapi(&self) -> Result<serde_json::Value, Error> {
        self.json(self.req(Method::GET, &["openapi.json"])).await
    }

    // ---- users ----

    /// `POST /v1/users`: registers a user.
    pub async fn register(&self, req: &RegisterRequest) -> Result<User, Error> {
        self.json(Self::with_json(self.req(Method::POST, &["v1", "users"]), req)?).await
    }

    /// `GET /v1/users/{ref}`: a user by id, username or email.
    pub async fn get_user(&self, user: &str) -> Result<User, Error> {
        self.json(self.req(Method::GET, &["v1", "users", user])).await
    }

    /// `GET /v1/users`: a page of users.
    pub async fn list_users(&self, filter: &ListUsers) -> Result<UserList, Error> {
        let mut req = self.req(Method::GET, &["v1", "users"]);
        {
            let mut q = req.url.query_pairs_mut();
            if let Some(v) = &filter.query {
                q.append_pair("query", v);
            }
            if let Some(v) = &filter.group {
                q.append_pair("group", v);
            }
            if let Some(v) = filter.active {
                q.append_pair("active", if v { "true" } else { "false" });
            }
            if let Some(v) = filter.limit {
                q.append_pair("limit", &v.to_string());
            }
            if let Some(v) = &filter.cursor {
                q.append_pair("cursor", v);
            }
        }
        strip_empty_query(&mut req.url);
        self.json(req).await
    }

    /// `PATCH /v1/users/{ref}`: changes the fields set.
    pub async fn update_user(&self, user: &str, req: &UpdateUserRequest) -> Result<User, Error> {
        self.json(Self::with_json(self.req(Method::PATCH, &["v1", "users", user]), req)?).await
    }

    /// `DELETE /v1/users/{ref}`: unregisters the user (its sessions end).
    pub async fn delete_user(&self, user: &str) -> Result<(), Error> {
        self.empty(self.req(Method::DELETE, &["v1", "users", user])).await
    }

    /// `PUT /v1/users/{ref}/password`: sets the password (every session of the user ends).
    pub async fn set_password(&self, user: &str, password: &str) -> Result<(), Error> {
        let body = serde_json::json!({ "password": password });
        self.empty(Self::with_json(self.req(Method::PUT, &["v1", "users", user, "password"]), &body)?).await
    }

    /// `POST /v1/users/{ref}/confirmation`: sends (again) the confirmation mail.
    pub async fn send_confirmation(&self, user: &str) -> Result<ConfirmationResponse, Error> {
        self.json(self.req(Method::POST, &["v1", "users", user, "confirmation"])).await
    }

    /// `POST /v1/confirmations/redeem`: confirms an email with the mailed code.
    pub async fn redeem_confirmation(&self, code: &str) -> Result<User, Error> {
        let body = serde_json::json!({ "code": code });
        self.json(Self::with_json(self.req(Method::POST, &["v1", "confirmations", "redeem"]), &body)?).await
    }

    /// `GET /v1/users/{ref}/logins`: the user's login history, newest first.
    pub async fn login_history(
        &self,
        user: &str,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<EventList, Error> {
        let mut req = self.req(Method::GET, &["v1", "users", user, "logins"]);
        {
            let mut q = req.url.query_pairs_mut();
            if let Some(l) = limit {
                q.append_pair("limit", &l.to_string());
            }
            if let Some(c) = cursor {
                q.append_pair("cursor", c);
            }
        }
        strip_empty_query(&mut req.url);
        self.json(req).await
    }

    /// `GET /v1/stats/logins`: logins per hour or day; `from`/`to` are RFC 3339.
    pub async fn login_stats(
        &self,
        from: Option<&str>,
        to: Option<&str>,
        bucket: Option<Bucket>,
    ) -> Result<LoginStats, Error> {
        let mut req = self.req(Method::GET, &["v1", "stats", "logins"]);
        {
            let mut q = req.url.query_pairs_mut();
            if let Some(v) = from {
                q.append_pair("from", v);
            }
            if let Some(v) = to {
                q.append_pair("to", v);
            }
            if let Some(b) = bucket {
                q.append_pair("bucket", if b == Bucket::Hour { "hour" } else { "day" });
            }
        }
        strip_empty_query(&mut req.url);
        self.json(req).await
    }

    // ---- sessions ----

    /// `POST /v1/sessions`: a login. A user with a second factor answers
    /// [`LoginOutcome::MfaRequired`].
    pub async fn login(&self, req: &LoginRequest) -> Result<LoginOutcome, Error> {
        let a = self.ok(Self::with_json(self.req(Method::POST, &["v1", "sessions"]), req)?).await?;
        if a.status == StatusCode::CREATED {
            Ok(LoginOutcome::Session(Box::new(decode(&a.body)?)))
        } else {
            Ok(LoginOutcome::MfaRequired(decode(&a.body)?))
        }
    }

    /// `POST /v1/sessions/mfa`: answers a login's second-factor challenge.
    pub async fn answer_mfa(&self, req: &MfaLoginRequest) -> Result<LoginResponse, Error> {
        self.json(Self::with_json(self.req(Method::POST, &["v1", "sessions", "mfa"]), req)?).await
    }

    /// `GET /v1/session`: the session of `token` and its user; `session_invalid` when it
    /// is not valid. Asks the server every time: [`crate::Sessions::check`] answers from
    /// memory.
    pub async fn get_session(&self, token: &str) -> Result<SessionWithUser, Error> {
        self.json(Self::with_token(self.req(Method::GET, &["v1", "session"]), Some(token))?).await
    }

    /// `POST /v1/session/freshen`: moves the idle expiry forward.
    pub async fn freshen_session(&self, token: &str) -> Result<SessionResponse, Error> {
        self.json(Self::with_token(self.req(Method::POST, &["v1", "session", "freshen"]), Some(token))?).await
    }

    /// `PATCH /v1/session`: merges `patch` (RFC 7396) into the session's data.
    pub async fn patch_session_data(
        &self,
        token: &str,
        patch: &serde_json::Value,
    ) -> Result<SessionResponse, Error> {
        let mut req = Self::with_token(self.req(Method::PATCH, &["v1", "session"]), Some(token))?;
        let bytes = serde_json::to_vec(patch).map_err(|e| Error::Decode(e.to_string()))?;
        req.body = Some((bytes, "application/merge-patch+json"));
        self.json(req).await
    }

    /// `DELETE /v1/session`: logs out (also fine when already ended).
    pub async fn end_session(&self, token: &str) -> Result<(), Error> {
        self.empty(Self::with_token(self.req(Method::DELETE, &["v1", "session"]), Some(token))?).await
    }

    /// `DELETE /v1/session/others`: ends the user's other sessions.
    pub async fn end_other_sessions(&self, token: &str) -> Result<(), Error> {
        self.empty(Self::with_token(self.req(Method::DELETE, &["v1", "session", "others"]), Some(token))?)
            .await
    }

    /// `GET /v1/users/{ref}/sessions`: the user's valid sessions.
    pub async fn list_user_sessions(&self, user: &str) -> Result<SessionList, Error> {
        self.json(self.req(Method::GET, &["v1", "users", user, "sessions"])).await
    }

    /// `DELETE /v1/users/{ref}/sessions/{session_id}`: ends one session of the user.
    pub async fn end_user_session(&self, user: &str, session_id: Uuid) -> Result<(), Error> {
        let id = session_id.to_string();
        self.empty(self.req(Method::DELETE, &["v1", "users", user, "sessions", &id])).await
    }

    /// `DELETE /v1/users/{ref}/sessions`: ends every session of the user.
    pub async fn end_user_sessions(&self, user: &str) -> Result<(), Error> {
        self.empty(self.req(Method::DELETE, &["v1", "users", user, "sessions"])).await
    }

    // ---- password resets and codes ----

    /// `POST /v1/password-resets`: a reset code, returned to the caller.
    pub async fn create_reset_code(&self, login: &str) -> Result<ResetCode, Error> {
        let body = serde_json::json!({ "login": login });
        self.json(Self::with_json(self.req(Method::POST, &["v1", "password-resets"]), &body)?).await
    }

    /// `POST /v1/password-resets` with `send_email`: the code goes to the user's email only.
    pub async fn send_reset_email(&self, login: &str) -> Result<(), Error> {
        let body = serde_json::json!({ "login": login, "send_email": true });
        self.empty(Self::with_json(self.req(Method::POST, &["v1", "password-resets"]), &body)?).await
    }

    /// `POST /v1/password-resets/redeem`: sets the password with a reset code (every
    /// session of the user ends); answers the user's id.
    pub async fn redeem_reset_code(&self, code: &str, password: &str) -> Result<Uuid, Error> {
        #[derive(serde::Deserialize)]
        struct Redeemed {
            user_id: Uuid,
        }
        let body = serde_json::json!({ "code": code, "password": password });
        let r: Redeemed = self
            .json(Self::with_json(self.req(Method::POST, &["v1", "password-resets", "redeem"]), &body)?)
            .await?;
        Ok(r.user_id)
    }

    /// `POST /v1/email-codes`: mails a sign-in code (log in with
    /// [`LoginRequest::email_code`]).
    pub async fn send_email_code(&self, email: &str) -> Result<(), Error> {
        let body = serde_json::json!({ "email": email });
        self.empty(Self::with_json(self.req(Method::POST, &["v1", "email-codes"]), &body)?).await
    }

    // ---- providers ----

    /// `GET /v1/users/{ref}/providers`: the user's provider links.
    pub async fn list_providers(&self, user: &str) -> Result<Vec<Identity>, Error> {
        #[derive(serde::Deserialize)]
        struct List {
            providers: Vec<Identity>,
        }
        let l: List = self.json(self.req(Method::GET, &["v1", "users", user, "providers"])).await?;
        Ok(l.providers)
    }

    /// `PUT /v1/users/{ref}/providers/{provider}`: links the user to a provider.
    pub async fn link_provider(
        &self,
        user: &str,
        provider: &str,
        req: &LinkProviderRequest,
    ) -> Result<Identity, Error> {
        self.json(Self::with_json(self.req(Method::PUT, &["v1", "users", user, "providers", provider]), req)?)
            .await
    }

    /// `GET /v1/users/{ref}/providers/{provider}`: the link, with `access_token_expired`.
    pub async fn get_provider(&self, user: &str, provider: &str) -> Result<Identity, Error> {
        self.json(self.req(Method::GET, &["v1", "users", user, "providers", provider])).await
    }

    /// `PATCH /v1/users/{ref}/providers/{provider}`: changes the token or its expiry.
    pub async fn update_provider(
        &self,
        user: &str,
        provider: &str,
        req: &UpdateProviderRequest,
    ) -> Result<Identity, Error> {
        self.json(Self::with_json(
            self.req(Method::PATCH, &["v1", "users", user, "providers", provider]),
            req,
        )?)
        .await
    }

    /// `DELETE /v1/users/{ref}/providers/{provider}`: unlinks.
    pub async fn unlink_provider(&self, user: &str, provider: &str) -> Result<(), Error> {
        self.empty(self.req(Method::DELETE, &["v1", "users", user, "providers", provider])).await
    }

    // ---- OIDC ----

    /// `POST /v1/oidc/{provider}/start`: where to send the browser. With `link_token` (a
    /// valid session token) the flow links the identity to that session's user.
    pub async fn oidc_start(
        &self,
        provider: &str,
        return_to: &str,
        link_token: Option<&str>,
    ) -> Result<OidcStart, Error> {
        let body = serde_json::json!({ "return_to": return_to });
        let req = Self::with_json(self.req(Method::POST, &["v1", "oidc", provider, "start"]), &body)?;
        self.json(Self::with_token(req, link_token)?).await
    }

    /// `GET /v1/oidc/{provider}/callback`: what a browser calls on its way back from the
    /// provider (no API key needed; sent anyway). Answers the redirect's `Location`.
    pub async fn oidc_callback(&self, provider: &str, query: &[(&str, &str)]) -> Result<String, Error> {
        let mut req = self.req(Method::GET, &["v1", "oidc", provider, "callback"]);
        req.url.query_pairs_mut().extend_pairs(query);
        strip_empty_query(&mut req.url);
        let a = self.ok(req).await?;
        a.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| Error::Decode("the callback answered without a Location".into()))
    }

    /// `POST /v1/oidc/exchange`: redeems the one-time code the browser brought back.
    pub async fn oidc_exchange(
        &self,
        req: &OidcExchangeRequest,
        link_token: Option<&str>,
    ) -> Result<OidcOutcome, Error> {
        let r = Self::with_json(self.req(Method::POST, &["v1", "oidc", "exchange"]), req)?;
        let a = self.ok(Self::with_token(r, link_token)?).await?;
        if a.status == StatusCode::CREATED {
            return Ok(OidcOutcome::Session(Box::new(decode(&a.body)?)));
        }
        let v: serde_json::Value = decode(&a.body)?;
        if let Some(identity) = v.get("identity") {
            Ok(OidcOutcome::Linked(
                serde_json::from_value(identity.clone()).map_err(|e| Error::Decode(e.to_string()))?,
            ))
        } else {
            Ok(OidcOutcome::MfaRequired(serde_json::from_value(v).map_err(|e| Error::Decode(e.to_string()))?))
        }
    }

    // ---- second factors ----

    /// `POST /v1/users/{ref}/mfa/totp`: starts a TOTP enrolment (pending until confirmed).
    pub async fn enrol_totp(&self, user: &str) -> Result<TotpEnrolment, Error> {
        self.json(self.req(Method::POST, &["v1", "users", user, "mfa", "totp"])).await
    }

    /// `POST /v1/users/{ref}/mfa/totp/confirm`: confirms it with a first code; answers the
    /// recovery codes. The user's other sessions end (`keep`: the session to keep).
    pub async fn confirm_totp(
        &self,
        user: &str,
        code: &str,
        keep: Option<&str>,
    ) -> Result<RecoveryCodes, Error> {
        let body = serde_json::json!({ "code": code });
        let req =
            Self::with_json(self.req(Method::POST, &["v1", "users", user, "mfa", "totp", "confirm"]), &body)?;
        self.json(Self::with_token(req, keep)?).await
    }

    /// `DELETE /v1/users/{ref}/mfa/totp`: removes TOTP (`keep`: the session to keep).
    pub async fn delete_totp(&self, user: &str, keep: Option<&str>) -> Result<(), Error> {
        let req = self.req(Method::DELETE, &["v1", "users", user, "mfa", "totp"]);
        self.empty(Self::with_token(req, keep)?).await
    }

    /// `POST /v1/users/{ref}/mfa/recovery-codes`: a new set (the older set stops working).
    pub async fn new_recovery_codes(&self, user: &str) -> Result<RecoveryCodes, Error> {
        self.json(self.req(Method::POST, &["v1", "users", user, "mfa", "recovery-codes"])).await
    }

    /// `DELETE /v1/users/{ref}/mfa`: removes every second factor and ends the sessions.
    pub async fn remove_mfa(&self, user: &str) -> Result<(), Error> {
        self.empty(self.req(Method::DELETE, &["v1", "users", user, "mfa"])).await
    }

    // ---- passkeys ----

    /// `POST /v1/users/{ref}/passkeys/register/start`: the options for
    /// `navigator.credentials.create`.
    pub async fn passkey_register_start(&self, user: &str) -> Result<PasskeyOptions, Error> {
        self.json(self.req(Method::POST, &["v1", "users", user, "passkeys", "register", "start"])).await
    }

    /// `POST /v1/users/{ref}/passkeys/register/finish`: stores the passkey the browser
    /// made. The user's other sessions end (`keep`: the session to keep).
    pub async fn passkey_register_finish(
        &self,
        user: &str,
        flow: &str,
        credential: &serde_json::Value,
        name: Option<&str>,
        keep: Option<&str>,
    ) -> Result<Passkey, Error> {
        let body = serde_json::json!({ "flow": flow, "credential": credential, "name": name });
        let path = ["v1", "users", user, "passkeys", "register", "finish"];
        let req = Self::with_json(self.req(Method::POST, &path), &body)?;
        self.json(Self::with_token(req, keep)?).await
    }

    /// `GET /v1/users/{ref}/passkeys`: the user's passkeys, oldest first.
    pub async fn list_passkeys(&self, user: &str) -> Result<Vec<Passkey>, Error> {
        #[derive(serde::Deserialize)]
        struct List {
            passkeys: Vec<Passkey>,
        }
        let l: List = self.json(self.req(Method::GET, &["v1", "users", user, "passkeys"])).await?;
        Ok(l.passkeys)
    }

    /// `PATCH /v1/users/{ref}/passkeys/{id}`: renames a passkey.
    pub async fn rename_passkey(&self, user: &str, id: Uuid, name: &str) -> Result<Passkey, Error> {
        let id = id.to_string();
        let body = serde_json::json!({ "name": name });
        self.json(Self::with_json(self.req(Method::PATCH, &["v1", "users", user, "passkeys", &id]), &body)?)
            .await
    }

    /// `DELETE /v1/users/{ref}/passkeys/{id}`: removes a passkey (`keep`: the session to
    /// keep when the user's other sessions end).
    pub async fn delete_passkey(&self, user: &str, id: Uuid, keep: Option<&str>) -> Result<(), Error> {
        let id = id.to_string();
        let req = self.req(Method::DELETE, &["v1", "users", user, "passkeys", &id]);
        self.empty(Self::with_token(req, keep)?).await
    }

    /// `POST /v1/passkeys/login/start`: the options for `navigator.credentials.get`; with
    /// `login`, naming that user's passkeys, else any discoverable passkey of the scope.
    pub async fn passkey_login_start(&self, login: Option<&str>) -> Result<PasskeyOptions, Error> {
        let body = serde_json::json!({ "login": login });
        self.json(Self::with_json(self.req(Method::POST, &["v1", "passkeys", "login", "start"]), &body)?)
            .await
    }

    // ---- webhooks ----

    /// `POST /v1/webhooks`: a new endpoint; its secret is in the answer only.
    pub async fn create_webhook(
        &self,
        url: &str,
        events: &[&str],
        description: Option<&str>,
    ) -> Result<WebhookWithSecret, Error> {
        let body = serde_json::json!({ "url": url, "events": events, "description": description });
        self.json(Self::with_json(self.req(Method::POST, &["v1", "webhooks"]), &body)?).await
    }

    /// `GET /v1/webhooks`: the scope's endpoints.
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, Error> {
        #[derive(serde::Deserialize)]
        struct List {
            webhooks: Vec<Webhook>,
        }
        let l: List = self.json(self.req(Method::GET, &["v1", "webhooks"])).await?;
        Ok(l.webhooks)
    }

    /// `GET /v1/webhooks/{id}`.
    pub async fn get_webhook(&self, id: Uuid) -> Result<Webhook, Error> {
        self.json(self.req(Method::GET, &["v1", "webhooks", &id.to_string()])).await
    }

    /// `PATCH /v1/webhooks/{id}`.
    pub async fn update_webhook(&self, id: Uuid, req: &UpdateWebhookRequest) -> Result<Webhook, Error> {
        self.json(Self::with_json(self.req(Method::PATCH, &["v1", "webhooks", &id.to_string()]), req)?).await
    }

    /// `DELETE /v1/webhooks/{id}`.
    pub async fn delete_webhook(&self, id: Uuid) -> Result<(), Error> {
        self.empty(self.req(Method::DELETE, &["v1", "webhooks", &id.to_string()])).await
    }

    /// `POST /v1/webhooks/{id}/rotate-secret`: a new secret (the old one signs too for the
    /// configured overlap).
    pub async fn rotate_webhook_secret(&self, id: Uuid) -> Result<WebhookWithSecret, Error> {
        self.json(self.req(Method::POST, &["v1", "webhooks", &id.to_string(), "rotate-secret"])).await
    }

    /// `GET /v1/webhooks/{id}/deliveries`: a page of the endpoint's deliveries, newest first,
    /// optionally only those in `status`.
    pub async fn list_webhook_deliveries(
        &self,
        id: Uuid,
        status: Option<&str>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<DeliveryList, Error> {
        let mut req = self.req(Method::GET, &["v1", "webhooks", &id.to_string(), "deliveries"]);
        {
            let mut q = req.url.query_pairs_mut();
            if let Some(s) = status {
                q.append_pair("status", s);
            }
            if let Some(l) = limit {
                q.append_pair("limit", &l.to_string());
            }
            if let Some(c) = cursor {
                q.append_pair("cursor", c);
            }
        }
        strip_empty_query(&mut req.url);
        self.json(req).await
    }

    /// `POST /v1/webhooks/{id}/deliveries/{delivery}/retry`: queues an undelivered delivery again.
    pub async fn retry_webhook_delivery(&self, id: Uuid, delivery: Uuid) -> Result<Delivery, Error> {
        let (id, delivery) = (id.to_string(), delivery.to_string());
        self.json(self.req(Method::POST, &["v1", "webhooks", &id, "deliveries", &delivery, "retry"])).await
    }

    /// `POST /v1/passkeys/login/finish`: a passwordless sign-in, answered as a login.
    pub async fn passkey_login_finish(&self, req: &PasskeyLoginRequest) -> Result<LoginResponse, Error> {
        self.json(Self::with_json(self.req(Method::POST, &["v1", "passkeys", "login", "finish"]), req)?).await
    }

    // ---- the change stream ----

    /// `GET /v1/changes`: the change stream of the key's scope, resuming after
    /// `last_event_id` when given. [`crate::Sessions`] keeps a cache true with it.
    pub async fn changes(&self, last_event_id: Option<&str>) -> Result<ChangeStream, Error> {
        let mut rb = self
            .inner
            .stream_http
            .get(self.url(&["v1", "changes"]))
            .header("authorization", &self.inner.key)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            rb = rb.header("last-event-id", id);
        }
        let res = rb.send().await.map_err(Error::Transport)?;
        let status = res.status();
        if !status.is_success() {
            let headers = res.headers().clone();
            let body = res.bytes().await.map_err(Error::Transport)?.to_vec();
            return Err(problem(Answer { status, headers, body }));
        }
        Ok(ChangeStream::new(res))
    }
}

fn strip_empty_query(url: &mut Url) {
    if url.query() == Some("") {
        url.set_query(None);
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Decode(e.to_string()))
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let s = headers.get("retry-after")?.to_str().ok()?;
    s.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn problem(a: Answer) -> Error {
    match serde_json::from_slice::<Problem>(&a.body) {
        Ok(mut p) => {
            p.retry_after = retry_after(&a.headers);
            Error::Api(Box::new(p))
        }
        Err(_) => {
            let mut body = String::from_utf8_lossy(&a.body).into_owned();
            if body.len() > 1024 {
                let mut cut = 1024;
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                body.truncate(cut);
            }
            Error::Status { status: a.status.as_u16(), body }
        }
    }
}
