//! # hallpass
//!
//! User accounts and login sessions for applications, in-process. Register users, log
//! them in by username, email or a linked provider, check a session on every request,
//! freshen and end it, reset passwords — with Argon2id password hashes, 256-bit session
//! tokens stored only as SHA-256, idle and absolute expiry, and a login history.
//!
//! The same core runs the `hallpass` server (HTTP API, CLI); this crate is for programs that
//! want it without a server.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hallpass::Error> {
//! use hallpass::{Hallpass, Settings, Scope, Username, Password, UserRef};
//! use hallpass::service::{NewUser, LoginRequest, Credentials};
//!
//! let hp = hallpass::open_sqlite("app.db", Settings::default()).await?;
//! let app = Scope::parse("app")?;
//! let user = hp.register(&app, NewUser {
//!     username: Some(Username::parse("alice")?),
//!     password: Some(Password::new("correct horse battery staple")?),
//!     ..Default::default()
//! }).await?;
//! let login = hp.login(&app, LoginRequest {
//!     credentials: Credentials::Password {
//!         login: UserRef::login("alice")?,
//!         password: Password::for_login("correct horse battery staple")?,
//!     },
//!     data: Default::default(),
//!     client: Default::default(),
//!     device: None,
//! }).await?;
//! let (session, who) = hp.get_session(&app, &login.token).await?;
//! assert_eq!(who.id, user.id);
//! hp.end_session(&app, &login.token).await?;
//! # let _ = session; Ok(()) }
//! ```
//!
//! Errors are [`Error`]; a failed login is [`Error::InvalidCredentials`] carrying a
//! [`CredentialFailure`] that tells a wrong password from an unknown user (the HTTP API
//! deliberately does not).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use hallpass_core::*;

/// The storage backends compiled into this build.
pub mod backends {
    #[cfg(feature = "sqlite")]
    pub use hallpass_sqlite::SqliteStore;
}

/// Opens (creating and migrating if needed) a SQLite database at `path` and returns a
/// service on it with `settings`. Needs a Tokio runtime, as every call of the service does
/// (password hashing runs on its blocking pool).
#[cfg(feature = "sqlite")]
pub async fn open_sqlite(path: impl AsRef<std::path::Path>, settings: Settings) -> Result<Hallpass> {
    let path = path.as_ref().to_owned();
    // Opening runs migrations: file I/O that must not block an async worker.
    let store = tokio::task::spawn_blocking(move || hallpass_sqlite::SqliteStore::open(path))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    Hallpass::new(std::sync::Arc::new(store), settings)
}
