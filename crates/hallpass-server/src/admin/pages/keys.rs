//! Scopes and API keys: the list, creating a key (its secret shown once) and revoking one.

use super::*;

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
