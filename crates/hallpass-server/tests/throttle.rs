//! Login throttling over HTTP with the default policy: an account after 10 consecutive
//! failures and a client IP after 100 failures in its window answer 429 `rate_limited`
//! with `Retry-After`, even for the right password; the attempt shows in the login history
//! with outcome `throttled`; the fake clock ends the wait. Bursts of parallel attempts
//! never get more checked than the budget allows (on SQLite, PostgreSQL and MariaDB), and
//! a device that has logged in as the user keeps its attempts while an attacker throttles
//! every unknown device.

// clippy.toml allows unwrap in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::{Options, Res, TestApp};
use reqwest::Method;
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";

async fn login(app: &TestApp, login: &str, password: &str, ip: &str) -> Res {
    app.post("/v1/sessions", json!({"login": login, "password": password, "client": {"ip": ip}})).await
}

async fn login_on(app: &TestApp, login: &str, password: &str, ip: &str, device: &str) -> Res {
    let client = json!({"ip": ip, "device": device});
    app.post("/v1/sessions", json!({"login": login, "password": password, "client": client})).await
}

/// `n` logins at once (from `ip`, each with `password`); the statuses, sorted.
async fn burst(app: &TestApp, n: usize, login: &str, password: &str, ip: &str) -> Vec<u16> {
    let body = json!({"login": login, "password": password, "client": {"ip": ip}});
    let sends = (0..n).map(|_| app.send(app.req(reqwest::Method::POST, "/v1/sessions").json(&body)));
    let mut statuses: Vec<u16> =
        futures_util::future::join_all(sends).await.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort_unstable();
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// How many login events of `user` have `outcome`.
async fn outcomes(app: &TestApp, user: &str, outcome: &str) -> usize {
    let history = app.get(&format!("/v1/users/{user}/logins?limit=1000")).await.ok(200);
    history["events"].as_array().unwrap().iter().filter(|e| e["outcome"] == outcome).count()
}

/// 50 parallel wrong guesses at a fresh account: the ten free attempts are checked, the
/// other forty refused unchecked; when the first wait ends, another burst of 50 gets one.
async fn a_burst_gets_no_more_checked_than_the_account_budget(app: TestApp) {
    app.register("alice", PASSWORD).await;
    let statuses = burst(&app, 50, "alice", "wrong password!", "198.51.100.1").await;
    assert_eq!((count(&statuses, 401), count(&statuses, 429)), (10, 40), "{statuses:?}");
    assert_eq!(outcomes(&app, "alice", "wrong_password").await, 10);
    assert_eq!(outcomes(&app, "alice", "throttled").await, 40);
    app.clock.advance(time::Duration::seconds(1));
    let statuses = burst(&app, 50, "alice", "wrong password!", "198.51.100.2").await;
    assert_eq!((count(&statuses, 401), count(&statuses, 429)), (1, 49), "{statuses:?}");
    // The next place opens 2 s after that one (1 + 2 s after the first failure).
    app.clock.advance(time::Duration::seconds(1));
    login(&app, "alice", PASSWORD, "198.51.100.3").await.problem(429, "rate_limited");
    app.clock.advance(time::Duration::seconds(1));
    login(&app, "alice", PASSWORD, "198.51.100.3").await.ok(201);
}

/// An unknown login has a budget of its own, the same size.
async fn a_burst_at_an_unknown_login_gets_the_same_budget(app: TestApp) {
    let statuses = burst(&app, 50, "nobody", "wrong password!", "198.51.100.1").await;
    assert_eq!((count(&statuses, 401), count(&statuses, 429)), (10, 40), "{statuses:?}");
}

/// One place left on a client IP's budget: a burst of 50 from it (at 50 accounts) gets
/// exactly one checked.
async fn a_burst_gets_no_more_checked_than_the_ip_budget(app: TestApp) {
    app.register("alice", PASSWORD).await;
    let attacker = "203.0.113.66";
    for i in 0..99 {
        login(&app, &format!("victim{i}"), "wrong password!", attacker)
            .await
            .problem(401, "invalid_credentials");
    }
    let body = |i: usize| json!({"login": format!("other{i}"), "password": "wrong password!", "client": {"ip": attacker}});
    let sends = (0..50).map(|i| app.send(app.req(reqwest::Method::POST, "/v1/sessions").json(&body(i))));
    let statuses: Vec<u16> =
        futures_util::future::join_all(sends).await.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!((count(&statuses, 401), count(&statuses, 429)), (1, 49), "{statuses:?}");
    // The IP's budget is spent: even the right password from it waits for the window.
    login(&app, "alice", PASSWORD, attacker).await.problem(429, "rate_limited");
    login(&app, "alice", PASSWORD, "198.51.100.1").await.ok(201);
}

/// The owner's device keeps its attempts while an attacker throttles unknown devices; a
/// device's own failures hold only that device; a device of another user is unknown here.
async fn an_attacker_cannot_lock_the_owner_out_of_a_known_device(app: TestApp) {
    app.register("alice", PASSWORD).await;
    app.register("mallory", PASSWORD).await;
    let first = login(&app, "alice", PASSWORD, "198.51.100.7").await.ok(201);
    let laptop = first["device"].as_str().unwrap().to_owned();
    assert!(laptop.starts_with("hpd_") && laptop.len() == 47, "{laptop}");
    let phone =
        login(&app, "alice", PASSWORD, "198.51.100.8").await.ok(201)["device"].as_str().unwrap().to_owned();
    assert_ne!(laptop, phone, "a login without a device gets a new one");
    let mallorys =
        login(&app, "mallory", PASSWORD, "203.0.113.9").await.ok(201)["device"].as_str().unwrap().to_owned();

    // The attacker: failures from anywhere, as many as the budget lets through, again
    // each time a wait ends.
    let mut guesses = 0;
    for round in 0..3 {
        loop {
            let r = login(&app, "alice", "wrong password!", &format!("203.0.113.{}", guesses % 200)).await;
            if r.status == 429 {
                break;
            }
            r.problem(401, "invalid_credentials");
            guesses += 1;
        }
        // Mallory's own device is unknown for alice: it gives no way past.
        login_on(&app, "alice", "wrong password!", "203.0.113.251", &mallorys)
            .await
            .problem(429, "rate_limited");
        // The owner on an unknown device is held with the attacker, as OWASP's design has it...
        login(&app, "alice", PASSWORD, "198.51.100.9").await.problem(429, "rate_limited");
        // ...but her laptop, which has logged in as alice before, is not.
        let back = login_on(&app, "alice", PASSWORD, "198.51.100.7", &laptop).await.ok(201);
        assert_eq!(back["device"], laptop.as_str(), "a known device keeps its token");
        app.clock.advance(time::Duration::seconds(60 * (round + 1)));
    }
    assert!(guesses >= 12, "the attacker got their budget: {guesses}");
    // A stolen laptop token guessed with: its own failures lock only the laptop.
    for _ in 0..10 {
        login_on(&app, "alice", "wrong password!", "203.0.113.60", &laptop)
            .await
            .problem(401, "invalid_credentials");
    }
    login_on(&app, "alice", PASSWORD, "198.51.100.7", &laptop).await.problem(429, "rate_limited");
    login_on(&app, "alice", PASSWORD, "198.51.100.8", &phone).await.ok(201);
    assert_eq!(outcomes(&app, "alice", "wrong_password").await, guesses + 10);
    // Not a token hallpass issued: 400.
    login_on(&app, "alice", PASSWORD, "198.51.100.7", "hpd_short").await.problem(400, "invalid_request");
}

/// Other forms of one address share its counter: an IPv4-mapped IPv6 address counts as
/// the IPv4 address, and IPv6 addresses count per /64.
async fn other_forms_of_one_address_share_its_ip_budget(app: TestApp) {
    for i in 0..50 {
        login(&app, &format!("a{i}"), "wrong password!", "203.0.113.50")
            .await
            .problem(401, "invalid_credentials");
        login(&app, &format!("b{i}"), "wrong password!", "::ffff:203.0.113.50")
            .await
            .problem(401, "invalid_credentials");
        login(&app, &format!("c{i}"), "wrong password!", &format!("2001:db8:1:2::{i:x}"))
            .await
            .problem(401, "invalid_credentials");
        login(&app, &format!("d{i}"), "wrong password!", &format!("2001:db8:1:2:ffff::{i:x}"))
            .await
            .problem(401, "invalid_credentials");
    }
    login(&app, "x", "wrong password!", "203.0.113.50").await.problem(429, "rate_limited");
    login(&app, "x", "wrong password!", "::ffff:203.0.113.50").await.problem(429, "rate_limited");
    login(&app, "x", "wrong password!", "2001:db8:1:2:abcd::1").await.problem(429, "rate_limited");
    // Another /64 and another IPv4 address are not held.
    login(&app, "x", "wrong password!", "2001:db8:1:3::1").await.problem(401, "invalid_credentials");
    login(&app, "x", "wrong password!", "203.0.113.51").await.problem(401, "invalid_credentials");
}

backend_tests! {
    a_burst_gets_no_more_checked_than_the_account_budget,
    a_burst_at_an_unknown_login_gets_the_same_budget,
    a_burst_gets_no_more_checked_than_the_ip_budget,
    an_attacker_cannot_lock_the_owner_out_of_a_known_device,
    other_forms_of_one_address_share_its_ip_budget,
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
async fn an_api_key_over_its_costly_call_budget_answers_429_and_session_checks_go_on() {
    let mut settings = common::settings();
    settings.default_scope.throttle.key_rate = 1;
    settings.default_scope.throttle.key_burst = 3;
    let app = TestApp::start_with(Options { settings, ..Default::default() }).await;
    app.register("alice", PASSWORD).await;
    let token = app.login("alice", PASSWORD).await;
    app.post("/v1/password-resets", json!({"login": "alice"})).await.ok(201);
    // Registration, login and the reset code took the burst of three.
    let refused = app.post("/v1/sessions", json!({"login": "alice", "password": PASSWORD})).await;
    refused.problem(429, "rate_limited");
    assert_eq!(refused.header("retry-after"), Some("1"));
    app.put("/v1/users/alice/password", json!({"password": "another fine passphrase 7"}))
        .await
        .problem(429, "rate_limited");
    // The clock stands still, so nothing refills; the other calls have no budget by default.
    for _ in 0..2_500 {
        assert_eq!(app.with_token(Method::GET, "/v1/session", &token, None).await.status, 200);
    }
    assert_eq!(app.get("/v1/users/nobody").await.status, 404);
    app.clock.advance(time::Duration::seconds(1));
    app.post("/v1/sessions", json!({"login": "alice", "password": PASSWORD})).await.ok(201);
}

#[tokio::test]
async fn a_budget_of_other_calls_can_be_set_and_refuses_with_retry_after() {
    let mut settings = common::settings();
    settings.default_scope.throttle.key_other_rate = 1;
    settings.default_scope.throttle.key_other_burst = 3;
    let app = TestApp::start_with(Options { settings, ..Default::default() }).await;
    for _ in 0..3 {
        assert_eq!(app.get("/v1/users/nobody").await.status, 404);
    }
    let refused = app.get("/v1/users/nobody").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["code"], "rate_limited");
    app.clock.advance(time::Duration::seconds(1));
    assert_eq!(app.get("/v1/users/nobody").await.status, 404, "refilled");
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
