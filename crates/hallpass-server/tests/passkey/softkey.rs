//! A software authenticator for tests that need a passkey without testing passkeys
//! themselves (`tests/webhooks.rs`, `tests/admin.rs`): 1Password's `passkey` crates acting
//! as a browser on an origin, with a user who always says yes. (`tests/passkeys.rs` keeps
//! its own copy, with the cloned-authenticator cases.)

#![allow(dead_code)]

use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey::client::{Client, DefaultClientData};
use passkey::crypto::rust_crypto::RustCryptoBackend;
use passkey::types::Passkey;
use passkey::types::ctap2::{Aaguid, Ctap2Error};
use passkey::types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
use serde_json::Value;
use url::Url;

/// The relying party of scope `app` in these tests: `example.com`, pages on this origin.
pub const ORIGIN: &str = "https://app.example.com";

/// Scope `app`'s relying party settings (`example.com`, pages on [`ORIGIN`]).
pub fn relying_party() -> hallpass_core::RelyingParty {
    hallpass_core::RelyingParty {
        rp_id: "example.com".into(),
        rp_name: "Example".into(),
        origins: vec![ORIGIN.into()],
    }
}

/// A user who says yes, and is verified, every time.
struct Yes;

#[async_trait::async_trait]
impl UserValidationMethod for Yes {
    type PasskeyItem = Passkey;
    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck { presence, verification })
    }
    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
    fn is_presence_enabled(&self) -> bool {
        true
    }
}

/// A software authenticator holding one credential.
#[derive(Clone, Default)]
pub struct SoftKey {
    store: Option<Passkey>,
}

impl SoftKey {
    /// Registers a credential for `options` (the `options` of `register/start`) as a
    /// browser on [`ORIGIN`] would: the `PublicKeyCredential` as JSON.
    pub async fn register(&mut self, options: &Value) -> Value {
        let mut authenticator =
            Authenticator::new(Aaguid::new_empty(), self.store.take(), Yes, RustCryptoBackend);
        authenticator.set_make_credentials_with_signature_counter(true);
        let mut client = Client::new(authenticator);
        let request: CredentialCreationOptions =
            serde_json::from_value(browser_options(options)).expect("creation options");
        let done = client.register(Url::parse(ORIGIN).expect("origin"), request, DefaultClientData).await;
        self.store = client.authenticator().store().clone();
        serde_json::to_value(done.expect("the authenticator registers")).expect("JSON")
    }

    /// Signs `options` (a sign-in's or an MFA challenge's) as a browser on [`ORIGIN`].
    pub async fn assert(&mut self, options: &Value) -> Value {
        let authenticator =
            Authenticator::new(Aaguid::new_empty(), self.store.take(), Yes, RustCryptoBackend);
        let mut client = Client::new(authenticator);
        let request: CredentialRequestOptions =
            serde_json::from_value(browser_options(options)).expect("request options");
        let done = client.authenticate(Url::parse(ORIGIN).expect("origin"), request, DefaultClientData).await;
        self.store = client.authenticator().store().clone();
        serde_json::to_value(done.expect("the authenticator signs")).expect("JSON")
    }
}

/// The options as a browser reads them: it ignores extensions it does not know.
fn browser_options(options: &Value) -> Value {
    let mut options = options.clone();
    if let Some(pk) = options.get_mut("publicKey").and_then(Value::as_object_mut) {
        pk.remove("extensions");
        pk.remove("hints");
        pk.remove("attestationFormats");
    }
    options
}
