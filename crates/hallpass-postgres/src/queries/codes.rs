//! One-time codes. A new code voids the user's older one of its kind (an upsert on the
//! one-per-kind constraint); redemption is `DELETE ... RETURNING` inside the transaction,
//! so of two concurrent redemptions of one code exactly one deletes the row: the other
//! waits on the row lock, then finds it gone and changes nothing. A row with no user is a
//! decoy left by a request for nobody ([`request_code`]); no reader returns it.

use crate::codec::{DbId, id, ms, opt_id};
use crate::error::QResult;
use crate::queries::sessions::end_sessions;
use crate::queries::throttles;
use hallpass_core::{CodeKind, CodeRecord, CodeRequest, CodeRequestOutcome, Scope, TokenHash, UserRef};
use sqlx::{PgConnection, PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

/// Stores the code, replacing the user's code of the same kind, in one statement (the
/// conflict target is `codes_one_per_kind`). A user that does not exist fails on the
/// foreign key.
pub(crate) async fn insert_code(conn: impl sqlx::PgExecutor<'_>, code: &CodeRecord) -> QResult<()> {
    store_code(conn, code, Some(code.user_id)).await
}

/// The upsert of [`insert_code`] for `owner`. With no owner it is a decoy (see
/// [`request_code`]): NULLs are distinct in `codes_one_per_kind`, so it conflicts with
/// nothing, as for a user with no older code, and the row has no user (a NULL foreign key
/// is not checked), so no reader ever returns it. `code.user_id` is then ignored.
async fn store_code(conn: impl sqlx::PgExecutor<'_>, code: &CodeRecord, owner: Option<Uuid>) -> QResult<()> {
    sqlx::query(
        "INSERT INTO codes (code_hash, scope, user_id, kind, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT ON CONSTRAINT codes_one_per_kind DO UPDATE SET code_hash = excluded.code_hash, \
         created_at = excluded.created_at, expires_at = excluded.expires_at",
    )
    .bind(code.code_hash.as_bytes().as_slice())
    .bind(code.scope.as_str())
    .bind(opt_id(owner))
    .bind(code.kind.as_str())
    .bind(ms(code.created_at))
    .bind(ms(code.expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// A code asked for by login, in one transaction whether or not the login names a user:
/// the counter's upsert, the user's id, then the same code upsert either way. A user
/// within the limit gets the code; a login that names nobody, or a user over the limit,
/// gets a decoy row with no user (migration 0004): nobody knows its code, every reader
/// skips it, and the sweeper removes it when it expires. So both requests write the same
/// rows and take the same time.
pub(crate) async fn request_code(
    pool: &PgPool,
    scope: &Scope,
    req: &CodeRequest,
) -> QResult<CodeRequestOutcome> {
    let mut tx = pool.begin().await?;
    let requests = throttles::hit(&mut *tx, scope, &req.throttle_key, req.created_at, req.window).await?;
    let found = match &req.login {
        UserRef::Id(user_id) => {
            sqlx::query("SELECT id FROM users WHERE scope = $1 AND id = $2")
                .bind(scope.as_str())
                .bind(id(*user_id))
                .fetch_optional(&mut *tx)
                .await?
        }
        UserRef::Username(key) => {
            sqlx::query("SELECT id FROM users WHERE scope = $1 AND username_key = $2")
                .bind(scope.as_str())
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?
        }
        UserRef::Email(key) => {
            sqlx::query("SELECT id FROM users WHERE scope = $1 AND email_key = $2")
                .bind(scope.as_str())
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?
        }
    };
    let user_id = found.map(|r| r.try_get::<DbId, _>(0)).transpose()?.map(|d| d.0);
    let owner = user_id.filter(|_| req.within_limit(&requests));
    store_code(&mut *tx, &req.record(scope, owner.unwrap_or(Uuid::nil())), owner).await?;
    match req.outbox.as_ref() {
        Some(m) if owner.is_some() && m.user_id == owner => {
            super::outbox::insert_message(&mut *tx, m).await?
        }
        // Nobody's request (or one over the limit) writes and removes the row it carries,
        // so it costs what a real one does (equal timing, like the decoy code above).
        Some(m) => super::outbox::insert_decoy(&mut tx, m).await?,
        None => {}
    }
    tx.commit().await?;
    Ok(CodeRequestOutcome { user_id, stored: owner.is_some(), requests })
}

/// The owner of the unexpired code of `kind` with that hash, read without consuming it.
pub(crate) async fn code_owner(
    pool: &PgPool,
    scope: &Scope,
    kind: CodeKind,
    code: &TokenHash,
    now: OffsetDateTime,
) -> QResult<Option<Uuid>> {
    let row = sqlx::query(
        "SELECT user_id FROM codes WHERE code_hash = $1 AND scope = $2 AND kind = $3 AND expires_at > $4 \
         AND user_id IS NOT NULL",
    )
    .bind(code.as_bytes().as_slice())
    .bind(scope.as_str())
    .bind(kind.as_str())
    .bind(ms(now))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| r.try_get::<DbId, _>(0)).transpose()?.map(|d| d.0))
}

/// Consumes the unexpired code of `kind` with that hash; returns its user. On the
/// caller's transaction, so the deletion is undone if what follows fails.
async fn take_code(
    conn: &mut PgConnection,
    scope: &Scope,
    kind: CodeKind,
    code: &TokenHash,
    now: OffsetDateTime,
) -> QResult<Option<Uuid>> {
    let row = sqlx::query(
        "DELETE FROM codes WHERE code_hash = $1 AND scope = $2 AND kind = $3 AND expires_at > $4 \
         AND user_id IS NOT NULL RETURNING user_id",
    )
    .bind(code.as_bytes().as_slice())
    .bind(scope.as_str())
    .bind(kind.as_str())
    .bind(ms(now))
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.try_get::<DbId, _>(0)).transpose()?.map(|d| d.0))
}

/// Takes the code, sets the password, ends the sessions — one transaction. An expired,
/// unknown or already used code changes nothing.
pub(crate) async fn redeem_reset_code(
    pool: &PgPool,
    scope: &Scope,
    code: &TokenHash,
    now: OffsetDateTime,
    new_hash: &str,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<Option<Uuid>> {
    let mut tx = pool.begin().await?;
    let Some(user_id) = take_code(&mut tx, scope, CodeKind::Reset, code, now).await? else {
        return Ok(None);
    };
    let done =
        sqlx::query("UPDATE users SET password_hash = $3, updated_at = $4 WHERE scope = $1 AND id = $2")
            .bind(scope.as_str())
            .bind(id(user_id))
            .bind(new_hash)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
    if done.rows_affected() == 0 {
        // The foreign key makes this unreachable; answer as the reference store does
        // (dropping the transaction rolls the deletion back).
        return Ok(None);
    }
    end_sessions(&mut tx, scope, user_id, None).await?;
    // A new password voids the user's other codes too (a confirmation code, say).
    super::users::void_codes(&mut tx, scope, user_id).await?;
    super::outbox::insert_messages(&mut tx, outbox).await?;
    tx.commit().await?;
    Ok(Some(user_id))
}

/// Redeems a confirm or login code in one transaction; a confirm code also marks the
/// email confirmed.
pub(crate) async fn redeem_code(
    pool: &PgPool,
    scope: &Scope,
    kind: CodeKind,
    code: &TokenHash,
    now: OffsetDateTime,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<Option<Uuid>> {
    let mut tx = pool.begin().await?;
    let Some(user_id) = take_code(&mut tx, scope, kind, code, now).await? else {
        return Ok(None);
    };
    let found = if kind == CodeKind::Confirm {
        sqlx::query(
            "UPDATE users SET confirmed = TRUE, confirmation = NULL, updated_at = $3 \
             WHERE scope = $1 AND id = $2",
        )
        .bind(scope.as_str())
        .bind(id(user_id))
        .bind(ms(now))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0
    } else {
        sqlx::query("SELECT 1 FROM users WHERE scope = $1 AND id = $2")
            .bind(scope.as_str())
            .bind(id(user_id))
            .fetch_optional(&mut *tx)
            .await?
            .is_some()
    };
    if !found {
        return Ok(None);
    }
    super::outbox::insert_messages(&mut tx, outbox).await?;
    tx.commit().await?;
    Ok(Some(user_id))
}
