//! hallpass storage on MariaDB (10.6+, tested on 10.11) and MySQL (8.0.16+), through sqlx.
//!
//! [`MySqlStore`] implements [`hallpass_core::Store`]. The map:
//!
//! - `store` — [`MySqlStore`]: the pool, how every connection is set up, and the trait
//!   implementation, which only chooses the transaction boundaries and calls `queries`;
//! - `queries` — the SQL of every method, as async functions on one connection;
//! - `codec` — how domain values become columns and back;
//! - `error` — the one place where sqlx errors become [`hallpass_core::StoreError`]s, and
//!   the deadlock retry;
//! - `migrate` — the embedded migrations (`migrations/*.sql`) and the named lock that
//!   lets several processes migrate at once;
//! - `changes` — the change log (`hallpass_changes`) that tells other processes' caches
//!   what to drop, and the poller that reads it (MariaDB has no `LISTEN`/`NOTIFY`);
//! - [`testing`] — throw-away databases for this crate's tests and the HTTP suite.
//!
//! Invariants worth knowing before changing anything:
//!
//! - every connection runs `READ COMMITTED`, strict SQL mode, utf8mb4 (see `store`);
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
mod migrate;
mod queries;
mod store;
#[doc(hidden)]
pub mod testing;

pub use migrate::SCHEMA_VERSION;
pub use sqlx::mysql::{MySqlConnectOptions, MySqlPool};
pub use store::MySqlStore;
