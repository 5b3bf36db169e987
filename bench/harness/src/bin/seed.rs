//! Bulk seeding: N users and M sessions straight into a migrated hallpass database (run
//! `hallpass migrate` first), with the real schema, for the scale figures of `bench/run.sh`.
//!
//! `seed URL USERS SESSIONS [SCOPE]` (scope default `default`).
//!
//! - Users are `bench0` .. `bench{N-1}`, every one with the same password hash: the bench
//!   password is hashed ONCE with the server's default Argon2id parameters and that PHC
//!   string is stored for every user (a valid hash; hashing a million passwords would take
//!   hours and measure nothing). Ids are UUIDv7s that grow with the index.
//! - Session `j` belongs to user `j % N`, idle expiry in 24 h, absolute in 30 days; its token
//!   is `hallpass_bench::seeded_token(j)` (derived from the index), stored as SHA-256 like a
//!   real one, so the bench can present known tokens.
//! - SQLite: rusqlite, prepared statements, one transaction per 100,000 rows, `synchronous
//!   = OFF` on the seeding connection only. PostgreSQL: `COPY ... FROM STDIN (FORMAT csv)`
//!   through `psql`. MariaDB: `LOAD DATA LOCAL INFILE '/dev/stdin'` through the `mariadb`
//!   client (the C client; no statement-size stalls).
//!
//! Prints one JSON line: rows, seconds, rows per second, and for SQLite the database bytes
//! the sessions added.
#![forbid(unsafe_code)]

use anyhow::{Context as _, bail};
use argon2::password_hash::PasswordHasher as _;
use argon2::{Algorithm, Argon2, Params, Version};
use hallpass::HashParams;
use hallpass_bench::{BENCH_PASSWORD, seeded_token, seeded_username};
use sha2::{Digest as _, Sha256};
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;
use uuid::Uuid;

const DAY_MS: i64 = 86_400_000;

fn v7(millis: i64, index: u64, salt: u8) -> Uuid {
    let mut random = [0u8; 10];
    random[0] = salt;
    random[2..].copy_from_slice(&index.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(millis as u64, &random).into_uuid()
}

fn token_hash(index: u64) -> [u8; 32] {
    Sha256::digest(seeded_token(index).as_bytes()).into()
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

struct Plan {
    users: u64,
    sessions: u64,
    scope: String,
    phc: String,
    now: i64,
}

impl Plan {
    fn user_id(&self, i: u64) -> Uuid {
        v7(self.now - DAY_MS, i, 0)
    }
    fn session_id(&self, j: u64) -> Uuid {
        v7(self.now - 1000, j, 1)
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("tokens") {
        return print_tokens(&args[1..]);
    }
    if args.len() < 3 {
        bail!("usage: seed URL USERS SESSIONS [SCOPE]");
    }
    let url = &args[0];
    let users: u64 = args[1].parse()?;
    let sessions: u64 = args[2].parse()?;
    if users == 0 && sessions > 0 {
        bail!("sessions need users");
    }
    let scope = args.get(3).cloned().unwrap_or_else(|| "default".to_owned());
    let p = HashParams::default();
    let params = Params::new(p.m_cost, p.t_cost, p.p_cost, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(BENCH_PASSWORD.as_bytes())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let plan = Plan { users, sessions, scope, phc, now };

    let start = Instant::now();
    let mut extra = serde_json::Map::new();
    let (user_secs, session_secs) =
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            sqlite(&plan, path.split('?').next().unwrap_or(path), &mut extra)?
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            postgres(&plan, url)?
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            mysql(&plan, url)?
        } else {
            bail!("unsupported URL {url}");
        };
    let secs = start.elapsed().as_secs_f64();
    let mut out = serde_json::json!({
        "users": users, "sessions": sessions, "seconds": secs,
        "user_seconds": user_secs, "session_seconds": session_secs,
        "rows_per_second": (users + sessions) as f64 / secs,
        "users_per_second": users as f64 / user_secs.max(1e-9),
        "sessions_per_second": sessions as f64 / session_secs.max(1e-9),
    });
    if let Some(o) = out.as_object_mut() {
        o.extend(extra);
    }
    println!("{out}");
    Ok(())
}

/// `seed tokens COUNT SESSIONS`: COUNT tokens of seeded sessions spread evenly over
/// 0..SESSIONS, one per line (for the load scripts).
fn print_tokens(args: &[String]) -> anyhow::Result<()> {
    let count: u64 = args.first().context("usage: seed tokens COUNT SESSIONS")?.parse()?;
    let sessions: u64 = args.get(1).context("usage: seed tokens COUNT SESSIONS")?.parse()?;
    let step = (sessions / count.max(1)).max(1);
    let mut out = std::io::stdout().lock();
    // A stride coprime with nothing in particular, offset so the tokens are not all the
    // first rows of their pages.
    for i in 0..count.min(sessions) {
        writeln!(out, "{}", seeded_token((i * step + (i * 7919) % step) % sessions))?;
    }
    Ok(())
}

fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64())
}

// ---- SQLite -----------------------------------------------------------------------------

fn sqlite_bytes(conn: &rusqlite::Connection) -> anyhow::Result<i64> {
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(pages * size)
}

fn sqlite(
    plan: &Plan,
    path: &str,
    extra: &mut serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<(f64, f64)> {
    let mut conn = rusqlite::Connection::open(path).with_context(|| format!("opening {path}"))?;
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -1048576; PRAGMA foreign_keys = OFF;")?;
    const BATCH: u64 = 100_000;
    let user_secs = timed(|| {
        let mut i = 0;
        while i < plan.users {
            let tx = conn.transaction()?;
            {
                let mut st = tx.prepare(
                    "INSERT INTO users (scope, id, username, username_key, group_name, extra, active, confirmed, \
                     password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?3, 'default', '{}', 1, 0, ?4, ?5, ?5)",
                )?;
                for k in i..(i + BATCH).min(plan.users) {
                    st.execute(rusqlite::params![
                        plan.scope,
                        plan.user_id(k).to_string(),
                        seeded_username(k),
                        plan.phc,
                        plan.now - DAY_MS
                    ])?;
                }
            }
            tx.commit()?;
            i += BATCH;
        }
        Ok(())
    })?;
    let before = sqlite_bytes(&conn)?;
    let session_secs = timed(|| {
        let mut j = 0;
        while j < plan.sessions {
            let tx = conn.transaction()?;
            {
                let mut st = tx.prepare(
                    "INSERT INTO sessions (id, scope, user_id, token_hash, created_at, last_seen_at, expires_at, \
                     absolute_expires_at, data) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, '{}')",
                )?;
                for k in j..(j + BATCH).min(plan.sessions) {
                    st.execute(rusqlite::params![
                        plan.session_id(k).to_string(),
                        plan.scope,
                        plan.user_id(k % plan.users).to_string(),
                        &token_hash(k)[..],
                        plan.now,
                        plan.now + DAY_MS,
                        plan.now + 30 * DAY_MS
                    ])?;
                }
            }
            tx.commit()?;
            j += BATCH;
        }
        Ok(())
    })?;
    let after = sqlite_bytes(&conn)?;
    extra.insert("db_bytes".into(), after.into());
    extra.insert("session_bytes".into(), (after - before).into());
    if plan.sessions > 0 {
        extra.insert("bytes_per_session".into(), ((after - before) as f64 / plan.sessions as f64).into());
    }
    Ok((user_secs, session_secs))
}

// ---- PostgreSQL and MariaDB through their own clients -----------------------------------

fn pipe(
    mut cmd: Command,
    feed: impl FnOnce(&mut dyn std::io::Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut child = cmd.stdin(Stdio::piped()).spawn().context("starting the database client")?;
    {
        let stdin = child.stdin.take().context("no stdin")?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, stdin);
        feed(&mut w)?;
        w.flush()?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("the database client failed: {status}");
    }
    Ok(())
}

fn postgres(plan: &Plan, url: &str) -> anyhow::Result<(f64, f64)> {
    let psql = |copy: &str| {
        let mut c = Command::new("psql");
        c.args([
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            url,
            "-c",
            "SET session_replication_role = replica",
            "-c",
            copy,
        ]);
        c
    };
    let user_secs = timed(|| {
        pipe(
            psql(
                "COPY users (scope, id, username, username_key, group_name, extra, active, confirmed, password_hash, \
                 created_at, updated_at) FROM STDIN (FORMAT csv)",
            ),
            |w| {
                for k in 0..plan.users {
                    let name = seeded_username(k);
                    let t = plan.now - DAY_MS;
                    writeln!(
                        w,
                        "{},{},{name},{name},default,{{}},t,f,\"{}\",{t},{t}",
                        plan.scope,
                        plan.user_id(k),
                        plan.phc
                    )?;
                }
                Ok(())
            },
        )
    })?;
    let session_secs = timed(|| {
        pipe(
            psql(
                "COPY sessions (id, scope, user_id, token_hash, created_at, last_seen_at, expires_at, \
                 absolute_expires_at, data) FROM STDIN (FORMAT csv)",
            ),
            |w| {
                for k in 0..plan.sessions {
                    writeln!(
                        w,
                        "{},{},{},\\x{},{},{},{},{},{{}}",
                        plan.session_id(k),
                        plan.scope,
                        plan.user_id(k % plan.users),
                        hex(&token_hash(k)),
                        plan.now,
                        plan.now,
                        plan.now + DAY_MS,
                        plan.now + 30 * DAY_MS
                    )?;
                }
                Ok(())
            },
        )
    })?;
    let status = Command::new("psql").args(["-q", url, "-c", "ANALYZE users; ANALYZE sessions;"]).status()?;
    if !status.success() {
        bail!("ANALYZE failed");
    }
    Ok((user_secs, session_secs))
}

/// `mysql://user[:password]@host[:port]/db` as `mariadb` client arguments.
fn mariadb_args(url: &str) -> anyhow::Result<Vec<String>> {
    let rest = url.split_once("://").context("bad URL")?.1;
    let (creds, hostdb) = rest.rsplit_once('@').unwrap_or(("root", rest));
    let (user, password) = creds.split_once(':').unwrap_or((creds, ""));
    let (hostport, db) = hostdb.split_once('/').context("URL without database")?;
    let db = db.split('?').next().unwrap_or(db);
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "3306"));
    let mut args = vec![
        format!("--host={host}"),
        format!("--port={port}"),
        format!("--user={user}"),
        format!("--database={db}"),
        "--local-infile=1".to_owned(),
    ];
    if !password.is_empty() {
        args.push(format!("--password={password}"));
    }
    Ok(args)
}

fn mysql(plan: &Plan, url: &str) -> anyhow::Result<(f64, f64)> {
    let base = mariadb_args(url)?;
    let client = |sql: &str| {
        let mut c = Command::new("mariadb");
        c.args(&base).arg("-e").arg(sql);
        c
    };
    let load =
        "SET foreign_key_checks = 0; SET unique_checks = 0; LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE";
    let user_secs = timed(|| {
        pipe(
            client(&format!(
                "{load} users FIELDS TERMINATED BY '\\t' (scope, id, username, username_key, group_name, extra, active, \
                 confirmed, password_hash, created_at, updated_at)"
            )),
            |w| {
                for k in 0..plan.users {
                    let name = seeded_username(k);
                    let t = plan.now - DAY_MS;
                    writeln!(
                        w,
                        "{}\t{}\t{name}\t{name}\tdefault\t{{}}\t1\t0\t{}\t{t}\t{t}",
                        plan.scope,
                        plan.user_id(k),
                        plan.phc
                    )?;
                }
                Ok(())
            },
        )
    })?;
    let session_secs = timed(|| {
        pipe(
            client(&format!(
                "{load} sessions FIELDS TERMINATED BY '\\t' (id, scope, user_id, @th, created_at, last_seen_at, \
                 expires_at, absolute_expires_at, data) SET token_hash = UNHEX(@th)"
            )),
            |w| {
                for k in 0..plan.sessions {
                    writeln!(
                        w,
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{{}}",
                        plan.session_id(k),
                        plan.scope,
                        plan.user_id(k % plan.users),
                        hex(&token_hash(k)),
                        plan.now,
                        plan.now,
                        plan.now + DAY_MS,
                        plan.now + 30 * DAY_MS
                    )?;
                }
                Ok(())
            },
        )
    })?;
    Ok((user_secs, session_secs))
}
