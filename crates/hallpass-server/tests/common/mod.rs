//! Test harness of the HTTP API: starts the real application on port 0 over a fresh
//! database of the chosen [`Backend`] — SQLite in a temporary directory, or a database of
//! its own on the machine's PostgreSQL or MariaDB (`hallpass_postgres::testing::TestDb`,
//! `hallpass_mysql::testing::TestDatabase`, dropped with the app) — with a fake clock and
//! cheap Argon2 costs, and talks to it over HTTP with reqwest. Every response body the
//! helpers see is checked for leaked hashes. Every in-process app of the tests starts here;
//! what a test changes (settings, body limit, admin page) it says in [`Options`].
//!
//! A PostgreSQL or MariaDB server that cannot be reached skips the test with a notice on
//! stderr ([`TestApp::start_on`] answers `None`), unless `CI=true`, where it panics.

#![allow(dead_code)]

/// Runs each named test (`async fn name(app: TestApp)`) on SQLite, PostgreSQL and MariaDB,
/// each in a module named after its backend: `backend_tests! { a, b with options }`.
#[allow(unused_macros)]
macro_rules! backend_tests {
    ($($name:ident $(with $options:expr)?),* $(,)?) => {
        backend_tests!(@backend sqlite, $crate::common::Backend::Sqlite, $($name $(with $options)?),*);
        backend_tests!(@backend postgres, $crate::common::Backend::Postgres, $($name $(with $options)?),*);
        backend_tests!(@backend mysql, $crate::common::Backend::Mysql, $($name $(with $options)?),*);
    };
    (@backend $module:ident, $backend:expr, $($name:ident $(with $options:expr)?),*) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run($backend, backend_tests!(@options $($options)?), super::$name).await;
                }
            )*
        }
    };
    (@options) => { $crate::common::Options::default() };
    (@options $options:expr) => { $options };
}

use hallpass_core::observed::{Observed, Observer};
use hallpass_core::store::StoreResult;
use hallpass_core::*;
use hallpass_server::admin::AdminOptions;
use hallpass_server::http::{AppState, DEFAULT_BODY_LIMIT, build_app};
use hallpass_server::metrics::{Metrics, StoreMetrics};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// Strings no response may contain.
const FORBIDDEN: &[&str] = &["password_hash", "token_hash", "code_hash", "$argon2"];

/// The storage backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

/// What keeps a test's database alive; dropping it removes the database (the temporary
/// directory, or `DROP DATABASE` on the server).
pub enum DbGuard {
    Sqlite(tempfile::TempDir),
    Postgres(Box<hallpass_postgres::testing::TestDb>),
    Mysql(Box<hallpass_mysql::testing::TestDatabase>),
}

impl Backend {
    /// A fresh, migrated, empty database and a store on it; `None` when its server cannot
    /// be reached outside CI (after a notice on stderr: skip the test).
    pub async fn fresh_store(self) -> Option<(Arc<dyn Store>, DbGuard)> {
        match self {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = hallpass_sqlite::SqliteStore::open(dir.path().join("t.db")).expect("open sqlite");
                Some((Arc::new(store), DbGuard::Sqlite(dir)))
            }
            Backend::Postgres => {
                let db = hallpass_postgres::testing::TestDb::create().await?;
                Some((Arc::new(db.store().clone()), DbGuard::Postgres(Box::new(db))))
            }
            Backend::Mysql => {
                let db = hallpass_mysql::testing::TestDatabase::create().await?;
                let store = db.store().await;
                Some((Arc::new(store), DbGuard::Mysql(Box::new(db))))
            }
        }
    }
}

/// How to start the app (beside the backend): everything it is built from but the store
/// and the clock (always a [`FakeClock`], fixed until a test moves it: `TestApp::clock`).
/// Change what a test needs and take the rest from the default:
/// `Options { body_limit: 1024, ..Default::default() }`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The service's settings; [`settings`] by default.
    pub settings: Settings,
    /// Largest accepted request body.
    pub body_limit: usize,
    /// The admin page's cookie and origin policy.
    pub admin: AdminOptions,
    /// Whether the service has a server secret key (sealing TOTP secrets and provider
    /// tokens), as `serve` has on SQLite and wherever one is configured.
    pub server_secret: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            settings: settings(),
            body_limit: DEFAULT_BODY_LIMIT,
            admin: AdminOptions::default(),
            server_secret: false,
        }
    }
}

/// Runs `test` against a fresh app on `backend`, or skips it (returns at once) when the
/// backend's server cannot be reached outside CI.
pub async fn run<F, Fut>(backend: Backend, options: Options, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(app) = TestApp::start_on(backend, options).await else { return };
    test(app).await;
}

/// A running application and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// An API key of scope `app`.
    pub key: String,
    pub service: Arc<Hallpass>,
    pub clock: Arc<FakeClock>,
    /// Make storage fail (for 503/500 tests).
    pub switch: Arc<Switch>,
    /// The app's metrics (also at `GET /metrics`).
    pub metrics: Arc<Metrics>,
    pub backend: Backend,
    server: tokio::task::JoinHandle<()>,
    db: Option<DbGuard>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        let Some(db) = self.db.take() else { return };
        if tokio::task::try_id().is_none() {
            // In the test's own future (`block_on`, not a task): the runtime is alive, and
            // the harness closes the pools on it before dropping the database.
            drop(db);
        } else if std::thread::spawn(move || drop(db)).join().is_err() {
            // In a task, which may be being dropped as the runtime shuts down (it held the
            // last `Arc` of a test that panicked): there `TestDb`'s drop would wait
            // forever on a runtime that no longer drives timers or sockets, so the
            // database goes on a thread of its own, outside any runtime.
            let _ = std::io::Write::write_all(&mut std::io::stderr(), b"dropping a test database panicked\n");
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Res {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem document with `status` and `code`; returns it.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "status of {}", self.text);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.text);
        let p = self.json();
        assert_eq!(p["code"], code, "{p}");
        assert_eq!(p["status"], status, "{p}");
        assert_eq!(p["type"], format!("/problems/{code}"), "{p}");
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        assert!(p["detail"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        p
    }

    /// Asserts `status` with a JSON body; returns the body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.header("content-type"), Some("application/json"), "{}", self.text);
        self.json()
    }

    /// Asserts 204 with an empty body.
    #[track_caller]
    pub fn no_content(&self) {
        assert_eq!(self.status.as_u16(), 204, "{}", self.text);
        assert!(self.text.is_empty());
    }
}

/// Cheap hashing (these tests are about the API, not hashing cost); the password policy is
/// the default one, so every password the tests set is one a real server accepts.
pub fn settings() -> Settings {
    Settings { hash_params: HashParams { m_cost: 256, t_cost: 1, p_cost: 1 }, ..Default::default() }
}

impl TestApp {
    /// The app on SQLite with the default options (SQLite is never skipped).
    pub async fn start() -> Self {
        Self::start_on(Backend::Sqlite, Options::default()).await.expect("SQLite is always available")
    }

    /// The app on SQLite with `options` (SQLite is never skipped).
    pub async fn start_with(options: Options) -> Self {
        Self::start_on(Backend::Sqlite, options).await.expect("SQLite is always available")
    }

    /// The app on a fresh database of `backend`; `None` when that server cannot be
    /// reached outside CI (skip the test).
    pub async fn start_on(backend: Backend, options: Options) -> Option<Self> {
        let (store, db) = backend.fresh_store().await?;
        Some(Self::start_with_store(backend, store, db, options).await)
    }

    /// The app on `store` (wrapped in a [`Switch`]), with a fake clock; `db` is kept until
    /// the app is dropped.
    pub async fn start_with_store(
        backend: Backend,
        store: Arc<dyn Store>,
        db: DbGuard,
        options: Options,
    ) -> Self {
        let Options { settings, body_limit, admin, server_secret } = options;
        let switch = Arc::new(Switch::new(store, Failer::default()));
        let clock = Arc::new(FakeClock::fixed());
        // As `serve` does: store calls are counted (outside the switch, so failures it
        // makes are counted too).
        let metrics = Arc::new(Metrics::new());
        let counted = Arc::new(Observed::new(switch.clone(), StoreMetrics(metrics.clone())));
        let mut service = Hallpass::with_clock(counted, settings, clock.clone()).expect("service");
        if server_secret {
            service = service.with_server_secret(ServerSecret::from_bytes(&[5; 32]));
        }
        let service = Arc::new(service);
        let (_, key) = service.create_api_key(Scope::parse("app").unwrap(), None).await.expect("key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = build_app(AppState {
            service: service.clone(),
            body_limit,
            metrics: metrics.clone(),
            admin,
            oidc: Default::default(),
        });
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Self {
            base: format!("http://{addr}"),
            client: hallpass_server::client_builder().build().expect("client"),
            key: key.expose().to_owned(),
            service,
            clock,
            switch,
            metrics,
            backend,
            server,
            db: Some(db),
        }
    }

    /// Whether the server task is still running (it ends only by a panic or an error).
    pub fn is_serving(&self) -> bool {
        !self.server.is_finished()
    }

    /// A key of another scope.
    pub async fn key_for(&self, scope: &str) -> String {
        let (_, key) = self.service.create_api_key(Scope::parse(scope).unwrap(), None).await.unwrap();
        key.expose().to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with the `app` key.
    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(&self.key)
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Res {
        let res = rb.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        for f in FORBIDDEN {
            assert!(!text.contains(f), "response leaks {f}: {text}");
        }
        // Every answer carries a request id.
        assert!(headers.contains_key("x-request-id"), "no x-request-id");
        Res { status, headers, text }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Res {
        let mut rb = self.req(method, path);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(rb).await
    }

    pub async fn get(&self, path: &str) -> Res {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Res {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Res {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Res {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Res {
        self.call(Method::DELETE, path, None).await
    }

    /// A call with a session token.
    pub async fn with_token(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Res {
        let mut rb = self.req(method, path).header("x-session-token", token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(rb).await
    }

    /// Registers `username` with email `<username>@example.com`; returns the user.
    pub async fn register(&self, username: &str, password: &str) -> Value {
        self.post(
            "/v1/users",
            serde_json::json!({"username": username, "email": format!("{username}@example.com"), "password": password}),
        )
        .await
        .ok(201)
    }

    /// Logs in by username; returns the token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let body = self
            .post("/v1/sessions", serde_json::json!({"username": username, "password": password}))
            .await
            .ok(201);
        body["token"].as_str().unwrap().to_owned()
    }

    pub fn now(&self) -> OffsetDateTime {
        self.service.now()
    }
}

/// An observer that lets every store call through, or fails them all with a chosen error.
#[derive(Default)]
pub struct Failer {
    fail: Mutex<Option<StoreError>>,
}

impl Observer for Failer {
    fn before(&self, _op: &'static str) -> StoreResult<()> {
        match &*self.fail.lock().unwrap() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

/// A store that passes every call through, or fails them all with a chosen error.
pub type Switch = Observed<Failer>;

impl Failer {
    /// Fails every call with `e` from now on, or (with `None`) passes them through again.
    pub fn fail_with(&self, e: Option<StoreError>) {
        *self.fail.lock().unwrap() = e;
    }
}
