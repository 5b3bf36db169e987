//! The password policy over HTTP: a new password that is too easy to guess answers 400
//! `weak_password` whose `detail` tells the person what to do, on every route that sets a
//! password (register, set password, reset redemption), with the scope's own minimum.
//!
//! The app is the shared harness's (`common::TestApp`, whose settings keep the default
//! policy) with a stricter scope added, on SQLite.

// clippy.toml allows unwrap in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Options, Res, TestApp};
use hallpass_core::*;
use reqwest::Method;
use serde_json::{Value, json};

const STRONG: &str = "correct horse battery staple";

/// The app on a fresh SQLite database: default policy (score 3), and a scope `strict`
/// that wants score 4.
async fn start() -> TestApp {
    let mut settings = common::settings();
    settings.scopes.insert("strict".into(), ScopeSettings { min_password_score: 4, ..Default::default() });
    TestApp::start_with(Options { settings, ..Default::default() }).await
}

/// `method path` with `body`, as the API key `key`.
async fn call(app: &TestApp, key: &str, method: Method, path: &str, body: Value) -> Res {
    app.send(app.client.request(method, app.url(path)).bearer_auth(key).json(&body)).await
}

/// The `detail` of a 400 `weak_password`, checked not to echo the password.
#[track_caller]
fn weak(res: &Res, password: &str) -> String {
    let p = res.problem(400, "weak_password");
    assert!(!res.text.contains(password), "the answer echoes the password: {}", res.text);
    p["detail"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn weak_passwords_answer_400_with_a_reason_on_every_route_that_sets_one() {
    let app = start().await;
    let key = app.key.clone();

    // Register: a top-100 password, then the username itself, then a strong one.
    let res =
        call(&app, &key, Method::POST, "/v1/users", json!({"username": "mira", "password": "iloveyou"}))
            .await;
    assert_eq!(
        weak(&res, "iloveyou"),
        "The password is too easy to guess. This is a top-100 common password. \
         Add another word or two. Uncommon words are better."
    );
    let body =
        json!({"username": "Zanzibarquokka", "email": "mira@example.com", "password": "ZanzibarQuokka"});
    let res = call(&app, &key, Method::POST, "/v1/users", body).await;
    assert_eq!(weak(&res, "ZanzibarQuokka"), "The password must not be your username or email address.");
    let body =
        json!({"username": "Zanzibarquokka", "email": "mira@example.com", "password": "mira@example.com1"});
    let res = call(&app, &key, Method::POST, "/v1/users", body).await;
    assert!(weak(&res, "mira@example.com1").contains("contains your username or email address"));
    let body = json!({"username": "Zanzibarquokka", "email": "mira@example.com", "password": STRONG});
    call(&app, &key, Method::POST, "/v1/users", body).await.ok(201);
    // Too short is the same code, from the length rule.
    let res =
        call(&app, &key, Method::POST, "/v1/users", json!({"username": "x", "password": "short"})).await;
    assert!(weak(&res, "short").contains("at least 8 characters"));

    // Set password: judged against the user's own names too.
    let res = call(
        &app,
        &key,
        Method::PUT,
        "/v1/users/zanzibarquokka/password",
        json!({"password": "zanzibarquokka!"}),
    )
    .await;
    assert!(weak(&res, "zanzibarquokka!").contains("your username or email address"));
    call(
        &app,
        &key,
        Method::PUT,
        "/v1/users/zanzibarquokka/password",
        json!({"password": "velvet kumquat orbit"}),
    )
    .await
    .no_content();

    // Reset redemption: refused, and the code still works for a strong password.
    let code = call(&app, &key, Method::POST, "/v1/password-resets", json!({"login": "mira@example.com"}))
        .await
        .ok(201)["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = call(
        &app,
        &key,
        Method::POST,
        "/v1/password-resets/redeem",
        json!({"code": code, "password": "qwertyuiop"}),
    )
    .await;
    assert!(weak(&res, "qwertyuiop").contains("This is a top-100 common password."));
    call(&app, &key, Method::POST, "/v1/password-resets/redeem", json!({"code": code, "password": STRONG}))
        .await
        .ok(200);

    // A login never judges: the strong password works, and a weak one is just wrong.
    let login = json!({"login": "zanzibarquokka", "password": STRONG});
    call(&app, &key, Method::POST, "/v1/sessions", login).await.ok(201);
    let login = json!({"login": "zanzibarquokka", "password": "iloveyou"});
    call(&app, &key, Method::POST, "/v1/sessions", login).await.problem(401, "invalid_credentials");
}

#[tokio::test]
async fn the_minimum_score_is_the_scopes_own() {
    let app = start().await;
    let (default, strict) = (app.key.clone(), app.key_for("strict").await);
    // zxcvbn scores "horse battery" 3: enough by default, not where 4 is asked.
    let body = json!({"username": "ann", "password": "horse battery"});
    call(&app, &default, Method::POST, "/v1/users", body.clone()).await.ok(201);
    let res = call(&app, &strict, Method::POST, "/v1/users", body).await;
    assert_eq!(
        weak(&res, "horse battery"),
        "The password is too easy to guess. Add another word or two. Uncommon words are better."
    );
    call(&app, &strict, Method::POST, "/v1/users", json!({"username": "ann", "password": STRONG}))
        .await
        .ok(201);
}
