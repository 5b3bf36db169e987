//! `GET /v1/changes`, the change stream, read as a client would read it (server-sent events
//! over HTTP, parsed here line by line):
//!
//! - ending, freshening or patching a session, changing a user and revoking a key each
//!   reach a connected client of the same scope, named by id, on SQLite, PostgreSQL and
//!   MariaDB (the events come through each backend's change channel); another scope's
//!   changes never do;
//! - a reconnect with `Last-Event-ID` is given exactly what it missed, in order; an id the
//!   server cannot resume from is answered `reset`;
//! - a stream whose own key is revoked is told so and ends;
//! - a client that stops reading is cut off with `reset` (memory per client is bounded);
//! - with two real `hallpass serve` processes on one database, a session ended through one
//!   reaches a client of the other (PostgreSQL `LISTEN`, MariaDB's change log; on SQLite a
//!   write of another process is a `reset`), and shutting a server down ends its streams.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;
mod process;

use common::TestApp;
use hallpass_core::store::Change;
use hallpass_core::types::Scope;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// Passwords no strength rule refuses.
const PASSWORD: &str = "quilted marsupial drumbeat 42";

/// How long a test waits for an event before failing (the contract's figure, 100 ms, is
/// measured in `bench/`, not asserted here).
const WAIT: Duration = Duration::from_secs(5);

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    event: String,
    id: Option<String>,
    data: Value,
}

/// A client's open stream, parsed as it arrives.
struct Stream {
    res: reqwest::Response,
    buf: String,
}

impl Stream {
    async fn open(client: &reqwest::Client, base: &str, key: &str, last_event_id: Option<&str>) -> Stream {
        let mut rb =
            client.get(format!("{base}/v1/changes")).bearer_auth(key).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            rb = rb.header("last-event-id", id);
        }
        let res = rb.send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        Stream { res, buf: String::new() }
    }

    /// The next event (pings included); `None` when the stream ended.
    async fn next_any(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut sse = Sse { event: "message".into(), id: None, data: Value::Null };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        sse.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        sse.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if data.is_empty() && sse.id.is_none() && sse.event == "message" {
                    continue; // a comment only
                }
                sse.data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some(sse);
            }
            let chunk =
                tokio::time::timeout(WAIT, self.res.chunk()).await.expect("an event in time").unwrap();
            match chunk {
                Some(bytes) => self.buf.push_str(std::str::from_utf8(&bytes).unwrap()),
                None => return None,
            }
        }
    }

    /// The next event that is not a ping.
    async fn next(&mut self) -> Sse {
        loop {
            let e = self.next_any().await.expect("the stream is still open");
            if e.event != "ping" {
                return e;
            }
        }
    }
}

/// Opens a stream of the `app` key once the app's change channel is up. A channel that
/// (re)connects says `reset` (PostgreSQL's listener, MariaDB's poller: anything may have
/// happened while nobody listened); a marker published through the store and seen in the
/// feed means that has happened, so the stream opened next starts quiet.
async fn stream(app: &TestApp, last_event_id: Option<&str>) -> Stream {
    let (_, mut rx, _) = app.service.feed().subscribe(None);
    // A marker published before the listener is connected is lost (that is what the
    // reset on connecting covers): publish a new one until one comes through.
    let started = std::time::Instant::now();
    'settled: loop {
        assert!(started.elapsed() < WAIT, "the change channel did not come up");
        let marker = Change::user(&Scope::parse("marker").unwrap(), uuid::Uuid::now_v7());
        app.service.store().publish_change(&marker).await.unwrap();
        let seen = tokio::time::timeout(Duration::from_millis(250), async {
            while rx.recv().await.unwrap().change != marker {}
        });
        if seen.await.is_ok() {
            break 'settled;
        }
    }
    Stream::open(&app.client, &app.base, &app.key, last_event_id).await
}

/// Registers `name` and logs in: (user id, session id, token).
async fn user_with_session(app: &TestApp, name: &str) -> (String, String, String) {
    let user = app.register(name, PASSWORD).await;
    let login = app.post("/v1/sessions", json!({"username": name, "password": PASSWORD})).await.ok(201);
    (
        user["id"].as_str().unwrap().to_owned(),
        login["session"]["id"].as_str().unwrap().to_owned(),
        login["token"].as_str().unwrap().to_owned(),
    )
}

async fn each_change_reaches_the_scope_and_no_other(app: TestApp) {
    let mut s = stream(&app, None).await;
    let (user, session, token) = user_with_session(&app, "ada").await;

    // Another scope's sessions and users are not this stream's business.
    let other = app.key_for("other").await;
    let other_call = |method: Method, path: &str, body: Option<Value>, token: Option<&str>| {
        let mut rb = app.client.request(method, app.url(path)).bearer_auth(&other);
        if let Some(t) = token {
            rb = rb.header("x-session-token", t.to_owned());
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send()
    };
    other_call(Method::POST, "/v1/users", Some(json!({"username": "eve", "password": PASSWORD})), None)
        .await
        .unwrap();
    let res = other_call(
        Method::POST,
        "/v1/sessions",
        Some(json!({"username": "eve", "password": PASSWORD})),
        None,
    )
    .await
    .unwrap();
    let eve_token = res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let res = other_call(Method::DELETE, "/v1/session", None, Some(&eve_token)).await.unwrap();
    assert_eq!(res.status(), 204);
    other_call(Method::PATCH, "/v1/users/eve", Some(json!({"active": false})), None).await.unwrap();

    // The session's data changed: `session.changed`, named.
    app.with_token(Method::PATCH, "/v1/session", &token, Some(json!({"cart": 3}))).await.ok(200);
    let e = s.next().await;
    assert_eq!(e.event, "session.changed", "{e:?}");
    assert_eq!(e.data, json!({"session_id": session, "user_id": user}));
    let first_id = e.id.clone().unwrap();

    // Ended: `session.ended`.
    app.with_token(Method::DELETE, "/v1/session", &token, None).await.no_content();
    let e = s.next().await;
    assert_eq!(
        (e.event.as_str(), &e.data),
        ("session.ended", &json!({"session_id": session, "user_id": user}))
    );
    assert_ne!(e.id.as_deref(), Some(first_id.as_str()), "every event has an id of its own");

    // The user deactivated: `user.changed`.
    app.patch("/v1/users/ada", json!({"active": false})).await.ok(200);
    let e = s.next().await;
    assert_eq!((e.event.as_str(), &e.data), ("user.changed", &json!({"user_id": user})));

    // A key of the scope revoked: `key.revoked`; a key of another scope: nothing.
    let (other_key, _) = app.service.create_api_key(Scope::parse("other").unwrap(), None).await.unwrap();
    app.service.revoke_api_key(other_key.id).await.unwrap();
    let (key, _) = app.service.create_api_key(Scope::parse("app").unwrap(), None).await.unwrap();
    app.service.revoke_api_key(key.id).await.unwrap();
    let e = s.next().await;
    assert_eq!((e.event.as_str(), &e.data), ("key.revoked", &json!({"key_id": key.id})));

    // Counted.
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("hallpass_change_streams 1"), "{metrics}");
    assert!(metrics.contains("hallpass_change_stream_events_total 4"), "{metrics}");
}

async fn a_reconnect_gets_what_it_missed(app: TestApp) {
    let mut s = stream(&app, None).await;
    let (_, _, t1) = user_with_session(&app, "ada").await;
    let (_, s2, t2) = user_with_session(&app, "bob").await;
    let (_, s3, t3) = user_with_session(&app, "cy").await;
    app.with_token(Method::DELETE, "/v1/session", &t1, None).await.no_content();
    let seen = s.next().await;
    assert_eq!(seen.event, "session.ended");
    drop(s);

    // Two changes while disconnected, then a resume after the last event seen.
    app.with_token(Method::DELETE, "/v1/session", &t2, None).await.no_content();
    app.with_token(Method::DELETE, "/v1/session", &t3, None).await.no_content();
    let mut s = stream(&app, seen.id.as_deref()).await;
    assert_eq!(s.next().await.data["session_id"], s2);
    assert_eq!(s.next().await.data["session_id"], s3);

    // An id this server never gave (another process's, or made up): `reset`, and a new id
    // to go on from.
    let mut s = stream(&app, Some("0123456789ab-1")).await;
    let e = s.next().await;
    assert_eq!((e.event.as_str(), &e.data), ("reset", &json!({"reason": "cannot_resume"})));
    let resumed_from = e.id.unwrap();
    let mut s = stream(&app, Some(&resumed_from)).await;
    let (_, s4, t4) = user_with_session(&app, "dee").await;
    app.with_token(Method::DELETE, "/v1/session", &t4, None).await.no_content();
    assert_eq!(s.next().await.data["session_id"], s4, "nothing before the reset's id is replayed");
}

async fn a_stream_ends_when_its_own_key_is_revoked(app: TestApp) {
    let (key, secret) = app.service.create_api_key(Scope::parse("app").unwrap(), None).await.unwrap();
    drop(stream(&app, None).await);
    let mut s = Stream::open(&app.client, &app.base, secret.expose(), None).await;
    app.service.revoke_api_key(key.id).await.unwrap();
    let e = s.next().await;
    assert_eq!((e.event.as_str(), &e.data), ("key.revoked", &json!({"key_id": key.id})));
    assert_eq!(s.next_any().await, None, "the stream ended");
    // And the key opens no new one.
    let res = app.client.get(app.url("/v1/changes")).bearer_auth(secret.expose()).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

backend_tests! {
    each_change_reaches_the_scope_and_no_other,
    a_reconnect_gets_what_it_missed,
    a_stream_ends_when_its_own_key_is_revoked,
}

/// A client that stops reading is cut off with `reset` once it falls too far behind,
/// instead of the server buffering for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off() {
    let app = TestApp::start().await;
    let mut s = stream(&app, None).await;
    // Far more than the socket buffers hold, pushed while the client reads nothing.
    let scope = Scope::parse("app").unwrap();
    for _ in 0..20 {
        for _ in 0..10_000 {
            app.service.feed().push(Change::user(&scope, uuid::Uuid::now_v7()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut events = 0u64;
    let last = loop {
        let e = s.next_any().await.expect("a reset before the end");
        if e.event == "reset" {
            break e;
        }
        events += 1;
    };
    assert_eq!(last.data, json!({"reason": "too_slow"}));
    assert!(events < 200_000, "{events} events arrived: the client was not cut off");
    assert_eq!(s.next_any().await, None, "the stream ended after the reset");
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"hallpass_change_stream_resets_total{reason="too_slow"} 1"#), "{metrics}");
}

/// Two real servers on one database: a client of A hears of a session ended through B; on
/// SQLite, whose other processes' writes are known only as "something changed", it is told
/// to reset. A server shutting down (SIGTERM) ends its streams and exits.
async fn across_processes(kind: &str) {
    let Some((url, _db)) = fresh_database(kind).await else { return };
    let a = process::start(&url, Duration::from_secs(30)).await;
    let key = a.first_key.clone().expect("the first server prints a key");
    let b = process::start(&url, Duration::from_secs(30)).await;
    let client = hallpass_server::client_builder().timeout(Duration::from_secs(30)).build().unwrap();
    let call = |base: &str, method: Method, path: &str, token: Option<&str>, body: Option<Value>| {
        let mut rb = client.request(method, format!("{base}{path}")).bearer_auth(&key);
        if let Some(t) = token {
            rb = rb.header("x-session-token", t.to_owned());
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send()
    };
    call(&b.base, Method::POST, "/v1/users", None, Some(json!({"username": "ada", "password": PASSWORD})))
        .await
        .unwrap();
    let login = call(
        &b.base,
        Method::POST,
        "/v1/sessions",
        None,
        Some(json!({"username": "ada", "password": PASSWORD})),
    )
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    let token = login["token"].as_str().unwrap();
    let mut s = Stream::open(&client, &a.base, &key, None).await;
    let res = call(&b.base, Method::DELETE, "/v1/session", Some(token), None).await.unwrap();
    assert_eq!(res.status(), 204);
    let mut e = s.next().await;
    // A's channel may still have been connecting when the stream opened: its "anything may
    // have happened" comes first then.
    while kind != "sqlite" && e.event == "reset" && e.data["reason"] == "changes_missed" {
        e = s.next().await;
    }
    if kind == "sqlite" {
        assert_eq!((e.event.as_str(), &e.data), ("reset", &json!({"reason": "changes_missed"})));
    } else {
        assert_eq!(e.event, "session.ended", "{e:?}");
        assert_eq!(
            e.data,
            json!({"session_id": login["session"]["id"], "user_id": login["session"]["user_id"]})
        );
    }

    // SIGTERM with a stream open: the stream ends and the server exits.
    let mut a = a;
    let pid = a.child.id().unwrap();
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let status =
        tokio::time::timeout(Duration::from_secs(10), a.child.wait()).await.expect("exits in time").unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(tokio::time::timeout(WAIT, s.next_any()).await.expect("ends in time"), None);
    b.stop().await;
}

/// A fresh, empty database of `kind` and what keeps it alive; `None` to skip (outside CI).
async fn fresh_database(kind: &str) -> Option<(String, Box<dyn std::any::Any + Send>)> {
    Some(match kind {
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap();
            (format!("sqlite://{}", dir.path().join("hallpass.db").display()), Box::new(dir))
        }
        "postgres" => {
            let db = hallpass_postgres::testing::TestDb::create_unmigrated().await?;
            (db.url(), Box::new(db))
        }
        _ => {
            let db = hallpass_mysql::testing::TestDatabase::create().await?;
            (db.url().to_owned(), Box::new(db))
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_processes_sqlite() {
    across_processes("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_processes_postgres() {
    across_processes("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_processes_mysql() {
    across_processes("mysql").await;
}
