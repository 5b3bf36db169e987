//! The login form, signing in (an ordinary login in the `_admin` scope, audited) and
//! signing out; and the error page every handler falls back to.
//!
//! An admin with a second factor (an authenticator app or a passkey, enrolled on their
//! account page) gets, after the right password, the second-factor step: the challenge
//! travels in a hidden field of that page (never a URL), answered with a code, a recovery
//! code or the passkey. A passkey also signs in alone (passwordless; user verification
//! makes it two factors). Every way in ends in [`signed_in`]: the audit entry and the
//! cookies.

use super::*;
use hallpass_core::FlowHandle;
use hallpass_core::service::{LoginResult, MfaChallenge, MfaProof};

#[derive(Template)]
#[template(path = "admin/login.html")]
pub(crate) struct LoginPage {
    l: Layout,
    error: Option<String>,
    username: String,
    /// Passkeys work at this address (see [`passkeys_here`]).
    passkeys: bool,
}

#[derive(Template)]
#[template(path = "admin/mfa.html")]
pub(crate) struct MfaPage {
    l: Layout,
    error: Option<String>,
    challenge: String,
    totp: bool,
    recovery: bool,
    /// The options for `navigator.credentials.get`, as JSON, when a passkey may answer.
    passkey_options: Option<String>,
    /// The methods offered, comma-separated (carried by the form, see [`MfaForm`]).
    offers: String,
}

impl MfaPage {
    fn new(challenge: &MfaChallenge, error: Option<String>, passkeys: bool) -> Self {
        Self {
            l: Layout::bare("Second factor"),
            error,
            challenge: challenge.challenge.expose().to_owned(),
            totp: challenge.methods.contains(&"totp"),
            recovery: challenge.methods.contains(&"recovery_code"),
            passkey_options: challenge
                .options
                .as_ref()
                .filter(|_| passkeys && challenge.methods.contains(&"passkey"))
                .map(|o| o.to_string()),
            offers: challenge.methods.join(","),
        }
    }
}

/// Whether the browser may use the admin page's passkeys at the address it asked for:
/// the relying party is set (`Config::admin_relying_party`) and the request's host is its
/// id or a subdomain of it (`localhost` without a `public_url`; never an IP address).
pub(crate) fn passkeys_here(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(rp) = state.service.scope_settings(&Scope::admin()).webauthn.as_ref() else { return false };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    rp.is_own_host(&crate::admin::host_only(host).to_ascii_lowercase())
}

fn client_of(ip: Option<String>, headers: &HeaderMap) -> ClientInfo {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect::<String>());
    ClientInfo { ip, user_agent }
}

/// A login that made a session: audited as `admin_login` (with how), then to the
/// dashboard with the session cookie (and the device cookie when the login gave one).
async fn signed_in(state: &AppState, done: LoginResult) -> Result<Response, PageError> {
    let admin = done.login.username.clone().unwrap_or_default();
    let detail = json!({"session_id": done.session.id, "amr": done.session.amr, "aal": done.session.aal()})
        .as_object()
        .cloned()
        .unwrap_or_default();
    state.service.audit(&admin, "admin_login", None, None, detail).await?;
    let mut res = see_other("/admin".into());
    res.headers_mut().insert(header::SET_COOKIE, state.admin.cookie(done.token.expose(), None));
    res.headers_mut().append(header::SET_COOKIE, state.admin.device_cookie(done.device.expose()));
    Ok(res)
}

fn too_many(mut res: Response, retry_after_secs: u64) -> Response {
    *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(v) = retry_after_secs.to_string().parse() {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

fn login_page(status: StatusCode, error: Option<String>, username: String, passkeys: bool) -> Response {
    let page = LoginPage { l: Layout::bare("Sign in"), error, username, passkeys };
    let res = render(status, &page);
    crate::admin::with_passkey_script(res, passkeys)
}

#[derive(Template)]
#[template(path = "admin/error.html")]
pub(crate) struct ErrorPage {
    pub l: Layout,
    pub status: u16,
    pub message: String,
}

pub(crate) async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let mut l = Layout::bare("Sign in");
    l.notice = q.notice.as_deref().and_then(notice_text);
    let passkeys = passkeys_here(&state, &headers);
    let res = render(StatusCode::OK, &LoginPage { l, error: None, username: String::new(), passkeys });
    crate::admin::with_passkey_script(res, passkeys)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    crate::admin::check_origin(&headers, uri.authority().map(|a| a.as_str()), &state.admin)?;
    let passkeys = passkeys_here(&state, &headers);
    let page = |status: StatusCode, error: String| {
        let username = form.username.chars().take(64).collect();
        login_page(status, Some(error), username, passkeys)
    };
    let wrong = || page(StatusCode::UNAUTHORIZED, "Wrong username or password.".into());
    let (Ok(login), Ok(password)) = (UserRef::login(&form.username), Password::for_login(&form.password))
    else {
        return Ok(wrong());
    };
    let device =
        crate::admin::cookie(&headers, state.admin.device_cookie_name()).and_then(|v| DeviceToken::parse(&v));
    let request = LoginRequest {
        credentials: Credentials::Password { login, password },
        data: JsonObject::new(),
        client: client_of(ip, &headers),
        device,
    };
    match state.service.login(&Scope::admin(), request).await {
        Ok(done) => signed_in(&state, done).await,
        Err(Error::MfaRequired(challenge)) => {
            let res = render(StatusCode::OK, &MfaPage::new(&challenge, None, passkeys));
            Ok(crate::admin::with_passkey_script(res, passkeys))
        }
        Err(Error::InvalidCredentials(_) | Error::UserInactive(_)) => Ok(wrong()),
        Err(Error::RateLimited { retry_after_secs }) => Ok(too_many(
            page(
                StatusCode::OK,
                format!("Too many failed sign-ins. Try again in {retry_after_secs} seconds."),
            ),
            retry_after_secs,
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct MfaForm {
    #[serde(default)]
    challenge: String,
    #[serde(default)]
    totp: String,
    #[serde(default)]
    recovery_code: String,
    #[serde(default)]
    credential: String,
    /// What the step offered (`totp,recovery_code,passkey`) and the passkey options, as the
    /// page carried them: shown again after a wrong answer (the challenge, and its passkey
    /// ceremony, live on until a few wrong answers end them).
    #[serde(default)]
    offers: String,
    #[serde(default)]
    options: String,
}

/// The second-factor step: the challenge answered with a code, a recovery code or the
/// passkey. A wrong answer shows the step again (the challenge ends after a few); an
/// ended or unknown challenge sends the admin back to the password.
pub(crate) async fn login_mfa(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Form(form): Form<MfaForm>,
) -> Result<Response, PageError> {
    crate::admin::check_origin(&headers, uri.authority().map(|a| a.as_str()), &state.admin)?;
    let passkeys = passkeys_here(&state, &headers);
    let proof = if !form.credential.trim().is_empty() {
        match serde_json::from_str(&form.credential) {
            Ok(v) => MfaProof::Passkey(v),
            Err(_) => {
                return Err(PageError::Status(
                    StatusCode::BAD_REQUEST,
                    "The passkey's answer is not JSON.".into(),
                ));
            }
        }
    } else if !form.recovery_code.trim().is_empty() {
        MfaProof::RecoveryCode(form.recovery_code.trim().to_owned())
    } else {
        MfaProof::Totp(form.totp.split_whitespace().collect())
    };
    let flow = FlowHandle::from_presented(&form.challenge);
    match state.service.complete_mfa(&Scope::admin(), &flow, proof).await {
        Ok(done) => signed_in(&state, done).await,
        Err(Error::InvalidFactor) => {
            // The challenge lives on (until a few wrong answers end it): the same step again.
            let offers: Vec<&'static str> = ["totp", "recovery_code", "passkey"]
                .into_iter()
                .filter(|m| form.offers.split(',').any(|o| o == *m))
                .collect();
            let challenge = MfaChallenge {
                challenge: flow,
                methods: offers,
                expires_at: OffsetDateTime::now_utc(),
                options: serde_json::from_str(&form.options).ok(),
            };
            let error = "That did not match. Try the current code, or another way below.".to_owned();
            let res = render(StatusCode::UNAUTHORIZED, &MfaPage::new(&challenge, Some(error), passkeys));
            Ok(crate::admin::with_passkey_script(res, passkeys))
        }
        Err(Error::InvalidChallenge) => Ok(login_page(
            StatusCode::UNAUTHORIZED,
            Some("That sign-in has ended (too slow, or too many wrong codes). Sign in again.".into()),
            String::new(),
            passkeys,
        )),
        Err(Error::RateLimited { retry_after_secs }) => Ok(too_many(
            login_page(
                StatusCode::OK,
                Some(format!("Too many wrong codes. Try again in {retry_after_secs} seconds.")),
                String::new(),
                passkeys,
            ),
            retry_after_secs,
        )),
        Err(e) => Err(e.into()),
    }
}

/// Starts a passwordless sign-in: `{flow, options}` for `navigator.credentials.get`
/// (discoverable: the authenticator offers the admin's passkeys). Called by `passkey.js`.
pub(crate) async fn passkey_login_start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    crate::admin::check_origin(&headers, uri.authority().map(|a| a.as_str()), &state.admin)?;
    // Each start stores a flow before anyone signed in: bounded per client address.
    if let Err(wait) = state.admin.passkey_starts.allow(ip.as_deref().unwrap_or("")) {
        return Err(PageError::Wait(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many passkey sign-ins started. Try again in {wait} seconds."),
            u32::try_from(wait).unwrap_or(60),
        ));
    }
    let ceremony = state.service.start_passkey_login(&Scope::admin(), None).await?;
    Ok(axum::Json(json!({"flow": ceremony.flow.expose(), "options": ceremony.options})).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasskeyLoginForm {
    #[serde(default)]
    flow: String,
    #[serde(default)]
    credential: String,
}

/// Finishes a passwordless sign-in with the authenticator's assertion.
pub(crate) async fn passkey_login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Form(form): Form<PasskeyLoginForm>,
) -> Result<Response, PageError> {
    crate::admin::check_origin(&headers, uri.authority().map(|a| a.as_str()), &state.admin)?;
    let passkeys = passkeys_here(&state, &headers);
    let refused =
        |words: &str| login_page(StatusCode::UNAUTHORIZED, Some(words.to_owned()), String::new(), passkeys);
    let Ok(credential) = serde_json::from_str(&form.credential) else {
        return Ok(refused("The passkey's answer did not arrive; try again."));
    };
    let flow = FlowHandle::from_presented(&form.flow);
    let client = client_of(ip, &headers);
    match state
        .service
        .finish_passkey_login(&Scope::admin(), &flow, credential, JsonObject::new(), client)
        .await
    {
        Ok(done) => signed_in(&state, done).await,
        Err(Error::InvalidChallenge) => Ok(refused("That passkey sign-in took too long; try again.")),
        Err(Error::InvalidPasskey | Error::InvalidCredentials(_) | Error::UserInactive(_)) => {
            Ok(refused("That passkey is not an admin's passkey here."))
        }
        Err(Error::RateLimited { retry_after_secs }) => Ok(too_many(
            refused(&format!("Too many failed sign-ins. Try again in {retry_after_secs} seconds.")),
            retry_after_secs,
        )),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    state.service.end_session(&Scope::admin(), &admin.token).await?;
    state.service.audit(&admin.username, "admin_logout", None, None, JsonObject::new()).await?;
    // The login page then says so: a bare login form after a click on "Log out" leaves
    // the operator wondering whether it worked.
    let mut res = see_other("/admin/login?notice=signed-out".into());
    res.headers_mut().insert(header::SET_COOKIE, state.admin.cookie("", Some(0)));
    Ok(res)
}
