//! Mail against a real SMTP server (`smtp/sink.py`, aiosmtpd on 127.0.0.1), with the real
//! `hallpass serve` binary, as a user would meet it:
//!
//! - every flow end to end (on SQLite, PostgreSQL and MariaDB), reading the delivered
//!   message and following its code and link:
//!   confirmation on registration (`confirmation` becomes `pending` once the mail is taken;
//!   redeemed through hallpass's own page), a resend voiding the older code, reset by mail
//!   (known and unknown logins alike, the page's form), sign-in by emailed code (event
//!   method `email_code`, single use, wrong guesses void it; stored as an HMAC under the
//!   server secret generated beside the database), a change of email (the old
//!   address told, the new one confirmed), a refused recipient making the confirmation
//!   `failed`;
//! - a scanner's GET of every link (twice) leaves the code usable;
//! - an outage: sink down, mails queued and visible in `/metrics` and `hallpass mail
//!   status`, sink up, each mail arrives exactly once;
//! - a crash between SMTP acceptance and the outbox update (the sink kills the server
//!   before answering 250): after a restart the mail is not sent again, and is shown in
//!   doubt (status, metrics, the admin page without codes) until an admin sends it again;
//! - two servers on one PostgreSQL database share the outbox: no mail twice;
//! - new-device notices: opt-in, none on the first login, one for a client not seen
//!   before (a newer browser version is the same client);
//! - SMTP security against a sink that demands it: STARTTLS and `smtps://` with a CA made
//!   at test time (`HALLPASS_SMTP_CA_FILE`), AUTH with the password in the URL and from
//!   `HALLPASS_SMTP_PASSWORD_FILE`; a wrong password or an untrusted certificate leaves
//!   the mail queued with an error saying why, and the API answers as usual.

#![allow(clippy::unwrap_used)]

mod process;
mod smtp;

use process::Server;
use serde_json::{Value, json};
use smtp::{Sink, free_port};
use std::time::Duration;
use tokio::process::Command;

const PASSWORD: &str = "quilted marsupial drumbeat 42";
const NEW_PASSWORD: &str = "verdant oboe lantern 77";
/// The base of links in mails; the tests send a link's path and query to the server.
const PUBLIC: &str = "https://auth.example.test";

fn command(db: &str, smtp_url: &str) -> Command {
    let mut c = process::command(db);
    c.env("HALLPASS_SMTP_URL", smtp_url)
        .env("HALLPASS_PUBLIC_URL", PUBLIC)
        .env("HALLPASS_REQUIRE_CONFIRMATION", "true")
        .env("HALLPASS_MAIL__FROM", "Shop <noreply@shop.example>")
        .env("HALLPASS_MAIL__REPLY_TO", "help@shop.example");
    c
}

async fn start(db: &str, smtp_url: &str) -> Server {
    process::serve(command(db, smtp_url), Duration::from_secs(30)).await
}

struct Api {
    base: String,
    key: String,
    client: reqwest::Client,
}

impl Api {
    fn new(server: &Server, key: &str) -> Api {
        Api {
            base: server.base.clone(),
            key: key.to_owned(),
            client: hallpass_server::client_builder().build().unwrap(),
        }
    }
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let res = rb.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert!(!text.contains("hpc_"), "no answer carries a mailed code: {text}");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    /// A page behind a mail link, fetched as a scanner or a browser would (no key).
    async fn page(&self, link: &str) -> (u16, String) {
        let path = link.strip_prefix(PUBLIC).expect("a link under the public URL");
        let res = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }
    async fn form(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let res = self.client.post(format!("{}{path}", self.base)).form(fields).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }
    async fn metrics(&self) -> String {
        self.client.get(format!("{}/metrics", self.base)).send().await.unwrap().text().await.unwrap()
    }
}

/// `hallpass mail status --json` on the database.
async fn mail_status(db: &str) -> Value {
    let out = process::command(db).args(["mail", "status", "--json"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("hpc_"), "the status never shows a code: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Polls `probe` until it answers true, for at most `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !probe().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("hallpass.db").display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_end_to_end_with_scanner_proof_links() {
    if !smtp::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    every_flow(&sqlite_url(&dir), Some(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_end_to_end_on_mariadb() {
    if !smtp::available() {
        return;
    }
    let Some(db) = hallpass_mysql::testing::TestDatabase::create().await else { return };
    every_flow(db.url(), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_end_to_end_on_postgres() {
    if !smtp::available() {
        return;
    }
    let Some(db) = hallpass_postgres::testing::TestDb::create_unmigrated().await else { return };
    every_flow(&db.url(), None).await;
}

/// The flows on the database `db`; `sqlite_dir`: the folder of a SQLite database, whose
/// generated server secret and stored code hash are then read too. A server database is
/// given a key in `HALLPASS_SECRET_KEY` (it has no place of its own for one).
async fn every_flow(db: &str, sqlite_dir: Option<&tempfile::TempDir>) {
    let sink = Sink::start(free_port(), None, Some("bounce")).await;
    let db = db.to_owned();
    let mut c = command(&db, &sink.url());
    if sqlite_dir.is_none() {
        c.env("HALLPASS_SECRET_KEY", hallpass_core::ServerSecret::generate_base64().as_str());
    }
    let server = process::serve(c, Duration::from_secs(30)).await;
    let api = Api::new(&server, server.first_key.as_deref().unwrap());

    // Registration with an email sends the confirmation; `pending` once the sink took it.
    let (status, alice) = api
        .post("/v1/users", json!({"username": "alice", "email": "Alice@Example.com", "password": PASSWORD}))
        .await;
    assert_eq!(status, 201, "{alice}");
    assert_eq!((alice["confirmed"].as_bool(), alice["validated"].as_bool()), (Some(false), Some(false)));
    let mails = sink.wait_for(1, Duration::from_secs(20)).await;
    let confirm = &mails[0];
    assert_eq!(confirm.to, "Alice@Example.com");
    assert!(confirm.subject.contains("Confirm your email for default"), "{}", confirm.subject);
    assert!(confirm.text.contains("From: Shop <noreply@shop.example>"), "{}", confirm.text);
    assert!(confirm.text.contains("Reply-To: help@shop.example"));
    assert!(
        confirm.text.contains("Content-Type: text/plain") && confirm.text.contains("Content-Type: text/html")
    );
    let code = confirm.long_code().unwrap();
    let link = confirm.link(PUBLIC).unwrap();
    assert!(link.starts_with(&format!("{PUBLIC}/pages/confirm?scope=default&code=")), "{link}");
    eventually("confirmation pending", Duration::from_secs(10), || async {
        api.get("/v1/users/alice").await.1["confirmation"] == "pending"
    })
    .await;

    // A scanner opens the link (twice): a page with a button, nothing used.
    for _ in 0..2 {
        let (status, html) = api.page(&link).await;
        assert_eq!(status, 200);
        assert!(html.contains("<title>default</title>") && html.contains("Confirm my email"), "{html}");
        assert!(!html.contains("<script"));
    }
    assert_eq!(api.get("/v1/users/alice").await.1["confirmed"], false);
    // The person presses the button: the page's POST uses the code.
    let (status, html) = api.form("/pages/confirm", &[("scope", "default"), ("code", &code)]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Your email is confirmed"));
    let (_, u) = api.get("/v1/users/alice").await;
    assert_eq!(
        (u["confirmed"].as_bool(), u["validated"].as_bool(), &u["confirmation"]),
        (Some(true), Some(true), &Value::Null)
    );
    let (status, _) = api.form("/pages/confirm", &[("scope", "default"), ("code", &code)]).await;
    assert_eq!(status, 400, "a code works once");

    // A resend voids the older code; the API redeems the newer one.
    let (status, _) = api.post("/v1/users", json!({"username": "bob", "email": "bob@example.com"})).await;
    assert_eq!(status, 201);
    let first = sink.wait_for(2, Duration::from_secs(20)).await[1].long_code().unwrap();
    let (status, body) = api.post("/v1/users/bob/confirmation", json!({})).await;
    assert_eq!(status, 202, "{body}");
    let second = sink.wait_for(3, Duration::from_secs(20)).await[2].long_code().unwrap();
    assert_ne!(first, second);
    let (status, body) = api.post("/v1/confirmations/redeem", json!({"code": first})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_code")));
    let (status, body) = api.post("/v1/confirmations/redeem", json!({"code": second})).await;
    assert_eq!((status, body["confirmed"].as_bool(), &body["confirmation"]), (200, Some(true), &Value::Null));
    let (status, body) = api.post("/v1/users/bob/confirmation", json!({})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_request")), "already confirmed");

    // Reset by mail: known and unknown logins both 202; only alice gets a mail.
    let (status, body) = api.post("/v1/password-resets", json!({"login": "alice", "send_email": true})).await;
    assert_eq!((status, &body), (202, &Value::Null));
    let (status, _) = api.post("/v1/password-resets", json!({"login": "nobody", "send_email": true})).await;
    assert_eq!(status, 202);
    let mails = sink.wait_for(4, Duration::from_secs(20)).await;
    let reset = &mails[3];
    assert_eq!(reset.to, "Alice@Example.com");
    let reset_link = reset.link(PUBLIC).unwrap();
    let reset_code = reset.long_code().unwrap();
    for _ in 0..2 {
        let (status, html) = api.page(&reset_link).await;
        assert_eq!(status, 200);
        assert!(html.contains("type=\"password\"") && html.contains("<title>default</title>"), "{html}");
    }
    let (status, html) =
        api.form("/pages/reset", &[("scope", "default"), ("code", &reset_code), ("password", "short")]).await;
    assert_eq!(status, 400, "a weak password re-renders the form: {html}");
    let (status, html) = api
        .form("/pages/reset", &[("scope", "default"), ("code", &reset_code), ("password", NEW_PASSWORD)])
        .await;
    assert_eq!(status, 200, "{html}");
    let (status, _) = api.post("/v1/sessions", json!({"login": "alice", "password": NEW_PASSWORD})).await;
    assert_eq!(status, 201);

    // Sign-in by emailed code: 202 for anybody; one mail, six digits, single use.
    let (status, _) = api.post("/v1/email-codes", json!({"email": "Alice@Example.com"})).await;
    assert_eq!(status, 202);
    let (status, _) = api.post("/v1/email-codes", json!({"email": "nobody@example.com"})).await;
    assert_eq!(status, 202);
    let mails = sink.wait_for(5, Duration::from_secs(20)).await;
    let digits = mails[4].short_code().unwrap();
    assert_eq!(digits.len(), 6);
    assert!(mails[4].link(PUBLIC).is_none(), "no link without links.email_code");
    // What the database keeps of it is an HMAC under the server secret (generated beside
    // the SQLite database because mail is on), not a hash anyone can recompute for all
    // million six-digit codes.
    if let Some(dir) = sqlite_dir {
        let key_file = dir.path().join("hallpass.db.secret-key");
        let secret =
            hallpass_core::ServerSecret::from_base64(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
        let alice_id = api.get("/v1/users/alice").await.1["id"].as_str().unwrap().to_owned();
        let stored: Vec<u8> = {
            let c = rusqlite::Connection::open(dir.path().join("hallpass.db")).unwrap();
            c.query_row(
                "SELECT code_hash FROM codes WHERE kind = 'login' AND user_id = ?1",
                [&alice_id],
                |r| r.get(0),
            )
            .unwrap()
        };
        let message = format!("email-code:default:{alice_id}:{digits}");
        assert_eq!(stored, secret.code_hash(&message).as_bytes(), "keyed by the server secret");
        assert_ne!(stored, hallpass_core::TokenHash::of(&message).as_bytes(), "not the plain SHA-256");
    }
    let wrong = if digits == "000000" { "111111" } else { "000000" };
    let (status, body) = api.post("/v1/sessions", json!({"email": "Alice@Example.com", "code": wrong})).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("invalid_credentials")));
    let (status, body) =
        api.post("/v1/sessions", json!({"email": "Alice@Example.com", "code": digits})).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = api.post("/v1/sessions", json!({"email": "Alice@Example.com", "code": digits})).await;
    assert_eq!(status, 401, "single use");
    let (_, history) = api.get("/v1/users/alice/logins").await;
    let events = history["events"].as_array().unwrap();
    assert_eq!(
        (&events[0]["method"], &events[0]["outcome"]),
        (&json!("email_code"), &json!("wrong_password"))
    );
    assert_eq!((&events[1]["method"], &events[1]["outcome"]), (&json!("email_code"), &json!("success")));

    // Five wrong guesses void the code.
    api.post("/v1/email-codes", json!({"email": "Alice@Example.com"})).await;
    let digits = sink.wait_for(6, Duration::from_secs(20)).await[5].short_code().unwrap();
    let wrong = if digits == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let (status, _) =
            api.post("/v1/sessions", json!({"email": "Alice@Example.com", "code": wrong})).await;
        assert_eq!(status, 401);
    }
    let (status, _) = api.post("/v1/sessions", json!({"email": "Alice@Example.com", "code": digits})).await;
    assert_eq!(status, 401, "the code is void after five wrong guesses");

    // A change of email tells the old address and confirms the new one.
    let (status, u) = api
        .call(reqwest::Method::PATCH, "/v1/users/alice", Some(json!({"email": "alice@new.example"})))
        .await;
    assert_eq!(status, 200, "{u}");
    assert_eq!((u["confirmed"].as_bool(), u["validated"].as_bool()), (Some(false), Some(false)));
    let mails = sink.wait_for(8, Duration::from_secs(20)).await;
    let (told, confirm_new) =
        if mails[6].to == "Alice@Example.com" { (&mails[6], &mails[7]) } else { (&mails[7], &mails[6]) };
    assert_eq!(told.to, "Alice@Example.com");
    assert!(told.subject.contains("was changed") && told.text.contains("alice@new.example"), "{}", told.text);
    assert!(told.long_code().is_none(), "the old address gets no code");
    assert_eq!(confirm_new.to, "alice@new.example");
    let (status, u) =
        api.post("/v1/confirmations/redeem", json!({"code": confirm_new.long_code().unwrap()})).await;
    assert_eq!(
        (status, u["email"].as_str(), u["validated"].as_bool()),
        (200, Some("alice@new.example"), Some(true))
    );

    // A recipient the SMTP server refuses for good: the confirmation is `failed` at once.
    let (status, _) =
        api.post("/v1/users", json!({"username": "carol", "email": "bounce@example.com"})).await;
    assert_eq!(status, 201);
    eventually("confirmation failed", Duration::from_secs(20), || async {
        api.get("/v1/users/carol").await.1["confirmation"] == "failed"
    })
    .await;

    // Visible: metrics and the CLI, without codes.
    let metrics = api.metrics().await;
    assert!(metrics.contains("hallpass_outbox_messages{state=\"sent\"} 8"), "{metrics}");
    assert!(metrics.contains("hallpass_outbox_messages{state=\"failed\"} 1"));
    let status = mail_status(&db).await;
    assert_eq!(
        (status["sent"].as_u64(), status["failed"].as_u64(), status["queued"].as_u64()),
        (Some(8), Some(1), Some(0))
    );
    let latest = status["latest"].as_array().unwrap();
    assert_eq!(latest[0]["state"], "failed");
    assert!(latest[0]["last_error"].as_str().unwrap().contains("550"), "{latest:?}");
    assert_eq!(sink.messages().len(), 8, "nothing else was sent");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_and_doubles_nothing() {
    if !smtp::available() {
        return;
    }
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    let server = start(&db, &format!("smtp://127.0.0.1:{port}")).await;
    let api = Api::new(&server, server.first_key.as_deref().unwrap());
    for name in ["ann", "ben", "cat"] {
        let (status, _) =
            api.post("/v1/users", json!({"username": name, "email": format!("{name}@example.com")})).await;
        assert_eq!(status, 201);
    }
    // Nobody listens: the mails wait in the queue, retried with backoff.
    eventually("a failed attempt", Duration::from_secs(10), || async {
        mail_status(&db).await["latest"].as_array().unwrap().iter().all(|r| r["attempts"].as_u64() >= Some(1))
    })
    .await;
    let status = mail_status(&db).await;
    assert_eq!((status["queued"].as_u64(), status["sent"].as_u64()), (Some(3), Some(0)), "{status}");
    assert!(status["latest"][0]["last_error"].as_str().unwrap().contains("connect"), "{status}");
    assert!(api.metrics().await.contains("hallpass_outbox_messages{state=\"queued\"} 3"));
    let (_, u) = api.get("/v1/users/ann").await;
    assert_eq!(u["confirmation"], Value::Null, "not pending before the SMTP server took it");

    let sink = Sink::start(port, None, None).await;
    let mails = sink.wait_for(3, Duration::from_secs(40)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails = if sink.messages().len() > mails.len() { sink.messages() } else { mails };
    let mut to: Vec<String> = mails.iter().map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, ["ann@example.com", "ben@example.com", "cat@example.com"], "each exactly once");
    eventually("all sent", Duration::from_secs(10), || async {
        mail_status(&db).await["sent"].as_u64() == Some(3)
    })
    .await;
    assert_eq!(api.get("/v1/users/ann").await.1["confirmation"], "pending");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_smtp_acceptance_does_not_send_twice() {
    if !smtp::available() {
        return;
    }
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    let url = format!("smtp://127.0.0.1:{port}");
    let mut server = start(&db, &url).await;
    let key = server.first_key.clone().unwrap();
    let sink = Sink::start(port, Some(server.child.id().unwrap()), None).await;
    let api = Api::new(&server, &key);
    let (status, _) = api.post("/v1/users", json!({"username": "dora", "email": "dora@example.com"})).await;
    assert_eq!(status, 201);
    // The sink takes the message, then kills the server before answering 250.
    let exit = tokio::time::timeout(Duration::from_secs(20), server.child.wait()).await.unwrap().unwrap();
    assert!(!exit.success());
    assert_eq!(sink.messages().len(), 1);

    let server = start(&db, &url).await;
    let api = Api::new(&server, &key);
    // The restarted worker polls every 2 s; give it several rounds.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(sink.messages().len(), 1, "the mail the SMTP server took is not sent again");
    let status = mail_status(&db).await;
    assert_eq!((status["in_doubt"].as_u64(), status["queued"].as_u64()), (Some(1), Some(0)), "{status}");
    assert!(api.metrics().await.contains("hallpass_outbox_messages{state=\"in_doubt\"} 1"));
    // Mail after the crash flows again.
    let (status, _) = api.post("/v1/users", json!({"username": "eve", "email": "eve@example.com"})).await;
    assert_eq!(status, 201);
    let mails = sink.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(mails[1].to, "eve@example.com");

    // The admin page shows the mail in doubt (no code) and an admin may send it again.
    let doubt = mail_status(&db).await["latest"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["state"] == "in_doubt")
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .unwrap();
    let mut create = process::command(&db);
    let mut child = create
        .args(["admin", "create", "--username", "root"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt as _;
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).await.unwrap();
    assert!(child.wait().await.unwrap().success());
    let browser =
        hallpass_server::client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = browser
        .post(format!("{}/admin/login", server.base))
        .header("origin", PUBLIC)
        .form(&[("username", "root"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = browser
        .get(format!("{}/admin/outbox", server.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("in_doubt") && page.contains("dora@example.com") && page.contains("eve@example.com"),
        "{page}"
    );
    assert!(!page.contains("hpc_"), "the outbox page never shows a code");
    let at = page.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    let csrf = page[at..at + page[at..].find('"').unwrap()].to_owned();
    let res = browser
        .post(format!("{}/admin/outbox/retry", server.base))
        .header("origin", PUBLIC)
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("id", doubt.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let mails = sink.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(mails[2].to, "dora@example.com", "sent again at the admin's word");
    eventually("no mail in doubt", Duration::from_secs(10), || async {
        mail_status(&db).await["in_doubt"].as_u64() == Some(0)
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_postgres_share_the_outbox() {
    if !smtp::available() {
        return;
    }
    let Some(db) = hallpass_postgres::testing::TestDb::create_unmigrated().await else { return };
    let url = db.url();
    let sink = Sink::start(free_port(), None, None).await;
    let a = start(&url, &sink.url()).await;
    let key = a.first_key.clone().unwrap();
    let b = start(&url, &sink.url()).await;
    let (api_a, api_b) = (Api::new(&a, &key), Api::new(&b, &key));
    let n = 24;
    let mut calls = Vec::new();
    for i in 0..n {
        let api = if i % 2 == 0 { &api_a } else { &api_b };
        calls.push(
            api.post("/v1/users", json!({"username": format!("u{i}"), "email": format!("u{i}@example.com")})),
        );
    }
    for (status, body) in futures_util::future::join_all(calls).await {
        assert_eq!(status, 201, "{body}");
    }
    sink.wait_for(n, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut to: Vec<String> = sink.messages().iter().map(|m| m.to.clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!((sink.messages().len(), to.len()), (n, n), "each mail exactly once");
    let status = mail_status(&url).await;
    assert_eq!(status["sent"].as_u64(), Some(n as u64), "{status}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_device_notices_are_opt_in_and_skip_the_first_login() {
    if !smtp::available() {
        return;
    }
    let sink = Sink::start(free_port(), None, None).await;
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    let mut c = command(&db, &sink.url());
    c.env("HALLPASS_REQUIRE_CONFIRMATION", "false").env("HALLPASS_MAIL__NOTIFY_NEW_DEVICE", "true");
    let server = process::serve(c, Duration::from_secs(30)).await;
    let api = Api::new(&server, server.first_key.as_deref().unwrap());
    let (status, _) = api
        .post("/v1/users", json!({"username": "zed", "email": "zed@example.com", "password": PASSWORD}))
        .await;
    assert_eq!(status, 201);
    let firefox = |v: &str| format!("Mozilla/5.0 (X11; Linux x86_64; rv:{v}) Gecko/20100101 Firefox/{v}");
    let login = |ip: &'static str, ua: String| {
        let api = &api;
        async move {
            let body = json!({"login": "zed", "password": PASSWORD, "client": {"ip": ip, "user_agent": ua}});
            assert_eq!(api.post("/v1/sessions", body).await.0, 201);
        }
    };
    login("192.0.2.10", firefox("120.0")).await; // the first login: no notice
    login("192.0.2.10", firefox("121.0")).await; // the same client, a newer browser
    login("198.51.100.7", firefox("121.0")).await; // a new place: a notice
    login("198.51.100.7", firefox("121.0")).await; // known now
    let mails = sink.wait_for(1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.messages().len(), 1, "{:#?}", sink.messages());
    assert_eq!(mails[0].to, "zed@example.com");
    assert!(mails[0].subject.contains("New sign-in"), "{}", mails[0].subject);
    assert!(
        mails[0].text.contains("198.51.100.7") && mails[0].text.contains("Firefox/121.0"),
        "{}",
        mails[0].text
    );
    server.stop().await;
}

/// A server for `smtp_url` trusting the sink's CA (when given); confirmation off.
async fn start_for(
    db: &str,
    smtp_url: &str,
    ca: Option<&std::path::Path>,
    password_file: Option<&std::path::Path>,
) -> Server {
    let mut c = command(db, smtp_url);
    c.env("HALLPASS_REQUIRE_CONFIRMATION", "false");
    if let Some(ca) = ca {
        c.env("HALLPASS_SMTP_CA_FILE", ca);
    }
    if let Some(file) = password_file {
        c.env("HALLPASS_SMTP_PASSWORD_FILE", file);
    }
    process::serve(c, Duration::from_secs(30)).await
}

/// A sign-in code for `email`, through the API: 202 whatever happens to the mail.
async fn ask_code(api: &Api, email: &str) {
    let (status, _) = api.post("/v1/users", json!({"email": email})).await;
    assert_eq!(status, 201);
    let (status, body) = api.post("/v1/email-codes", json!({"email": email})).await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_and_auth_with_the_password_in_the_url() {
    if !smtp::available() {
        return;
    }
    let auth = Some(("mailer".to_owned(), "s3cret pass:word".to_owned()));
    let sink = Sink::start_with(&smtp::Options { tls: Some(smtp::Tls::StartTls), auth }).await;
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    // `smtp://` upgrades when STARTTLS is offered; the sink refuses mail before it.
    let url = format!("smtp://mailer:s3cret%20pass%3Aword@127.0.0.1:{}", sink.port);
    let server = start_for(&db, &url, Some(&sink.ca_file()), None).await;
    let api = Api::new(&server, server.first_key.as_deref().unwrap());
    ask_code(&api, "tls@example.com").await;
    let mails = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails[0].to, "tls@example.com");
    assert!(mails[0].tls.starts_with("TLSv1."), "came over TLS: {:?}", mails[0].tls);
    assert!(mails[0].authenticated);
    assert_eq!(mails[0].short_code().unwrap().len(), 6);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtps_with_the_password_from_a_file() {
    if !smtp::available() {
        return;
    }
    let auth = Some(("mailer".to_owned(), "from-a-file".to_owned()));
    let sink = Sink::start_with(&smtp::Options { tls: Some(smtp::Tls::Implicit), auth }).await;
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    let secret = dir.path().join("smtp-password");
    std::fs::write(&secret, "from-a-file\n").unwrap();
    let url = format!("smtps://mailer@127.0.0.1:{}", sink.port);
    let server = start_for(&db, &url, Some(&sink.ca_file()), Some(&secret)).await;
    let api = Api::new(&server, server.first_key.as_deref().unwrap());
    ask_code(&api, "smtps@example.com").await;
    let mails = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails[0].to, "smtps@example.com");
    assert!(mails[0].tls.starts_with("TLSv1."), "came over TLS: {:?}", mails[0].tls);
    assert!(mails[0].authenticated);
    server.stop().await;
}

/// The `last_error` of the newest outbox row once it has been tried, with its state.
async fn first_failure(db: &str) -> (String, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = mail_status(db).await;
        let row = &status["latest"][0];
        let error = row["last_error"].as_str().unwrap_or("").to_owned();
        if row["attempts"].as_u64() >= Some(1) && !error.is_empty() {
            return (row["state"].as_str().unwrap_or("").to_owned(), error);
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for a failed attempt: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A wrong password or an untrusted certificate: the API still answers as usual, nothing
/// is delivered, and the row waits for a retry with an error an operator can act on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_or_an_untrusted_certificate_is_retried_with_a_clear_error() {
    if !smtp::available() {
        return;
    }
    let auth = Some(("mailer".to_owned(), "right".to_owned()));
    let sink = Sink::start_with(&smtp::Options { tls: Some(smtp::Tls::StartTls), auth }).await;

    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    let url = format!("smtp://mailer:wrong@127.0.0.1:{}", sink.port);
    let server = start_for(&db, &url, Some(&sink.ca_file()), None).await;
    let api = Api::new(&server, server.first_key.as_deref().unwrap());
    ask_code(&api, "pw@example.com").await;
    let (state, error) = first_failure(&db).await;
    assert_eq!(state, "queued", "retried later: {error}");
    assert!(error.contains("AUTH refused") && error.contains("535"), "{error}");
    server.stop().await;

    // The right password, but hallpass is not told to trust the sink's CA.
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    let url = format!("smtp://mailer:right@127.0.0.1:{}", sink.port);
    let server = start_for(&db, &url, None, None).await;
    let api = Api::new(&server, server.first_key.as_deref().unwrap());
    ask_code(&api, "ca@example.com").await;
    let (state, error) = first_failure(&db).await;
    assert_eq!(state, "queued", "retried later: {error}");
    assert!(error.contains("STARTTLS") && error.to_lowercase().contains("certificate"), "{error}");
    assert!(sink.messages().is_empty(), "nothing was delivered");
    server.stop().await;
}

/// Delivered mails are deleted once older than `outbox_keep_sent` (by the worker, at its
/// start and hourly); failed ones stay for the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_mails_are_deleted_after_keep_sent_and_failed_ones_kept() {
    if !smtp::available() {
        return;
    }
    let sink = Sink::start(free_port(), None, Some("bounce")).await;
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    let server = start(&db, &sink.url()).await;
    let key = server.first_key.clone().unwrap();
    let api = Api::new(&server, &key);
    for email in ["kept@example.com", "bounce@example.com"] {
        let (status, _) = api.post("/v1/users", json!({"email": email})).await;
        assert_eq!(status, 201);
    }
    eventually("one sent, one failed", Duration::from_secs(20), || async {
        let s = mail_status(&db).await;
        (s["sent"].as_u64(), s["failed"].as_u64()) == (Some(1), Some(1))
    })
    .await;
    server.stop().await;

    // The default keeps them (7 days).
    let server = start(&db, &sink.url()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mail_status(&db).await["sent"].as_u64(), Some(1));
    server.stop().await;

    let mut c = command(&db, &sink.url());
    c.env("HALLPASS_OUTBOX_KEEP_SENT", "1s");
    let server = process::serve(c, Duration::from_secs(30)).await;
    eventually("the sent mail deleted", Duration::from_secs(10), || async {
        mail_status(&db).await["sent"].as_u64() == Some(0)
    })
    .await;
    let status = mail_status(&db).await;
    assert_eq!(status["failed"].as_u64(), Some(1), "failed mails are kept: {status}");
    assert_eq!(sink.messages().len(), 1);
    server.stop().await;
}
