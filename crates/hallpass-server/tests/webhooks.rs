//! Webhooks end to end, in process: the API of endpoints, the worker delivering to a real
//! receiver on 127.0.0.1 that checks every signature itself (`webhook/receiver.rs`), each
//! event type, retries of a failing receiver, a receiver that is down, rotation, a slow
//! endpoint beside a fast one, and payloads without secrets.

// clippy.toml allows unwrap in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;
#[path = "webhook/receiver.rs"]
mod receiver;
#[path = "passkey/softkey.rs"]
mod softkey;

use common::*;
use receiver::{Receiver, verifies};
use serde_json::json;
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;

/// A server secret (webhook secrets, TOTP secrets), scope `app`'s passkey relying party, and
/// mail on (queued in the outbox; no mail worker runs, so a test reads a code from there).
fn with_key() -> Options {
    let mut settings = common::settings();
    settings.mail = true;
    let app = hallpass_core::ScopeSettings { webauthn: Some(softkey::relying_party()), ..Default::default() };
    settings.scopes.insert("app".into(), app);
    Options { settings, server_secret: true, ..Default::default() }
}

/// The current code of a TOTP enrolment's base32 secret, by the app's clock.
fn totp_code(app: &TestApp, secret: &str) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).unwrap().as_bytes().to_vec();
    let now = u64::try_from(app.now().unix_timestamp()).unwrap();
    hallpass_core::mfa::totp(&bytes, 6, "x", "x").unwrap().generate(now).to_string()
}

/// Registers a passkey for the user; its id and the credential id (base64url) the
/// authenticator made.
async fn add_passkey(app: &TestApp, uid: &str, key: &mut softkey::SoftKey) -> (String, String) {
    let start = app.post(&format!("/v1/users/{uid}/passkeys/register/start"), json!({})).await.ok(200);
    let credential = key.register(&start["options"]).await;
    let body = json!({"flow": start["flow"], "credential": credential, "name": "Laptop"});
    let added = app.post(&format!("/v1/users/{uid}/passkeys/register/finish"), body).await.ok(201);
    (added["id"].as_str().unwrap().to_owned(), credential["id"].as_str().unwrap().to_owned())
}

/// Starts the webhook worker on the app; it stops when the guard is dropped.
fn worker(app: &TestApp) -> tokio::sync::watch::Sender<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let options = hallpass_server::webhooks::WebhookOptions {
        refuse_private: false,
        per_endpoint: 4,
        keep_sent: time::Duration::days(7),
    };
    hallpass_server::webhooks::spawn_worker(options, app.service.clone(), rx);
    tx
}

async fn endpoint(app: &TestApp, url: &str, events: &[&str]) -> (String, String) {
    let b =
        app.post("/v1/webhooks", json!({"url": url, "events": events, "description": "test"})).await.ok(201);
    let secret = b["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{b}");
    (b["id"].as_str().unwrap().to_owned(), secret)
}

const ALL: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deleted",
    "user.deactivated",
    "user.reactivated",
    "login.succeeded",
    "login.failed",
    "session.ended",
    "password.changed",
    "password.reset",
    "email.confirmed",
    "identity.linked",
    "identity.unlinked",
    "mfa.enabled",
    "mfa.disabled",
    "passkey.added",
    "passkey.removed",
];

async fn each_event_type_is_signed_and_carries_no_secret(app: TestApp) {
    let rx = Receiver::start().await;
    let _stop = worker(&app);
    let (id, secret) = endpoint(&app, &rx.url("/all"), ALL).await;
    let (_, other_secret) = endpoint(&app, &rx.url("/logins"), &["login.succeeded"]).await;

    let (pw, pw2) = ("correct horse battery staple", "another long passphrase 42");
    let user = app.register("alice", pw).await;
    let uid = user["id"].as_str().unwrap().to_owned();
    let token = app.login("alice", pw).await;
    let second = app.login("alice", pw).await;
    app.with_token(reqwest::Method::DELETE, "/v1/session", &second, None).await.no_content();
    app.post("/v1/sessions", json!({"username": "alice", "password": "wrong password!"}))
        .await
        .problem(401, "invalid_credentials");
    app.post("/v1/sessions", json!({"username": "nobody", "password": "wrong password!"}))
        .await
        .problem(401, "invalid_credentials");
    app.patch(&format!("/v1/users/{uid}"), json!({"extra": {"plan": "pro"}})).await.ok(200);
    app.patch(&format!("/v1/users/{uid}"), json!({"active": false})).await.ok(200);
    app.patch(&format!("/v1/users/{uid}"), json!({"active": true})).await.ok(200);
    app.put(&format!("/v1/users/{uid}/password"), json!({"password": pw2})).await.no_content();
    let reset = app.post("/v1/password-resets", json!({"login": "alice"})).await.ok(201);
    let code = reset["code"].as_str().unwrap().to_owned();
    let pw3 = "a third quite long passphrase 7";
    app.post("/v1/password-resets/redeem", json!({"code": code, "password": pw3})).await.ok(200);

    // A provider link and its removal.
    let provider_token = "gho_provider_access_token_1234567890";
    let link = json!({"client_id": "gh-4242", "access_token": provider_token});
    app.put(&format!("/v1/users/{uid}/providers/github"), link).await.ok(200);
    app.delete(&format!("/v1/users/{uid}/providers/github")).await.no_content();

    // Second factors: a TOTP (mfa.enabled), a passkey beside it (passkey.added only), the
    // TOTP removed (the passkey stays: nothing disabled), the last passkey removed
    // (passkey.removed, mfa.disabled), a passkey again (passkey.added, mfa.enabled), and
    // every factor removed (passkey.removed, mfa.disabled).
    let enrolled = app.post(&format!("/v1/users/{uid}/mfa/totp"), json!({})).await.ok(200);
    let totp_secret = enrolled["secret"].as_str().unwrap().to_owned();
    let code_now = totp_code(&app, &totp_secret);
    let confirmed =
        app.post(&format!("/v1/users/{uid}/mfa/totp/confirm"), json!({"code": code_now})).await.ok(200);
    let recovery: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let mut key = softkey::SoftKey::default();
    let (first_passkey, first_credential) = add_passkey(&app, &uid, &mut key).await;
    app.delete(&format!("/v1/users/{uid}/mfa/totp")).await.no_content();
    let left = app.get(&format!("/v1/users/{uid}/passkeys")).await.ok(200);
    assert_eq!(
        left["passkeys"].as_array().map(Vec::len),
        Some(1),
        "removing the TOTP keeps the passkey: {left}"
    );
    app.delete(&format!("/v1/users/{uid}/passkeys/{first_passkey}")).await.no_content();
    let mut key = softkey::SoftKey::default();
    let (second_passkey, second_credential) = add_passkey(&app, &uid, &mut key).await;
    app.delete(&format!("/v1/users/{uid}/mfa")).await.no_content();

    app.delete(&format!("/v1/users/{uid}")).await.no_content();

    // An email confirmed: its code read from the queued mail (no mail worker runs here).
    let cora = app
        .post("/v1/users", json!({"username": "cora", "email": "cora@example.com", "password": pw}))
        .await
        .ok(201);
    app.post("/v1/users/cora/confirmation", json!({})).await.ok(202);
    let mails = app.service.outbox_list(None, 100).await.unwrap();
    let confirm_code = mails
        .iter()
        .filter(|m| m.kind == hallpass_core::OutboxKind::Mail)
        .find_map(|m| m.payload["code"].as_str().map(str::to_owned))
        .expect("the confirmation mail is queued with its code");
    let confirmed_user = app.post("/v1/confirmations/redeem", json!({"code": confirm_code})).await.ok(200);
    assert_eq!(confirmed_user["confirmed"], true);

    // Every type of the contract.
    let expected: BTreeSet<&str> = ALL.iter().copied().collect();
    // 12 of the user and session events, the link and unlink, 8 of second factors, and
    // cora's registration and confirmation.
    const COUNT: usize = 24;
    let got = rx
        .wait_for(20, "every event", |g| {
            g.iter().filter(|r| r.path == "/all").count() >= COUNT
                && g.iter().filter(|r| r.path == "/logins").count() >= 2
        })
        .await;
    let all: Vec<_> = got.iter().filter(|r| r.path == "/all").collect();
    assert_eq!(all.len(), COUNT, "{all:#?}");
    let types: BTreeSet<String> = all.iter().map(|r| r.event_type()).collect();
    assert_eq!(types, expected.iter().map(|s| s.to_string()).collect());
    let ids: HashSet<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), COUNT, "one webhook-id per delivery");
    for r in &all {
        assert!(verifies(r, &secret), "signature of {r:#?}");
        assert!(!verifies(r, &other_secret), "another endpoint's secret must not verify");
        let b = r.json();
        assert!(b["timestamp"].as_str().is_some(), "{b}");
        assert_eq!(b["data"]["scope"], "app", "{b}");
        for secret_text in [
            pw,
            pw2,
            pw3,
            &code,
            &token,
            &second,
            &secret,
            &other_secret,
            &app.key,
            "$argon2",
            "hash",
            provider_token,
            &totp_secret,
            &code_now,
            &confirm_code,
            &first_credential,
            &second_credential,
            "whsec_",
            "hp1.",
        ]
        .into_iter()
        .chain(recovery.iter().map(String::as_str))
        {
            assert!(!r.body.contains(secret_text), "{} carries a secret: {}", r.event_type(), r.body);
        }
    }
    let login = all.iter().find(|r| r.event_type() == "login.succeeded").unwrap().json();
    assert_eq!(login["data"]["user_id"], uid.as_str());
    assert_eq!(login["data"]["username"], "alice");
    assert!(login["data"]["session_id"].is_string());
    let failed: Vec<_> = all.iter().filter(|r| r.event_type() == "login.failed").map(|r| r.json()).collect();
    let reasons: BTreeSet<String> =
        failed.iter().map(|b| b["data"]["reason"].as_str().unwrap().to_owned()).collect();
    assert_eq!(reasons, ["unknown_user", "wrong_password"].iter().map(|s| s.to_string()).collect());
    let updated = all.iter().find(|r| r.event_type() == "user.updated").unwrap().json();
    assert_eq!(updated["data"]["changed"], json!(["extra"]));
    let logins = got.iter().filter(|r| r.path == "/logins").count();
    assert_eq!(logins, 2, "the second endpoint wants logins only");
    let confirmed_event = all.iter().find(|r| r.event_type() == "email.confirmed").unwrap().json();
    assert_eq!(confirmed_event["data"]["user_id"], cora["id"], "{confirmed_event}");
    assert_eq!(confirmed_event["data"]["email"], "cora@example.com", "{confirmed_event}");
    let ended = all.iter().find(|r| r.event_type() == "session.ended").unwrap().json();
    assert_eq!(ended["data"]["reason"], "logout", "{ended}");

    // What the factor and link events say, in the order they happened.
    let of = |t: &str| -> Vec<serde_json::Value> {
        let mut v: Vec<_> = all.iter().filter(|r| r.event_type() == t).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v.into_iter().map(|r| r.json()["data"].clone()).collect()
    };
    let linked = of("identity.linked");
    assert_eq!(linked.len(), 1, "{linked:?}");
    assert_eq!((&linked[0]["provider"], &linked[0]["subject"]), (&json!("github"), &json!("gh-4242")));
    assert_eq!((&linked[0]["user_id"], &linked[0]["username"]), (&json!(uid), &json!("alice")));
    let unlinked = of("identity.unlinked");
    assert_eq!((unlinked.len(), &unlinked[0]["provider"]), (1, &json!("github")), "{unlinked:?}");
    let methods: Vec<_> = of("mfa.enabled").iter().map(|d| d["method"].clone()).collect();
    assert_eq!(methods, [json!("totp"), json!("passkey")], "enabled when the first factor came");
    let removed: Vec<_> = of("mfa.disabled").iter().map(|d| d["removed"].clone()).collect();
    assert_eq!(removed, [json!("passkey"), json!("all")], "disabled when the last factor went");
    let added: Vec<_> = of("passkey.added").iter().map(|d| d["passkey_id"].clone()).collect();
    assert_eq!(added, [json!(first_passkey), json!(second_passkey)]);
    let gone: Vec<_> = of("passkey.removed").iter().map(|d| d["passkey_id"].clone()).collect();
    assert_eq!(gone, [json!(first_passkey), json!(second_passkey)]);
    assert!(of("passkey.added").iter().all(|d| d["name"] == "Laptop" && d["username"] == "alice"));

    // The delivery log tells the same.
    // (The receiver has them before the worker has recorded its answers.)
    let mut log = json!(null);
    for _ in 0..100 {
        log = app.get(&format!("/v1/webhooks/{id}/deliveries")).await.ok(200);
        if log["deliveries"].as_array().unwrap().iter().all(|d| d["status"] == "sent") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), COUNT, "{log}");
    for d in deliveries {
        assert_eq!(d["status"], "sent", "{d}");
        assert_eq!(d["attempts"], 1, "{d}");
        assert_eq!(d["last_status_code"], 200, "{d}");
        assert!(d["response_ms"].is_u64(), "{d}");
        assert!(ids.contains(d["id"].as_str().unwrap()), "{d}");
    }
    let sent = app.get(&format!("/v1/webhooks/{id}/deliveries?status=failed")).await.ok(200);
    assert_eq!(sent["deliveries"], json!([]));
}

backend_tests! {
    each_event_type_is_signed_and_carries_no_secret with with_key(),
}

/// Moves the fake clock on until `done`, telling the worker each time.
async fn advance_until(
    app: &TestApp,
    rx: &Receiver,
    step: time::Duration,
    done: impl Fn(&[receiver::Received]) -> bool,
) {
    for _ in 0..200 {
        if done(&rx.received()) {
            return;
        }
        app.clock.advance(step);
        app.service.webhook_signal().notify_one();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("never done: {:#?}", rx.received());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_is_retried_until_it_takes_the_delivery() {
    let app = TestApp::start_with(with_key()).await;
    let rx = Receiver::start().await;
    rx.behaviour.fail_first.store(2, Ordering::SeqCst);
    let _stop = worker(&app);
    let (id, secret) = endpoint(&app, &rx.url("/h"), &["user.created"]).await;
    app.register("bob", "correct horse battery staple").await;
    advance_until(&app, &rx, time::Duration::seconds(5), |g| g.iter().any(|r| r.answered == 200)).await;
    let got = rx.received();
    assert_eq!(got.iter().map(|r| r.answered).collect::<Vec<_>>(), [500, 500, 200]);
    let ids: HashSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 1, "the same webhook-id on every attempt");
    assert!(got.iter().all(|r| verifies(r, &secret)));
    assert!(got.windows(2).all(|w| w[0].body == w[1].body), "the same body every time");
    let mut d = json!(null);
    for _ in 0..100 {
        d = app.get(&format!("/v1/webhooks/{id}/deliveries")).await.ok(200)["deliveries"][0].clone();
        if d["status"] == "sent" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("sent"), Some(3)), "{d}");
    assert_eq!(d["last_error"], "HTTP 500", "{d}");
    // `/metrics` counts it per endpoint.
    // (Read directly: the harness refuses bodies naming `password_hash`, a store call's name.)
    let m = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = |state: &str| {
        m.lines()
            .find(|l| {
                l.starts_with("hallpass_webhook_deliveries{")
                    && l.contains(&id)
                    && l.contains(&format!("state=\"{state}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
    };
    assert_eq!(line("sent").as_deref(), Some("1"), "{m}");
    assert_eq!(line("queued").as_deref(), Some("0"), "{m}");
    assert!(m.contains("hallpass_webhook_oldest_pending_seconds{"), "{m}");
    // Nothing more comes.
    app.clock.advance(time::Duration::hours(2));
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(rx.received().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_gets_it_when_back_and_a_waiting_delivery_can_be_retried_by_hand() {
    let app = TestApp::start_with(with_key()).await;
    let rx = Receiver::start().await;
    rx.stop();
    let _stop = worker(&app);
    let (id, secret) = endpoint(&app, &rx.url("/h"), &["user.created"]).await;
    app.register("carol", "correct horse battery staple").await;
    // The first attempt fails (connection refused) and the delivery waits.
    let path = format!("/v1/webhooks/{id}/deliveries");
    let mut d = json!(null);
    for _ in 0..100 {
        d = app.get(&path).await.ok(200)["deliveries"][0].clone();
        if d["attempts"] == 1 && d["status"] == "queued" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("queued"), Some(1)), "{d}");
    assert_eq!(d["last_error"], "cannot connect", "{d}");
    assert!(d["last_status_code"].is_null(), "{d}");
    rx.restart().await;
    // Retried by hand: due now, attempts from zero, delivered without moving the clock.
    let delivery = d["id"].as_str().unwrap();
    let r = app.post(&format!("/v1/webhooks/{id}/deliveries/{delivery}/retry"), json!({})).await.ok(200);
    assert_eq!((r["status"].as_str(), r["attempts"].as_u64()), (Some("queued"), Some(0)), "{r}");
    let got = rx.wait_for(10, "the retried delivery", |g| !g.is_empty()).await;
    assert_eq!(got[0].id, delivery);
    assert!(verifies(&got[0], &secret));
    // A delivered one is not retried; unknown ones are 404.
    for _ in 0..100 {
        if app.get(&path).await.ok(200)["deliveries"][0]["status"] == "sent" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.post(&format!("/v1/webhooks/{id}/deliveries/{delivery}/retry"), json!({}))
        .await
        .problem(400, "invalid_request");
    let unknown = uuid::Uuid::now_v7();
    app.post(&format!("/v1/webhooks/{id}/deliveries/{unknown}/retry"), json!({}))
        .await
        .problem(404, "delivery_not_found");
    app.post(&format!("/v1/webhooks/{unknown}/deliveries/{delivery}/retry"), json!({}))
        .await
        .problem(404, "webhook_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_both_secrets_sign() {
    let app = TestApp::start_with(with_key()).await;
    let rx = Receiver::start().await;
    let _stop = worker(&app);
    let (id, old) = endpoint(&app, &rx.url("/h"), &["user.created"]).await;
    let rotated = app.post(&format!("/v1/webhooks/{id}/rotate-secret"), json!({})).await.ok(200);
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_until"].is_string(), "{rotated}");
    app.register("dave", "correct horse battery staple").await;
    let got = rx.wait_for(10, "a delivery", |g| !g.is_empty()).await;
    assert!(verifies(&got[0], &old) && verifies(&got[0], &new), "{:?}", got[0].signature);
    assert_eq!(got[0].signature.split(' ').count(), 2);
    // After the overlap only the new one signs.
    app.clock.advance(time::Duration::hours(25));
    app.register("erin", "correct horse battery staple").await;
    let got = rx.wait_for(10, "a second delivery", |g| g.len() == 2).await;
    assert!(verifies(&got[1], &new) && !verifies(&got[1], &old));
    let listed = app.get(&format!("/v1/webhooks/{id}")).await.ok(200);
    assert!(listed.get("previous_secret_until").is_none(), "{listed}");
    assert!(!listed.to_string().contains("whsec_"), "no secret in a listing: {listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_does_not_hold_back_another() {
    let app = TestApp::start_with(with_key()).await;
    let slow = Receiver::start().await;
    slow.behaviour.delay_ms.store(4000, Ordering::SeqCst);
    let fast = Receiver::start().await;
    let _stop = worker(&app);
    endpoint(&app, &slow.url("/slow"), &["login.failed"]).await;
    endpoint(&app, &fast.url("/fast"), &["login.failed"]).await;
    let started = std::time::Instant::now();
    for i in 0..12 {
        app.post("/v1/sessions", json!({"username": format!("nobody{i}"), "password": "wrong password!"}))
            .await
            .problem(401, "invalid_credentials");
    }
    fast.wait_for(10, "all twelve at the fast endpoint", |g| g.len() == 12).await;
    let elapsed = started.elapsed();
    assert!(slow.received().len() < 12, "the slow one is still busy");
    assert!(
        elapsed < std::time::Duration::from_secs(4),
        "the fast endpoint waited for the slow one: {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_what_it_cannot_keep() {
    // Without a server secret key there is nowhere safe to keep a signing secret.
    let bare = TestApp::start().await;
    bare.post("/v1/webhooks", json!({"url": "http://127.0.0.1:9/h", "events": ["user.created"]}))
        .await
        .problem(400, "secret_key_not_configured");

    let app = TestApp::start_with(with_key()).await;
    for (body, what) in [
        (json!({"url": "ftp://example.com/h", "events": ["user.created"]}), "scheme"),
        (json!({"url": "not a url", "events": ["user.created"]}), "url"),
        (json!({"url": "http://user:pw@example.com/h", "events": ["user.created"]}), "credentials"),
        (json!({"url": "https://example.com/h", "events": []}), "no events"),
        (json!({"url": "https://example.com/h", "events": ["user.exploded"]}), "unknown event"),
        (json!({"url": "https://example.com/h", "events": ["user.created"], "extra": 1}), "unknown field"),
    ] {
        let p = app.post("/v1/webhooks", body).await;
        assert_eq!(p.status.as_u16(), 400, "{what}: {}", p.text);
    }
    let (id, _) = endpoint(&app, "https://example.com/h", &["user.created", "login.failed"]).await;
    let listed = app.get("/v1/webhooks").await.ok(200);
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1);
    assert_eq!(listed["webhooks"][0]["events"], json!(["user.created", "login.failed"]));
    let changed = app
        .patch(&format!("/v1/webhooks/{id}"), json!({"events": ["mfa.enabled"], "description": null}))
        .await
        .ok(200);
    assert_eq!(changed["events"], json!(["mfa.enabled"]));
    assert!(changed["description"].is_null());
    app.get(&format!("/v1/webhooks/{id}/deliveries?status=bogus")).await.problem(400, "invalid_request");
    // Another scope sees none of it.
    let other = app.key_for("other").await;
    let res = app.send(app.client.get(app.url(&format!("/v1/webhooks/{id}"))).bearer_auth(&other)).await;
    res.problem(404, "webhook_not_found");
    app.get("/v1/webhooks/not-a-uuid").await.problem(404, "webhook_not_found");
    app.delete(&format!("/v1/webhooks/{id}")).await.no_content();
    app.delete(&format!("/v1/webhooks/{id}")).await.problem(404, "webhook_not_found");
}

/// A receiver that never takes a delivery: each attempt fails, the next waits on the
/// backoff schedule (the test moves the clock to each `next_attempt_at`), and the 36th
/// failure, about a day after the first, ends it `failed`: kept in the log with its error,
/// attempted no more, and still retried by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_never_taken_fails_after_about_a_day_and_is_kept() {
    let app = TestApp::start_with(with_key()).await;
    let rx = Receiver::start().await;
    rx.stop();
    let _stop = worker(&app);
    let (id, _) = endpoint(&app, &rx.url("/h"), &["user.created"]).await;
    app.register("erin", "correct horse battery staple").await;
    let path = format!("/v1/webhooks/{id}/deliveries");
    let first = app.now();
    let mut d = json!(null);
    for attempt in 1..=u64::from(hallpass_core::webhook::MAX_ATTEMPTS) {
        for _ in 0..200 {
            d = app.get(&path).await.ok(200)["deliveries"][0].clone();
            if d["attempts"] == attempt && d["status"] != "sending" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(d["attempts"], attempt, "{d}");
        if d["status"] == "failed" {
            break;
        }
        assert_eq!(d["status"], "queued", "{d}");
        let next = time::OffsetDateTime::parse(
            d["next_attempt_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert!(next > app.now(), "the next attempt waits: {d}");
        app.clock.set(next + time::Duration::seconds(1));
    }
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(36)), "{d}");
    assert_eq!(d["last_error"], "cannot connect", "{d}");
    assert!(d["next_attempt_at"].is_null(), "a failed delivery is attempted no more: {d}");
    // The waits are the backoff schedule, each scaled by a jitter of 0.5 to 1.0 (plus the
    // second the test adds per step): about a day at most, never less than half of it.
    let span = app.now() - first;
    let schedule = |jitter: f64| -> time::Duration {
        (1..hallpass_core::webhook::MAX_ATTEMPTS)
            .map(|a| hallpass_core::webhook::retry_delay(a, jitter))
            .sum()
    };
    let (least, most) = (schedule(0.5), schedule(1.0) + time::Duration::seconds(36));
    assert!(most > time::Duration::hours(20), "about a day: {most}");
    assert!(span >= least && span <= most, "gave up after {span}, not between {least} and {most}");
    // Kept, and retried by hand: the receiver, back, gets it.
    app.clock.advance(time::Duration::hours(2));
    assert_eq!(app.get(&path).await.ok(200)["deliveries"][0]["status"], "failed");
    rx.restart().await;
    let delivery = d["id"].as_str().unwrap();
    app.post(&format!("/v1/webhooks/{id}/deliveries/{delivery}/retry"), json!({})).await.ok(200);
    let got = rx.wait_for(10, "the delivery retried by hand", |g| !g.is_empty()).await;
    assert_eq!(got[0].id, delivery);
}
