//! Second factors (`hallpass_core::mfa`): the TOTP row with its compare-and-set of the
//! last accepted step, and recovery codes used by deleting their row.

use super::sessions::end_sessions;
use crate::codec::*;
use crate::error::QResult;
use hallpass_core::{FactorChange, MfaState, OutboxMessage, Scope, TokenHash, TotpRecord};
use rusqlite::{Connection, OptionalExtension};
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) fn mfa_state(conn: &Connection, scope: &Scope, user_id: Uuid) -> QResult<MfaState> {
    let totp = conn
        .prepare_cached(
            "SELECT secret, confirmed, last_step, created_at FROM mfa_totp WHERE scope = ?1 AND user_id = ?2",
        )?
        .query_row((scope.as_str(), id(user_id)), |r| {
            Ok(TotpRecord {
                secret: r.get(0)?,
                confirmed: r.get::<_, i64>(1)? != 0,
                last_step: r.get(2)?,
                created_at: get_time(r, 3)?,
            })
        })
        .optional()?;
    let recovery_codes: i64 = conn
        .prepare_cached("SELECT count(*) FROM mfa_recovery_codes WHERE scope = ?1 AND user_id = ?2")?
        .query_row((scope.as_str(), id(user_id)), |r| r.get(0))?;
    let passkeys: i64 = conn
        .prepare_cached("SELECT count(*) FROM passkeys WHERE scope = ?1 AND user_id = ?2")?
        .query_row((scope.as_str(), id(user_id)), |r| r.get(0))?;
    Ok(MfaState {
        totp,
        recovery_codes: u32::try_from(recovery_codes).unwrap_or(u32::MAX),
        passkeys: u32::try_from(passkeys).unwrap_or(u32::MAX),
    })
}

pub(crate) fn enrol_totp(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    secret: &str,
    at: OffsetDateTime,
) -> QResult<bool> {
    // Only for an existing user, and never over a confirmed TOTP.
    let n = conn
        .prepare_cached(
            "INSERT INTO mfa_totp (scope, user_id, secret, confirmed, last_step, created_at) \
             SELECT ?1, ?2, ?3, 0, NULL, ?4 WHERE EXISTS (SELECT 1 FROM users WHERE scope = ?1 AND id = ?2) \
             ON CONFLICT (scope, user_id) DO UPDATE SET secret = excluded.secret, last_step = NULL, \
             created_at = excluded.created_at WHERE mfa_totp.confirmed = 0",
        )?
        .execute((scope.as_str(), id(user_id), secret, ms(at)))?;
    Ok(n == 1)
}

pub(crate) fn accept_totp_step(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    step: i64,
    confirm: Option<&FactorChange>,
) -> QResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE mfa_totp SET last_step = ?3, confirmed = 1 WHERE scope = ?1 AND user_id = ?2 \
             AND confirmed = ?4 AND (last_step IS NULL OR last_step < ?3)",
        )?
        .execute((scope.as_str(), id(user_id), step, i64::from(confirm.is_none())))?;
    if n != 1 {
        return Ok(false);
    }
    if let Some(change) = confirm {
        replace_codes(conn, scope, user_id, &change.recovery_codes, change.at)?;
        end_sessions(conn, scope, user_id, change.keep_session)?;
        crate::queries::outbox::insert_messages(conn, &change.outbox)?;
    }
    Ok(true)
}

fn replace_codes(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    codes: &[TokenHash],
    at: OffsetDateTime,
) -> QResult<()> {
    conn.prepare_cached("DELETE FROM mfa_recovery_codes WHERE scope = ?1 AND user_id = ?2")?
        .execute((scope.as_str(), id(user_id)))?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO mfa_recovery_codes (scope, user_id, code_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for code in codes {
        insert.execute((scope.as_str(), id(user_id), hash(code), ms(at)))?;
    }
    Ok(())
}

pub(crate) fn replace_recovery_codes(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    codes: &[TokenHash],
    at: OffsetDateTime,
) -> QResult<bool> {
    let confirmed: Option<i64> = conn
        .prepare_cached("SELECT confirmed FROM mfa_totp WHERE scope = ?1 AND user_id = ?2")?
        .query_row((scope.as_str(), id(user_id)), |r| r.get(0))
        .optional()?;
    if confirmed != Some(1) {
        return Ok(false);
    }
    replace_codes(conn, scope, user_id, codes, at)?;
    Ok(true)
}

pub(crate) fn use_recovery_code(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    code: &TokenHash,
) -> QResult<Option<u32>> {
    let n = conn
        .prepare_cached(
            "DELETE FROM mfa_recovery_codes WHERE scope = ?1 AND user_id = ?2 AND code_hash = ?3",
        )?
        .execute((scope.as_str(), id(user_id), hash(code)))?;
    if n != 1 {
        return Ok(None);
    }
    let left: i64 = conn
        .prepare_cached("SELECT count(*) FROM mfa_recovery_codes WHERE scope = ?1 AND user_id = ?2")?
        .query_row((scope.as_str(), id(user_id)), |r| r.get(0))?;
    Ok(Some(u32::try_from(left).unwrap_or(u32::MAX)))
}

pub(crate) fn remove_mfa(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    keep: Option<Uuid>,
    outbox: &[OutboxMessage],
) -> QResult<bool> {
    let totp = conn
        .prepare_cached("DELETE FROM mfa_totp WHERE scope = ?1 AND user_id = ?2")?
        .execute((scope.as_str(), id(user_id)))?;
    let codes = conn
        .prepare_cached("DELETE FROM mfa_recovery_codes WHERE scope = ?1 AND user_id = ?2")?
        .execute((scope.as_str(), id(user_id)))?;
    let passkeys = conn
        .prepare_cached("DELETE FROM passkeys WHERE scope = ?1 AND user_id = ?2")?
        .execute((scope.as_str(), id(user_id)))?;
    let removed = totp + codes + passkeys > 0;
    if removed {
        end_sessions(conn, scope, user_id, keep)?;
        crate::queries::outbox::insert_messages(conn, outbox)?;
    }
    Ok(removed)
}

/// Removes the TOTP alone; the recovery codes go too when no passkey is left for them to
/// back up.
pub(crate) fn remove_totp(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    keep: Option<Uuid>,
    outbox: &[OutboxMessage],
) -> QResult<bool> {
    let totp = conn
        .prepare_cached("DELETE FROM mfa_totp WHERE scope = ?1 AND user_id = ?2")?
        .execute((scope.as_str(), id(user_id)))?;
    if totp == 0 {
        return Ok(false);
    }
    conn.prepare_cached(
        "DELETE FROM mfa_recovery_codes WHERE scope = ?1 AND user_id = ?2 \
         AND NOT EXISTS (SELECT 1 FROM passkeys WHERE scope = ?1 AND user_id = ?2)",
    )?
    .execute((scope.as_str(), id(user_id)))?;
    end_sessions(conn, scope, user_id, keep)?;
    crate::queries::outbox::insert_messages(conn, outbox)?;
    Ok(true)
}
