//! What the server logs: each request's span carries the route template, the request id
//! and the scope, and nothing secret (API key, session token, password, query string).

// clippy.toml allows unwrap in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestApp;
use reqwest::Method;

/// A log sink. This test has its own binary so that it may install the global subscriber
/// (per-thread subscribers race with other tests over tracing's callsite cache).
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_carry_route_and_request_id_but_no_secrets() {
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let app = TestApp::start().await;
    app.register("secretive", "secretive velvet kumquat").await;
    let token = app.login("secretive", "secretive velvet kumquat").await;
    let res = app
        .send(
            app.req(Method::GET, "/v1/users/secretive?limit=1")
                .header("x-request-id", "req-77")
                .header("x-session-token", &token),
        )
        .await;
    res.ok(200);
    app.with_token(Method::GET, "/v1/session", &token, None).await.ok(200);

    // A request id that is not a short id of safe characters is replaced, not echoed, and
    // never reaches a log line: neither a forged field nor 300 KB on an unauthenticated
    // route (issue #12).
    let forged = "req-78 level=ERROR message=forged-by-client";
    let huge = format!("huge-{}", "h".repeat(300 * 1024));
    let mut fresh = Vec::new();
    for bad in [forged, huge.as_str()] {
        let res = app.send(app.client.get(app.url("/healthz")).header("x-request-id", bad)).await;
        res.ok(200);
        let answered = res.header("x-request-id").unwrap().to_owned();
        assert_ne!(answered, bad);
        assert_eq!(answered.len(), 36, "{answered}");
        fresh.push(answered);
    }

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("/v1/users/{ref}"), "{text}");
    assert!(text.contains("req-77"), "{text}");
    assert!(text.contains("scope=app"), "{text}");
    for secret in [app.key.as_str(), token.as_str(), "secretive velvet kumquat", "limit=1"] {
        assert!(!text.contains(secret), "logs leak {secret}: {text}");
    }
    for refused in ["forged-by-client", "req-78", "huge-hhhh"] {
        assert!(!text.contains(refused), "logs carry a refused request id ({refused})");
    }
    for id in &fresh {
        assert!(text.contains(&format!("request_id={id}")), "the fresh id {id} is logged instead");
    }
}
