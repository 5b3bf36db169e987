//! Tests of the real `hallpass` binary: first start prints a key (and `/metrics` counts
//! what `serve` did), the CLI works beside a running server, SIGTERM drains and exits
//! cleanly, a SIGKILL loses no acknowledged write, and the default request log.

#![allow(clippy::unwrap_used)]

mod process;

use process::{Server, command};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

fn sqlite_command(db: &Path) -> tokio::process::Command {
    command(&format!("sqlite://{}", db.display()))
}

/// Starts `hallpass serve` on the SQLite file `db`.
async fn start(db: &Path) -> Server {
    process::start(&format!("sqlite://{}", db.display()), Duration::from_secs(30)).await
}

fn client() -> reqwest::Client {
    hallpass_server::client_builder().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn cli(db: &Path, args: &[&str]) -> (bool, String, String) {
    let out = sqlite_command(db).args(args).stdin(Stdio::null()).output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hallpass.db");
    (dir, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_a_key_that_works_and_later_starts_do_not() {
    let (_dir, db) = temp_db();
    let mut s = start(&db).await;
    let key = s.first_key.clone().expect("first start prints a key");
    assert!(key.starts_with("hpk_"));
    let c = client();
    let r = c.get(format!("{}/v1/users?limit=1", s.base)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(format!("{}/v1/users", s.base)).bearer_auth("hpk_wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(c.get(format!("{}/healthz", s.base)).send().await.unwrap().status(), 200);
    assert_eq!(c.get(format!("{}/readyz", s.base)).send().await.unwrap().status(), 200);
    // `serve` counts store calls and requests for /metrics (no key needed).
    let r = c.get(format!("{}/metrics", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    for line in [
        // The good key and the wrong one: both looked up, neither a store error.
        r#"hallpass_storage_operations_total{op="find_api_key",result="ok"} 2"#,
        r#"hallpass_storage_operations_total{op="ping",result="ok"} 1"#,
        r#"hallpass_http_requests_total{method="GET",route="/v1/users",status="200"} 1"#,
        r#"hallpass_http_requests_total{method="GET",route="/v1/users",status="401"} 1"#,
        "hallpass_active_sessions 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    assert!(!text.contains(&key), "{text}");
    s.child.kill().await.unwrap();

    let mut again = start(&db).await;
    assert_eq!(again.first_key, None, "a key exists, so no new one is printed");
    again.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_works_beside_a_running_server_and_sigterm_exits_cleanly() {
    let (_dir, db) = temp_db();
    let mut s = start(&db).await;
    let (ok, stdout, stderr) = cli(&db, &["keys", "create", "--scope", "shop", "--name", "ci"]).await;
    assert!(ok, "{stderr}");
    let key = stdout.lines().last().unwrap().to_owned();
    assert!(key.starts_with("hpk_"), "the key is alone on the last line: {stdout:?}");

    let c = client();
    let r = c
        .post(format!("{}/v1/users", s.base))
        .bearer_auth(&key)
        .json(&json!({"username": "Carol", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // The CLI sees what the server wrote, and the server sees what the CLI wrote.
    let (ok, stdout, stderr) = cli(&db, &["users", "show", "--scope", "shop", "carol"]).await;
    assert!(ok, "{stderr}");
    let shown: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["username"], "Carol");
    let (ok, _, stderr) = cli(&db, &["users", "set-active", "--scope", "shop", "carol", "false"]).await;
    assert!(ok, "{stderr}");
    let r = c.get(format!("{}/v1/users/carol", s.base)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["active"], false);

    // A key of scope shop sees nothing of scope default.
    let (ok, stdout, _) = cli(&db, &["users", "list", "--scope", "default", "--json"]).await;
    assert!(ok);
    assert_eq!(stdout.trim(), "");

    // Revoked from the CLI, refused by the server.
    let (_, list, _) = cli(&db, &["keys", "list", "--json"]).await;
    let id = list
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|k| k["scope"] == "shop")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, _, stderr) = cli(&db, &["keys", "revoke", &id]).await;
    assert!(ok, "{stderr}");
    // The server caches keys and hears of another process's write through its SQLite
    // change watcher, which looks every 20 ms: refused within that, never later.
    let revoked_at = std::time::Instant::now();
    loop {
        let r = c.get(format!("{}/v1/users/carol", s.base)).bearer_auth(&key).send().await.unwrap();
        if r.status() == 401 {
            break;
        }
        assert_eq!(r.status(), 200);
        assert!(revoked_at.elapsed() < Duration::from_secs(1), "a revoked key still works after 1 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let pid = s.child.id().unwrap();
    let killed = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await.unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(15), s.child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "SIGTERM ends the server with success: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_registration() {
    let (_dir, db) = temp_db();
    let mut s = start(&db).await;
    let key = s.first_key.clone().unwrap();
    let base = s.base.clone();
    let c = client();

    // Four writers register users as fast as they can; every 201 is remembered.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (c, key, base, acked) = (c.clone(), key.clone(), base.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("user{w}x{i}");
                let r = c
                    .post(format!("{base}/v1/users"))
                    .bearer_auth(&key)
                    .json(&json!({"username": name, "password": "correct horse battery"}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => acked.lock().unwrap().push(name),
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    while acked.lock().unwrap().len() < 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.child.kill().await.unwrap(); // SIGKILL
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 40);

    let mut s = start(&db).await;
    for name in &acked {
        let r = c.get(format!("{}/v1/users/{name}", s.base)).bearer_auth(&key).send().await.unwrap();
        assert_eq!(r.status(), 200, "acknowledged user {name} survives SIGKILL");
    }
    s.child.kill().await.unwrap();
}

/// The curl walk-through in README.md, run as written against the real binary (with the
/// `export` line pointed at this server and its first key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_curl_walk_through_works_when_pasted() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section =
        readme.split("## A walk through the API with curl").nth(1).expect("README has the walk-through");
    let block = section.split("```sh\n").nth(1).unwrap().split("```").next().unwrap();
    assert!(block.contains("export HP="));
    let (_dir, db) = temp_db();
    let mut s = start(&db).await;
    let key = s.first_key.clone().unwrap();
    let script: String = block
        .lines()
        .map(|l| {
            if l.starts_with("export HP=") { format!("export HP={} KEY={key}", s.base) } else { l.to_owned() }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let out = Command::new("bash").arg("-c").arg(format!("set -e\n{script}")).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "walk-through failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"username\":\"alice\""), "{stdout}");
    assert!(stdout.contains("\n204\n"), "logout answers 204: {stdout}");
    assert!(stdout.contains("session_invalid"), "the token is refused after logout: {stdout}");
    assert!(stdout.contains("\"outcome\":\"success\""), "history shows the login: {stdout}");
    s.child.kill().await.unwrap();
}

/// Runs `hallpass ARGS` on `db` with `input` on stdin (not a terminal, so a password is
/// read from it instead of prompted for).
async fn cli_with_stdin(db: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = sqlite_command(db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_create_reads_the_password_from_stdin_and_the_admin_signs_in() {
    let (_dir, db) = temp_db();
    let (ok, _, err) = cli_with_stdin(&db, &["admin", "create", "--username", "root"], "password1\n").await;
    assert!(!ok && err.contains("weak"), "the password policy applies: {err}");
    let (ok, _, err) =
        cli_with_stdin(&db, &["admin", "create", "--username", "root"], "Quartz-Lantern-Meadow-42\n").await;
    assert!(ok, "{err}");
    let (ok, _, _) =
        cli_with_stdin(&db, &["admin", "create", "--username", "ROOT"], "Quartz-Lantern-Meadow-42\n").await;
    assert!(!ok, "admin names are unique");
    let (ok, out, _) = cli(&db, &["admin", "list"]).await;
    assert!(ok && out.contains("root"), "{out}");
    let (ok, _, err) = cli(&db, &["keys", "create", "--scope", "_admin"]).await;
    assert!(!ok && err.contains("scope"), "no API key reaches the admin scope: {err}");

    let server = start(&db).await;
    let browser =
        hallpass_server::client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let sign_in = |password: &'static str| {
        browser
            .post(format!("{}/admin/login", server.base))
            .form(&[("username", "root"), ("password", password)])
            .send()
    };
    let res = sign_in("Quartz-Lantern-Meadow-42").await.unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("hallpass_admin=hps_"));
    let page = browser.get(format!("{}/admin", server.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);

    let (ok, _, err) = cli(&db, &["admin", "delete", "root"]).await;
    assert!(ok, "{err}");
    // The server hears of another process's write within milliseconds (its session cache
    // watches the database, see DEPLOYMENT.md), not at once: ask again for up to 2 s.
    let mut status = 0;
    for _ in 0..100 {
        let page =
            browser.get(format!("{}/admin", server.base)).header("cookie", &cookie).send().await.unwrap();
        status = page.status().as_u16();
        if status == 303 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 303, "a deleted admin's session is gone");
    assert_eq!(sign_in("Quartz-Lantern-Meadow-42").await.unwrap().status(), 401);
}

/// The request log as `hallpass serve` writes it with no settings, to a pipe: plain text
/// without colour codes; every change, refusal and failure logged; a successful session
/// check (the call made on every request of a backend) not logged at the default level;
/// the lines queued for the writer thread flushed on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_request_log_is_plain_text_and_skips_successful_reads() {
    let (_dir, db) = temp_db();
    let mut child = sqlite_command(&db)
        .env("HALLPASS_LOG_FORMAT", "text")
        .env_remove("RUST_LOG")
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap());
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let key = loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).await.unwrap() > 0, "no key printed");
        if line.starts_with("hpk_") {
            break line.trim().to_owned();
        }
    };
    let mut logged = String::new();
    let addr = loop {
        let mut line = String::new();
        let n =
            tokio::time::timeout(Duration::from_secs(30), err.read_line(&mut line)).await.unwrap().unwrap();
        assert!(n > 0, "the server exited before listening:\n{logged}");
        logged.push_str(&line);
        if line.contains("hallpass listening")
            && let Some(addr) = line.split_whitespace().find_map(|w| w.strip_prefix("addr="))
        {
            break addr.to_owned();
        }
    };
    let base = format!("http://{addr}");
    let c = client();
    let body = json!({"username": "logged", "password": "Tr0ub4dor&3-horse-staple"});
    let r = c.post(format!("{base}/v1/users")).bearer_auth(&key).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = c.post(format!("{base}/v1/sessions")).bearer_auth(&key).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    for _ in 0..20 {
        let r = c.get(format!("{base}/v1/session")).bearer_auth(&key).header("x-session-token", &token);
        assert_eq!(r.send().await.unwrap().status(), 200);
    }
    let r = c.get(format!("{base}/v1/session")).bearer_auth(&key).header("x-session-token", "hps_unknown");
    assert_eq!(r.send().await.unwrap().status(), 401);
    let metrics = c.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("hallpass_log_lines_dropped_total 0"), "{metrics}");

    let pid = child.id().unwrap();
    assert!(Command::new("kill").args(["-TERM", &pid.to_string()]).status().await.unwrap().success());
    let mut rest = String::new();
    tokio::time::timeout(Duration::from_secs(15), err.read_to_string(&mut rest)).await.unwrap().unwrap();
    logged.push_str(&rest);
    assert!(child.wait().await.unwrap().success());

    assert!(!logged.contains('\u{1b}'), "no terminal colour codes in a pipe:\n{logged}");
    let requests: Vec<&str> = logged.lines().filter(|l| l.contains("finished processing request")).collect();
    let with = |path: &str, status: &str| {
        requests
            .iter()
            .filter(|l| l.contains(&format!("path={path} ")) && l.contains(&format!("status={status}")))
            .count()
    };
    assert_eq!(with("/v1/users", "201"), 1, "a registration is logged:\n{logged}");
    assert_eq!(with("/v1/sessions", "201"), 1, "a login is logged:\n{logged}");
    assert_eq!(with("/v1/session", "401"), 1, "a refused session check is logged:\n{logged}");
    assert!(
        requests.iter().any(|l| l.contains("path=/v1/session ")
            && l.contains("status=401")
            && l.contains("request_id=")),
        "and names its request:\n{logged}"
    );
    assert_eq!(with("/v1/session", "200"), 0, "successful session checks are not logged at INFO:\n{logged}");
    assert_eq!(with("/metrics", "200"), 0, "nor scrapes:\n{logged}");
}

/// `hallpass config check` prints the effective settings with their sources and exits 0;
/// a misspelt variable makes it (and `serve`) exit 2 naming the closest setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_prints_sources_and_refuses_a_misspelt_variable() {
    let (_dir, db) = temp_db();
    let (ok, stdout, stderr) = cli(&db, &["config", "check"]).await;
    assert!(ok, "{stderr}");
    let line = stdout.lines().find(|l| l.starts_with("database_url = ")).unwrap();
    assert!(line.ends_with("# environment HALLPASS_DATABASE_URL"), "{line}");
    assert!(
        stdout.lines().any(|l| l.starts_with("session_idle_timeout = \"1d\"") && l.ends_with("# default"))
    );

    for args in [&["config", "check"][..], &["serve"][..]] {
        let out =
            sqlite_command(&db).env("HALLPASS_SESSION_IDLE_TIMOUT", "30m").args(args).output().await.unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(
                "unknown setting HALLPASS_SESSION_IDLE_TIMOUT (did you mean HALLPASS_SESSION_IDLE_TIMEOUT?)"
            ),
            "{stderr}"
        );
    }
}

/// The value after `marker` up to the next `"` or `<` in a page.
fn after(page: &str, marker: &str) -> String {
    let at = page.find(marker).unwrap_or_else(|| panic!("no {marker} in {page}")) + marker.len();
    page[at..].split(['"', '<']).next().unwrap().to_owned()
}

/// An admin who turned on an authenticator app and lost it is let back in from the
/// server: `hallpass admin remove-factors NAME` removes the factors (audited), and the
/// password alone signs in again; an unknown admin is an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_remove_factors_lets_an_admin_who_lost_them_back_in() {
    let (_dir, db) = temp_db();
    let (ok, _, err) =
        cli_with_stdin(&db, &["admin", "create", "--username", "root"], "Quartz-Lantern-Meadow-42\n").await;
    assert!(ok, "{err}");
    let server = start(&db).await;
    let browser =
        hallpass_server::client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = |p: &str| format!("{}{p}", server.base);
    let sign_in = || {
        browser
            .post(url("/admin/login"))
            .header("origin", &server.base)
            .form(&[("username", "root"), ("password", "Quartz-Lantern-Meadow-42")])
            .send()
    };
    let res = sign_in().await.unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = browser.get(url("/admin/account")).header("cookie", &cookie).send().await.unwrap();
    let csrf = after(&page.text().await.unwrap(), r#"name="csrf" value=""#);
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        browser.post(url(path)).header("cookie", &cookie).header("origin", &server.base).form(&form).send()
    };
    let setup =
        post("/admin/account/totp", vec![("csrf", csrf.clone())]).await.unwrap().text().await.unwrap();
    let key = after(&setup, r#"id="totp-secret">"#);
    let secret = totp_rs::Secret::try_from_base32(&key).unwrap().as_bytes().to_vec();
    let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap();
    let code = hallpass_core::mfa::totp(&secret, 6, "x", "x").unwrap().generate(now).to_string();
    let on = post("/admin/account/totp/confirm", vec![("csrf", csrf), ("code", code)]).await.unwrap();
    assert_eq!(on.status(), 200);
    let step = sign_in().await.unwrap();
    assert_eq!(step.status(), 200, "the password alone is not enough now");
    assert!(step.text().await.unwrap().contains("Second factor"));

    let (ok, _, err) = cli(&db, &["admin", "remove-factors", "nobody"]).await;
    assert!(!ok, "an unknown admin is an error: {err}");
    let (ok, _, err) = cli(&db, &["admin", "remove-factors", "root"]).await;
    assert!(ok && err.contains("second factors removed"), "{err}");
    let res = sign_in().await.unwrap();
    assert_eq!(res.status(), 303, "the password alone signs in again");
    let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let trail = browser.get(url("/admin/audit")).header("cookie", &cookie).send().await.unwrap();
    let trail = trail.text().await.unwrap();
    assert!(trail.contains("removed the second factors of admin root"), "{trail}");
}
