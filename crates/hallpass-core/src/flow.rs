//! Flows: short-lived, single-use records that carry a multi-step exchange across requests
//! (OIDC `state`, the one-time exchange codes, MFA challenges and passkey ceremonies).
//!
//! A flow is created with a kind, a scope, a JSON payload and a lifetime, and answered by
//! an opaque random handle ([`FlowHandle`], `hpf_` + 256 random bits). Storage keeps only
//! the handle's SHA-256 ([`FlowRecord::hash`]), so a database read discloses no live handle.
//!
//! Invariants every store keeps ([`crate::Store::take_flow`], tested by the conformance
//! suite on every backend):
//! - **Single use.** Taking a flow removes it in the same atomic step that reads it: of any
//!   number of concurrent takes of one handle, exactly one gets the record.
//! - **Expired is gone.** A take at or after `expires_at` gets nothing (and the sweeper
//!   removes the row later).
//! - **Kind and scope bind.** A take names the kind, and optionally the scope it expects; a
//!   handle of another kind or scope is "not found" and stays untouched, so a key of scope B
//!   cannot burn scope A's code.

use crate::secret::TokenHash;
use crate::types::Scope;
use std::fmt;
use time::OffsetDateTime;

pub use crate::secret::FlowHandle;

/// What a flow is for. Stored as its text; a kind unknown to this build never matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowKind {
    /// An OIDC/OAuth sign-in between `start` and the provider's callback (the handle is
    /// the `state` parameter).
    OidcState,
    /// The one-time code the callback hands the backend, redeemed by `exchange`.
    OidcCode,
    /// A login whose first factor was right, waiting for its second (see [`crate::mfa`]).
    MfaChallenge,
    /// A passkey registration between its start and finish (see [`crate::passkey`]).
    PasskeyRegistration,
    /// A passkey sign-in between its start and finish (see [`crate::passkey`]).
    PasskeyLogin,
}

impl FlowKind {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::OidcState => "oidc_state",
            FlowKind::OidcCode => "oidc_code",
            FlowKind::MfaChallenge => "mfa_challenge",
            FlowKind::PasskeyRegistration => "passkey_registration",
            FlowKind::PasskeyLogin => "passkey_login",
        }
    }
    /// The kind of a stored text; `None` for a kind this build does not know.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "oidc_state" => Some(FlowKind::OidcState),
            "oidc_code" => Some(FlowKind::OidcCode),
            "mfa_challenge" => Some(FlowKind::MfaChallenge),
            "passkey_registration" => Some(FlowKind::PasskeyRegistration),
            "passkey_login" => Some(FlowKind::PasskeyLogin),
            _ => None,
        }
    }
}

impl fmt::Display for FlowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A flow as storage keeps it.
#[derive(Clone, PartialEq)]
pub struct FlowRecord {
    /// SHA-256 of the handle: the key.
    pub hash: TokenHash,
    /// The scope the flow belongs to.
    pub scope: Scope,
    /// What it is for.
    pub kind: FlowKind,
    /// The flow's own data (may hold secrets such as a PKCE verifier or provider tokens:
    /// never logged, see `Debug`).
    pub payload: serde_json::Value,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it stops being takeable.
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for FlowRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowRecord")
            .field("scope", &self.scope)
            .field("kind", &self.kind)
            .field("payload", &"***")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
