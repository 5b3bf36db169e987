//! Scopes and API keys: the list, creating a key (its secret shown once, on the page the
//! creation redirects to) and revoking one (after a confirmation page).

use super::*;

/// What [`ShownOnce`](crate::admin::ShownOnce) holds for a new API key.
pub(crate) const SHOWN_KEY: &str = "key";

pub(crate) struct KeyRow {
    id: String,
    short: String,
    scope: String,
    name: String,
    created: String,
    revoked: Option<String>,
    last_used: String,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
pub(crate) struct KeysPage {
    l: Layout,
    scopes: Vec<ScopeRow>,
    keys: Vec<KeyRow>,
    created: Option<NewKey>,
    error: Option<String>,
    form_scope: String,
    form_name: String,
}

async fn keys_page(
    state: &AppState,
    admin: &Admin,
    notice: Option<&str>,
    status: StatusCode,
    created: Option<NewKey>,
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
            short: short_id(&k.id.to_string()),
            scope: k.scope.to_string(),
            name: k.name.unwrap_or_default(),
            created: fmt_time(k.created_at),
            revoked: k.revoked_at.map(fmt_time),
            last_used: k.last_used_at.map(fmt_time).unwrap_or_else(|| "never".into()),
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

#[derive(Debug, Deserialize)]
pub(crate) struct KeysQuery {
    notice: Option<String>,
    /// The id of a new key waiting in [`ShownOnce`](crate::admin::ShownOnce).
    shown: Option<String>,
}

pub(crate) async fn keys(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<KeysQuery>,
) -> Result<Response, PageError> {
    let mut notice = q.notice;
    let created = match q.shown.as_deref() {
        Some(id) => {
            let found = state.admin.shown_once.take(&admin.csrf, id).filter(|k| k.kind == SHOWN_KEY);
            if found.is_none() {
                // A reload, a bookmark or another session: say why no key is shown.
                notice = Some("shown".into());
            }
            found
        }
        None => None,
    };
    keys_page(&state, &admin, notice.as_deref(), StatusCode::OK, created, None).await
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

/// Creates a key and redirects to the page that shows its secret once: reloading that
/// page shows nothing again and, above all, makes no second key.
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
    let created = NewKey {
        kind: SHOWN_KEY,
        id: key.id.to_string(),
        scope: scope.to_string(),
        name: name.unwrap_or_default(),
        secret: secret.expose().to_owned(),
    };
    let shown = state.admin.shown_once.put(&admin.csrf, created);
    Ok(see_other(format!("/admin/keys?shown={shown}")))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key_id: String,
    confirm: Option<String>,
}

pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let id = Uuid::parse_str(&form.key_id).map_err(|_| PageError::from(Error::KeyNotFound))?;
    let all = state.service.list_api_keys().await?;
    let key = all.iter().find(|k| k.id == id && k.revoked_at.is_none()).ok_or(Error::KeyNotFound)?;
    let scope = key.scope.clone();
    if !confirmed(&form.confirm) {
        let label = key.name.as_deref().map(|n| format!(" “{n}”")).unwrap_or_default();
        let others = all.iter().filter(|k| k.scope == scope && k.revoked_at.is_none() && k.id != id).count();
        let mut consequences = vec![
            format!(
                "Key {id}{label} of scope {scope}, created {} (UTC), last used {}.",
                fmt_time(key.created_at),
                key.last_used_at.map(|t| format!("{} (UTC)", fmt_time(t))).unwrap_or_else(|| "never".into())
            ),
            "Every request made with it is refused at once. This cannot be undone.".to_owned(),
        ];
        consequences.push(if others == 0 {
            format!(
                "It is the only active key of scope {scope}: applications of {scope} stop working until they get a new key."
            )
        } else {
            format!("Scope {scope} keeps {others} other active key(s).")
        });
        return Ok(confirm_page(
            &admin,
            format!("Revoke API key {}{label}?", short_id(&id.to_string())),
            consequences,
            "/admin/keys/revoke".into(),
            vec![("key_id", id.to_string())],
            "Revoke the key",
            "/admin/keys".into(),
        ));
    }
    state.service.revoke_api_key(id).await?;
    state
        .service
        .audit(&admin.username, "key_revoke", Some(&scope), Some(id.to_string()), JsonObject::new())
        .await?;
    Ok(see_other("/admin/keys?notice=revoked".into()))
}
