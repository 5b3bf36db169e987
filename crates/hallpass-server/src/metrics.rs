//! Prometheus metrics: what `GET /metrics` renders (text format 0.0.4).
//!
//! Each application has its own [`Metrics`]: a `metrics-exporter-prometheus` recorder that
//! is never installed as the process-global one, so tests that start many apps in one
//! process see only their own numbers. Series are registered once and their handles kept
//! in small maps, so the hot path (one request) costs a read lock, a short scan and two
//! atomic updates, without building label sets.
//!
//! What is measured, and where:
//! - HTTP requests per method, route template and status, and their latency: the
//!   edge layer ([`crate::http::edge`]) in `build_app`. The route is axum's `MatchedPath`
//!   template (`/v1/users/{ref}`), never the raw path; unmatched paths are `unmatched`.
//! - Logins by outcome and method: the login handler, from the service's answer
//!   ([`Metrics::login`]). A wrong password and an unknown user are one outcome,
//!   `invalid_credentials`: whoever can read `/metrics` and submit logins could otherwise
//!   tell, login by login, whether an account exists (the answers and their timing are
//!   equal on purpose). The login events, behind the API key, keep the difference.
//! - Store calls (count, duration, errors by kind): [`StoreMetrics`], an
//!   [`Observer`] on the store wrapped with [`Observed`](hallpass_core::observed::Observed).
//! - Sampled at scrape time: hashing-pool queue depth, password hashes computed, resident
//!   memory, log lines dropped by the log writer ([`crate::telemetry`]), and the number
//!   of valid sessions (a `COUNT` on the sessions' expiry index, at most once per
//!   [`ACTIVE_SESSIONS_REFRESH`]).
//!
//! No label ever carries user data: labels are methods, route templates, status codes,
//! outcome names and store operation names, all from fixed sets.

use crate::app::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hallpass_core::observed::Observer;
use hallpass_core::{CredentialFailure, Error, Hallpass, StoreError};
use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder as _};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// The media type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The oldest the `hallpass_active_sessions` value may be when a scrape reads it.
pub const ACTIVE_SESSIONS_REFRESH: Duration = Duration::from_secs(10);

/// Latency buckets (seconds): sub-millisecond session checks up to slow logins.
const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

const HTTP_REQUESTS: &str = "hallpass_http_requests_total";
const HTTP_DURATION: &str = "hallpass_http_request_duration_seconds";
const LOGINS: &str = "hallpass_logins_total";
const ACTIVE_SESSIONS: &str = "hallpass_active_sessions";
const HASH_QUEUE: &str = "hallpass_hash_queue_depth";
const HASHES: &str = "hallpass_password_hashes_total";
const STORE_OPS: &str = "hallpass_storage_operations_total";
const STORE_DURATION: &str = "hallpass_storage_operation_duration_seconds";
const STORE_ERRORS: &str = "hallpass_storage_errors_total";
const RSS: &str = "process_resident_memory_bytes";
const CACHED: &str = "hallpass_session_cache_entries";
const LOG_DROPPED: &str = "hallpass_log_lines_dropped_total";
const OUTBOX: &str = "hallpass_outbox_messages";
const OUTBOX_OLDEST: &str = "hallpass_outbox_oldest_pending_seconds";
const WEBHOOKS: &str = "hallpass_webhook_deliveries";
const WEBHOOKS_OLDEST: &str = "hallpass_webhook_oldest_pending_seconds";
const CHANGE_STREAMS: &str = "hallpass_change_streams";
const CHANGE_EVENTS: &str = "hallpass_change_stream_events_total";
const CHANGE_RESETS: &str = "hallpass_change_stream_resets_total";

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

static METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

/// One application's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Per route template: the latency histogram per method, the counter per method and
    /// status.
    routes: RwLock<HashMap<Box<str>, RouteSeries>>,
    /// Per store operation: its series.
    store_ops: RwLock<HashMap<&'static str, OpSeries>>,
    logins: RwLock<HashMap<(&'static str, &'static str), Counter>>,
    active_sessions: Gauge,
    /// Outbox rows per state (`hallpass_outbox_messages{state}`), in `OutboxState::ALL` order.
    outbox: Vec<Gauge>,
    outbox_oldest: Gauge,
    /// The endpoints (webhook ids) whose series exist, so a deleted one's drop to 0.
    webhook_lanes: std::sync::Mutex<std::collections::HashSet<String>>,
    hash_queue: Gauge,
    hashes: Counter,
    rss: Gauge,
    cached: Gauge,
    log_dropped: Counter,
    change_streams: Gauge,
    change_events: Counter,
    change_resets: Vec<(&'static str, Counter)>,
    /// When the active-session count was last taken; held while it is taken, so
    /// concurrent scrapes make one query.
    active_checked: tokio::sync::Mutex<Option<Instant>>,
}

#[derive(Default)]
struct RouteSeries {
    durations: Vec<(&'static str, Histogram)>,
    counts: Vec<(&'static str, u16, Counter)>,
}

/// The series of one store operation. `unavailable` and `other` errors start at zero (so
/// an alert on their increase sees the first one); conflicts, which only a few writes can
/// have, appear at the first.
struct OpSeries {
    ok: Counter,
    error: Counter,
    duration: Histogram,
    unavailable: Counter,
    other: Counter,
    conflict: OnceLock<Counter>,
    op: &'static str,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty set of metrics with its own recorder.
    pub fn new() -> Self {
        let mut builder = PrometheusBuilder::new();
        for name in [HTTP_DURATION, STORE_DURATION] {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(name.to_owned()), LATENCY_BUCKETS)
                .expect("the bucket list is not empty");
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let describe =
            |name: &'static str, unit: Option<metrics::Unit>, help: &'static str| (name, unit, help);
        for (name, unit, help) in [
            describe(HTTP_REQUESTS, None, "HTTP requests answered, by method, route template and status."),
            describe(
                HTTP_DURATION,
                Some(metrics::Unit::Seconds),
                "HTTP request latency, by method and route template.",
            ),
            describe(LOGINS, None, "Login attempts, by outcome and method (password or provider)."),
            describe(ACTIVE_SESSIONS, None, "Sessions valid now (refreshed at most every 10 s)."),
            describe(HASH_QUEUE, None, "Password hashing jobs waiting for a pool thread."),
            describe(HASHES, None, "Password hashes and verifications computed."),
            describe(STORE_OPS, None, "Store calls, by operation and result (ok or error)."),
            describe(STORE_DURATION, Some(metrics::Unit::Seconds), "Store call latency, by operation."),
            describe(
                STORE_ERRORS,
                None,
                "Failed store calls, by operation and kind (unavailable, conflict, other).",
            ),
            describe(RSS, Some(metrics::Unit::Bytes), "Resident memory of the process."),
            describe(
                OUTBOX,
                None,
                "Outbox rows (mail) by state: queued, sending, in_doubt (handed over, answer lost: never resent by itself), sent, failed.",
            ),
            describe(
                OUTBOX_OLDEST,
                Some(metrics::Unit::Seconds),
                "Age of the oldest queued or sending outbox row (0: none).",
            ),
            describe(
                WEBHOOKS,
                None,
                "Webhook deliveries per endpoint (its id) and state: queued (waiting for an attempt), sending, in_doubt, sent (delivered, kept outbox_keep_sent), failed (given up, kept).",
            ),
            describe(
                WEBHOOKS_OLDEST,
                Some(metrics::Unit::Seconds),
                "Per endpoint, the age of its oldest undelivered (queued or sending) delivery (0: none).",
            ),
            describe(CACHED, None, "Sessions held in this process's cache (0: not caching)."),
            describe(CHANGE_STREAMS, None, "Open change streams (GET /v1/changes) of this process."),
            describe(CHANGE_EVENTS, None, "Events sent on change streams (pings and resets not counted)."),
            describe(
                CHANGE_RESETS,
                None,
                "Resets sent on change streams, by reason (changes_missed, cannot_resume, too_slow).",
            ),
            describe(
                LOG_DROPPED,
                None,
                "Log lines dropped because the log writer could not keep up (its queue was full).",
            ),
        ] {
            let key = metrics::KeyName::from_const_str(name);
            if name == HTTP_DURATION || name == STORE_DURATION {
                recorder.describe_histogram(key, unit, help.into());
            } else if name.ends_with("_total") {
                recorder.describe_counter(key, unit, help.into());
            } else {
                recorder.describe_gauge(key, unit, help.into());
            }
        }
        let active_sessions = recorder.register_gauge(&Key::from_static_name(ACTIVE_SESSIONS), &METADATA);
        let hash_queue = recorder.register_gauge(&Key::from_static_name(HASH_QUEUE), &METADATA);
        let outbox = hallpass_core::OutboxState::ALL
            .iter()
            .map(|s| {
                let key = Key::from_parts(OUTBOX, vec![Label::from_static_parts("state", s.as_str())]);
                recorder.register_gauge(&key, &METADATA)
            })
            .collect();
        let outbox_oldest = recorder.register_gauge(&Key::from_static_name(OUTBOX_OLDEST), &METADATA);
        let hashes = recorder.register_counter(&Key::from_static_name(HASHES), &METADATA);
        let rss = recorder.register_gauge(&Key::from_static_name(RSS), &METADATA);
        let cached = recorder.register_gauge(&Key::from_static_name(CACHED), &METADATA);
        let log_dropped = recorder.register_counter(&Key::from_static_name(LOG_DROPPED), &METADATA);
        let change_streams = recorder.register_gauge(&Key::from_static_name(CHANGE_STREAMS), &METADATA);
        let change_events = recorder.register_counter(&Key::from_static_name(CHANGE_EVENTS), &METADATA);
        let change_resets = ["changes_missed", "cannot_resume", "too_slow"]
            .into_iter()
            .map(|reason| {
                let key = Key::from_parts(CHANGE_RESETS, vec![Label::from_static_parts("reason", reason)]);
                (reason, recorder.register_counter(&key, &METADATA))
            })
            .collect();
        Self {
            recorder,
            handle,
            routes: RwLock::default(),
            store_ops: RwLock::default(),
            logins: RwLock::default(),
            active_sessions,
            outbox,
            outbox_oldest,
            webhook_lanes: Default::default(),
            hash_queue,
            hashes,
            rss,
            cached,
            log_dropped,
            change_streams,
            change_events,
            change_resets,
            active_checked: tokio::sync::Mutex::new(None),
        }
    }

    /// Counts one answered request and its latency.
    pub fn request(&self, method: &Method, route: &str, status: StatusCode, elapsed: Duration) {
        let method = method_label(method);
        let status = status.as_u16();
        let secs = elapsed.as_secs_f64();
        {
            let routes = self.routes.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(series) = routes.get(route) {
                let duration = series.durations.iter().find(|(m, _)| *m == method).map(|(_, h)| h);
                let count =
                    series.counts.iter().find(|(m, s, _)| *m == method && *s == status).map(|(_, _, c)| c);
                if let (Some(duration), Some(count)) = (duration, count) {
                    duration.record(secs);
                    count.increment(1);
                    return;
                }
            }
        }
        let mut routes = self.routes.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let series = routes.entry(route.into()).or_default();
        let route_label = || Label::new("route", route.to_owned());
        if !series.durations.iter().any(|(m, _)| *m == method) {
            let key = Key::from_parts(
                HTTP_DURATION,
                vec![Label::from_static_parts("method", method), route_label()],
            );
            series.durations.push((method, self.recorder.register_histogram(&key, &METADATA)));
        }
        if !series.counts.iter().any(|(m, s, _)| *m == method && *s == status) {
            let key = Key::from_parts(
                HTTP_REQUESTS,
                vec![
                    Label::from_static_parts("method", method),
                    route_label(),
                    Label::new("status", status.to_string()),
                ],
            );
            series.counts.push((method, status, self.recorder.register_counter(&key, &METADATA)));
        }
        for (m, h) in &series.durations {
            if *m == method {
                h.record(secs);
            }
        }
        for (m, s, c) in &series.counts {
            if *m == method && *s == status {
                c.increment(1);
            }
        }
    }

    /// Counts a login attempt from the service's answer. `provider`: a provider login
    /// (else a password login).
    pub fn login<T>(&self, provider: bool, result: &Result<T, Error>) {
        let method = if provider { "provider" } else { "password" };
        let outcome = match result {
            Ok(_) => "success",
            // One label for both on purpose (see the module docs).
            Err(Error::InvalidCredentials(
                CredentialFailure::WrongPassword | CredentialFailure::UserNotFound,
            )) => "invalid_credentials",
            Err(Error::UserInactive(_)) => "inactive",
            Err(Error::RateLimited { .. }) => "throttled",
            Err(Error::Invalid(_)) => "invalid_request",
            Err(Error::MfaRequired(_)) => "mfa_required",
            Err(Error::InvalidFactor) => "invalid_factor",
            Err(Error::InvalidPasskey) => "invalid_passkey",
            Err(_) => "error",
        };
        {
            let logins = self.logins.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(c) = logins.get(&(outcome, method)) {
                c.increment(1);
                return;
            }
        }
        let mut logins = self.logins.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        logins
            .entry((outcome, method))
            .or_insert_with(|| {
                let key = Key::from_parts(
                    LOGINS,
                    vec![
                        Label::from_static_parts("outcome", outcome),
                        Label::from_static_parts("method", method),
                    ],
                );
                self.recorder.register_counter(&key, &METADATA)
            })
            .increment(1);
    }

    /// Counts one store call.
    pub fn store_call(&self, op: &'static str, elapsed: Duration, error: Option<&StoreError>) {
        let record = |s: &OpSeries| {
            s.duration.record(elapsed.as_secs_f64());
            match error {
                None => s.ok.increment(1),
                Some(e) => {
                    s.error.increment(1);
                    match e {
                        StoreError::Unavailable(_) => s.unavailable.increment(1),
                        StoreError::UsernameTaken
                        | StoreError::EmailTaken
                        | StoreError::IdentityTaken
                        | StoreError::TooLarge { .. } => s
                            .conflict
                            .get_or_init(|| self.store_counter(STORE_ERRORS, s.op, "kind", "conflict"))
                            .increment(1),
                        StoreError::Other(_) => s.other.increment(1),
                    }
                }
            }
        };
        {
            let ops = self.store_ops.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(s) = ops.get(op) {
                record(s);
                return;
            }
        }
        let mut ops = self.store_ops.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = ops.entry(op).or_insert_with(|| OpSeries {
            ok: self.store_counter(STORE_OPS, op, "result", "ok"),
            error: self.store_counter(STORE_OPS, op, "result", "error"),
            duration: self.recorder.register_histogram(
                &Key::from_parts(STORE_DURATION, vec![Label::from_static_parts("op", op)]),
                &METADATA,
            ),
            unavailable: self.store_counter(STORE_ERRORS, op, "kind", "unavailable"),
            other: self.store_counter(STORE_ERRORS, op, "kind", "other"),
            conflict: OnceLock::new(),
            op,
        });
        record(s);
    }

    fn store_counter(
        &self,
        name: &'static str,
        op: &'static str,
        k: &'static str,
        v: &'static str,
    ) -> Counter {
        let key =
            Key::from_parts(name, vec![Label::from_static_parts("op", op), Label::from_static_parts(k, v)]);
        self.recorder.register_counter(&key, &METADATA)
    }

    /// Counts an event sent on a change stream.
    pub fn change_stream_event(&self) {
        self.change_events.increment(1);
    }

    /// Counts a reset sent on a change stream.
    pub fn change_stream_reset(&self, reason: &str) {
        if let Some((_, counter)) = self.change_resets.iter().find(|(r, _)| *r == reason) {
            counter.increment(1);
        }
    }

    /// Samples what is read at scrape time from `service`, then renders every series.
    pub async fn render(&self, service: &Hallpass) -> String {
        self.hash_queue.set(service.hasher().queue_depth() as f64);
        self.hashes.absolute(service.hasher().hashes_computed());
        self.cached.set(service.cached_sessions() as f64);
        self.log_dropped.absolute(crate::telemetry::dropped_lines());
        self.change_streams.set(service.feed().subscribers() as f64);
        if let Some(rss) = resident_memory_bytes() {
            self.rss.set(rss as f64);
        }
        self.refresh_active_sessions(service).await;
        self.refresh_outbox(service).await;
        self.refresh_webhooks(service).await;
        self.handle.render()
    }

    /// Reads the outbox's figures (one grouped count); a failure keeps the old values.
    async fn refresh_outbox(&self, service: &Hallpass) {
        match tokio::time::timeout(Duration::from_secs(2), service.outbox_stats()).await {
            Ok(Ok(stats)) => {
                for (gauge, state) in self.outbox.iter().zip(hallpass_core::OutboxState::ALL) {
                    gauge.set(stats.count(state) as f64);
                }
                let age =
                    stats.oldest_pending_at.map_or(0.0, |t| (service.now() - t).as_seconds_f64().max(0.0));
                self.outbox_oldest.set(age);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "reading the outbox for /metrics failed"),
            Err(_) => tracing::warn!("reading the outbox for /metrics timed out"),
        }
    }

    /// Reads the webhook deliveries per endpoint (one grouped count); a failure keeps the
    /// old values. Endpoint ids are the only label values not from a fixed set: an
    /// operator makes endpoints, a request cannot.
    async fn refresh_webhooks(&self, service: &Hallpass) {
        let stats = match tokio::time::timeout(Duration::from_secs(2), service.webhook_stats()).await {
            Ok(Ok(stats)) => stats,
            Ok(Err(e)) => {
                return tracing::warn!(error = %e, "reading the webhook deliveries for /metrics failed");
            }
            Err(_) => return tracing::warn!("reading the webhook deliveries for /metrics timed out"),
        };
        let now = service.now();
        let mut seen = self.webhook_lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut gone: std::collections::HashSet<String> = seen.clone();
        let zero = hallpass_core::OutboxStats::default();
        let current: Vec<(String, hallpass_core::OutboxStats)> = stats;
        for (lane, _) in &current {
            gone.remove(lane);
        }
        let all = current.iter().map(|(l, s)| (l.clone(), s)).chain(gone.iter().map(|l| (l.clone(), &zero)));
        for (lane, s) in all {
            for state in hallpass_core::OutboxState::ALL {
                let key = Key::from_parts(
                    WEBHOOKS,
                    vec![
                        Label::new("endpoint", lane.clone()),
                        Label::from_static_parts("state", state.as_str()),
                    ],
                );
                self.recorder.register_gauge(&key, &METADATA).set(s.count(state) as f64);
            }
            let age = s.oldest_pending_at.map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0));
            let key = Key::from_parts(WEBHOOKS_OLDEST, vec![Label::new("endpoint", lane.clone())]);
            self.recorder.register_gauge(&key, &METADATA).set(age);
            seen.insert(lane);
        }
    }

    /// Counts the valid sessions again if the last count is older than
    /// [`ACTIVE_SESSIONS_REFRESH`] (or failed). A failure keeps the old value.
    async fn refresh_active_sessions(&self, service: &Hallpass) {
        let mut checked = self.active_checked.lock().await;
        if checked.is_some_and(|at| at.elapsed() < ACTIVE_SESSIONS_REFRESH) {
            return;
        }
        let count =
            tokio::time::timeout(Duration::from_secs(2), service.store().count_valid_sessions(service.now()))
                .await;
        match count {
            Ok(Ok(n)) => {
                self.active_sessions.set(n as f64);
                *checked = Some(Instant::now());
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "counting active sessions for /metrics failed"),
            Err(_) => tracing::warn!("counting active sessions for /metrics timed out"),
        }
    }

    /// Drains recorded histogram samples into their buckets. [`render`](Self::render)
    /// does this too; a server calls it every few seconds (see `serve.rs`) so samples
    /// do not pile up in memory when nobody scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Resident memory from `/proc/self/status` (Linux); `None` elsewhere.
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

/// An [`Observer`] that counts store calls into [`Metrics`]; wrap the store with
/// `Observed::new(store, StoreMetrics(metrics))`.
#[derive(Debug, Clone)]
pub struct StoreMetrics(pub Arc<Metrics>);

impl Observer for StoreMetrics {
    fn after(&self, op: &'static str, elapsed: Duration, error: Option<&StoreError>) {
        self.0.store_call(op, elapsed, error);
    }
}

/// Prometheus metrics in text format 0.0.4. Not under `/v1` and without an API key: keep
/// it off the public network (see DEPLOYMENT.md).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"))
)]
pub async fn metrics_text(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(&state.service).await;
    ([(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_results_map_to_outcomes() {
        let m = Metrics::new();
        m.login(false, &Ok::<(), Error>(()));
        m.login(false, &Err::<(), _>(Error::RateLimited { retry_after_secs: 3 }));
        m.login(false, &Err::<(), _>(Error::RateLimited { retry_after_secs: 1 }));
        m.login(true, &Err::<(), _>(Error::InvalidCredentials(CredentialFailure::UserNotFound)));
        m.login(false, &Err::<(), _>(Error::InvalidCredentials(CredentialFailure::UserNotFound)));
        m.login(false, &Err::<(), _>(Error::InvalidCredentials(CredentialFailure::WrongPassword)));
        m.login(false, &Err::<(), _>(Error::invalid("login", "bad")));
        m.login(false, &Err::<(), _>(Error::StorageUnavailable(StoreError::Unavailable("x".into()))));
        let text = m.handle.render();
        for line in [
            r#"hallpass_logins_total{outcome="success",method="password"} 1"#,
            r#"hallpass_logins_total{outcome="throttled",method="password"} 2"#,
            r#"hallpass_logins_total{outcome="invalid_credentials",method="provider"} 1"#,
            // A wrong password and an unknown user share one series: /metrics cannot tell
            // whether an account exists.
            r#"hallpass_logins_total{outcome="invalid_credentials",method="password"} 2"#,
            r#"hallpass_logins_total{outcome="invalid_request",method="password"} 1"#,
            r#"hallpass_logins_total{outcome="error",method="password"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert!(!text.contains("wrong_password") && !text.contains("unknown_user"), "{text}");
    }

    #[test]
    fn requests_and_store_calls_reuse_their_series() {
        let m = Metrics::new();
        for _ in 0..3 {
            m.request(&Method::GET, "/v1/session", StatusCode::OK, Duration::from_micros(150));
        }
        m.request(&Method::GET, "/v1/session", StatusCode::UNAUTHORIZED, Duration::from_micros(90));
        m.request(&Method::from_bytes(b"BREW").unwrap(), UNMATCHED, StatusCode::NOT_FOUND, Duration::ZERO);
        m.store_call("insert_user", Duration::from_millis(1), Some(&StoreError::UsernameTaken));
        m.store_call("insert_user", Duration::from_millis(1), Some(&StoreError::EmailTaken));
        m.store_call("insert_user", Duration::from_millis(1), None);
        let text = m.handle.render();
        for line in [
            r#"hallpass_http_requests_total{method="GET",route="/v1/session",status="200"} 3"#,
            r#"hallpass_http_requests_total{method="GET",route="/v1/session",status="401"} 1"#,
            r#"hallpass_http_requests_total{method="other",route="unmatched",status="404"} 1"#,
            r#"hallpass_http_request_duration_seconds_bucket{method="GET",route="/v1/session",le="0.0001"} 1"#,
            r#"hallpass_http_request_duration_seconds_bucket{method="GET",route="/v1/session",le="0.00025"} 4"#,
            r#"hallpass_storage_operations_total{op="insert_user",result="error"} 2"#,
            r#"hallpass_storage_operations_total{op="insert_user",result="ok"} 1"#,
            r#"hallpass_storage_errors_total{op="insert_user",kind="conflict"} 2"#,
            r#"hallpass_storage_errors_total{op="insert_user",kind="unavailable"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert_eq!(m.routes.read().unwrap().len(), 2);
    }

    /// The cost per request of the counting (run with `--release -- --ignored --nocapture`).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn cost_per_request() {
        let m = Metrics::new();
        let n = 1_000_000u32;
        let start = Instant::now();
        for i in 0..n {
            let status = if i % 10 == 0 { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
            m.request(&Method::GET, "/v1/session", status, Duration::from_micros(u64::from(i % 500)));
            m.store_call("find_session", Duration::from_micros(80), None);
            if i % 100_000 == 0 {
                m.upkeep();
            }
        }
        let per = start.elapsed() / n;
        eprintln!("request + store call counted in {per:?} per request");
    }
}
