//! Login throttling over HTTP, on SQLite with the default policy: an account after 10
//! consecutive failures and a client IP after 100 failures in its window answer 429
//! `rate_limited` with `Retry-After`, even for the right password; the attempt shows in
//! the login history with outcome `throttled`; the fake clock ends the wait.

// clippy.toml allows unwrap in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Res, TestApp};
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";

async fn login(app: &TestApp, login: &str, password: &str, ip: &str) -> Res {
    app.post("/v1/sessions", json!({"login": login, "password": password, "client": {"ip": ip}})).await
}

#[tokio::test]
async fn an_account_is_throttled_after_ten_failures_and_a_good_login_after_the_wait_resets_it() {
    let app = TestApp::start().await;
    app.register("alice", PASSWORD).await;
    for _ in 0..10 {
        login(&app, "alice", "wrong password!", "198.51.100.1").await.problem(401, "invalid_credentials");
    }
    let refused = login(&app, "alice", PASSWORD, "198.51.100.1").await;
    refused.problem(429, "rate_limited");
    assert_eq!(refused.header("retry-after"), Some("1"));
    // By email too: the counter belongs to the account.
    let refused = login(&app, "alice@example.com", PASSWORD, "198.51.100.2").await;
    refused.problem(429, "rate_limited");

    let history = app.get("/v1/users/alice/logins").await.ok(200);
    let outcomes: Vec<&str> =
        history["events"].as_array().unwrap().iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "throttled").count(), 2, "{history}");
    assert_eq!(outcomes.iter().filter(|o| **o == "wrong_password").count(), 10, "{history}");

    app.clock.advance(time::Duration::seconds(1));
    login(&app, "alice", PASSWORD, "198.51.100.1").await.ok(201);
    // Reset: the next failure is a plain 401 again.
    login(&app, "alice", "wrong password!", "198.51.100.1").await.problem(401, "invalid_credentials");
    login(&app, "alice", PASSWORD, "198.51.100.1").await.ok(201);
}

#[tokio::test]
async fn one_client_ip_is_throttled_across_accounts() {
    let app = TestApp::start().await;
    app.register("alice", PASSWORD).await;
    let attacker = "203.0.113.66";
    for i in 0..100 {
        login(&app, &format!("victim{i}"), "wrong password!", attacker)
            .await
            .problem(401, "invalid_credentials");
    }
    let refused = login(&app, "alice", PASSWORD, attacker).await;
    refused.problem(429, "rate_limited");
    assert_eq!(refused.header("retry-after"), Some("900"), "the rest of the 15-minute window");
    // Alice from her own address is not affected; the attacker's wait ends with the window.
    login(&app, "alice", PASSWORD, "198.51.100.7").await.ok(201);
    app.clock.advance(time::Duration::minutes(15));
    login(&app, "alice", PASSWORD, attacker).await.ok(201);
}

#[tokio::test]
async fn the_openapi_document_lists_429_for_logins() {
    let app = TestApp::start().await;
    let doc = app.send(app.client.get(app.url("/openapi.json"))).await.ok(200);
    let responses = &doc["paths"]["/v1/sessions"]["post"]["responses"];
    assert!(responses.get("429").is_some(), "{responses}");
    // Every call with an API key may meet the key's budget.
    let get_session = &doc["paths"]["/v1/session"]["get"]["responses"]["429"];
    assert_eq!(get_session["$ref"], "#/components/responses/RateLimited", "{get_session}");
    assert!(doc["paths"]["/healthz"]["get"]["responses"].get("429").is_none());
}

#[tokio::test]
async fn an_api_key_over_its_request_budget_answers_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = hallpass_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap();
    let mut settings = common::settings();
    settings.default_scope.throttle.key_rate = 1;
    settings.default_scope.throttle.key_burst = 3;
    let clock = std::sync::Arc::new(hallpass_core::FakeClock::fixed());
    let service = std::sync::Arc::new(
        hallpass_core::Hallpass::with_clock(std::sync::Arc::new(store), settings, clock.clone()).unwrap(),
    );
    let (_, key) = service.create_api_key(hallpass_core::Scope::parse("app").unwrap(), None).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = hallpass_server::http::build_app(hallpass_server::http::AppState {
        service,
        body_limit: hallpass_server::http::DEFAULT_BODY_LIMIT,
        metrics: Default::default(),
        admin: Default::default(),
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::new();
    let get = || client.get(format!("{base}/v1/users/nobody")).bearer_auth(key.expose()).send();
    for _ in 0..3 {
        assert_eq!(get().await.unwrap().status(), 404);
    }
    let refused = get().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    clock.advance(time::Duration::seconds(1));
    assert_eq!(get().await.unwrap().status(), 404, "refilled");
    server.abort();
}

#[tokio::test]
async fn reset_code_requests_are_limited_per_login_known_or_not() {
    let app = TestApp::start().await;
    app.register("alice", PASSWORD).await;
    for _ in 0..10 {
        app.post("/v1/password-resets", json!({"login": "alice"})).await.ok(201);
        app.post("/v1/password-resets", json!({"login": "nobody"})).await.problem(404, "user_not_found");
    }
    for login in ["alice", "nobody"] {
        let refused = app.post("/v1/password-resets", json!({"login": login})).await;
        refused.problem(429, "rate_limited");
        assert_eq!(refused.header("retry-after"), Some("3600"), "the rest of the hour");
    }
    // Another login is not affected; the window's end lets alice ask again.
    app.register("bob", PASSWORD).await;
    app.post("/v1/password-resets", json!({"login": "bob"})).await.ok(201);
    app.clock.advance(time::Duration::hours(1));
    app.post("/v1/password-resets", json!({"login": "alice"})).await.ok(201);
}
