//! Webhooks with the real binary: `hallpass serve` killed (SIGKILL) in the middle of a
//! stream of registrations still delivers, after a restart, the event of every
//! registration it acknowledged; two server processes on one PostgreSQL or MariaDB
//! database share the outbox and deliver each event once; a receiver that takes 9 s per
//! request delays neither another endpoint nor mail (a real SMTP server, `smtp/sink.py`).
//! The receiver (`webhook/receiver.rs`) checks every signature itself and counts
//! `webhook-id`s.
//!
//! An unreachable PostgreSQL or MariaDB skips those tests with a notice, unless
//! `CI=true`, where they fail.

#![allow(clippy::unwrap_used)]

mod process;
#[path = "webhook/receiver.rs"]
mod receiver;
mod smtp;

use receiver::{Receiver, verifies};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const PASSWORD: &str = "quilted marsupial drumbeat 42";
/// A server secret key (32 bytes, base64) the processes share.
const SECRET_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

fn command(url: &str) -> tokio::process::Command {
    let mut c = process::command(url);
    c.env("HALLPASS_SECRET_KEY", SECRET_KEY);
    c
}

async fn call(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r =
        client.request(method, format!("{base}{path}")).bearer_auth(key).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The user ids of the `user.created` events received, each with its webhook-ids.
fn created(got: &[receiver::Received], secret: &str) -> HashMap<String, HashSet<String>> {
    let mut out: HashMap<String, HashSet<String>> = HashMap::new();
    for r in got.iter().filter(|r| r.answered == 200) {
        assert!(verifies(r, secret), "signature of {r:#?}");
        let b = r.json();
        if b["type"] == "user.created" {
            out.entry(b["data"]["user_id"].as_str().unwrap().to_owned()).or_default().insert(r.id.clone());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hallpass.db").display());
    let rx = Receiver::start().await;
    // Slow answers keep deliveries in flight when the process dies.
    rx.behaviour.delay_ms.store(200, std::sync::atomic::Ordering::SeqCst);
    let s = process::serve(command(&url), Duration::from_secs(30)).await;
    let key = s.first_key.clone().expect("first key");
    let client = hallpass_server::client_builder().build().unwrap();
    let (status, hook) = call(
        &client,
        &s.base,
        &key,
        reqwest::Method::POST,
        "/v1/webhooks",
        json!({"url": rx.url("/h"), "events": ["user.created"]}),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let mut acknowledged = Vec::new();
    for i in 0..30 {
        let (status, user) = call(
            &client,
            &s.base,
            &key,
            reqwest::Method::POST,
            "/v1/users",
            json!({"username": format!("u{i}"), "password": PASSWORD}),
        )
        .await;
        assert_eq!(status, 201, "{user}");
        acknowledged.push(user["id"].as_str().unwrap().to_owned());
    }
    s.stop().await; // SIGKILL right after the last acknowledgement
    let before = rx.received().len();
    let again = process::serve(command(&url), Duration::from_secs(30)).await;
    // Every acknowledged registration's event arrives: those queued at once, those the
    // dead process held once their lease (60 s) ends.
    let got = rx
        .wait_for(120, "the events of every acknowledged registration", |g| {
            let c = created(g, &secret);
            acknowledged.iter().all(|u| c.contains_key(u))
        })
        .await;
    let c = created(&got, &secret);
    eprintln!("received {before} before the kill, {} after", got.len() - before);
    for u in &acknowledged {
        assert_eq!(c[u].len(), 1, "one webhook-id per event, however often it came");
    }
    again.stop().await;
}

async fn two_processes_share_the_outbox(kind: &str) {
    let (url, _guard): (String, Box<dyn std::any::Any + Send>) = match kind {
        "postgres" => {
            let Some(db) = hallpass_postgres::testing::TestDb::create_unmigrated().await else { return };
            (db.url(), Box::new(db))
        }
        _ => {
            let Some(db) = hallpass_mysql::testing::TestDatabase::create().await else { return };
            (db.url().to_owned(), Box::new(db))
        }
    };
    let rx = Receiver::start().await;
    let a = process::serve(command(&url), Duration::from_secs(60)).await;
    let b = process::serve(command(&url), Duration::from_secs(60)).await;
    let key = a.first_key.clone().or(b.first_key.clone()).expect("first key");
    let client = hallpass_server::client_builder().build().unwrap();
    let (status, hook) = call(
        &client,
        &a.base,
        &key,
        reqwest::Method::POST,
        "/v1/webhooks",
        json!({"url": rx.url("/h"), "events": ["user.created"]}),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    // B reads the endpoint list again within a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut users = Vec::new();
    for i in 0..40 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let (status, user) = call(
            &client,
            base,
            &key,
            reqwest::Method::POST,
            "/v1/users",
            json!({"username": format!("u{i}"), "password": PASSWORD}),
        )
        .await;
        assert_eq!(status, 201, "{user}");
        users.push(user["id"].as_str().unwrap().to_owned());
    }
    let got = rx.wait_for(60, "forty events", |g| created(g, &secret).len() == 40).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got = if got.len() < rx.received().len() { rx.received() } else { got };
    let c = created(&got, &secret);
    assert!(
        users.iter().all(|u| c.get(u).is_some_and(|ids| ids.len() == 1)),
        "each user's event once: {c:?}"
    );
    assert_eq!(got.len(), 40, "no delivery sent twice by the two processes");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_outbox_on_postgres() {
    two_processes_share_the_outbox("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_outbox_on_mariadb() {
    two_processes_share_the_outbox("mysql").await;
}

/// One endpoint whose receiver takes 9 s to answer each delivery (under the 10 s limit),
/// another that answers at once, and a confirmation mail per registration, all caused by
/// the same registrations: the fast endpoint's deliveries and the mails arrive within a few
/// seconds, while the slow receiver has not answered a single request yet; the slow
/// deliveries still arrive, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_delays_neither_mail_nor_another_endpoint() {
    if !smtp::available() {
        return;
    }
    let sink = smtp::Sink::start(smtp::free_port(), None, None).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hallpass.db").display());
    let slow = Receiver::start().await;
    slow.behaviour.delay_ms.store(9_000, std::sync::atomic::Ordering::SeqCst);
    let fast = Receiver::start().await;
    let mut c = command(&url);
    c.env("HALLPASS_SMTP_URL", sink.url())
        .env("HALLPASS_PUBLIC_URL", "https://auth.example.test")
        .env("HALLPASS_REQUIRE_CONFIRMATION", "true");
    let s = process::serve(c, Duration::from_secs(30)).await;
    let key = s.first_key.clone().expect("first key");
    let client = hallpass_server::client_builder().build().unwrap();
    let (mut secrets, mut ids) = (Vec::new(), Vec::new());
    for rx in [&slow, &fast] {
        let body = json!({"url": rx.url("/h"), "events": ["user.created"]});
        let (status, hook) = call(&client, &s.base, &key, reqwest::Method::POST, "/v1/webhooks", body).await;
        assert_eq!(status, 201, "{hook}");
        secrets.push(hook["secret"].as_str().unwrap().to_owned());
        ids.push(hook["id"].as_str().unwrap().to_owned());
    }

    // As many registrations as the slow endpoint takes at once (4 per endpoint): every
    // one of its deliveries is stuck in a 9 s answer.
    let started = std::time::Instant::now();
    for i in 0..4 {
        let body =
            json!({"username": format!("u{i}"), "email": format!("u{i}@example.test"), "password": PASSWORD});
        let (status, user) = call(&client, &s.base, &key, reqwest::Method::POST, "/v1/users", body).await;
        assert_eq!(status, 201, "{user}");
    }
    let got = fast.wait_for(8, "the fast endpoint's deliveries", |g| g.len() == 4).await;
    let fast_at = started.elapsed();
    let mails = sink.wait_for(4, Duration::from_secs(8)).await;
    let mail_at = started.elapsed();
    eprintln!("the fast endpoint had all after {fast_at:?}, the mails after {mail_at:?}");
    assert!(slow.received().is_empty(), "the slow receiver has answered nothing yet");
    let path = format!("/v1/webhooks/{}/deliveries", ids[0]);
    let (_, log) = call(&client, &s.base, &key, reqwest::Method::GET, &path, Value::Null).await;
    let states: Vec<&str> =
        log["deliveries"].as_array().unwrap().iter().map(|d| d["status"].as_str().unwrap()).collect();
    assert_eq!(states, ["sending"; 4], "all four are at the slow receiver meanwhile: {log}");
    // Generous bounds, well below the slow receiver's 9 s.
    assert!(fast_at < Duration::from_secs(5), "the fast endpoint waited for the slow one: {fast_at:?}");
    assert!(mail_at < Duration::from_secs(5), "the mail waited for the slow endpoint: {mail_at:?}");
    assert_eq!(mails.len(), 4);
    assert!(got.iter().all(|r| verifies(r, &secrets[1])));

    let done = slow.wait_for(40, "the slow endpoint's deliveries", |g| g.len() == 4).await;
    assert!(done.iter().all(|r| r.answered == 200 && verifies(r, &secrets[0])));
    let ids: HashSet<&str> = done.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 4, "each delivery once");
    s.stop().await;
}
