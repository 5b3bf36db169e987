//! The SQL of every `Store` method, as async functions on one connection.
//!
//! Each function takes a `&mut MySqlConnection` — a pooled connection for a read, or the
//! open transaction of `crate::store` for a write — and never begins or commits itself,
//! so a function that runs several statements is atomic as a whole when the store runs it
//! in a transaction. Statements are `&'static str` with `?` placeholders (sqlx prepares
//! and caches each one per connection); the only statement assembled at run time is the
//! user listing, from fixed fragments.
//!
//! Every statement filters by scope. Column lists are spelled once (the `*_cols!` macros)
//! next to the function that reads them back by position.
//!
//! Locking rule: a write that touches a user's rows (the user, their sessions, codes,
//! identities) locks the user's row first (`SELECT ... FOR UPDATE` or the `UPDATE` of it),
//! so transactions about one user queue on that row instead of deadlocking on its
//! children. Under READ COMMITTED a locking read sees the latest committed version, so
//! "read under lock, then write" is a safe read-modify-write.

/// The columns of a user row in the order [`users::user_from_row`] reads them; the
/// argument is a table alias prefix such as `"u."` (or `""`).
macro_rules! user_cols {
    ($p:literal) => {
        concat!(
            $p,
            "scope, ",
            $p,
            "id, ",
            $p,
            "username, ",
            $p,
            "email, ",
            $p,
            "group_name, ",
            $p,
            "extra, ",
            $p,
            "active, ",
            $p,
            "confirmation, ",
            $p,
            "confirmed, ",
            $p,
            "created_at, ",
            $p,
            "updated_at, ",
            $p,
            "last_login_at, ",
            $p,
            "password_hash"
        )
    };
}

/// The columns of a session row in the order [`sessions::session_from_row`] reads them.
macro_rules! session_cols {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "scope, ",
            $p,
            "user_id, ",
            $p,
            "created_at, ",
            $p,
            "last_seen_at, ",
            $p,
            "expires_at, ",
            $p,
            "absolute_expires_at, ",
            $p,
            "data, ",
            $p,
            "ip, ",
            $p,
            "user_agent"
        )
    };
}

pub(crate) mod admin;
pub(crate) mod bulk;
pub(crate) mod codes;
pub(crate) mod events;
pub(crate) mod identities;
pub(crate) mod keys;
pub(crate) mod sessions;
pub(crate) mod throttles;
pub(crate) mod users;
