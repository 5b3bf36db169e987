//! The embedded migrations (`migrations/NNNN_name.sql`) and how they are applied.
//!
//! sqlx's own migrator would need its `migrate` feature, which the workspace cannot enable
//! (see the sqlx line of the workspace Cargo.toml), so this is a small one of our own:
//!
//! 1. On a dedicated connection (not a pooled one), take the named lock
//!    `GET_LOCK('hallpass_migrate:<database>', 60)`. The lock is per server, so the name
//!    carries the database: two processes migrating one database queue here, migrations
//!    of different databases do not wait for each other. A lock belongs to its connection
//!    session; closing the connection releases it, whatever happened, so a crashed or
//!    cancelled migration never leaves it held.
//! 2. Under the lock, read `hallpass_migrations` (version, checksum) and apply, in order,
//!    every embedded migration not recorded there, then record it. The second of two
//!    racing processes finds everything recorded and does nothing.
//! 3. A recorded migration whose file changed since (another checksum) is refused: the
//!    database would not be what this code expects. Versions recorded but unknown here
//!    (a newer hallpass migrated the database) are logged and tolerated, so an older
//!    process can keep running during a rolling upgrade.
//!
//! MySQL commits every DDL statement on its own, so a migration cannot be atomic: each
//! file is written to be re-runnable (`CREATE TABLE IF NOT EXISTS`, ...) and is recorded
//! only after all of it succeeded. A run that stopped half-way is completed by the next.

use crate::error::QResult;
use hallpass_core::StoreError;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::mysql::MySqlConnection;
use std::time::Instant;

/// The schema version this code writes: the highest embedded migration.
pub const SCHEMA_VERSION: i64 = 5;

/// One embedded migration.
struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Add new ones at the end; never edit an applied one.
const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, description: "init", sql: include_str!("../migrations/0001_init.sql") },
    Migration { version: 2, description: "throttles", sql: include_str!("../migrations/0002_throttles.sql") },
    Migration { version: 3, description: "admin", sql: include_str!("../migrations/0003_admin.sql") },
    Migration { version: 4, description: "changes", sql: include_str!("../migrations/0004_changes.sql") },
    Migration {
        version: 5,
        description: "decoy codes",
        sql: include_str!("../migrations/0005_decoy_codes.sql"),
    },
];

/// How long a process waits for another one's migration before giving up (`Unavailable`).
const LOCK_WAIT_SECONDS: i64 = 60;

const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS hallpass_migrations (
    version       BIGINT       NOT NULL PRIMARY KEY,
    description   VARCHAR(255) NOT NULL,
    checksum      BINARY(32)   NOT NULL,
    applied_at    BIGINT       NOT NULL,
    execution_ms  BIGINT       NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

/// The name of the migration lock of `database` (at most 64 characters, the server's
/// limit; a truncated name can only make two databases' migrations queue, never overlap).
fn lock_name(database: &str) -> String {
    format!("hallpass_migrate:{database}").chars().take(64).collect()
}

/// Applies the pending migrations on `conn` (a connection of its own, closed by the
/// caller afterwards) under the migration lock.
pub(crate) async fn run(conn: &mut MySqlConnection) -> QResult<()> {
    let database: Option<String> = sqlx::query_scalar("SELECT DATABASE()").fetch_one(&mut *conn).await?;
    let Some(database) = database else {
        return Err(
            StoreError::Other("the MySQL URL names no database (mysql://HOST/DATABASE)".into()).into()
        );
    };
    let name = lock_name(&database);
    let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
        .bind(&name)
        .bind(LOCK_WAIT_SECONDS)
        .fetch_one(&mut *conn)
        .await?;
    match got {
        Some(1) => {}
        Some(_) => {
            return Err(StoreError::Unavailable(format!(
                "another process held the migration lock of database {database:?} for {LOCK_WAIT_SECONDS} s"
            ))
            .into());
        }
        None => return Err(StoreError::Other("GET_LOCK failed".into()).into()),
    }
    let applied = apply_pending(conn, &database).await;
    // Best effort: if this fails, closing the connection releases the lock anyway.
    if let Err(e) = sqlx::query("SELECT RELEASE_LOCK(?)").bind(&name).execute(&mut *conn).await {
        tracing::debug!(error = %e, "mysql: RELEASE_LOCK failed; the lock goes with the connection");
    }
    applied
}

async fn apply_pending(conn: &mut MySqlConnection, database: &str) -> QResult<()> {
    sqlx::raw_sql(CREATE_MIGRATIONS_TABLE).execute(&mut *conn).await?;
    let rows = sqlx::query("SELECT version, checksum FROM hallpass_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await?;
    let mut recorded = Vec::with_capacity(rows.len());
    for row in &rows {
        recorded.push((row.try_get::<i64, _>(0)?, row.try_get::<Vec<u8>, _>(1)?));
    }
    for m in MIGRATIONS {
        let checksum = Sha256::digest(m.sql.as_bytes()).to_vec();
        match recorded.iter().find(|(v, _)| *v == m.version) {
            Some((_, stored)) if *stored == checksum => continue,
            Some(_) => {
                return Err(StoreError::Other(format!(
                    "migration {} ({}) is not the one applied to database {database:?}: an applied \
                     migration was edited",
                    m.version, m.description
                ))
                .into());
            }
            None => {}
        }
        let started = Instant::now();
        sqlx::raw_sql(m.sql).execute(&mut *conn).await?;
        let took = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO hallpass_migrations (version, description, checksum, applied_at, execution_ms) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(m.version)
        .bind(m.description)
        .bind(&checksum)
        .bind(hallpass_core::clock::to_unix_ms(time::OffsetDateTime::now_utc()))
        .bind(took)
        .execute(&mut *conn)
        .await?;
        tracing::info!(
            version = m.version,
            description = m.description,
            took_ms = took,
            database,
            "mysql: migration applied"
        );
    }
    for (version, _) in recorded.iter().filter(|(v, _)| *v > SCHEMA_VERSION) {
        tracing::warn!(
            version,
            known = SCHEMA_VERSION,
            database,
            "mysql: the database has a newer schema than this hallpass"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }

    #[test]
    fn lock_names_fit_the_server_limit() {
        assert_eq!(lock_name("hp"), "hallpass_migrate:hp");
        assert_eq!(lock_name(&"é".repeat(64)).chars().count(), 64);
    }
}
