//! The change channel for caches (`Store::changes`): how this process hears that another
//! process wrote to the file. SQLite has no notifications between processes and hallpass
//! keeps no change table here: the watcher reads `PRAGMA data_version` on the writer
//! connection, which moves only when another connection commits, and answers any move
//! with "drop everything". This process's own changes reach its other services directly
//! (`SqliteStore::publish_change`).

use hallpass_core::store::Change;

/// How often the change watcher asks the writer connection whether another connection
/// (another process: this one's readers never write) committed.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// Watches `PRAGMA data_version` on the writer connection: it moves only when another
/// connection commits, so any move is another process's write, of which nothing more is
/// known: [`Change::All`]. Ends when the store is dropped.
pub(crate) fn watch_other_processes(
    writer: std::sync::Weak<tokio::sync::Mutex<rusqlite::Connection>>,
    tx: tokio::sync::broadcast::Sender<Change>,
) {
    let read = |writer: &tokio::sync::Mutex<rusqlite::Connection>| {
        let conn = writer.blocking_lock();
        conn.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
    };
    // The first reading is taken before this returns: a write by another process after
    // that is seen, whenever the first cached copy is made.
    let (started, baseline) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new().name("hallpass-sqlite-watch".into()).spawn(move || {
        let mut last: Option<i64> = writer.upgrade().and_then(|w| read(&w).ok());
        let _ = started.send(());
        loop {
            std::thread::sleep(WATCH_EVERY);
            let Some(writer) = writer.upgrade() else { break };
            let version = read(&writer);
            drop(writer);
            match version {
                Ok(v) => {
                    if last.is_some_and(|l| l != v) {
                        tracing::debug!("sqlite: another process wrote; dropping cached copies");
                        let _ = tx.send(Change::All);
                    }
                    last = Some(v);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sqlite: reading data_version");
                    let _ = tx.send(Change::All);
                }
            }
        }
    });
    match spawned {
        // A blocking wait of microseconds, once per store.
        Ok(_) => drop(baseline.recv_timeout(std::time::Duration::from_secs(5))),
        Err(e) => tracing::warn!(error = %e, "sqlite: could not start the change watcher"),
    }
}
