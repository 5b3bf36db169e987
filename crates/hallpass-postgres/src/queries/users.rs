//! Users: insert (uniqueness enforced by the constraints), lookups by id / username key /
//! email key, the filtered listing, updates, deletion, and password changes (which end
//! the user's sessions in the same transaction).

use crate::codec::{id, json, ms, opt_ms};
use crate::error::QResult;
use crate::queries::sessions::end_sessions;
use crate::rows::{self, user_cols};
use hallpass_core::{Confirmation, Email, Scope, User, UserFilter, UserPatch, UserRecord, UserRef, Username};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

/// Stores a new user in one statement. No pre-check: the unique constraints decide, also
/// between concurrent registrations (the second insert waits for the first to commit, then
/// fails with 23505 on `users_username_key` or `users_email_key`, mapped in
/// `crate::error`). When both keys are taken, PostgreSQL checks the constraints in
/// creation order, so the username is reported, as the reference store does.
pub(crate) async fn insert_user(pool: impl sqlx::PgExecutor<'_>, record: &UserRecord) -> QResult<()> {
    let u = &record.user;
    sqlx::query(concat!(
        "INSERT INTO users (",
        user_cols!(""),
        ", username_key, email_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    ))
    .bind(u.scope.as_str())
    .bind(id(u.id))
    .bind(u.username.as_ref().map(Username::as_str))
    .bind(u.email.as_ref().map(Email::as_str))
    .bind(u.group.as_str())
    .bind(json(&u.extra))
    .bind(u.active)
    .bind(u.confirmation.map(Confirmation::as_str))
    .bind(u.confirmed)
    .bind(ms(u.created_at))
    .bind(ms(u.updated_at))
    .bind(opt_ms(u.last_login_at))
    .bind(record.password_hash.as_deref())
    .bind(u.username.as_ref().map(Username::key))
    .bind(u.email.as_ref().map(Email::key))
    .execute(pool)
    .await?;
    Ok(())
}

/// A user by id (the primary key), username key or email key (the unique constraints'
/// indexes, all led by the scope).
pub(crate) const FIND_BY_ID: &str =
    concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = $1 AND id = $2");
pub(crate) const FIND_BY_USERNAME: &str =
    concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = $1 AND username_key = $2");
pub(crate) const FIND_BY_EMAIL: &str =
    concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = $1 AND email_key = $2");

pub(crate) async fn find_user(pool: &PgPool, scope: &Scope, by: &UserRef) -> QResult<Option<UserRecord>> {
    let row = match by {
        UserRef::Id(user_id) => {
            sqlx::query(FIND_BY_ID).bind(scope.as_str()).bind(id(*user_id)).fetch_optional(pool).await?
        }
        UserRef::Username(key) => {
            sqlx::query(FIND_BY_USERNAME).bind(scope.as_str()).bind(key).fetch_optional(pool).await?
        }
        UserRef::Email(key) => {
            sqlx::query(FIND_BY_EMAIL).bind(scope.as_str()).bind(key).fetch_optional(pool).await?
        }
    };
    row.as_ref().map(rows::user_record).transpose()
}

/// A `LIKE` pattern matching `s` anywhere, with `%`, `_` and the escape character `\`
/// escaped so that they match themselves; used with `ESCAPE '\'`.
pub(crate) fn like_substring(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Users of the scope matching `filter`, in id order after `after`. The statement is
/// assembled (`QueryBuilder`) from fixed fragments for the filters present, never from
/// input: every value is a bound parameter, so the cursor becomes a range condition on the primary key
/// (scope, id) and each page starts where the last ended. At most 16 shapes exist, and
/// sqlx keeps each prepared per connection.
///
/// The search is `ILIKE`, which folds case by the database's `LC_CTYPE` (with a UTF-8
/// locale such as `C.UTF-8` or `en_US.UTF-8` it folds non-ASCII letters too; under the
/// plain `C` locale only ASCII). It scans the scope's users, bounded by `LIMIT`.
pub(crate) async fn list_users(
    pool: &PgPool,
    scope: &Scope,
    filter: &UserFilter,
    after: Option<Uuid>,
    limit: u32,
) -> QResult<Vec<User>> {
    let mut q =
        QueryBuilder::<Postgres>::new(concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = "));
    q.push_bind(scope.as_str());
    if let Some(after) = after {
        q.push(" AND id > ").push_bind(id(after));
    }
    if let Some(group) = &filter.group {
        q.push(" AND group_name = ").push_bind(group.as_str());
    }
    if let Some(active) = filter.active {
        q.push(" AND active = ").push_bind(active);
    }
    if let Some(query) = &filter.query {
        let pattern = like_substring(query);
        q.push(" AND (username ILIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
        q.push(" OR email ILIKE ").push_bind(pattern).push(" ESCAPE '\\')");
    }
    q.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
    let found = q.build().fetch_all(pool).await?;
    found.iter().map(|r| rows::user(r, 0)).collect()
}

/// Applies the patch in one transaction: the row is read `FOR UPDATE` (so a concurrent
/// update waits instead of being overwritten), patched in Rust by
/// [`UserPatch::apply`] (the one place every store applies a change), written back (the unique constraints refuse a taken name), and on
/// deactivation every session of the user ends, and on an email change every code is
/// deleted, before the commit.
pub(crate) async fn update_user(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    patch: &UserPatch,
    at: OffsetDateTime,
) -> QResult<Option<User>> {
    let mut tx = pool.begin().await?;
    let user = update_user_in(&mut tx, scope, user_id, patch, at).await?;
    if user.is_some() {
        tx.commit().await?;
    }
    Ok(user)
}

/// [`update_user`] on the caller's transaction (which it leaves open).
pub(crate) async fn update_user_in(
    tx: &mut PgConnection,
    scope: &Scope,
    user_id: Uuid,
    patch: &UserPatch,
    at: OffsetDateTime,
) -> QResult<Option<User>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        user_cols!(""),
        " FROM users WHERE scope = $1 AND id = $2 FOR UPDATE"
    ))
    .bind(scope.as_str())
    .bind(id(user_id))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut user = rows::user(&row, 0)?;
    let effects = patch.apply(&mut user, at);
    sqlx::query(
        "UPDATE users SET username = $3, username_key = $4, email = $5, email_key = $6, group_name = $7, \
         extra = $8, active = $9, confirmation = $10, confirmed = $11, updated_at = $12 \
         WHERE scope = $1 AND id = $2",
    )
    .bind(scope.as_str())
    .bind(id(user_id))
    .bind(user.username.as_ref().map(Username::as_str))
    .bind(user.username.as_ref().map(Username::key))
    .bind(user.email.as_ref().map(Email::as_str))
    .bind(user.email.as_ref().map(Email::key))
    .bind(user.group.as_str())
    .bind(json(&user.extra))
    .bind(user.active)
    .bind(user.confirmation.map(Confirmation::as_str))
    .bind(user.confirmed)
    .bind(ms(at))
    .execute(&mut *tx)
    .await?;
    if effects.end_sessions {
        // Deactivation ends every session, in this same transaction.
        end_sessions(&mut *tx, scope, user_id, None).await?;
    }
    if effects.void_codes {
        // A new email voids every code issued before (they went to the old address).
        void_codes(&mut *tx, scope, user_id).await?;
    }
    Ok(Some(user))
}

/// Deletes the user with their sessions, codes and identities (events stay), in one
/// transaction. The user row is locked first, so a login racing the delete either
/// commits before it (and its session is deleted here) or fails on the foreign key.
pub(crate) async fn delete_user(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let mut tx = pool.begin().await?;
    let found = sqlx::query("SELECT 1 FROM users WHERE scope = $1 AND id = $2 FOR UPDATE")
        .bind(scope.as_str())
        .bind(id(user_id))
        .fetch_optional(&mut *tx)
        .await?;
    if found.is_none() {
        return Ok(false);
    }
    // The foreign keys would cascade these; deleting explicitly keeps the rule visible in
    // the code and true even if someone drops a constraint.
    for sql in [
        "DELETE FROM sessions WHERE scope = $1 AND user_id = $2",
        "DELETE FROM codes WHERE scope = $1 AND user_id = $2",
        "DELETE FROM identities WHERE scope = $1 AND user_id = $2",
        "DELETE FROM users WHERE scope = $1 AND id = $2",
    ] {
        sqlx::query(sql).bind(scope.as_str()).bind(id(user_id)).execute(&mut *tx).await?;
    }
    crate::queries::outbox::insert_messages(&mut tx, outbox).await?;
    tx.commit().await?;
    Ok(true)
}

/// Sets the password hash and ends every session of the user, in one transaction.
pub(crate) async fn set_password_hash(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    hash: &str,
    at: OffsetDateTime,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let mut tx = pool.begin().await?;
    let done =
        sqlx::query("UPDATE users SET password_hash = $3, updated_at = $4 WHERE scope = $1 AND id = $2")
            .bind(scope.as_str())
            .bind(id(user_id))
            .bind(hash)
            .bind(ms(at))
            .execute(&mut *tx)
            .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    end_sessions(&mut tx, scope, user_id, None).await?;
    void_codes(&mut tx, scope, user_id).await?;
    crate::queries::outbox::insert_messages(&mut tx, outbox).await?;
    tx.commit().await?;
    Ok(true)
}

/// Deletes every one-time code of the user, of every kind: a password or email change
/// voids what was issued before it, in the change's own transaction.
pub(crate) async fn void_codes(conn: &mut PgConnection, scope: &Scope, user_id: Uuid) -> QResult<()> {
    sqlx::query("DELETE FROM codes WHERE scope = $1 AND user_id = $2")
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(conn)
        .await?;
    Ok(())
}

/// Compare-and-swap of the hash in one statement; sessions stay.
pub(crate) async fn rehash_password(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    old: &str,
    new: &str,
) -> QResult<bool> {
    let done = sqlx::query(
        "UPDATE users SET password_hash = $4 WHERE scope = $1 AND id = $2 AND password_hash = $3",
    )
    .bind(scope.as_str())
    .bind(id(user_id))
    .bind(old)
    .bind(new)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::like_substring;

    #[test]
    fn like_patterns_escape_wildcards_and_the_escape() {
        assert_eq!(like_substring("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
        assert_eq!(like_substring(""), "%%");
    }
}
