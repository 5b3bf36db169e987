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
//! The modules, with the same names and jobs in all three SQL backends (sqlite, postgres,
//! mysql):
//!
//! - `store` — the store type, its constructors and the `Store` implementation, which only
//!   delegates to `queries` (here: and classifies each failure through `error`);
//! - `connection` — opening: the database URL and the settings every connection gets, and
//!   why (here: sqlx's pool, its size, timeouts and idle ping, the application name);
//! - `changes` — the change channel for caches: how other processes' writes reach this
//!   one (here: `LISTEN`/`NOTIFY` and the supervised listener; no table);
//! - `queries` — the SQL of every `Store` method, one file per section;
//! - `rows` — reading rows back: every function that turns a driver row into a domain
//!   value, and the column lists they read;
//! - `codec` — how values are stored, both ways (here: ids as `uuid`, instants as bigint
//!   Unix milliseconds, JSON as `jsonb`, through the `uuid` and `jsonb` codecs the
//!   workspace's sqlx build leaves out);
//! - `error` — the one place driver errors become [`hallpass_core::StoreError`];
//! - `migrate` — the embedded migrations (`migrations/`, numbered alike on every backend)
//!   and how they are applied (here: under a transaction-level advisory lock).
//!
//! And one of this backend's own:
//!
//! - `testing` (hidden) — a database per test on the machine's server, for this crate's
//!   tests and the server's.
//!
//! Invariants: every statement filters by scope (but API keys and the sweep); every method
//! that writes more than one statement runs in one transaction, and the paths that end a
//! user's sessions (deactivation, password change, reset redemption, deletion) end them in
//! that same transaction; uniqueness is enforced by constraints, never by a check-then-
//! write; instants are stored as bigint Unix milliseconds, so they read back exactly.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod changes;
mod codec;
mod connection;
mod error;
mod migrate;
mod queries;
mod rows;
mod store;
#[doc(hidden)]
pub mod testing;

pub use connection::{ACQUIRE_TIMEOUT, MAX_CONNECTIONS};
pub use migrate::{MIGRATION_NAMES, SCHEMA_VERSION};
pub use store::PostgresStore;
