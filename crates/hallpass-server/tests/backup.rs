//! Tests of `hallpass backup` and `hallpass restore`, run as the real binary beside a real
//! server: a backup taken while writers register users holds every registration
//! acknowledged before it began, and the copy opens and serves; a restore over a killed
//! server's database (its WAL still beside it) brings the backup back and keeps the old
//! database whole; what must be refused is refused, and leaves everything as it was.
//! No assertion depends on timing: what is compared is what was acknowledged when.

#![allow(clippy::unwrap_used)]

mod process;

use process::{Server, command};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

fn url(db: &Path) -> String {
    format!("sqlite://{}", db.display())
}

async fn start(db: &Path) -> Server {
    process::start(&url(db), Duration::from_secs(60)).await
}

fn client() -> reqwest::Client {
    hallpass_server::client_builder().timeout(Duration::from_secs(20)).build().unwrap()
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `hallpass ARGS` with `HALLPASS_DATABASE_URL=db_url`.
async fn cli(db_url: &str, args: &[&str]) -> Out {
    let out = command(db_url).args(args).stdin(Stdio::null()).output().await.unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

async fn register(c: &reqwest::Client, s: &Server, key: &str, name: &str) {
    let r = c
        .post(format!("{}/v1/users", s.base))
        .bearer_auth(key)
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "registering {name}");
}

async fn user_status(c: &reqwest::Client, s: &Server, key: &str, name: &str) -> u16 {
    c.get(format!("{}/v1/users/{name}", s.base)).bearer_auth(key).send().await.unwrap().status().as_u16()
}

/// The files of `dir`, by name.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The number before " users" in a result line.
fn users_in(line: &str) -> u64 {
    let before = line.split(" users").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_holds_every_write_acknowledged_before_it_began() {
    let dir = tempfile::tempdir().unwrap();
    let (db, copy) = (dir.path().join("hallpass.db"), dir.path().join("backup.db"));
    let server = start(&db).await;
    let key = server.first_key.clone().unwrap();
    let c = client();

    // Four writers register users until told to stop; every 201 is recorded, in order.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (c, key, base, acked, stop) =
            (c.clone(), key.clone(), server.base.clone(), acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("user{w}x{i}");
                let r = c
                    .post(format!("{base}/v1/users"))
                    .bearer_auth(&key)
                    .json(&json!({"username": name, "password": PASSWORD}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201, "registering {name}");
                acked.lock().unwrap().push(name);
                i += 1;
            }
        }));
    }
    while acked.lock().unwrap().len() < 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // What was acknowledged before the backup process starts must be in the copy.
    let before = acked.lock().unwrap().clone();
    let out = cli(&url(&db), &["backup", "--output", copy.to_str().unwrap()]).await;
    let during = acked.lock().unwrap().len() - before.len();
    assert!(out.ok, "backup failed: {}", out.stderr);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    // Not asserted (it depends on timing), but shown: the writers kept going meanwhile.
    eprintln!("{} users registered while the backup ran; {}", during, out.stdout.trim());
    let line = out.stdout.lines().next().unwrap();
    assert!(line.starts_with("backup of ") && line.contains("schema version"), "{line}");
    assert!(users_in(line) >= before.len() as u64, "{line}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a backup holds password hashes: owner only");
    }
    assert_eq!(
        names(dir.path()).iter().filter(|n| n.ends_with(".partial")).count(),
        0,
        "no temporary file is left behind"
    );
    // A write acknowledged after the backup ended cannot be in it: the copy is a snapshot.
    register(&c, &server, &key, "late").await;
    server.stop().await;

    // The copy opens and serves (on its own: the original's server is gone), with the
    // same API key.
    let served = start(&copy).await;
    assert_eq!(served.first_key, None, "the copy has its API keys");
    for name in &before {
        assert_eq!(
            user_status(&c, &served, &key, name).await,
            200,
            "{name} was acknowledged before the backup"
        );
    }
    assert_eq!(user_status(&c, &served, &key, "late").await, 404);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_over_a_killed_servers_database_brings_the_backup_back_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let (db, copy) = (dir.path().join("hallpass.db"), dir.path().join("backup.db"));
    let mut server = start(&db).await;
    let key = server.first_key.clone().unwrap();
    let c = client();
    register(&c, &server, &key, "alice").await;
    let out = cli(&url(&db), &["backup", "-o", copy.to_str().unwrap()]).await;
    assert!(out.ok, "{}", out.stderr);
    register(&c, &server, &key, "bob").await;
    // SIGKILL: nothing is checkpointed, so bob is only in the WAL beside the database.
    server.child.kill().await.unwrap();
    let wal = dir.path().join("hallpass.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0, "the killed server left its WAL");

    // The operator let a group read the database: the restored file keeps that.
    #[cfg(unix)]
    let mode_of = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    }

    let out = cli(&url(&db), &["restore", "--input", copy.to_str().unwrap()]).await;
    assert!(out.ok, "restore failed: {}", out.stderr);
    assert!(out.stdout.contains("restored ") && out.stdout.contains("1 users"), "{}", out.stdout);
    #[cfg(unix)]
    assert_eq!(mode_of(&db), 0o640, "the restored file takes the replaced one's mode");
    let files = names(dir.path());
    let kept: Vec<&String> = files.iter().filter(|n| n.starts_with("hallpass.db.before-restore-")).collect();
    assert_eq!(kept.len(), 1, "the old database is kept: {files:?}");
    assert!(out.stdout.contains(kept[0].as_str()), "{}", out.stdout);
    // The old WAL is not beside the restored file (it would be replayed into it).
    assert!(!wal.exists() && !dir.path().join("hallpass.db-shm").exists(), "{files:?}");
    assert!(!files.iter().any(|n| n.ends_with(".partial")), "{files:?}");

    let restored = start(&db).await;
    assert_eq!(user_status(&c, &restored, &key, "alice").await, 200);
    assert_eq!(user_status(&c, &restored, &key, "bob").await, 404, "bob came after the backup");
    restored.stop().await;

    // The kept database is whole: bob's registration, which was only in the WAL, is in it.
    let kept_path = dir.path().join(kept[0]);
    let old = start(&kept_path).await;
    assert_eq!(user_status(&c, &old, &key, "bob").await, 200);
    old.stop().await;

    // --no-keep replaces without keeping; the files SQLite left beside the database go.
    let before = names(dir.path()).len();
    let out = cli(&url(&db), &["restore", "--input", copy.to_str().unwrap(), "--no-keep"]).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.contains("not kept"), "{}", out.stdout);
    let files = names(dir.path());
    assert!(files.len() <= before, "nothing new is kept: {files:?}");
    assert!(!wal.exists(), "{files:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_database_in_use_and_files_that_are_not_backups() {
    let dir = tempfile::tempdir().unwrap();
    let (db, copy) = (dir.path().join("hallpass.db"), dir.path().join("backup.db"));
    let server = start(&db).await;
    let key = server.first_key.clone().unwrap();
    let c = client();
    register(&c, &server, &key, "alice").await;
    let out = cli(&url(&db), &["backup", "-o", copy.to_str().unwrap()]).await;
    assert!(out.ok, "{}", out.stderr);
    register(&c, &server, &key, "bob").await;

    // The server has the database open: refused, and the server goes on as before.
    let out = cli(&url(&db), &["restore", "-i", copy.to_str().unwrap()]).await;
    assert!(!out.ok && out.stderr.contains("in use"), "{}", out.stderr);
    assert_eq!(user_status(&c, &server, &key, "bob").await, 200);
    register(&c, &server, &key, "carol").await;
    server.stop().await;

    let refused = |input: PathBuf, why: &'static str| {
        let db = db.clone();
        async move {
            let out = cli(&url(&db), &["restore", "-i", input.to_str().unwrap()]).await;
            assert!(!out.ok, "restoring {} must fail", input.display());
            assert!(out.stderr.contains(why), "{why:?} not in: {}", out.stderr);
        }
    };
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database, though long enough to hold a SQLite header and more: ....")
        .unwrap();
    refused(text, "is not a SQLite database").await;
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, "").unwrap();
    refused(empty, "is not a hallpass database").await;
    refused(dir.path().join("missing.db"), "there is no backup at").await;

    // A backup of a newer hallpass (a schema this build does not know).
    let newer = dir.path().join("newer.db");
    std::fs::copy(&copy, &newer).unwrap();
    let conn = rusqlite::Connection::open(&newer).unwrap();
    conn.pragma_update(None, "user_version", hallpass_sqlite::SCHEMA_VERSION + 1).unwrap();
    drop(conn);
    refused(newer, "newer than this hallpass supports").await;

    // A database with its WAL beside it is not a backup: the file alone is not all of it.
    let live = dir.path().join("live.db");
    std::fs::copy(&copy, &live).unwrap();
    std::fs::write(dir.path().join("live.db-wal"), "frames").unwrap();
    refused(live, "write-ahead log").await;

    // The database itself.
    refused(db.clone(), "is the database itself").await;

    // After all that, the database is as the server left it, and nothing was left behind.
    let files = names(dir.path());
    assert!(!files.iter().any(|n| n.contains("before-restore") || n.ends_with(".partial")), "{files:?}");
    let again = start(&db).await;
    assert_eq!(user_status(&c, &again, &key, "carol").await, 200);
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_refuses_to_overwrite_without_force_and_names_the_tools_of_other_databases() {
    let dir = tempfile::tempdir().unwrap();
    let (db, copy) = (dir.path().join("hallpass.db"), dir.path().join("backup.db"));
    let db_url = url(&db);

    // No database: said so, and none is created.
    let out = cli(&db_url, &["backup", "-o", copy.to_str().unwrap()]).await;
    assert!(!out.ok && out.stderr.contains("there is no database at"), "{}", out.stderr);
    assert!(!db.exists() && !copy.exists());

    assert!(cli(&db_url, &["migrate"]).await.ok);
    std::fs::write(&copy, "keep me").unwrap();
    let out = cli(&db_url, &["backup", "-o", copy.to_str().unwrap()]).await;
    assert!(!out.ok && out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "keep me");
    let out = cli(&db_url, &["backup", "-o", copy.to_str().unwrap(), "--force", "--progress"]).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stderr.contains("checking the copy"), "--progress reports on a pipe: {}", out.stderr);
    assert!(out.stdout.contains("0 users"), "{}", out.stdout);
    let out = cli(&db_url, &["backup", "-o", db.to_str().unwrap(), "--force"]).await;
    assert!(!out.ok && out.stderr.contains("is the database itself"), "{}", out.stderr);

    for (other, tool) in [
        ("postgres://hallpass:secret@127.0.0.1:1/hallpass", "pg_dump -Fc"),
        ("mysql://hallpass:secret@127.0.0.1:1/hallpass", "mariadb-dump --single-transaction"),
    ] {
        for args in [&["backup", "-o", "x.db"][..], &["restore", "-i", "x.db"][..]] {
            let out = cli(other, args).await;
            assert!(!out.ok, "{other} {args:?}");
            assert!(
                out.stderr.contains(tool) && out.stderr.contains("DEPLOYMENT.md"),
                "{other} {args:?}: {}",
                out.stderr
            );
            assert!(!out.stderr.contains("secret"), "{}", out.stderr);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_server_key_travels_with_backup_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let (db, copy) = (dir.path().join("hallpass.db"), dir.path().join("backup.db"));
    let server = start(&db).await;
    let key = server.first_key.clone().unwrap();
    let c = client();
    register(&c, &server, &key, "alice").await;
    // The default SQLite server made its key at the first start: TOTP works with no settings.
    let r = c.post(format!("{}/v1/users/alice/mfa/totp", server.base)).bearer_auth(&key).json(&json!({}));
    assert_eq!(r.send().await.unwrap().status(), 200, "TOTP enrolment on a default server");
    let secret_key = std::fs::read(dir.path().join("hallpass.db.secret-key")).unwrap();

    let out = cli(&url(&db), &["backup", "-o", copy.to_str().unwrap()]).await;
    assert!(out.ok, "{}", out.stderr);
    let copied = dir.path().join("backup.db.secret-key");
    assert_eq!(std::fs::read(&copied).unwrap(), secret_key, "the key is copied beside the backup");
    assert!(out.stdout.contains("backup.db.secret-key"), "{}", out.stdout);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&copied).unwrap().permissions().mode() & 0o777, 0o600);
    }
    server.stop().await;

    // Another machine: a server of its own ran there, so it has another key.
    let there = tempfile::tempdir().unwrap();
    let other_db = there.path().join("hallpass.db");
    start(&other_db).await.stop().await;
    let other_key = std::fs::read(there.path().join("hallpass.db.secret-key")).unwrap();
    assert_ne!(other_key, secret_key);
    let out = cli(&url(&other_db), &["restore", "--input", copy.to_str().unwrap()]).await;
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(
        std::fs::read(there.path().join("hallpass.db.secret-key")).unwrap(),
        secret_key,
        "the backup's key is restored with it: {}",
        out.stdout
    );
    let files = names(there.path());
    let kept: Vec<&String> =
        files.iter().filter(|n| n.starts_with("hallpass.db.secret-key.before-restore-")).collect();
    assert_eq!(kept.len(), 1, "the replaced key is kept: {files:?}");
    assert_eq!(std::fs::read(there.path().join(kept[0])).unwrap(), other_key);
    assert!(out.stdout.contains(kept[0].as_str()), "{}", out.stdout);
}
