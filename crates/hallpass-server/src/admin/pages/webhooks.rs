//! Webhooks: every scope's endpoints with their pending and failed deliveries, creating
//! one (its secret shown once, as a new API key's is), and per endpoint its delivery log
//! (state, attempts, next attempt, last status and error, response time) with a "Retry"
//! for any delivery not delivered, a secret rotation (the new secret shown once) and
//! deletion (both after a confirmation page). Every action is audited (`webhook_create`,
//! `webhook_rotate`, `webhook_delete`, `webhook_retry`). A body is never shown: the log
//! names the event type only.

use super::*;
use hallpass_core::service::{Delivery, WebhookInput};
use hallpass_core::{EventType, OutboxState, WebhookEndpoint};

/// Deliveries per page of an endpoint's log.
const DELIVERIES_PAGE: u32 = 50;

/// What [`ShownOnce`](crate::admin::ShownOnce) holds for a webhook secret.
pub(crate) const SHOWN_WEBHOOK: &str = "webhook";

pub(crate) struct EndpointRow {
    id: String,
    short: String,
    scope: String,
    url: String,
    events: String,
    description: String,
    state: &'static str,
    pending: u64,
    failed: u64,
}

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
pub(crate) struct WebhooksPage {
    l: Layout,
    endpoints: Vec<EndpointRow>,
    event_names: Vec<(&'static str, bool)>,
    error: Option<String>,
    form_scope: String,
    form_url: String,
    form_description: String,
}

pub(crate) struct DeliveryRow {
    id: String,
    short: String,
    created: String,
    event: String,
    state: &'static str,
    attempts: u32,
    next: String,
    status: String,
    error: String,
    response: String,
    retry: bool,
}

#[derive(Template)]
#[template(path = "admin/webhook.html")]
pub(crate) struct WebhookPage {
    l: Layout,
    id: String,
    scope: String,
    url: String,
    events: String,
    description: String,
    created: String,
    previous_until: Option<String>,
    counts: Vec<(&'static str, u64)>,
    secret: Option<String>,
    rows: Vec<DeliveryRow>,
    next: Option<String>,
    /// Whether this is an older page (a link back to the newest is shown).
    paged: bool,
}

/// `pending` (queued or being sent; `in_doubt` is counted too, though webhooks never use it) and
/// `failed` counts per endpoint id.
async fn lane_counts(
    state: &AppState,
) -> Result<std::collections::HashMap<String, OutboxStatsView>, PageError> {
    Ok(state
        .service
        .webhook_stats()
        .await?
        .into_iter()
        .map(|(lane, s)| {
            (lane, OutboxStatsView { pending: s.queued + s.sending + s.in_doubt, failed: s.failed })
        })
        .collect())
}

#[derive(Default, Clone, Copy)]
struct OutboxStatsView {
    pending: u64,
    failed: u64,
}

fn events_text(w: &WebhookEndpoint) -> String {
    w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
}

async fn webhooks_page(
    state: &AppState,
    admin: &Admin,
    notice: Option<&str>,
    status: StatusCode,
    form: Option<(String, &CreateWebhookForm)>,
) -> Result<Response, PageError> {
    let counts = lane_counts(state).await?;
    let mut all = state.service.all_webhooks().await?;
    all.sort_by(|a, b| (a.scope.as_str(), a.created_at).cmp(&(b.scope.as_str(), b.created_at)));
    let endpoints = all
        .iter()
        .map(|w| {
            let c = counts.get(&w.id.to_string()).copied().unwrap_or_default();
            EndpointRow {
                id: w.id.to_string(),
                short: short_id(&w.id.to_string()),
                scope: w.scope.to_string(),
                url: w.url.clone(),
                events: events_text(w),
                description: w.description.clone().unwrap_or_default(),
                state: if c.failed > 0 {
                    "failing"
                } else if c.pending > 0 {
                    "delivering"
                } else {
                    "ok"
                },
                pending: c.pending,
                failed: c.failed,
            }
        })
        .collect();
    let chosen: Vec<String> = form.as_ref().map(|(_, f)| f.events()).unwrap_or_default();
    let page = WebhooksPage {
        l: Layout::new(admin, "Webhooks", "webhooks", notice),
        endpoints,
        event_names: EventType::ALL
            .iter()
            .map(|t| (t.as_str(), chosen.iter().any(|c| c == t.as_str())))
            .collect(),
        error: form.as_ref().map(|(e, _)| e.clone()),
        form_scope: form.as_ref().map(|(_, f)| f.scope.clone()).unwrap_or_default(),
        form_url: form.as_ref().map(|(_, f)| f.url.clone()).unwrap_or_default(),
        form_description: form.as_ref().map(|(_, f)| f.description.clone()).unwrap_or_default(),
    };
    Ok(render(status, &page))
}

pub(crate) async fn webhooks(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    webhooks_page(&state, &admin, q.notice.as_deref(), StatusCode::OK, None).await
}

/// The create form: `events` repeats once per ticked box, so the body is read as pairs.
#[derive(Debug, Default)]
pub(crate) struct CreateWebhookForm {
    csrf: String,
    scope: String,
    url: String,
    description: String,
    events: Vec<String>,
}

impl CreateWebhookForm {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut f = Self::default();
        for (k, v) in pairs {
            match k.as_str() {
                "csrf" => f.csrf = v,
                "scope" => f.scope = v,
                "url" => f.url = v,
                "description" => f.description = v,
                "events" => f.events.push(v),
                _ => {}
            }
        }
        f
    }
    fn events(&self) -> Vec<String> {
        self.events.clone()
    }
}

/// Creates an endpoint and redirects to its page, which shows the secret once.
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    admin: Admin,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let form = CreateWebhookForm::from_pairs(pairs);
    admin.check_csrf(&form.csrf)?;
    let scope = match Scope::parse(form.scope.trim()) {
        Ok(s) => s,
        Err(e) => {
            let error = Some((e.to_string(), &form));
            return webhooks_page(&state, &admin, None, StatusCode::BAD_REQUEST, error).await;
        }
    };
    let description = form.description.trim();
    let input = WebhookInput {
        url: Some(form.url.trim().to_owned()),
        events: Some(form.events()),
        description: Some((!description.is_empty()).then(|| description.to_owned())),
    };
    let (w, secret) = match state.service.create_webhook(&scope, input).await {
        Ok(made) => made,
        Err(Error::Invalid(e)) => {
            let error = Some((e.to_string(), &form));
            return webhooks_page(&state, &admin, None, StatusCode::BAD_REQUEST, error).await;
        }
        Err(e) => return Err(e.into()),
    };
    let detail = json!({"url": w.url, "events": events_text(&w)}).as_object().cloned().unwrap_or_default();
    state
        .service
        .audit(&admin.username, "webhook_create", Some(&scope), Some(w.id.to_string()), detail)
        .await?;
    Ok(see_other(show_secret(&state, &admin, &w, secret)))
}

/// Keeps the secret for the one page that shows it; that page's address.
fn show_secret(state: &AppState, admin: &Admin, w: &WebhookEndpoint, secret: String) -> String {
    let held = NewKey {
        kind: SHOWN_WEBHOOK,
        id: w.id.to_string(),
        scope: w.scope.to_string(),
        name: w.url.clone(),
        secret,
    };
    let shown = state.admin.shown_once.put(&admin.csrf, held);
    format!("{}?shown={shown}", endpoint_href(w))
}

fn endpoint_href(w: &WebhookEndpoint) -> String {
    format!("/admin/webhooks/{}/{}", w.scope, w.id)
}

async fn find_endpoint(state: &AppState, scope: &str, id: &str) -> Result<WebhookEndpoint, PageError> {
    let missing = || PageError::Status(StatusCode::NOT_FOUND, "No such webhook endpoint.".into());
    let scope = Scope::parse(scope).map_err(|_| missing())?;
    let id = Uuid::parse_str(id).map_err(|_| missing())?;
    match state.service.get_webhook(&scope, id).await {
        Ok(w) => Ok(w),
        Err(Error::WebhookNotFound) => Err(missing()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WebhookQuery {
    notice: Option<String>,
    shown: Option<String>,
    #[serde(default)]
    cursor: String,
}

fn delivery_row(d: Delivery) -> DeliveryRow {
    let m = &d.message;
    let retry = m.state != OutboxState::Sent && m.state != OutboxState::Sending;
    DeliveryRow {
        id: m.id.to_string(),
        short: short_id(&m.id.to_string()),
        created: fmt_time(m.created_at),
        event: d.event_type.clone(),
        state: m.state.as_str(),
        attempts: m.attempts,
        next: if m.state == OutboxState::Queued { fmt_time(m.next_attempt_at) } else { String::new() },
        status: d.last_status.map(|s| s.to_string()).unwrap_or_default(),
        error: m.last_error.clone().unwrap_or_default(),
        response: d.last_response_ms.map(|ms| format!("{ms} ms")).unwrap_or_default(),
        retry,
    }
}

pub(crate) async fn webhook(
    State(state): State<AppState>,
    admin: Admin,
    Path((scope, id)): Path<(String, String)>,
    Query(q): Query<WebhookQuery>,
) -> Result<Response, PageError> {
    let w = find_endpoint(&state, &scope, &id).await?;
    let mut notice = q.notice;
    let secret = match q.shown.as_deref() {
        Some(shown) => {
            let found = state
                .admin
                .shown_once
                .take(&admin.csrf, shown)
                .filter(|k| k.kind == SHOWN_WEBHOOK && k.id == id);
            if found.is_none() {
                notice = Some("webhook-shown".into());
            }
            found.map(|k| k.secret)
        }
        None => None,
    };
    let cursor = (!q.cursor.is_empty()).then_some(q.cursor.as_str());
    let log = state.service.webhook_deliveries(&w.scope, w.id, None, Some(DELIVERIES_PAGE), cursor).await?;
    let stats = state.service.webhook_stats().await?;
    let lane = stats.into_iter().find(|(l, _)| *l == w.id.to_string()).map(|(_, s)| s).unwrap_or_default();
    let now = state.service.now();
    let page = WebhookPage {
        l: Layout::new(
            &admin,
            format!("Webhook {}", short_id(&w.id.to_string())),
            "webhooks",
            notice.as_deref(),
        ),
        id: w.id.to_string(),
        scope: w.scope.to_string(),
        url: w.url.clone(),
        events: events_text(&w),
        description: w.description.clone().unwrap_or_default(),
        created: fmt_time(w.created_at),
        previous_until: w.previous_secret.as_ref().and(w.previous_until).filter(|u| *u > now).map(fmt_time),
        // No delivery is ever `in_doubt` (a lost answer is retried): not shown.
        counts: OutboxState::ALL
            .iter()
            .filter(|s| **s != OutboxState::InDoubt)
            .map(|s| (s.as_str(), lane.count(*s)))
            .collect(),
        secret,
        rows: log.items.into_iter().map(delivery_row).collect(),
        next: log.next_cursor.map(|c| format!("{}?cursor={c}", endpoint_href(&w))),
        paged: cursor.is_some(),
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeliveryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    delivery: String,
}

/// Sends an undelivered delivery again now.
pub(crate) async fn retry_delivery(
    State(state): State<AppState>,
    admin: Admin,
    Path((scope, id)): Path<(String, String)>,
    Form(form): Form<DeliveryForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let w = find_endpoint(&state, &scope, &id).await?;
    let missing = || PageError::Status(StatusCode::NOT_FOUND, "No such delivery.".into());
    let delivery = Uuid::parse_str(&form.delivery).map_err(|_| missing())?;
    match state.service.retry_webhook_delivery(&w.scope, w.id, delivery).await {
        Ok(_) => {}
        Err(Error::DeliveryNotFound) => return Err(missing()),
        Err(e) => return Err(e.into()),
    }
    let detail = json!({"delivery": delivery.to_string()}).as_object().cloned().unwrap_or_default();
    state
        .service
        .audit(&admin.username, "webhook_retry", Some(&w.scope), Some(w.id.to_string()), detail)
        .await?;
    Ok(see_other(format!("{}?notice=webhook-retried", endpoint_href(&w))))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    confirm: Option<String>,
}

/// A new secret (shown once on the endpoint's page); the old one keeps signing for the
/// configured overlap. Asks first.
pub(crate) async fn rotate_webhook(
    State(state): State<AppState>,
    admin: Admin,
    Path((scope, id)): Path<(String, String)>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let w = find_endpoint(&state, &scope, &id).await?;
    if !confirmed(&form.confirm) {
        return Ok(confirm_page(
            &admin,
            format!("Rotate the secret of webhook {}?", short_id(&w.id.to_string())),
            vec![
                format!("Endpoint {} of scope {} ({}).", w.id, w.scope, w.url),
                "A new secret signs every delivery from now on; it is shown once, on the next page.".into(),
                "The current secret keeps signing too for a while, so the receiver can switch over.".into(),
            ],
            format!("{}/rotate", endpoint_href(&w)),
            vec![],
            "Rotate the secret",
            endpoint_href(&w),
        ));
    }
    let (w, secret) = state.service.rotate_webhook_secret(&w.scope, w.id).await?;
    state
        .service
        .audit(&admin.username, "webhook_rotate", Some(&w.scope), Some(w.id.to_string()), JsonObject::new())
        .await?;
    Ok(see_other(show_secret(&state, &admin, &w, secret)))
}

/// Deletes the endpoint and its delivery log. Asks first.
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    admin: Admin,
    Path((scope, id)): Path<(String, String)>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let w = find_endpoint(&state, &scope, &id).await?;
    if !confirmed(&form.confirm) {
        return Ok(confirm_page(
            &admin,
            format!("Delete webhook {}?", short_id(&w.id.to_string())),
            vec![
                format!("Endpoint {} of scope {} ({}), receiving {}.", w.id, w.scope, w.url, events_text(&w)),
                "No event is sent to it any more, and its deliveries, also those not yet delivered, are deleted. This cannot be undone.".into(),
            ],
            format!("{}/delete", endpoint_href(&w)),
            vec![],
            "Delete the endpoint",
            endpoint_href(&w),
        ));
    }
    state.service.delete_webhook(&w.scope, w.id).await?;
    let detail = json!({"url": w.url}).as_object().cloned().unwrap_or_default();
    state
        .service
        .audit(&admin.username, "webhook_delete", Some(&w.scope), Some(w.id.to_string()), detail)
        .await?;
    Ok(see_other("/admin/webhooks?notice=webhook-deleted".into()))
}
