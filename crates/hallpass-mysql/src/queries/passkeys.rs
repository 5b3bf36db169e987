//! Passkeys (`hallpass_core::passkey`): one row per credential; adding or removing one ends
//! the user's other sessions in the same transaction.

use super::sessions::end_sessions;
use crate::codec::*;
use crate::error::QResult;
use hallpass_core::{PasskeyRecord, PasskeyUse, Scope};
use sqlx::Row;
use sqlx::mysql::{MySqlConnection, MySqlRow};
use uuid::Uuid;

pub(crate) const COLUMNS: &str = "id, scope, user_id, credential_id, name, credential, counter, backup_eligible, \
                       backup_state, created_at, last_used_at";

pub(crate) fn passkey(r: &MySqlRow) -> QResult<PasskeyRecord> {
    Ok(PasskeyRecord {
        id: get_uuid(r, 0)?,
        scope: get_parsed(r, 1, Scope::from_stored)?,
        user_id: get_uuid(r, 2)?,
        credential_id: r.try_get(3)?,
        name: r.try_get(4)?,
        credential: r.try_get(5)?,
        counter: u32::try_from(r.try_get::<i64, _>(6)?).unwrap_or(u32::MAX),
        backup_eligible: r.try_get::<i8, _>(7)? != 0,
        backup_state: r.try_get::<i8, _>(8)? != 0,
        created_at: get_time(r, 9)?,
        last_used_at: get_opt_time(r, 10)?,
    })
}

pub(crate) async fn insert_passkey(
    c: &mut MySqlConnection,
    p: &PasskeyRecord,
    keep: Option<Uuid>,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    // The user row's lock keeps a concurrent deletion of the user out.
    let done = sqlx::query(
        "INSERT INTO passkeys (id, scope, user_id, credential_id, name, credential, counter, \
         backup_eligible, backup_state, created_at, last_used_at) \
         SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL FROM users u WHERE u.scope = ? AND u.id = ? \
         AND NOT EXISTS (SELECT 1 FROM passkeys p WHERE p.scope = ? AND p.credential_id = ?)",
    )
    .bind(id(p.id))
    .bind(p.scope.as_str())
    .bind(id(p.user_id))
    .bind(&p.credential_id)
    .bind(&p.name)
    .bind(&p.credential)
    .bind(i64::from(p.counter))
    .bind(i8::from(p.backup_eligible))
    .bind(i8::from(p.backup_state))
    .bind(ms(p.created_at))
    .bind(p.scope.as_str())
    .bind(id(p.user_id))
    .bind(p.scope.as_str())
    .bind(&p.credential_id)
    .execute(&mut *c)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    end_sessions(c, &p.scope, p.user_id, keep).await?;
    crate::queries::outbox::insert_messages(c, outbox).await?;
    Ok(true)
}

pub(crate) async fn list_passkeys(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
) -> QResult<Vec<PasskeyRecord>> {
    let sql =
        format!("SELECT {COLUMNS} FROM passkeys WHERE scope = ? AND user_id = ? ORDER BY created_at, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.as_str())
        .bind(id(user_id))
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(passkey).collect()
}

pub(crate) async fn find_passkey(
    c: &mut MySqlConnection,
    scope: &Scope,
    credential_id: &[u8],
) -> QResult<Option<PasskeyRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE scope = ? AND credential_id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.as_str())
        .bind(credential_id)
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(passkey).transpose()
}

pub(crate) async fn use_passkey(
    c: &mut MySqlConnection,
    scope: &Scope,
    pk: Uuid,
    u: &PasskeyUse,
) -> QResult<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM passkeys WHERE scope = ? AND id = ? FOR UPDATE")
            .bind(scope.as_str())
            .bind(id(pk))
            .fetch_optional(&mut *c)
            .await?;
    if found.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE passkeys SET credential = ?, counter = ?, backup_eligible = ?, backup_state = ?, \
         last_used_at = ? WHERE scope = ? AND id = ?",
    )
    .bind(&u.credential)
    .bind(i64::from(u.counter))
    .bind(i8::from(u.backup_eligible))
    .bind(i8::from(u.backup_state))
    .bind(ms(u.at))
    .bind(scope.as_str())
    .bind(id(pk))
    .execute(&mut *c)
    .await?;
    Ok(true)
}

pub(crate) async fn rename_passkey(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    pk: Uuid,
    name: &str,
) -> QResult<bool> {
    // An unchanged name changes no row: existence is read, not counted.
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM passkeys WHERE scope = ? AND user_id = ? AND id = ? FOR UPDATE")
            .bind(scope.as_str())
            .bind(id(user_id))
            .bind(id(pk))
            .fetch_optional(&mut *c)
            .await?;
    if found.is_none() {
        return Ok(false);
    }
    sqlx::query("UPDATE passkeys SET name = ? WHERE scope = ? AND user_id = ? AND id = ?")
        .bind(name)
        .bind(scope.as_str())
        .bind(id(user_id))
        .bind(id(pk))
        .execute(&mut *c)
        .await?;
    Ok(true)
}

pub(crate) async fn delete_passkey(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    pk: Uuid,
    keep: Option<Uuid>,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let done = sqlx::query("DELETE FROM passkeys WHERE scope = ? AND user_id = ? AND id = ?")
        .bind(scope.as_str())
        .bind(id(user_id))
        .bind(id(pk))
        .execute(&mut *c)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    // The last factor gone: the recovery codes that backed it up go too.
    sqlx::query(
        "DELETE FROM mfa_recovery_codes WHERE scope = ? AND user_id = ? \
         AND NOT EXISTS (SELECT 1 FROM passkeys WHERE scope = ? AND user_id = ?) \
         AND NOT EXISTS (SELECT 1 FROM mfa_totp WHERE scope = ? AND user_id = ? AND confirmed = 1)",
    )
    .bind(scope.as_str())
    .bind(id(user_id))
    .bind(scope.as_str())
    .bind(id(user_id))
    .bind(scope.as_str())
    .bind(id(user_id))
    .execute(&mut *c)
    .await?;
    end_sessions(c, scope, user_id, keep).await?;
    crate::queries::outbox::insert_messages(c, outbox).await?;
    Ok(true)
}
