//! `GET /metrics`: Prometheus text after real traffic, on each backend (`sqlite::`,
//! `postgres::`, `mysql::`; an unreachable PostgreSQL or MariaDB skips outside CI).
//!
//! Each app has its own recorder, so the counts asserted here are exact: other tests in
//! this process do not add to them.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::TestApp;
use hallpass_core::StoreError;
use reqwest::Method;
use serde_json::json;
use std::collections::BTreeMap;

/// One sample line: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses the Prometheus text format 0.0.4 strictly enough to catch a malformed line:
/// every line is empty, `# HELP name text`, `# TYPE name kind`, or
/// `name{label="value",...} number`. Panics on anything else.
fn parse(body: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in body.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(is_name(name), "bad HELP line: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            assert!(is_name(name), "bad TYPE line: {line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad TYPE: {line}"
            );
            assert!(parts.next().is_none(), "bad TYPE line: {line}");
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment line: {line}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let mut labels = BTreeMap::new();
                // Label values here never hold `",` (route templates, names, numbers).
                for pair in inner.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
                    assert!(is_name(k), "bad label name: {line}");
                    let v = v.strip_suffix('"').unwrap_or(v);
                    assert!(!v.contains('"') && !v.contains('\n'), "bad label value: {line}");
                    labels.insert(k.to_owned(), v.to_owned());
                }
                (name, labels)
            }
        };
        assert!(is_name(name), "bad metric name: {line}");
        samples.push(Sample { name: name.to_owned(), labels, value });
    }
    samples
}

/// The value of the one sample named `name` with (at least) `labels`; panics if there is
/// not exactly one.
#[track_caller]
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = matching(samples, name, labels).collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0].value
}

/// The sum over samples named `name` with (at least) `labels`; 0 if none.
fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    matching(samples, name, labels).map(|s| s.value).sum()
}

fn matching<'a>(
    samples: &'a [Sample],
    name: &'a str,
    labels: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = &'a Sample> {
    samples.iter().filter(move |s| {
        s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

/// `GET /metrics` without an API key: the status, the content type and the body.
async fn scrape(app: &TestApp) -> (u16, String, String) {
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    let status = res.status().as_u16();
    let ct = res.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    (status, ct, res.text().await.unwrap())
}

const PASSWORD: &str = "quilted marsupial drumbeat 42";

async fn metrics_after_traffic(app: TestApp) {
    let user = app.register("alice", PASSWORD).await;
    let token = app.login("alice", PASSWORD).await;
    app.post("/v1/sessions", json!({"username": "alice", "password": "wrong horse battery"}))
        .await
        .problem(401, "invalid_credentials");
    app.post("/v1/sessions", json!({"username": "nobody", "password": PASSWORD}))
        .await
        .problem(401, "invalid_credentials");
    let bob = app.register("bob", PASSWORD).await;
    app.patch(&format!("/v1/users/{}", bob["id"].as_str().unwrap()), json!({"active": false})).await.ok(200);
    app.post("/v1/sessions", json!({"username": "bob", "password": PASSWORD}))
        .await
        .problem(403, "user_inactive");
    app.post("/v1/sessions", json!({"provider": "github", "client_id": "octo-cat-xq"}))
        .await
        .problem(401, "invalid_credentials");
    app.with_token(Method::GET, "/v1/session", &token, None).await.ok(200);
    let id = user["id"].as_str().unwrap().to_owned();
    app.get(&format!("/v1/users/{id}")).await.ok(200);
    app.get("/v1/no/such/path/alice").await.problem(404, "not_found");

    // A storage outage: the API-key lookup fails first, or (where the key is cached) the
    // user lookup.
    app.switch.observer().fail_with(Some(StoreError::Unavailable("test outage".into())));
    app.get(&format!("/v1/users/{id}")).await.problem(503, "storage_unavailable");
    app.switch.observer().fail_with(None);

    let (status, content_type, body) = scrape(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let s = parse(&body);

    // Requests by route template, method and status; never a raw path.
    let req = "hallpass_http_requests_total";
    assert_eq!(value(&s, req, &[("method", "POST"), ("route", "/v1/users"), ("status", "201")]), 2.0);
    assert_eq!(value(&s, req, &[("method", "POST"), ("route", "/v1/sessions"), ("status", "201")]), 1.0);
    assert_eq!(value(&s, req, &[("method", "POST"), ("route", "/v1/sessions"), ("status", "401")]), 3.0);
    assert_eq!(value(&s, req, &[("method", "POST"), ("route", "/v1/sessions"), ("status", "403")]), 1.0);
    assert_eq!(value(&s, req, &[("method", "GET"), ("route", "/v1/session"), ("status", "200")]), 1.0);
    assert_eq!(value(&s, req, &[("method", "GET"), ("route", "/v1/users/{ref}"), ("status", "503")]), 1.0);
    assert_eq!(value(&s, req, &[("method", "GET"), ("route", "/v1/users/{ref}"), ("status", "200")]), 1.0);
    assert_eq!(value(&s, req, &[("method", "GET"), ("route", "unmatched"), ("status", "404")]), 1.0);
    for sample in s.iter().filter(|x| x.labels.contains_key("route")) {
        let route = &sample.labels["route"];
        assert!(route == "unmatched" || !route.contains(&id), "raw path in a label: {route}");
    }

    // Latency histograms with the sub-millisecond buckets.
    let dur = "hallpass_http_request_duration_seconds";
    assert_eq!(value(&s, &format!("{dur}_count"), &[("method", "GET"), ("route", "/v1/users/{ref}")]), 2.0);
    for le in ["0.0001", "0.001", "5", "+Inf"] {
        value(&s, &format!("{dur}_bucket"), &[("method", "POST"), ("route", "/v1/sessions"), ("le", le)]);
    }
    assert_eq!(
        value(&s, &format!("{dur}_bucket"), &[("method", "POST"), ("route", "/v1/sessions"), ("le", "+Inf")]),
        5.0
    );

    // Logins by outcome and method; a wrong password and an unknown user are one outcome.
    let logins = "hallpass_logins_total";
    assert_eq!(value(&s, logins, &[("outcome", "success"), ("method", "password")]), 1.0);
    assert_eq!(value(&s, logins, &[("outcome", "invalid_credentials"), ("method", "password")]), 2.0);
    assert_eq!(value(&s, logins, &[("outcome", "inactive"), ("method", "password")]), 1.0);
    assert_eq!(value(&s, logins, &[("outcome", "invalid_credentials"), ("method", "provider")]), 1.0);
    assert_eq!(sum(&s, logins, &[]), 5.0);

    // Sampled at scrape time.
    assert_eq!(value(&s, "hallpass_active_sessions", &[]), 1.0);
    assert_eq!(value(&s, "hallpass_hash_queue_depth", &[]), 0.0);
    // Two registrations' hashes and four verifications (the unknown user's on a dummy hash).
    assert!(value(&s, "hallpass_password_hashes_total", &[]) >= 6.0, "{body}");
    if cfg!(target_os = "linux") {
        assert!(value(&s, "process_resident_memory_bytes", &[]) > 1e6, "{body}");
    }

    // Store calls: counted with durations, and the outage's failure by kind.
    let ops = "hallpass_storage_operations_total";
    assert_eq!(value(&s, ops, &[("op", "insert_login"), ("result", "ok")]), 1.0);
    assert_eq!(value(&s, ops, &[("op", "insert_user"), ("result", "ok")]), 2.0);
    assert!(value(&s, ops, &[("op", "find_session"), ("result", "ok")]) >= 1.0);
    let failed = if app.service.caching() { "find_user" } else { "find_api_key" };
    assert_eq!(value(&s, "hallpass_storage_errors_total", &[("op", failed), ("kind", "unavailable")]), 1.0);
    assert_eq!(sum(&s, "hallpass_storage_errors_total", &[("kind", "unavailable")]), 1.0);
    assert_eq!(sum(&s, "hallpass_storage_errors_total", &[("kind", "other")]), 0.0);
    assert!(value(&s, "hallpass_storage_operation_duration_seconds_count", &[("op", "find_session")]) >= 1.0);

    // Nothing secret or personal: no token, key, password, email, username or user id.
    for secret in [
        token.as_str(),
        app.key.as_str(),
        PASSWORD,
        "alice",
        "bob",
        "octo-cat-xq",
        "github",
        "example.com",
        id.as_str(),
        "hps_",
        "hpk_",
    ] {
        assert!(!body.contains(secret), "/metrics shows {secret}: {body}");
    }

    // The scrape itself is counted, under its template.
    let (_, _, body) = scrape(&app).await;
    let s = parse(&body);
    assert_eq!(value(&s, req, &[("method", "GET"), ("route", "/metrics"), ("status", "200")]), 1.0);
}

/// The counters of `s`, keyed by name and labels: every sample but histogram buckets and
/// sums (latencies) and gauges (sampled at scrape time).
fn counters(s: &[Sample]) -> BTreeMap<String, f64> {
    s.iter()
        .filter(|x| x.name.ends_with("_total") || x.name.ends_with("_count"))
        .map(|x| (format!("{}{:?}", x.name, x.labels), x.value))
        .collect()
}

/// What moved between two scrapes: the counters that changed, and by how much.
fn moved(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(k, d)| *d != 0.0 && !k.contains("route: \"/metrics\""))
        .collect()
}

/// Someone who can read `/metrics` and submit logins learns nothing about whether an
/// account exists: a wrong password for a user and a login for nobody move exactly the same
/// counters by the same amounts (issue #12: the login counter had `wrong_password` and
/// `unknown_user` outcomes).
async fn metrics_do_not_tell_whether_an_account_exists(app: TestApp) {
    app.register("alice", PASSWORD).await;
    let scrape_counters = || async { counters(&parse(&scrape(&app).await.2)) };
    let s0 = scrape_counters().await;
    app.post("/v1/sessions", json!({"login": "alice", "password": "wrong horse battery"}))
        .await
        .problem(401, "invalid_credentials");
    let s1 = scrape_counters().await;
    app.post("/v1/sessions", json!({"login": "nobody", "password": "wrong horse battery"}))
        .await
        .problem(401, "invalid_credentials");
    let s2 = scrape_counters().await;
    let (mut wrong_password, mut unknown_user) = (moved(&s0, &s1), moved(&s1, &s2));
    // The API key's lookup is the request's, not the login's: a cached key dropped by the
    // change listener's first `All` (it connects in the background) may be read again in
    // either step, and the key's last use is written by a background task (at most once a
    // minute) that may land in either step. Nothing about the account is in them.
    for moved in [&mut wrong_password, &mut unknown_user] {
        moved.retain(|k, _| !k.contains("find_api_key") && !k.contains("touch_api_key"));
    }
    assert!(
        wrong_password.keys().any(|k| k.contains("hallpass_logins_total")),
        "the attempt is counted: {wrong_password:?}"
    );
    assert_eq!(wrong_password, unknown_user);
    let body = scrape(&app).await.2;
    assert!(!body.contains("wrong_password") && !body.contains("unknown_user"), "{body}");
}

/// A fresh app scrapes cleanly with zeros (the gauges exist before any traffic).
async fn active_sessions_starts_at_zero(app: TestApp) {
    let (_, _, body) = scrape(&app).await;
    let s = parse(&body);
    assert_eq!(value(&s, "hallpass_active_sessions", &[]), 0.0);
    assert_eq!(sum(&s, "hallpass_logins_total", &[]), 0.0);
    assert_eq!(value(&s, "hallpass_hash_queue_depth", &[]), 0.0);
}

backend_tests!(
    metrics_after_traffic,
    metrics_do_not_tell_whether_an_account_exists,
    active_sessions_starts_at_zero
);
