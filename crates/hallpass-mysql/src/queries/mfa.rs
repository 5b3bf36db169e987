//! Second factors (`hallpass_core::mfa`): the TOTP row with its compare-and-set of the
//! last accepted step, and recovery codes used by deleting their row. Under READ
//! COMMITTED InnoDB's `UPDATE`/`DELETE` lock the row and judge the condition on its latest
//! committed version, so of racing statements exactly one changes it.

use super::sessions::end_sessions;
use crate::codec::*;
use crate::error::QResult;
use hallpass_core::{FactorChange, MfaState, Scope, TokenHash, TotpRecord};
use sqlx::Row;
use sqlx::mysql::MySqlConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) async fn mfa_state(c: &mut MySqlConnection, scope: &Scope, user_id: Uuid) -> QResult<MfaState> {
    let row = sqlx::query(
        "SELECT secret, confirmed, last_step, created_at FROM mfa_totp WHERE scope = ? AND user_id = ?",
    )
    .bind(scope.as_str())
    .bind(id(user_id))
    .fetch_optional(&mut *c)
    .await?;
    let totp = match row {
        Some(row) => Some(TotpRecord {
            secret: row.try_get(0)?,
            confirmed: row.try_get::<i8, _>(1)? != 0,
            last_step: row.try_get(2)?,
            created_at: get_time(&row, 3)?,
        }),
        None => None,
    };
    let codes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM mfa_recovery_codes WHERE scope = ? AND user_id = ?")
            .bind(scope.as_str())
            .bind(id(user_id))
            .fetch_one(&mut *c)
            .await?;
    let passkeys: i64 = sqlx::query_scalar("SELECT count(*) FROM passkeys WHERE scope = ? AND user_id = ?")
        .bind(scope.as_str())
        .bind(id(user_id))
        .fetch_one(&mut *c)
        .await?;
    Ok(MfaState {
        totp,
        recovery_codes: u32::try_from(codes).unwrap_or(u32::MAX),
        passkeys: u32::try_from(passkeys).unwrap_or(u32::MAX),
    })
}

pub(crate) async fn enrol_totp(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    secret: &str,
    at: OffsetDateTime,
) -> QResult<bool> {
    // Run in a transaction: the row lock keeps a confirmation from slipping in between.
    // (The upsert alone cannot tell "kept a confirmed one" from "inserted": with the
    // found-rows flag both count one row.)
    let confirmed: Option<i8> =
        sqlx::query_scalar("SELECT confirmed FROM mfa_totp WHERE scope = ? AND user_id = ? FOR UPDATE")
            .bind(scope.as_str())
            .bind(id(user_id))
            .fetch_optional(&mut *c)
            .await?;
    if confirmed == Some(1) {
        return Ok(false);
    }
    let done = sqlx::query(
        "INSERT INTO mfa_totp (scope, user_id, secret, confirmed, last_step, created_at) \
         SELECT u.scope, u.id, ?, 0, NULL, ? FROM users u WHERE u.scope = ? AND u.id = ? \
         ON DUPLICATE KEY UPDATE secret = VALUES(secret), last_step = NULL, created_at = VALUES(created_at)",
    )
    .bind(secret)
    .bind(ms(at))
    .bind(scope.as_str())
    .bind(id(user_id))
    .execute(&mut *c)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn accept_totp_step(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    step: i64,
    confirm: Option<&FactorChange>,
) -> QResult<bool> {
    let done = sqlx::query(
        "UPDATE mfa_totp SET last_step = ?, confirmed = 1 WHERE scope = ? AND user_id = ? \
         AND confirmed = ? AND (last_step IS NULL OR last_step < ?)",
    )
    .bind(step)
    .bind(scope.as_str())
    .bind(id(user_id))
    .bind(i8::from(confirm.is_none()))
    .bind(step)
    .execute(&mut *c)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    if let Some(change) = confirm {
        replace_codes(c, scope, user_id, &change.recovery_codes, change.at).await?;
        end_sessions(c, scope, user_id, change.keep_session).await?;
        crate::queries::outbox::insert_messages(c, &change.outbox).await?;
    }
    Ok(true)
}

async fn replace_codes(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    codes: &[TokenHash],
    at: OffsetDateTime,
) -> QResult<()> {
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE scope = ? AND user_id = ?")
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *c)
        .await?;
    for code in codes {
        sqlx::query(
            "INSERT INTO mfa_recovery_codes (scope, user_id, code_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(scope.as_str())
        .bind(id(user_id))
        .bind(hash(code))
        .bind(ms(at))
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

pub(crate) async fn replace_recovery_codes(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    codes: &[TokenHash],
    at: OffsetDateTime,
) -> QResult<bool> {
    let confirmed: Option<i8> =
        sqlx::query_scalar("SELECT confirmed FROM mfa_totp WHERE scope = ? AND user_id = ? FOR UPDATE")
            .bind(scope.as_str())
            .bind(id(user_id))
            .fetch_optional(&mut *c)
            .await?;
    if confirmed != Some(1) {
        return Ok(false);
    }
    replace_codes(c, scope, user_id, codes, at).await?;
    Ok(true)
}

pub(crate) async fn use_recovery_code(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    code: &TokenHash,
) -> QResult<Option<u32>> {
    let done =
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE scope = ? AND user_id = ? AND code_hash = ?")
            .bind(scope.as_str())
            .bind(id(user_id))
            .bind(hash(code))
            .execute(&mut *c)
            .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM mfa_recovery_codes WHERE scope = ? AND user_id = ?")
            .bind(scope.as_str())
            .bind(id(user_id))
            .fetch_one(&mut *c)
            .await?;
    Ok(Some(u32::try_from(left).unwrap_or(u32::MAX)))
}

pub(crate) async fn remove_mfa(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    keep: Option<Uuid>,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let totp = sqlx::query("DELETE FROM mfa_totp WHERE scope = ? AND user_id = ?")
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *c)
        .await?
        .rows_affected();
    let codes = sqlx::query("DELETE FROM mfa_recovery_codes WHERE scope = ? AND user_id = ?")
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *c)
        .await?
        .rows_affected();
    let passkeys = sqlx::query("DELETE FROM passkeys WHERE scope = ? AND user_id = ?")
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *c)
        .await?
        .rows_affected();
    let removed = totp + codes + passkeys > 0;
    if removed {
        end_sessions(c, scope, user_id, keep).await?;
        crate::queries::outbox::insert_messages(c, outbox).await?;
    }
    Ok(removed)
}

/// Removes the TOTP alone; the recovery codes go too when no passkey is left for them to
/// back up (MariaDB refuses a subquery on the table a `DELETE` deletes from, not on
/// another one).
pub(crate) async fn remove_totp(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    keep: Option<Uuid>,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let totp = sqlx::query("DELETE FROM mfa_totp WHERE scope = ? AND user_id = ?")
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *c)
        .await?
        .rows_affected();
    if totp == 0 {
        return Ok(false);
    }
    sqlx::query(
        "DELETE FROM mfa_recovery_codes WHERE scope = ? AND user_id = ? \
         AND NOT EXISTS (SELECT 1 FROM passkeys WHERE scope = ? AND user_id = ?)",
    )
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
