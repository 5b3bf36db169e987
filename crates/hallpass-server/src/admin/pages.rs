//! The admin pages: one handler per route, each with its view model (plain strings and
//! numbers, formatted here so the templates stay simple). A GET renders; a POST checks
//! the CSRF token first, acts through the service, writes an audit entry, then redirects
//! (POST/redirect/GET) or re-renders the form with the error and a 4xx status.

use super::{Admin, ClientIp, PageError, chart, path_id, render, scope_of};
use crate::http::AppState;
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hallpass_core::service::{Credentials, LoginRequest};
use hallpass_core::{
    ClientInfo, DeviceToken, Error, Group, JsonObject, Password, Scope, User, UserFilter, UserPatch, UserRef,
};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::macros::format_description;
use uuid::Uuid;

/// Days the dashboard chart spans.
const CHART_DAYS: u32 = 30;
/// Users per page of the user list.
const USERS_PAGE: u32 = 25;

/// What every page's frame needs.
pub(crate) struct Layout {
    /// The page title.
    pub title: String,
    /// The signed-in admin (no navigation without one).
    pub admin: Option<String>,
    /// The CSRF token for the logout form.
    pub csrf: String,
    /// Which navigation entry is current.
    pub active: &'static str,
    /// A message about the last action, if any.
    pub notice: Option<&'static str>,
}

impl Layout {
    /// A frame without navigation (login and error pages).
    pub fn bare(title: &str) -> Self {
        Self { title: title.to_owned(), admin: None, csrf: String::new(), active: "", notice: None }
    }
    fn new(admin: &Admin, title: impl Into<String>, active: &'static str, notice: Option<&str>) -> Self {
        Self {
            title: title.into(),
            admin: Some(admin.username.clone()),
            csrf: admin.csrf.clone(),
            active,
            notice: notice.and_then(notice_text),
        }
    }
}

/// The sentence for a `?notice=` left by a redirect (only known codes are shown).
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "saved" => "Changes saved.",
        "activated" => "The user is active again.",
        "deactivated" => "The user is deactivated; every session of the user has ended.",
        "password" => "Password set; every session of the user has ended.",
        "session" => "The session has ended.",
        "sessions" => "Every session of the user has ended.",
        "revoked" => "The API key is revoked.",
        _ => return None,
    })
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second]")).unwrap_or_default()
}

fn fmt_day(t: OffsetDateTime) -> String {
    t.format(format_description!("[year]-[month]-[day]")).unwrap_or_default()
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn see_other(to: String) -> Response {
    Redirect::to(&to).into_response()
}

/// What every form posts besides its fields.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct NoticeQuery {
    notice: Option<String>,
}

// ------------------------------------------------------------------ login and logout

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

pub(crate) async fn login_form() -> Response {
    render(StatusCode::OK, &LoginPage { l: Layout::bare("Sign in"), error: None, username: String::new() })
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
    super::check_origin(&headers, uri.authority().map(|a| a.as_str()), &state.admin)?;
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
        super::cookie(&headers, state.admin.device_cookie_name()).and_then(|v| DeviceToken::parse(&v));
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
    let mut res = see_other("/admin/login".into());
    res.headers_mut().insert(header::SET_COOKIE, state.admin.cookie("", Some(0)));
    Ok(res)
}

// ------------------------------------------------------------------ dashboard

pub(crate) struct ScopeRow {
    scope: String,
    users: u64,
    active_users: u64,
    live_sessions: u64,
    api_keys: u64,
    logins: u64,
    failed: u64,
}

pub(crate) struct DayRow {
    day: String,
    success: u64,
    failed: u64,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
pub(crate) struct DashboardPage {
    l: Layout,
    scopes: Vec<String>,
    selected: String,
    users: u64,
    active_users: u64,
    live_sessions: u64,
    logins: u64,
    failed: u64,
    chart: String,
    rows: Vec<ScopeRow>,
    days: Vec<DayRow>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DashboardQuery {
    scope: Option<String>,
}

pub(crate) async fn dashboard(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<DashboardQuery>,
) -> Result<Response, PageError> {
    let svc = &state.service;
    let figures = svc.scope_figures().await?;
    let selected = q.scope.filter(|s| !s.is_empty());
    let chosen: Vec<Scope> = match &selected {
        Some(s) => vec![scope_of(s)?],
        None => figures.iter().map(|f| f.scope.clone()).collect(),
    };
    let mut rows = Vec::with_capacity(figures.len());
    for f in &figures {
        let days = svc.outcomes_per_day(std::slice::from_ref(&f.scope), CHART_DAYS).await?;
        rows.push(ScopeRow {
            scope: f.scope.to_string(),
            users: f.users,
            active_users: f.active_users,
            live_sessions: f.live_sessions,
            api_keys: f.api_keys,
            logins: days.iter().map(|d| d.successes()).sum(),
            failed: days.iter().map(|d| d.failures()).sum(),
        });
    }
    let days = svc.outcomes_per_day(&chosen, CHART_DAYS).await?;
    let shown: Vec<&ScopeRow> =
        rows.iter().filter(|r| chosen.iter().any(|c| c.as_str() == r.scope)).collect();
    let title = match &selected {
        Some(s) => format!("Logins per day in scope {s}, last {CHART_DAYS} days"),
        None => format!("Logins per day in every scope, last {CHART_DAYS} days"),
    };
    let page = DashboardPage {
        l: Layout::new(&admin, "Dashboard", "dashboard", None),
        scopes: figures.iter().map(|f| f.scope.to_string()).collect(),
        selected: selected.unwrap_or_default(),
        users: shown.iter().map(|r| r.users).sum(),
        active_users: shown.iter().map(|r| r.active_users).sum(),
        live_sessions: shown.iter().map(|r| r.live_sessions).sum(),
        logins: days.iter().map(|d| d.successes()).sum(),
        failed: days.iter().map(|d| d.failures()).sum(),
        chart: chart::logins_svg(&title, &days),
        days: days
            .iter()
            .rev()
            .map(|d| DayRow {
                day: fmt_day(d.day),
                success: d.successes(),
                failed: d.failures(),
                detail: d
                    .counts
                    .iter()
                    .filter(|(k, _)| **k != "success")
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect(),
        rows,
    };
    Ok(render(StatusCode::OK, &page))
}

// ------------------------------------------------------------------ users

pub(crate) struct UserRow {
    href: String,
    username: String,
    email: String,
    group: String,
    active: bool,
    created: String,
    last_login: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
pub(crate) struct UsersPage {
    l: Layout,
    scopes: Vec<String>,
    scope: String,
    q: String,
    group: String,
    active: String,
    users: Vec<UserRow>,
    next: Option<String>,
    searched: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct UsersQuery {
    scope: Option<String>,
    q: Option<String>,
    group: Option<String>,
    active: Option<String>,
    cursor: Option<String>,
}

fn user_href(u: &User) -> String {
    format!("/admin/users/{}/{}", u.scope, u.id)
}

pub(crate) async fn users(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<UsersQuery>,
) -> Result<Response, PageError> {
    let svc = &state.service;
    let scopes: Vec<String> = svc.scope_figures().await?.into_iter().map(|f| f.scope.to_string()).collect();
    let scope_name = q
        .scope
        .filter(|s| !s.is_empty())
        .or_else(|| scopes.first().cloned())
        .unwrap_or_else(|| Scope::default_scope().to_string());
    let scope = scope_of(&scope_name)?;
    let text = q.q.unwrap_or_default().trim().to_owned();
    let group = q.group.unwrap_or_default().trim().to_owned();
    let active = q.active.unwrap_or_default();
    let filter = UserFilter {
        query: (!text.is_empty()).then(|| text.clone()),
        group: (!group.is_empty()).then(|| group.clone()),
        active: match active.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
    };
    let page = svc
        .list_users(&scope, &filter, Some(USERS_PAGE), q.cursor.as_deref().filter(|c| !c.is_empty()))
        .await?;
    let next = page.next_cursor.map(|c| {
        format!(
            "/admin/users?scope={}&q={}&group={}&active={}&cursor={}",
            enc(&scope_name),
            enc(&text),
            enc(&group),
            enc(&active),
            enc(&c)
        )
    });
    let users = page
        .items
        .iter()
        .map(|u| UserRow {
            href: user_href(u),
            username: u.username.as_ref().map(|x| x.as_str().to_owned()).unwrap_or_default(),
            email: u.email.as_ref().map(|x| x.as_str().to_owned()).unwrap_or_default(),
            group: u.group.as_str().to_owned(),
            active: u.active,
            created: fmt_time(u.created_at),
            last_login: u.last_login_at.map(fmt_time).unwrap_or_else(|| "never".into()),
        })
        .collect();
    let searched = filter.query.is_some() || filter.group.is_some() || filter.active.is_some();
    let page = UsersPage {
        l: Layout::new(&admin, "Users", "users", None),
        scopes,
        scope: scope_name,
        q: text,
        group,
        active,
        users,
        next,
        searched,
    };
    Ok(render(StatusCode::OK, &page))
}

// ------------------------------------------------------------------ one user

pub(crate) struct SessionRow {
    id: String,
    created: String,
    last_seen: String,
    expires: String,
    ip: String,
    user_agent: String,
}

pub(crate) struct EventRow {
    at: String,
    method: String,
    outcome: String,
    success: bool,
    ip: String,
    user_agent: String,
}

pub(crate) struct ProviderRow {
    provider: String,
    client_id: String,
    expiry: String,
    expired: bool,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
pub(crate) struct UserPage {
    l: Layout,
    base: String,
    scope: String,
    name: String,
    fields: Vec<(&'static str, String)>,
    group: String,
    extra: String,
    active: bool,
    sessions: Vec<SessionRow>,
    events: Vec<EventRow>,
    providers: Vec<ProviderRow>,
    error: Option<String>,
}

/// Renders the user page, with an error above the forms when `error` is set.
async fn user_page(
    state: &AppState,
    admin: &Admin,
    scope: &Scope,
    id: Uuid,
    notice: Option<&str>,
    error: Option<(StatusCode, String, Option<String>)>,
) -> Result<Response, PageError> {
    let svc = &state.service;
    let r = UserRef::Id(id);
    let u = svc.get_user(scope, &r).await?;
    let sessions = svc.list_sessions(scope, &r).await?;
    let events = svc.login_history(scope, &r, Some(100), None).await?;
    let providers = svc.list_providers(scope, &r).await?;
    let now = svc.now();
    let name = u
        .username
        .as_ref()
        .map(|x| x.as_str().to_owned())
        .or_else(|| u.email.as_ref().map(|x| x.as_str().to_owned()))
        .unwrap_or_else(|| u.id.to_string());
    let opt = |s: Option<String>| s.unwrap_or_else(|| "—".into());
    let fields = vec![
        ("id", u.id.to_string()),
        ("scope", u.scope.to_string()),
        ("username", opt(u.username.as_ref().map(|x| x.as_str().to_owned()))),
        ("email", opt(u.email.as_ref().map(|x| x.as_str().to_owned()))),
        ("group", u.group.as_str().to_owned()),
        ("active", if u.active { "yes".into() } else { "no".into() }),
        ("confirmation", opt(u.confirmation.map(|c| c.as_str().to_owned()))),
        ("confirmed", if u.confirmed { "yes".into() } else { "no".into() }),
        ("validated", if svc.validated(&u) { "yes".into() } else { "no".into() }),
        ("created", fmt_time(u.created_at)),
        ("updated", fmt_time(u.updated_at)),
        ("last login", u.last_login_at.map(fmt_time).unwrap_or_else(|| "never".into())),
    ];
    let (status, message, extra_typed) = match error {
        Some((status, m, extra)) => (status, Some(m), extra),
        None => (StatusCode::OK, None, None),
    };
    let page = UserPage {
        l: Layout::new(admin, format!("User {name}"), "users", notice),
        base: user_href(&u),
        scope: u.scope.to_string(),
        name,
        fields,
        group: u.group.as_str().to_owned(),
        extra: extra_typed
            .unwrap_or_else(|| serde_json::to_string_pretty(&u.extra).unwrap_or_else(|_| "{}".into())),
        active: u.active,
        sessions: sessions
            .iter()
            .map(|s| SessionRow {
                id: s.id.to_string(),
                created: fmt_time(s.created_at),
                last_seen: fmt_time(s.last_seen_at),
                expires: fmt_time(s.valid_until()),
                ip: s.client.ip.clone().unwrap_or_default(),
                user_agent: s.client.user_agent.clone().unwrap_or_default(),
            })
            .collect(),
        events: events
            .items
            .iter()
            .map(|e| EventRow {
                at: fmt_time(e.at),
                method: e.method.clone(),
                outcome: e.outcome.as_str().to_owned(),
                success: e.outcome == hallpass_core::Outcome::Success,
                ip: e.ip.clone().unwrap_or_default(),
                user_agent: e.user_agent.clone().unwrap_or_default(),
            })
            .collect(),
        providers: providers
            .iter()
            .map(|p| ProviderRow {
                provider: p.provider.to_string(),
                client_id: p.client_id.as_str().to_owned(),
                expiry: p.access_token_expiry.map(fmt_time).unwrap_or_else(|| "—".into()),
                expired: p.access_token_expired(now),
            })
            .collect(),
        error: message,
    };
    Ok(render(status, &page))
}

pub(crate) async fn user(
    State(state): State<AppState>,
    admin: Admin,
    Path((scope, id)): Path<(String, String)>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let (scope, id) = (scope_of(&scope)?, path_id(&id)?);
    user_page(&state, &admin, &scope, id, q.notice.as_deref(), None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct UpdateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    extra: String,
    active: Option<String>,
}

pub(crate) async fn update_user(
    State(state): State<AppState>,
    admin: Admin,
    Path((scope, id)): Path<(String, String)>,
    Form(form): Form<UpdateForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let (scope, id) = (scope_of(&scope)?, path_id(&id)?);
    let r = UserRef::Id(id);
    let current = state.service.get_user(&scope, &r).await?;
    let bad = |m: String| Some((StatusCode::BAD_REQUEST, m, Some(form.extra.clone())));
    let group = match Group::parse(form.group.trim()) {
        Ok(g) => g,
        Err(e) => return user_page(&state, &admin, &scope, id, None, bad(e.to_string())).await,
    };
    let extra: JsonObject = match serde_json::from_str::<serde_json::Value>(&form.extra) {
        Ok(serde_json::Value::Object(o)) => o,
        Ok(_) => {
            let m = "extra: must be a JSON object, such as {} or {\"plan\": \"pro\"}".to_owned();
            return user_page(&state, &admin, &scope, id, None, bad(m)).await;
        }
        Err(e) => {
            let m = format!("extra: not valid JSON ({e})");
            return user_page(&state, &admin, &scope, id, None, bad(m)).await;
        }
    };
    let active = form.active.is_some();
    let mut changed = Vec::new();
    let mut patch = UserPatch::default();
    if group != current.group {
        changed.push("group");
        patch.group = Some(group);
    }
    if extra != current.extra {
        changed.push("extra");
        patch.extra = Some(extra);
    }
    if active != current.active {
        changed.push("active");
        patch.active = Some(active);
    }
    if !changed.is_empty() {
        if let Err(e) = state.service.update_user(&scope, &r, patch).await {
            return match PageError::from(e) {
                PageError::Status(status, m) if status.is_client_error() => {
                    user_page(&state, &admin, &scope, id, None, Some((status, m, Some(form.extra.clone()))))
                        .await
                }
                other => Err(other),
            };
        }
        let detail = json!({"changed": changed, "active": active});
        let detail = detail.as_object().cloned().unwrap_or_default();
        state
            .service
            .audit(&admin.username, "user_update", Some(&scope), Some(id.to_string()), detail)
            .await?;
    }
    Ok(see_other(format!("/admin/users/{scope}/{id}?notice=saved")))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActiveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    active: String,
}

pub(crate) async fn set_active(
    State(state): State<AppState>,
    admin: Admin,
    Path((scope, id)): Path<(String, String)>,
    Form(form): Form<ActiveForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let (scope, id) = (scope_of(&scope)?, path_id(&id)?);
    let active = form.active == "true";
    let patch = UserPatch { active: Some(active), ..UserPatch::default() };
    state.service.update_user(&scope, &UserRef::Id(id), patch).await?;
    let action = if active { "user_activate" } else { "user_deactivate" };
    state
        .service
        .audit(&admin.username, action, Some(&scope), Some(id.to_string()), JsonObject::new())
        .await?;
    let notice = if active { "activated" } else { "deactivated" };
    Ok(see_other(format!("/admin/users/{scope}/{id}?notice={notice}")))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn set_password(
    State(state): State<AppState>,
    admin: Admin,
    Path((scope, id)): Path<(String, String)>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let (scope, id) = (scope_of(&scope)?, path_id(&id)?);
    let result = match Password::new(&form.password) {
        Ok(p) => state.service.set_password(&scope, &UserRef::Id(id), p).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        return match PageError::from(e) {
            PageError::Status(status, m) if status.is_client_error() && status != StatusCode::NOT_FOUND => {
                user_page(&state, &admin, &scope, id, None, Some((status, m, None))).await
            }
            other => Err(other),
        };
    }
    state
        .service
        .audit(&admin.username, "user_set_password", Some(&scope), Some(id.to_string()), JsonObject::new())
        .await?;
    Ok(see_other(format!("/admin/users/{scope}/{id}?notice=password")))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SessionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    session_id: String,
}

pub(crate) async fn end_session(
    State(state): State<AppState>,
    admin: Admin,
    Path((scope, id)): Path<(String, String)>,
    Form(form): Form<SessionForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let (scope, id) = (scope_of(&scope)?, path_id(&id)?);
    let sid = Uuid::parse_str(&form.session_id)
        .map_err(|_| PageError::Status(StatusCode::NOT_FOUND, "No such session.".into()))?;
    state.service.end_user_session(&scope, &UserRef::Id(id), sid).await?;
    let detail = json!({"session_id": sid}).as_object().cloned().unwrap_or_default();
    state.service.audit(&admin.username, "session_end", Some(&scope), Some(id.to_string()), detail).await?;
    Ok(see_other(format!("/admin/users/{scope}/{id}?notice=session")))
}

pub(crate) async fn end_all_sessions(
    State(state): State<AppState>,
    admin: Admin,
    Path((scope, id)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let (scope, id) = (scope_of(&scope)?, path_id(&id)?);
    let ended = state.service.end_user_sessions(&scope, &UserRef::Id(id)).await?;
    let detail = json!({"ended": ended}).as_object().cloned().unwrap_or_default();
    state
        .service
        .audit(&admin.username, "sessions_end_all", Some(&scope), Some(id.to_string()), detail)
        .await?;
    Ok(see_other(format!("/admin/users/{scope}/{id}?notice=sessions")))
}

// ------------------------------------------------------------------ scopes and keys

pub(crate) struct KeyRow {
    id: String,
    scope: String,
    name: String,
    created: String,
    revoked: Option<String>,
}

pub(crate) struct CreatedKey {
    id: String,
    scope: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
pub(crate) struct KeysPage {
    l: Layout,
    scopes: Vec<ScopeRow>,
    keys: Vec<KeyRow>,
    created: Option<CreatedKey>,
    error: Option<String>,
    form_scope: String,
    form_name: String,
}

async fn keys_page(
    state: &AppState,
    admin: &Admin,
    notice: Option<&str>,
    status: StatusCode,
    created: Option<CreatedKey>,
    error: Option<(String, String, String)>,
) -> Result<Response, PageError> {
    let svc = &state.service;
    let scopes = svc
        .scope_figures()
        .await?
        .into_iter()
        .map(|f| ScopeRow {
            scope: f.scope.to_string(),
            users: f.users,
            active_users: f.active_users,
            live_sessions: f.live_sessions,
            api_keys: f.api_keys,
            logins: 0,
            failed: 0,
        })
        .collect();
    let mut keys: Vec<KeyRow> = svc
        .list_api_keys()
        .await?
        .into_iter()
        .map(|k| KeyRow {
            id: k.id.to_string(),
            scope: k.scope.to_string(),
            name: k.name.unwrap_or_default(),
            created: fmt_time(k.created_at),
            revoked: k.revoked_at.map(fmt_time),
        })
        .collect();
    keys.reverse();
    let (error, form_scope, form_name) = match error {
        Some((m, s, n)) => (Some(m), s, n),
        None => (None, String::new(), String::new()),
    };
    let page = KeysPage {
        l: Layout::new(admin, "Scopes and API keys", "keys", notice),
        scopes,
        keys,
        created,
        error,
        form_scope,
        form_name,
    };
    Ok(render(status, &page))
}

pub(crate) async fn keys(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    keys_page(&state, &admin, q.notice.as_deref(), StatusCode::OK, None, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateKeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    name: String,
}

pub(crate) async fn create_key(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<CreateKeyForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let name = form.name.trim();
    let fail = |m: String| Some((m, form.scope.clone(), form.name.clone()));
    let scope = match Scope::parse(form.scope.trim()) {
        Ok(s) => s,
        Err(e) => {
            return keys_page(&state, &admin, None, StatusCode::BAD_REQUEST, None, fail(e.to_string())).await;
        }
    };
    let name = (!name.is_empty()).then(|| name.to_owned());
    let (key, secret) = match state.service.create_api_key(scope.clone(), name.clone()).await {
        Ok(made) => made,
        Err(Error::Invalid(e)) => {
            return keys_page(&state, &admin, None, StatusCode::BAD_REQUEST, None, fail(e.to_string())).await;
        }
        Err(e) => return Err(e.into()),
    };
    let detail = json!({"name": name}).as_object().cloned().unwrap_or_default();
    state
        .service
        .audit(&admin.username, "key_create", Some(&scope), Some(key.id.to_string()), detail)
        .await?;
    let created =
        CreatedKey { id: key.id.to_string(), scope: scope.to_string(), secret: secret.expose().to_owned() };
    keys_page(&state, &admin, None, StatusCode::CREATED, Some(created), None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key_id: String,
}

pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let id = Uuid::parse_str(&form.key_id).map_err(|_| PageError::from(Error::KeyNotFound))?;
    let scope = state.service.list_api_keys().await?.into_iter().find(|k| k.id == id).map(|k| k.scope);
    state.service.revoke_api_key(id).await?;
    state
        .service
        .audit(&admin.username, "key_revoke", scope.as_ref(), Some(id.to_string()), JsonObject::new())
        .await?;
    Ok(see_other("/admin/keys?notice=revoked".into()))
}

// ------------------------------------------------------------------ audit

pub(crate) struct AuditRow {
    at: String,
    admin: String,
    action: String,
    scope: String,
    target: String,
    detail: String,
}

pub(crate) struct SignInRow {
    at: String,
    admin: String,
    outcome: String,
    success: bool,
    ip: String,
    user_agent: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
pub(crate) struct AuditPage {
    l: Layout,
    entries: Vec<AuditRow>,
    next: Option<String>,
    sign_ins: Vec<SignInRow>,
}

/// Sign-in attempts of this page's admins shown on the audit page.
const SIGN_INS: usize = 20;

/// The latest sign-in attempts of every admin (login events of the `_admin` scope),
/// newest first. Attempts for names that are no admin are not listed (what was typed
/// may be a password); throttling counts them.
async fn admin_sign_ins(state: &AppState) -> Result<Vec<SignInRow>, PageError> {
    let svc = &state.service;
    let admin = Scope::admin();
    let admins = svc.list_users(&admin, &UserFilter::default(), Some(100), None).await?.items;
    let mut events = Vec::new();
    for a in &admins {
        let name = a.username.as_ref().map(|u| u.as_str().to_owned()).unwrap_or_default();
        let page = svc.login_history(&admin, &UserRef::Id(a.id), Some(SIGN_INS as u32), None).await?;
        events.extend(page.items.into_iter().map(|e| (e, name.clone())));
    }
    events.sort_by_key(|e| std::cmp::Reverse(e.0.id));
    events.truncate(SIGN_INS);
    Ok(events
        .into_iter()
        .map(|(e, admin)| SignInRow {
            at: fmt_time(e.at),
            admin,
            outcome: e.outcome.as_str().to_owned(),
            success: e.outcome == hallpass_core::Outcome::Success,
            ip: e.ip.unwrap_or_default(),
            user_agent: e.user_agent.unwrap_or_default(),
        })
        .collect())
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    cursor: Option<String>,
}

pub(crate) async fn audit(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let page = state.service.list_audit(Some(50), q.cursor.as_deref()).await?;
    let entries = page
        .items
        .into_iter()
        .map(|e| AuditRow {
            at: fmt_time(e.at),
            admin: e.admin,
            action: e.action,
            scope: e.scope.map(|s| s.to_string()).unwrap_or_default(),
            target: e.target.unwrap_or_default(),
            detail: if e.detail.is_empty() {
                String::new()
            } else {
                serde_json::Value::Object(e.detail).to_string()
            },
        })
        .collect();
    let next = page.next_cursor.map(|c| format!("/admin/audit?cursor={}", enc(&c)));
    let sign_ins = admin_sign_ins(&state).await?;
    let l = Layout::new(&admin, "Audit trail", "audit", None);
    Ok(render(StatusCode::OK, &AuditPage { l, entries, next, sign_ins }))
}
