//! Second factors (`hallpass_core::mfa`): the TOTP row with its compare-and-set of the
//! last accepted step, and recovery codes used by deleting their row. Under READ
//! COMMITTED a racing `UPDATE`/`DELETE` of the same row waits for the first and re-checks
//! its condition against the committed row, so exactly one of them changes it.

use super::sessions::end_sessions;
use crate::codec::*;
use crate::error::QResult;
use hallpass_core::{FactorChange, MfaState, OutboxMessage, Scope, TokenHash, TotpRecord};
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) async fn mfa_state(pool: &PgPool, scope: &Scope, user_id: Uuid) -> QResult<MfaState> {
    let row = sqlx::query(
        "SELECT secret, confirmed, last_step, created_at, \
         (SELECT count(*) FROM mfa_recovery_codes r WHERE r.scope = $1 AND r.user_id = $2), \
         (SELECT count(*) FROM passkeys p WHERE p.scope = $1 AND p.user_id = $2) \
         FROM (SELECT 1) one LEFT JOIN mfa_totp t ON t.scope = $1 AND t.user_id = $2",
    )
    .bind(scope.as_str())
    .bind(id(user_id))
    .fetch_one(pool)
    .await?;
    let secret: Option<String> = row.try_get(0)?;
    let totp = match secret {
        Some(secret) => Some(TotpRecord {
            secret,
            confirmed: row.try_get(1)?,
            last_step: row.try_get(2)?,
            created_at: time_at(&row, 3)?,
        }),
        None => None,
    };
    let codes: i64 = row.try_get(4)?;
    let passkeys: i64 = row.try_get(5)?;
    Ok(MfaState {
        totp,
        recovery_codes: u32::try_from(codes).unwrap_or(u32::MAX),
        passkeys: u32::try_from(passkeys).unwrap_or(u32::MAX),
    })
}

pub(crate) async fn enrol_totp(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    secret: &str,
    at: OffsetDateTime,
) -> QResult<bool> {
    let done = sqlx::query(
        "INSERT INTO mfa_totp (scope, user_id, secret, confirmed, last_step, created_at) \
         SELECT $1, $2, $3, false, NULL, $4 WHERE EXISTS (SELECT 1 FROM users WHERE scope = $1 AND id = $2) \
         ON CONFLICT (scope, user_id) DO UPDATE SET secret = excluded.secret, last_step = NULL, \
         created_at = excluded.created_at WHERE mfa_totp.confirmed = false",
    )
    .bind(scope.as_str())
    .bind(id(user_id))
    .bind(secret)
    .bind(ms(at))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn accept_totp_step(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    step: i64,
    confirm: Option<&FactorChange>,
) -> QResult<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE mfa_totp SET last_step = $3, confirmed = true WHERE scope = $1 AND user_id = $2 \
         AND confirmed = $4 AND (last_step IS NULL OR last_step < $3)",
    )
    .bind(scope.as_str())
    .bind(id(user_id))
    .bind(step)
    .bind(confirm.is_none())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    if let Some(change) = confirm {
        replace_codes(&mut tx, scope, user_id, &change.recovery_codes, change.at).await?;
        end_sessions(&mut tx, scope, user_id, change.keep_session).await?;
        crate::queries::outbox::insert_messages(&mut tx, &change.outbox).await?;
    }
    tx.commit().await?;
    Ok(true)
}

async fn replace_codes(
    conn: &mut PgConnection,
    scope: &Scope,
    user_id: Uuid,
    codes: &[TokenHash],
    at: OffsetDateTime,
) -> QResult<()> {
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE scope = $1 AND user_id = $2")
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *conn)
        .await?;
    let hashes: Vec<Vec<u8>> = codes.iter().map(|c| c.as_bytes().to_vec()).collect();
    sqlx::query(
        "INSERT INTO mfa_recovery_codes (scope, user_id, code_hash, created_at) \
         SELECT $1, $2, h, $4 FROM unnest($3::bytea[]) AS h",
    )
    .bind(scope.as_str())
    .bind(id(user_id))
    .bind(hashes)
    .bind(ms(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn replace_recovery_codes(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    codes: &[TokenHash],
    at: OffsetDateTime,
) -> QResult<bool> {
    let mut tx = pool.begin().await?;
    // The row lock keeps a concurrent removal from interleaving.
    let confirmed: Option<bool> =
        sqlx::query_scalar("SELECT confirmed FROM mfa_totp WHERE scope = $1 AND user_id = $2 FOR UPDATE")
            .bind(scope.as_str())
            .bind(id(user_id))
            .fetch_optional(&mut *tx)
            .await?;
    if confirmed != Some(true) {
        return Ok(false);
    }
    replace_codes(&mut tx, scope, user_id, codes, at).await?;
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn use_recovery_code(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    code: &TokenHash,
) -> QResult<Option<u32>> {
    let mut tx = pool.begin().await?;
    let done =
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE scope = $1 AND user_id = $2 AND code_hash = $3")
            .bind(scope.as_str())
            .bind(id(user_id))
            .bind(code.as_bytes().as_slice())
            .execute(&mut *tx)
            .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM mfa_recovery_codes WHERE scope = $1 AND user_id = $2")
            .bind(scope.as_str())
            .bind(id(user_id))
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(Some(u32::try_from(left).unwrap_or(u32::MAX)))
}

pub(crate) async fn remove_mfa(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    keep: Option<Uuid>,
    outbox: &[OutboxMessage],
) -> QResult<bool> {
    let mut tx = pool.begin().await?;
    let totp = sqlx::query("DELETE FROM mfa_totp WHERE scope = $1 AND user_id = $2")
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let codes = sqlx::query("DELETE FROM mfa_recovery_codes WHERE scope = $1 AND user_id = $2")
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let passkeys = sqlx::query("DELETE FROM passkeys WHERE scope = $1 AND user_id = $2")
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let removed = totp + codes + passkeys > 0;
    if removed {
        end_sessions(&mut tx, scope, user_id, keep).await?;
        crate::queries::outbox::insert_messages(&mut tx, outbox).await?;
    }
    tx.commit().await?;
    Ok(removed)
}

/// Removes the TOTP alone; the recovery codes go too when no passkey is left for them to
/// back up.
pub(crate) async fn remove_totp(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    keep: Option<Uuid>,
    outbox: &[OutboxMessage],
) -> QResult<bool> {
    let mut tx = pool.begin().await?;
    let totp = sqlx::query("DELETE FROM mfa_totp WHERE scope = $1 AND user_id = $2")
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if totp == 0 {
        return Ok(false);
    }
    sqlx::query(
        "DELETE FROM mfa_recovery_codes WHERE scope = $1 AND user_id = $2 \
         AND NOT EXISTS (SELECT 1 FROM passkeys WHERE scope = $1 AND user_id = $2)",
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
