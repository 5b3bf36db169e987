//! hallpass-sqlite: the embedded default storage backend of hallpass.
//!
//! [`SqliteStore`] implements [`hallpass_core::Store`] on one SQLite file through rusqlite
//! (SQLite bundled, so the binary needs no system library).
//!
//! The modules, with the same names and jobs in all three SQL backends (sqlite, postgres,
//! mysql):
//!
//! - `store` — the store type, its constructors and the `Store` implementation, which only
//!   delegates to `queries` (here: each call's arguments move into one closure run on a
//!   pooled connection);
//! - `connection` — opening: the database URL and the settings every connection gets, and
//!   why (here: the file's permissions, the pragmas, the `hallpass_lower` function);
//! - `changes` — the change channel for caches: how other processes' writes reach this
//!   one (here: a watcher of `PRAGMA data_version`; no table);
//! - `queries` — the SQL of every `Store` method, one file per section;
//! - `rows` — reading rows back: every function that turns a driver row into a domain
//!   value, and the column lists they read;
//! - `codec` — how values are stored, both ways (here: ids as hyphenated text, instants as
//!   Unix milliseconds, JSON as text, hashes as blobs);
//! - `error` — the one place driver errors become [`hallpass_core::StoreError`];
//! - `migrate` — the embedded migrations (`migrations/`, numbered alike on every backend)
//!   and how they are applied (here: tracked by `PRAGMA user_version`).
//!
//! And one of this backend's own:
//!
//! - `pool` — one writer connection behind an async mutex and a few read-only readers,
//!   every call run on tokio's blocking pool so no async worker ever waits on SQLite
//!   (the server backends use sqlx's pool instead). There is no `testing` module: a test
//!   database is a file in a temporary directory, no server to reach;
//! - [`backup`] — the SQLite half of `hallpass backup` and `hallpass restore` (a consistent
//!   copy of a live database by `VACUUM INTO`, checking a copy, making sure nobody has a
//!   database open before it is replaced).
//!
//! Invariants: every write runs in one `BEGIN IMMEDIATE` transaction on the writer, so a
//! `Store` method is all-or-nothing and never fails half-way on a lock upgrade; every
//! query names the scope; no rusqlite type crosses the public API.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backup;
mod changes;
mod codec;
mod connection;
mod error;
mod migrate;
mod pool;
mod queries;
mod rows;
mod store;

pub use connection::path_of_url;
pub use migrate::{MIGRATION_NAMES, SCHEMA_VERSION};
pub use store::SqliteStore;
