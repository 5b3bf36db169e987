//! Storage outages: the app (in process, port 0) on PostgreSQL or MariaDB reached through a
//! TCP proxy of this file, which the test cuts and restores while clients keep calling.
//!
//! - Cut: the proxy closes every live connection, and then either closes each new one at
//!   once (a server going down, or a pooler in front of one) or refuses it (nothing
//!   listens: the database process is down) — one test of each per backend. Then
//!   `/readyz` answers 503, and API calls answer 503 `storage_unavailable` with
//!   `Retry-After` — never a 500, never a hang (every call has a 6 s client timeout), and
//!   the server keeps running. Background clients (registrations, logins, get-session) see
//!   only successes and that 503 throughout.
//! - Restored: service resumes by itself (no restart, no operator) within 5 s, measured
//!   from the restore to the first 200 of `/readyz` and of an API call.
//! - Afterwards every write that was acknowledged (a 201 registration or login) is there:
//!   the user reads back, the session token is valid.
//!
//! Each test has a database of its own. An unreachable server skips the test with a notice,
//! unless `CI=true`, where it fails.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Backend, DbGuard, Options, TestApp};
use hallpass_core::Store;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Write as _;
use std::net::SocketAddr;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The longest any call may take, outage or not: the pools give up on a connection after
/// 5 s (`ACQUIRE_TIMEOUT`), so a call answers within that and a little.
const CALL_TIMEOUT: Duration = Duration::from_secs(6);
/// The clients' password (one no strength rule refuses).
const PASSWORD: &str = "quilted marsupial drumbeat 42";
/// How soon after the database is back the service must be back.
const RECOVERY_LIMIT: Duration = Duration::from_secs(5);

/// Writes past the test harness's capture, so measurements show in a normal run.
fn notice(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

// ------------------------------------------------------------------------------ the proxy

/// What the proxy does with new connections while it is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Accepts and closes them at once: a server shutting down or restarting, or a pooler
    /// or load balancer in front of it with no backend.
    CloseAtOnce,
    /// Nothing listens, so connecting is refused: the database process is down. (The
    /// proxy's port is bound again when restored.)
    Refuse,
}

impl Cut {
    /// How long the database stays unreachable at least; longer when a round of probes is
    /// still running (it is restored only between rounds). Refused connections make a call
    /// wait the pool's whole acquire timeout (5 s, sqlx retries a refused connect until
    /// then), so one round is all that fits there.
    fn outage(self) -> Duration {
        match self {
            Cut::CloseAtOnce => Duration::from_secs(2),
            Cut::Refuse => Duration::from_secs(5),
        }
    }
}

/// A TCP proxy to the database with a switch. Cut, it closes every live connection and
/// treats new ones as [`Cut`] says; restored, it forwards again.
struct Proxy {
    addr: SocketAddr,
    cut: watch::Sender<Option<Cut>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, mut state) = watch::channel(None);
        let task = tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                let now = *state.borrow_and_update();
                match (now, listener.is_some()) {
                    (Some(Cut::Refuse), true) => listener = None, // closes the port
                    (None | Some(Cut::CloseAtOnce), false) => {
                        listener = Some(TcpListener::bind(addr).await.expect("bind the proxy's port again"));
                    }
                    _ => {}
                }
                let Some(open) = &listener else {
                    if state.changed().await.is_err() {
                        return;
                    }
                    continue;
                };
                tokio::select! {
                    accepted = open.accept() => {
                        let Ok((client, _)) = accepted else { continue };
                        if state.borrow().is_some() {
                            drop(client);
                            continue;
                        }
                        tokio::spawn(forward(client, upstream, state.clone()));
                    }
                    changed = state.changed() => if changed.is_err() { return },
                }
            }
        });
        Proxy { addr, cut, task }
    }

    fn cut(&self, how: Cut) {
        self.cut.send_replace(Some(how));
    }

    fn restore(&self) {
        self.cut.send_replace(None);
    }
}

/// Copies both ways between `client` and the database until either side closes or the
/// proxy is cut (`wait_for` also sees a cut made before it was called).
async fn forward(mut client: TcpStream, upstream: SocketAddr, mut state: watch::Receiver<Option<Cut>>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = state.wait_for(Option::is_some) => {}
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn resolve(host: &str, port: u16) -> SocketAddr {
    tokio::net::lookup_host((host, port)).await.unwrap().next().expect("the database host resolves")
}

/// A fresh database of `backend`, and the app on a store that reaches it through a proxy;
/// `None` when the server cannot be reached outside CI.
async fn app_behind_proxy(backend: Backend) -> Option<(TestApp, Proxy)> {
    let (store, guard, proxy): (Arc<dyn Store>, DbGuard, Proxy) = match backend {
        Backend::Postgres => {
            let db = hallpass_postgres::testing::TestDb::create().await?;
            let options = db.options().clone();
            let proxy = Proxy::start(resolve(options.get_host(), options.get_port()).await).await;
            let store = hallpass_postgres::PostgresStore::connect_with(
                options.host("127.0.0.1").port(proxy.addr.port()),
            )
            .await
            .unwrap();
            (Arc::new(store), DbGuard::Postgres(Box::new(db)), proxy)
        }
        Backend::Mysql => {
            let db = hallpass_mysql::testing::TestDatabase::create().await?;
            drop(db.store().await); // migrates, directly
            let options = hallpass_mysql::MySqlConnectOptions::from_str(db.url()).unwrap();
            let proxy = Proxy::start(resolve(options.get_host(), options.get_port()).await).await;
            let store =
                hallpass_mysql::MySqlStore::connect_with(options.host("127.0.0.1").port(proxy.addr.port()))
                    .await
                    .unwrap();
            (Arc::new(store), DbGuard::Mysql(Box::new(db)), proxy)
        }
        Backend::Sqlite => unreachable!("SQLite has no server to lose"),
    };
    let app = TestApp::start_with_store(backend, store, guard, Options::default()).await;
    Some((app, proxy))
}

// ------------------------------------------------------------------------------ traffic

/// One answer, or what went wrong getting it.
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
    took: Duration,
}

/// Calls with the client timeout; a timeout or a dropped connection is an `Err`.
async fn call(
    app: &TestApp,
    client: &reqwest::Client,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<Answer, String> {
    let mut rb = client.request(method.clone(), app.url(path)).bearer_auth(&app.key);
    if let Some(t) = token {
        rb = rb.header("x-session-token", t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let start = Instant::now();
    let res = rb.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
    let status = res.status().as_u16();
    let retry_after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = res.text().await.map_err(|e| format!("{method} {path}: reading the body: {e}"))?;
    let took = start.elapsed();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
    Ok(Answer { status, retry_after, body, took })
}

impl Answer {
    /// Whether this is the outage answer: 503 `storage_unavailable` with `Retry-After`.
    fn is_unavailable(&self) -> bool {
        self.status == 503 && self.body["code"] == "storage_unavailable" && self.retry_after.is_some()
    }
}

/// What the clients saw.
#[derive(Default)]
struct Log {
    /// Usernames whose registration answered 201.
    users: Vec<String>,
    /// Tokens whose login answered 201.
    tokens: Vec<String>,
    /// Answers that are neither the expected success nor the outage answer.
    wrong: Vec<String>,
    /// The slowest call.
    slowest: Duration,
    /// How many calls answered 503.
    unavailable: usize,
}

impl Log {
    /// Records an answer expected to be `ok` or the outage answer; `true` for `ok`.
    fn check(&mut self, what: &str, answer: Result<Answer, String>, ok: u16) -> bool {
        match answer {
            Err(e) => {
                self.wrong.push(format!("{what}: {e}"));
                false
            }
            Ok(a) => {
                self.slowest = self.slowest.max(a.took);
                if a.took > CALL_TIMEOUT {
                    self.wrong.push(format!("{what}: took {:?}", a.took));
                }
                if a.status == ok {
                    true
                } else {
                    if a.is_unavailable() {
                        self.unavailable += 1;
                    } else {
                        self.wrong.push(format!("{what}: {} {:?} {}", a.status, a.retry_after, a.body));
                    }
                    false
                }
            }
        }
    }
}

/// A client that registers users, logs them in and checks sessions until `stop`.
async fn client_loop(
    app: Arc<TestApp>,
    client: reqwest::Client,
    id: usize,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let name = format!("c{id}n{n}");
        let password = PASSWORD;
        let registered = call(
            &app,
            &client,
            Method::POST,
            "/v1/users",
            None,
            Some(json!({"username": name, "password": password})),
        )
        .await;
        let registered = log.lock().unwrap().check("register", registered, 201);
        let mut served = registered;
        if registered {
            log.lock().unwrap().users.push(name.clone());
            let login = call(
                &app,
                &client,
                Method::POST,
                "/v1/sessions",
                None,
                Some(json!({"username": name, "password": password})),
            )
            .await;
            let token = match login {
                Ok(a) if a.status == 201 => a.body["token"].as_str().map(str::to_owned),
                other => {
                    log.lock().unwrap().check("login", other, 201);
                    None
                }
            };
            served = token.is_some();
            if let Some(token) = token {
                log.lock().unwrap().tokens.push(token.clone());
                let got = call(&app, &client, Method::GET, "/v1/session", Some(&token), None).await;
                served = log.lock().unwrap().check("get session", got, 200);
            }
        }
        // An earlier acknowledged session: valid, or the outage answer; never 401.
        let earlier = {
            let log = log.lock().unwrap();
            (!log.tokens.is_empty()).then(|| log.tokens[n % log.tokens.len()].clone())
        };
        if let Some(token) = earlier {
            let got = call(&app, &client, Method::GET, "/v1/session", Some(&token), None).await;
            log.lock().unwrap().check("get an earlier session", got, 200);
        }
        if !served {
            // The outage answer says "retry after a second"; a short pause is enough here.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Polls `path` until it answers 200; every other answer on the way must be the outage
/// answer. Returns when that was.
async fn until_ok(app: &TestApp, client: &reqwest::Client, path: &str, since: Instant) -> Duration {
    loop {
        let a = call(app, client, Method::GET, path, None, None).await.unwrap();
        if a.status == 200 {
            return since.elapsed();
        }
        assert!(a.is_unavailable(), "GET {path} while recovering: {} {}", a.status, a.body);
        assert!(
            since.elapsed() <= RECOVERY_LIMIT,
            "GET {path} still answers 503 {:?} after the database came back",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The calls made while the database is down, all at once: each must answer the outage
/// answer within the client timeout. Returns how long the round took.
async fn probe_round(app: &TestApp, client: &reqwest::Client, round: usize) -> Duration {
    let start = Instant::now();
    let register = json!({"username": format!("down{round}"), "password": PASSWORD});
    let login = json!({"username": "c0n1", "password": PASSWORD});
    let probes = [
        (Method::GET, "/readyz", None),
        (Method::GET, "/v1/users?limit=1", None),
        (Method::POST, "/v1/users", Some(register)),
        (Method::POST, "/v1/sessions", Some(login)),
    ];
    let one = |i: usize| {
        let (method, path, body) = &probes[i];
        call(app, client, method.clone(), path, None, body.clone())
    };
    let (a, b, c, d) = tokio::join!(one(0), one(1), one(2), one(3));
    let answers = [a, b, c, d];
    for ((method, path, _), a) in probes.iter().zip(answers) {
        let a = a.unwrap_or_else(|e| panic!("during the outage: {e}"));
        assert!(
            a.is_unavailable(),
            "{method} {path} during the outage: {} {:?} {}",
            a.status,
            a.retry_after,
            a.body
        );
        assert_eq!(a.retry_after.as_deref(), Some("1"));
        assert_eq!(a.body["status"], 503);
        assert!(a.took <= CALL_TIMEOUT, "{method} {path} took {:?}", a.took);
    }
    let live = call(app, client, Method::GET, "/healthz", None, None).await.unwrap();
    assert_eq!(live.status, 200, "liveness stays up");
    start.elapsed()
}

async fn outage(backend: Backend, how: Cut) {
    // The server's warnings and errors (the causes behind 503s and 500s), shown with a
    // failing test's output.
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let Some((app, proxy)) = app_behind_proxy(backend).await else { return };
    let app = Arc::new(app);
    let client = hallpass_server::client_builder().timeout(CALL_TIMEOUT).build().unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = tokio::task::JoinSet::new();
    for id in 0..4 {
        clients.spawn(client_loop(app.clone(), client.clone(), id, log.clone(), stop.clone()));
    }
    let before = Instant::now();
    while log.lock().unwrap().tokens.len() < 20 {
        assert!(before.elapsed() < Duration::from_secs(30), "no traffic gets through before the outage");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(log.lock().unwrap().wrong.is_empty(), "before the outage: {:?}", log.lock().unwrap().wrong);

    // ---- down
    proxy.cut(how);
    let cut_at = Instant::now();
    // The cut takes effect as the proxy's tasks wake: wait for the first 503 of /readyz.
    loop {
        let a = call(&app, &client, Method::GET, "/readyz", None, None).await.unwrap();
        if a.is_unavailable() {
            break;
        }
        assert_eq!(a.status, 200, "/readyz as the database goes: {}", a.body);
        assert!(
            cut_at.elapsed() < CALL_TIMEOUT,
            "/readyz still answers 200 {:?} after the cut",
            cut_at.elapsed()
        );
    }
    // Rounds of calls, as long as a round would end before the database is back.
    let mut rounds = 0;
    loop {
        rounds += 1;
        let took = probe_round(&app, &client, rounds).await;
        if cut_at.elapsed() + took + Duration::from_millis(100) >= how.outage() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(app.is_serving(), "the server task ended during the outage");
    tokio::time::sleep(how.outage().saturating_sub(cut_at.elapsed())).await;

    // ---- back
    proxy.restore();
    let restored_at = Instant::now();
    let ready = until_ok(&app, &client, "/readyz", restored_at).await;
    let api = until_ok(&app, &client, "/v1/users?limit=1", restored_at).await;
    assert!(ready.max(api) <= RECOVERY_LIMIT, "recovery took {:?}", ready.max(api));
    // The clients get through again, too.
    let tokens_then = log.lock().unwrap().tokens.len();
    let back = Instant::now();
    while log.lock().unwrap().tokens.len() < tokens_then + 10 {
        assert!(back.elapsed() <= RECOVERY_LIMIT, "the clients do not get through after the outage");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }

    let log = std::mem::take(&mut *log.lock().unwrap());
    assert!(
        log.wrong.is_empty(),
        "answers that were neither success nor 503 storage_unavailable: {:#?}",
        log.wrong
    );
    assert!(log.unavailable > 0, "the clients never saw the outage");
    assert!(log.slowest <= CALL_TIMEOUT, "slowest call {:?}", log.slowest);
    // Every acknowledged write is there.
    for name in &log.users {
        let a = call(&app, &client, Method::GET, &format!("/v1/users/{name}"), None, None).await.unwrap();
        assert_eq!(a.status, 200, "acknowledged user {name}: {}", a.body);
    }
    for token in &log.tokens {
        let a = call(&app, &client, Method::GET, "/v1/session", Some(token), None).await.unwrap();
        assert_eq!(a.status, 200, "acknowledged session: {}", a.body);
    }
    notice(&format!(
        "outage [{backend:?}, {how:?}]: {} users and {} sessions acknowledged, all present; {} answers 503 during the \
         outage ({rounds} rounds of probes), slowest call {:?}; back after the restore: /readyz {ready:?}, API {api:?}",
        log.users.len(),
        log.tokens.len(),
        log.unavailable,
        log.slowest
    ));
}

// Named so that the two slow ones (refused connections: calls wait out the 5 s acquire
// timeout) sort last and run side by side.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_closing_connections_mysql() {
    outage(Backend::Mysql, Cut::CloseAtOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_closing_connections_postgres() {
    outage(Backend::Postgres, Cut::CloseAtOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_refusing_connections_mysql() {
    outage(Backend::Mysql, Cut::Refuse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_refusing_connections_postgres() {
    outage(Backend::Postgres, Cut::Refuse).await;
}
