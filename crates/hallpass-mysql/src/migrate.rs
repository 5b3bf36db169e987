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
//! 2. Under the lock, rewrite a ledger of the old numbering, once (until commit 46f87f7
//!    this backend numbered the change log 4 and the decoy codes 5; now version N means
//!    the same on every backend, see [`MIGRATION_NAMES`] and `renumber_old_ledger`).
//! 3. Read `hallpass_migrations` (version, checksum) and apply, in order, every embedded
//!    migration not recorded there, then record it. The second of two racing processes
//!    finds everything recorded and does nothing.
//! 4. A recorded migration whose file changed since (another checksum) is refused: the
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
use sqlx::mysql::MySqlConnection;
use sqlx::{Connection, Row};
use std::time::Instant;

/// The schema version this code writes: the highest embedded migration.
pub const SCHEMA_VERSION: i64 = 12;

/// One embedded migration.
struct Migration {
    version: i64,
    /// The file name without `.sql`, the same on every backend.
    name: &'static str,
    /// What the ledger records beside the version.
    description: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Add new ones at the end; never edit an applied one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        description: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_throttles",
        description: "throttles",
        sql: include_str!("../migrations/0002_throttles.sql"),
    },
    Migration {
        version: 3,
        name: "0003_admin",
        description: "admin",
        sql: include_str!("../migrations/0003_admin.sql"),
    },
    Migration {
        version: 4,
        name: "0004_decoy_codes",
        description: "decoy codes",
        sql: include_str!("../migrations/0004_decoy_codes.sql"),
    },
    Migration {
        version: 5,
        name: "0005_changes",
        description: "changes",
        sql: include_str!("../migrations/0005_changes.sql"),
    },
    Migration {
        version: 6,
        name: "0006_key_last_used",
        description: "key last used",
        sql: include_str!("../migrations/0006_key_last_used.sql"),
    },
    Migration {
        version: 7,
        name: "0007_outbox",
        description: "outbox",
        sql: include_str!("../migrations/0007_outbox.sql"),
    },
    Migration {
        version: 8,
        name: "0008_oidc",
        description: "oidc",
        sql: include_str!("../migrations/0008_oidc.sql"),
    },
    Migration {
        version: 9,
        name: "0009_mfa",
        description: "mfa",
        sql: include_str!("../migrations/0009_mfa.sql"),
    },
    Migration {
        version: 10,
        name: "0010_change_stream",
        description: "change stream",
        sql: include_str!("../migrations/0010_change_stream.sql"),
    },
    Migration {
        version: 11,
        name: "0011_webhooks",
        description: "webhooks",
        sql: include_str!("../migrations/0011_webhooks.sql"),
    },
    Migration {
        version: 12,
        name: "0012_passkeys",
        description: "passkeys",
        sql: include_str!("../migrations/0012_passkeys.sql"),
    },
];

/// The migrations' names (file names without `.sql`) in version order. Every SQL backend
/// has the same list, so version N means the same change everywhere (compared by a test
/// in hallpass-server).
pub const MIGRATION_NAMES: &[&str] = &{
    let mut names = [""; MIGRATIONS.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = MIGRATIONS[i].name;
        i += 1;
    }
    names
};

/// SHA-256 of the two migrations as numbered before the versions were aligned across the
/// backends, when this backend alone had the change log as version 4 and the decoy codes
/// as version 5: the files `0004_changes.sql` and `0005_decoy_codes.sql` as of commit
/// 46f87f7, computed with
/// `git show 46f87f7:crates/hallpass-mysql/migrations/0004_changes.sql | sha256sum`
/// (likewise for the other). They differ from today's `0005_changes.sql` and
/// `0004_decoy_codes.sql` only in the version named on their first line (a unit test
/// below checks that).
const OLD_4_CHANGES: &str = "961d08a5db2dd0bc5f01297dddecd8ee93b0c017676adcfebbb43e15698d193a";
const OLD_5_DECOY_CODES: &str = "5c860a2c38050252f7699a3e89f47fcad9a104e432a272fb6fdd811045e26b9a";

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

fn checksum(sql: &str) -> Vec<u8> {
    Sha256::digest(sql.as_bytes()).to_vec()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The embedded migration of `version`.
fn migration(version: i64) -> &'static Migration {
    &MIGRATIONS[usize::try_from(version - 1).expect("a known version")]
}

/// Rewrites, once, the ledger of a database migrated before the versions were aligned
/// across the backends: `(4, "changes", old sum)` and, if present,
/// `(5, "decoy codes", old sum)` become `(5, "changes", new sum)` and
/// `(4, "decoy codes", new sum)`. Rows are recognised by their old checksums only, so a
/// ledger of the new layout (or one not yet at version 4) is left alone, and a second run
/// finds nothing to do. The swap goes through a temporary version (the primary key
/// would refuse two rows of version 4) inside one transaction: a crash leaves the old
/// ledger or the new one, never a mix. A database that had only the old version 4 gets
/// the decoy codes applied as the new version 4 right after, by [`apply_pending`] (each
/// migration of this dialect can run on a schema that already has parts of it).
///
/// Runs under the migration lock, before any checksum is compared. Once rewritten, the
/// database is refused by builds from before the renumbering (their version 4 is another
/// file): upgrade every process, do not roll back.
async fn renumber_old_ledger(conn: &mut MySqlConnection, database: &str) -> QResult<()> {
    let rows = sqlx::query("SELECT version, checksum FROM hallpass_migrations WHERE version IN (4, 5)")
        .fetch_all(&mut *conn)
        .await?;
    let mut old_4 = false;
    let mut at_5 = None;
    for row in &rows {
        let sum = to_hex(&row.try_get::<Vec<u8>, _>(1)?);
        match row.try_get::<i64, _>(0)? {
            4 => old_4 = sum == OLD_4_CHANGES,
            _ => at_5 = Some(sum),
        }
    }
    if !old_4 {
        return Ok(());
    }
    let old_5 = match at_5.as_deref() {
        None => false,
        Some(OLD_5_DECOY_CODES) => true,
        Some(_) => {
            return Err(StoreError::Other(format!(
                "database {database:?} records the old change log as migration 4 but an unknown \
                 migration 5; its ledger (hallpass_migrations) needs a look by hand"
            ))
            .into());
        }
    };
    let (changes, decoys) = (migration(5), migration(4));
    let mut tx = conn.begin().await?;
    sqlx::query("UPDATE hallpass_migrations SET version = -5 WHERE version = 4").execute(&mut *tx).await?;
    if old_5 {
        sqlx::query(
            "UPDATE hallpass_migrations SET version = 4, description = ?, checksum = ? WHERE version = 5",
        )
        .bind(decoys.description)
        .bind(checksum(decoys.sql))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE hallpass_migrations SET version = 5, description = ?, checksum = ? WHERE version = -5",
    )
    .bind(changes.description)
    .bind(checksum(changes.sql))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(
        database,
        decoy_codes_recorded = old_5,
        "mysql: migration ledger renumbered to the shared layout"
    );
    Ok(())
}

async fn apply_pending(conn: &mut MySqlConnection, database: &str) -> QResult<()> {
    sqlx::raw_sql(CREATE_MIGRATIONS_TABLE).execute(&mut *conn).await?;
    renumber_old_ledger(conn, database).await?;
    let rows = sqlx::query("SELECT version, checksum FROM hallpass_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await?;
    let mut recorded = Vec::with_capacity(rows.len());
    for row in &rows {
        recorded.push((row.try_get::<i64, _>(0)?, row.try_get::<Vec<u8>, _>(1)?));
    }
    for m in MIGRATIONS {
        let checksum = checksum(m.sql);
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
    fn names_follow_the_versions() {
        for m in MIGRATIONS {
            assert!(m.name.starts_with(&format!("{:04}_", m.version)), "{}", m.name);
            assert_eq!(m.name[5..].replace('_', " "), m.description);
        }
        assert_eq!(MIGRATION_NAMES, MIGRATIONS.iter().map(|m| m.name).collect::<Vec<_>>());
    }

    /// The old checksums are those of today's files with the old version on their first
    /// line: the renumbering changed nothing else, and the constants are right.
    #[test]
    fn old_checksums_are_the_renumbered_files() {
        let old = |m: &Migration, from: &str, to: &str| {
            assert!(m.sql.starts_with(from), "{}", m.name);
            to_hex(&checksum(&m.sql.replacen(from, to, 1)))
        };
        let changes = old(migration(5), "-- hallpass schema, version 5:", "-- hallpass schema, version 4:");
        assert_eq!(changes, OLD_4_CHANGES);
        let decoys = old(migration(4), "-- hallpass schema, version 4:", "-- hallpass schema, version 5:");
        assert_eq!(decoys, OLD_5_DECOY_CODES);
    }

    #[test]
    fn lock_names_fit_the_server_limit() {
        assert_eq!(lock_name("hp"), "hallpass_migrate:hp");
        assert_eq!(lock_name(&"é".repeat(64)).chars().count(), 64);
    }
}
