//! The change channel for caches (`Store::changes`, `Store::publish_change`): PostgreSQL's
//! `LISTEN`/`NOTIFY` on the channel [`CHANNEL`], so no table is needed. A process
//! publishes with `pg_notify` (the login transaction notifies inside its own statement,
//! see `crate::queries::sessions`); every process that caches listens on a connection of
//! its own, under a supervisor that starts the listener again should it ever panic.

use crate::error::QResult;
use hallpass_core::store::Change;
use sqlx::postgres::PgPool;
use std::time::Duration;

/// The `LISTEN`/`NOTIFY` channel of cache changes.
pub(crate) const CHANNEL: &str = "hallpass_changes";

/// Listens on [`CHANNEL`] and forwards each change; a lost connection (sqlx reconnects by
/// itself) may have lost notifications, so it sends [`Change::All`]. Ends when the store
/// is dropped.
async fn listen(pool: PgPool, tx: tokio::sync::broadcast::Sender<Change>, alive: std::sync::Weak<()>) {
    let mut listener: Option<sqlx::postgres::PgListener> = None;
    while alive.strong_count() > 0 {
        let Some(l) = listener.as_mut() else {
            match sqlx::postgres::PgListener::connect_with(&pool).await {
                Ok(mut l) => match l.listen(CHANNEL).await {
                    Ok(()) => {
                        // Anything may have happened while nobody listened.
                        let _ = tx.send(Change::All);
                        listener = Some(l);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "postgres: LISTEN failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                Err(e) => {
                    tracing::debug!(error = %e, "postgres: listener cannot connect");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            continue;
        };
        match tokio::time::timeout(Duration::from_secs(1), l.try_recv()).await {
            Err(_) => {} // a second without news: check that the store still lives
            Ok(Ok(Some(n))) => {
                let _ = tx.send(Change::from_wire(n.payload()));
            }
            Ok(Ok(None)) => {
                let _ = tx.send(Change::All);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "postgres: listener lost its connection");
                let _ = tx.send(Change::All);
                listener = None;
            }
        }
    }
}

/// Runs [`listen`] as a task of its own and starts it again should it ever panic (a bug,
/// never a payload: every payload reads as some change), after dropping every cached copy
/// (notifications may have been missed meanwhile). Cross-process invalidation never stops
/// silently.
pub(crate) async fn supervise(
    pool: PgPool,
    tx: tokio::sync::broadcast::Sender<Change>,
    alive: std::sync::Weak<()>,
) {
    while alive.strong_count() > 0 {
        match tokio::spawn(listen(pool.clone(), tx.clone(), alive.clone())).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "postgres: the change listener failed; starting it again");
                let _ = tx.send(Change::All);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Tells every listening process (this one included) of `change`.
pub(crate) async fn publish(pool: &PgPool, change: &Change) -> QResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(change.to_wire()).execute(pool).await?;
    Ok(())
}
