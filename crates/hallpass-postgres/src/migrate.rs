//! The schema: per-dialect SQL migrations embedded in the binary (`migrations/*.sql`,
//! `include_str!`, so a deployed binary needs no files beside it), and the small migrator
//! that applies them. (sqlx's own migrator sits behind its `migrate` feature, which the
//! workspace leaves off; see `crate::codec` for why.)
//!
//! One run is one transaction:
//!
//! 1. Refuse a database whose encoding is not UTF8 (usernames, emails and JSON are
//!    Unicode; a SQL_ASCII or LATIN1 database would fail on them much later).
//! 2. `pg_advisory_xact_lock(MIGRATION_LOCK)` — a transaction-level advisory lock, taken
//!    *before* any schema is read or created. When two processes (two servers starting,
//!    a server and `hallpass migrate`) migrate one database at once, the second waits
//!    here, then finds everything applied and does nothing. The lock ends with the
//!    transaction (commit, rollback, or a dropped connection), so a failed run can never
//!    leave it held. Advisory locks are per database, so other databases on the server
//!    are not affected.
//! 3. `CREATE TABLE IF NOT EXISTS hallpass_migrations`, then read what was applied:
//!    refuse a database that has a migration this build does not know (a newer hallpass
//!    migrated it) or whose checksum differs (a shipped file was edited).
//! 4. Apply the missing migrations in order and record each (version, name, SHA-256).
//!
//! DDL is transactional in PostgreSQL, so a crash leaves either the old schema with the
//! old records or the new schema with the new ones. Migrations are append-only: never
//! edit one that has shipped; add the next file and list it in [`MIGRATIONS`].

use crate::error::{QResult, corrupt};
use hallpass_core::StoreError;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};

/// One migration: its version (1-based, consecutive), its file name, its SQL.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// The migrations, in order.
const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "0001_init", sql: include_str!("../migrations/0001_init.sql") },
    Migration { version: 2, name: "0002_throttles", sql: include_str!("../migrations/0002_throttles.sql") },
    Migration { version: 3, name: "0003_admin", sql: include_str!("../migrations/0003_admin.sql") },
    Migration {
        version: 4,
        name: "0004_decoy_codes",
        sql: include_str!("../migrations/0004_decoy_codes.sql"),
    },
    // Comment only: PostgreSQL's change channel is LISTEN/NOTIFY, no table (see the file).
    Migration { version: 5, name: "0005_changes", sql: include_str!("../migrations/0005_changes.sql") },
    Migration {
        version: 6,
        name: "0006_key_last_used",
        sql: include_str!("../migrations/0006_key_last_used.sql"),
    },
    Migration { version: 7, name: "0007_outbox", sql: include_str!("../migrations/0007_outbox.sql") },
    Migration { version: 8, name: "0008_oidc", sql: include_str!("../migrations/0008_oidc.sql") },
    Migration { version: 9, name: "0009_mfa", sql: include_str!("../migrations/0009_mfa.sql") },
    // Comment only: a NOTIFY carries the longer change messages as they are.
    Migration {
        version: 10,
        name: "0010_change_stream",
        sql: include_str!("../migrations/0010_change_stream.sql"),
    },
    Migration { version: 11, name: "0011_webhooks", sql: include_str!("../migrations/0011_webhooks.sql") },
    Migration { version: 12, name: "0012_passkeys", sql: include_str!("../migrations/0012_passkeys.sql") },
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

/// The schema version this build creates and expects (the last migration's version).
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The advisory lock key of migrations: "hallpass" in ASCII, as a positive 64-bit integer.
const MIGRATION_LOCK: i64 = 0x6861_6c6c_7061_7373;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS hallpass_migrations (\
     version bigint NOT NULL PRIMARY KEY, \
     name text NOT NULL, \
     checksum bytea NOT NULL, \
     applied_at timestamptz NOT NULL DEFAULT now())";

fn checksum(sql: &str) -> Vec<u8> {
    Sha256::digest(sql.as_bytes()).to_vec()
}

/// Brings the schema up to [`SCHEMA_VERSION`]; idempotent, and safe to run from several
/// processes at once (see the module docs). Returns how many migrations it applied.
pub(crate) async fn run(pool: &PgPool) -> QResult<usize> {
    let mut tx = pool.begin().await?;
    let encoding: String =
        sqlx::query_scalar("SELECT current_setting('server_encoding')").fetch_one(&mut *tx).await?;
    if encoding != "UTF8" {
        return Err(StoreError::Other(format!(
            "the database's encoding is {encoding}; hallpass needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8')"
        ))
        .into());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(MIGRATION_LOCK).execute(&mut *tx).await?;
    sqlx::raw_sql(CREATE_TABLE).execute(&mut *tx).await?;
    let applied = sqlx::query("SELECT version, checksum FROM hallpass_migrations ORDER BY version")
        .fetch_all(&mut *tx)
        .await?;
    let mut current = 0;
    for row in &applied {
        let version: i64 = row.try_get(0)?;
        let sum: Vec<u8> = row.try_get(1)?;
        let Some(known) = MIGRATIONS.iter().find(|m| m.version == version) else {
            return Err(StoreError::Other(format!(
                "the database has schema migration {version}, newer than this hallpass knows \
                 (up to {SCHEMA_VERSION}); upgrade hallpass"
            ))
            .into());
        };
        if sum != checksum(known.sql) {
            return Err(corrupt(
                "schema",
                format!("migration {} differs from the one this build ships", known.name),
            ));
        }
        current = current.max(version);
    }
    let mut count = 0;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        // The simple-query protocol: a migration file holds many statements.
        sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO hallpass_migrations (version, name, checksum) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(checksum(m.sql))
            .execute(&mut *tx)
            .await?;
        tracing::info!(migration = m.name, "postgres: applied migration");
        count += 1;
    }
    tx.commit().await?;
    tracing::debug!(schema_version = SCHEMA_VERSION, applied = count, "postgres: schema up to date");
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_consecutively() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)), "{}", m.name);
        }
        const { assert!(MIGRATION_LOCK > 0) };
    }
}
