//! Users: insert, lookups by id / username key / email key, the filtered listing,
//! updates, deletion, and password changes (which end the user's sessions).
//!
//! Uniqueness of usernames and emails is the unique indexes' job alone: an insert or
//! update that takes a held key fails with a duplicate-key error naming the index, which
//! `crate::error` maps to `UsernameTaken` / `EmailTaken`. No "check, then write": under
//! concurrency only the index is authoritative, and InnoDB makes the losers of a race wait
//! for the winner's commit and then fail, so 50 racers give one winner and 49 conflicts.

use crate::codec::*;
use crate::error::QResult;
use crate::queries::sessions::end_sessions;
use crate::rows::{record_from_row, user_cols, user_from_row};
use hallpass_core::{
    Confirmation, Email, Scope, StoreError, User, UserFilter, UserPatch, UserRecord, UserRef, Username,
};
use sqlx::AssertSqlSafe;
use sqlx::mysql::MySqlConnection;
use time::OffsetDateTime;
use uuid::Uuid;

const INSERT_USER: &str = concat!(
    "INSERT INTO users (",
    user_cols!(""),
    ", username_key, email_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
);

/// One statement: the unique indexes refuse a taken username or email.
pub(crate) async fn insert_user(c: &mut MySqlConnection, record: &UserRecord) -> QResult<()> {
    let u = &record.user;
    sqlx::query(INSERT_USER)
        .bind(u.scope.as_str())
        .bind(id(u.id))
        .bind(u.username.as_ref().map(Username::as_str))
        .bind(u.email.as_ref().map(Email::as_str))
        .bind(u.group.as_str().as_bytes())
        .bind(json(&u.extra)?)
        .bind(u.active)
        .bind(u.confirmation.map(Confirmation::as_str))
        .bind(u.confirmed)
        .bind(ms(u.created_at))
        .bind(ms(u.updated_at))
        .bind(opt_ms(u.last_login_at))
        .bind(record.password_hash.as_deref().map(str::as_bytes))
        .bind(u.username.as_ref().map(|n| n.key().as_bytes()))
        .bind(u.email.as_ref().map(|e| e.key().as_bytes()))
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// A user by id (the primary key), username key or email key (the unique indexes).
const FIND_BY_ID: &str = concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = ? AND id = ?");
const FIND_BY_USERNAME: &str =
    concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = ? AND username_key = ?");
const FIND_BY_EMAIL: &str =
    concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = ? AND email_key = ?");

pub(crate) async fn find_user(
    c: &mut MySqlConnection,
    scope: &Scope,
    by: &UserRef,
) -> QResult<Option<UserRecord>> {
    let row = match by {
        UserRef::Id(u) => {
            sqlx::query(FIND_BY_ID).bind(scope.as_str()).bind(id(*u)).fetch_optional(&mut *c).await?
        }
        UserRef::Username(key) => {
            sqlx::query(FIND_BY_USERNAME)
                .bind(scope.as_str())
                .bind(key.as_bytes())
                .fetch_optional(&mut *c)
                .await?
        }
        UserRef::Email(key) => {
            sqlx::query(FIND_BY_EMAIL)
                .bind(scope.as_str())
                .bind(key.as_bytes())
                .fetch_optional(&mut *c)
                .await?
        }
    };
    row.as_ref().map(record_from_row).transpose()
}

/// The escape character of the LIKE patterns. Not the backslash: what a backslash means
/// inside a SQL string literal depends on the `NO_BACKSLASH_ESCAPES` mode.
const LIKE_ESCAPE: char = '!';

/// `s` as a LIKE pattern matching it as a substring, literally: `%`, `_` and the escape
/// character itself lose their meaning. Used with `ESCAPE '!'`.
pub(crate) fn like_substring(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for ch in s.chars() {
        if matches!(ch, '%' | '_') || ch == LIKE_ESCAPE {
            out.push(LIKE_ESCAPE);
        }
        out.push(ch);
    }
    out.push('%');
    out
}

/// Users of the scope matching `filter`, in id order after `after`. The statement is
/// assembled from fixed fragments (the values are all bound), so that the cursor becomes
/// a range condition on the primary key (scope, id): each page starts where the last
/// ended instead of re-reading the scope from the start.
///
/// The search lower-cases both sides (`LOWER()` of the display columns, Rust's
/// `to_lowercase` of the query): the columns' binary collation would otherwise compare
/// case-sensitively, and a `_ci` collation would also fold accents and more. It reads
/// every user of the scope (bounded by LIMIT once enough match); an admin search, not a
/// hot path.
pub(crate) async fn list_users(
    c: &mut MySqlConnection,
    scope: &Scope,
    filter: &UserFilter,
    after: Option<Uuid>,
    limit: u32,
) -> QResult<Vec<User>> {
    let mut sql = String::from(concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = ?"));
    if after.is_some() {
        sql.push_str(" AND id > ?");
    }
    if filter.group.is_some() {
        sql.push_str(" AND group_name = ?");
    }
    if filter.active.is_some() {
        sql.push_str(" AND active = ?");
    }
    if filter.query.is_some() {
        sql.push_str(" AND (LOWER(username) LIKE ? ESCAPE '!' OR LOWER(email) LIKE ? ESCAPE '!')");
    }
    sql.push_str(" ORDER BY id LIMIT ?");
    // Only the fixed fragments above went into `sql`; every value is a bound parameter.
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(scope.as_str());
    if let Some(after) = after {
        q = q.bind(id(after));
    }
    if let Some(group) = &filter.group {
        q = q.bind(group.as_bytes());
    }
    if let Some(active) = filter.active {
        q = q.bind(active);
    }
    if let Some(query) = &filter.query {
        let pattern = like_substring(&query.to_lowercase());
        q = q.bind(pattern.clone()).bind(pattern);
    }
    let rows = q.bind(limit).fetch_all(&mut *c).await?;
    rows.iter().map(|r| user_from_row(r, 0)).collect()
}

const LOCK_USER: &str =
    concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = ? AND id = ? FOR UPDATE");

/// Locks the user's row for the rest of the transaction (the locking rule of
/// `crate::queries`); `false` when there is no such user.
pub(crate) async fn lock_user(c: &mut MySqlConnection, scope: &Scope, user_id: Uuid) -> QResult<bool> {
    let row = sqlx::query("SELECT 1 FROM users WHERE scope = ? AND id = ? FOR UPDATE")
        .bind(scope.as_str())
        .bind(id(user_id))
        .fetch_optional(&mut *c)
        .await?;
    Ok(row.is_some())
}

const UPDATE_USER: &str = "UPDATE users SET username = ?, username_key = ?, email = ?, email_key = ?, \
     group_name = ?, extra = ?, active = ?, confirmation = ?, confirmed = ?, updated_at = ? \
     WHERE scope = ? AND id = ?";

/// Read-modify-write under the row lock (nobody changes the user in between), the change
/// applied in Rust by [`UserPatch::apply`], the one place every store applies it. A taken
/// username or email fails the UPDATE (and the caller's transaction rolls back, so a
/// refused update changes nothing).
pub(crate) async fn update_user(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    patch: &UserPatch,
    at: OffsetDateTime,
) -> QResult<Option<User>> {
    let row = sqlx::query(LOCK_USER).bind(scope.as_str()).bind(id(user_id)).fetch_optional(&mut *c).await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut user = user_from_row(&row, 0)?;
    let effects = patch.apply(&mut user, at);
    sqlx::query(UPDATE_USER)
        .bind(user.username.as_ref().map(Username::as_str))
        .bind(user.username.as_ref().map(|n| n.key().as_bytes()))
        .bind(user.email.as_ref().map(Email::as_str))
        .bind(user.email.as_ref().map(|e| e.key().as_bytes()))
        .bind(user.group.as_str().as_bytes())
        .bind(json(&user.extra)?)
        .bind(user.active)
        .bind(user.confirmation.map(Confirmation::as_str))
        .bind(user.confirmed)
        .bind(ms(at))
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *c)
        .await?;
    if effects.end_sessions {
        // Deactivation ends every session, in this same transaction.
        end_sessions(c, scope, user_id, None).await?;
    }
    if effects.void_codes {
        // A new email voids every code issued before (they went to the old address).
        void_codes(c, scope, user_id).await?;
    }
    Ok(Some(user))
}

/// Deletes the user's sessions, codes and identities, then the user (events stay). The
/// foreign keys would cascade; deleting explicitly keeps the rule visible and holds even
/// where someone disabled `foreign_key_checks`.
pub(crate) async fn delete_user(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    if !lock_user(c, scope, user_id).await? {
        return Ok(false);
    }
    let uid = id(user_id);
    for sql in [
        "DELETE FROM sessions WHERE scope = ? AND user_id = ?",
        "DELETE FROM codes WHERE scope = ? AND user_id = ?",
        "DELETE FROM identities WHERE scope = ? AND user_id = ?",
        "DELETE FROM users WHERE scope = ? AND id = ?",
    ] {
        sqlx::query(sql).bind(scope.as_str()).bind(&uid).execute(&mut *c).await?;
    }
    crate::queries::outbox::insert_messages(c, outbox).await?;
    Ok(true)
}

/// Sets the password hash and ends every session of the user. The UPDATE takes the
/// user's row lock first. (sqlx asks for CLIENT_FOUND_ROWS, so `rows_affected` counts the
/// rows matched, also when the hash did not change.)
pub(crate) async fn set_password_hash(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    hash: &str,
    at: OffsetDateTime,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let n = sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE scope = ? AND id = ?")
        .bind(hash.as_bytes())
        .bind(ms(at))
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    end_sessions(c, scope, user_id, None).await?;
    void_codes(c, scope, user_id).await?;
    crate::queries::outbox::insert_messages(c, outbox).await?;
    Ok(true)
}

/// Deletes every one-time code of the user, of every kind: a password or email change
/// voids what was issued before it, in the change's own transaction.
pub(crate) async fn void_codes(c: &mut MySqlConnection, scope: &Scope, user_id: Uuid) -> QResult<()> {
    sqlx::query("DELETE FROM codes WHERE scope = ? AND user_id = ?")
        .bind(scope.as_str())
        .bind(id(user_id))
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Compare-and-swap of the hash (byte for byte: the column is VARBINARY); sessions stay.
pub(crate) async fn rehash_password(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    old: &str,
    new: &str,
) -> QResult<bool> {
    let n =
        sqlx::query("UPDATE users SET password_hash = ? WHERE scope = ? AND id = ? AND password_hash = ?")
            .bind(new.as_bytes())
            .bind(scope.as_str())
            .bind(id(user_id))
            .bind(old.as_bytes())
            .execute(&mut *c)
            .await?
            .rows_affected();
    Ok(n > 0)
}

/// The refusal of a write for a user that does not exist (the reference store's answer).
pub(crate) fn no_such_user(what: &str) -> crate::error::Fail {
    StoreError::Other(format!("{what} of a user that does not exist")).into()
}

#[cfg(test)]
mod tests {
    use super::like_substring;

    #[test]
    fn like_patterns_escape_wildcards_and_the_escape() {
        assert_eq!(like_substring("a%b_c!d\\e"), "%a!%b!_c!!d\\e%");
        assert_eq!(like_substring(""), "%%");
    }
}
