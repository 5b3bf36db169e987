//! The user list: search, filters and paging.

use super::*;

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
