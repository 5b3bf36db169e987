//! Several `hallpass` processes on one database: the real binary, started twice as
//! `hallpass serve` (A and B) on one fresh SQLite file, PostgreSQL or MariaDB database,
//! with the CLI beside them. The servers run with their default caching (`HALLPASS_CACHE=auto`:
//! on for all three, whose change channels — SQLite's `data_version` watcher, PostgreSQL's
//! `LISTEN`, MariaDB's polled `hallpass_changes` log — must then carry every revocation;
//! the test checks through `/metrics` that the other process really cached the session).
//! Asserts that nothing a process knows is the only copy:
//!
//! - a key made by `hallpass keys create` works on both servers; a token made on A works on
//!   B;
//! - ending a session on A, deactivating a user on B, and changing a password on A are
//!   refused by the other process within 1 s (polled with a deadline; the measured delay
//!   is printed);
//! - freshening one session alternately on A and B from several clients at once never moves
//!   `expires_at` backwards, neither as returned nor as read back (checked against every
//!   value already seen when a call started); the other process's get-session shows the
//!   new expiry within the same limit (a cache hears of the freshen through the channel);
//! - a burst of 50 wrong guesses at one account, split across A and B, gets exactly the
//!   throttle's 10 free attempts checked;
//! - two `hallpass migrate` (and two `serve` starting at once) on a fresh database both
//!   succeed.
//!
//! Each test has a database of its own (`TestDb` / `TestDatabase`), dropped at its end. An
//! unreachable server skips the test with a notice, unless `CI=true`, where it fails.

#![allow(clippy::unwrap_used)]

mod process;

use process::Server;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Write as _;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::process::Command;

/// Passwords no strength rule refuses (nothing of the usernames in them).
const PASSWORD: &str = "quilted marsupial drumbeat 42";
const NEW_PASSWORD: &str = "verdant oboe lantern 77";

/// How soon another process must refuse what one process ended.
const REVOCATION_LIMIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
enum Kind {
    Sqlite,
    Postgres,
    Mysql,
}

/// A fresh, empty (unmigrated) database of its own, dropped with this value.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(Box<hallpass_postgres::testing::TestDb>),
    Mysql(Box<hallpass_mysql::testing::TestDatabase>),
}

impl Db {
    /// `None` when the server cannot be reached outside CI (the harness printed a notice).
    async fn fresh(kind: Kind) -> Option<Db> {
        Some(match kind {
            Kind::Sqlite => Db::Sqlite(tempfile::tempdir().unwrap()),
            Kind::Postgres => {
                Db::Postgres(Box::new(hallpass_postgres::testing::TestDb::create_unmigrated().await?))
            }
            Kind::Mysql => Db::Mysql(Box::new(hallpass_mysql::testing::TestDatabase::create().await?)),
        })
    }

    fn url(&self) -> String {
        match self {
            Db::Sqlite(dir) => format!("sqlite://{}", dir.path().join("hallpass.db").display()),
            Db::Postgres(db) => db.url(),
            Db::Mysql(db) => db.url().to_owned(),
        }
    }
}

/// Writes past the test harness's capture, so measurements show in a normal run.
fn notice(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// `hallpass` on `url` as [`process::command`] makes it, with a short idle timeout: a
/// freshen writes when it moves the expiry by a hundredth of it (0.1 s), so the concurrent
/// freshens below really write.
fn command(url: &str) -> Command {
    let mut c = process::command(url);
    c.env("HALLPASS_SESSION_IDLE_TIMEOUT", "10s");
    c
}

/// Runs a CLI command to its end: (success, stdout, stderr).
async fn cli(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = command(url).args(args).stdin(Stdio::null()).output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Starts `hallpass serve` on `url` (the [`command`] of these tests).
async fn start(url: &str) -> Server {
    process::serve(command(url), Duration::from_secs(30)).await
}

/// A client of one server with the API key.
#[derive(Clone)]
struct Api {
    name: &'static str,
    base: String,
    key: String,
    client: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rb = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(t) = token {
            rb = rb.header("x-session-token", t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let res = rb.send().await.unwrap_or_else(|e| panic!("{} {path}: {e}", self.name));
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
        (status, value)
    }

    async fn register(&self, username: &str, password: &str) -> Value {
        let (s, v) = self
            .call(Method::POST, "/v1/users", None, Some(json!({"username": username, "password": password})))
            .await;
        assert_eq!(s, 201, "{}: register {username}: {v}", self.name);
        v
    }

    async fn login(&self, username: &str, password: &str) -> String {
        let (s, v) = self
            .call(
                Method::POST,
                "/v1/sessions",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(s, 201, "{}: login {username}: {v}", self.name);
        v["token"].as_str().unwrap().to_owned()
    }

    async fn session(&self, token: &str) -> (u16, Value) {
        self.call(Method::GET, "/v1/session", Some(token), None).await
    }

    /// Sessions in the server's cache (`hallpass_session_cache_entries` of `/metrics`).
    async fn cached_sessions(&self) -> f64 {
        let res = self.client.get(format!("{}/metrics", self.base)).send().await.unwrap();
        let text = res.text().await.unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("hallpass_session_cache_entries "))
            .unwrap_or_else(|| panic!("{}: no cache gauge in /metrics", self.name));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }
}

fn client() -> reqwest::Client {
    hallpass_server::client_builder().timeout(Duration::from_secs(10)).build().unwrap()
}

/// Asserts `(status, body)` is a problem with `status` and `code`.
#[track_caller]
fn assert_problem(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
}

/// Polls `probe` until it answers `true`; returns how long that took, failing the test
/// when it takes longer than [`REVOCATION_LIMIT`].
async fn within_limit<F, Fut>(what: &str, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if probe().await {
            let took = start.elapsed();
            assert!(took <= REVOCATION_LIMIT, "{what} took {took:?}, over {REVOCATION_LIMIT:?}");
            return took;
        }
        assert!(start.elapsed() <= REVOCATION_LIMIT, "{what}: not seen within {REVOCATION_LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn ts(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}")), &Rfc3339).unwrap()
}

async fn two_servers_on_one_database(kind: Kind) {
    let Some(db) = Db::fresh(kind).await else { return };
    let url = db.url();
    // Both start (and migrate the empty database) at once.
    let (server_a, server_b) = tokio::join!(start(&url), start(&url));
    let (ok, stdout, stderr) =
        cli(&url, &["keys", "create", "--scope", "app", "--name", "multiprocess"]).await;
    assert!(ok, "keys create: {stderr}");
    let key = stdout.lines().last().unwrap().to_owned();
    assert!(key.starts_with("hpk_"), "{stdout:?}");
    let c = client();
    let a = Api { name: "A", base: server_a.base.clone(), key: key.clone(), client: c.clone() };
    let b = Api { name: "B", base: server_b.base.clone(), key, client: c };

    // Registered and logged in through A; the token works on B.
    let ada = a.register("ada", PASSWORD).await;
    let token = a.login("ada", PASSWORD).await;
    let (s, v) = b.session(&token).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["user"]["id"], ada["id"]);
    // B caches by default (every backend has a change channel): what follows tests the
    // channel, not a database read. (The cache counts its entries lazily, as later reads
    // run its housekeeping: polled.)
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.cached_sessions().await < 1.0 {
        assert!(Instant::now() < deadline, "{kind:?}: B does not cache by default");
        assert_eq!(b.session(&token).await.0, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Ended through A: B refuses the token.
    let (s, _) = a.call(Method::DELETE, "/v1/session", Some(&token), None).await;
    assert_eq!(s, 204);
    let end_delay = within_limit("B refusing a session ended on A", || async {
        let got = b.session(&token).await;
        if got.0 == 200 {
            return false;
        }
        assert_problem(&got, 401, "session_invalid");
        true
    })
    .await;

    // Deactivated through B: A refuses the user's token and the user's logins.
    b.register("bea", PASSWORD).await;
    let token = b.login("bea", PASSWORD).await;
    assert_eq!(a.session(&token).await.0, 200);
    let (s, v) = b.call(Method::PATCH, "/v1/users/bea", None, Some(json!({"active": false}))).await;
    assert_eq!((s, &v["active"]), (200, &json!(false)), "{v}");
    let deactivate_delay = within_limit("A refusing the session of a user deactivated on B", || async {
        let got = a.session(&token).await;
        if got.0 == 200 {
            return false;
        }
        assert_problem(&got, 401, "session_invalid");
        true
    })
    .await;
    let got = a
        .call(Method::POST, "/v1/sessions", None, Some(json!({"username": "bea", "password": PASSWORD})))
        .await;
    assert_problem(&got, 403, "user_inactive");

    // Password changed through A: B refuses the old sessions (made on A and on B) and the
    // old password, and takes the new one.
    a.register("cy", PASSWORD).await;
    let on_a = a.login("cy", PASSWORD).await;
    let on_b = b.login("cy", PASSWORD).await;
    assert_eq!(b.session(&on_a).await.0, 200);
    let (s, v) =
        a.call(Method::PUT, "/v1/users/cy/password", None, Some(json!({"password": NEW_PASSWORD}))).await;
    assert_eq!(s, 204, "{v}");
    let password_delay = within_limit("B refusing sessions after a password change on A", || async {
        let (x, y) = (b.session(&on_a).await, b.session(&on_b).await);
        if x.0 == 200 || y.0 == 200 {
            return false;
        }
        assert_problem(&x, 401, "session_invalid");
        assert_problem(&y, 401, "session_invalid");
        true
    })
    .await;
    let got = b
        .call(Method::POST, "/v1/sessions", None, Some(json!({"username": "cy", "password": PASSWORD})))
        .await;
    assert_problem(&got, 401, "invalid_credentials");
    b.login("cy", NEW_PASSWORD).await;

    freshen_alternately(&a, &b).await;

    notice(&format!(
        "multiprocess [{kind:?}]: refused by the other process after: session end {end_delay:?}, \
         deactivation {deactivate_delay:?}, password change {password_delay:?}"
    ));
    // A burst of 50 wrong guesses at one account, half through each process: the
    // throttle's budget (10 free attempts) holds across processes, because each attempt
    // takes its place in the shared counter before its password is checked.
    a.register("brute", PASSWORD).await;
    let guess = json!({"username": "brute", "password": "not the password", "client": {"ip": "203.0.113.7"}});
    let sends = (0..50).map(|i| {
        let api = if i % 2 == 0 { a.clone() } else { b.clone() };
        let guess = guess.clone();
        async move { api.call(Method::POST, "/v1/sessions", None, Some(guess)).await.0 }
    });
    let statuses = futures_util::future::join_all(sends).await;
    let count = |s: u16| statuses.iter().filter(|x| **x == s).count();
    assert_eq!((count(401), count(429)), (10, 40), "{kind:?}: {statuses:?}");
    server_a.stop().await;
    server_b.stop().await;
    drop(db);
}

/// Several clients freshen one session at once, alternating between A and B, and read it
/// back from the other server. `expires_at` is a value that only grows: every answer must
/// be at least the largest value any call had already answered when this one started.
async fn freshen_alternately(a: &Api, b: &Api) {
    a.register("dee", PASSWORD).await;
    let token = a.login("dee", PASSWORD).await;
    let (s, v) = a.session(&token).await;
    assert_eq!(s, 200, "{v}");
    let seen = Arc::new(Mutex::new(ts(&v["session"]["expires_at"])));
    const CLIENTS: usize = 4;
    const ROUNDS: usize = 25;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (a, b, token, seen) = (a.clone(), b.clone(), token.clone(), seen.clone());
        tasks.spawn(async move {
            for round in 0..ROUNDS {
                let (writer, reader) = if (client + round) % 2 == 0 { (&a, &b) } else { (&b, &a) };
                let floor = *seen.lock().unwrap();
                let (s, v) = writer.call(Method::POST, "/v1/session/freshen", Some(&token), None).await;
                assert_eq!(s, 200, "freshen on {}: {v}", writer.name);
                let fresh = ts(&v["session"]["expires_at"]);
                assert!(fresh >= floor, "freshen on {} answered {fresh}, earlier than {floor}", writer.name);
                let floor = {
                    let mut m = seen.lock().unwrap();
                    *m = (*m).max(fresh);
                    *m
                };
                // The other process shows at least that, at once or (a cached copy
                // waiting for the change notification) within the revocation limit.
                let start = Instant::now();
                let read = loop {
                    let (s, v) = reader.session(&token).await;
                    assert_eq!(s, 200, "read back on {}: {v}", reader.name);
                    let read = ts(&v["session"]["expires_at"]);
                    if read >= floor {
                        break read;
                    }
                    assert!(
                        start.elapsed() <= REVOCATION_LIMIT,
                        "read back on {} still saw {read}, earlier than {floor}",
                        reader.name
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                };
                let mut m = seen.lock().unwrap();
                *m = (*m).max(read);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

async fn two_migrations_at_once(kind: Kind) {
    let Some(db) = Db::fresh(kind).await else { return };
    let url = db.url();
    let (first, second) = tokio::join!(cli(&url, &["migrate"]), cli(&url, &["migrate"]));
    assert!(first.0, "first migrate failed: {}", first.2);
    assert!(second.0, "second migrate failed: {}", second.2);
    // The schema is complete: the CLI works on it, and migrating again changes nothing.
    let (ok, _, stderr) = cli(&url, &["keys", "create", "--scope", "app"]).await;
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = cli(&url, &["migrate"]).await;
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = cli(&url, &["keys", "list", "--json"]).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_servers_on_one_file() {
    two_servers_on_one_database(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_servers_on_one_database() {
    two_servers_on_one_database(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_two_servers_on_one_database() {
    two_servers_on_one_database(Kind::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_migrations_at_once() {
    two_migrations_at_once(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_two_migrations_at_once() {
    two_migrations_at_once(Kind::Mysql).await;
}
