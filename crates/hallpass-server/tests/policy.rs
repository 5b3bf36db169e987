//! The password policy over HTTP: a new password that is too easy to guess answers 400
//! `weak_password` whose `detail` tells the person what to do, on every route that sets a
//! password (register, set password, reset redemption), with the scope's own minimum.
//!
//! The shared harness (`common::TestApp`) runs with the estimate off so that the API tests
//! may use any password; this file starts the app itself with the default policy (and a
//! stricter scope), on SQLite, and reads answers with the harness's `Res`.

// clippy.toml allows unwrap in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::unwrap_used)]

mod common;

use common::Res;
use hallpass_core::*;
use hallpass_server::http::{AppState, DEFAULT_BODY_LIMIT, build_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;

const STRONG: &str = "correct horse battery staple";

struct App {
    base: String,
    client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    service: Arc<Hallpass>,
    _dir: tempfile::TempDir,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl App {
    /// The real app on a fresh SQLite database: default policy (score 3), and a scope
    /// `strict` that wants score 4.
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = hallpass_sqlite::SqliteStore::open(dir.path().join("p.db")).unwrap();
        let mut settings =
            Settings { hash_params: HashParams { m_cost: 256, t_cost: 1, p_cost: 1 }, ..Default::default() };
        settings
            .scopes
            .insert("strict".into(), ScopeSettings { min_password_score: 4, ..Default::default() });
        let service = Arc::new(Hallpass::new(Arc::new(store), settings).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = build_app(AppState {
            service: service.clone(),
            body_limit: DEFAULT_BODY_LIMIT,
            metrics: Default::default(),
            admin: Default::default(),
        });
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, client: reqwest::Client::new(), server, service, _dir: dir }
    }

    async fn key(&self, scope: &str) -> String {
        let (_, key) = self.service.create_api_key(Scope::parse(scope).unwrap(), None).await.unwrap();
        key.expose().to_owned()
    }

    async fn call(&self, key: &str, method: Method, path: &str, body: Value) -> Res {
        let res =
            self.client.request(method, format!("{}{path}", self.base)).bearer_auth(key).json(&body).send();
        let res = res.await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        Res { status, headers, text: res.text().await.unwrap() }
    }
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
    let app = App::start().await;
    let key = app.key("app").await;

    // Register: a top-100 password, then the username itself, then a strong one.
    let res =
        app.call(&key, Method::POST, "/v1/users", json!({"username": "mira", "password": "iloveyou"})).await;
    assert_eq!(
        weak(&res, "iloveyou"),
        "The password is too easy to guess. This is a top-100 common password. \
         Add another word or two. Uncommon words are better."
    );
    let body =
        json!({"username": "Zanzibarquokka", "email": "mira@example.com", "password": "ZanzibarQuokka"});
    let res = app.call(&key, Method::POST, "/v1/users", body).await;
    assert_eq!(weak(&res, "ZanzibarQuokka"), "The password must not be your username or email address.");
    let body =
        json!({"username": "Zanzibarquokka", "email": "mira@example.com", "password": "mira@example.com1"});
    let res = app.call(&key, Method::POST, "/v1/users", body).await;
    assert!(weak(&res, "mira@example.com1").contains("contains your username or email address"));
    let body = json!({"username": "Zanzibarquokka", "email": "mira@example.com", "password": STRONG});
    app.call(&key, Method::POST, "/v1/users", body).await.ok(201);
    // Too short is the same code, from the length rule.
    let res = app.call(&key, Method::POST, "/v1/users", json!({"username": "x", "password": "short"})).await;
    assert!(weak(&res, "short").contains("at least 8 characters"));

    // Set password: judged against the user's own names too.
    let res = app
        .call(&key, Method::PUT, "/v1/users/zanzibarquokka/password", json!({"password": "zanzibarquokka!"}))
        .await;
    assert!(weak(&res, "zanzibarquokka!").contains("your username or email address"));
    app.call(
        &key,
        Method::PUT,
        "/v1/users/zanzibarquokka/password",
        json!({"password": "velvet kumquat orbit"}),
    )
    .await
    .no_content();

    // Reset redemption: refused, and the code still works for a strong password.
    let code = app
        .call(&key, Method::POST, "/v1/password-resets", json!({"login": "mira@example.com"}))
        .await
        .ok(201)["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .call(
            &key,
            Method::POST,
            "/v1/password-resets/redeem",
            json!({"code": code, "password": "qwertyuiop"}),
        )
        .await;
    assert!(weak(&res, "qwertyuiop").contains("This is a top-100 common password."));
    app.call(&key, Method::POST, "/v1/password-resets/redeem", json!({"code": code, "password": STRONG}))
        .await
        .ok(200);

    // A login never judges: the strong password works, and a weak one is just wrong.
    let login = json!({"login": "zanzibarquokka", "password": STRONG});
    app.call(&key, Method::POST, "/v1/sessions", login).await.ok(201);
    let login = json!({"login": "zanzibarquokka", "password": "iloveyou"});
    app.call(&key, Method::POST, "/v1/sessions", login).await.problem(401, "invalid_credentials");
}

#[tokio::test]
async fn the_minimum_score_is_the_scopes_own() {
    let app = App::start().await;
    let (default, strict) = (app.key("app").await, app.key("strict").await);
    // zxcvbn scores "horse battery" 3: enough by default, not where 4 is asked.
    let body = json!({"username": "ann", "password": "horse battery"});
    app.call(&default, Method::POST, "/v1/users", body.clone()).await.ok(201);
    let res = app.call(&strict, Method::POST, "/v1/users", body).await;
    assert_eq!(
        weak(&res, "horse battery"),
        "The password is too easy to guess. Add another word or two. Uncommon words are better."
    );
    app.call(&strict, Method::POST, "/v1/users", json!({"username": "ann", "password": STRONG}))
        .await
        .ok(201);
}
