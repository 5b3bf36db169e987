//! The SQLite half of `hallpass backup` and `hallpass restore`: taking a consistent copy of
//! a database that a server keeps writing, checking a copy, and making sure no process has
//! a database open before it is replaced. Where files go (temporary names, renames, fsync,
//! what is kept) is the command's business (`hallpass-server`, `backup.rs`); this module
//! only speaks SQLite, so no rusqlite type leaves the crate.
//!
//! **How the copy is taken: `VACUUM INTO`.** It runs as one read transaction on the source,
//! so the copy is the database as of one instant: every transaction committed before it
//! began, none after. In WAL mode that read transaction does not stop the server's writers
//! (they append to the WAL meanwhile, which stays un-checkpointed until the copy ends), and
//! nothing another process does can make it start over. The alternative, SQLite's online
//! backup API, copies in steps and restarts from the first page whenever another
//! connection writes the source between two steps: under a server's steady write load a
//! stepped backup may never finish, and a single step of every page is again one read
//! transaction, with no progress to show either. `VACUUM INTO` also leaves the free pages
//! behind, so the copy is as small as the data. It shows no progress of its own; the
//! command watches the copy's file grow against [`Source::estimated_bytes`].
//!
//! **Why every connection here opens read-write** (never creating a file): a read-only
//! connection cannot remove the `-wal` and `-shm` files it made when it is the last to
//! close, so a backup of a stopped server would leave them behind; and `query_only`
//! refuses `VACUUM INTO` outright. The only statements run on a source are reads and
//! `VACUUM INTO`.

use crate::migrate::SCHEMA_VERSION;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a backup or restore step failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// There is no file at the path.
    #[error("there is no database at {0}")]
    Missing(PathBuf),
    /// The file is not a SQLite database at all.
    #[error("{0} is not a SQLite database")]
    NotADatabase(PathBuf),
    /// A SQLite database, but not one hallpass made (no schema version, no `users` table).
    #[error("{0} is not a hallpass database (it has no hallpass schema)")]
    NotHallpass(PathBuf),
    /// SQLite found damage in the file.
    #[error("{path} failed SQLite's integrity check: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// SQLite's first findings.
        detail: String,
    },
    /// Another connection (a running server, a CLI command) has the database open.
    #[error(
        "{0} is in use by another process (a running `hallpass serve`, or another hallpass command); \
         stop it first"
    )]
    InUse(PathBuf),
    /// Anything else SQLite reported (I/O, a full disk, permissions).
    #[error("{path}: {message}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// SQLite's message.
        message: String,
    },
}

impl BackupError {
    /// The same error about `path`: a check of a temporary copy names the file the
    /// operator gave instead.
    pub fn with_path(self, path: &Path) -> Self {
        let path = path.to_path_buf();
        match self {
            Self::Missing(_) => Self::Missing(path),
            Self::NotADatabase(_) => Self::NotADatabase(path),
            Self::NotHallpass(_) => Self::NotHallpass(path),
            Self::Corrupt { detail, .. } => Self::Corrupt { path, detail },
            Self::InUse(_) => Self::InUse(path),
            Self::Sqlite { message, .. } => Self::Sqlite { path, message },
        }
    }

    /// Classifies a rusqlite error met while working on `path`.
    fn of(path: &Path, e: &rusqlite::Error) -> Self {
        let path = path.to_path_buf();
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => Self::NotADatabase(path),
            Some(ErrorCode::DatabaseCorrupt) => Self::Corrupt { path, detail: e.to_string() },
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::InUse(path),
            _ => Self::Sqlite { path, message: e.to_string() },
        }
    }
}

/// What a checked copy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyInfo {
    /// Its `PRAGMA user_version`: the number of migrations applied.
    pub schema_version: u32,
    /// Users of every scope, admins included; `None` when the schema is newer than this
    /// build (its tables may differ, so they are not counted).
    pub users: Option<u64>,
    /// Sessions, expired ones not yet swept included; `None` as for `users`.
    pub sessions: Option<u64>,
}

/// How long a copy's source waits for a lock: as long as the store's own connections,
/// since a source in use is normal (the server is running).
const SOURCE_BUSY_TIMEOUT: Duration = crate::connection::BUSY_TIMEOUT;

/// How long [`take_offline`] waits for the exclusive lock. A running server holds its
/// shared lock without a break, so waiting longer would only find it busy later; a
/// short wait rides out a command that is just finishing.
const OFFLINE_BUSY_TIMEOUT: Duration = Duration::from_millis(200);

/// Opens an existing file read-write without ever creating it (see the module comment).
fn open_existing(path: &Path) -> Result<Connection, BackupError> {
    if !path.is_file() {
        return Err(BackupError::Missing(path.to_path_buf()));
    }
    // No SQLITE_OPEN_URI: a path is a path, as in `connection::open`.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(path, flags).map_err(|e| BackupError::of(path, &e))
}

/// A database to copy, opened.
#[derive(Debug)]
pub struct Source {
    conn: Connection,
    path: PathBuf,
}

impl Source {
    /// Opens the database at `path` (which must exist) for copying.
    pub fn open(path: &Path) -> Result<Source, BackupError> {
        let conn = open_existing(path)?;
        conn.busy_timeout(SOURCE_BUSY_TIMEOUT).map_err(|e| BackupError::of(path, &e))?;
        Ok(Source { conn, path: path.to_path_buf() })
    }

    /// About how many bytes the copy will have: the pages in use (all but the free list)
    /// times the page size. Only for showing progress; `VACUUM INTO` rebuilds the b-trees,
    /// so the copy may come out a little smaller or larger.
    pub fn estimated_bytes(&self) -> Result<u64, BackupError> {
        let fail = |e: rusqlite::Error| BackupError::of(&self.path, &e);
        let pragma = |name: &str| self.conn.pragma_query_value(None, name, |r| r.get::<_, i64>(0));
        let pages = pragma("page_count").map_err(fail)?;
        let free = pragma("freelist_count").map_err(fail)?;
        let size = pragma("page_size").map_err(fail)?;
        Ok(u64::try_from(pages.saturating_sub(free).saturating_mul(size)).unwrap_or(0))
    }

    /// Writes a consistent copy of the database into `dest`, which must not exist or be
    /// an empty file (SQLite refuses anything else, so nothing is ever overwritten here).
    /// Blocks until the copy is written; writers of other connections go on meanwhile.
    /// The copy is not yet synced to disk: the caller checks it ([`check_copy`]) and
    /// syncs it before giving it its name.
    pub fn copy_into(&self, dest: &Path) -> Result<(), BackupError> {
        let dest_text = dest.to_str().ok_or_else(|| BackupError::Sqlite {
            path: dest.to_path_buf(),
            message: "the path is not valid UTF-8, which SQLite needs for VACUUM INTO".into(),
        })?;
        // A bound parameter, not text pasted into SQL: the path may hold any character.
        self.conn.execute("VACUUM INTO ?1", [dest_text]).map_err(|e| BackupError::of(&self.path, &e))?;
        Ok(())
    }
}

/// Checks a copy (a fresh backup, or a file about to be restored) and makes it one
/// self-contained file: switches it to the rollback journal (`journal_mode = DELETE`, so
/// the copy never needs a `-wal` beside it, wherever it is moved; `serve` switches it back
/// to WAL when it opens it), runs SQLite's full `integrity_check`, reads the schema version
/// and counts users and sessions. Only for a file no other process uses: the caller's
/// temporary file.
pub fn check_copy(path: &Path) -> Result<CopyInfo, BackupError> {
    let conn = open_existing(path)?;
    let fail = |e: rusqlite::Error| BackupError::of(path, &e);
    // The first statement reads the header: a file that is not a database fails here.
    conn.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0)).map_err(fail)?;
    let mut problems = Vec::new();
    {
        // At most ten findings: enough to say what is wrong without flooding the terminal.
        let mut stmt = conn.prepare("PRAGMA integrity_check(10)").map_err(fail)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(fail)?;
        for row in rows {
            let line = row.map_err(fail)?;
            if line != "ok" {
                problems.push(line);
            }
        }
    }
    if !problems.is_empty() {
        return Err(BackupError::Corrupt { path: path.to_path_buf(), detail: problems.join("; ") });
    }
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(fail)?;
    let Ok(schema_version) = u32::try_from(version) else {
        return Err(BackupError::NotHallpass(path.to_path_buf()));
    };
    if schema_version == 0 {
        // An empty file is a valid, empty SQLite database too: version 0, no tables.
        return Err(BackupError::NotHallpass(path.to_path_buf()));
    }
    if schema_version > SCHEMA_VERSION {
        return Ok(CopyInfo { schema_version, users: None, sessions: None });
    }
    let count = |table: &str| -> Result<u64, BackupError> {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).map_err(
            |e| match e.sqlite_error_code() {
                // "no such table": a user_version set by something else than hallpass.
                Some(ErrorCode::Unknown) => BackupError::NotHallpass(path.to_path_buf()),
                _ => fail(e),
            },
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok(CopyInfo { schema_version, users: Some(count("users")?), sessions: Some(count("sessions")?) })
}

/// What [`take_offline`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offline {
    /// Nobody had the database open; its WAL (if any) was written back into the main file
    /// and removed, so the file alone is now the whole database.
    Closed,
    /// SQLite could not read the file (damaged, or not a database): nothing could be
    /// checked or written back. Its `-wal`, if any, is still beside it.
    Unreadable(String),
}

/// Makes sure no other connection has the database at `path` open, then closes it
/// cleanly: the step before `hallpass restore` replaces the file.
///
/// How it tells: the connection asks for `locking_mode = EXCLUSIVE` and reads, which in
/// WAL mode takes an exclusive lock on the database file. Every connection of a WAL
/// database holds a shared lock on that file from its first read until it closes (the
/// server's writer, readers and change watcher, and any CLI command while it runs), so
/// the exclusive lock is refused: [`BackupError::InUse`]. What it cannot see: a database
/// not in WAL mode (a file system without shared memory; its idle connections hold no
/// lock), a process that opened the file but has not read yet, one on another machine over
/// a network file system (whose locks may not work at all), and one that opens the file
/// after this returns. So it guards against the usual mistake (restoring under a running
/// server), not against a server started during the restore.
///
/// When the lock is granted, the connection checkpoints the WAL into the main file, and on
/// closing (the last connection) SQLite removes the `-wal` file.
pub fn take_offline(path: &Path) -> Result<Offline, BackupError> {
    let conn = match open_existing(path) {
        Ok(c) => c,
        Err(BackupError::NotADatabase(_) | BackupError::Corrupt { .. }) => {
            return Ok(Offline::Unreadable("not readable as a SQLite database".into()));
        }
        Err(e) => return Err(e),
    };
    let fail = |e: rusqlite::Error| BackupError::of(path, &e);
    conn.busy_timeout(OFFLINE_BUSY_TIMEOUT).map_err(fail)?;
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE").map_err(fail)?;
    match conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0)) {
        Ok(_) => {}
        Err(e) => {
            return match BackupError::of(path, &e) {
                BackupError::InUse(p) => Err(BackupError::InUse(p)),
                BackupError::NotADatabase(_) | BackupError::Corrupt { .. } => {
                    Ok(Offline::Unreadable(e.to_string()))
                }
                other => Err(other),
            };
        }
    }
    // TRUNCATE: the WAL's frames go into the main file and the WAL is emptied, so even if
    // SQLite could not remove it on close, what is left beside the file holds nothing.
    // A damaged database may fail here; it is being replaced, so say so and go on.
    let checkpoint = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
    drop(conn);
    match checkpoint {
        Ok(0) => Ok(Offline::Closed),
        Ok(_) => Ok(Offline::Unreadable("the WAL could not be written back into the database".into())),
        Err(e) => match BackupError::of(path, &e) {
            BackupError::InUse(p) => Err(BackupError::InUse(p)),
            _ => Ok(Offline::Unreadable(e.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::SqliteStore;

    fn store_with_users(path: &Path, n: usize) {
        drop(SqliteStore::open(path).unwrap());
        let conn = Connection::open(path).unwrap();
        for i in 0..n {
            conn.execute(
                "INSERT INTO users (scope, id, group_name, active, confirmed, created_at, updated_at) \
                 VALUES ('a', ?1, 'default', 1, 1, 0, 0)",
                [format!("u{i}")],
            )
            .unwrap();
        }
    }

    #[test]
    fn a_copy_is_checked_and_self_contained() {
        let dir = tempfile::tempdir().unwrap();
        let (db, copy) = (dir.path().join("db"), dir.path().join("copy"));
        store_with_users(&db, 3);
        let source = Source::open(&db).unwrap();
        assert!(source.estimated_bytes().unwrap() > 0);
        source.copy_into(&copy).unwrap();
        assert!(
            matches!(source.copy_into(&copy), Err(BackupError::Sqlite { .. })),
            "VACUUM INTO never overwrites"
        );
        let info = check_copy(&copy).unwrap();
        assert_eq!(info, CopyInfo { schema_version: SCHEMA_VERSION, users: Some(3), sessions: Some(0) });
        let mode: String =
            Connection::open(&copy).unwrap().pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "delete");
    }

    #[test]
    fn what_is_not_a_hallpass_database_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text");
        std::fs::write(&text, "this is not a database, only words, but more than a header's worth of them")
            .unwrap();
        assert!(matches!(check_copy(&text), Err(BackupError::NotADatabase(_))), "{:?}", check_copy(&text));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(check_copy(&empty), Err(BackupError::NotHallpass(_))));
        let other = dir.path().join("other");
        let conn = Connection::open(&other).unwrap();
        conn.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 2;").unwrap();
        drop(conn);
        assert!(matches!(check_copy(&other), Err(BackupError::NotHallpass(_))));
        assert!(matches!(check_copy(&dir.path().join("none")), Err(BackupError::Missing(_))));
        assert!(matches!(Source::open(&dir.path().join("none")), Err(BackupError::Missing(_))));
        assert!(!dir.path().join("none").exists(), "nothing is created");
    }

    #[test]
    fn a_newer_schema_is_read_but_not_counted() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        store_with_users(&db, 1);
        Connection::open(&db).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        let info = check_copy(&db).unwrap();
        assert_eq!(info, CopyInfo { schema_version: SCHEMA_VERSION + 1, users: None, sessions: None });
    }

    /// (A WAL left by a killed server is the binary tests' case: SQLite's locks belong to a
    /// process, so a connection leaked here would still hold its lock in this one.)
    #[test]
    fn take_offline_refuses_an_open_database_and_closes_an_unused_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let store = SqliteStore::open(&db).unwrap();
        assert!(matches!(take_offline(&db), Err(BackupError::InUse(_))), "the store holds it open");
        assert!(dir.path().join("db-wal").exists(), "the store's WAL is untouched");
        drop(store);
        assert_eq!(take_offline(&db).unwrap(), Offline::Closed);
        assert!(!dir.path().join("db-wal").exists(), "the last connection removed the WAL");
        let text = dir.path().join("text");
        std::fs::write(&text, "not a database, and longer than the 100 bytes of a SQLite header, ......")
            .unwrap();
        assert!(matches!(take_offline(&text), Ok(Offline::Unreadable(_))), "reported, not refused");
    }
}
