//! Webhooks with the real binary: `hallpass serve` killed (SIGKILL) in the middle of a
//! stream of registrations still delivers, after a restart, the event of every
//! registration it acknowledged; two server processes on one PostgreSQL or MariaDB
//! database share the outbox and deliver each event once. The receiver
//! (`webhook/receiver.rs`) checks every signature itself and counts `webhook-id`s.
//!
//! An unreachable PostgreSQL or MariaDB skips those tests with a notice, unless
//! `CI=true`, where they fail.

#![allow(clippy::unwrap_used)]

mod process;
#[path = "webhook/receiver.rs"]
mod receiver;

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
