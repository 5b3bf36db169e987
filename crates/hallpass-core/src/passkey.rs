//! Passkeys (WebAuthn credentials) as storage keeps them, and the relying party of a scope.
//!
//! - A passkey is registered by a ceremony of two calls (start, finish) and used by another
//!   (start, finish); between the calls the ceremony's state waits in a flow
//!   ([`crate::flow`], kinds [`crate::FlowKind::PasskeyRegistration`] and
//!   [`crate::FlowKind::PasskeyLogin`]), so any process can finish what another started,
//!   and a challenge is answered once (taking a flow removes it).
//! - The credential (public key, signature counter, backup flags) is kept as webauthn-rs
//!   serialises it ([`PasskeyRecord::credential`]); the counter and backup flags are also
//!   columns, rewritten after every use, so operators can read them.
//! - A signature counter that does not move forward (a non-zero counter at or below the
//!   stored one) means two copies of the private key exist (a cloned authenticator): the
//!   assertion is refused and recorded with outcome [`crate::Outcome::PasskeyCloned`].
//! - The user handle of every passkey is the user's id, so a discoverable (usernameless)
//!   sign-in finds the user from the assertion alone.

use crate::types::Scope;
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

/// The longest passkey name, in characters.
pub const PASSKEY_NAME_MAX: usize = 100;
/// How long a registration or sign-in ceremony lives.
pub const CEREMONY_TTL: time::Duration = time::Duration::minutes(5);

/// The WebAuthn relying party of a scope (`[scopes.NAME.webauthn]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// The relying party id: the registrable domain the credentials are bound to
    /// (`example.com`).
    pub rp_id: String,
    /// The name authenticators show.
    pub rp_name: String,
    /// The web origins the ceremonies may run on (`https://app.example.com`); each must be
    /// the rp id or a subdomain of it.
    pub origins: Vec<String>,
    /// Whether an origin on any port matches (the admin page's `http://localhost` when no
    /// `public_url` says where it is served).
    pub any_port: bool,
}

impl RelyingParty {
    /// Whether `host` (lowercase, no port) is the rp id or a subdomain of it: the hosts
    /// whose pages may use this relying party's passkeys.
    pub fn is_own_host(&self, host: &str) -> bool {
        host == self.rp_id || host.strip_suffix(&self.rp_id).is_some_and(|sub| sub.ends_with('.'))
    }

    /// The webauthn-rs relying party, or what is wrong with the settings.
    pub fn build(&self) -> Result<webauthn_rs::Webauthn, String> {
        use webauthn_rs::prelude::Url;
        if self.rp_id.is_empty() {
            return Err("rp_id is empty".into());
        }
        if self.rp_name.is_empty() {
            return Err("rp_name is empty".into());
        }
        let origins: Vec<Url> = self
            .origins
            .iter()
            .map(|o| Url::parse(o).map_err(|e| format!("origin `{o}` is not a URL: {e}")))
            .collect::<Result<_, _>>()?;
        let Some((first, rest)) = origins.split_first() else {
            return Err("origins is empty: list the web origins the sign-in pages run on".into());
        };
        for origin in &origins {
            if !self.is_own_host(origin.host_str().unwrap_or_default()) {
                return Err(format!(
                    "origin `{origin}` is not on rp_id `{}` (nor a subdomain of it)",
                    self.rp_id
                ));
            }
        }
        let mut builder = webauthn_rs::WebauthnBuilder::new(&self.rp_id, first)
            .map_err(|e| format!("rp_id `{}` does not fit origin `{first}`: {e}", self.rp_id))?
            .rp_name(&self.rp_name)
            .allow_any_port(self.any_port);
        for origin in rest {
            builder = builder.append_allowed_origin(origin);
        }
        builder.build().map_err(|e| format!("invalid relying party: {e}"))
    }
}

/// A user's passkey as storage keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// Its id (the API's `{id}`).
    pub id: Uuid,
    /// The scope.
    pub scope: Scope,
    /// Whose it is.
    pub user_id: Uuid,
    /// The WebAuthn credential id (unique in the scope).
    pub credential_id: Vec<u8>,
    /// The name the user gave it.
    pub name: String,
    /// The credential as webauthn-rs serialises its `Passkey` (JSON; a public key, no
    /// secret).
    pub credential: String,
    /// The signature counter after the last use.
    pub counter: u32,
    /// Whether the credential may be synchronised to other devices.
    pub backup_eligible: bool,
    /// Whether it is synchronised now.
    pub backup_state: bool,
    /// When it was registered.
    pub created_at: OffsetDateTime,
    /// When it last signed in.
    pub last_used_at: Option<OffsetDateTime>,
}

impl fmt::Debug for PasskeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasskeyRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("counter", &self.counter)
            .finish()
    }
}

/// What one use of a passkey changes in its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyUse {
    /// The credential after the use (webauthn-rs's `Passkey`, JSON).
    pub credential: String,
    /// The new signature counter.
    pub counter: u32,
    /// The backup eligibility the authenticator reported.
    pub backup_eligible: bool,
    /// The backup state the authenticator reported.
    pub backup_state: bool,
    /// When.
    pub at: OffsetDateTime,
}

/// A passkey's name as given: trimmed, 1 to [`PASSKEY_NAME_MAX`] characters, no control
/// characters.
pub fn passkey_name(name: &str) -> Result<String, crate::types::InvalidInput> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > PASSKEY_NAME_MAX || name.chars().any(char::is_control) {
        return Err(crate::types::InvalidInput::new(
            "name",
            format!("a passkey name has 1 to {PASSKEY_NAME_MAX} characters, none of them control characters"),
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(origins: &[&str]) -> RelyingParty {
        RelyingParty {
            rp_id: "example.com".into(),
            rp_name: "Example".into(),
            origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            any_port: false,
        }
    }

    #[test]
    fn relying_party_checks_its_origins() {
        assert!(rp(&["https://example.com", "https://app.example.com"]).build().is_ok());
        assert!(rp(&[]).build().unwrap_err().contains("origins is empty"));
        assert!(rp(&["https://example.org"]).build().unwrap_err().contains("not on rp_id"));
        assert!(rp(&["https://badexample.com"]).build().unwrap_err().contains("not on rp_id"));
        assert!(rp(&["not a url"]).build().unwrap_err().contains("not a URL"));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(passkey_name("  Laptop ").ok().as_deref(), Some("Laptop"));
        assert!(passkey_name("").is_err());
        assert!(passkey_name("a\nb").is_err());
        assert!(passkey_name(&"x".repeat(PASSKEY_NAME_MAX + 1)).is_err());
    }
}
