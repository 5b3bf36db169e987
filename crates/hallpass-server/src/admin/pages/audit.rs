//! The audit trail of admin actions and the recent admin sign-ins.

use super::*;

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
