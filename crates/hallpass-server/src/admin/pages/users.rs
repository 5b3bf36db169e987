//! The user list: search, filters and paging.

use super::*;

pub(crate) struct UserRow {
    href: String,
    scope: String,
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

/// A page of users across every scope, in scope order: the cursor names the scope to go
/// on in and that scope's own cursor (`scope~cursor`, the scope's part empty to start it).
pub(crate) async fn users(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<UsersQuery>,
) -> Result<Response, PageError> {
    let svc = &state.service;
    let scopes: Vec<String> = svc.scope_figures().await?.into_iter().map(|f| f.scope.to_string()).collect();
    // Empty: every scope. A scope that is no scope's name is a 404, not a page headed with
    // a name the selector does not show.
    let scope_name = q.scope.unwrap_or_default();
    if !scope_name.is_empty() {
        scope_of(&scope_name)?;
        if !scopes.contains(&scope_name) {
            return Err(PageError::Status(
                StatusCode::NOT_FOUND,
                format!("There is no scope named “{scope_name}”: no user or API key has it."),
            ));
        }
    }
    let searched_scopes: Vec<&String> =
        if scope_name.is_empty() { scopes.iter().collect() } else { vec![&scope_name] };
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
    let bad_cursor =
        || PageError::Status(StatusCode::BAD_REQUEST, "That page link is not one this server made.".into());
    let (mut at, mut inner) = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => (0, None),
        Some(c) => {
            let (s, rest) = c.split_once('~').ok_or_else(bad_cursor)?;
            let i = searched_scopes.iter().position(|x| x.as_str() == s).ok_or_else(bad_cursor)?;
            (i, (!rest.is_empty()).then(|| rest.to_owned()))
        }
    };
    let mut found: Vec<User> = Vec::new();
    let mut next_cursor = None;
    while at < searched_scopes.len() {
        let scope = scope_of(searched_scopes[at])?;
        let want = USERS_PAGE - found.len() as u32;
        let page = svc.list_users(&scope, &filter, Some(want), inner.as_deref()).await?;
        found.extend(page.items);
        if let Some(c) = page.next_cursor {
            next_cursor = Some(format!("{}~{c}", searched_scopes[at]));
            break;
        }
        at += 1;
        inner = None;
        if found.len() as u32 == USERS_PAGE {
            next_cursor = searched_scopes.get(at).map(|s| format!("{s}~"));
            break;
        }
    }
    let next = next_cursor.map(|c| {
        format!(
            "/admin/users?scope={}&q={}&group={}&active={}&cursor={}",
            enc(&scope_name),
            enc(&text),
            enc(&group),
            enc(&active),
            enc(&c)
        )
    });
    let users = found
        .iter()
        .map(|u| UserRow {
            href: user_href(u),
            scope: u.scope.to_string(),
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
