//! Sign-in through identity providers, end to end over HTTP: the real app on port 0 (SQLite),
//! a real OpenID provider (`oidc-provider` from npm, `tests/oidc/provider.mjs`) whose
//! development login form the test fills in with a cookie jar of its own, and a small
//! hostile provider plus a GitHub-style OAuth 2.0 stand-in (`tests/oidc/hostile.mjs`).
//!
//! Needs `node` and `npm ci` in `tests/oidc` (scripts/setup.sh does it). Without them the
//! tests say so on stderr and pass, unless `CI=true`, where that is a failure.

use hallpass_core::{Hallpass, HashParams, Scope, ServerSecret, Settings};
use hallpass_server::config::Config;
use hallpass_server::http::{AppState, build_app};
use hallpass_server::metrics::Metrics;
use hallpass_server::oidc::Oidc;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncBufReadExt;

const RETURN_TO: &str = "https://app.example/auth/done";

/// A Node provider on a free port, stopped with the test.
struct Node {
    _child: tokio::process::Child,
    issuer: String,
}

fn oidc_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc")
}

/// Starts `tests/oidc/<script>`; `None` (after a notice) when node or the npm packages are
/// missing outside CI.
async fn node(script: &str, env: &[(&str, String)]) -> Option<Node> {
    let dir = oidc_dir();
    let ready = dir.join("node_modules/oidc-provider").exists();
    let spawned = if ready {
        tokio::process::Command::new("node")
            .arg(script)
            .current_dir(&dir)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .ok()
    } else {
        None
    };
    let Some(mut child) = spawned else {
        let why = "node or tests/oidc/node_modules is missing (run scripts/setup.sh)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why}");
        }
        eprintln!("skipping the OIDC test: {why}");
        return None;
    };
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .expect("the provider starts")
        .expect("read")
        .expect("a line");
    let issuer = line.strip_prefix("issuer ").expect("the issuer line").to_owned();
    // Keep reading so the pipe never fills.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some(Node { _child: child, issuer })
}

/// The app, the providers and an HTTP client that follows no redirects.
struct World {
    base: String,
    key: String,
    other_key: String,
    http: reqwest::Client,
    service: Arc<Hallpass>,
    db: PathBuf,
    op: Node,
    hostile: Node,
    _dir: tempfile::TempDir,
}

/// The providers of scope `app`, as an operator writes them.
fn config_toml(base: &str, op: &str, hostile: &str) -> String {
    format!(
        r#"
public_url = "{base}"

[scopes.app.oidc.op]
issuer = "{op}"
client_id = "hallpass"
client_secret = "hallpass-secret"
return_to = ["{RETURN_TO}"]
link_by_verified_email = true

[scopes.app.oidc.opnolink]
issuer = "{op}"
client_id = "hallpass"
client_secret_file = "SECRET_FILE"
return_to = ["{RETURN_TO}"]

[scopes.app.oidc.opref]
issuer = "{op}"
client_id = "hallpass"
client_secret = "hallpass-secret"
return_to = ["{RETURN_TO}"]
new_users = "refuse"

[scopes.app.oidc.opoffline]
issuer = "{op}"
client_id = "hallpass"
client_secret = "hallpass-secret"
scopes = ["openid", "email", "offline_access"]
return_to = ["{RETURN_TO}"]

[scopes.app.oidc.opplain]
authorization_endpoint = "{op}/auth"
token_endpoint = "{op}/token"
userinfo_endpoint = "{op}/me"
subject_claim = "sub"
scopes = ["openid", "email", "profile"]
client_id = "hallpass"
client_secret = "hallpass-secret"
return_to = ["{RETURN_TO}"]

[scopes.app.oidc.gh]
authorization_endpoint = "{hostile}/oauth/authorize"
token_endpoint = "{hostile}/oauth/token"
userinfo_endpoint = "{hostile}/oauth/user"
subject_claim = "id"
username_claim = "login"
client_id = "hallpass"
client_secret = "gh-secret"
return_to = ["{RETURN_TO}"]

[scopes.app.oidc.hostile]
issuer = "{hostile}"
client_id = "hallpass"
client_secret = "hostile-secret"
return_to = ["{RETURN_TO}"]
"#
    )
}

async fn world() -> Option<World> {
    // The server's log (why a sign-in failed) shows with the failing test's output.
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("hallpass_server=info").try_init();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let store = hallpass_sqlite::SqliteStore::open(&db).expect("open sqlite");
    let settings =
        Settings { hash_params: HashParams { m_cost: 256, t_cost: 1, p_cost: 1 }, ..Default::default() };
    let service = Arc::new(
        Hallpass::new(Arc::new(store), settings)
            .expect("service")
            .with_server_secret(ServerSecret::from_bytes(&[9; 32])),
    );
    let (_, key) = service.create_api_key(Scope::parse("app").expect("ok"), None).await.expect("key");
    let (_, other) = service.create_api_key(Scope::parse("other").expect("ok"), None).await.expect("key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let callbacks: Vec<String> = ["op", "opnolink", "opref", "opplain", "opoffline"]
        .iter()
        .map(|p| format!("{base}/v1/oidc/{p}/callback"))
        .collect();
    let op = node("provider.mjs", &[("REDIRECT_URIS", callbacks.join(","))]).await?;
    let hostile = node("hostile.mjs", &[]).await?;

    // The configuration is read as `serve` reads it: from a file, checked.
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, "hallpass-secret\n").expect("secret file");
    let toml = config_toml(&base, &op.issuer, &hostile.issuer)
        .replace("SECRET_FILE", secret_file.to_str().expect("utf-8 path"));
    let file = dir.path().join("hallpass.toml");
    std::fs::write(&file, toml).expect("config file");
    let config = Config::load(Some(&file)).expect("the configuration is valid");
    let oidc = Arc::new(Oidc::from_config(&config).expect("providers"));

    let app = build_app(AppState {
        service: service.clone(),
        body_limit: 64 * 1024,
        metrics: Arc::new(Metrics::new()),
        admin: Default::default(),
        oidc,
    });
    // As `serve` does: the connection's address is what the callback records.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let http = hallpass_server::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Some(World {
        base,
        key: key.expose().to_owned(),
        other_key: other.expose().to_owned(),
        http,
        service,
        db,
        op,
        hostile,
        _dir: dir,
    })
}

/// A browser's cookies at the provider (one host, so names are enough).
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all("set-cookie") {
            let Ok(v) = v.to_str() else { continue };
            let pair = v.split(';').next().unwrap_or_default();
            if let Some((k, val)) = pair.split_once('=') {
                self.0.insert(k.trim().to_owned(), val.trim().to_owned());
            }
        }
    }
    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
}

/// How the browser answers the provider's pages.
#[derive(Clone, Copy, PartialEq)]
enum Consent {
    Give,
    Deny,
}

impl World {
    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(key);
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        let res = rb.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `start` for `provider`: the authorization URL.
    async fn start(&self, provider: &str, session: Option<&str>) -> String {
        let mut rb = self
            .http
            .post(format!("{}/v1/oidc/{provider}/start", self.base))
            .bearer_auth(&self.key)
            .json(&json!({"return_to": RETURN_TO}));
        if let Some(token) = session {
            rb = rb.header("x-session-token", token);
        }
        let res = rb.send().await.expect("start");
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.expect("json");
        assert!(body["expires_at"].is_string(), "{body}");
        body["authorize_url"].as_str().expect("authorize_url").to_owned()
    }

    /// The browser at the provider: follows its redirects, signs in as `login` on the
    /// development form, consents (or not), until the provider sends it to hallpass's
    /// callback; answers that URL.
    async fn at_provider(&self, authorize_url: &str, login: &str, consent: Consent) -> String {
        let mut jar = Jar::default();
        let mut url = authorize_url.to_owned();
        for _ in 0..20 {
            if url.starts_with(&self.base) {
                return url;
            }
            let res = self.http.get(&url).header("cookie", jar.header()).send().await.expect("provider");
            jar.take(&res);
            if res.status().is_redirection() {
                let location = res.headers()["location"].to_str().expect("location").to_owned();
                url = absolute(&url, &location);
                continue;
            }
            // An interaction page: the login form or the consent form.
            let page = res.text().await.expect("page");
            let form = if page.contains(r#"name="prompt" value="login""#) {
                vec![("prompt", "login"), ("login", login), ("password", "any")]
            } else if page.contains(r#"name="prompt" value="consent""#) {
                if consent == Consent::Deny {
                    url = format!("{url}/abort");
                    continue;
                }
                vec![("prompt", "consent")]
            } else {
                panic!("unexpected provider page at {url}: {page}");
            };
            let res =
                self.http.post(&url).header("cookie", jar.header()).form(&form).send().await.expect("form");
            jar.take(&res);
            assert!(res.status().is_redirection(), "the form answers a redirect: {}", res.status());
            url = absolute(&url, res.headers()["location"].to_str().expect("location"));
        }
        panic!("the provider never sent the browser back");
    }

    /// The browser at hallpass's callback: the status and the `Location` (if any).
    async fn callback(&self, url: &str) -> (StatusCode, Option<String>, Value) {
        let res = self.http.get(url).send().await.expect("callback");
        let status = res.status();
        let location = res.headers().get("location").map(|l| l.to_str().expect("location").to_owned());
        let body = serde_json::from_str(&res.text().await.expect("body")).unwrap_or(Value::Null);
        (status, location, body)
    }

    /// The whole redirect chain up to `return_to?code=...`: the one-time code.
    async fn sign_in(&self, provider: &str, login: &str, session: Option<&str>) -> String {
        let authorize = self.start(provider, session).await;
        let back = self.at_provider(&authorize, login, Consent::Give).await;
        let (status, location, body) = self.callback(&back).await;
        assert_eq!(status, StatusCode::FOUND, "{body}");
        code_of(&location.expect("a location"))
    }

    async fn exchange(&self, code: &str, key: &str) -> (StatusCode, Value) {
        self.api(reqwest::Method::POST, "/v1/oidc/exchange", key, Some(json!({"code": code}))).await
    }

    /// The stored outcomes of events with `method`, oldest first (read from the database).
    /// `(outcome, ip, user_agent)` of the login events with `method`, oldest first.
    fn events(&self, method: &str) -> Vec<(String, Option<String>, Option<String>)> {
        let conn = rusqlite::Connection::open(&self.db).expect("open");
        let mut stmt = conn
            .prepare("SELECT outcome, ip, user_agent FROM login_events WHERE method = ?1 ORDER BY id")
            .expect("prepare");
        stmt.query_map([method], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect()
    }

    fn outcomes(&self, method: &str) -> Vec<String> {
        let conn = rusqlite::Connection::open(&self.db).expect("open");
        let mut stmt =
            conn.prepare("SELECT outcome FROM login_events WHERE method = ?1 ORDER BY id").expect("prepare");
        stmt.query_map([method], |r| r.get(0)).expect("query").map(|r| r.expect("row")).collect()
    }
}

fn absolute(base: &str, location: &str) -> String {
    url::Url::parse(base).expect("url").join(location).expect("join").to_string()
}

/// The `code` of a redirect to `return_to`, which carries nothing else.
fn code_of(location: &str) -> String {
    let url = url::Url::parse(location).expect("url");
    assert!(location.starts_with(RETURN_TO), "{location}");
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(pairs.len(), 1, "only the code travels: {location}");
    assert_eq!(pairs[0].0, "code", "{location}");
    assert!(!location.contains("hps_"), "no session token in a URL");
    pairs[0].1.clone()
}

fn error_of(location: &str) -> String {
    let url = url::Url::parse(location).expect("url");
    assert!(location.starts_with(RETURN_TO), "{location}");
    url.query_pairs().find(|(k, _)| k == "error").map(|(_, v)| v.into_owned()).expect("an error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_signs_in_then_comes_back_as_the_same_user() {
    let Some(w) = world().await else { return };
    let code = w.sign_in("op", "alice", None).await;
    let (status, login) = w.exchange(&code, &w.key).await;
    assert_eq!(status, StatusCode::CREATED, "{login}");
    let token = login["token"].as_str().expect("token").to_owned();
    let user_id = login["login"]["user_id"].as_str().expect("user id").to_owned();
    assert_eq!(login["login"]["username"], "alice");
    assert_eq!(login["login"]["email"], "alice@example.com");
    let oauth = &login["login"]["oauth"];
    assert_eq!(oauth["provider"], "op");
    assert_eq!(oauth["client_id"], "alice", "the subject");
    let access_token = oauth["access_token"].as_str().expect("an access token").to_owned();
    assert!(oauth["access_token_expiry"].is_i64() && oauth["access_token_expired"] == false, "{oauth}");

    // The session works like any other.
    let res = w
        .http
        .get(format!("{}/v1/session", w.base))
        .bearer_auth(&w.key)
        .header("x-session-token", &token)
        .send()
        .await
        .expect("session");
    assert_eq!(res.status(), StatusCode::OK);

    // The provider link shows the token as the seed's addAuthProvider does...
    let (status, link) =
        w.api(reqwest::Method::GET, &format!("/v1/users/{user_id}/providers/op"), &w.key, None).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    assert_eq!(link["access_token"], access_token.as_str());
    // ...and the database holds it sealed, bound to its row.
    let conn = rusqlite::Connection::open(&w.db).expect("open");
    let stored: String = conn
        .query_row("SELECT access_token FROM identities WHERE provider = 'op'", [], |r| r.get(0))
        .expect("row");
    assert!(stored.starts_with("hp1.") && !stored.contains(&access_token), "sealed at rest: {stored}");
    let flows: String = conn
        .query_row("SELECT coalesce(group_concat(payload), '') FROM flows", [], |r| r.get(0))
        .expect("flows");
    assert!(!flows.contains(&access_token), "no provider token in the clear in a flow");

    // Coming back: the same user, no new one.
    let code = w.sign_in("op", "alice", None).await;
    let (status, again) = w.exchange(&code, &w.key).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["login"]["user_id"], user_id.as_str());
    let (_, users) = w.api(reqwest::Method::GET, "/v1/users", &w.key, None).await;
    assert_eq!(users["users"].as_array().map(Vec::len), Some(1));
    assert_eq!(w.outcomes("oidc:op"), ["success", "success"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_refreshed_with_the_stored_refresh_token() {
    let Some(w) = world().await else { return };
    // `offline_access` asks the provider for a refresh token (hallpass adds `prompt=consent`).
    let authorize = w.start("opoffline", None).await;
    assert!(authorize.contains("prompt=consent") && authorize.contains("offline_access"), "{authorize}");
    let code = w.sign_in("opoffline", "rita", None).await;
    let (status, login) = w.exchange(&code, &w.key).await;
    assert_eq!(status, StatusCode::CREATED, "{login}");
    let oauth = &login["login"]["oauth"];
    let first_access = oauth["access_token"].as_str().expect("access token").to_owned();
    let first_refresh =
        oauth["refresh_token"].as_str().expect("the provider gave a refresh token").to_owned();
    let user = login["login"]["user_id"].as_str().expect("user").to_owned();
    let path = format!("/v1/users/{user}/providers/opoffline");
    let w = &w;
    let get = |p: String| async move { w.api(reqwest::Method::GET, &p, &w.key, None).await };

    // Fresh: shown as stored, nothing refreshed.
    let (status, link) = get(path.clone()).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    assert_eq!(
        (link["access_token"].as_str(), link["refresh_token"].as_str()),
        (Some(&*first_access), Some(&*first_refresh))
    );
    assert!(link.get("refresh_error").is_none(), "{link}");

    // Expired: the read refreshes it at the provider and stores what came back.
    let (status, _) = w.api(reqwest::Method::PATCH, &path, &w.key, Some(json!({"expires_in": -10}))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, link) = get(path.clone()).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    assert!(link.get("refresh_error").is_none(), "{link}");
    let second = link["access_token"].as_str().expect("access token").to_owned();
    assert_ne!(second, first_access, "a new access token");
    assert_eq!(link["access_token_expired"], false, "{link}");
    assert!(
        link["access_token_expiry"].as_i64().expect("expiry")
            > time::OffsetDateTime::now_utc().unix_timestamp()
    );
    let (_, again) = get(path.clone()).await;
    assert_eq!(again["access_token"], second.as_str(), "stored: the next read does not refresh again");
    // Sealed at rest like every provider token.
    let conn = rusqlite::Connection::open(&w.db).expect("open");
    let (access, refresh): (String, String) = conn
        .query_row(
            "SELECT access_token, refresh_token FROM identities WHERE provider = 'opoffline'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("row");
    assert!(access.starts_with("hp1.") && refresh.starts_with("hp1.") && !access.contains(&second));
    // A login through the link shows the refresh token in `login.oauth` too.
    let (status, body) = w
        .api(
            reqwest::Method::POST,
            "/v1/sessions",
            &w.key,
            Some(json!({"provider": "opoffline", "client_id": "rita"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["login"]["oauth"]["refresh_token"].is_string(), "{body}");

    // A refresh token the provider refuses: the stored link, expired, with why.
    let (status, _) = w
        .api(
            reqwest::Method::PATCH,
            &path,
            &w.key,
            Some(json!({"expires_in": -10, "refresh_token": "not-a-real-refresh-token"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, link) = get(path.clone()).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    assert_eq!(link["access_token_expired"], true, "{link}");
    assert_eq!(link["access_token"], second.as_str());
    let why = link["refresh_error"].as_str().expect("why the refresh failed");
    assert!(why.contains("invalid_grant") && !why.contains("not-a-real"), "{why}");

    // A link the backend made itself, to a provider hallpass does not sign in with: shown
    // as stored, never sent anywhere.
    let (status, _) = w
        .api(
            reqwest::Method::PUT,
            &format!("/v1/users/{user}/providers/elsewhere"),
            &w.key,
            Some(json!({"client_id": "e-1", "access_token": "a", "expires_in": -10, "refresh_token": "r"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, link) = get(format!("/v1/users/{user}/providers/elsewhere")).await;
    assert_eq!(
        (link["access_token_expired"].as_bool(), link["refresh_token"].as_str()),
        (Some(true), Some("r"))
    );
    assert!(link.get("refresh_error").is_none(), "{link}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_totp_answers_the_challenge_after_the_provider() {
    let Some(w) = world().await else { return };
    let code = w.sign_in("op", "tom", None).await;
    let (status, login) = w.exchange(&code, &w.key).await;
    assert_eq!(status, StatusCode::CREATED, "{login}");
    let user = login["login"]["user_id"].as_str().expect("user").to_owned();
    let (status, enrolled) =
        w.api(reqwest::Method::POST, &format!("/v1/users/{user}/mfa/totp"), &w.key, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{enrolled}");
    let secret = totp_rs::Secret::try_from_base32(enrolled["secret"].as_str().expect("secret"))
        .expect("base32")
        .as_bytes()
        .to_vec();
    let totp = hallpass_core::mfa::totp(&secret, 6, "x", "x").expect("totp");
    let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).expect("now");
    let path = format!("/v1/users/{user}/mfa/totp/confirm");
    let (status, _) = w
        .api(reqwest::Method::POST, &path, &w.key, Some(json!({"code": totp.generate(now).to_string()})))
        .await;
    assert_eq!(status, StatusCode::OK);

    // The provider vouches for the first factor only: the exchange answers a challenge.
    let code = w.sign_in("op", "tom", None).await;
    let (status, body) = w.exchange(&code, &w.key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(body.get("token").is_none(), "no session yet: {body}");
    let challenge = body["challenge"].as_str().expect("challenge");
    // The next step's code (the confirming code used this one; ±1 step is accepted).
    let next = totp.generate(now + 30).to_string();
    let (status, done) = w
        .api(
            reqwest::Method::POST,
            "/v1/sessions/mfa",
            &w.key,
            Some(json!({"challenge": challenge, "totp": next})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    assert_eq!(done["login"]["user_id"], user.as_str());
    assert_eq!(done["login"]["oauth"]["provider"], "op", "the provider's side is kept through the challenge");
    assert!(done["login"]["oauth"]["access_token"].is_string(), "{done}");
    assert_eq!(done["session"]["aal"], 2, "{done}");
    assert_eq!(w.outcomes("oidc:op+totp"), ["success"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_single_use_and_a_tampered_one_goes_nowhere() {
    let Some(w) = world().await else { return };
    let authorize = w.start("op", None).await;
    let back = w.at_provider(&authorize, "erin", Consent::Give).await;

    // A tampered state: 400 invalid_state, no redirect.
    let state = url::Url::parse(&back)
        .expect("ok")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .expect("ok")
        .1
        .into_owned();
    let tampered = back.replace(&state, &format!("{}x", &state[..state.len() - 1]));
    let (status, location, body) = w.callback(&tampered).await;
    assert_eq!((status, location), (StatusCode::BAD_REQUEST, None));
    assert_eq!(body["code"], "invalid_state");
    // No state at all.
    let (status, _, body) = w.callback(&format!("{}/v1/oidc/op/callback?code=x", w.base)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_state")));

    // The real one works once; replayed, it is refused.
    let (status, location, _) = w.callback(&back).await;
    assert_eq!(status, StatusCode::FOUND);
    code_of(&location.expect("location"));
    let (status, location, body) = w.callback(&back).await;
    assert_eq!((status, location), (StatusCode::BAD_REQUEST, None));
    assert_eq!(body["code"], "invalid_state");
    // The state of one provider is not good at another's callback either.
    let authorize = w.start("op", None).await;
    let back = w.at_provider(&authorize, "erin", Consent::Give).await;
    let (status, _, _) = w.callback(&back.replace("/v1/oidc/op/", "/v1/oidc/opref/")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(w.outcomes("oidc:op").iter().filter(|o| *o == "invalid_state").count() >= 3);
    // Each carries the browser's address (the connection's) and user agent.
    let res = w.http.get(&tampered).header("user-agent", "Probe/1.0").send().await.expect("callback");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let events = w.events("oidc:op");
    let last = events.last().expect("an event");
    assert_eq!(
        (last.0.as_str(), last.1.as_deref(), last.2.as_deref()),
        ("invalid_state", Some("127.0.0.1"), Some("Probe/1.0"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_time_code_is_single_use_and_bound_to_its_scope() {
    let Some(w) = world().await else { return };
    let code = w.sign_in("op", "frank", None).await;
    let (status, body) = w.exchange(&code, &w.other_key).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_code")), "{body}");
    // Another scope's try did not burn it.
    let (status, _) = w.exchange(&code, &w.key).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = w.exchange(&code, &w.key).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_code")), "{body}");
    let (status, body) = w.exchange("hpf_never-issued", &w.key).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_code")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_to_must_be_one_of_the_configured_urls() {
    let Some(w) = world().await else { return };
    for bad in ["https://evil.example/auth/done", "https://app.example/auth/done/x", "not a url"] {
        let (status, body) =
            w.api(reqwest::Method::POST, "/v1/oidc/op/start", &w.key, Some(json!({"return_to": bad}))).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_return_to")),
            "{bad}"
        );
    }
    // The query is ignored in the comparison and kept on the way back.
    let (status, body) = w
        .api(
            reqwest::Method::POST,
            "/v1/oidc/op/start",
            &w.key,
            Some(json!({"return_to": format!("{RETURN_TO}?next=%2Fcart")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let back = w.at_provider(body["authorize_url"].as_str().expect("ok"), "gina", Consent::Give).await;
    let (_, location, _) = w.callback(&back).await;
    let location = location.expect("location");
    assert!(location.starts_with(&format!("{RETURN_TO}?next=%2Fcart&code=hpf_")), "{location}");
    // Unknown providers of the scope, and another scope's.
    let (status, body) = w
        .api(reqwest::Method::POST, "/v1/oidc/nope/start", &w.key, Some(json!({"return_to": RETURN_TO})))
        .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("provider_unknown")));
    let (status, _) = w
        .api(reqwest::Method::POST, "/v1/oidc/op/start", &w.other_key, Some(json!({"return_to": RETURN_TO})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_new_users_and_denied_consent() {
    let Some(w) = world().await else { return };
    let code = w.sign_in("opref", "henry", None).await;
    let (status, body) = w.exchange(&code, &w.key).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("identity_unknown")), "{body}");
    assert_eq!(w.outcomes("oidc:opref"), ["identity_unknown"]);
    let (_, users) = w.api(reqwest::Method::GET, "/v1/users", &w.key, None).await;
    assert_eq!(users["users"].as_array().map(Vec::len), Some(0), "nobody was created");

    // The user says no at the provider: back to return_to with the provider's error.
    let authorize = w.start("op", None).await;
    let back = w.at_provider(&authorize, "ivy", Consent::Deny).await;
    let (status, location, _) = w.callback(&back).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(error_of(&location.expect("location")), "access_denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_flow_adds_an_identity_to_the_session_user() {
    let Some(w) = world().await else { return };
    let (status, _) = w
        .api(
            reqwest::Method::POST,
            "/v1/users",
            &w.key,
            Some(json!({"username": "bob", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, login) = w
        .api(
            reqwest::Method::POST,
            "/v1/sessions",
            &w.key,
            Some(json!({"login": "bob", "password": "correct horse battery"})),
        )
        .await;
    let token = login["token"].as_str().expect("token").to_owned();
    let bob = login["login"]["user_id"].as_str().expect("id").to_owned();

    // A session token that is not valid: 401.
    let res = w
        .http
        .post(format!("{}/v1/oidc/op/start", w.base))
        .bearer_auth(&w.key)
        .header("x-session-token", "hps_nope")
        .json(&json!({"return_to": RETURN_TO}))
        .send()
        .await
        .expect("start");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // A link flow ends only with the session that started it: without it (someone else's
    // browser brought the code back), the code is spent and nothing is linked.
    let code = w.sign_in("op", "bob-at-op", Some(&token)).await;
    let (status, body) = w.exchange(&code, &w.key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("session_invalid")),
        "{body}"
    );
    let (status, _) =
        w.api(reqwest::Method::GET, &format!("/v1/users/{bob}/providers/op"), &w.key, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was linked");

    let code = w.sign_in("op", "bob-at-op", Some(&token)).await;
    let res = w
        .http
        .post(format!("{}/v1/oidc/exchange", w.base))
        .bearer_auth(&w.key)
        .header("x-session-token", &token)
        .json(&json!({"code": code}))
        .send()
        .await
        .expect("exchange");
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["identity"]["provider"], "op");
    assert_eq!(body["identity"]["client_id"], "bob-at-op");
    assert!(body.get("token").is_none(), "a link makes no session");

    // From now on that identity signs bob in.
    let code = w.sign_in("op", "bob-at-op", None).await;
    let (status, login) = w.exchange(&code, &w.key).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(login["login"]["user_id"], bob.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_email_links_only_where_the_scope_allows_it() {
    let Some(w) = world().await else { return };
    let (_, carol) = w
        .api(
            reqwest::Method::POST,
            "/v1/users",
            &w.key,
            Some(json!({"username": "carol", "email": "carol@example.com"})),
        )
        .await;
    let carol = carol["id"].as_str().expect("id").to_owned();
    let (_, dan) = w
        .api(
            reqwest::Method::POST,
            "/v1/users",
            &w.key,
            Some(json!({"username": "dan", "email": "unverified-dan@example.com"})),
        )
        .await;
    let dan = dan["id"].as_str().expect("id").to_owned();

    // Linking by email off: a new user (the taken name gets a suffix, the taken email is
    // left off).
    let code = w.sign_in("opnolink", "carol", None).await;
    let (status, login) = w.exchange(&code, &w.key).await;
    assert_eq!(status, StatusCode::CREATED, "{login}");
    assert_ne!(login["login"]["user_id"], carol.as_str());
    assert_eq!(login["login"]["username"], "carol-2");
    assert_eq!(login["login"]["email"], Value::Null);

    // On: the verified email finds carol.
    let code = w.sign_in("op", "carol", None).await;
    let (status, login) = w.exchange(&code, &w.key).await;
    assert_eq!(status, StatusCode::CREATED, "{login}");
    assert_eq!(login["login"]["user_id"], carol.as_str());

    // On, but the provider does not vouch for the email: no link.
    let code = w.sign_in("op", "unverified-dan", None).await;
    let (status, login) = w.exchange(&code, &w.key).await;
    assert_eq!(status, StatusCode::CREATED, "{login}");
    assert_ne!(login["login"]["user_id"], dan.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlinking_the_last_way_to_log_in_is_refused() {
    let Some(w) = world().await else { return };
    let code = w.sign_in("op", "kim", None).await;
    let (_, login) = w.exchange(&code, &w.key).await;
    let id = login["login"]["user_id"].as_str().expect("id").to_owned();
    let path = format!("/v1/users/{id}/providers/op");
    let (status, body) = w.api(reqwest::Method::DELETE, &path, &w.key, None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("last_login_method")), "{body}");
    let (status, _) = w
        .api(
            reqwest::Method::PUT,
            &format!("/v1/users/{id}/password"),
            &w.key,
            Some(json!({"password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w.api(reqwest::Method::DELETE, &path, &w.key, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_oauth2_providers_sign_in_through_userinfo() {
    let Some(w) = world().await else { return };
    // The real provider's endpoints given explicitly, no discovery, no ID token check.
    let code = w.sign_in("opplain", "lena", None).await;
    let (status, login) = w.exchange(&code, &w.key).await;
    assert_eq!(status, StatusCode::CREATED, "{login}");
    assert_eq!(login["login"]["oauth"]["client_id"], "lena");
    assert_eq!(login["login"]["email"], "lena@example.com");
    assert_eq!(w.outcomes("oidc:opplain"), ["success"]);

    // A GitHub-style stand-in: a numeric `id`, the username from `login`.
    let authorize = w.start("gh", None).await;
    assert!(authorize.starts_with(&format!("{}/oauth/authorize?", w.hostile.issuer)), "{authorize}");
    assert!(authorize.contains("code_challenge_method=S256"), "{authorize}");
    let back = w.at_provider(&format!("{authorize}&login=octo-cat"), "", Consent::Give).await;
    let (status, location, body) = w.callback(&back).await;
    assert_eq!(status, StatusCode::FOUND, "{body}");
    let (status, login) = w.exchange(&code_of(&location.expect("location")), &w.key).await;
    assert_eq!(status, StatusCode::CREATED, "{login}");
    let subject = login["login"]["oauth"]["client_id"].as_str().expect("subject");
    assert!(subject.chars().all(|c| c.is_ascii_digit()), "{subject}");
    assert_eq!(login["login"]["username"], "octo-cat");
    assert_eq!(login["login"]["oauth"]["access_token"], "gho_octo-cat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_id_tokens_are_refused() {
    let Some(w) = world().await else { return };
    let _ = &w.op.issuer;
    // A good token, and one signed by a key the provider publishes only after hallpass
    // cached its keys: the unknown key id makes hallpass fetch them again.
    for mode in ["ok", "rotated_kid"] {
        let authorize = w.start("hostile", None).await;
        let back = w.at_provider(&format!("{authorize}&mode={mode}"), "", Consent::Give).await;
        let (status, location, body) = w.callback(&back).await;
        assert_eq!(status, StatusCode::FOUND, "{mode}: {body}");
        let (status, login) = w.exchange(&code_of(&location.expect("location")), &w.key).await;
        assert_eq!(status, StatusCode::CREATED, "{mode}: {login}");
        assert_eq!(login["login"]["oauth"]["client_id"], format!("hostile-{mode}"));
    }
    for mode in ["wrong_aud", "wrong_iss", "wrong_nonce", "expired", "unknown_kid", "wrong_azp"] {
        let authorize = w.start("hostile", None).await;
        let back = w.at_provider(&format!("{authorize}&mode={mode}"), "", Consent::Give).await;
        let (status, location, body) = w.callback(&back).await;
        assert_eq!(status, StatusCode::FOUND, "{mode}: {body}");
        assert_eq!(error_of(&location.expect("location")), "id_token_invalid", "{mode}");
    }
    // A code the provider does not know (used, forged): the exchange fails.
    let authorize = w.start("hostile", None).await;
    let back = w.at_provider(&authorize, "", Consent::Give).await;
    let mut forged = url::Url::parse(&back).expect("url");
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "code" { "forged".to_owned() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let (status, location, body) = w.callback(forged.as_str()).await;
    assert_eq!(status, StatusCode::FOUND, "{body}");
    assert_eq!(error_of(&location.expect("location")), "token_exchange_failed");

    let outcomes = w.outcomes("oidc:hostile");
    assert_eq!(outcomes[..2], ["success", "success"]);
    assert_eq!(outcomes[2..8], vec!["id_token_invalid"; 6]);
    assert_eq!(outcomes[8..], ["token_exchange_failed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_user_is_refused_with_the_login_object() {
    let Some(w) = world().await else { return };
    let code = w.sign_in("op", "mona", None).await;
    let (_, login) = w.exchange(&code, &w.key).await;
    let id = login["login"]["user_id"].as_str().expect("id").to_owned();
    let (status, _) = w
        .api(reqwest::Method::PATCH, &format!("/v1/users/{id}"), &w.key, Some(json!({"active": false})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let code = w.sign_in("op", "mona", None).await;
    let (status, body) = w.exchange(&code, &w.key).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("user_inactive")), "{body}");
    assert_eq!(w.outcomes("oidc:op"), ["success", "inactive"]);
    let _ = w.service.now();
}

/// `config check` (and serve's start) say what is wrong with a provider.
#[test]
fn the_configuration_says_what_is_wrong_with_a_provider() {
    let dir = tempfile::tempdir().expect("dir");
    let check = |toml: &str| -> String {
        let file = dir.path().join("c.toml");
        std::fs::write(&file, format!("public_url = \"https://auth.example\"\n{toml}")).expect("write");
        match Config::load(Some(&file)) {
            Ok(_) => String::new(),
            Err(e) => format!("{e:#}"),
        }
    };
    let base = "client_id = \"c\"\nclient_secret = \"s\"\nreturn_to = [\"https://a.example/done\"]\n";
    let e = check(&format!("[scopes.shop.oidc.g]\n{base}"));
    assert!(e.contains("[scopes.shop.oidc.g]") && e.contains("give `issuer`"), "{e}");
    let e = check(&format!(
        "[scopes.shop.oidc.g]\nissuer = \"https://i.example\"\ntoken_endpoint = \"https://t.example\"\n{base}"
    ));
    assert!(e.contains("not both"), "{e}");
    let e = check(
        "[scopes.shop.oidc.g]\nissuer = \"https://i.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
    );
    assert!(e.contains("`return_to` is required"), "{e}");
    let e = check(
        "[scopes.shop.oidc.g]\nissuer = \"https://i.example\"\nclient_secret_file = \"/nonexistent\"\nclient_id = \"c\"\nreturn_to = [\"https://a.example/d\"]\n",
    );
    assert!(e.contains("cannot read `client_secret_file`"), "{e}");
    let e = check(&format!(
        "[scopes.shop.oidc.g]\nissuer = \"https://i.example\"\nclient_secrte = \"x\"\n{base}"
    ));
    assert!(
        e.contains("unknown key `client_secrte` in [scopes.shop.oidc.g]") && e.contains("client_secret"),
        "{e}"
    );
    let e = check(&format!("[scopes.shop.oidc.Bad]\nissuer = \"https://i.example\"\n{base}"));
    assert!(e.contains("provider name"), "{e}");
    assert_eq!(check(&format!("[scopes.shop.oidc.g]\nissuer = \"https://i.example\"\n{base}")), "");
}
