//! hallpass storage on MariaDB (10.6+, tested on 10.11) and MySQL (8.0.16+), through sqlx.
//!
//! [`MySqlStore`] implements [`hallpass_core::Store`].
//!
//! The modules, with the same names and jobs in all three SQL backends (sqlite, postgres,
//! mysql):
//!
//! - `store` — the store type, its constructors and the `Store` implementation, which only
//!   delegates to `queries` (here: choosing each method's transaction boundary, with the
//!   deadlock retry of `error`);
//! - `connection` — opening: the database URL and the settings every connection gets, and
//!   why (here: sqlx's pool, strict SQL mode, utf8mb4, READ COMMITTED, lock wait timeout);
//! - `changes` — the change channel for caches: how other processes' writes reach this
//!   one (here: the `hallpass_changes` log table and its poller, since MariaDB has no
//!   `LISTEN`/`NOTIFY`);
//! - `queries` — the SQL of every `Store` method, one file per section;
//! - `rows` — reading rows back: every function that turns a driver row into a domain
//!   value, and the column lists they read;
//! - `codec` — how values are stored, both ways (here: ids as CHAR(36) text, instants as
//!   BIGINT Unix milliseconds, JSON as LONGTEXT, exact-match text as VARBINARY);
//! - `error` — the one place driver errors become [`hallpass_core::StoreError`] (here:
//!   and the deadlock retry);
//! - `migrate` — the embedded migrations (`migrations/`, numbered alike on every backend)
//!   and how they are applied (here: under a `GET_LOCK` named lock, each file re-runnable).
//!
//! And one of this backend's own:
//!
//! - [`testing`] (hidden) — a database per test on the machine's server, for this crate's
//!   tests and the HTTP suite.
//!
//! Invariants worth knowing before changing anything:
//!
//! - every connection runs `READ COMMITTED`, strict SQL mode, utf8mb4 (see `connection`);
//! - every method is one transaction (or one statement); every statement filters by scope;
//! - a write transaction that touches a user's rows locks the user's row first, so
//!   transactions about one user queue instead of deadlocking; deadlocks that still happen
//!   are retried a few times before they surface as `Unavailable`;
//! - uniqueness is enforced by unique indexes alone, and a duplicate-key error is mapped
//!   to `UsernameTaken` / `EmailTaken` / `IdentityTaken` by the index it names.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod error;
mod changes;
mod codec;
mod connection;
mod migrate;
mod queries;
mod rows;
mod store;
#[doc(hidden)]
pub mod testing;

pub use migrate::{MIGRATION_NAMES, SCHEMA_VERSION};
pub use sqlx::mysql::{MySqlConnectOptions, MySqlPool};
pub use store::MySqlStore;
