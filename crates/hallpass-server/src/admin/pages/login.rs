//! The login form, signing in (an ordinary login in the `_admin` scope, audited) and
//! signing out; and the error page every handler falls back to.

use super::*;

#[derive(Template)]
#[template(path = "admin/login.html")]
pub(crate) struct LoginPage {
    l: Layout,
    error: Option<String>,
    username: String,
}

#[derive(Template)]
#[template(path = "admin/error.html")]
pub(crate) struct ErrorPage {
    pub l: Layout,
    pub status: u16,
    pub message: String,
}

pub(crate) async fn login_form(Query(q): Query<NoticeQuery>) -> Response {
    let mut l = Layout::bare("Sign in");
    l.notice = q.notice.as_deref().and_then(notice_text);
    render(StatusCode::OK, &LoginPage { l, error: None, username: String::new() })
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
    let page = |status: StatusCode, error: String| {
        let username = form.username.chars().take(64).collect();
        render(status, &LoginPage { l: Layout::bare("Sign in"), error: Some(error), username })
    };
    let wrong = || page(StatusCode::UNAUTHORIZED, "Wrong username or password.".into());
    let (Ok(login), Ok(password)) = (UserRef::login(&form.username), Password::for_login(&form.password))
    else {
        return Ok(wrong());
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect::<String>());
    let device =
        crate::admin::cookie(&headers, state.admin.device_cookie_name()).and_then(|v| DeviceToken::parse(&v));
    let request = LoginRequest {
        credentials: Credentials::Password { login, password },
        data: JsonObject::new(),
        client: ClientInfo { ip, user_agent },
        device,
    };
    match state.service.login(&Scope::admin(), request).await {
        Ok(done) => {
            let admin = done.login.username.clone().unwrap_or_default();
            let detail = json!({"session_id": done.session.id}).as_object().cloned().unwrap_or_default();
            state.service.audit(&admin, "admin_login", None, None, detail).await?;
            let mut res = see_other("/admin".into());
            res.headers_mut().insert(header::SET_COOKIE, state.admin.cookie(done.token.expose(), None));
            res.headers_mut().append(header::SET_COOKIE, state.admin.device_cookie(done.device.expose()));
            Ok(res)
        }
        Err(Error::InvalidCredentials(_) | Error::UserInactive(_)) => Ok(wrong()),
        Err(Error::RateLimited { retry_after_secs }) => {
            let mut res = page(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many failed sign-ins. Try again in {retry_after_secs} seconds."),
            );
            if let Ok(v) = retry_after_secs.to_string().parse() {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(res)
        }
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
