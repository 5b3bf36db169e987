//! Diagnostic: does SQLite recompile hallpass's get-session query on every execution?
//!
//! `sqlite-reprepare DB` — DB is a scratch, migrated hallpass SQLite file (`hallpass
//! migrate`); this adds one user and 1000 sessions to it and replaces two indexes. Runs the
//! store's `find_session` query (the same text as `hallpass-sqlite`'s `FIND_SESSION`) 1000
//! times with a new binding each time — once on one statement kept and rebound, once
//! through rusqlite's statement cache (`prepare_cached`, as the store does), on a plain
//! connection and on one configured like the store's readers, and with variants of the
//! query and schema — and prints SQLite's own counter of recompilations
//! (`SQLITE_STMTSTATUS_REPREPARE`) for each.
#![forbid(unsafe_code)]

use rusqlite::{Connection, StatementStatus};

const FIND_SESSION: &str = "SELECT s.id, s.scope, s.user_id, s.created_at, s.last_seen_at, s.expires_at, \
     s.absolute_expires_at, s.data, s.ip, s.user_agent, u.scope, u.id, u.username, u.email, u.group_name, u.extra, \
     u.active, u.confirmation, u.confirmed, u.created_at, u.updated_at, u.last_login_at, u.password_hash \
     FROM sessions s JOIN users u ON u.scope = s.scope AND u.id = s.user_id WHERE s.token_hash = ?1 AND s.scope = ?2";
const FIND_API_KEY: &str =
    "SELECT id, scope, name, created_at, revoked_at FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL";

fn reprepares(conn: &Connection, sql: &str, params: usize) -> anyhow::Result<i32> {
    let mut stmt = conn.prepare(sql)?;
    for i in 0..1000u32 {
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&i.to_be_bytes());
        if params == 2 {
            stmt.query_row(rusqlite::params![&hash[..], "default"], |_| Ok(()))?;
        } else {
            let _ = stmt.query_row(rusqlite::params![&hash[..]], |_| Ok(())).ok();
        }
    }
    Ok(stmt.get_status(StatementStatus::RePrepare))
}

/// A connection configured as `hallpass-sqlite` configures a reader (connection.rs).
fn reader_like(path: &str) -> anyhow::Result<Connection> {
    use rusqlite::OpenFlags;
    use rusqlite::functions::FunctionFlags;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -8 * 1024)?;
    conn.pragma_update(None, "query_only", "ON")?;
    let flags =
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("hallpass_lower", 1, flags, |ctx| {
        Ok(ctx.get::<Option<String>>(0)?.map(|s| s.to_lowercase()))
    })?;
    Ok(conn)
}

/// Through rusqlite's statement cache, as the store does: returns the recompilations
/// counted on the cached statement after 1000 executions.
fn reprepares_cached(conn: &Connection) -> anyhow::Result<i32> {
    reprepares_cached_sql(conn, FIND_SESSION)
}

fn reprepares_cached_sql(conn: &Connection, sql: &str) -> anyhow::Result<i32> {
    for i in 0..1000u32 {
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&i.to_be_bytes());
        let mut stmt = conn.prepare_cached(sql)?;
        stmt.query_row(rusqlite::params![&hash[..], "default"], |_| Ok(()))?;
    }
    let stmt = conn.prepare_cached(sql)?;
    Ok(stmt.get_status(StatementStatus::RePrepare))
}

/// The same for any one-parameter query whose parameter is a 32-byte blob.
fn reprepares_cached_one(conn: &Connection, sql: &str) -> anyhow::Result<i32> {
    for i in 0..1000u32 {
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&i.to_be_bytes());
        let mut stmt = conn.prepare_cached(sql)?;
        let _ = stmt.query_row(rusqlite::params![&hash[..]], |_| Ok(())).ok();
    }
    let stmt = conn.prepare_cached(sql)?;
    Ok(stmt.get_status(StatementStatus::RePrepare))
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: sqlite-reprepare DB"))?;
    let conn = Connection::open(&path)?;
    let stat4: bool = conn.query_row(
        "SELECT count(*) > 0 FROM pragma_compile_options WHERE compile_options = 'ENABLE_STAT4'",
        [],
        |r| r.get(0),
    )?;
    println!("SQLite {} (ENABLE_STAT4: {stat4})", rusqlite::version());
    // One user and 1000 sessions whose token hashes are the ones bound below, so every
    // execution finds its row, as get-session does.
    conn.execute_batch(
        "INSERT OR IGNORE INTO users (scope, id, username, username_key, group_name, extra, active, confirmed, \
         created_at, updated_at) VALUES ('default', '00000000-0000-7000-8000-000000000001', 'probe', 'probe', \
         'default', '{}', 1, 0, 0, 0)",
    )?;
    for i in 0..1000u32 {
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&i.to_be_bytes());
        conn.execute(
            "INSERT OR IGNORE INTO sessions (id, scope, user_id, token_hash, created_at, last_seen_at, expires_at, \
             absolute_expires_at, data) VALUES (?1, 'default', '00000000-0000-7000-8000-000000000001', ?2, 0, 0, \
             9999999999999, 9999999999999, '{}')",
            rusqlite::params![format!("00000000-0000-7000-9000-{i:012}"), &hash[..]],
        )?;
    }
    println!(
        "schema as migrated, one prepared statement rebound: find_session recompiled {} times in 1000, find_api_key {} times",
        reprepares(&conn, FIND_SESSION, 2)?,
        reprepares(&conn, FIND_API_KEY, 1)?
    );
    println!(
        "reader-like connection, prepare_cached: find_session recompiled {} times in 1000",
        reprepares_cached(&reader_like(&path)?)?
    );
    let plain = Connection::open(&path)?;
    println!(
        "plain connection, prepare_cached: find_api_key {}, a query on an indexed column (sessions.token_hash) {}, \
              on a column without index (sessions.data) {}",
        reprepares_cached_one(&plain, FIND_API_KEY)?,
        reprepares_cached_one(&plain, "SELECT id FROM sessions WHERE token_hash = ?1")?,
        reprepares_cached_one(&plain, "SELECT id FROM sessions WHERE data = ?1")?
    );
    let head = FIND_SESSION.split(" FROM ").next().unwrap_or_default();
    println!(
        "plain connection, prepare_cached, scope bound on both tables (JOIN users u ON u.scope = ?2 AND u.id = s.user_id): {}",
        reprepares_cached_sql(
            &plain,
            &format!(
                "{head} FROM sessions s JOIN users u ON u.scope = ?2 AND u.id = s.user_id \
            WHERE s.token_hash = ?1 AND s.scope = ?2"
            )
        )?
    );
    println!(
        "plain connection, prepare_cached, scope compared as an expression (s.scope = ?2 || ''): {}",
        reprepares_cached_sql(
            &plain,
            &format!(
                "{head} FROM sessions s JOIN users u ON u.scope = s.scope AND u.id = s.user_id \
            WHERE s.token_hash = ?1 AND s.scope = (?2 || '')"
            )
        )?
    );
    println!(
        "plain connection, prepare_cached: find_session recompiled {} times in 1000",
        reprepares_cached(&Connection::open(&path)?)?
    );
    println!(
        "reader-like connection, one prepared statement: find_session recompiled {} times in 1000",
        reprepares(&reader_like(&path)?, FIND_SESSION, 2)?
    );
    conn.execute_batch(
        "DROP INDEX users_username_key; DROP INDEX users_email_key;
         CREATE UNIQUE INDEX users_username_key ON users (scope, username_key);
         CREATE UNIQUE INDEX users_email_key ON users (scope, email_key);",
    )?;
    let conn = Connection::open(&path)?;
    println!(
        "users' partial indexes made plain, prepare_cached: find_session recompiled {} times in 1000",
        reprepares_cached(&conn)?
    );
    Ok(())
}
