//! The SQL of every `Store` method, as async functions on one connection.
//!
//! Each function takes a `&mut MySqlConnection` — a pooled connection for a read, or the
//! open transaction of `crate::store` for a write — and never begins or commits itself,
//! so a function that runs several statements is atomic as a whole when the store runs it
//! in a transaction. Statements are `&'static str` with `?` placeholders (sqlx prepares
//! and caches each one per connection); the only statement assembled at run time is the
//! user listing, from fixed fragments.
//!
//! Every statement filters by scope. Column lists are spelled once (the `*_cols!` macros,
//! in `crate::rows`) next to the function that reads them back by position.
//!
//! Locking rule: a write that touches a user's rows (the user, their sessions, codes,
//! identities) locks the user's row first (`SELECT ... FOR UPDATE` or the `UPDATE` of it),
//! so transactions about one user queue on that row instead of deadlocking on its
//! children. Under READ COMMITTED a locking read sees the latest committed version, so
//! "read under lock, then write" is a safe read-modify-write.

pub(crate) mod admin;
pub(crate) mod bulk;
pub(crate) mod codes;
pub(crate) mod events;
pub(crate) mod flows;
pub(crate) mod identities;
pub(crate) mod keys;
pub(crate) mod mfa;
pub(crate) mod outbox;
pub(crate) mod passkeys;
pub(crate) mod sessions;
pub(crate) mod throttles;
pub(crate) mod users;
pub(crate) mod webhooks;
