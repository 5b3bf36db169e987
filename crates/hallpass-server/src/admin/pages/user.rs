//! One user's page and its forms: changing the user, activating or deactivating,
//! setting a password, ending one session or all of them, removing the second factors.

use super::*;

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
    linked: String,
    refresh: bool,
}

pub(crate) struct FactorRow {
    kind: &'static str,
    state: String,
    since: String,
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
    /// The user's second factors, as words (never a secret).
    factors: Vec<FactorRow>,
    error: Option<String>,
    /// Which field the error is about (`extra`, `group`, `password`), for `aria-invalid`.
    error_field: &'static str,
}

/// What a refused form typed, shown again so that nothing typed is lost.
pub(crate) struct Refused {
    status: StatusCode,
    message: String,
    field: &'static str,
    group: Option<String>,
    extra: Option<String>,
    active: Option<bool>,
}

impl Refused {
    fn new(status: StatusCode, message: String, field: &'static str) -> Self {
        Self { status, message, field, group: None, extra: None, active: None }
    }
    fn edit(status: StatusCode, message: String, field: &'static str, form: &UpdateForm) -> Self {
        Self {
            group: Some(form.group.clone()),
            extra: Some(form.extra.clone()),
            active: Some(form.active.is_some()),
            ..Self::new(status, message, field)
        }
    }
}

/// `extra` that is not JSON, said for an operator: where, and what to look at, rather
/// than the parser's own words.
fn json_trouble(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "it ends too early (a closing } or \" may be missing)",
        _ => "check the quotes, commas, colons and braces",
    };
    format!(
        "Extra is not valid JSON near line {}, column {}: {what}. Keys and text need double quotes, as in {{\"plan\": \"pro\"}}. Nothing was saved.",
        e.line(),
        e.column()
    )
}

/// Renders the user page, with an error above the forms when `error` is set.
async fn user_page(
    state: &AppState,
    admin: &Admin,
    scope: &Scope,
    id: Uuid,
    notice: Option<&str>,
    error: Option<Refused>,
) -> Result<Response, PageError> {
    let svc = &state.service;
    let r = UserRef::Id(id);
    let u = svc.get_user(scope, &r).await?;
    let sessions = svc.list_sessions(scope, &r).await?;
    let events = svc.login_history(scope, &r, Some(100), None).await?;
    let providers = svc.list_providers(scope, &r).await?;
    let mfa = svc.mfa_state(scope, &r).await?;
    let passkeys = if mfa.passkeys > 0 { svc.list_passkeys(scope, &r).await? } else { Vec::new() };
    let now = svc.now();
    let name = display_name(&u);
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
    let (status, message, error_field, group_typed, extra_typed, active_typed) = match error {
        Some(r) => (r.status, Some(r.message), r.field, r.group, r.extra, r.active),
        None => (StatusCode::OK, None, "", None, None, None),
    };
    let page = UserPage {
        l: Layout::new(admin, format!("User {name}"), "users", notice),
        base: user_href(&u),
        scope: u.scope.to_string(),
        name,
        fields,
        group: group_typed.unwrap_or_else(|| u.group.as_str().to_owned()),
        extra: extra_typed
            .unwrap_or_else(|| serde_json::to_string_pretty(&u.extra).unwrap_or_else(|_| "{}".into())),
        active: active_typed.unwrap_or(u.active),
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
                outcome: outcome_words(e.outcome.as_str()).to_owned(),
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
                linked: fmt_time(p.created_at),
                refresh: p.refresh_token.is_some(),
            })
            .collect(),
        factors: factor_rows(&mfa, &passkeys),
        error: message,
        error_field,
    };
    Ok(render(status, &page))
}

/// The rows of the second factors table.
fn factor_rows(mfa: &hallpass_core::MfaState, passkeys: &[hallpass_core::PasskeyRecord]) -> Vec<FactorRow> {
    let mut rows: Vec<FactorRow> = passkeys
        .iter()
        .map(|p| FactorRow {
            kind: "Passkey",
            state: format!(
                "“{}”, {}{}",
                p.name,
                p.last_used_at
                    .map_or_else(|| "never used".to_owned(), |t| format!("last used {}", fmt_time(t))),
                if p.backup_state { ", synced (backed up)" } else { "" }
            ),
            since: fmt_time(p.created_at),
        })
        .collect();
    if let Some(totp) = &mfa.totp {
        rows.push(FactorRow {
            kind: "Authenticator app (TOTP)",
            state: if totp.confirmed { "in use".into() } else { "enrolment not confirmed yet".into() },
            since: fmt_time(totp.created_at),
        });
    }
    if mfa.recovery_codes > 0 || mfa.totp_confirmed() {
        rows.push(FactorRow {
            kind: "Recovery codes",
            state: match mfa.recovery_codes {
                0 => "none left".into(),
                1 => "1 unused".into(),
                n => format!("{n} unused"),
            },
            since: "—".into(),
        });
    }
    rows
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
    confirm: Option<String>,
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
    let bad = |m: String, field| Some(Refused::edit(StatusCode::BAD_REQUEST, m, field, &form));
    let group = match Group::parse(form.group.trim()) {
        Ok(g) => g,
        Err(e) => return user_page(&state, &admin, &scope, id, None, bad(e.to_string(), "group")).await,
    };
    let extra: JsonObject = match serde_json::from_str::<serde_json::Value>(&form.extra) {
        Ok(serde_json::Value::Object(o)) => o,
        Ok(_) => {
            let m = "Extra must be a JSON object, such as {} or {\"plan\": \"pro\"}. Nothing was saved."
                .to_owned();
            return user_page(&state, &admin, &scope, id, None, bad(m, "extra")).await;
        }
        Err(e) => return user_page(&state, &admin, &scope, id, None, bad(json_trouble(&e), "extra")).await,
    };
    let active = form.active.is_some();
    if current.active && !active && !confirmed(&form.confirm) {
        // Unticking "Active" deactivates: the same question as the Deactivate button.
        let fields = vec![("group", form.group.clone()), ("extra", form.extra.clone())];
        return deactivate_confirmation(
            &state,
            &admin,
            &scope,
            &current,
            format!("/admin/users/{scope}/{id}"),
            fields,
        )
        .await;
    }
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
                    user_page(
                        &state,
                        &admin,
                        &scope,
                        id,
                        None,
                        Some(Refused::edit(status, m, "extra", &form)),
                    )
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
    confirm: Option<String>,
}

/// The name the pages use for a user: username, else email, else id.
fn display_name(u: &User) -> String {
    u.username
        .as_ref()
        .map(|x| x.as_str().to_owned())
        .or_else(|| u.email.as_ref().map(|x| x.as_str().to_owned()))
        .unwrap_or_else(|| u.id.to_string())
}

/// The question before deactivating `u` (from the button or the edit form at `action`).
async fn deactivate_confirmation(
    state: &AppState,
    admin: &Admin,
    scope: &Scope,
    u: &User,
    action: String,
    fields: Vec<(&str, String)>,
) -> Result<Response, PageError> {
    let sessions = state.service.list_sessions(scope, &UserRef::Id(u.id)).await?.len();
    let name = display_name(u);
    let consequences = vec![
        format!("{name} (scope {scope}) can no longer sign in."),
        match sessions {
            0 => "The user has no active session.".to_owned(),
            1 => "The user's one active session ends at once.".to_owned(),
            n => format!("All {n} active sessions of the user end at once."),
        },
        "You can activate the user again later; ended sessions stay ended.".to_owned(),
    ];
    Ok(confirm_page(
        admin,
        format!("Deactivate {name}?"),
        consequences,
        action,
        fields,
        "Deactivate the user",
        user_href(u),
    ))
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
    if !active && !confirmed(&form.confirm) {
        let u = state.service.get_user(&scope, &UserRef::Id(id)).await?;
        let action = format!("/admin/users/{scope}/{id}/active");
        return deactivate_confirmation(&state, &admin, &scope, &u, action, vec![("active", "false".into())])
            .await;
    }
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
                user_page(&state, &admin, &scope, id, None, Some(Refused::new(status, m, "password"))).await
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

#[derive(Debug, Deserialize)]
pub(crate) struct EndAllForm {
    #[serde(default)]
    csrf: String,
    confirm: Option<String>,
}

pub(crate) async fn end_all_sessions(
    State(state): State<AppState>,
    admin: Admin,
    Path((scope, id)): Path<(String, String)>,
    Form(form): Form<EndAllForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let (scope, id) = (scope_of(&scope)?, path_id(&id)?);
    if !confirmed(&form.confirm) {
        let u = state.service.get_user(&scope, &UserRef::Id(id)).await?;
        let n = state.service.list_sessions(&scope, &UserRef::Id(id)).await?.len();
        let name = display_name(&u);
        let consequences = vec![
            format!(
                "{n} active session(s) of {name} (scope {scope}) end at once: every device is signed out."
            ),
            "The user can still sign in again; deactivate the user to prevent that.".to_owned(),
        ];
        return Ok(confirm_page(
            &admin,
            format!("End every session of {name}?"),
            consequences,
            format!("/admin/users/{scope}/{id}/sessions/end-all"),
            vec![],
            "End all sessions",
            user_href(&u),
        ));
    }
    let ended = state.service.end_user_sessions(&scope, &UserRef::Id(id)).await?;
    let detail = json!({"ended": ended}).as_object().cloned().unwrap_or_default();
    state
        .service
        .audit(&admin.username, "sessions_end_all", Some(&scope), Some(id.to_string()), detail)
        .await?;
    Ok(see_other(format!("/admin/users/{scope}/{id}?notice=sessions")))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RemoveFactorsForm {
    #[serde(default)]
    csrf: String,
    confirm: Option<String>,
}

/// Removes every second factor of the user (after a confirmation page), which ends the
/// user's sessions; audited as `mfa_remove`, as the API's `DELETE /v1/users/{ref}/mfa` is.
pub(crate) async fn remove_factors(
    State(state): State<AppState>,
    admin: Admin,
    Path((scope, id)): Path<(String, String)>,
    Form(form): Form<RemoveFactorsForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let (scope, id) = (scope_of(&scope)?, path_id(&id)?);
    let r = UserRef::Id(id);
    if !confirmed(&form.confirm) {
        let u = state.service.get_user(&scope, &r).await?;
        let name = display_name(&u);
        let consequences = vec![
            format!("{name} (scope {scope}) signs in with the first factor alone until enrolling again."),
            "The authenticator app, the recovery codes and the passkeys are removed.".to_owned(),
            "Every session of the user ends at once.".to_owned(),
        ];
        return Ok(confirm_page(
            &admin,
            format!("Remove the second factors of {name}?"),
            consequences,
            format!("/admin/users/{scope}/{id}/mfa/remove"),
            vec![],
            "Remove second factors",
            user_href(&u),
        ));
    }
    let removed = state.service.remove_mfa(&scope, &r, None).await?;
    let detail = json!({"removed": removed}).as_object().cloned().unwrap_or_default();
    state.service.audit(&admin.username, "mfa_remove", Some(&scope), Some(id.to_string()), detail).await?;
    Ok(see_other(format!("/admin/users/{scope}/{id}?notice=factors")))
}
