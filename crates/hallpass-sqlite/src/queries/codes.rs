//! One-time codes: a new code voids the user's older ones of its kind; redemption is a
//! single-use delete inside the write transaction, so of two concurrent redemptions of
//! one code exactly one finds it. A row with no user is a decoy left by a request for
//! nobody ([`request_code`]); no reader returns it.

use crate::codec::*;
use crate::error::QResult;
use crate::queries::sessions::end_sessions;
use crate::queries::{throttles, users};
use hallpass_core::{CodeKind, CodeRecord, CodeRequest, CodeRequestOutcome, Scope, TokenHash};
use rusqlite::{Connection, OptionalExtension};
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) fn insert_code(conn: &Connection, code: &CodeRecord) -> QResult<()> {
    store_code(conn, code, Some(code.user_id))
}

/// Deletes `owner`'s older codes of the code's kind, then inserts the code for `owner`.
/// With no owner it is a decoy (see [`request_code`]): the DELETE, bound to NULL, matches
/// nothing, as for a user with no older code, and the row has no user (a NULL foreign key
/// is not checked), so no reader ever returns it. `code.user_id` is then ignored.
fn store_code(conn: &Connection, code: &CodeRecord, owner: Option<Uuid>) -> QResult<()> {
    let uid = owner.map(id);
    conn.prepare_cached("DELETE FROM codes WHERE scope = ?1 AND user_id = ?2 AND kind = ?3")?.execute((
        code.scope.as_str(),
        &uid,
        code.kind.as_str(),
    ))?;
    conn.prepare_cached(
        "INSERT INTO codes (code_hash, scope, user_id, kind, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute((
        hash(&code.code_hash),
        code.scope.as_str(),
        &uid,
        code.kind.as_str(),
        ms(code.created_at),
        ms(code.expires_at),
    ))?;
    Ok(())
}

/// A code asked for by login, on the caller's write transaction whether or not the login
/// names a user: the counter's upsert, the user lookup, then the same DELETE and INSERT
/// either way. A user within the limit gets the code; a login that names nobody, or a user
/// over the limit, gets a decoy row with no user (migration 0004): nobody knows its code,
/// every reader skips it, and the sweeper removes it when it expires. (Before, nobody got
/// a placeholder under `PRAGMA defer_foreign_keys`, deleted again at once: the extra
/// DELETE made a request for an unknown login measurably slower than one for a user, and
/// the pragma expired every prepared statement of the writer connection.) No pragma here.
pub(crate) fn request_code(
    conn: &Connection,
    scope: &Scope,
    req: &CodeRequest,
) -> QResult<CodeRequestOutcome> {
    let requests = throttles::hit(conn, scope, &req.throttle_key, req.created_at, req.window)?;
    let user_id = users::find_user(conn, scope, &req.login)?.map(|r| r.user.id);
    let owner = user_id.filter(|_| req.within_limit(&requests));
    store_code(conn, &req.record(scope, owner.unwrap_or(Uuid::nil())), owner)?;
    match req.outbox.as_ref() {
        Some(m) if owner.is_some() && m.user_id == owner => super::outbox::insert_message(conn, m)?,
        // Nobody's request (or one over the limit) writes and removes the row it carries,
        // so it costs what a real one does (equal timing, like the decoy code above).
        Some(m) => super::outbox::insert_decoy(conn, m)?,
        None => {}
    }
    Ok(CodeRequestOutcome { user_id, stored: owner.is_some(), requests })
}

/// The owner of the unexpired code `?1` of kind `?3` (the unique `codes_code_hash` index).
/// A decoy (no owner) is never a valid code.
pub(crate) const VALID_CODE: &str = "SELECT user_id FROM codes WHERE code_hash = ?1 AND scope = ?2 AND kind = ?3 \
     AND expires_at > ?4 AND user_id IS NOT NULL";

/// The user a valid (unexpired) code of `kind` belongs to.
fn valid_code(
    conn: &Connection,
    scope: &Scope,
    kind: CodeKind,
    code: &TokenHash,
    now: OffsetDateTime,
) -> QResult<Option<Uuid>> {
    let mut stmt = conn.prepare_cached(VALID_CODE)?;
    Ok(stmt.query_row((hash(code), scope.as_str(), kind.as_str(), ms(now)), |r| get_uuid(r, 0)).optional()?)
}

/// The owner of a valid code, read without consuming it.
pub(crate) fn code_owner(
    conn: &Connection,
    scope: &Scope,
    kind: CodeKind,
    code: &TokenHash,
    now: OffsetDateTime,
) -> QResult<Option<Uuid>> {
    valid_code(conn, scope, kind, code, now)
}

fn delete_code(conn: &Connection, scope: &Scope, code: &TokenHash) -> QResult<()> {
    conn.prepare_cached("DELETE FROM codes WHERE code_hash = ?1 AND scope = ?2")?
        .execute((hash(code), scope.as_str()))?;
    Ok(())
}

/// Finds the code, sets the password, deletes the code, ends the sessions — one
/// transaction (the caller's). An expired or unknown code changes nothing.
pub(crate) fn redeem_reset_code(
    conn: &Connection,
    scope: &Scope,
    code: &TokenHash,
    now: OffsetDateTime,
    new_hash: &str,
) -> QResult<Option<Uuid>> {
    let Some(user_id) = valid_code(conn, scope, CodeKind::Reset, code, now)? else {
        return Ok(None);
    };
    let n = conn
        .prepare_cached("UPDATE users SET password_hash = ?3, updated_at = ?4 WHERE scope = ?1 AND id = ?2")?
        .execute((scope.as_str(), id(user_id), new_hash, ms(now)))?;
    if n == 0 {
        // The foreign key makes this unreachable; answer as the reference store does.
        return Ok(None);
    }
    delete_code(conn, scope, code)?;
    end_sessions(conn, scope, user_id, None)?;
    // A new password voids the user's other codes too (a confirmation code, say).
    users::void_codes(conn, scope, user_id)?;
    Ok(Some(user_id))
}

/// Redeems a confirm or login code; a confirm code also marks the email confirmed.
pub(crate) fn redeem_code(
    conn: &Connection,
    scope: &Scope,
    kind: CodeKind,
    code: &TokenHash,
    now: OffsetDateTime,
) -> QResult<Option<Uuid>> {
    let Some(user_id) = valid_code(conn, scope, kind, code, now)? else {
        return Ok(None);
    };
    let n = if kind == CodeKind::Confirm {
        conn.prepare_cached(
            "UPDATE users SET confirmed = 1, confirmation = NULL, updated_at = ?3 WHERE scope = ?1 AND id = ?2",
        )?
        .execute((scope.as_str(), id(user_id), ms(now)))?
    } else {
        conn.prepare_cached("SELECT count(*) FROM users WHERE scope = ?1 AND id = ?2")?
            .query_row((scope.as_str(), id(user_id)), |r| r.get::<_, i64>(0))? as usize
    };
    if n == 0 {
        return Ok(None);
    }
    delete_code(conn, scope, code)?;
    Ok(Some(user_id))
}
