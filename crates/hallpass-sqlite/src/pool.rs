//! The connections of one [`crate::SqliteStore`] and how calls reach them.
//!
//! SQLite calls block (disk I/O, fsync, waiting for another process's lock), so none runs
//! on an async worker: every call is a closure run through `tokio::task::spawn_blocking`
//! on a connection the closure owns for its duration.
//!
//! - **One writer**, behind a `tokio::sync::Mutex`. SQLite allows one writer per file at a
//!   time anyway; queueing writers here (fairly, in arrival order, without holding a
//!   blocking thread while waiting) instead of inside SQLite's busy handler means in-process
//!   writers never see `SQLITE_BUSY`. Every write runs in a `BEGIN IMMEDIATE` transaction:
//!   it takes the file's write lock up front, so another process (the CLI) holding it makes
//!   us wait up to the busy timeout at `BEGIN`, and a transaction never fails half-way when
//!   a read lock cannot be upgraded (which deferred transactions do under WAL).
//! - **A few readers**, read-only (`query_only`), handed out by a semaphore. In WAL mode
//!   they read a consistent snapshot while the writer writes, so get-session never waits
//!   for a login.
//!
//! If the caller's future is dropped mid-call, the blocking closure still runs to the end
//! (commit or rollback) and the connection returns to the pool; nothing is half-done.

use crate::connection::{self, Role};
use crate::error::{Fail, QResult, to_store_error};
use hallpass_core::StoreError;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many read connections a store keeps.
pub(crate) const READERS: usize = 4;

/// The idle readers and the permits that count them.
struct Readers {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

/// A store's connections.
pub(crate) struct Pool {
    writer: Arc<tokio::sync::Mutex<Connection>>,
    readers: Arc<Readers>,
}

impl Pool {
    /// Wraps an already configured (and migrated) writer and opens the readers.
    pub(crate) fn new(path: &Path, writer: Connection) -> rusqlite::Result<Self> {
        let idle =
            (0..READERS).map(|_| connection::open(path, Role::Reader)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            readers: Arc::new(Readers { idle: Mutex::new(idle), permits: Arc::new(Semaphore::new(READERS)) }),
        })
    }

    /// A weak handle on the writer (for the change watcher, which must not keep the store
    /// alive).
    pub(crate) fn writer_weak(&self) -> std::sync::Weak<tokio::sync::Mutex<Connection>> {
        Arc::downgrade(&self.writer)
    }

    /// Runs `f` on a reader. `op` names the store method in logs.
    pub(crate) async fn read<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> QResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.readers.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        let readers = Arc::clone(&self.readers);
        let joined = tokio::task::spawn_blocking(move || {
            let lease = Lease::take(readers, permit)?;
            f(lease.conn()?)
        })
        .await;
        finish(op, joined)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer and commits when it
    /// returns `Ok`; an `Err` (or a panic) rolls everything back.
    pub(crate) async fn write<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Transaction<'_>) -> QResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let mut conn = Arc::clone(&self.writer).lock_owned().await;
        let joined = tokio::task::spawn_blocking(move || {
            if !conn.is_autocommit() {
                // Only possible if an earlier COMMIT failed in a way that left the
                // transaction open; start from a clean slate rather than nest.
                tracing::warn!("sqlite: writer left inside a transaction; rolling back");
                conn.execute_batch("ROLLBACK")?;
            }
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await;
        finish(op, joined)
    }
}

/// A reader taken from the pool; it goes back when dropped, also on panic.
struct Lease {
    readers: Arc<Readers>,
    conn: Option<Connection>,
    // Released after `drop` has put the connection back (fields drop after the body).
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    fn take(readers: Arc<Readers>, permit: OwnedSemaphorePermit) -> QResult<Self> {
        // A panic elsewhere while the lock was held cannot leave the Vec inconsistent.
        let conn = readers.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match conn {
            Some(conn) => Ok(Self { readers, conn: Some(conn), _permit: permit }),
            // Unreachable while permits equal connections; refuse rather than panic.
            None => Err(Fail::Store(StoreError::Other("reader pool is empty".into()))),
        }
    }

    fn conn(&self) -> QResult<&Connection> {
        // `conn` is only `None` inside `drop`; an error keeps this free of panics anyway.
        self.conn.as_ref().ok_or_else(|| Fail::Store(StoreError::Other("reader lease is empty".into())))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.readers.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
        }
    }
}

fn finish<T>(op: &'static str, joined: Result<QResult<T>, tokio::task::JoinError>) -> Result<T, StoreError> {
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(fail)) => Err(to_store_error(op, fail)),
        Err(e) if e.is_cancelled() => {
            tracing::warn!(op, "sqlite: blocking task cancelled (runtime shutting down)");
            Err(StoreError::Unavailable("the runtime is shutting down".into()))
        }
        Err(e) => {
            tracing::error!(op, error = %e, "sqlite: storage task panicked");
            Err(StoreError::Other(format!("storage task panicked in {op}")))
        }
    }
}
