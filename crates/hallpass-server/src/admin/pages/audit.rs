//! The audit trail of admin actions, told in words and filtered, and the recent admin
//! sign-ins.

use super::*;
use hallpass_core::AuditEntry;
use std::collections::HashMap;

/// One entry as a sentence: "{admin} {verb} {target}{tail}", the target linked when it
/// still exists.
pub(crate) struct AuditRow {
    at: String,
    admin: String,
    verb: String,
    target: String,
    href: Option<String>,
    tail: String,
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
    first: Option<String>,
    sign_ins: Vec<SignInRow>,
    admins: Vec<String>,
    scopes: Vec<String>,
    actions: Vec<(&'static str, &'static str)>,
    q: AuditQuery,
    filtered: bool,
    scanned_out: bool,
}

/// Entries shown per page.
const AUDIT_PAGE: usize = 50;
/// Entries read per request at most while filtering (in batches of [`AUDIT_BATCH`]): the
/// store lists the trail newest first only, so a filter is applied here; a rare match far
/// back is reached by "Older entries" rather than by one unbounded read.
const AUDIT_SCAN: usize = 5000;
const AUDIT_BATCH: u32 = 500;

/// The actions the page writes, with the words of the action filter.
const ACTIONS: &[(&str, &str)] = &[
    ("user_update", "changed a user"),
    ("user_activate", "activated a user"),
    ("user_deactivate", "deactivated a user"),
    ("user_set_password", "set a password"),
    ("session_end", "ended a session"),
    ("sessions_end_all", "ended every session"),
    ("mfa_remove", "removed second factors"),
    ("key_create", "created an API key"),
    ("key_revoke", "revoked an API key"),
    ("outbox_retry", "queued a mail again"),
    ("admin_totp_enrol", "turned on their authenticator app"),
    ("admin_recovery_codes", "made new recovery codes"),
    ("admin_passkey_add", "added a passkey"),
    ("admin_passkey_remove", "removed a passkey"),
    ("admin_mfa_remove", "removed their second factors"),
    ("webhook_create", "added a webhook endpoint"),
    ("webhook_rotate", "rotated a webhook secret"),
    ("webhook_delete", "deleted a webhook endpoint"),
    ("webhook_retry", "sent a webhook delivery again"),
    ("admin_login", "signed in"),
    ("admin_logout", "signed out"),
];

/// Sign-ins and sign-outs: routine, so left out of the trail unless asked for.
fn is_sign_in(action: &str) -> bool {
    matches!(action, "admin_login" | "admin_logout")
}

/// Sign-in attempts of this page's admins shown on the audit page.
const SIGN_INS: usize = 20;

/// The latest sign-in attempts of every admin (login events of the `_admin` scope),
/// newest first. Attempts for names that are no admin are not listed (what was typed
/// may be a password); throttling counts them.
async fn admin_sign_ins(state: &AppState, admins: &[User]) -> Result<Vec<SignInRow>, PageError> {
    let svc = &state.service;
    let admin = Scope::admin();
    let mut events = Vec::new();
    for a in admins {
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
            outcome: outcome_words(e.outcome.as_str()).to_owned(),
            success: e.outcome == hallpass_core::Outcome::Success,
            ip: e.ip.unwrap_or_default(),
            user_agent: e.user_agent.unwrap_or_default(),
        })
        .collect())
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    admin: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    scope: String,
    /// First day shown (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    from: String,
    /// Last day shown.
    #[serde(default)]
    to: String,
    /// `on`: sign-ins and sign-outs too.
    #[serde(default)]
    signins: String,
}

impl AuditQuery {
    /// The query string of these filters (no cursor).
    fn filters(&self) -> String {
        format!(
            "admin={}&action={}&scope={}&from={}&to={}&signins={}",
            enc(&self.admin),
            enc(&self.action),
            enc(&self.scope),
            enc(&self.from),
            enc(&self.to),
            enc(&self.signins)
        )
    }
}

fn parse_day(s: &str) -> Result<Option<OffsetDateTime>, PageError> {
    if s.is_empty() {
        return Ok(None);
    }
    time::Date::parse(s, format_description!("[year]-[month]-[day]"))
        .map(|d| Some(d.midnight().assume_utc()))
        .map_err(|_| {
            PageError::Status(StatusCode::BAD_REQUEST, format!("“{s}” is not a day such as 2026-01-31."))
        })
}

/// What the sentences need to name targets: users looked up once per page, keys once.
struct Names<'a> {
    state: &'a AppState,
    users: HashMap<(String, String), Option<String>>,
    keys: HashMap<String, (String, Option<String>)>,
}

impl Names<'_> {
    /// The user's name, `None` when the user is gone.
    async fn user(&mut self, scope: &str, id: &str) -> Option<String> {
        let k = (scope.to_owned(), id.to_owned());
        if let Some(found) = self.users.get(&k) {
            return found.clone();
        }
        let found = match (Scope::parse(scope), Uuid::parse_str(id)) {
            (Ok(s), Ok(id)) => self.state.service.get_user(&s, &UserRef::Id(id)).await.ok().map(|u| {
                u.username
                    .map(|x| x.as_str().to_owned())
                    .or_else(|| u.email.map(|x| x.as_str().to_owned()))
                    .unwrap_or_else(|| short_id(&id.to_string()))
            }),
            _ => None,
        };
        self.users.insert(k, found.clone());
        found
    }
}

/// `1 session`, `2 sessions`.
fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

async fn sentence(e: AuditEntry, names: &mut Names<'_>) -> AuditRow {
    let scope = e.scope.as_ref().map(|s| s.to_string()).unwrap_or_default();
    let target_id = e.target.clone().unwrap_or_default();
    let mut row = AuditRow {
        at: fmt_time(e.at),
        admin: e.admin.clone(),
        verb: String::new(),
        target: String::new(),
        href: None,
        tail: String::new(),
    };
    let in_scope = if scope.is_empty() { String::new() } else { format!(" ({scope})") };
    match e.action.as_str() {
        "admin_login" => {
            // How: `pwd`, `pwd otp`, `passkey`... from the session's methods.
            let amr: Vec<&str> = e
                .detail
                .get("amr")
                .and_then(|a| a.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            row.verb = match amr.as_slice() {
                ["passkey"] => "signed in with a passkey".into(),
                [_, "otp"] => "signed in with an authenticator code".into(),
                [_, "recovery"] => "signed in with a recovery code".into(),
                [_, "passkey"] => "signed in with password and passkey".into(),
                _ => "signed in".into(),
            };
        }
        "admin_totp_enrol" => row.verb = "turned on their authenticator app".into(),
        "admin_recovery_codes" => row.verb = "made new recovery codes".into(),
        "admin_mfa_remove" => {
            row.verb = match e.detail.get("admin").and_then(|a| a.as_str()) {
                Some(whom) => format!("removed the second factors of admin {whom}"),
                None => "removed their second factors".into(),
            }
        }
        "admin_passkey_add" | "admin_passkey_remove" => {
            row.verb =
                if e.action == "admin_passkey_add" { "added passkey" } else { "removed passkey" }.into();
            row.tail =
                e.detail.get("name").and_then(|n| n.as_str()).map(|n| format!(" “{n}”")).unwrap_or_default();
        }
        "admin_logout" => row.verb = "signed out".into(),
        "outbox_retry" => {
            row.verb = "queued again the mail in doubt".into();
            row.target = short_id(&target_id);
            row.href = Some("/admin/outbox".into());
        }
        "webhook_create" | "webhook_rotate" | "webhook_delete" | "webhook_retry" => {
            row.verb = match e.action.as_str() {
                "webhook_create" => "added webhook endpoint",
                "webhook_rotate" => "rotated the secret of webhook endpoint",
                "webhook_delete" => "deleted webhook endpoint",
                _ => "sent again a delivery of webhook endpoint",
            }
            .into();
            row.target = short_id(&target_id);
            if e.action != "webhook_delete" && !scope.is_empty() {
                row.href = Some(format!("/admin/webhooks/{scope}/{target_id}"));
            }
            if let Some(url) = e.detail.get("url").and_then(|u| u.as_str()) {
                row.tail = format!(" ({url})");
            }
            row.tail.push_str(&in_scope);
        }
        "key_create" | "key_revoke" => {
            row.verb = if e.action == "key_create" { "created API key" } else { "revoked API key" }.into();
            row.target = short_id(&target_id);
            let (_, name) = names.keys.get(&target_id).cloned().unwrap_or_default();
            let name = name.or_else(|| e.detail.get("name").and_then(|n| n.as_str()).map(str::to_owned));
            if names.keys.contains_key(&target_id) {
                row.href = Some(format!("/admin/keys#key-{target_id}"));
            }
            row.tail = match name {
                Some(n) => format!(
                    " “{n}”{}",
                    if scope.is_empty() { String::new() } else { format!(" of scope {scope}") }
                ),
                None => {
                    if scope.is_empty() {
                        String::new()
                    } else {
                        format!(" of scope {scope}")
                    }
                }
            };
        }
        action => {
            let changed: Vec<String> = e
                .detail
                .get("changed")
                .and_then(|c| c.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            row.verb = match action {
                "user_update" if changed.is_empty() => "changed".into(),
                "user_update" => format!("changed the {} of", changed.join(" and ")),
                "user_activate" => "activated".into(),
                "user_deactivate" => "deactivated".into(),
                "user_set_password" => "set the password of".into(),
                "session_end" => "ended a session of".into(),
                "mfa_remove" => "removed the second factors of".into(),
                "sessions_end_all" => {
                    let n = e.detail.get("ended").and_then(|n| n.as_u64()).unwrap_or(0);
                    format!("ended {} of", count(n, "session", "sessions"))
                }
                other => other.to_owned(),
            };
            if !target_id.is_empty() {
                match names.user(&scope, &target_id).await {
                    Some(name) => {
                        row.target = name;
                        row.href = Some(format!("/admin/users/{scope}/{target_id}"));
                    }
                    None => row.target = format!("a deleted user {}", short_id(&target_id)),
                }
            }
            row.tail = in_scope;
            if !ACTIONS.iter().any(|(a, _)| *a == action) && !e.detail.is_empty() {
                row.tail.push_str(&format!(" {}", serde_json::Value::Object(e.detail)));
            }
        }
    }
    row
}

pub(crate) async fn audit(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let svc = &state.service;
    let from = parse_day(&q.from)?;
    let until = parse_day(&q.to)?.map(|d| d + time::Duration::days(1));
    if !q.scope.is_empty() {
        scope_of(&q.scope)?;
    }
    let sign_ins_too = q.signins == "on" || is_sign_in(&q.action);
    let keep = |e: &AuditEntry| {
        (q.admin.is_empty() || e.admin == q.admin)
            && (q.action.is_empty() || e.action == q.action)
            && (q.scope.is_empty() || e.scope.as_ref().is_some_and(|s| s.as_str() == q.scope))
            && (sign_ins_too || !is_sign_in(&e.action))
            && until.is_none_or(|u| e.at < u)
    };
    // Newest first, batch by batch, until a page is full, the trail ends, the day range is
    // passed, or the scan limit is reached.
    let mut found: Vec<AuditEntry> = Vec::new();
    let mut cursor = (!q.cursor.is_empty()).then(|| q.cursor.clone());
    let mut scanned = 0usize;
    let mut next: Option<String> = None;
    let mut scanned_out = false;
    'scan: loop {
        let page = svc.list_audit(Some(AUDIT_BATCH), cursor.as_deref()).await?;
        let more = page.next_cursor.is_some();
        for e in page.items {
            scanned += 1;
            let id = e.id.to_string();
            if from.is_some_and(|f| e.at < f) {
                break 'scan;
            }
            if keep(&e) {
                found.push(e);
                if found.len() == AUDIT_PAGE {
                    next = Some(id);
                    break 'scan;
                }
            }
            cursor = Some(id);
        }
        if !more {
            break;
        }
        if scanned >= AUDIT_SCAN {
            scanned_out = true;
            next = cursor.clone();
            break;
        }
    }
    // When the page filled on the trail's very last entry, "Older entries" would show an
    // empty page; it costs one read to know.
    if let Some(c) = &next
        && !scanned_out
        && svc.list_audit(Some(1), Some(c)).await?.items.is_empty()
    {
        next = None;
    }
    let keys: HashMap<String, (String, Option<String>)> = svc
        .list_api_keys()
        .await?
        .into_iter()
        .map(|k| (k.id.to_string(), (k.scope.to_string(), k.name)))
        .collect();
    let mut names = Names { state: &state, users: HashMap::new(), keys };
    let mut entries = Vec::with_capacity(found.len());
    for e in found {
        entries.push(sentence(e, &mut names).await);
    }
    let filters = q.filters();
    let next = next.map(|c| format!("/admin/audit?{filters}&cursor={}", enc(&c)));
    let first = (!q.cursor.is_empty()).then(|| format!("/admin/audit?{filters}"));
    let admin_users = svc.list_users(&Scope::admin(), &UserFilter::default(), Some(100), None).await?.items;
    let sign_ins = admin_sign_ins(&state, &admin_users).await?;
    let admins =
        admin_users.iter().filter_map(|u| u.username.as_ref().map(|n| n.as_str().to_owned())).collect();
    let scopes = svc.scope_figures().await?.into_iter().map(|f| f.scope.to_string()).collect();
    let filtered = !(q.admin.is_empty()
        && q.action.is_empty()
        && q.scope.is_empty()
        && q.from.is_empty()
        && q.to.is_empty());
    let l = Layout::new(&admin, "Audit trail", "audit", None);
    let page = AuditPage {
        l,
        entries,
        next,
        first,
        sign_ins,
        admins,
        scopes,
        actions: ACTIONS.to_vec(),
        q,
        filtered,
        scanned_out,
    };
    Ok(render(StatusCode::OK, &page))
}
