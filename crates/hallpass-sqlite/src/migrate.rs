//! The schema: SQL migrations embedded in the binary and applied on open.
//!
//! Migration `n` (1-based) is `MIGRATIONS[n - 1]`; the database's `PRAGMA user_version`
//! is the number applied so far. Opening runs, in one `BEGIN IMMEDIATE` transaction: read
//! the version, apply every later migration, set the version. `user_version` lives in the
//! database header, which is written in that same transaction, so a crash leaves either
//! the old schema with the old version or the new schema with the new one.
//!
//! `BEGIN IMMEDIATE` takes the write lock *before* reading the version: when the server
//! and a CLI command open a fresh file at the same moment, one migrates and the other
//! waits (busy timeout), then reads the new version and applies nothing. With a deferred
//! transaction both could read version 0 and both try to create the tables.
//!
//! Migrations are append-only: never edit one that has shipped; add the next file.

use crate::error::{Fail, QResult};
use hallpass_core::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// The migrations, in order. The file name is for logs (and [`MIGRATION_NAMES`]) only.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../migrations/0001_init.sql")),
    ("0002_throttles", include_str!("../migrations/0002_throttles.sql")),
    ("0003_admin", include_str!("../migrations/0003_admin.sql")),
    ("0004_decoy_codes", include_str!("../migrations/0004_decoy_codes.sql")),
    // Comment only: SQLite's change channel needs no table (see the file).
    ("0005_changes", include_str!("../migrations/0005_changes.sql")),
    ("0006_key_last_used", include_str!("../migrations/0006_key_last_used.sql")),
    ("0007_outbox", include_str!("../migrations/0007_outbox.sql")),
    ("0008_oidc", include_str!("../migrations/0008_oidc.sql")),
    ("0009_mfa", include_str!("../migrations/0009_mfa.sql")),
    // Comment only: the longer change messages need nothing here (see the file).
    ("0010_change_stream", include_str!("../migrations/0010_change_stream.sql")),
    // Webhook endpoints, and the index of an endpoint's deliveries in the outbox.
    ("0011_webhooks", include_str!("../migrations/0011_webhooks.sql")),
    ("0012_passkeys", include_str!("../migrations/0012_passkeys.sql")),
];

/// The migrations' names (file names without `.sql`) in version order. Every SQL backend
/// has the same list, so version N means the same change everywhere (compared by a test
/// in hallpass-server).
pub const MIGRATION_NAMES: &[&str] = &{
    let mut names = [""; MIGRATIONS.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = MIGRATIONS[i].0;
        i += 1;
    }
    names
};

/// The schema version this build creates and expects (`PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the schema up to [`SCHEMA_VERSION`]; idempotent. Returns how many migrations ran.
pub(crate) fn run(conn: &mut Connection) -> QResult<u32> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let current = u32::try_from(current)
        .map_err(|_| Fail::Store(StoreError::Other(format!("invalid schema version {current}"))))?;
    if current > SCHEMA_VERSION {
        // A newer hallpass migrated this file; running older code on it could corrupt it.
        return Err(Fail::Store(StoreError::Other(format!(
            "the database has schema version {current}, newer than this hallpass supports ({SCHEMA_VERSION}); \
             upgrade hallpass"
        ))));
    }
    let mut applied = 0;
    for (name, sql) in MIGRATIONS.iter().skip(current as usize) {
        tx.execute_batch(sql)?;
        tracing::info!(migration = name, "sqlite: applied migration");
        applied += 1;
    }
    if applied > 0 {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_versions() {
        for (i, name) in MIGRATION_NAMES.iter().enumerate() {
            assert!(name.starts_with(&format!("{:04}_", i + 1)), "{name}");
        }
        assert_eq!(MIGRATION_NAMES.len(), SCHEMA_VERSION as usize);
    }

    /// A database left at version 4 by the builds before 0005 existed: the comment-only
    /// migration and the later ones run, the version becomes the current one, and the
    /// data stays.
    #[test]
    fn a_database_at_version_4_takes_the_empty_fifth() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.pragma_update(None, "foreign_keys", "ON").expect("foreign keys");
        for (_, sql) in &MIGRATIONS[..4] {
            conn.execute_batch(sql).expect("migration");
        }
        conn.pragma_update(None, "user_version", 4).expect("version");
        conn.execute_batch(
            "INSERT INTO users (scope, id, group_name, active, confirmed, created_at, updated_at) \
             VALUES ('a', 'u1', 'default', 1, 1, 0, 0);",
        )
        .expect("rows");
        assert_eq!(run(&mut conn).expect("migrate"), SCHEMA_VERSION - 4);
        assert_eq!(count(&conn, "PRAGMA user_version"), i64::from(SCHEMA_VERSION));
        assert_eq!(count(&conn, "SELECT count(*) FROM users"), 1);
        assert_eq!(run(&mut conn).expect("again"), 0);
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).expect(sql)
    }

    /// 0004 rebuilds `codes` on a database at version 3: the rows stay, `user_id` takes
    /// NULL, the foreign key still cascades, and the three indexes are back.
    #[test]
    fn decoy_codes_migration_keeps_codes_and_indexes() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.pragma_update(None, "foreign_keys", "ON").expect("foreign keys");
        for (_, sql) in &MIGRATIONS[..3] {
            conn.execute_batch(sql).expect("migration");
        }
        conn.pragma_update(None, "user_version", 3).expect("version");
        conn.execute_batch(
            "INSERT INTO users (scope, id, group_name, active, confirmed, created_at, updated_at) \
             VALUES ('a', 'u1', 'default', 1, 1, 0, 0);
             INSERT INTO codes VALUES (zeroblob(32), 'a', 'u1', 'reset', 0, 10);",
        )
        .expect("rows");

        assert_eq!(run(&mut conn).expect("migrate"), SCHEMA_VERSION - 3, "0004 and the later ones");
        assert_eq!(count(&conn, "PRAGMA user_version"), i64::from(SCHEMA_VERSION));
        assert_eq!(count(&conn, "SELECT count(*) FROM codes WHERE user_id = 'u1'"), 1);
        conn.execute("INSERT INTO codes VALUES (randomblob(32), 'a', NULL, 'reset', 0, 10)", [])
            .expect("a code with no user");
        assert!(
            conn.execute("INSERT INTO codes VALUES (randomblob(32), 'a', 'nobody', 'reset', 0, 10)", [])
                .is_err(),
            "the foreign key still holds"
        );
        let indexes = count(
            &conn,
            "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'codes' \
             AND name IN ('codes_code_hash', 'codes_user', 'codes_expires_at')",
        );
        assert_eq!(indexes, 3);
        assert_eq!(count(&conn, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
        conn.execute("DELETE FROM users WHERE id = 'u1'", []).expect("delete user");
        assert_eq!(
            count(&conn, "SELECT count(*) FROM codes"),
            1,
            "the user's code cascaded; the decoy stays"
        );
    }
}
