//! Passkeys (`hallpass_core::passkey`): one row per credential; adding or removing one ends
//! the user's other sessions in the same transaction.

use super::sessions::end_sessions;
use crate::codec::*;
use crate::error::QResult;
use hallpass_core::{PasskeyRecord, PasskeyUse, Scope};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use uuid::Uuid;

pub(crate) const COLUMNS: &str = "id, scope, user_id, credential_id, name, credential, counter, backup_eligible, \
                       backup_state, created_at, last_used_at";

pub(crate) fn passkey(r: &PgRow) -> QResult<PasskeyRecord> {
    Ok(PasskeyRecord {
        id: id_at(r, 0)?,
        scope: scope_at(r, 1)?,
        user_id: id_at(r, 2)?,
        credential_id: r.try_get(3)?,
        name: r.try_get(4)?,
        credential: r.try_get(5)?,
        counter: u32::try_from(r.try_get::<i64, _>(6)?).unwrap_or(u32::MAX),
        backup_eligible: r.try_get(7)?,
        backup_state: r.try_get(8)?,
        created_at: time_at(r, 9)?,
        last_used_at: opt_time_at(r, 10)?,
    })
}

pub(crate) async fn insert_passkey(
    pool: &PgPool,
    p: &PasskeyRecord,
    keep: Option<Uuid>,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "INSERT INTO passkeys (id, scope, user_id, credential_id, name, credential, counter, \
         backup_eligible, backup_state, created_at, last_used_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL \
         WHERE EXISTS (SELECT 1 FROM users WHERE scope = $2 AND id = $3) \
         ON CONFLICT (scope, credential_id) DO NOTHING",
    )
    .bind(id(p.id))
    .bind(p.scope.as_str())
    .bind(id(p.user_id))
    .bind(&p.credential_id)
    .bind(&p.name)
    .bind(&p.credential)
    .bind(i64::from(p.counter))
    .bind(p.backup_eligible)
    .bind(p.backup_state)
    .bind(ms(p.created_at))
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    end_sessions(&mut tx, &p.scope, p.user_id, keep).await?;
    crate::queries::outbox::insert_messages(&mut tx, outbox).await?;
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn list_passkeys(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
) -> QResult<Vec<PasskeyRecord>> {
    let sql =
        format!("SELECT {COLUMNS} FROM passkeys WHERE scope = $1 AND user_id = $2 ORDER BY created_at, id");
    let rows =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(scope.as_str()).bind(id(user_id)).fetch_all(pool).await?;
    rows.iter().map(passkey).collect()
}

pub(crate) async fn find_passkey(
    pool: &PgPool,
    scope: &Scope,
    credential_id: &[u8],
) -> QResult<Option<PasskeyRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE scope = $1 AND credential_id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.as_str())
        .bind(credential_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(passkey).transpose()
}

pub(crate) async fn use_passkey(pool: &PgPool, scope: &Scope, pk: Uuid, u: &PasskeyUse) -> QResult<bool> {
    let done = sqlx::query(
        "UPDATE passkeys SET credential = $3, counter = $4, backup_eligible = $5, backup_state = $6, \
         last_used_at = $7 WHERE scope = $1 AND id = $2",
    )
    .bind(scope.as_str())
    .bind(id(pk))
    .bind(&u.credential)
    .bind(i64::from(u.counter))
    .bind(u.backup_eligible)
    .bind(u.backup_state)
    .bind(ms(u.at))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn rename_passkey(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    pk: Uuid,
    name: &str,
) -> QResult<bool> {
    let done = sqlx::query("UPDATE passkeys SET name = $4 WHERE scope = $1 AND user_id = $2 AND id = $3")
        .bind(scope.as_str())
        .bind(id(user_id))
        .bind(id(pk))
        .bind(name)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn delete_passkey(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    pk: Uuid,
    keep: Option<Uuid>,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query("DELETE FROM passkeys WHERE scope = $1 AND user_id = $2 AND id = $3")
        .bind(scope.as_str())
        .bind(id(user_id))
        .bind(id(pk))
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    // The last factor gone: the recovery codes that backed it up go too.
    sqlx::query(
        "DELETE FROM mfa_recovery_codes WHERE scope = $1 AND user_id = $2 \
         AND NOT EXISTS (SELECT 1 FROM passkeys WHERE scope = $1 AND user_id = $2) \
         AND NOT EXISTS (SELECT 1 FROM mfa_totp WHERE scope = $1 AND user_id = $2 AND confirmed)",
    )
    .bind(scope.as_str())
    .bind(id(user_id))
    .execute(&mut *tx)
    .await?;
    end_sessions(&mut tx, scope, user_id, keep).await?;
    crate::queries::outbox::insert_messages(&mut tx, outbox).await?;
    tx.commit().await?;
    Ok(true)
}
