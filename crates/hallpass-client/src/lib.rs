//! `hallpass-client`: the Rust client of hallpass's HTTP API.
//!
//! - [`Client`]: every operation of the API ([`operations::OPERATIONS`]), typed requests and
//!   answers, errors as [`Error`] with the problem `code` as the [`ProblemCode`] enum,
//!   timeouts, retries only where safe.
//! - [`Sessions`]: a cache of checked sessions (bounded size and age) kept true by the
//!   change stream `GET /v1/changes`; while the stream is down every check asks the server.
//! - `Authenticated` (feature `axum`): an axum extractor yielding a request's session and
//!   user, or a 401.
//!
//! ```no_run
//! # async fn run() -> Result<(), hallpass_client::Error> {
//! use hallpass_client::{CacheConfig, Client, LoginRequest, Sessions};
//! let hp = Client::new("http://127.0.0.1:8080", "hp_...")?;
//! let login = hp.login(&LoginRequest::password("ada", "analytical engine 1843")).await?;
//! let token = login.session().expect("no second factor").token;
//! let sessions = Sessions::start(hp, CacheConfig::default());
//! let who = sessions.check(&token).await?;
//! println!("{}", who.user.id);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
pub mod changes;
mod client;
mod error;
#[cfg(feature = "axum")]
mod extract;
pub mod operations;
pub mod types;

pub use cache::{CacheConfig, CacheStats, Sessions};
pub use changes::{Change, ChangeEvent, ChangeStream};
pub use client::{Client, ClientBuilder, SESSION_HEADER, http_builder};
pub use error::{Error, Problem, ProblemCode};
#[cfg(feature = "axum")]
pub use extract::{Authenticated, Rejection, token_from};
pub use types::*;
