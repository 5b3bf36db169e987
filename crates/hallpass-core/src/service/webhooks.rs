//! Webhooks: managing a scope's endpoints (create, list, change, delete, rotate the
//! secret), their delivery log and manual retries, and the deliveries an event makes
//! ([`Hallpass::webhook_rows`]), which every operation hands its store call so they
//! commit with the change (see [`crate::webhook`]).
//!
//! Which endpoints want which events is read from a directory this process keeps: loaded
//! from the store at most once a [`DIRECTORY_TTL`], and dropped at once when this process
//! changes an endpoint. A scope without endpoints costs an event a read lock and a map
//! lookup. An endpoint made by another process starts receiving within the TTL.

use super::{Hallpass, page_limit, parse_cursor};
use crate::error::{Error, Result};
use crate::model::Page;
use crate::outbox::{OutboxKind, OutboxMessage, OutboxState};
use crate::types::Scope;
use crate::webhook::{self, Event, EventType, WebhookEndpoint};
use std::collections::HashMap;
use std::time::Instant;
use uuid::Uuid;

/// How long this process trusts its copy of the endpoint list.
pub const DIRECTORY_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Each scope's endpoints and the events each wants.
type Subscriptions = HashMap<Scope, Vec<(Uuid, Vec<EventType>)>>;

/// Which endpoints of each scope want which events, and when that was read.
#[derive(Debug, Default)]
pub(super) struct Directory {
    loaded: Option<(Instant, Subscriptions)>,
}

/// What a create or a change of an endpoint gives.
#[derive(Debug, Clone, Default)]
pub struct WebhookInput {
    /// Where deliveries go: `http` or `https`.
    pub url: Option<String>,
    /// The events it receives (names of the contract; at least one).
    pub events: Option<Vec<String>>,
    /// A note; `Some(None)` removes it.
    pub description: Option<Option<String>>,
}

/// One delivery, as the delivery log shows it (never a secret: the body holds none).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The delivery row: its id is the `webhook-id`.
    pub message: OutboxMessage,
    /// The event's type.
    pub event_type: String,
    /// The HTTP status of the latest attempt, when one was answered.
    pub last_status: Option<u16>,
    /// How long the latest attempt took, in milliseconds.
    pub last_response_ms: Option<u64>,
}

fn parse_events(names: &[String]) -> Result<Vec<EventType>> {
    if names.is_empty() {
        return Err(Error::invalid("events", "name at least one event"));
    }
    let mut out = Vec::new();
    for n in names {
        let t =
            EventType::parse(n).ok_or_else(|| Error::invalid("events", format!("unknown event {n:?}")))?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out.sort();
    Ok(out)
}

/// Checks an endpoint URL: `http` or `https`, a host, at most 2000 characters, no
/// credentials. Answers it normalised.
pub fn check_url(url: &str) -> Result<String> {
    let bad = |why: &str| Error::invalid("url", why.to_owned());
    if url.len() > 2000 {
        return Err(bad("must be at most 2000 characters"));
    }
    let parsed = url::Url::parse(url).map_err(|_| bad("is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("must be http or https"));
    }
    if parsed.host().is_none() {
        return Err(bad("must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    Ok(parsed.to_string())
}

fn check_description(d: Option<String>) -> Result<Option<String>> {
    match d {
        Some(d) if d.chars().count() > 500 || d.contains('\0') => {
            Err(Error::invalid("description", "must be at most 500 characters without NUL"))
        }
        Some(d) if d.is_empty() => Ok(None),
        d => Ok(d),
    }
}

impl Hallpass {
    fn webhook_key(&self) -> Result<&crate::server_secret::ServerSecret> {
        self.server_secret.as_ref().ok_or(Error::SecretKeyNotConfigured)
    }

    /// Forgets this process's copy of the endpoint list.
    fn webhooks_changed(&self) {
        if let Ok(mut d) = self.webhooks.write() {
            d.loaded = None;
        }
    }

    /// The delivery rows of `event` in `scope`: one per endpoint of the scope that wants
    /// its type (none, and no store call, when the scope has none). Hand them to the store
    /// call that makes the change.
    pub(super) async fn webhook_rows(&self, scope: &Scope, event: Event) -> Vec<OutboxMessage> {
        let fresh =
            |d: &Directory| d.loaded.as_ref().filter(|(at, _)| at.elapsed() < DIRECTORY_TTL).is_some();
        let targets = |d: &Directory| -> Vec<Uuid> {
            d.loaded
                .as_ref()
                .and_then(|(_, m)| m.get(scope))
                .map(|eps| {
                    eps.iter().filter(|(_, evs)| evs.contains(&event.event_type)).map(|(id, _)| *id).collect()
                })
                .unwrap_or_default()
        };
        let cached = self.webhooks.read().ok().and_then(|d| fresh(&d).then(|| targets(&d)));
        let ids = match cached {
            Some(ids) => ids,
            None => match self.store.list_webhooks(None).await {
                Ok(all) => {
                    let mut map: Subscriptions = HashMap::new();
                    for w in all {
                        map.entry(w.scope).or_default().push((w.id, w.events));
                    }
                    let mut d = self.webhooks.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                    d.loaded = Some((Instant::now(), map));
                    targets(&d)
                }
                Err(e) => {
                    // The change goes on; its events would be lost with a stale list too.
                    tracing::warn!(error = %e, "could not read the webhook endpoints; the event is not delivered");
                    Vec::new()
                }
            },
        };
        if ids.is_empty() {
            return Vec::new();
        }
        let body = event.body(scope);
        ids.into_iter().map(|id| event.delivery(scope, id, &body)).collect()
    }

    /// Tells the webhook worker that deliveries were queued (when there are any).
    pub(super) fn webhooks_queued(&self, rows: &[OutboxMessage]) {
        if !rows.is_empty() {
            self.webhook_signal.notify_one();
        }
    }

    /// What the webhook worker waits on besides its timer.
    pub fn webhook_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.webhook_signal.clone()
    }

    /// A new endpoint; answers it with its secret in clear (shown once). Needs the
    /// server secret ([`Error::SecretKeyNotConfigured`]).
    pub async fn create_webhook(
        &self,
        scope: &Scope,
        input: WebhookInput,
    ) -> Result<(WebhookEndpoint, String)> {
        let key = self.webhook_key()?;
        let url = check_url(input.url.as_deref().ok_or_else(|| Error::invalid("url", "is required"))?)?;
        let events =
            parse_events(input.events.as_deref().ok_or_else(|| Error::invalid("events", "are required"))?)?;
        let description = check_description(input.description.flatten())?;
        let now = self.now();
        let id = Uuid::now_v7();
        let secret = webhook::new_secret();
        let endpoint = WebhookEndpoint {
            id,
            scope: scope.clone(),
            url,
            events,
            description,
            secret: key.seal_text(&webhook::secret_aad(scope, id), &secret),
            previous_secret: None,
            previous_until: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_webhook(&endpoint).await?;
        self.webhooks_changed();
        Ok((endpoint, secret))
    }

    /// The scope's endpoints, oldest first.
    pub async fn list_webhooks(&self, scope: &Scope) -> Result<Vec<WebhookEndpoint>> {
        Ok(self.store.list_webhooks(Some(scope)).await?)
    }

    /// Deliveries per endpoint (the lane is the endpoint's id) and state, with each
    /// endpoint's oldest undelivered one (`/metrics`).
    pub async fn webhook_stats(&self) -> Result<Vec<(String, crate::outbox::OutboxStats)>> {
        Ok(self.store.outbox_lane_stats(OutboxKind::Webhook).await?)
    }

    /// Every scope's endpoints (the admin page, the worker, metrics).
    pub async fn all_webhooks(&self) -> Result<Vec<WebhookEndpoint>> {
        Ok(self.store.list_webhooks(None).await?)
    }

    /// One endpoint of the scope.
    pub async fn get_webhook(&self, scope: &Scope, id: Uuid) -> Result<WebhookEndpoint> {
        let all = self.store.list_webhooks(Some(scope)).await?;
        all.into_iter().find(|w| w.id == id).ok_or(Error::WebhookNotFound)
    }

    /// Changes an endpoint's URL, events or description.
    pub async fn update_webhook(
        &self,
        scope: &Scope,
        id: Uuid,
        input: WebhookInput,
    ) -> Result<WebhookEndpoint> {
        let mut w = self.get_webhook(scope, id).await?;
        if let Some(url) = input.url {
            w.url = check_url(&url)?;
        }
        if let Some(events) = input.events {
            w.events = parse_events(&events)?;
        }
        if let Some(d) = input.description {
            w.description = check_description(d)?;
        }
        w.updated_at = self.now();
        if !self.store.update_webhook(&w).await? {
            return Err(Error::WebhookNotFound);
        }
        self.webhooks_changed();
        Ok(w)
    }

    /// Deletes an endpoint and its deliveries.
    pub async fn delete_webhook(&self, scope: &Scope, id: Uuid) -> Result<()> {
        let deleted = self.store.delete_webhook(scope, id).await?;
        self.webhooks_changed();
        if deleted { Ok(()) } else { Err(Error::WebhookNotFound) }
    }

    /// A new secret for the endpoint (answered in clear, once). The previous one keeps
    /// signing for the configured overlap (`webhook_secret_overlap`); a secret older than
    /// that is dropped.
    pub async fn rotate_webhook_secret(&self, scope: &Scope, id: Uuid) -> Result<(WebhookEndpoint, String)> {
        let key = self.webhook_key()?;
        let mut w = self.get_webhook(scope, id).await?;
        let now = self.now();
        let secret = webhook::new_secret();
        w.previous_secret =
            Some(std::mem::replace(&mut w.secret, key.seal_text(&webhook::secret_aad(scope, id), &secret)));
        w.previous_until = Some(now + self.settings.webhook_secret_overlap);
        w.updated_at = now;
        if !self.store.update_webhook(&w).await? {
            return Err(Error::WebhookNotFound);
        }
        Ok((w, secret))
    }

    /// The secrets that sign deliveries to `w` now, newest first, in clear (for the
    /// worker). A secret that does not open is left out (logged).
    pub fn webhook_signing_secrets(&self, w: &WebhookEndpoint) -> Vec<String> {
        let Some(key) = self.server_secret.as_ref() else { return Vec::new() };
        let aad = webhook::secret_aad(&w.scope, w.id);
        let now = self.now();
        let mut out = Vec::new();
        let previous = w.previous_secret.as_ref().filter(|_| w.previous_until.is_some_and(|u| u > now));
        for sealed in std::iter::once(&w.secret).chain(previous) {
            match key.open_text(&aad, sealed) {
                Ok(s) => out.push(s),
                Err(e) => {
                    tracing::warn!(endpoint = %w.id, error = ?e, "a webhook secret does not open with the server key")
                }
            }
        }
        out
    }

    /// The endpoint's deliveries, newest first, in `state` when given.
    pub async fn webhook_deliveries(
        &self,
        scope: &Scope,
        id: Uuid,
        state: Option<OutboxState>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<Delivery>> {
        self.get_webhook(scope, id).await?;
        let limit = page_limit(limit)?;
        let before = parse_cursor(cursor)?;
        let mut rows =
            self.store.outbox_lane(OutboxKind::Webhook, &id.to_string(), state, before, limit + 1).await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|m| m.id.to_string())
        } else {
            None
        };
        let items = rows.into_iter().map(delivery).collect();
        Ok(Page { items, next_cursor })
    }

    /// Sends a delivery that is not delivered (waiting, failed, or in doubt) again now,
    /// with its attempts counted from zero.
    pub async fn retry_webhook_delivery(
        &self,
        scope: &Scope,
        id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Delivery> {
        self.get_webhook(scope, id).await?;
        let lane = id.to_string();
        let find = || async {
            let rows = self
                .store
                .outbox_lane(OutboxKind::Webhook, &lane, None, Some(next_id(delivery_id)), 1)
                .await?;
            Ok::<_, Error>(rows.into_iter().find(|m| m.id == delivery_id))
        };
        let Some(row) = find().await? else { return Err(Error::DeliveryNotFound) };
        if row.state == OutboxState::Sent {
            return Err(Error::invalid("delivery", "was delivered already"));
        }
        if row.state == OutboxState::Sending {
            return Err(Error::invalid("delivery", "is being sent now"));
        }
        if !self.store.outbox_retry(delivery_id, self.now()).await? {
            return Err(Error::invalid("delivery", "is being sent now"));
        }
        self.webhook_signal.notify_one();
        let row = find().await?.ok_or(Error::DeliveryNotFound)?;
        Ok(delivery(row))
    }
}

/// The smallest id above `id` (a listing "before" it includes it).
fn next_id(id: Uuid) -> Uuid {
    Uuid::from_u128(id.as_u128().saturating_add(1))
}

fn delivery(message: OutboxMessage) -> Delivery {
    let p: Option<webhook::DeliveryPayload> = serde_json::from_value(message.payload.clone()).ok();
    Delivery {
        event_type: p.as_ref().map(|p| p.event_type.clone()).unwrap_or_default(),
        last_status: p.as_ref().and_then(|p| p.last_status),
        last_response_ms: p.as_ref().and_then(|p| p.last_response_ms),
        message,
    }
}

impl Event {
    /// `data` fields of a user: id (already there), username, email.
    pub fn with_user(self, user: &crate::model::User) -> Self {
        self.with_str("username", user.username.as_ref().map(|u| u.as_str()))
            .with_str("email", user.email.as_ref().map(|e| e.as_str()))
    }

    /// `data` fields of a client: ip, user agent.
    pub fn with_client(self, ip: Option<&str>, user_agent: Option<&str>) -> Self {
        self.with_str("ip", ip).with_str("user_agent", user_agent)
    }
}
