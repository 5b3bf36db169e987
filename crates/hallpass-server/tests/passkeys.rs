//! Passkeys over the HTTP API, on every backend, with a software authenticator (1Password's
//! `passkey` crates: a CTAP2 authenticator and a WebAuthn client, no browser): registration,
//! list, rename, removal; passwordless sign-in, discoverable and by login; the passkey as
//! the second factor of a password login; and tampering: another origin, another relying
//! party id, another challenge, a replayed assertion, and a cloned authenticator (its
//! signature counter goes back), each refused and recorded.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::TestApp;
#[path = "passkey/softkey.rs"]
mod softkey;

use reqwest::Method;
use serde_json::{Value, json};
use softkey::{ORIGIN, SoftKey};

backend_tests! {
    register_list_rename_and_delete with relying_party(),
    passwordless_sign_in with relying_party(),
    passkey_as_second_factor with relying_party(),
    tampered_answers_are_refused with relying_party(),
    a_cloned_authenticator_is_refused with relying_party(),
}

const PASSWORD: &str = "correct horse battery staple";

/// The app with a server secret key and scope `app`'s relying party: `example.com`, its
/// pages on `https://app.example.com`.
fn relying_party() -> common::Options {
    let mut settings = common::settings();
    settings.scopes.insert(
        "app".into(),
        hallpass_core::ScopeSettings { webauthn: Some(softkey::relying_party()), ..Default::default() },
    );
    common::Options { settings, server_secret: true, ..Default::default() }
}

/// Registers a passkey for `user` with `key`; the passkey as the API shows it.
async fn enrol(app: &TestApp, user: &str, key: &mut SoftKey, name: Option<&str>) -> Value {
    let start = app.post(&format!("/v1/users/{user}/passkeys/register/start"), json!({})).await.ok(200);
    let credential = key.register_at(ORIGIN, &start["options"]).await.unwrap();
    let mut body = json!({"flow": start["flow"], "credential": credential});
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    app.post(&format!("/v1/users/{user}/passkeys/register/finish"), body).await.ok(201)
}

/// Signs in without a password: start (discoverable, or for `login`), sign, finish.
async fn sign_in(app: &TestApp, key: &mut SoftKey, login: Option<&str>) -> common::Res {
    let body = match login {
        Some(l) => json!({"login": l}),
        None => json!({}),
    };
    let start = app.post("/v1/passkeys/login/start", body).await.ok(200);
    let credential = key.assert_at(ORIGIN, &start["options"]).await.unwrap();
    app.post("/v1/passkeys/login/finish", json!({"flow": start["flow"], "credential": credential})).await
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

async fn register_list_rename_and_delete(app: TestApp) {
    app.register("ann", PASSWORD).await;
    let kept = app.login("ann", PASSWORD).await;
    let other = app.login("ann", PASSWORD).await;
    let start = app.post("/v1/users/ann/passkeys/register/start", json!({})).await.ok(200);
    let pk = &start["options"]["publicKey"];
    assert_eq!(pk["rp"]["id"], "example.com", "{start}");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required", "{start}");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required", "{start}");
    let mut key = SoftKey::default();
    let credential = key.register_at(ORIGIN, &start["options"]).await.unwrap();
    // Registering ends the user's other sessions, not the caller's.
    let created = app
        .send(
            app.req(Method::POST, "/v1/users/ann/passkeys/register/finish")
                .header("X-Session-Token", &kept)
                .json(&json!({"flow": start["flow"], "credential": credential, "name": "Laptop"})),
        )
        .await
        .ok(201);
    assert_eq!(created["name"], "Laptop");
    assert!(created["last_used_at"].is_null());
    app.with_token(Method::GET, "/v1/session", &kept, None).await.ok(200);
    app.with_token(Method::GET, "/v1/session", &other, None).await.problem(401, "session_invalid");
    // The flow worked once.
    app.post(
        "/v1/users/ann/passkeys/register/finish",
        json!({"flow": start["flow"], "credential": credential}),
    )
    .await
    .problem(400, "invalid_flow");

    let second = enrol(&app, "ann", &mut SoftKey::default(), None).await;
    assert_eq!(second["name"], "Passkey");
    let list = app.get("/v1/users/ann/passkeys").await.ok(200);
    let names: Vec<_> = list["passkeys"].as_array().unwrap().iter().map(|p| p["name"].clone()).collect();
    assert_eq!(names, vec![json!("Laptop"), json!("Passkey")]);
    let id = created["id"].as_str().unwrap();
    let renamed =
        app.patch(&format!("/v1/users/ann/passkeys/{id}"), json!({"name": " Phone "})).await.ok(200);
    assert_eq!(renamed["name"], "Phone");
    app.patch(&format!("/v1/users/ann/passkeys/{id}"), json!({"name": ""}))
        .await
        .problem(400, "invalid_request");
    app.patch(&format!("/v1/users/ann/passkeys/{}", uuid::Uuid::nil()), json!({"name": "x"}))
        .await
        .problem(404, "passkey_not_found");
    // Another user's passkey is not found through this user.
    app.register("bob", PASSWORD).await;
    app.delete(&format!("/v1/users/bob/passkeys/{id}")).await.problem(404, "passkey_not_found");
    let bob = app.login("bob", PASSWORD).await;
    app.delete(&format!("/v1/users/ann/passkeys/{id}")).await.no_content();
    app.with_token(Method::GET, "/v1/session", &kept, None).await.problem(401, "session_invalid");
    app.with_token(Method::GET, "/v1/session", &bob, None).await.ok(200);
    assert_eq!(app.get("/v1/users/ann/passkeys").await.ok(200)["passkeys"].as_array().unwrap().len(), 1);
    // DELETE .../mfa removes passkeys too.
    app.delete("/v1/users/ann/mfa").await.no_content();
    assert!(app.get("/v1/users/ann/passkeys").await.ok(200)["passkeys"].as_array().unwrap().is_empty());
    // A scope without a relying party has no passkeys.
    let other_scope = app.key_for("plain").await;
    app.send(app.client.post(app.url("/v1/passkeys/login/start")).bearer_auth(&other_scope).json(&json!({})))
        .await
        .problem(400, "passkeys_not_configured");
}

async fn passwordless_sign_in(app: TestApp) {
    app.register("cleo", PASSWORD).await;
    let mut key = SoftKey::default();
    enrol(&app, "cleo", &mut key, Some("Key")).await;
    // Discoverable: no login given.
    let done = sign_in(&app, &mut key, None).await.ok(201);
    assert_eq!(done["login"]["username"], "cleo", "{done}");
    assert_eq!(done["session"]["amr"], json!(["passkey"]), "{done}");
    assert_eq!(done["session"]["aal"], 2, "{done}");
    let token = done["token"].as_str().unwrap();
    app.with_token(Method::GET, "/v1/session", token, None).await.ok(200);
    // By login: the options name the user's passkeys.
    let start = app.post("/v1/passkeys/login/start", json!({"login": "cleo"})).await.ok(200);
    assert_eq!(
        start["options"]["publicKey"]["allowCredentials"].as_array().map(Vec::len),
        Some(1),
        "{start}"
    );
    assert!(start["options"].get("mediation").is_none());
    sign_in(&app, &mut key, Some("cleo")).await.ok(201);
    // A login that names nobody answers discoverable options (nothing tells who exists).
    let start = app.post("/v1/passkeys/login/start", json!({"login": "nobody"})).await.ok(200);
    assert!(start["options"]["publicKey"]["allowCredentials"].as_array().is_none_or(Vec::is_empty));
    // The counter and the last use are stored.
    let list = app.get("/v1/users/cleo/passkeys").await.ok(200);
    assert!(list["passkeys"][0]["last_used_at"].is_string(), "{list}");
    let stored = app
        .service
        .list_passkeys(
            &hallpass_core::Scope::parse("app").unwrap(),
            &hallpass_core::UserRef::Username("cleo".into()),
        )
        .await
        .unwrap();
    assert_eq!(stored[0].counter, 2, "two assertions counted");
    assert_eq!(
        events(&app, "cleo").await.iter().filter(|e| *e == &("passkey".into(), "success".into())).count(),
        2
    );
    // A deactivated user is refused after the assertion.
    app.patch("/v1/users/cleo", json!({"active": false})).await.ok(200);
    sign_in(&app, &mut key, None).await.problem(403, "user_inactive");
    // A passkey is a way to log in: with no password and no provider, the last one stays.
    app.post("/v1/users", json!({"username": "dan"})).await.ok(201);
    let only = enrol(&app, "dan", &mut SoftKey::default(), None).await;
    app.delete(&format!("/v1/users/dan/passkeys/{}", only["id"].as_str().unwrap()))
        .await
        .problem(409, "last_login_method");
}

async fn passkey_as_second_factor(app: TestApp) {
    app.register("eve", PASSWORD).await;
    let mut key = SoftKey::default();
    enrol(&app, "eve", &mut key, None).await;
    let challenge = app.post("/v1/sessions", json!({"username": "eve", "password": PASSWORD})).await.ok(200);
    assert_eq!(challenge["mfa_required"], true, "{challenge}");
    assert_eq!(challenge["methods"], json!(["passkey"]), "{challenge}");
    let options = &challenge["options"];
    assert_eq!(options["publicKey"]["rpId"], "example.com", "{challenge}");
    // Another authenticator's assertion is a wrong factor; the challenge stays.
    let mut stranger = SoftKey::default();
    app.register("zed", PASSWORD).await;
    enrol(&app, "zed", &mut stranger, None).await;
    let mut allow_any = options.clone();
    allow_any["publicKey"]["allowCredentials"] = json!([]);
    let wrong = stranger.assert_at(ORIGIN, &allow_any).await.unwrap();
    app.post("/v1/sessions/mfa", json!({"challenge": challenge["challenge"], "passkey": wrong}))
        .await
        .problem(401, "invalid_factor");
    let credential = key.assert_at(ORIGIN, options).await.unwrap();
    let done = app
        .post("/v1/sessions/mfa", json!({"challenge": challenge["challenge"], "passkey": credential}))
        .await
        .ok(201);
    assert_eq!(done["session"]["amr"], json!(["pwd", "passkey"]), "{done}");
    assert_eq!(done["session"]["aal"], 2);
    let events = events(&app, "eve").await;
    assert!(events.contains(&("password+passkey".into(), "success".into())), "{events:?}");
    assert!(events.contains(&("password+passkey".into(), "invalid_passkey".into())), "{events:?}");
    // Two answers are two factors: exactly one of `totp`, `recovery_code` and `passkey`.
    app.post("/v1/sessions/mfa", json!({"challenge": "x", "totp": "123456", "passkey": {}}))
        .await
        .problem(400, "invalid_request");
}

async fn tampered_answers_are_refused(app: TestApp) {
    app.register("fay", PASSWORD).await;
    let mut key = SoftKey::default();

    // Registration from another origin (a subdomain of the rp id, so the authenticator
    // signs it) is refused by the server.
    let start = app.post("/v1/users/fay/passkeys/register/start", json!({})).await.ok(200);
    let credential = key.register_at("https://evil.example.com", &start["options"]).await.unwrap();
    app.post(
        "/v1/users/fay/passkeys/register/finish",
        json!({"flow": start["flow"], "credential": credential}),
    )
    .await
    .problem(400, "passkey_registration_failed");
    // For another relying party id.
    let start = app.post("/v1/users/fay/passkeys/register/start", json!({})).await.ok(200);
    let mut options = start["options"].clone();
    options["publicKey"]["rp"]["id"] = json!("example.org");
    let credential = SoftKey::default().register_at("https://example.org", &options).await.unwrap();
    app.post(
        "/v1/users/fay/passkeys/register/finish",
        json!({"flow": start["flow"], "credential": credential}),
    )
    .await
    .problem(400, "passkey_registration_failed");
    // Over another challenge.
    let start = app.post("/v1/users/fay/passkeys/register/start", json!({})).await.ok(200);
    let other = app.post("/v1/users/fay/passkeys/register/start", json!({})).await.ok(200);
    let credential = SoftKey::default().register_at(ORIGIN, &other["options"]).await.unwrap();
    app.post(
        "/v1/users/fay/passkeys/register/finish",
        json!({"flow": start["flow"], "credential": credential}),
    )
    .await
    .problem(400, "passkey_registration_failed");
    assert!(app.get("/v1/users/fay/passkeys").await.ok(200)["passkeys"].as_array().unwrap().is_empty());

    let mut key = SoftKey::default();
    enrol(&app, "fay", &mut key, None).await;
    // An assertion from another origin.
    let start = app.post("/v1/passkeys/login/start", json!({})).await.ok(200);
    let credential = key.assert_at("https://evil.example.com", &start["options"]).await.unwrap();
    app.post("/v1/passkeys/login/finish", json!({"flow": start["flow"], "credential": credential}))
        .await
        .problem(401, "invalid_passkey");
    // For another relying party id (the authenticator has no credential there: make one).
    let start = app.post("/v1/passkeys/login/start", json!({})).await.ok(200);
    let mut options = start["options"].clone();
    options["publicKey"]["rpId"] = json!("example.org");
    let mut elsewhere = key.clone();
    if let Some(p) = elsewhere.store.as_mut() {
        p.rp_id = "example.org".into();
    }
    let credential = elsewhere.assert_at("https://example.org", &options).await.unwrap();
    app.post("/v1/passkeys/login/finish", json!({"flow": start["flow"], "credential": credential}))
        .await
        .problem(401, "invalid_passkey");
    // Over another flow's challenge.
    let start = app.post("/v1/passkeys/login/start", json!({})).await.ok(200);
    let other = app.post("/v1/passkeys/login/start", json!({})).await.ok(200);
    let credential = key.assert_at(ORIGIN, &other["options"]).await.unwrap();
    app.post("/v1/passkeys/login/finish", json!({"flow": start["flow"], "credential": credential}))
        .await
        .problem(401, "invalid_passkey");
    // A replayed assertion: the flow is used up; sent to a new flow, its challenge is old.
    let start = app.post("/v1/passkeys/login/start", json!({})).await.ok(200);
    let credential = key.assert_at(ORIGIN, &start["options"]).await.unwrap();
    let answer = json!({"flow": start["flow"], "credential": credential});
    app.post("/v1/passkeys/login/finish", answer.clone()).await.ok(201);
    app.post("/v1/passkeys/login/finish", answer).await.problem(400, "invalid_flow");
    let again = app.post("/v1/passkeys/login/start", json!({})).await.ok(200);
    app.post("/v1/passkeys/login/finish", json!({"flow": again["flow"], "credential": credential}))
        .await
        .problem(401, "invalid_passkey");
    // Garbage is a bad request, not a server error.
    let start = app.post("/v1/passkeys/login/start", json!({})).await.ok(200);
    app.post("/v1/passkeys/login/finish", json!({"flow": start["flow"], "credential": {"id": 1}}))
        .await
        .problem(400, "invalid_request");
    let events = events(&app, "fay").await;
    assert_eq!(events.iter().filter(|e| e.1 == "invalid_passkey").count(), 4, "{events:?}");
    assert_eq!(events.iter().filter(|e| e.1 == "success").count(), 1, "{events:?}");
}

async fn a_cloned_authenticator_is_refused(app: TestApp) {
    app.register("gus", PASSWORD).await;
    let mut key = SoftKey::default();
    enrol(&app, "gus", &mut key, None).await;
    let mut clone = key.clone();
    // The original signs twice (counter 1, 2); the clone then signs with counter 1.
    sign_in(&app, &mut key, None).await.ok(201);
    sign_in(&app, &mut key, None).await.ok(201);
    sign_in(&app, &mut clone, None).await.problem(401, "invalid_passkey");
    let events = events(&app, "gus").await;
    assert!(events.contains(&("passkey".into(), "passkey_cloned".into())), "{events:?}");
    // The stored counter did not move back: the original goes on.
    sign_in(&app, &mut key, Some("gus")).await.ok(201);
}
