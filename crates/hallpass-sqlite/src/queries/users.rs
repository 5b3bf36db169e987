//! Users: insert with uniqueness, lookups by id / username key / email key, the filtered
//! listing, updates, deletion, and password changes (which end the user's sessions).

use crate::codec::*;
use crate::error::{Fail, QResult};
use crate::queries::sessions::end_sessions;
use crate::rows::{record_from_row, user_cols, user_from_row};
use hallpass_core::{
    Confirmation, Email, Scope, StoreError, User, UserFilter, UserPatch, UserRecord, UserRef, Username,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use time::OffsetDateTime;
use uuid::Uuid;

/// Refuses a username or email key another user of the scope holds. Run inside the write
/// transaction (which holds the write lock), so nobody can take the key between this
/// check and the write. The unique indexes back it up, and decide which conflict wins
/// only here: the username is checked first, as in the reference store.
fn check_unique(
    conn: &Connection,
    scope: &str,
    username_key: Option<&str>,
    email_key: Option<&str>,
    except: Option<&str>,
) -> QResult<()> {
    if let Some(key) = username_key {
        let mut stmt = conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM users WHERE scope = ?1 AND username_key = ?2 AND id IS NOT ?3)",
        )?;
        if stmt.query_row((scope, key, except), |r| r.get::<_, bool>(0))? {
            return Err(Fail::Store(StoreError::UsernameTaken));
        }
    }
    if let Some(key) = email_key {
        let mut stmt = conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM users WHERE scope = ?1 AND email_key = ?2 AND id IS NOT ?3)",
        )?;
        if stmt.query_row((scope, key, except), |r| r.get::<_, bool>(0))? {
            return Err(Fail::Store(StoreError::EmailTaken));
        }
    }
    Ok(())
}

pub(crate) fn insert_user(conn: &Connection, record: &UserRecord) -> QResult<()> {
    let u = &record.user;
    let username_key = u.username.as_ref().map(Username::key);
    let email_key = u.email.as_ref().map(Email::key);
    check_unique(conn, u.scope.as_str(), username_key, email_key, None)?;
    insert_user_row(conn, record)
}

/// The INSERT of a user row alone, every field as given; the caller has checked the keys
/// (the unique indexes still back it up).
pub(crate) fn insert_user_row(conn: &Connection, record: &UserRecord) -> QResult<()> {
    let u = &record.user;
    let username_key = u.username.as_ref().map(Username::key);
    let email_key = u.email.as_ref().map(Email::key);
    let mut stmt = conn.prepare_cached(concat!(
        "INSERT INTO users (",
        user_cols!(""),
        ", username_key, email_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))?;
    stmt.execute((
        u.scope.as_str(),
        id(u.id),
        u.username.as_ref().map(Username::as_str),
        u.email.as_ref().map(Email::as_str),
        u.group.as_str(),
        json(&u.extra)?,
        u.active,
        u.confirmation.map(Confirmation::as_str),
        u.confirmed,
        ms(u.created_at),
        ms(u.updated_at),
        opt_ms(u.last_login_at),
        record.password_hash.as_deref(),
        username_key,
        email_key,
    ))?;
    Ok(())
}

/// A user by id (the primary key), username key or email key (the partial unique indexes:
/// `username_key = ?` implies `username_key IS NOT NULL`, so SQLite may use them).
pub(crate) const FIND_BY_ID: &str =
    concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = ?1 AND id = ?2");
pub(crate) const FIND_BY_USERNAME: &str =
    concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = ?1 AND username_key = ?2");
pub(crate) const FIND_BY_EMAIL: &str =
    concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = ?1 AND email_key = ?2");

pub(crate) fn find_user(conn: &Connection, scope: &Scope, by: &UserRef) -> QResult<Option<UserRecord>> {
    let (sql, key) = match by {
        UserRef::Id(u) => (FIND_BY_ID, id(*u)),
        UserRef::Username(k) => (FIND_BY_USERNAME, k.clone()),
        UserRef::Email(k) => (FIND_BY_EMAIL, k.clone()),
    };
    let mut stmt = conn.prepare_cached(sql)?;
    Ok(stmt.query_row((scope.as_str(), key), record_from_row).optional()?)
}

/// `s` as a LIKE pattern matching it as a substring, literally: `%`, `_` and the escape
/// character itself lose their meaning. Used with `ESCAPE '\'`.
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
/// assembled from the filters present so that the cursor becomes a range condition on
/// the primary key (scope, id): each page starts where the last ended instead of
/// re-reading the scope from the start.
pub(crate) fn list_users(
    conn: &Connection,
    scope: &Scope,
    filter: &UserFilter,
    after: Option<Uuid>,
    limit: u32,
) -> QResult<Vec<User>> {
    let mut sql = String::from(concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = ?"));
    let mut args = vec![Value::Text(scope.as_str().to_owned())];
    if let Some(after) = after {
        sql.push_str(" AND id > ?");
        args.push(Value::Text(id(after)));
    }
    if let Some(group) = &filter.group {
        sql.push_str(" AND group_name = ?");
        args.push(Value::Text(group.clone()));
    }
    if let Some(active) = filter.active {
        sql.push_str(" AND active = ?");
        args.push(Value::Integer(active.into()));
    }
    if let Some(query) = &filter.query {
        // Case-insensitive substring: both sides go through Rust's Unicode lower-casing
        // (`hallpass_lower`, see connection.rs); the pattern is escaped so `%` and `_`
        // typed by a user match themselves. A full scan of the scope, bounded by LIMIT.
        sql.push_str(
            " AND (hallpass_lower(username) LIKE ? ESCAPE '\\' OR hallpass_lower(email) LIKE ? ESCAPE '\\')",
        );
        let pattern = like_substring(&query.to_lowercase());
        args.push(Value::Text(pattern.clone()));
        args.push(Value::Text(pattern));
    }
    sql.push_str(" ORDER BY id LIMIT ?");
    args.push(Value::Integer(limit.into()));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| user_from_row(r, 0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn update_user(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    patch: &UserPatch,
    at: OffsetDateTime,
) -> QResult<Option<User>> {
    // Read-modify-write under the transaction's write lock: nobody changes the row between.
    // The change itself is `UserPatch::apply`, the one place every store applies it.
    let Some(record) = find_user(conn, scope, &UserRef::Id(user_id))? else {
        return Ok(None);
    };
    let mut user = record.user;
    let effects = patch.apply(&mut user, at);
    let uid = id(user_id);
    let username_key = user.username.as_ref().map(Username::key);
    let email_key = user.email.as_ref().map(Email::key);
    check_unique(conn, scope.as_str(), username_key, email_key, Some(&uid))?;
    let mut stmt = conn.prepare_cached(
        "UPDATE users SET username = ?3, username_key = ?4, email = ?5, email_key = ?6, group_name = ?7, \
         extra = ?8, active = ?9, confirmation = ?10, confirmed = ?11, updated_at = ?12 \
         WHERE scope = ?1 AND id = ?2",
    )?;
    stmt.execute((
        scope.as_str(),
        &uid,
        user.username.as_ref().map(Username::as_str),
        username_key,
        user.email.as_ref().map(Email::as_str),
        email_key,
        user.group.as_str(),
        json(&user.extra)?,
        user.active,
        user.confirmation.map(Confirmation::as_str),
        user.confirmed,
        ms(at),
    ))?;
    if effects.end_sessions {
        // Deactivation ends every session, in this same transaction.
        end_sessions(conn, scope, user_id, None)?;
    }
    if effects.void_codes {
        // A new email voids every code issued before (they went to the old address).
        void_codes(conn, scope, user_id)?;
    }
    Ok(Some(user))
}

pub(crate) fn delete_user(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let uid = id(user_id);
    // The foreign keys would cascade these; deleting explicitly keeps the rule visible and
    // true even on a connection where someone turned foreign keys off.
    for sql in [
        "DELETE FROM sessions WHERE scope = ?1 AND user_id = ?2",
        "DELETE FROM codes WHERE scope = ?1 AND user_id = ?2",
        "DELETE FROM identities WHERE scope = ?1 AND user_id = ?2",
    ] {
        conn.prepare_cached(sql)?.execute((scope.as_str(), &uid))?;
    }
    let n = conn
        .prepare_cached("DELETE FROM users WHERE scope = ?1 AND id = ?2")?
        .execute((scope.as_str(), &uid))?;
    if n > 0 {
        crate::queries::outbox::insert_messages(conn, outbox)?;
    }
    Ok(n > 0)
}

/// Sets the password hash and ends every session of the user.
pub(crate) fn set_password_hash(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    hash: &str,
    at: OffsetDateTime,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let n = conn
        .prepare_cached("UPDATE users SET password_hash = ?3, updated_at = ?4 WHERE scope = ?1 AND id = ?2")?
        .execute((scope.as_str(), id(user_id), hash, ms(at)))?;
    if n == 0 {
        return Ok(false);
    }
    end_sessions(conn, scope, user_id, None)?;
    void_codes(conn, scope, user_id)?;
    crate::queries::outbox::insert_messages(conn, outbox)?;
    Ok(true)
}

/// Deletes every one-time code of the user, of every kind: a password or email change
/// voids what was issued before it, in the change's own transaction.
pub(crate) fn void_codes(conn: &Connection, scope: &Scope, user_id: Uuid) -> QResult<()> {
    conn.prepare_cached("DELETE FROM codes WHERE scope = ?1 AND user_id = ?2")?
        .execute((scope.as_str(), id(user_id)))?;
    Ok(())
}

/// Compare-and-swap of the hash; sessions stay.
pub(crate) fn rehash_password(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    old: &str,
    new: &str,
) -> QResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE users SET password_hash = ?4 WHERE scope = ?1 AND id = ?2 AND password_hash = ?3",
        )?
        .execute((scope.as_str(), id(user_id), old, new))?;
    Ok(n > 0)
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
