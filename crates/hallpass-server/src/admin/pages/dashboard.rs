//! The dashboard: the figures of every scope and the 30-day login chart.

use super::*;

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
        Some(s) => {
            let scope = scope_of(s)?;
            if !figures.iter().any(|f| f.scope == scope) {
                return Err(PageError::Status(
                    StatusCode::NOT_FOUND,
                    format!("There is no scope named “{s}”."),
                ));
            }
            vec![scope]
        }
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
                    .map(|(k, v)| format!("{}: {v}", outcome_words(k)))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect(),
        rows,
    };
    Ok(render(StatusCode::OK, &page))
}
