//! hallpass-postgres: hallpass storage on PostgreSQL, through sqlx (async, pooled).
//!
//! [`PostgresStore`] implements [`hallpass_core::Store`] and passes the shared conformance
//! suite (`hallpass-store-tests`). Use it as
//!
//! ```no_run
//! # async fn run() -> Result<(), hallpass_core::StoreError> {
//! let store = hallpass_postgres::PostgresStore::connect("postgres://hallpass@localhost/hallpass").await?;
//! store.migrate().await?; // connect does not migrate
//! # Ok(()) }
//! ```
//!
//! The map:
//!
//! - `store` — the pool, `connect` / `migrate`, and the `Store` implementation, which
//!   only delegates;
//! - `queries` — the SQL of every method and its transaction boundaries;
//! - `rows` — how domain values are stored and read back (column lists, decoding);
//! - `types` — the `uuid` and `jsonb` codecs the workspace's sqlx build leaves out;
//! - `error` — the one mapping from sqlx errors to `StoreError`;
//! - `migrate` and `migrations/` — the embedded schema and how concurrent migrations are
//!   ordered (a transaction-level advisory lock);
//! - `testing` (hidden) — a database per test, for this crate's tests and the server's.
//!
//! Invariants: every statement filters by scope (but API keys and the sweep); every method
//! that writes more than one statement runs in one transaction, and the paths that end a
//! user's sessions (deactivation, password change, reset redemption, deletion) end them in
//! that same transaction; uniqueness is enforced by constraints, never by a check-then-
//! write; instants are stored as bigint Unix milliseconds, so they read back exactly.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod migrate;
mod queries;
mod rows;
mod store;
#[doc(hidden)]
pub mod testing;
mod types;

pub use migrate::SCHEMA_VERSION;
pub use store::{ACQUIRE_TIMEOUT, MAX_CONNECTIONS, PostgresStore};
