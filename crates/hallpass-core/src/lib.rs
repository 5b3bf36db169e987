//! hallpass-core: the domain of hallpass.
//!
//! It owns the typed inputs ([`types`]), secrets and their hashes ([`secret`]), the records
//! the service hands out ([`model`]), the changes every store applies alike ([`patch`]), the storage trait every backend implements
//! ([`store`]), password hashing on a bounded pool ([`password`]), the time seam
//! ([`clock`]), per-scope settings ([`settings`]) and the service itself ([`service`]).
//!
//! It performs no I/O of its own, knows nothing of HTTP or SQL, and is tested without a
//! database through the in-memory fake in the conformance suite.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod cache;
pub mod clock;
pub mod error;
pub mod feed;
pub mod flow;
pub mod memory;
pub mod mfa;
pub mod model;
pub mod observed;
pub mod outbox;
pub mod passkey;
pub mod password;
pub mod patch;
pub mod secret;
pub mod server_secret;
pub mod service;
pub mod settings;
pub mod store;
pub mod types;
pub mod webhook;

pub use cache::{CacheMode, CacheSettings};
pub use clock::{Clock, FakeClock, SystemClock};
pub use error::{CredentialFailure, Error, Result};
pub use flow::{FlowHandle, FlowKind, FlowRecord};
pub use memory::MemoryStore;
pub use mfa::{FactorChange, MfaState, TotpRecord};
pub use model::*;
pub use outbox::{Enqueue, OutboxClaim, OutboxKind, OutboxMessage, OutboxState, OutboxStats, OutboxUpdate};
pub use passkey::{PasskeyRecord, PasskeyUse, RelyingParty};
pub use password::{HashCeiling, HashParams, PasswordHasher};
pub use secret::{ApiKeySecret, Code, DeviceToken, SessionToken, TokenHash};
pub use server_secret::ServerSecret;
pub use service::Hallpass;
pub use settings::{KeyCall, Limits, ScopeSettings, Settings, ThrottleSettings};
pub use store::{
    Change, CodeRequest, CodeRequestOutcome, LoginStored, Store, StoreError, ThrottleState, ThrottleUpdate,
};
pub use types::*;
pub use webhook::{EventType, WebhookEndpoint};
