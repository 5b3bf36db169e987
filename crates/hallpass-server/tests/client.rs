//! `hallpass-client` against the real `hallpass` binary, on SQLite and PostgreSQL:
//!
//! - every client method, with its typed answers and typed errors;
//! - the session cache answering from memory, and refusing a session ended through
//!   ANOTHER server process within 100 ms (each delay printed);
//! - the change stream cut (by a TCP proxy in this test) and resumed with
//!   `Last-Event-ID`: a revocation made while it was down is not missed, and the cache
//!   was kept (no clear) because the resume succeeded; while down, checks ask the server
//!   and memory answers nothing;
//! - `reset`: the server behind the stream replaced by a new process (which cannot
//!   resume the old one's ids) makes the cache drop everything;
//! - the axum extractor: token from header, bearer and cookie, 401 without one.
//!
//! An unreachable PostgreSQL skips its tests with a notice, unless `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod process;

use hallpass_client::types::*;
use hallpass_client::{CacheConfig, Change, Client, Error, ProblemCode, Sessions};
use process::Server;
use sha1::{Digest as _, Sha1};
use std::io::Write as _;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const PASSWORD: &str = "quilted marsupial drumbeat 42";
const NEW_PASSWORD: &str = "verdant oboe lantern 77";
/// The contract: a change reaches a connected client within 100 ms.
const REVOCATION_LIMIT: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
enum Kind {
    Sqlite,
    Postgres,
}

enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(Box<hallpass_postgres::testing::TestDb>),
}

impl Db {
    async fn fresh(kind: Kind) -> Option<Db> {
        Some(match kind {
            Kind::Sqlite => Db::Sqlite(tempfile::tempdir().unwrap()),
            Kind::Postgres => {
                Db::Postgres(Box::new(hallpass_postgres::testing::TestDb::create_unmigrated().await?))
            }
        })
    }

    fn url(&self) -> String {
        match self {
            Db::Sqlite(dir) => format!("sqlite://{}", dir.path().join("hallpass.db").display()),
            Db::Postgres(db) => db.url(),
        }
    }
}

fn notice(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// `hallpass serve` on `url`, with a server key (second factors are sealed with it).
async fn serve(url: &str) -> Server {
    let mut c = process::command(url);
    c.env("HALLPASS_SECRET_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    process::serve(c, Duration::from_secs(30)).await
}

/// A database, a key of scope `app`, and server A on it.
struct Env {
    _db: Db,
    url: String,
    key: String,
    a: Server,
}

impl Env {
    async fn new(kind: Kind) -> Option<Env> {
        let db = Db::fresh(kind).await?;
        let url = db.url();
        let out = process::command(&url)
            .args(["keys", "create", "--scope", "app"])
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "keys create: {}", String::from_utf8_lossy(&out.stderr));
        let key = String::from_utf8_lossy(&out.stdout).lines().last().unwrap().to_owned();
        let a = serve(&url).await;
        Some(Env { _db: db, url, key, a })
    }

    fn client(&self, base: &str) -> Client {
        Client::new(base, &self.key).unwrap()
    }

    async fn another(&self) -> Server {
        serve(&self.url).await
    }
}

fn code_of(r: Result<impl std::fmt::Debug, Error>) -> ProblemCode {
    match r {
        Err(Error::Api(p)) => p.code,
        other => panic!("expected a problem, got {other:?}"),
    }
}

async fn user(hp: &Client, name: &str) -> User {
    hp.register(&RegisterRequest {
        username: Some(name.into()),
        email: Some(format!("{name}@example.com")),
        password: Some(PASSWORD.into()),
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn login(hp: &Client, name: &str, password: &str) -> LoginResponse {
    hp.login(&LoginRequest::password(name, password)).await.unwrap().session().expect("no second factor")
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

fn totp_now(secret_b32: &str) -> String {
    let (mut bits, mut acc, mut secret) = (0u32, 0u64, Vec::new());
    for c in secret_b32.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32"),
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            secret.push((acc >> bits) as u8);
        }
    }
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let mac = hmac_sha1(&secret, &((t / 30) as u64).to_be_bytes());
    let offset = usize::from(mac[19] & 0x0f);
    let bin = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    format!("{:06}", bin % 1_000_000)
}

// ---------------------------------------------------------------- every method

async fn every_method(kind: Kind) {
    let Some(env) = Env::new(kind).await else { return };
    let hp = env.client(&env.a.base);

    assert_eq!(hp.healthz().await.unwrap().status, "ok");
    assert_eq!(hp.readyz().await.unwrap().status, "ok");
    assert!(hp.metrics().await.unwrap().contains("# TYPE"));
    assert!(hp.openapi().await.unwrap()["paths"]["/v1/session"].is_object());
    let wrong = Client::new(&env.a.base, "hpk_wrong").unwrap();
    assert_eq!(code_of(wrong.get_user("x").await), ProblemCode::Unauthorized);

    // Users.
    let ada = user(&hp, "ada").await;
    assert_eq!(hp.get_user("ada@example.com").await.unwrap().id, ada.id);
    assert_eq!(
        code_of(
            hp.register(&RegisterRequest {
                username: Some("ADA".into()),
                password: Some(PASSWORD.into()),
                ..Default::default()
            })
            .await
        ),
        ProblemCode::UsernameTaken
    );
    assert_eq!(
        code_of(
            hp.register(&RegisterRequest {
                username: Some("weak".into()),
                password: Some("password".into()),
                ..Default::default()
            })
            .await
        ),
        ProblemCode::WeakPassword
    );
    let list = hp
        .list_users(&ListUsers { query: Some("ada".into()), limit: Some(10), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(list.users.len(), 1);
    let mut extra = Object::new();
    extra.insert("plan".into(), "pro".into());
    let changed = hp
        .update_user(
            &ada.id.to_string(),
            &UpdateUserRequest { group: Some("staff".into()), extra: Some(extra), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!((changed.group.as_str(), changed.extra["plan"].as_str()), ("staff", Some("pro")));
    // A ref with characters that need escaping in a path is one segment.
    assert_eq!(code_of(hp.get_user("no/such?user#").await), ProblemCode::UserNotFound);

    // Sessions.
    let mut stream = hp.changes(None).await.unwrap();
    let one = login(&hp, "ada", PASSWORD).await;
    assert_eq!(one.login.user_id, ada.id);
    let me = hp.get_session(&one.token).await.unwrap();
    assert_eq!((me.session.id, me.user.id), (one.session.id, ada.id));
    assert!(hp.freshen_session(&one.token).await.unwrap().session.expires_at >= one.session.expires_at);
    let patched = hp.patch_session_data(&one.token, &serde_json::json!({ "cart": 3 })).await.unwrap();
    assert_eq!(patched.session.data["cart"], 3);
    let two = login(&hp, "ada@example.com", PASSWORD).await;
    assert_eq!(hp.list_user_sessions("ada").await.unwrap().sessions.len(), 2);
    hp.end_other_sessions(&two.token).await.unwrap();
    assert_eq!(code_of(hp.get_session(&one.token).await), ProblemCode::SessionInvalid);
    let three = login(&hp, "ada", PASSWORD).await;
    hp.end_user_session("ada", three.session.id).await.unwrap();
    assert!(hp.get_session(&three.token).await.unwrap_err().is_session_invalid());
    hp.end_user_sessions("ada").await.unwrap();
    assert!(hp.list_user_sessions("ada").await.unwrap().sessions.is_empty());
    let four = login(&hp, "ada", PASSWORD).await;
    hp.end_session(&four.token).await.unwrap();
    hp.end_session(&four.token).await.unwrap();
    assert_eq!(code_of(hp.get_session("not a token\n").await), ProblemCode::SessionInvalid);
    assert_eq!(
        code_of(hp.login(&LoginRequest::password("ada", "wrong wrong wrong")).await),
        ProblemCode::InvalidCredentials
    );
    // The stream told of the ends, with ids to resume from.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ev = tokio::time::timeout_at(deadline.into(), stream.next())
            .await
            .expect("an event")
            .unwrap()
            .unwrap();
        if ev.change == (Change::SessionEnded { session_id: four.session.id, user_id: ada.id }) {
            assert!(ev.id.is_some());
            break;
        }
    }
    drop(stream);

    // History and statistics.
    let history = hp.login_history("ada", Some(2), None).await.unwrap();
    assert_eq!(history.events.len(), 2);
    assert!(history.next_cursor.is_some());
    let next = hp.login_history("ada", Some(2), history.next_cursor.as_deref()).await.unwrap();
    assert_ne!(next.events[0].id, history.events[0].id);
    let stats = hp.login_stats(None, None, Some(Bucket::Day)).await.unwrap();
    assert!(stats.buckets.iter().map(|b| b.logins).sum::<u64>() >= 4);

    // Passwords and codes.
    hp.set_password("ada", NEW_PASSWORD).await.unwrap();
    let reset = hp.create_reset_code("ada").await.unwrap();
    assert_eq!(reset.user_id, ada.id);
    assert_eq!(hp.redeem_reset_code(&reset.code, PASSWORD).await.unwrap(), ada.id);
    assert_eq!(code_of(hp.redeem_reset_code(&reset.code, PASSWORD).await), ProblemCode::InvalidCode);
    assert_eq!(code_of(hp.send_reset_email("ada").await), ProblemCode::MailNotConfigured);
    match hp.send_email_code("ada@example.com").await {
        Ok(()) => {}
        Err(e) => assert_eq!(e.code(), Some(&ProblemCode::MailNotConfigured), "{e}"),
    }
    assert_eq!(code_of(hp.send_confirmation("ada").await), ProblemCode::MailNotConfigured);
    assert_eq!(code_of(hp.redeem_confirmation("nope").await), ProblemCode::InvalidCode);

    // Providers.
    let linked = hp
        .link_provider(
            "ada",
            "github",
            &LinkProviderRequest {
                client_id: "gh-1".into(),
                access_token: Some("at".into()),
                refresh_token: Some("rt".into()),
                expires_in: Some(3600),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((linked.client_id.as_str(), linked.access_token_expired), ("gh-1", false));
    assert_eq!(linked.refresh_token.as_deref(), Some("rt"));
    assert!(!format!("{linked:?}").contains("\"rt\""), "a provider token in Debug");
    let updated = hp
        .update_provider(
            "ada",
            "github",
            &UpdateProviderRequest { access_token_expiry: Some(Some(1)), ..Default::default() },
        )
        .await
        .unwrap();
    assert!(updated.access_token_expired);
    assert!(hp.get_provider("ada", "github").await.unwrap().access_token_expired);
    assert_eq!(hp.list_providers("ada").await.unwrap().len(), 1);
    let by_provider = hp.login(&LoginRequest::provider("github", "gh-1")).await.unwrap().session().unwrap();
    assert_eq!(by_provider.login.oauth.unwrap().provider, "github");
    hp.unlink_provider("ada", "github").await.unwrap();
    assert_eq!(code_of(hp.get_provider("ada", "github").await), ProblemCode::ProviderNotLinked);

    // OIDC: nothing configured, so typed refusals.
    assert_eq!(
        code_of(hp.oidc_start("google", "https://app.example/done", None).await),
        ProblemCode::ProviderUnknown
    );
    let callback = hp.oidc_callback("google", &[("state", "nope"), ("code", "x")]).await;
    assert!(matches!(callback, Err(Error::Api(_))), "{callback:?}");
    assert_eq!(
        code_of(
            hp.oidc_exchange(&OidcExchangeRequest { code: "nope".into(), ..Default::default() }, None).await
        ),
        ProblemCode::InvalidCode
    );

    // Second factors: enrol, confirm, log in with a recovery code, remove.
    let session = login(&hp, "ada", PASSWORD).await;
    let enrolment = hp.enrol_totp("ada").await.unwrap();
    assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/"));
    let codes = hp.confirm_totp("ada", &totp_now(&enrolment.secret), Some(&session.token)).await.unwrap();
    assert_eq!(codes.recovery_codes.len(), 10);
    let codes = hp.new_recovery_codes("ada").await.unwrap();
    let LoginOutcome::MfaRequired(challenge) =
        hp.login(&LoginRequest::password("ada", PASSWORD)).await.unwrap()
    else {
        panic!("a second factor is required now")
    };
    assert!(challenge.methods.iter().any(|m| m == "recovery_code"));
    let answered = hp
        .answer_mfa(&MfaLoginRequest {
            challenge: challenge.challenge,
            recovery_code: Some(codes.recovery_codes[0].clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(answered.session.aal, 2);
    hp.delete_totp("ada", Some(&answered.token)).await.unwrap();
    hp.remove_mfa("ada").await.unwrap();
    assert!(hp.login(&LoginRequest::password("ada", PASSWORD)).await.unwrap().session().is_some());

    hp.delete_user("ada").await.unwrap();
    assert_eq!(code_of(hp.get_user("ada").await), ProblemCode::UserNotFound);
}

#[tokio::test]
async fn every_method_sqlite() {
    every_method(Kind::Sqlite).await;
}

#[tokio::test]
async fn every_method_postgres() {
    every_method(Kind::Postgres).await;
}

// ---------------------------------------------------------------- cache across processes

/// Polls until `sessions` no longer answers `token` from memory; the delay since `started`,
/// the moment the other process answered the call that made the change (its commit: the
/// call's own duration, Argon2 for a password, is not the stream's).
async fn refused_within(sessions: &Sessions, token: &str, started: Instant, what: &str) -> Duration {
    loop {
        if sessions.cached(token).is_none() {
            let took = started.elapsed();
            assert!(took <= REVOCATION_LIMIT, "{what}: refused after {took:?}, over {REVOCATION_LIMIT:?}");
            return took;
        }
        assert!(
            started.elapsed() <= REVOCATION_LIMIT,
            "{what}: still answered from memory after {REVOCATION_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn cache_and_revocation_across_processes(kind: Kind) {
    let Some(env) = Env::new(kind).await else { return };
    let b = env.another().await;
    let on_a = env.client(&env.a.base);
    let on_b = env.client(&b.base);
    let sessions = Sessions::start(on_a.clone(), CacheConfig::default());
    assert!(sessions.wait_live(Duration::from_secs(10)).await, "the change stream did not connect");
    user(&on_a, "ada").await;
    user(&on_a, "bob").await;

    // From memory: the second check does not ask the server.
    let t = login(&on_a, "ada", PASSWORD).await;
    let first = sessions.check(&t.token).await.unwrap();
    let before = sessions.stats();
    for _ in 0..100 {
        assert_eq!(sessions.check(&t.token).await.unwrap().session.id, first.session.id);
    }
    let after = sessions.stats();
    assert_eq!((after.hits - before.hits, after.misses - before.misses), (100, 0));

    // Ended through B: A's client refuses it within the limit, then the server says why.
    let mut delays = Vec::new();
    for i in 0..10 {
        let t = login(&on_a, "ada", PASSWORD).await;
        sessions.check(&t.token).await.unwrap();
        assert!(sessions.cached(&t.token).is_some());
        on_b.end_session(&t.token).await.unwrap();
        let started = Instant::now();
        delays
            .push(refused_within(&sessions, &t.token, started, &format!("{kind:?} logout #{i} on B")).await);
        assert!(sessions.check(&t.token).await.unwrap_err().is_session_invalid());
    }
    // A user deactivated through B: all of the user's cached sessions go.
    let t1 = login(&on_a, "bob", PASSWORD).await;
    let t2 = login(&on_a, "bob", PASSWORD).await;
    sessions.check(&t1.token).await.unwrap();
    sessions.check(&t2.token).await.unwrap();
    on_b.update_user("bob", &UpdateUserRequest { active: Some(false), ..Default::default() }).await.unwrap();
    let started = Instant::now();
    delays.push(refused_within(&sessions, &t1.token, started, "deactivation on B").await);
    refused_within(&sessions, &t2.token, started, "deactivation on B, second session").await;
    assert!(sessions.check(&t2.token).await.unwrap_err().is_session_invalid());
    // A password set through B.
    let t = login(&on_a, "ada", PASSWORD).await;
    sessions.check(&t.token).await.unwrap();
    on_b.set_password("ada", NEW_PASSWORD).await.unwrap();
    let started = Instant::now();
    delays.push(refused_within(&sessions, &t.token, started, "password set on B").await);
    delays.sort();
    notice(&format!("{kind:?}: revocation through another process refused after {delays:?}"));
    b.stop().await;
}

#[tokio::test]
async fn cache_and_revocation_across_processes_sqlite() {
    cache_and_revocation_across_processes(Kind::Sqlite).await;
}

#[tokio::test]
async fn cache_and_revocation_across_processes_postgres() {
    cache_and_revocation_across_processes(Kind::Postgres).await;
}

// ---------------------------------------------------------------- a proxy that cuts the stream

/// A TCP proxy in front of a server: `cut` drops the open change streams, `block` refuses
/// new ones (other calls pass), `upstream` can be switched to another server.
#[derive(Clone)]
struct Proxy {
    base: String,
    upstream: Arc<Mutex<String>>,
    blocked: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            base: format!("http://{}", listener.local_addr().unwrap()),
            upstream: Arc::new(Mutex::new(upstream.trim_start_matches("http://").to_owned())),
            blocked: Arc::new(AtomicBool::new(false)),
            streams: Arc::new(Mutex::new(Vec::new())),
        };
        let p = proxy.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let p = p.clone();
                tokio::spawn(async move { p.serve(conn).await });
            }
        });
        proxy
    }

    async fn serve(&self, mut conn: TcpStream) {
        let mut first = vec![0u8; 4096];
        let Ok(n) = conn.read(&mut first).await else { return };
        let is_stream = first[..n].starts_with(b"GET /v1/changes");
        if is_stream && self.blocked.load(Ordering::SeqCst) {
            return;
        }
        let addr = self.upstream.lock().unwrap().clone();
        let Ok(mut up) = TcpStream::connect(addr).await else { return };
        if up.write_all(&first[..n]).await.is_err() {
            return;
        }
        let task = tokio::spawn(async move {
            let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
        });
        // Only the stream's connections can be cut (they carry nothing else: the client
        // keeps a separate connection pool for the stream).
        if is_stream {
            self.streams.lock().unwrap().push(task.abort_handle());
        }
    }

    fn cut(&self) {
        for t in self.streams.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

async fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn stream_cut_resumed_and_reset(kind: Kind) {
    let Some(env) = Env::new(kind).await else { return };
    let proxy = Proxy::start(&env.a.base).await;
    let via_proxy = env.client(&proxy.base);
    // Changes are made through A directly (not through the proxy). Through another
    // process on SQLite every write is a `reset` (its change channel only knows that the
    // file changed), which would hide what this test is about; the other process's
    // revocations are `cache_and_revocation_across_processes`.
    let on_a = env.client(&env.a.base);
    let config = CacheConfig { reconnect_delay: Duration::from_millis(20), ..CacheConfig::default() };
    let sessions = Sessions::start(via_proxy.clone(), config);
    assert!(sessions.wait_live(Duration::from_secs(10)).await);
    user(&on_a, "ada").await;

    // One event seen, so the client has an id to resume from.
    let t0 = login(&on_a, "ada", PASSWORD).await;
    sessions.check(&t0.token).await.unwrap();
    on_a.end_session(&t0.token).await.unwrap();
    wait_until(Duration::from_secs(2), "first event", || sessions.cached(&t0.token).is_none()).await;

    let keep = login(&on_a, "ada", PASSWORD).await;
    let doomed = login(&on_a, "ada", PASSWORD).await;
    sessions.check(&keep.token).await.unwrap();
    sessions.check(&doomed.token).await.unwrap();
    let clears = sessions.stats().clears;

    // Cut: memory stops answering, checks ask the server.
    proxy.blocked.store(true, Ordering::SeqCst);
    proxy.cut();
    wait_until(Duration::from_secs(2), "stream seen down", || !sessions.is_live()).await;
    assert!(sessions.cached(&keep.token).is_none(), "memory answered while the stream was down");
    let misses = sessions.stats().misses;
    sessions.check(&keep.token).await.unwrap();
    assert_eq!(sessions.stats().misses, misses + 1, "a check while down asks the server");

    // Revoked while the stream is down.
    on_a.end_session(&doomed.token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Resumed: the missed revocation is applied, the rest of the cache kept.
    proxy.blocked.store(false, Ordering::SeqCst);
    assert!(sessions.wait_live(Duration::from_secs(10)).await, "the stream did not come back");
    assert!(
        sessions.cached(&doomed.token).is_none(),
        "the revocation made while the stream was down was missed"
    );
    assert!(sessions.check(&doomed.token).await.unwrap_err().is_session_invalid());
    assert!(sessions.cached(&keep.token).is_some(), "a successful resume kept the cache");
    assert_eq!(sessions.stats().clears, clears, "a successful resume does not clear");

    // Reset: the server behind the stream replaced by another process, which cannot resume
    // the old one's ids: the client drops everything.
    let c = env.another().await;
    *proxy.upstream.lock().unwrap() = c.base.trim_start_matches("http://").to_owned();
    proxy.cut();
    wait_until(Duration::from_secs(10), "reset after reconnecting elsewhere", || {
        sessions.stats().clears > clears
    })
    .await;
    assert!(sessions.wait_live(Duration::from_secs(10)).await);
    assert!(sessions.cached(&keep.token).is_none(), "reset dropped the cache");
    assert_eq!(sessions.check(&keep.token).await.unwrap().session.id, keep.session.id);
    assert!(sessions.cached(&keep.token).is_some());
    c.stop().await;
}

#[tokio::test]
async fn stream_cut_resumed_and_reset_sqlite() {
    stream_cut_resumed_and_reset(Kind::Sqlite).await;
}

#[tokio::test]
async fn stream_cut_resumed_and_reset_postgres() {
    stream_cut_resumed_and_reset(Kind::Postgres).await;
}

// ---------------------------------------------------------------- the axum extractor

#[tokio::test]
async fn axum_extractor_reads_header_bearer_and_cookie() {
    use axum::routing::get;
    use hallpass_client::Authenticated;
    let Some(env) = Env::new(Kind::Sqlite).await else { return };
    let hp = env.client(&env.a.base);
    let config = CacheConfig { cookie: Some("sid".into()), ..CacheConfig::default() };
    let sessions = Sessions::start(hp.clone(), config);
    async fn me(who: Authenticated) -> String {
        who.user.username.clone().unwrap_or_default()
    }
    let app = axum::Router::new().route("/me", get(me)).with_state(sessions);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    user(&hp, "ada").await;
    let t = login(&hp, "ada", PASSWORD).await;
    let http = hallpass_server::client_builder().build().unwrap();
    let url = format!("{base}/me");
    for rb in [
        http.get(&url).header("x-session-token", &t.token),
        http.get(&url).bearer_auth(&t.token),
        http.get(&url).header("cookie", format!("theme=dark; sid={}", t.token)),
    ] {
        let res = rb.send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "ada");
    }
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    // Ended behind the app's back (not through its `Sessions`): the change stream tells the
    // cache, and the app refuses the token within the contract's limit.
    hp.end_session(&t.token).await.unwrap();
    let ended = Instant::now();
    loop {
        let res = http.get(&url).bearer_auth(&t.token).send().await.unwrap();
        if res.status() == 401 {
            break;
        }
        assert!(ended.elapsed() <= REVOCATION_LIMIT, "still let in after {REVOCATION_LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
