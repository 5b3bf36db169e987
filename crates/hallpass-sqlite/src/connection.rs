//! Opening: which file a `sqlite:` URL names, a new file made readable by its owner only,
//! and one SQLite connection opened and configured. Every connection of the pool comes
//! from here, so they all agree on durability, locking and foreign keys.
//!
//! The pragmas, and why:
//!
//! - `journal_mode = WAL` (persistent, set once by the writer): readers never block the
//!   writer and the writer never blocks readers, so session checks keep flowing while a
//!   login or a CLI command writes. Commits append to the WAL instead of rewriting pages.
//! - `synchronous = FULL`: in WAL mode `NORMAL` may lose the last commits on power loss;
//!   `FULL` fsyncs the WAL on every commit, so an acknowledged write (a password change, an
//!   ended session, a redeemed code) survives a crash. The cost is one fsync per write
//!   transaction, which the single writer amortises poorly only under heavy login load.
//! - `foreign_keys = ON`: per connection and off by default in SQLite; it makes the
//!   `ON DELETE CASCADE` from users to sessions, codes and identities real, and refuses a
//!   session or code for a user that does not exist.
//! - `busy_timeout = 5000`: the CLI (`hallpass users ...`) writes to the same file while
//!   the server runs; a writer that finds the lock taken waits up to 5 s instead of failing
//!   at once. Past that, the error maps to `StoreError::Unavailable` (503, retry).
//! - `cache_size`: negative means KiB. 16 MiB for the writer, 8 MiB per reader: the hot
//!   indexes (session token hashes, user primary keys) stay in memory for small and
//!   mid-sized installations without letting a pool of readers grow large.
//! - `temp_store = MEMORY`: sorts and temporary b-trees (statistics, listings) never touch
//!   the disk.
//! - `journal_size_limit`: after a checkpoint, truncate the WAL file back to 64 MiB at
//!   most, so one burst of writes does not leave a large file behind forever.
//! - `SQLITE_DBCONFIG_ENABLE_QPSG` (the query planner stability guarantee): plans do not
//!   depend on the values bound. Without it, the get-session join (sessions to users)
//!   was recompiled on 999 of 1000 executions through rusqlite's statement cache: the
//!   planner had looked at a bound value while planning, and the cache's
//!   `sqlite3_clear_bindings` on every return expires such a statement. Found with
//!   `SQLITE_STMTSTATUS_REPREPARE` (`bench/harness/src/bin/sqlite-reprepare.rs`); with the
//!   guarantee on, 0 in 1000. Tested in `tests/sqlite.rs`.
//! - `query_only = ON` on readers: a read connection cannot write even by mistake, so the
//!   single-writer discipline of the pool is enforced by SQLite, not only by convention.
//!
//! Each connection also gets `hallpass_lower(text)`, Rust's Unicode lower-casing as a SQL
//! function: SQLite's `lower()` and `LIKE` fold ASCII only, and user search must match
//! `ÉLODIE` with `élodie` just as the reference store does.

use hallpass_core::StoreError;
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a connection waits for another process's lock before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// Prepared statements kept per connection; the store has a few dozen distinct queries.
const STATEMENT_CACHE: usize = 64;

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The one connection that writes (and runs migrations).
    Writer,
    /// A read-only connection of the reader pool.
    Reader,
}

/// Opens `path` (creating the file if missing) and applies the pragmas for `role`.
pub(crate) fn open(path: &Path, role: Role) -> rusqlite::Result<Connection> {
    // No SQLITE_OPEN_URI: a path is a path, even one that starts with "file:".
    // NO_MUTEX: each connection is used by one thread at a time (the pool guarantees it),
    // so SQLite's own per-connection mutex would be pure overhead.
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    // The busy timeout first: every later pragma may need a lock another process holds.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    if role == Role::Writer {
        let mode = enable_wal(&conn)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Still correct (rollback journal, same durability), only less concurrent:
            // some file systems (network shares) cannot do WAL.
            tracing::warn!(path = %path.display(), mode, "sqlite: WAL mode unavailable, running in {mode} mode");
        }
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    let cache_kib: i64 = match role {
        Role::Writer => -16 * 1024,
        Role::Reader => -8 * 1024,
    };
    conn.pragma_update(None, "cache_size", cache_kib)?;
    if role == Role::Reader {
        conn.pragma_update(None, "query_only", "ON")?;
    }
    register_functions(&conn)?;
    Ok(conn)
}

/// Switches the file to WAL (a no-op when it already is) and returns the mode in force.
///
/// The switch needs an exclusive lock, and when several connections open a fresh file at
/// once (server and CLI starting together) SQLite can answer `SQLITE_BUSY` for it at once,
/// without consulting the busy handler. So: retry on busy until the same deadline the
/// busy timeout gives every other statement.
fn enable_wal(conn: &Connection) -> rusqlite::Result<String> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        let current: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        if current.eq_ignore_ascii_case("wal") {
            return Ok(current);
        }
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    let flags =
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("hallpass_lower", 1, flags, |ctx| {
        Ok(ctx.get::<Option<String>>(0)?.map(|s| s.to_lowercase()))
    })
}

/// A new database holds password hashes and provider tokens: make it readable by its owner
/// only (SQLite gives the `-wal` and `-shm` files the database file's permissions).
pub(crate) fn restrict_to_owner(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(path = %path.display(), error = %e, "sqlite: cannot restrict the new database to its owner");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The file a `sqlite:` URL names.
pub fn path_of_url(url: &str) -> Result<PathBuf, StoreError> {
    let invalid = |why: &str| StoreError::Other(format!("invalid SQLite URL {url:?}: {why}"));
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| invalid("expected sqlite://PATH or sqlite:PATH"))?;
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            if pair != "mode=rwc" {
                return Err(invalid(&format!("unsupported parameter {pair:?} (only mode=rwc is accepted)")));
            }
        }
    }
    if path.is_empty() {
        return Err(invalid("the path is empty"));
    }
    if path == ":memory:" || path.starts_with("file::memory:") {
        return Err(invalid("in-memory databases are not supported; name a file"));
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_files() {
        let ok = |u: &str| path_of_url(u).unwrap();
        assert_eq!(ok("sqlite://hallpass.db"), std::path::PathBuf::from("hallpass.db"));
        assert_eq!(ok("sqlite:hallpass.db"), std::path::PathBuf::from("hallpass.db"));
        assert_eq!(ok("sqlite://./data/h.db"), std::path::PathBuf::from("./data/h.db"));
        assert_eq!(ok("sqlite:///var/lib/h.db"), std::path::PathBuf::from("/var/lib/h.db"));
        assert_eq!(ok("sqlite:/var/lib/h.db"), std::path::PathBuf::from("/var/lib/h.db"));
        assert_eq!(ok("sqlite://h.db?mode=rwc"), std::path::PathBuf::from("h.db"));
        for bad in
            ["postgres://x", "sqlite://", "sqlite:", "sqlite::memory:", "sqlite://h.db?mode=ro", "h.db"]
        {
            assert!(path_of_url(bad).is_err(), "{bad}");
        }
    }

    fn pragma_i64(c: &Connection, name: &str) -> i64 {
        c.pragma_query_value(None, name, |r| r.get(0)).unwrap()
    }

    #[test]
    fn connections_get_their_pragmas() {
        let dir = std::env::temp_dir().join(format!("hallpass-sqlite-pragma-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.db");
        let w = open(&path, Role::Writer).unwrap();
        let r = open(&path, Role::Reader).unwrap();
        let mode: String = w.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        for c in [&w, &r] {
            assert_eq!(pragma_i64(c, "synchronous"), 2, "FULL");
            assert_eq!(pragma_i64(c, "foreign_keys"), 1);
            assert_eq!(pragma_i64(c, "busy_timeout"), 5000);
            assert_eq!(pragma_i64(c, "temp_store"), 2, "MEMORY");
        }
        assert_eq!(pragma_i64(&w, "query_only"), 0);
        assert_eq!(pragma_i64(&r, "query_only"), 1);
        assert!(r.execute_batch("CREATE TABLE t (x)").is_err(), "readers cannot write");
        let lower: String = r.query_row("SELECT hallpass_lower('ÉLODIE')", [], |r| r.get(0)).unwrap();
        assert_eq!(lower, "élodie");
        drop((w, r));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The get-session join is planned once per connection, not once per call: through
    /// the statement cache, as the store runs it, with a new token each time.
    #[test]
    fn the_get_session_query_is_not_recompiled_per_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut w = open(&path, Role::Writer).unwrap();
        crate::migrate::run(&mut w).unwrap();
        let r = open(&path, Role::Reader).unwrap();
        for i in 0..200u32 {
            let mut hash = [0u8; 32];
            hash[..4].copy_from_slice(&i.to_be_bytes());
            let mut stmt = r.prepare_cached(crate::queries::sessions::FIND_SESSION).unwrap();
            let none = stmt.query_row(rusqlite::params![&hash[..], "app"], |_| Ok(())).is_err();
            assert!(none, "no such session");
        }
        let stmt = r.prepare_cached(crate::queries::sessions::FIND_SESSION).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
