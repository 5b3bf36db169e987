//! Passkeys (`hallpass_core::passkey`): one row per credential; adding or removing one ends
//! the user's other sessions in the same transaction.

use super::sessions::end_sessions;
use crate::codec::*;
use crate::error::QResult;
use hallpass_core::{PasskeyRecord, PasskeyUse, Scope};
use rusqlite::{Connection, OptionalExtension, Row};
use uuid::Uuid;

pub(crate) const COLUMNS: &str = "id, scope, user_id, credential_id, name, credential, counter, backup_eligible, \
                       backup_state, created_at, last_used_at";

pub(crate) fn passkey(r: &Row<'_>) -> rusqlite::Result<PasskeyRecord> {
    Ok(PasskeyRecord {
        id: get_uuid(r, 0)?,
        scope: get_parsed(r, 1, Scope::from_stored)?,
        user_id: get_uuid(r, 2)?,
        credential_id: r.get(3)?,
        name: r.get(4)?,
        credential: r.get(5)?,
        counter: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(u32::MAX),
        backup_eligible: r.get::<_, i64>(7)? != 0,
        backup_state: r.get::<_, i64>(8)? != 0,
        created_at: get_time(r, 9)?,
        last_used_at: get_opt_time(r, 10)?,
    })
}

pub(crate) fn insert_passkey(
    conn: &Connection,
    p: &PasskeyRecord,
    keep: Option<Uuid>,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let n = conn
        .prepare_cached(
            "INSERT INTO passkeys (id, scope, user_id, credential_id, name, credential, counter, \
             backup_eligible, backup_state, created_at, last_used_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL \
             WHERE EXISTS (SELECT 1 FROM users WHERE scope = ?2 AND id = ?3) \
             ON CONFLICT (scope, credential_id) DO NOTHING",
        )?
        .execute((
            id(p.id),
            p.scope.as_str(),
            id(p.user_id),
            &p.credential_id,
            &p.name,
            &p.credential,
            i64::from(p.counter),
            i64::from(p.backup_eligible),
            i64::from(p.backup_state),
            ms(p.created_at),
        ))?;
    if n != 1 {
        return Ok(false);
    }
    end_sessions(conn, &p.scope, p.user_id, keep)?;
    crate::queries::outbox::insert_messages(conn, outbox)?;
    Ok(true)
}

pub(crate) fn list_passkeys(conn: &Connection, scope: &Scope, user_id: Uuid) -> QResult<Vec<PasskeyRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM passkeys WHERE scope = ?1 AND user_id = ?2 ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map((scope.as_str(), id(user_id)), passkey)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn find_passkey(
    conn: &Connection,
    scope: &Scope,
    credential_id: &[u8],
) -> QResult<Option<PasskeyRecord>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM passkeys WHERE scope = ?1 AND credential_id = ?2"))?
        .query_row((scope.as_str(), credential_id), passkey)
        .optional()?)
}

pub(crate) fn use_passkey(conn: &Connection, scope: &Scope, pk: Uuid, u: &PasskeyUse) -> QResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE passkeys SET credential = ?3, counter = ?4, backup_eligible = ?5, backup_state = ?6, \
             last_used_at = ?7 WHERE scope = ?1 AND id = ?2",
        )?
        .execute((
            scope.as_str(),
            id(pk),
            &u.credential,
            i64::from(u.counter),
            i64::from(u.backup_eligible),
            i64::from(u.backup_state),
            ms(u.at),
        ))?;
    Ok(n == 1)
}

pub(crate) fn rename_passkey(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    pk: Uuid,
    name: &str,
) -> QResult<bool> {
    let n = conn
        .prepare_cached("UPDATE passkeys SET name = ?4 WHERE scope = ?1 AND user_id = ?2 AND id = ?3")?
        .execute((scope.as_str(), id(user_id), id(pk), name))?;
    Ok(n == 1)
}

pub(crate) fn delete_passkey(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    pk: Uuid,
    keep: Option<Uuid>,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let n = conn
        .prepare_cached("DELETE FROM passkeys WHERE scope = ?1 AND user_id = ?2 AND id = ?3")?
        .execute((scope.as_str(), id(user_id), id(pk)))?;
    if n != 1 {
        return Ok(false);
    }
    // The last factor gone: the recovery codes that backed it up go too.
    conn.prepare_cached(
        "DELETE FROM mfa_recovery_codes WHERE scope = ?1 AND user_id = ?2 \
         AND NOT EXISTS (SELECT 1 FROM passkeys WHERE scope = ?1 AND user_id = ?2) \
         AND NOT EXISTS (SELECT 1 FROM mfa_totp WHERE scope = ?1 AND user_id = ?2 AND confirmed = 1)",
    )?
    .execute((scope.as_str(), id(user_id)))?;
    end_sessions(conn, scope, user_id, keep)?;
    crate::queries::outbox::insert_messages(conn, outbox)?;
    Ok(true)
}
