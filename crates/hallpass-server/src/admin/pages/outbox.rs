//! The outbox: mail waiting, sent, failed or in doubt, with its attempts and last error,
//! newest first; never a code (the page reads the recipient and kind from the payload and
//! nothing else). A mail in doubt (handed to the SMTP server, its answer lost) may be put
//! back in the queue by an admin, audited as `outbox_retry`.

use super::*;
use hallpass_core::outbox::MailPayload;
use hallpass_core::{OutboxMessage, OutboxState};

pub(crate) struct OutboxRow {
    id: String,
    created: String,
    scope: String,
    kind: String,
    to: String,
    state: &'static str,
    in_doubt: bool,
    attempts: u32,
    next: String,
    error: String,
}

#[derive(Template)]
#[template(path = "admin/outbox.html")]
pub(crate) struct OutboxPage {
    l: Layout,
    mail_enabled: bool,
    counts: Vec<(&'static str, u64)>,
    oldest: Option<String>,
    rows: Vec<OutboxRow>,
    next: Option<String>,
}

/// Rows per page.
const OUTBOX_PAGE: u32 = 50;

#[derive(Debug, Deserialize)]
pub(crate) struct OutboxQuery {
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    notice: String,
}

fn row(m: &OutboxMessage) -> OutboxRow {
    let p: Option<MailPayload> = serde_json::from_value(m.payload.clone()).ok();
    OutboxRow {
        id: m.id.to_string(),
        created: fmt_time(m.created_at),
        scope: m.scope.to_string(),
        kind: p.as_ref().map_or_else(|| m.kind.as_str().to_owned(), |p| p.mail.as_str().to_owned()),
        to: p.map(|p| p.to).unwrap_or_default(),
        state: m.state.as_str(),
        in_doubt: m.state == OutboxState::InDoubt,
        attempts: m.attempts,
        next: if m.state == OutboxState::Queued { fmt_time(m.next_attempt_at) } else { String::new() },
        error: m.last_error.clone().unwrap_or_default(),
    }
}

pub(crate) async fn outbox(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<OutboxQuery>,
) -> Result<Response, PageError> {
    let svc = &state.service;
    let before = if q.cursor.is_empty() {
        None
    } else {
        Some(
            Uuid::parse_str(&q.cursor)
                .map_err(|_| PageError::from(Error::invalid("cursor", "is not a cursor")))?,
        )
    };
    let stats = svc.outbox_stats().await?;
    let mut items = svc.outbox_list(before, OUTBOX_PAGE + 1).await?;
    let next = (items.len() > OUTBOX_PAGE as usize).then(|| {
        items.truncate(OUTBOX_PAGE as usize);
        format!("/admin/outbox?cursor={}", items.last().map(|m| m.id.to_string()).unwrap_or_default())
    });
    let notice = (q.notice == "retried").then_some("retried");
    let page = OutboxPage {
        l: Layout::new(&admin, "Outbox", "outbox", notice),
        mail_enabled: svc.mail_enabled(),
        counts: OutboxState::ALL.iter().map(|s| (s.as_str(), stats.count(*s))).collect(),
        oldest: stats.oldest_pending_at.map(fmt_time),
        rows: items.iter().map(row).collect(),
        next,
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RetryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

/// Puts a mail in doubt back in the queue.
pub(crate) async fn retry_outbox(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<RetryForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let id = Uuid::parse_str(&form.id)
        .map_err(|_| PageError::Status(StatusCode::NOT_FOUND, "No such mail.".into()))?;
    if !state.service.outbox_retry(id).await? {
        return Err(PageError::Status(StatusCode::NOT_FOUND, "No mail in doubt with that id.".into()));
    }
    state
        .service
        .audit(&admin.username, "outbox_retry", None, Some(id.to_string()), JsonObject::new())
        .await?;
    Ok(see_other("/admin/outbox?notice=retried".into()))
}
