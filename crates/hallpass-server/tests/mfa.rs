//! Second factors over the HTTP API, on every backend: TOTP enrolment and confirmation,
//! the MFA challenge of a password login, replayed and guessed codes, recovery codes (used
//! once, also when raced, regenerated), removal (audited, sessions ended); and on
//! PostgreSQL, one TOTP code offered through two connection pools at once.
//!
//! TOTP codes are computed here from the secret the API shows, by an RFC 6238
//! implementation of this file's own (HMAC-SHA-1 over the `sha1` crate), checked first
//! against the RFC's test vectors: the server's implementation is not asked what it
//! would accept.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::TestApp;
use hallpass_core::service::{Credentials, LoginRequest, MfaProof};
use hallpass_core::{Error, FakeClock, Hallpass, Password, Scope, ServerSecret, UserRef};
use reqwest::Method;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

backend_tests! {
    totp_enrolment_challenge_and_replay with keyed(),
    recovery_codes_once_and_regenerated with keyed(),
    wrong_answers_end_the_challenge with keyed(),
    concurrent_uses_of_one_recovery_code with keyed(),
    removing_factors_ends_sessions_and_is_audited with keyed(),
    require_mfa_asks_users_without_a_factor_to_enrol with require_mfa(),
    a_challenge_keeps_its_secrets_sealed with keyed(),
    without_a_server_key_totp_is_refused,
    a_device_is_known_only_once_the_second_factor_is_answered with keyed(),
}

/// The app with a server secret key (TOTP secrets are sealed with it).
fn keyed() -> common::Options {
    common::Options { server_secret: true, ..Default::default() }
}

fn require_mfa() -> common::Options {
    let mut settings = common::settings();
    settings
        .scopes
        .insert("app".into(), hallpass_core::ScopeSettings { require_mfa: true, ..Default::default() });
    common::Options { settings, server_secret: true, ..Default::default() }
}

async fn without_a_server_key_totp_is_refused(app: TestApp) {
    app.register("jo", "correct horse battery staple").await;
    app.post("/v1/users/jo/mfa/totp", json!({})).await.problem(400, "secret_key_not_configured");
}

async fn require_mfa_asks_users_without_a_factor_to_enrol(app: TestApp) {
    app.register("ivan", "correct horse battery staple").await;
    let body = app
        .post("/v1/sessions", json!({"username": "ivan", "password": "correct horse battery staple"}))
        .await
        .ok(201);
    assert_eq!(body["login"]["mfa_enrollment_required"], true);
    // Enrolment does not depend on the policy; with a factor, the login is challenged and
    // the enrolment no longer asked for.
    let enrolled = app.post("/v1/users/ivan/mfa/totp", json!({})).await.ok(200);
    let secret = base32_decode(enrolled["secret"].as_str().unwrap());
    app.post("/v1/users/ivan/mfa/totp/confirm", json!({"code": code(&app, &secret)})).await.ok(200);
    app.clock.advance(Duration::seconds(30));
    let c = challenge(&app, "ivan").await;
    let done = answer(&app, &c, "totp", &code(&app, &secret)).await.ok(201);
    assert_eq!(done["login"]["mfa_enrollment_required"], false);
}

// ---------------------------------------------------------------- RFC 6238, independently

fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner = Sha1::new().chain_update(k.map(|b| b ^ 0x36)).chain_update(msg).finalize();
    Sha1::new().chain_update(k.map(|b| b ^ 0x5c)).chain_update(inner).finalize().into()
}

/// The TOTP code of `secret` at Unix time `t` with `digits` digits (SHA-1, 30 s).
fn totp_at(secret: &[u8], t: i64, digits: u32) -> String {
    let mac = hmac_sha1(secret, &((t / 30) as u64).to_be_bytes());
    let offset = usize::from(mac[19] & 0x0f);
    let bin = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    format!("{:0width$}", bin % 10u32.pow(digits), width = digits as usize)
}

fn base32_decode(s: &str) -> Vec<u8> {
    let (mut bits, mut acc, mut out) = (0u32, 0u64, Vec::new());
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {s}"),
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn the_test_generator_meets_rfc6238() {
    let secret = b"12345678901234567890";
    for (t, code) in [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ] {
        assert_eq!(totp_at(secret, t, 8), code, "at {t}");
    }
    assert_eq!(base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), secret);
}

// ---------------------------------------------------------------- helpers

fn code(app: &TestApp, secret: &[u8]) -> String {
    totp_at(secret, app.now().unix_timestamp(), 6)
}

/// Registers `name` with a confirmed TOTP; answers the secret and the recovery codes.
async fn with_totp(app: &TestApp, name: &str) -> (Vec<u8>, Vec<String>) {
    app.register(name, "correct horse battery staple").await;
    let enrolled = app.post(&format!("/v1/users/{name}/mfa/totp"), json!({})).await.ok(200);
    let secret = base32_decode(enrolled["secret"].as_str().unwrap());
    let confirmed = app
        .post(&format!("/v1/users/{name}/mfa/totp/confirm"), json!({"code": code(app, &secret)}))
        .await
        .ok(200);
    let codes =
        confirmed["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned());
    // The confirming code's step is used: the next code comes from the next step.
    app.clock.advance(Duration::seconds(30));
    (secret, codes.collect())
}

/// A password login of `name` that must answer a challenge; answers the challenge.
async fn challenge(app: &TestApp, name: &str) -> String {
    let body = app
        .post("/v1/sessions", json!({"username": name, "password": "correct horse battery staple"}))
        .await
        .ok(200);
    assert_eq!(body["mfa_required"], true, "{body}");
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    assert!(body.get("token").is_none(), "no session before the second factor: {body}");
    body["challenge"].as_str().unwrap().to_owned()
}

async fn answer(app: &TestApp, challenge: &str, factor: &str, value: &str) -> common::Res {
    app.post("/v1/sessions/mfa", json!({"challenge": challenge, factor: value})).await
}

async fn events(app: &TestApp, name: &str) -> Vec<(String, String)> {
    let body = app.get(&format!("/v1/users/{name}/logins?limit=100")).await.ok(200);
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["method"].as_str().unwrap().to_owned(), e["outcome"].as_str().unwrap().to_owned()))
        .collect()
}

// ---------------------------------------------------------------- the tests

async fn totp_enrolment_challenge_and_replay(app: TestApp) {
    app.register("alice", "correct horse battery staple").await;
    let kept = app.login("alice", "correct horse battery staple").await;
    let other = app.login("alice", "correct horse battery staple").await;

    // Enrolment: a pending secret and a URI an authenticator app reads.
    app.post("/v1/users/alice/mfa/totp/confirm", json!({"code": "123456"}))
        .await
        .problem(409, "mfa_not_enabled");
    let enrolled = app.post("/v1/users/alice/mfa/totp", json!({})).await.ok(200);
    let secret_text = enrolled["secret"].as_str().unwrap();
    let uri = enrolled["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret_text}")) && uri.contains("issuer=app"), "{uri}");
    let secret = base32_decode(secret_text);
    assert_eq!(secret.len(), 20, "160-bit secrets");
    // Pending: logins still make sessions.
    app.post("/v1/sessions", json!({"username": "alice", "password": "correct horse battery staple"}))
        .await
        .ok(201);

    // A wrong first code is refused; the right one confirms and gives ten recovery codes.
    let wrong = if code(&app, &secret) == "000000" { "111111" } else { "000000" };
    app.post("/v1/users/alice/mfa/totp/confirm", json!({"code": wrong})).await.problem(400, "invalid_code");
    let first = code(&app, &secret);
    let confirmed = app
        .send(
            app.req(Method::POST, "/v1/users/alice/mfa/totp/confirm")
                .header("X-Session-Token", &kept)
                .json(&json!({"code": first})),
        )
        .await
        .ok(200);
    assert_eq!(confirmed["recovery_codes"].as_array().unwrap().len(), 10);
    app.post("/v1/users/alice/mfa/totp", json!({})).await.problem(409, "mfa_already_enabled");
    // Adding a factor ended the other sessions, not the caller's.
    app.with_token(Method::GET, "/v1/session", &kept, None).await.ok(200);
    app.with_token(Method::GET, "/v1/session", &other, None).await.problem(401, "session_invalid");

    // A password login now answers a challenge; the confirming code's step is spent.
    let c = challenge(&app, "alice").await;
    answer(&app, &c, "totp", &first).await.problem(401, "invalid_factor");
    app.clock.advance(Duration::seconds(30));
    let now_code = code(&app, &secret);
    let done = answer(&app, &c, "totp", &now_code).await.ok(201);
    let token = done["token"].as_str().unwrap();
    assert_eq!(done["login"]["username"], "alice");
    assert_eq!(done["login"]["recovery_codes_remaining"], Value::Null);
    assert_eq!((&done["session"]["aal"], &done["session"]["amr"]), (&json!(2), &json!(["pwd", "otp"])));
    let checked = app.with_token(Method::GET, "/v1/session", token, None).await.ok(200);
    assert_eq!((&checked["session"]["aal"], &checked["session"]["amr"]), (&json!(2), &json!(["pwd", "otp"])));
    let one_factor = app.with_token(Method::GET, "/v1/session", &kept, None).await.ok(200);
    assert_eq!((&one_factor["session"]["aal"], &one_factor["session"]["amr"]), (&json!(1), &json!(["pwd"])));
    // The challenge was single use; the code is spent for a new challenge too.
    answer(&app, &c, "totp", &now_code).await.problem(400, "invalid_challenge");
    let c2 = challenge(&app, "alice").await;
    answer(&app, &c2, "totp", &now_code).await.problem(401, "invalid_factor");
    // One step either side is accepted, once: the previous step was used, the next one is
    // still good.
    let next = totp_at(&secret, app.now().unix_timestamp() + 30, 6);
    answer(&app, &c2, "totp", &next).await.ok(201);
    // A challenge of one scope is nothing in another.
    let c3 = challenge(&app, "alice").await;
    let other_key = app.key_for("other").await;
    let r = app
        .send(
            app.client
                .post(app.url("/v1/sessions/mfa"))
                .bearer_auth(&other_key)
                .json(&json!({"challenge": c3, "totp": "123456"})),
        )
        .await;
    r.problem(400, "invalid_challenge");
    // Exactly one factor.
    app.post("/v1/sessions/mfa", json!({"challenge": c3})).await.problem(400, "invalid_request");

    let events = events(&app, "alice").await;
    assert!(events.contains(&("password+totp".into(), "success".into())), "{events:?}");
    assert!(events.contains(&("password+totp".into(), "wrong_factor".into())), "{events:?}");
}

/// A challenge waits in the database with the login's device token sealed by the server
/// key (as every secret at rest is), and still completes.
async fn a_challenge_keeps_its_secrets_sealed(app: TestApp) {
    let (_, codes) = with_totp(&app, "dora").await;
    let c = challenge(&app, "dora").await;
    let handle = hallpass_core::flow::FlowHandle::from_presented(&c);
    let store = app.service.store();
    let kind = hallpass_core::flow::FlowKind::MfaChallenge;
    let scope = hallpass_core::Scope::parse("app").unwrap();
    let flow = store.take_flow(Some(&scope), kind, &handle.hash(), app.now()).await.unwrap().expect("stored");
    let device = flow.payload["device"].as_str().unwrap().to_owned();
    assert!(hallpass_core::server_secret::is_sealed_text(&device), "{device}");
    assert!(!device.contains(hallpass_core::secret::DeviceToken::PREFIX), "{device}");
    store.insert_flow(&flow).await.unwrap();
    let done = answer(&app, &c, "recovery_code", &codes[0]).await.ok(201);
    assert_eq!(done["session"]["aal"], 2);
}

async fn recovery_codes_once_and_regenerated(app: TestApp) {
    app.post("/v1/users/nobody/mfa/recovery-codes", json!({})).await.problem(404, "user_not_found");
    app.register("carol", "correct horse battery staple").await;
    app.post("/v1/users/carol/mfa/recovery-codes", json!({})).await.problem(409, "mfa_not_enabled");
    let (_, codes) = with_totp(&app, "bob").await;
    let c = challenge(&app, "bob").await;
    // As typed by a person: upper case, spaces for dashes.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let done = answer(&app, &c, "recovery_code", &typed).await.ok(201);
    assert_eq!(done["login"]["recovery_codes_remaining"], 9);
    assert_eq!((&done["session"]["aal"], &done["session"]["amr"]), (&json!(2), &json!(["pwd", "recovery"])));
    let c = challenge(&app, "bob").await;
    answer(&app, &c, "recovery_code", &codes[0]).await.problem(401, "invalid_factor");
    assert!(events(&app, "bob").await.contains(&("password+recovery_code".into(), "success".into())));

    // A new set voids the old.
    let fresh = app.post("/v1/users/bob/mfa/recovery-codes", json!({})).await.ok(200);
    let fresh: Vec<String> =
        fresh["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|f| !codes.contains(f)));
    answer(&app, &c, "recovery_code", &codes[1]).await.problem(401, "invalid_factor");
    let done = answer(&app, &c, "recovery_code", &fresh[0]).await.ok(201);
    assert_eq!(done["login"]["recovery_codes_remaining"], 9);
}

async fn wrong_answers_end_the_challenge(app: TestApp) {
    let (secret, _) = with_totp(&app, "dave").await;
    let c = challenge(&app, "dave").await;
    let good = code(&app, &secret);
    let wrong = if good == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        answer(&app, &c, "totp", wrong).await.problem(401, "invalid_factor");
    }
    // Ended: even the right code no longer opens it.
    answer(&app, &c, "totp", &good).await.problem(400, "invalid_challenge");
    // New challenges do not buy new guesses: the per-user budget (10) runs out.
    let mut throttled = false;
    for _ in 0..8 {
        let c = challenge(&app, "dave").await;
        let r = answer(&app, &c, "totp", wrong).await;
        if r.status.as_u16() == 429 {
            assert!(r.header("retry-after").is_some());
            throttled = true;
            break;
        }
        r.problem(401, "invalid_factor");
    }
    assert!(throttled, "wrong second factors are throttled per user");
    assert!(events(&app, "dave").await.contains(&("password+totp".into(), "throttled".into())));
}

async fn concurrent_uses_of_one_recovery_code(app: TestApp) {
    let (_, codes) = with_totp(&app, "erin").await;
    let mut challenges = Vec::new();
    for _ in 0..20 {
        challenges.push(challenge(&app, "erin").await);
    }
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for c in challenges {
        let (app, code) = (app.clone(), codes[3].clone());
        tasks.push(tokio::spawn(
            async move { answer(&app, &c, "recovery_code", &code).await.status.as_u16() },
        ));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "exactly one wins: {statuses:?}");
    assert!(statuses.iter().all(|s| [201, 401, 429].contains(s)), "{statuses:?}");
}

async fn removing_factors_ends_sessions_and_is_audited(app: TestApp) {
    let (secret, _) = with_totp(&app, "frank").await;
    let c = challenge(&app, "frank").await;
    let token =
        answer(&app, &c, "totp", &code(&app, &secret)).await.ok(201)["token"].as_str().unwrap().to_owned();
    app.delete("/v1/users/frank/mfa").await.no_content();
    app.with_token(Method::GET, "/v1/session", &token, None).await.problem(401, "session_invalid");
    // No factor left: a password login makes a session at once.
    app.post("/v1/sessions", json!({"username": "frank", "password": "correct horse battery staple"}))
        .await
        .ok(201);
    app.delete("/v1/users/frank/mfa").await.no_content();
    app.delete("/v1/users/nobody/mfa").await.problem(404, "user_not_found");
    let audit = app.service.list_audit(Some(10), None).await.unwrap();
    let removals: Vec<_> = audit.items.iter().filter(|e| e.action == "mfa_remove").collect();
    assert_eq!(removals.len(), 2);
    assert!(removals[0].admin.starts_with("api_key:"));

    // DELETE .../mfa/totp too, keeping the caller's session.
    let (secret, _) = with_totp(&app, "gina").await;
    let c = challenge(&app, "gina").await;
    let kept =
        answer(&app, &c, "totp", &code(&app, &secret)).await.ok(201)["token"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::seconds(30));
    let c = challenge(&app, "gina").await;
    let other =
        answer(&app, &c, "totp", &code(&app, &secret)).await.ok(201)["token"].as_str().unwrap().to_owned();
    app.send(app.req(Method::DELETE, "/v1/users/gina/mfa/totp").header("X-Session-Token", &kept))
        .await
        .no_content();
    app.with_token(Method::GET, "/v1/session", &kept, None).await.ok(200);
    app.with_token(Method::GET, "/v1/session", &other, None).await.problem(401, "session_invalid");
    app.post("/v1/users/gina/mfa/recovery-codes", json!({})).await.problem(409, "mfa_not_enabled");
}

/// One TOTP code offered at once through two services on two connection pools of one
/// PostgreSQL database (as two server processes would): exactly one login gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_pools_accept_a_code_once() {
    let Some(db) = hallpass_postgres::testing::TestDb::create().await else { return };
    let start = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
    let service = |store: hallpass_postgres::PostgresStore| {
        Hallpass::with_clock(Arc::new(store), common::settings(), Arc::new(FakeClock::new(start)))
            .unwrap()
            .with_server_secret(ServerSecret::from_bytes(&[3; 32]))
    };
    let a = service(hallpass_postgres::PostgresStore::connect(&db.url()).await.unwrap());
    let b = service(hallpass_postgres::PostgresStore::connect(&db.url()).await.unwrap());
    let scope = Scope::parse("app").unwrap();
    let password = "correct horse battery staple";
    a.register(
        &scope,
        hallpass_core::service::NewUser {
            username: Some(hallpass_core::Username::parse("hana").unwrap()),
            password: Some(Password::new(password).unwrap()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let hana = UserRef::parse("hana").unwrap();
    let enrolment = a.enrol_totp(&scope, &hana).await.unwrap();
    let secret = base32_decode(&enrolment.secret);
    a.confirm_totp(&scope, &hana, &totp_at(&secret, start.unix_timestamp(), 6), None).await.unwrap();
    let challenge = |r: Result<_, Error>| match r {
        Err(Error::MfaRequired(c)) => c.challenge,
        other => panic!("expected a challenge, got {other:?}"),
    };
    let (ca, cb) = (
        challenge(password_login(&a, &scope, &hana, password).await),
        challenge(password_login(&b, &scope, &hana, password).await),
    );
    // The confirming step is spent on both; the next step once, whichever pool asks first.
    let spent = totp_at(&secret, start.unix_timestamp(), 6);
    let next = totp_at(&secret, start.unix_timestamp() + 30, 6);
    let (ra, rb) = tokio::join!(
        a.complete_mfa(&scope, &ca, MfaProof::Totp(next.clone())),
        b.complete_mfa(&scope, &cb, MfaProof::Totp(next.clone()))
    );
    let wins = [ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count();
    assert_eq!(wins, 1, "one of two pools accepts the code: {ra:?} / {rb:?}");
    let loser = if ra.is_ok() { rb } else { ra };
    assert!(matches!(loser, Err(Error::InvalidFactor)), "{loser:?}");
    let c = challenge(password_login(&b, &scope, &hana, password).await);
    assert!(matches!(b.complete_mfa(&scope, &c, MfaProof::Totp(spent)).await, Err(Error::InvalidFactor)));
}

fn password_login<'a>(
    svc: &'a Hallpass,
    scope: &'a Scope,
    who: &UserRef,
    password: &str,
) -> impl std::future::Future<Output = Result<hallpass_core::service::LoginResult, Error>> + 'a {
    let request = LoginRequest {
        credentials: Credentials::Password { login: who.clone(), password: Password::new(password).unwrap() },
        data: Default::default(),
        client: Default::default(),
        device: None,
    };
    svc.login(scope, request)
}

/// A device a password alone signed in on (the challenge unanswered) is not a known device
/// of the user: when the account is held after failed guesses, only a device that passed
/// the second factor too gets through (to its challenge).
async fn a_device_is_known_only_once_the_second_factor_is_answered(app: TestApp) {
    const PASSWORD: &str = "correct horse battery staple";
    let (secret, _) = with_totp(&app, "kim").await;
    app.register("lee", PASSWORD).await;
    let login = |who: &'static str, password: &'static str, ip: String, device: Option<String>| {
        let client = match device {
            Some(d) => json!({"ip": ip, "device": d}),
            None => json!({"ip": ip}),
        };
        app.post("/v1/sessions", json!({"login": who, "password": password, "client": client}))
    };
    // A device token hallpass issued (to another account), then used with kim's password
    // alone: the challenge is never answered.
    let stolen = login("lee", PASSWORD, "203.0.113.5".into(), None).await.ok(201)["device"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = login("kim", PASSWORD, "203.0.113.5".into(), Some(stolen.clone())).await.ok(200);
    assert_eq!(body["mfa_required"], true, "{body}");
    // Kim's own device, which answered the second factor.
    let body = login("kim", PASSWORD, "198.51.100.7".into(), None).await.ok(200);
    let done = answer(&app, body["challenge"].as_str().unwrap(), "totp", &code(&app, &secret)).await.ok(201);
    let laptop = done["device"].as_str().unwrap().to_owned();

    // Guesses from everywhere until the account is held.
    for i in 0.. {
        let r = login("kim", "wrong password!", format!("192.0.2.{i}"), None).await;
        if r.status == 429 {
            break;
        }
        r.problem(401, "invalid_credentials");
        assert!(i < 100, "the account was never held");
    }
    login("kim", PASSWORD, "203.0.113.5".into(), Some(stolen)).await.problem(429, "rate_limited");
    let body = login("kim", PASSWORD, "198.51.100.7".into(), Some(laptop)).await.ok(200);
    assert_eq!(body["mfa_required"], true, "the known device gets through, to its challenge: {body}");
}
