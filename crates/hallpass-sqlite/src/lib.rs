//! hallpass-sqlite: the embedded default storage backend of hallpass.
//!
//! [`SqliteStore`] implements [`hallpass_core::Store`] on one SQLite file through rusqlite
//! (SQLite bundled, so the binary needs no system library). The crate owns:
//!
//! - `store`: `SqliteStore` itself — opening a file or a `sqlite://` URL, and the trait
//!   implementation, which moves each call's arguments into one closure and runs it on a
//!   pooled connection;
//! - `pool`: one writer connection behind an async mutex and a few read-only readers, every
//!   call run on tokio's blocking pool so no async worker ever waits on SQLite;
//! - `connection`: how a connection is opened and configured (the pragmas, and why);
//! - `migrate`: the embedded SQL migrations under `migrations/`, tracked by
//!   `PRAGMA user_version`;
//! - `queries`: the SQL of every `Store` method as plain synchronous functions on a
//!   connection or transaction;
//! - `codec`: how domain values become columns and back (ids as hyphenated text,
//!   instants as Unix milliseconds, JSON as text, hashes as blobs);
//! - `error`: the one place rusqlite errors become [`hallpass_core::StoreError`];
//! - [`backup`]: the SQLite half of `hallpass backup` and `hallpass restore` (a consistent
//!   copy of a live database by `VACUUM INTO`, checking a copy, making sure nobody has a
//!   database open before it is replaced).
//!
//! Invariants: every write runs in one `BEGIN IMMEDIATE` transaction on the writer, so a
//! `Store` method is all-or-nothing and never fails half-way on a lock upgrade; every
//! query names the scope; no rusqlite type crosses the public API.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backup;
mod codec;
mod connection;
mod error;
mod migrate;
mod pool;
mod queries;
mod store;

pub use migrate::SCHEMA_VERSION;
pub use store::{SqliteStore, path_of_url};
