//! A software authenticator for the tests (`tests/passkeys.rs`, `tests/webhooks.rs`):
//! 1Password's `passkey` crates acting as a browser on an origin, with a user who always
//! says yes. Cloning a [`SoftKey`] copies its private key: a cloned authenticator.

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
        any_port: false,
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

/// A software authenticator holding one credential, with a signature counter.
#[derive(Clone, Default)]
pub struct SoftKey {
    pub store: Option<Passkey>,
}

impl SoftKey {
    /// Registers a credential for `options` (the `options` of `register/start`) as a
    /// browser on [`ORIGIN`] would: the `PublicKeyCredential` as JSON.
    pub async fn register(&mut self, options: &Value) -> Value {
        self.register_at(ORIGIN, options).await.expect("the authenticator registers")
    }

    /// Signs `options` (a sign-in's or an MFA challenge's) as a browser on [`ORIGIN`].
    pub async fn assert(&mut self, options: &Value) -> Value {
        self.assert_at(ORIGIN, options).await.expect("the authenticator signs")
    }

    /// Registers as a browser on `origin` would; the `PublicKeyCredential` as JSON, or why
    /// the client refused.
    pub async fn register_at(&mut self, origin: &str, options: &Value) -> Result<Value, String> {
        let mut authenticator =
            Authenticator::new(Aaguid::new_empty(), self.store.take(), Yes, RustCryptoBackend);
        authenticator.set_make_credentials_with_signature_counter(true);
        let mut client = Client::new(authenticator);
        let request: CredentialCreationOptions =
            serde_json::from_value(browser_options(options)).map_err(|e| format!("options: {e}"))?;
        let origin = Url::parse(origin).map_err(|e| format!("origin: {e}"))?;
        let done = client.register(origin, request, DefaultClientData).await;
        self.store = client.authenticator().store().clone();
        let created = done.map_err(|e| format!("{e:?}"))?;
        serde_json::to_value(created).map_err(|e| e.to_string())
    }

    /// Signs `options` as a browser on `origin` would.
    pub async fn assert_at(&mut self, origin: &str, options: &Value) -> Result<Value, String> {
        let authenticator =
            Authenticator::new(Aaguid::new_empty(), self.store.take(), Yes, RustCryptoBackend);
        let mut client = Client::new(authenticator);
        let request: CredentialRequestOptions =
            serde_json::from_value(browser_options(options)).map_err(|e| format!("options: {e}"))?;
        let origin = Url::parse(origin).map_err(|e| format!("origin: {e}"))?;
        let done = client.authenticate(origin, request, DefaultClientData).await;
        self.store = client.authenticator().store().clone();
        let asserted = done.map_err(|e| format!("{e:?}"))?;
        serde_json::to_value(asserted).map_err(|e| e.to_string())
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
