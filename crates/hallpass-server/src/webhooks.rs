//! The webhook worker: delivers outbox rows of kind `webhook` (one event to one endpoint,
//! see `hallpass_core::webhook`) as Standard Webhooks `POST`s.
//!
//! - **Claims with a lease** ([`LEASE`]) like the mail worker, so processes sharing a
//!   database never send one attempt at once; an attempt that could outlive its lease is
//!   put back instead of sent.
//! - **Bounded per endpoint**: at most `webhook_concurrency_per_endpoint` deliveries of one
//!   endpoint are in flight in this process; a claim skips endpoints at their bound (the
//!   row's lane is its endpoint), so a slow receiver holds back neither the others nor the
//!   mail (which has its own worker).
//! - **Each attempt**: `webhook-id` the row's id (the same on every retry),
//!   `webhook-timestamp` now, `webhook-signature` one `v1,` signature per secret that signs
//!   now (two during a rotation's overlap); 10 s timeout; redirects are not followed;
//!   with `webhook_refuse_private`, a host that resolves to a non-public address is
//!   refused and the connection goes to the address that was checked.
//! - **Outcome**: a 2xx is `sent`; anything else is logged (one `warn` line per failed
//!   attempt) and retried after `hallpass_core::webhook::retry_delay` with jitter, until
//!   `MAX_ATTEMPTS` (about a day), then `failed` and kept.

use hallpass_core::webhook::{self, DeliveryPayload, MAX_ATTEMPTS};
use hallpass_core::{Hallpass, OutboxKind, OutboxMessage, OutboxState, OutboxUpdate, WebhookEndpoint};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a claim holds its rows. A claim takes at most `per_endpoint` rows, and only
/// of endpoints below their bound with nothing waiting, so a row waits for at most one
/// attempt (10 s) before its own starts; a row held by a process that died is taken
/// again after this.
pub const LEASE: time::Duration = time::Duration::seconds(60);
/// The most an attempt waits for the receiver.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How often the worker looks for due rows when nobody told it of new ones.
const POLL: Duration = Duration::from_millis(500);
/// Most deliveries in flight in this process, over every endpoint.
const IN_FLIGHT: usize = 64;
/// How often sent rows older than `outbox_keep_sent` are deleted.
const HOUSEKEEPING: Duration = Duration::from_secs(3600);

/// How the worker delivers.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Refuse private, loopback and other non-public addresses.
    pub refuse_private: bool,
    /// Most deliveries of one endpoint in flight at once.
    pub per_endpoint: usize,
    /// How long sent rows are kept.
    pub keep_sent: time::Duration,
}

impl WebhookOptions {
    /// The options a configuration sets.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            refuse_private: config.webhook_refuse_private,
            per_endpoint: config.webhook_concurrency_per_endpoint.max(1),
            keep_sent: time::Duration::try_from(config.outbox_keep_sent.0).unwrap_or(time::Duration::days(7)),
        }
    }
}

/// Rows this process holds per endpoint: in flight, and claimed but waiting for a slot.
#[derive(Default)]
struct Lanes {
    in_flight: HashMap<String, usize>,
    waiting: HashMap<String, VecDeque<OutboxMessage>>,
    total: usize,
}

/// Whether `ip` is a public unicast address (what `webhook_refuse_private` admits).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, carrier-grade NAT
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24, protocol assignments
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15, benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x64 && s[1] == 0xff9b)) // NAT64 of any IPv4
        }
    }
}

/// A factor in 0.5..=1.0 for the retry delay, so rows that failed together spread out.
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return 1.0;
    }
    0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0
}

/// The client of every attempt: 10 s, no redirects.
fn client(resolved: Option<(&str, &[SocketAddr])>) -> reqwest::Result<reqwest::Client> {
    let mut b = crate::client_builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("hallpass-webhooks/", env!("CARGO_PKG_VERSION")));
    if let Some((host, addrs)) = resolved {
        b = b.resolve_to_addrs(host, addrs);
    }
    b.build()
}

/// Starts the worker. It stops (after the deliveries in hand) when `stop` turns true.
pub fn spawn_worker(
    options: WebhookOptions,
    service: Arc<Hallpass>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let owner = format!("{}:{}", std::process::id(), uuid::Uuid::now_v7());
        let Ok(shared_client) = client(None) else {
            tracing::error!("webhook worker: cannot build an HTTP client; no webhooks are delivered");
            return;
        };
        let options = Arc::new(options);
        let lanes: Arc<Mutex<Lanes>> = Arc::default();
        let done = Arc::new(tokio::sync::Notify::new());
        let signal = service.webhook_signal();
        let mut housekeeping = tokio::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let mut endpoints: Arc<HashMap<String, WebhookEndpoint>> = Arc::default();
        tracing::info!(
            per_endpoint = options.per_endpoint,
            refuse_private = options.refuse_private,
            "webhook worker started"
        );
        loop {
            if *stop.borrow() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            {
                let mut l = lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                start_ready(
                    &mut l,
                    &mut tasks,
                    &options,
                    &service,
                    &owner,
                    &shared_client,
                    &endpoints,
                    &lanes,
                    &done,
                );
            }
            if tokio::time::Instant::now() >= housekeeping {
                housekeeping = tokio::time::Instant::now() + HOUSEKEEPING;
                if let Err(e) = service.outbox_purge_sent(OutboxKind::Webhook, options.keep_sent).await {
                    tracing::warn!(error = %e, "webhook worker: deleting old sent deliveries failed");
                }
            }
            let (free, skip) = {
                let l = lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let busy = l
                    .in_flight
                    .iter()
                    .filter(|(lane, n)| {
                        **n >= options.per_endpoint || l.waiting.get(*lane).is_some_and(|w| !w.is_empty())
                    })
                    .map(|(lane, _)| lane.clone())
                    .collect::<Vec<_>>();
                (IN_FLIGHT.saturating_sub(l.total), busy)
            };
            let mut full = false;
            if free > 0 {
                let limit = u32::try_from(free.min(options.per_endpoint)).unwrap_or(1);
                let batch = match service
                    .outbox_claim_skipping(OutboxKind::Webhook, &owner, limit, LEASE, skip)
                    .await
                {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook worker: claiming due deliveries failed");
                        Vec::new()
                    }
                };
                full = batch.len() == limit as usize;
                if !batch.is_empty() {
                    endpoints = Arc::new(match service.all_webhooks().await {
                        Ok(all) => all.into_iter().map(|w| (w.id.to_string(), w)).collect(),
                        Err(e) => {
                            tracing::warn!(error = %e, "webhook worker: reading the endpoints failed");
                            HashMap::new()
                        }
                    });
                    let mut l = lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    for row in batch {
                        l.total += 1;
                        l.waiting.entry(row.lane.clone()).or_default().push_back(row);
                    }
                    start_ready(
                        &mut l,
                        &mut tasks,
                        &options,
                        &service,
                        &owner,
                        &shared_client,
                        &endpoints,
                        &lanes,
                        &done,
                    );
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = signal.notified() => {}
                _ = done.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                changed = stop.changed() => if changed.is_err() { break },
            }
        }
        // Rows waiting for a slot go back to the queue at once; attempts in flight end
        // within their timeout.
        let waiting: Vec<OutboxMessage> = {
            let mut l = lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            l.waiting.drain().flat_map(|(_, q)| q).collect()
        };
        for row in waiting {
            release(&service, &owner, &row).await;
        }
        while tasks.join_next().await.is_some() {}
        tracing::info!("webhook worker stopped");
    })
}

/// Puts a claimed row back in the queue, due now, without an attempt.
async fn release(service: &Hallpass, owner: &str, row: &OutboxMessage) {
    let back = OutboxUpdate {
        state: OutboxState::Queued,
        at: service.now(),
        next_attempt_at: Some(service.now()),
        error: None,
        payload: None,
        user_confirmation: None,
    };
    let _ = service.outbox_update(row, owner, &back).await;
}

/// Starts the waiting rows of every lane that has a free slot.
#[allow(clippy::too_many_arguments)]
fn start_ready(
    l: &mut Lanes,
    tasks: &mut tokio::task::JoinSet<()>,
    options: &Arc<WebhookOptions>,
    service: &Arc<Hallpass>,
    owner: &str,
    client: &reqwest::Client,
    endpoints: &Arc<HashMap<String, WebhookEndpoint>>,
    lanes: &Arc<Mutex<Lanes>>,
    done: &Arc<tokio::sync::Notify>,
) {
    let lane_names: Vec<String> = l.waiting.keys().cloned().collect();
    for lane in lane_names {
        loop {
            let running = l.in_flight.get(&lane).copied().unwrap_or(0);
            if running >= options.per_endpoint {
                break;
            }
            let Some(row) = l.waiting.get_mut(&lane).and_then(VecDeque::pop_front) else { break };
            *l.in_flight.entry(lane.clone()).or_default() += 1;
            let (options, service, owner, client, endpoints, lanes, done) = (
                options.clone(),
                service.clone(),
                owner.to_owned(),
                client.clone(),
                endpoints.clone(),
                lanes.clone(),
                done.clone(),
            );
            tasks.spawn(async move {
                let endpoint = endpoints.get(&row.lane);
                deliver(&options, &service, &owner, &client, endpoint, &row).await;
                {
                    let mut l = lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    l.total = l.total.saturating_sub(1);
                    if let Some(n) = l.in_flight.get_mut(&row.lane) {
                        *n = n.saturating_sub(1);
                        if *n == 0 && l.waiting.get(&row.lane).is_none_or(VecDeque::is_empty) {
                            l.in_flight.remove(&row.lane);
                            l.waiting.remove(&row.lane);
                        }
                    }
                }
                // The worker starts the lane's next row (or claims more) now.
                done.notify_one();
            });
        }
        if l.waiting.get(&lane).is_some_and(VecDeque::is_empty) && !l.in_flight.contains_key(&lane) {
            l.waiting.remove(&lane);
        }
    }
}

/// What one attempt came to.
enum Attempt {
    Delivered { status: u16, ms: u64 },
    Failed { status: Option<u16>, ms: Option<u64>, error: String },
}

/// Sends one claimed row once and records what happened.
async fn deliver(
    options: &WebhookOptions,
    service: &Hallpass,
    owner: &str,
    client: &reqwest::Client,
    endpoint: Option<&WebhookEndpoint>,
    row: &OutboxMessage,
) {
    let payload: Option<DeliveryPayload> = serde_json::from_value(row.payload.clone()).ok();
    let Some(mut p) = payload else {
        tracing::error!(delivery = %row.id, "webhook worker: a delivery this version cannot read; marked failed");
        let up = update(OutboxState::Failed, service.now(), None, Some("unreadable payload".into()), None);
        let _ = service.outbox_update(row, owner, &up).await;
        return;
    };
    // Started only with enough lease left for a whole attempt.
    if row.lease_until.is_none_or(|l| l - service.now() < time::Duration::seconds(20)) {
        release(service, owner, row).await;
        return;
    }
    let outcome = match endpoint {
        None => Attempt::Failed { status: None, ms: None, error: "the endpoint is gone".into() },
        Some(w) => attempt(options, service, client, w, row, &p).await,
    };
    let now = service.now();
    let up = match outcome {
        Attempt::Delivered { status, ms } => {
            p.last_status = Some(status);
            p.last_response_ms = Some(ms);
            tracing::debug!(delivery = %row.id, endpoint = %p.endpoint_id, status, "webhook delivered");
            update(OutboxState::Sent, now, None, None, serde_json::to_value(&p).ok())
        }
        Attempt::Failed { status, ms, error } => {
            p.last_status = status;
            p.last_response_ms = ms;
            let give_up = row.attempts >= MAX_ATTEMPTS || endpoint.is_none();
            let next = now + webhook::retry_delay(row.attempts, jitter());
            tracing::warn!(
                delivery = %row.id,
                endpoint = %p.endpoint_id,
                scope = %row.scope.as_str(),
                event = %p.event_type,
                attempt = row.attempts,
                status = status.map(i64::from),
                response_ms = ms,
                error = %error,
                next_attempt_at = %if give_up { "never (failed)".to_owned() } else { next.to_string() },
                "webhook delivery attempt failed"
            );
            if give_up {
                update(OutboxState::Failed, now, None, Some(error), serde_json::to_value(&p).ok())
            } else {
                update(OutboxState::Queued, now, Some(next), Some(error), serde_json::to_value(&p).ok())
            }
        }
    };
    match service.outbox_update(row, owner, &up).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(delivery = %row.id, "webhook worker: the delivery was taken over by another process")
        }
        Err(e) => {
            tracing::warn!(delivery = %row.id, error = %e, "webhook worker: recording the outcome failed")
        }
    }
}

fn update(
    state: OutboxState,
    at: time::OffsetDateTime,
    next_attempt_at: Option<time::OffsetDateTime>,
    error: Option<String>,
    payload: Option<serde_json::Value>,
) -> OutboxUpdate {
    OutboxUpdate { state, at, next_attempt_at, error, payload, user_confirmation: None }
}

/// One `POST`.
async fn attempt(
    options: &WebhookOptions,
    service: &Hallpass,
    client: &reqwest::Client,
    w: &WebhookEndpoint,
    row: &OutboxMessage,
    p: &DeliveryPayload,
) -> Attempt {
    let fail = |error: String| Attempt::Failed { status: None, ms: None, error };
    let secrets = service.webhook_signing_secrets(w);
    if secrets.is_empty() {
        return fail("no signing secret opens with the server key".into());
    }
    let Ok(url) = reqwest::Url::parse(&w.url) else { return fail("the endpoint URL does not parse".into()) };
    let pinned;
    let client = if options.refuse_private {
        let Some(host) = url.host_str().map(str::to_owned) else { return fail("the URL has no host".into()) };
        let port = url.port_or_known_default().unwrap_or(443);
        let host_for_lookup = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host_for_lookup.as_str(), port)).await {
            Ok(a) => a.collect(),
            Err(e) => return fail(format!("cannot resolve {host}: {e}")),
        };
        if addrs.is_empty() {
            return fail(format!("{host} has no address"));
        }
        if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return fail(format!(
                "refused: {host} resolves to the non-public address {} (webhook_refuse_private)",
                bad.ip()
            ));
        }
        pinned = match client_for(&host, &addrs) {
            Ok(c) => c,
            Err(e) => return fail(format!("cannot build the HTTP client: {e}")),
        };
        &pinned
    } else {
        client
    };
    let id = row.id.to_string();
    let ts = service.now().unix_timestamp();
    let signature = secrets
        .iter()
        .filter_map(|s| webhook::secret_key(s))
        .map(|k| webhook::sign(&k, &id, ts, p.body.as_bytes()))
        .collect::<Vec<_>>()
        .join(" ");
    let started = std::time::Instant::now();
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(p.body.clone())
        .send()
        .await;
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match sent {
        Ok(r) if r.status().is_success() => Attempt::Delivered { status: r.status().as_u16(), ms },
        Ok(r) => Attempt::Failed {
            status: Some(r.status().as_u16()),
            ms: Some(ms),
            error: format!("HTTP {}", r.status().as_u16()),
        },
        Err(e) if e.is_timeout() => {
            Attempt::Failed { status: None, ms: Some(ms), error: "timed out after 10 s".into() }
        }
        Err(e) if e.is_connect() => {
            Attempt::Failed { status: None, ms: Some(ms), error: "cannot connect".into() }
        }
        Err(e) => Attempt::Failed {
            status: None,
            ms: Some(ms),
            error: format!("request failed: {}", without_url(&e)),
        },
    }
}

fn client_for(host: &str, addrs: &[SocketAddr]) -> reqwest::Result<reqwest::Client> {
    client(Some((host, addrs)))
}

/// An error's text without the URL (which may carry a token in its query).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<url>");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        for a in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
    }
}
