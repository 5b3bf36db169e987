//! Tests of `hallpass export`, `hallpass import` and `hallpass import-sleepless`, run as the
//! real binary: users made over HTTP on one database, exported, imported into another, and
//! logging in there with the same passwords; foreign (bcrypt, sleepless-sessions) hashes
//! that log in and are upgraded to Argon2id; invalid lines reported and skipped; a move from
//! SQLite to PostgreSQL and to MariaDB through a shell pipe. The PostgreSQL and MariaDB tests use the
//! machine's servers (a fresh database each) and are skipped, with a notice, when those
//! cannot be reached outside CI.

#![allow(clippy::unwrap_used)]

mod process;

use process::{BIN, Server, command};
use serde_json::{Value, json};
use sha1::Digest as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const PASSWORD: &str = "plum otter basalt 47 quietly";

fn sqlite(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Starts `hallpass serve` on `url` (60 s to listen: these tests run beside heavy imports).
async fn start(url: &str) -> Server {
    process::start(url, Duration::from_secs(60)).await
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Out {
    /// The last line of stderr: the summary of an import.
    fn summary(&self) -> &str {
        self.stderr.lines().last().unwrap_or_default()
    }
}

async fn cli_with(url: &str, args: &[&str], stdin: Option<&[u8]>) -> Out {
    let mut child = command(url)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).await.unwrap();
        drop(pipe);
    }
    let out =
        tokio::time::timeout(Duration::from_secs(120), child.wait_with_output()).await.unwrap().unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

async fn cli(url: &str, args: &[&str]) -> Out {
    cli_with(url, args, None).await
}

/// Runs a command that must succeed.
async fn ok(url: &str, args: &[&str]) -> Out {
    let out = cli(url, args).await;
    assert!(out.ok, "hallpass {args:?} failed: {}", out.stderr);
    out
}

async fn show(url: &str, scope: &str, user: &str) -> Value {
    let out = ok(url, &["users", "show", "--scope", scope, user]).await;
    serde_json::from_str(&out.stdout).unwrap()
}

/// Creates an API key of `scope` with the CLI.
async fn key(url: &str, scope: &str) -> String {
    ok(url, &["keys", "create", "--scope", scope]).await.stdout.lines().last().unwrap().to_owned()
}

/// The user lines of an export (the header checked and dropped).
fn user_lines(export: &str) -> Vec<Value> {
    let mut lines = export.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["hallpass_export"], 1, "{header}");
    assert!(header["exported_at"].as_str().unwrap().ends_with('Z'), "{header}");
    lines.map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn find<'a>(users: &'a [Value], field: &str, value: &str) -> &'a Value {
    users.iter().find(|u| u[field] == value).unwrap_or_else(|| panic!("no user with {field} {value}"))
}

struct Http {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Http {
    fn new(base: &str, key: &str) -> Self {
        Self {
            client: hallpass_server::client_builder().timeout(Duration::from_secs(20)).build().unwrap(),
            base: base.to_owned(),
            key: key.to_owned(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    async fn login(&self, login: &str, password: &str) -> (u16, Value) {
        self.post("/v1/sessions", json!({"login": login, "password": password})).await
    }
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    (dir, path)
}

/// Fills a database over HTTP: alice (password, extra, group, a provider link, one login)
/// and carol (no password, inactive) in scope `default`, bob in scope `shop`.
async fn fill(url: &str) {
    let mut s = start(url).await;
    let http = Http::new(&s.base, &s.first_key.clone().expect("a fresh database prints a key"));
    let (st, _) = http
        .post(
            "/v1/users",
            json!({"username": "Alice", "email": "alice@Example.com", "password": PASSWORD,
                   "group": "staff", "extra": {"plan": "gold", "n": [1, 2]}}),
        )
        .await;
    assert_eq!(st, 201);
    let (st, _) = http
        .send(
            reqwest::Method::PUT,
            "/v1/users/alice/providers/github",
            json!({"client_id": "gh-42", "access_token": "tok", "access_token_expiry": 4_000_000_000u64,
                   "refresh_token": "rtok"}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(http.login("alice", PASSWORD).await.0, 201);
    let (st, _) = http.post("/v1/users", json!({"username": "carol", "active": false})).await;
    assert_eq!(st, 201);
    let shop = Http::new(&s.base, &key(url, "shop").await);
    let (st, _) = shop.post("/v1/users", json!({"email": "bob@shop.example", "password": PASSWORD})).await;
    assert_eq!(st, 201);
    s.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_keeps_every_field_and_the_passwords() {
    let (_dir, dir) = temp();
    let (old, new) = (sqlite(&dir.join("old.db")), sqlite(&dir.join("new.db")));
    fill(&old).await;

    // To stdout by default; to a file, readable by its owner only, with --output.
    let out = ok(&old, &["export"]).await;
    let users = user_lines(&out.stdout);
    assert!(out.stderr.contains("exported 3 users"), "{}", out.stderr);
    assert_eq!(users.len(), 3);
    let alice = find(&users, "username", "Alice");
    assert_eq!(alice["scope"], "default");
    assert_eq!(alice["email"], "alice@Example.com");
    assert_eq!(alice["group"], "staff");
    assert_eq!(alice["extra"], json!({"plan": "gold", "n": [1, 2]}));
    assert!(alice["password_hash"].as_str().unwrap().starts_with("$argon2id$"));
    assert!(alice["last_login_at"].as_str().is_some());
    let created = alice["created_at"].as_str().unwrap();
    assert_eq!(created.len(), "2026-01-01T00:00:00.000Z".len(), "milliseconds, UTC: {created}");
    let github = &alice["providers"][0];
    assert_eq!(github["provider"], "github");
    assert_eq!(github["client_id"], "gh-42");
    assert_eq!(github["access_token"], "tok");
    assert_eq!(github["access_token_expiry"], "2096-10-02T07:06:40.000Z");
    // Sealed at rest by the old server's key, written opened: the new server has another.
    assert_eq!(github["refresh_token"], "rtok");
    assert_eq!(find(&users, "username", "carol")["password_hash"], Value::Null);
    assert_eq!(find(&users, "username", "carol")["active"], false);
    assert_eq!(find(&users, "email", "bob@shop.example")["scope"], "shop");

    let file = dir.join("users.jsonl");
    ok(&old, &["export", "--output", file.to_str().unwrap()]).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(user_lines(&std::fs::read_to_string(&file).unwrap()), users);

    let out = ok(&new, &["import", file.to_str().unwrap()]).await;
    assert_eq!(out.summary(), "inserted 3, existing 0, conflicts 0, invalid 0", "{}", out.stderr);
    for (scope, user) in [("default", "alice"), ("default", "carol"), ("shop", "bob@shop.example")] {
        assert_eq!(show(&old, scope, user).await, show(&new, scope, user).await, "{user} is the same");
    }
    // The import sealed the tokens with the new database's own key (made by the import).
    let conn = rusqlite::Connection::open(dir.join("new.db")).unwrap();
    let (access, refresh): (String, String) = conn
        .query_row("SELECT access_token, refresh_token FROM identities", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert!(access.starts_with("hp1.") && refresh.starts_with("hp1."), "sealed: {access} {refresh}");
    assert_ne!(
        std::fs::read(dir.join("new.db.secret-key")).unwrap(),
        std::fs::read(dir.join("old.db.secret-key")).unwrap()
    );
    let again = ok(&new, &["export"]).await;
    assert_eq!(user_lines(&again.stdout), users, "the export of the copy equals the original's");

    // Twice changes nothing; `users import` is the same command.
    let out = ok(&new, &["import", file.to_str().unwrap()]).await;
    assert_eq!(out.summary(), "inserted 0, existing 3, conflicts 0, invalid 0", "{}", out.stderr);
    let out = ok(&new, &["users", "import", file.to_str().unwrap()]).await;
    assert_eq!(out.summary(), "inserted 0, existing 3, conflicts 0, invalid 0", "{}", out.stderr);

    // The same passwords log in on the copy, and the provider link works.
    let mut s = start(&new).await;
    let http = Http::new(&s.base, &s.first_key.clone().unwrap());
    let (st, body) = http.login("alice@example.com", PASSWORD).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["login"]["extra"]["plan"], "gold");
    assert_eq!(http.login("alice", "wrong horse battery").await.0, 401);
    let (st, body) = http.post("/v1/sessions", json!({"provider": "github", "client_id": "gh-42"})).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["login"]["oauth"]["access_token"], "tok");
    assert_eq!(body["login"]["oauth"]["refresh_token"], "rtok");
    let shop = Http::new(&s.base, &key(&new, "shop").await);
    assert_eq!(shop.login("bob@shop.example", PASSWORD).await.0, 201);
    s.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bcrypt_hash_from_another_system_logs_in_and_becomes_argon2id() {
    let (_dir, dir) = temp();
    let db = sqlite(&dir.join("hallpass.db"));
    let hash = bcrypt::hash("legacy password 1", 4).unwrap();
    assert!(hash.starts_with("$2b$04$"));
    let file = dir.join("legacy.jsonl");
    let line = json!({"scope": "default", "username": "legacy", "email": "legacy@example.com",
                      "password_hash": hash, "created_at": "2020-02-02T02:02:02.002Z"});
    std::fs::write(&file, format!("{line}\n")).unwrap();
    let out = ok(&db, &["import", file.to_str().unwrap()]).await;
    assert_eq!(out.summary(), "inserted 1, existing 0, conflicts 0, invalid 0", "{}", out.stderr);
    // Without an id in the file, the id is derived from the line: a second run finds it.
    let out = ok(&db, &["import", file.to_str().unwrap()]).await;
    assert_eq!(out.summary(), "inserted 0, existing 1, conflicts 0, invalid 0", "{}", out.stderr);
    let shown = show(&db, "default", "legacy").await;
    assert_eq!(shown["created_at"], "2020-02-02T02:02:02.002Z");
    assert!(shown["id"].as_str().unwrap().starts_with("0170"), "a UUIDv7 of 2020: {shown}");

    let mut s = start(&db).await;
    let http = Http::new(&s.base, &s.first_key.clone().unwrap());
    assert_eq!(http.login("legacy", "legacy password 2").await.0, 401);
    let (st, body) = http.login("legacy", "legacy password 1").await;
    assert_eq!(st, 201, "{body}");
    let exported = ok(&db, &["export"]).await;
    let legacy = user_lines(&exported.stdout).into_iter().find(|u| u["username"] == "legacy").unwrap();
    assert!(
        legacy["password_hash"].as_str().unwrap().starts_with("$argon2id$"),
        "upgraded at the first good login: {legacy}"
    );
    assert_eq!(http.login("legacy@example.com", "legacy password 1").await.0, 201);
    s.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_lines_are_reported_by_number_and_the_rest_is_imported() {
    let (_dir, dir) = temp();
    let db = sqlite(&dir.join("hallpass.db"));
    let lines = [
        json!({"hallpass_export": 1, "exported_at": "2026-01-01T00:00:00.000Z"}).to_string(),
        json!({"scope": "default", "username": "one"}).to_string(),
        "{not json".to_owned(),
        json!({"scope": "default", "username": "two", "email": "not an address"}).to_string(),
        json!({"scope": "default", "username": "three"}).to_string(),
        json!({"scope": "default", "username": "four", "password_hash": "hunter2-in-clear"}).to_string(),
        String::new(),
        json!({"scope": "default", "email": "five@example.com", "pasword_hash": null}).to_string(),
        json!({"scope": "default", "email": "six@example.com"}).to_string(),
    ];
    let input = lines.join("\n") + "\n";
    let out = cli_with(&db, &["import", "-"], Some(input.as_bytes())).await;
    assert!(out.ok, "invalid lines do not fail the import: {}", out.stderr);
    assert_eq!(out.summary(), "inserted 3, existing 0, conflicts 0, invalid 4", "{}", out.stderr);
    for n in [3, 4, 6, 8] {
        assert!(out.stderr.contains(&format!("line {n}: invalid")), "line {n} reported: {}", out.stderr);
    }
    assert!(out.stderr.contains("email"), "{}", out.stderr);
    assert!(out.stderr.contains("pasword_hash"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "a refused hash is never echoed: {}", out.stderr);
    for name in ["one", "three", "six@example.com"] {
        show(&db, "default", name).await;
    }

    // --strict: the same report, but a failure.
    let out = cli_with(&db, &["import", "--strict"], Some(input.as_bytes())).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("inserted 0, existing 3, conflicts 0, invalid 4"), "{}", out.stderr);

    // Another user with a name that is taken: a conflict, reported with its line.
    let taken = json!({"scope": "default", "id": "01936a1e-0000-7000-8000-0000000000aa", "username": "ONE"});
    let out = cli_with(&db, &["import"], Some(format!("{taken}\n").as_bytes())).await;
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.summary(), "inserted 0, existing 0, conflicts 1, invalid 0", "{}", out.stderr);
    assert!(out.stderr.contains("line 1: conflict"), "{}", out.stderr);
    let out = cli_with(&db, &["import", "--strict"], Some(format!("{taken}\n").as_bytes())).await;
    assert!(!out.ok, "a conflict fails a strict import");

    // A header of another version stops the import before anything is read.
    let v2 =
        format!("{}\n{}\n", json!({"hallpass_export": 2}), json!({"scope": "default", "username": "seven"}));
    let out = cli_with(&db, &["import"], Some(v2.as_bytes())).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("version 2"), "{}", out.stderr);
    assert!(!cli(&db, &["users", "show", "seven"]).await.ok);
}

/// A line of scope `_admin` makes an admin of the web page: `import` refuses it (invalid,
/// with its line number) unless `--include-admins` says the file moves a whole deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_are_imported_only_with_include_admins() {
    let (_dir, dir) = temp();
    let (old, new) = (sqlite(&dir.join("old.db")), sqlite(&dir.join("new.db")));
    let out =
        cli_with(&old, &["admin", "create", "--username", "root"], Some(b"Quartz-Lantern-Meadow-42\n")).await;
    assert!(out.ok, "{}", out.stderr);
    ok(&old, &["users", "create", "--scope", "default", "--username", "dora"]).await;
    let export = ok(&old, &["export"]).await.stdout;
    let users = user_lines(&export);
    assert!(users.iter().any(|u| u["scope"] == "_admin"), "export writes the admins: {export}");

    // Without the flag: the admin's line is invalid, the rest goes in.
    let out = cli_with(&new, &["import"], Some(export.as_bytes())).await;
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.summary(), "inserted 1, existing 0, conflicts 0, invalid 1", "{}", out.stderr);
    assert!(out.stderr.contains("--include-admins"), "{}", out.stderr);
    let admins = ok(&new, &["admin", "list"]).await.stdout;
    assert!(!admins.contains("root"), "no admin was made: {admins}");
    // A hand-written admin line is refused the same way.
    let forged =
        json!({"scope": "_admin", "username": "mallory", "password_hash": bcrypt::hash("x", 4).unwrap()});
    let out = cli_with(&new, &["import"], Some(format!("{forged}\n").as_bytes())).await;
    assert_eq!(out.summary(), "inserted 0, existing 0, conflicts 0, invalid 1", "{}", out.stderr);
    assert!(out.stderr.contains("line 1: invalid"), "{}", out.stderr);

    // With it: the whole deployment, admins included.
    let out = cli_with(&new, &["import", "--include-admins"], Some(export.as_bytes())).await;
    assert_eq!(out.summary(), "inserted 1, existing 1, conflicts 0, invalid 0", "{}", out.stderr);
    let admins = ok(&new, &["admin", "list"]).await.stdout;
    assert!(admins.contains("root") && !admins.contains("mallory"), "{admins}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_deployment_moves_to_postgresql_through_a_pipe() {
    let Some(pg) = hallpass_postgres::testing::TestDb::create().await else { return };
    move_through_a_pipe(&pg.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_deployment_moves_to_mariadb_through_a_pipe() {
    let Some(mariadb) = hallpass_mysql::testing::TestDatabase::create().await else { return };
    move_through_a_pipe(mariadb.url()).await;
}

/// `export | import -` from a filled SQLite database to the empty database `new`, then the
/// users are the same there and log in with the same passwords.
async fn move_through_a_pipe(new: &str) {
    let (_dir, dir) = temp();
    let old = sqlite(&dir.join("old.db"));
    fill(&old).await;

    let script = format!(
        "set -o pipefail; HALLPASS_DATABASE_URL='{old}' '{BIN}' export | HALLPASS_DATABASE_URL='{new}' '{BIN}' import -"
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("HALLPASS_ARGON2_MEMORY_KIB", "256")
        .env("HALLPASS_ARGON2_ITERATIONS", "1")
        .env("HALLPASS_LOG_FORMAT", "json")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.trim_end().ends_with("inserted 3, existing 0, conflicts 0, invalid 0"), "{stderr}");

    for (scope, user) in [("default", "alice"), ("default", "carol"), ("shop", "bob@shop.example")] {
        assert_eq!(show(&old, scope, user).await, show(new, scope, user).await, "{user} is the same");
    }
    assert_eq!(
        user_lines(&ok(&old, &["export"]).await.stdout),
        user_lines(&ok(new, &["export"]).await.stdout)
    );
    let out = ok(&old, &["export"]).await;
    let again = cli_with(new, &["import", "-"], Some(out.stdout.as_bytes())).await;
    assert_eq!(again.summary(), "inserted 0, existing 3, conflicts 0, invalid 0", "{}", again.stderr);

    let mut s = start(new).await;
    let http = Http::new(&s.base, &s.first_key.clone().expect("no key was moved, so serve makes one"));
    assert_eq!(http.login("alice", PASSWORD).await.0, 201);
    s.child.kill().await.unwrap();
}

fn sha1_hex(s: &str) -> String {
    sha1::Sha1::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The tables sleepless-sessions' SQL implies (it ships none), with `created` filled by the
/// column default, as its `make_user` leaves it out.
const SLEEPLESS_SCHEMA: [&str; 2] = [
    "CREATE TABLE users (
        user_id varchar(64) NOT NULL PRIMARY KEY,
        email varchar(255),
        locked tinyint NOT NULL DEFAULT 0,
        pw_hash char(40),
        pw_salt char(40),
        created datetime NOT NULL DEFAULT current_timestamp(),
        deleted datetime NULL,
        rst_code varchar(40),
        rst_expire datetime NULL)",
    "CREATE TABLE sessions (
        user_id varchar(64) NOT NULL,
        sid char(40) NOT NULL PRIMARY KEY,
        agent varchar(255),
        remote_ip varchar(64),
        expires datetime)",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleepless_sessions_users_move_in_and_log_in_with_their_passwords() {
    use sqlx::{Connection as _, Executor as _};
    let Some(mariadb) = hallpass_mysql::testing::TestDatabase::create().await else { return };
    let mut conn = sqlx::mysql::MySqlConnection::connect(mariadb.url()).await.unwrap();
    for ddl in SLEEPLESS_SCHEMA {
        conn.execute(ddl).await.unwrap();
    }
    // As sleepless-sessions' make_user does: a random 40-hex salt, sha1(password + salt).
    let register =
        async |conn: &mut sqlx::mysql::MySqlConnection, user_id: &str, email: &str, password: &str| {
            let salt = sha1_hex(&format!("{}{}", user_id, rand_ish()));
            sqlx::query(
                "insert into users ( user_id, locked, email, pw_hash, pw_salt ) values ( ?, 0, ?, ?, ? )",
            )
            .bind(user_id)
            .bind(email)
            .bind(sha1_hex(&format!("{password}{salt}")))
            .bind(salt)
            .execute(conn)
            .await
            .unwrap();
        };
    register(&mut conn, "alice", "Alice@Example.com", "alice password").await;
    register(&mut conn, "lockedout", "locked@example.com", "locked password").await;
    register(&mut conn, "gone", "gone@example.com", "gone password").await;
    register(&mut conn, "badmail", "not an address", "badmail password").await;
    conn.execute("update users set locked = 1 where user_id = 'lockedout'").await.unwrap();
    conn.execute("update users set deleted = now() where user_id = 'gone'").await.unwrap();
    // Sessions and reset codes are there, and must not come along.
    conn.execute(
        "insert into sessions (user_id, sid, agent, remote_ip, expires) \
         values ('alice', sha1('x'), '', '', date_add(now(), interval 86400 second))",
    )
    .await
    .unwrap();
    conn.execute("update users set rst_code = '', rst_expire = now() where user_id = 'alice'").await.unwrap();
    conn.close().await.unwrap();

    let (_dir, dir) = temp();
    let db = sqlite(&dir.join("hallpass.db"));
    let args = ["import-sleepless", "--from", mariadb.url(), "--scope", "legacy"];
    let out = cli(&db, &args).await;
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.summary(), "inserted 2, existing 0, conflicts 0, invalid 1", "{}", out.stderr);
    assert!(out.stderr.contains("\"badmail\""), "the skipped row is named: {}", out.stderr);
    assert!(out.stderr.contains("1 deleted ones skipped"), "{}", out.stderr);

    let alice = show(&db, "legacy", "alice").await;
    assert_eq!(alice["email"], "Alice@Example.com");
    assert_eq!(alice["extra"], json!({"sleepless_user_id": "alice"}));
    assert_eq!(alice["active"], true);
    let created = time::OffsetDateTime::parse(
        alice["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let skew = (time::OffsetDateTime::now_utc() - created).abs();
    assert!(skew < time::Duration::minutes(5), "created_at is the row's `created`: {created}");
    let id = uuid::Uuid::parse_str(alice["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(show(&db, "legacy", "lockedout").await["active"], false);
    assert!(!cli(&db, &["users", "show", "--scope", "legacy", "gone"]).await.ok, "deleted users stay out");

    let mut s = start(&db).await;
    let http = Http::new(&s.base, &key(&db, "legacy").await);
    let (st, body) = http.login("Alice@example.com", "alice password").await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["login"]["user_id"], alice["id"]);
    let (st, body) = http.login("alice", "alice password").await;
    assert_eq!(st, 201, "by the sleepless user_id too, now with Argon2id: {body}");
    assert_eq!(http.login("alice", "alice passwore").await.0, 401);
    let (st, body) = http.login("lockedout", "locked password").await;
    assert_eq!((st, body["code"].as_str()), (403, Some("user_inactive")), "{body}");
    let (st, body) = http.login("gone@example.com", "gone password").await;
    assert_eq!((st, body["code"].as_str()), (401, Some("invalid_credentials")), "{body}");
    let (st, _) =
        http.post("/v1/password-resets/redeem", json!({"code": "", "password": "taken over!!"})).await;
    assert_ne!(st, 200, "sleepless' empty reset code is not a code here");
    s.child.kill().await.unwrap();

    let exported = user_lines(&ok(&db, &["export"]).await.stdout);
    let hash = find(&exported, "username", "alice")["password_hash"].as_str().unwrap().to_owned();
    assert!(hash.starts_with("$argon2id$"), "rehashed at the first good login");
    let locked = find(&exported, "username", "lockedout")["password_hash"].as_str().unwrap().to_owned();
    assert!(locked.starts_with("$sleepless-sha1$"), "{locked}");

    // Again: the same ids, so nothing is inserted and alice's new hash stays.
    let out = cli(&db, &args).await;
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.summary(), "inserted 0, existing 2, conflicts 0, invalid 1", "{}", out.stderr);
    let exported = user_lines(&ok(&db, &["export"]).await.stdout);
    assert_eq!(find(&exported, "username", "alice")["password_hash"], hash.as_str());
}

/// Something that differs between calls, as sleepless' `Date.now() + Math.random()` does.
fn rand_ish() -> String {
    format!("{:?}{:?}", std::time::SystemTime::now(), std::thread::current().id())
}

/// The code of a base32 TOTP secret for the time step `offset` steps from now.
fn totp_code(secret: &str, offset: i64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).unwrap().as_bytes().to_vec();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() + offset * 30;
    hallpass_core::mfa::totp(&bytes, 6, "x", "x").unwrap().generate(u64::try_from(now).unwrap()).to_string()
}

/// Second factors move with their users: the authenticator-app secret is written opened
/// by the old database's key and sealed by the new one's (each SQLite file has its own),
/// recovery codes as their hashes, and after the move the user still needs the second
/// factor, which the same app and the same recovery codes answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factors_move_with_their_users() {
    let (_dir, dir) = temp();
    let (old, new) = (sqlite(&dir.join("old.db")), sqlite(&dir.join("new.db")));
    let mut s = start(&old).await;
    let http = Http::new(&s.base, &s.first_key.clone().expect("a fresh database prints a key"));
    assert_eq!(http.post("/v1/users", json!({"username": "dora", "password": PASSWORD})).await.0, 201);
    let (st, enrolled) = http.post("/v1/users/dora/mfa/totp", json!({})).await;
    assert_eq!(st, 200, "{enrolled}");
    let secret = enrolled["secret"].as_str().unwrap().to_owned();
    let (st, confirmed) =
        http.post("/v1/users/dora/mfa/totp/confirm", json!({"code": totp_code(&secret, 0)})).await;
    assert_eq!(st, 200, "{confirmed}");
    let codes: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    s.child.kill().await.unwrap();

    let export = ok(&old, &["export"]).await;
    assert!(export.stderr.contains("1 with second factors"), "{}", export.stderr);
    let users = user_lines(&export.stdout);
    let dora = find(&users, "username", "dora");
    assert_eq!(dora["mfa"]["totp"]["secret"], secret.as_str(), "written opened: {dora}");
    assert_eq!(dora["mfa"]["totp"]["confirmed"], true);
    assert_eq!(dora["mfa"]["recovery_codes"].as_array().unwrap().len(), 10);
    for c in &codes {
        assert!(!export.stdout.contains(c.as_str()), "a recovery code is written only as its hash");
    }
    let imported = cli_with(&new, &["import", "-"], Some(export.stdout.as_bytes())).await;
    assert_eq!(imported.summary(), "inserted 1, existing 0, conflicts 0, invalid 0", "{}", imported.stderr);
    let old_key = std::fs::read(dir.join("old.db.secret-key")).unwrap();
    let new_key = std::fs::read(dir.join("new.db.secret-key")).unwrap();
    assert_ne!(old_key, new_key, "each database has its own key");

    let mut s = start(&new).await;
    let http = Http::new(&s.base, &s.first_key.clone().expect("no key was moved"));
    let (st, challenge) = http.login("dora", PASSWORD).await;
    assert_eq!((st, challenge["mfa_required"].clone()), (200, json!(true)), "{challenge}");
    // The next step's code: the one the confirmation used is spent, and that stays so.
    let (st, done) = http
        .post("/v1/sessions/mfa", json!({"challenge": challenge["challenge"], "totp": totp_code(&secret, 1)}))
        .await;
    assert_eq!(st, 201, "the same app answers after the move: {done}");
    let (_, challenge) = http.login("dora", PASSWORD).await;
    let (st, done) = http
        .post("/v1/sessions/mfa", json!({"challenge": challenge["challenge"], "recovery_code": codes[3]}))
        .await;
    assert_eq!(st, 201, "a recovery code answers after the move: {done}");
    assert_eq!(done["login"]["recovery_codes_remaining"], 9, "{done}");
    s.child.kill().await.unwrap();
}
