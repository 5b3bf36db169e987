//! One-time codes: a new code voids the user's older ones of its kind; a redemption is a
//! single-use delete whose affected-row count decides who won. A row with no user is a
//! decoy left by a request for nobody ([`request_code`]); no reader returns it.
//!
//! Redemption order, following the locking rule (user row first):
//! 1. a plain read finds the owner of the code, if it looks valid;
//! 2. the owner's row is locked (`SELECT ... FOR UPDATE`): concurrent redemptions of one
//!    code, and anything else about this user, queue here;
//! 3. `DELETE` of the code with every condition again (scope, owner, kind, unexpired):
//!    the delete is a locking read of the latest committed row, so exactly one redeemer
//!    sees one affected row; the others see none and change nothing;
//! 4. only then the user's changes (password and the end of the sessions, or the
//!    confirmation), in the same transaction.

use crate::codec::*;
use crate::error::QResult;
use crate::queries::sessions::end_sessions;
use crate::queries::users::{lock_user, no_such_user};
use crate::queries::{throttles, users};
use hallpass_core::{CodeKind, CodeRecord, CodeRequest, CodeRequestOutcome, Scope, TokenHash};
use sqlx::mysql::MySqlConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// A code asked for by login, on the caller's transaction whether or not the login names a
/// user: the counter's upsert (no user row is locked before it, so this cannot deadlock
/// with a login's counting), the user lookup, then the same lock, DELETE and INSERT either
/// way. A user within the limit gets the code; a login that names nobody, or a user over
/// the limit, gets a decoy row with no user (migration 0004): nobody knows its code, every
/// reader skips it, and the sweeper removes it when it expires. So both requests run the
/// same statements and take the same time.
pub(crate) async fn request_code(
    c: &mut MySqlConnection,
    scope: &Scope,
    req: &CodeRequest,
) -> QResult<CodeRequestOutcome> {
    let requests = throttles::hit(&mut *c, scope, &req.throttle_key, req.created_at, req.window).await?;
    let user_id = users::find_user(&mut *c, scope, &req.login).await?.map(|r| r.user.id);
    let owner = user_id.filter(|_| req.within_limit(&requests));
    store_code(&mut *c, &req.record(scope, owner.unwrap_or(Uuid::nil())), owner).await?;
    match req.outbox.as_ref() {
        Some(m) if owner.is_some() && m.user_id == owner => super::outbox::insert_message(&mut *c, m).await?,
        // Nobody's request (or one over the limit) writes and removes the row it carries,
        // so it costs what a real one does (equal timing, like the decoy code above).
        Some(m) => super::outbox::insert_decoy(&mut *c, m).await?,
        None => {}
    }
    Ok(CodeRequestOutcome { user_id, stored: owner.is_some(), requests })
}

/// Stores a code after deleting the user's older codes of its kind. The user's row is
/// locked first, so two concurrent new codes for one user leave only the later one.
pub(crate) async fn insert_code(c: &mut MySqlConnection, code: &CodeRecord) -> QResult<()> {
    store_code(c, code, Some(code.user_id)).await
}

/// [`insert_code`] for `owner`. With no owner it is a decoy (see [`request_code`]): the
/// lock and the DELETE, bound to NULL, match nothing (as for a user with no older code)
/// and the row has no user (a NULL foreign key is not checked), so no reader ever returns
/// it. `code.user_id` is then ignored.
async fn store_code(c: &mut MySqlConnection, code: &CodeRecord, owner: Option<Uuid>) -> QResult<()> {
    let uid = owner.map(id);
    // The statement of `users::lock_user`, bound to NULL for a decoy.
    let locked = sqlx::query("SELECT 1 FROM users WHERE scope = ? AND id = ? FOR UPDATE")
        .bind(code.scope.as_str())
        .bind(&uid)
        .fetch_optional(&mut *c)
        .await?
        .is_some();
    if owner.is_some() && !locked {
        return Err(no_such_user("code"));
    }
    sqlx::query("DELETE FROM codes WHERE scope = ? AND user_id = ? AND kind = ?")
        .bind(code.scope.as_str())
        .bind(&uid)
        .bind(code.kind.as_str())
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO codes (code_hash, scope, user_id, kind, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(hash(&code.code_hash))
    .bind(code.scope.as_str())
    .bind(&uid)
    .bind(code.kind.as_str())
    .bind(ms(code.created_at))
    .bind(ms(code.expires_at))
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Step 1 of the module's order alone: the owner of a valid code of `kind`, read without
/// consuming the code or locking anything.
pub(crate) async fn code_owner(
    c: &mut MySqlConnection,
    scope: &Scope,
    kind: CodeKind,
    code: &TokenHash,
    now: OffsetDateTime,
) -> QResult<Option<Uuid>> {
    let owner: Option<String> = sqlx::query_scalar(
        "SELECT user_id FROM codes WHERE code_hash = ? AND scope = ? AND kind = ? AND expires_at > ? \
         AND user_id IS NOT NULL",
    )
    .bind(hash(code))
    .bind(scope.as_str())
    .bind(kind.as_str())
    .bind(ms(now))
    .fetch_optional(&mut *c)
    .await?;
    owner.map(|o| Uuid::parse_str(&o).map_err(|e| crate::error::corrupt("code owner", e))).transpose()
}

/// Steps 1 to 3 of the module's order: the owner of a valid code of `kind`, with the code
/// consumed and the owner's row locked; `None` (nothing changed) otherwise.
async fn take_code(
    c: &mut MySqlConnection,
    scope: &Scope,
    kind: CodeKind,
    code: &TokenHash,
    now: OffsetDateTime,
) -> QResult<Option<Uuid>> {
    let owner: Option<String> = sqlx::query_scalar(
        "SELECT user_id FROM codes WHERE code_hash = ? AND scope = ? AND kind = ? AND expires_at > ? \
         AND user_id IS NOT NULL",
    )
    .bind(hash(code))
    .bind(scope.as_str())
    .bind(kind.as_str())
    .bind(ms(now))
    .fetch_optional(&mut *c)
    .await?;
    let Some(owner) = owner else {
        return Ok(None);
    };
    let user_id = Uuid::parse_str(&owner).map_err(|e| crate::error::corrupt("code owner", e))?;
    if !lock_user(c, scope, user_id).await? {
        return Ok(None);
    }
    let taken = sqlx::query(
        "DELETE FROM codes WHERE code_hash = ? AND scope = ? AND user_id = ? AND kind = ? AND expires_at > ?",
    )
    .bind(hash(code))
    .bind(scope.as_str())
    .bind(&owner)
    .bind(kind.as_str())
    .bind(ms(now))
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok((taken == 1).then_some(user_id))
}

/// Consumes the reset code, sets the password hash, ends the sessions — one transaction
/// (the caller's). An expired, used or unknown code changes nothing.
pub(crate) async fn redeem_reset_code(
    c: &mut MySqlConnection,
    scope: &Scope,
    code: &TokenHash,
    now: OffsetDateTime,
    new_hash: &str,
) -> QResult<Option<Uuid>> {
    let Some(user_id) = take_code(c, scope, CodeKind::Reset, code, now).await? else {
        return Ok(None);
    };
    sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE scope = ? AND id = ?")
        .bind(new_hash.as_bytes())
        .bind(ms(now))
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *c)
        .await?;
    end_sessions(c, scope, user_id, None).await?;
    // A new password voids the user's other codes too (a confirmation code, say).
    super::users::void_codes(c, scope, user_id).await?;
    Ok(Some(user_id))
}

/// Redeems a confirm or login code; a confirm code also marks the email confirmed.
pub(crate) async fn redeem_code(
    c: &mut MySqlConnection,
    scope: &Scope,
    kind: CodeKind,
    code: &TokenHash,
    now: OffsetDateTime,
) -> QResult<Option<Uuid>> {
    let Some(user_id) = take_code(c, scope, kind, code, now).await? else {
        return Ok(None);
    };
    if kind == CodeKind::Confirm {
        sqlx::query(
            "UPDATE users SET confirmed = TRUE, confirmation = NULL, updated_at = ? WHERE scope = ? AND id = ?",
        )
        .bind(ms(now))
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *c)
        .await?;
    }
    Ok(Some(user_id))
}
