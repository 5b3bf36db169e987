//! Passkeys (see [`crate::passkey`]): registration, list, rename and removal, passwordless
//! sign-in, and the passkey answer to an MFA challenge.
//!
//! Every ceremony is a flow: `start` stores webauthn-rs's state (serialised, the
//! `danger-allow-state-serialisation` feature) under a fresh handle and answers the options
//! for the browser; `finish` takes the flow (single use, whichever process answers) and
//! verifies the authenticator's answer against it. Enrolment depends on no policy; adding
//! or removing a passkey ends the user's other sessions, in the store's transaction.

use super::Hallpass;
use super::mfa::{mfa_disabled, passkey_event};
use crate::error::{Error, Result};
use crate::flow::{FlowHandle, FlowKind};
use crate::model::*;
use crate::passkey::*;
use crate::secret::DeviceToken;
use crate::service::LoginResult;
use crate::store::Change;
use crate::types::*;
use crate::webhook::{Event, EventType};
use time::OffsetDateTime;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, WebauthnError,
};

/// A ceremony started: the flow to finish it with and the options for the browser
/// (`navigator.credentials.create` or `.get`).
#[derive(Debug, Clone)]
pub struct PasskeyCeremony {
    /// The handle to finish with (single use).
    pub flow: FlowHandle,
    /// The options, as JSON (`{"publicKey": {...}}`).
    pub options: serde_json::Value,
    /// When the ceremony ends.
    pub expires_at: OffsetDateTime,
}

/// A registration's flow payload.
#[derive(serde::Serialize, serde::Deserialize)]
struct Registering {
    user_id: Uuid,
    state: PasskeyRegistration,
}

/// A sign-in's flow payload: discoverable (any user's passkey) or for one user.
#[derive(serde::Serialize, serde::Deserialize)]
enum SigningIn {
    Discoverable(DiscoverableAuthentication),
    User { user_id: Uuid, state: PasskeyAuthentication },
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// What the stored credential says of its counter and backup flags (webauthn-rs keeps
/// them private; its serialisation is `{"cred": {"counter", "backup_eligible",
/// "backup_state", ...}}`).
fn flags(passkey: &Passkey) -> Result<(String, u32, bool, bool)> {
    let value = serde_json::to_value(passkey).map_err(internal)?;
    let cred = &value["cred"];
    let counter = cred["counter"].as_u64().and_then(|c| u32::try_from(c).ok()).unwrap_or(0);
    let be = cred["backup_eligible"].as_bool().unwrap_or(false);
    let bs = cred["backup_state"].as_bool().unwrap_or(false);
    Ok((value.to_string(), counter, be, bs))
}

/// The options as the browser takes them: webauthn-rs marks discoverable requests for
/// conditional mediation (autofill); whether to use it is the page's choice.
fn options(value: impl serde::Serialize) -> Result<serde_json::Value> {
    let mut value = serde_json::to_value(value).map_err(internal)?;
    if let Some(map) = value.as_object_mut() {
        map.remove("mediation");
    }
    Ok(value)
}

/// How a verified or refused assertion ends.
pub(super) enum Assertion {
    /// It verified; the passkey's use is recorded.
    Good,
    /// It did not verify.
    Refused(Outcome),
}

impl Hallpass {
    /// The scope's relying party: [`Error::PasskeysNotConfigured`] without one.
    fn relying_party(&self, scope: &Scope) -> Result<webauthn_rs::Webauthn> {
        let rp = self.scope_settings(scope).webauthn.as_ref().ok_or(Error::PasskeysNotConfigured)?;
        rp.build().map_err(Error::Internal)
    }

    /// Starts registering a passkey for the user: the options for
    /// `navigator.credentials.create` (a discoverable credential with user verification;
    /// the user's passkeys are excluded) and the flow to finish with.
    pub async fn start_passkey_registration(&self, scope: &Scope, by: &UserRef) -> Result<PasskeyCeremony> {
        let webauthn = self.relying_party(scope)?;
        let user = self.resolve(scope, by).await?.user;
        let existing = self.store.list_passkeys(scope, user.id).await?;
        let exclude: Vec<_> = existing
            .iter()
            .filter_map(|p| serde_json::from_str::<Passkey>(&p.credential).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let name = user
            .username
            .as_ref()
            .map(|u| u.as_str().to_owned())
            .or_else(|| user.email.as_ref().map(|e| e.as_str().to_owned()))
            .unwrap_or_else(|| user.id.to_string());
        let (ccr, state) = webauthn
            .start_passkey_registration(user.id, &name, &name, (!exclude.is_empty()).then_some(exclude))
            .map_err(internal)?;
        let mut opts = options(ccr)?;
        // A passkey that signs in without a username must be discoverable (resident).
        if let Some(sel) =
            opts.pointer_mut("/publicKey/authenticatorSelection").and_then(|v| v.as_object_mut())
        {
            sel.insert("residentKey".into(), "required".into());
            sel.insert("requireResidentKey".into(), true.into());
        }
        let payload = serde_json::to_value(Registering { user_id: user.id, state }).map_err(internal)?;
        let (flow, expires_at) =
            self.create_flow(scope, FlowKind::PasskeyRegistration, payload, CEREMONY_TTL).await?;
        Ok(PasskeyCeremony { flow, options: opts, expires_at })
    }

    /// Finishes a registration with the authenticator's answer (the JSON of the
    /// `PublicKeyCredential`): stores the passkey and ends the user's other sessions (all
    /// but `keep_session`). [`Error::InvalidFlow`] for an unknown, used or expired flow
    /// (or one of another user); [`Error::PasskeyRegistrationFailed`] when the answer does
    /// not verify.
    pub async fn finish_passkey_registration(
        &self,
        scope: &Scope,
        by: &UserRef,
        flow: &FlowHandle,
        credential: serde_json::Value,
        name: Option<&str>,
        keep_session: Option<Uuid>,
    ) -> Result<PasskeyRecord> {
        let name = match name {
            Some(n) => passkey_name(n)?,
            None => "Passkey".to_owned(),
        };
        let webauthn = self.relying_party(scope)?;
        let user = self.resolve(scope, by).await?.user;
        let had_factor = self.store.mfa_state(scope, user.id).await?.enabled();
        let record = self
            .take_flow(Some(scope), FlowKind::PasskeyRegistration, flow)
            .await?
            .ok_or(Error::InvalidFlow)?;
        let pending: Registering = serde_json::from_value(record.payload).map_err(internal)?;
        if pending.user_id != user.id {
            return Err(Error::InvalidFlow);
        }
        let credential: RegisterPublicKeyCredential = serde_json::from_value(credential)
            .map_err(|e| Error::invalid("credential", format!("not a WebAuthn registration: {e}")))?;
        let passkey = webauthn
            .finish_passkey_registration(&credential, &pending.state)
            .map_err(|e| Error::PasskeyRegistrationFailed(e.to_string()))?;
        let (stored, counter, backup_eligible, backup_state) = flags(&passkey)?;
        let record = PasskeyRecord {
            id: Uuid::now_v7(),
            scope: scope.clone(),
            user_id: user.id,
            credential_id: AsRef::<[u8]>::as_ref(passkey.cred_id()).to_vec(),
            name,
            credential: stored,
            counter,
            backup_eligible,
            backup_state,
            created_at: self.now(),
            last_used_at: None,
        };
        let now = record.created_at;
        let mut rows =
            self.webhook_rows(scope, passkey_event(EventType::PasskeyAdded, now, &user, &record)).await;
        if !had_factor {
            let event = Event::new(EventType::MfaEnabled, now, Some(user.id))
                .with_user(&user)
                .with_str("method", Some("passkey"));
            rows.extend(self.webhook_rows(scope, event).await);
        }
        if !self.store.insert_passkey(&record, keep_session, &rows).await? {
            return Err(Error::PasskeyTaken);
        }
        self.webhooks_queued(&rows);
        self.changed(Change::user(scope, user.id)).await;
        Ok(record)
    }

    /// The user's passkeys, oldest first (no secret: a passkey row holds a public key).
    pub async fn list_passkeys(&self, scope: &Scope, by: &UserRef) -> Result<Vec<PasskeyRecord>> {
        let user = self.resolve(scope, by).await?.user;
        Ok(self.store.list_passkeys(scope, user.id).await?)
    }

    /// Renames the user's passkey.
    pub async fn rename_passkey(
        &self,
        scope: &Scope,
        by: &UserRef,
        id: Uuid,
        name: &str,
    ) -> Result<PasskeyRecord> {
        let name = passkey_name(name)?;
        let user = self.resolve(scope, by).await?.user;
        if !self.store.rename_passkey(scope, user.id, id, &name).await? {
            return Err(Error::PasskeyNotFound);
        }
        let list = self.store.list_passkeys(scope, user.id).await?;
        list.into_iter().find(|p| p.id == id).ok_or(Error::PasskeyNotFound)
    }

    /// Removes the user's passkey and ends the user's other sessions (all but
    /// `keep_session`). [`Error::LastLoginMethod`] when it is the user's last way to log
    /// in (no password, no provider link, no other passkey).
    pub async fn delete_passkey(
        &self,
        scope: &Scope,
        by: &UserRef,
        id: Uuid,
        keep_session: Option<Uuid>,
    ) -> Result<()> {
        let resolved = self.resolve(scope, by).await?;
        let user = resolved.user;
        let passkeys = self.store.list_passkeys(scope, user.id).await?;
        if !passkeys.iter().any(|p| p.id == id) {
            return Err(Error::PasskeyNotFound);
        }
        if passkeys.len() == 1
            && resolved.password_hash.is_none()
            && self.store.list_identities(scope, user.id).await?.is_empty()
        {
            return Err(Error::LastLoginMethod);
        }
        let now = self.now();
        let mut rows = Vec::new();
        if let Some(p) = passkeys.iter().find(|p| p.id == id) {
            rows = self.webhook_rows(scope, passkey_event(EventType::PasskeyRemoved, now, &user, p)).await;
        }
        if passkeys.len() == 1 && !self.store.mfa_state(scope, user.id).await?.totp_confirmed() {
            rows.extend(self.webhook_rows(scope, mfa_disabled(now, &user, "passkey")).await);
        }
        if !self.store.delete_passkey(scope, user.id, id, keep_session, &rows).await? {
            return Err(Error::PasskeyNotFound);
        }
        self.webhooks_queued(&rows);
        self.changed(Change::user(scope, user.id)).await;
        Ok(())
    }

    /// Starts a passwordless sign-in: for `login` (a username or email), the options name
    /// that user's passkeys; without one (or for a login that names nobody, or a user
    /// without passkeys, so the answer tells nothing of who exists) any discoverable
    /// passkey of the scope may answer.
    pub async fn start_passkey_login(&self, scope: &Scope, login: Option<&str>) -> Result<PasskeyCeremony> {
        let webauthn = self.relying_party(scope)?;
        let mut payload = None;
        let mut opts = None;
        if let Some(login) = login {
            let by = UserRef::login(login)?;
            if let Some(record) = self.store.find_user(scope, &by).await? {
                let passkeys: Vec<Passkey> = self
                    .store
                    .list_passkeys(scope, record.user.id)
                    .await?
                    .iter()
                    .filter_map(|p| serde_json::from_str(&p.credential).ok())
                    .collect();
                if !passkeys.is_empty() {
                    let (rcr, state) = webauthn.start_passkey_authentication(&passkeys).map_err(internal)?;
                    opts = Some(options(rcr)?);
                    payload = Some(SigningIn::User { user_id: record.user.id, state });
                }
            }
        }
        let (opts, payload) = match (opts, payload) {
            (Some(o), Some(p)) => (o, p),
            _ => {
                let (rcr, state) = webauthn.start_discoverable_authentication().map_err(internal)?;
                (options(rcr)?, SigningIn::Discoverable(state))
            }
        };
        let payload = serde_json::to_value(payload).map_err(internal)?;
        let (flow, expires_at) =
            self.create_flow(scope, FlowKind::PasskeyLogin, payload, CEREMONY_TTL).await?;
        Ok(PasskeyCeremony { flow, options: opts, expires_at })
    }

    /// Finishes a passwordless sign-in with the authenticator's assertion: the session, as
    /// a password login makes it (event method `passkey`, amr `passkey`: possession and
    /// user verification, so aal 2). A refused assertion is [`Error::InvalidPasskey`],
    /// recorded with outcome `invalid_passkey` (or `passkey_cloned` when the signature
    /// counter went back); an unknown, used or expired flow is [`Error::InvalidFlow`].
    pub async fn finish_passkey_login(
        &self,
        scope: &Scope,
        flow: &FlowHandle,
        credential: serde_json::Value,
        data: JsonObject,
        client: ClientInfo,
    ) -> Result<LoginResult> {
        self.settings.limits.check_session_data(&data)?;
        let webauthn = self.relying_party(scope)?;
        let credential: PublicKeyCredential = serde_json::from_value(credential)
            .map_err(|e| Error::invalid("credential", format!("not a WebAuthn assertion: {e}")))?;
        let record =
            self.take_flow(Some(scope), FlowKind::PasskeyLogin, flow).await?.ok_or(Error::InvalidFlow)?;
        let pending: SigningIn = serde_json::from_value(record.payload).map_err(internal)?;
        let found = self.store.find_passkey(scope, credential.get_credential_id()).await?;
        let expected_user = match &pending {
            SigningIn::User { user_id, .. } => Some(*user_id),
            SigningIn::Discoverable(_) => {
                webauthn.identify_discoverable_authentication(&credential).ok().map(|u| u.0)
            }
        };
        let Some(stored) = found.filter(|p| Some(p.user_id) == expected_user) else {
            self.record_failed_method(
                scope,
                expected_user,
                "passkey".into(),
                Outcome::InvalidPasskey,
                &client,
            )
            .await?;
            return Err(Error::InvalidPasskey);
        };
        let verdict = match pending {
            SigningIn::User { state, .. } => {
                self.verify_assertion(scope, &stored, |_| {
                    webauthn.finish_passkey_authentication(&credential, &state)
                })
                .await?
            }
            SigningIn::Discoverable(state) => {
                self.verify_assertion(scope, &stored, |passkey| {
                    webauthn.finish_discoverable_authentication_v2(&credential, state, passkey)
                })
                .await?
            }
        };
        if let Assertion::Refused(outcome) = verdict {
            self.record_failed_method(scope, Some(stored.user_id), "passkey".into(), outcome, &client)
                .await?;
            return Err(Error::InvalidPasskey);
        }
        let Some(user) = self.store.find_user(scope, &UserRef::Id(stored.user_id)).await? else {
            return Err(Error::InvalidPasskey);
        };
        let user = user.user;
        if !user.active {
            self.record_failed_method(scope, Some(user.id), "passkey".into(), Outcome::Inactive, &client)
                .await?;
            return Err(Error::UserInactive(Box::new(self.login_info(&user, None))));
        }
        let amr = vec!["passkey".to_owned()];
        self.make_session(
            scope,
            user,
            "passkey".into(),
            None,
            data,
            client,
            DeviceToken::generate(),
            amr,
            None,
        )
        .await
    }

    /// Verifies an assertion of `stored` with `finish` and, when it verifies, records the
    /// use (counter, backup flags, last use). A counter that went back is
    /// [`Outcome::PasskeyCloned`]; any other refusal [`Outcome::InvalidPasskey`].
    pub(super) async fn verify_assertion(
        &self,
        scope: &Scope,
        stored: &PasskeyRecord,
        finish: impl FnOnce(
            &Passkey,
        )
            -> std::result::Result<webauthn_rs::prelude::AuthenticationResult, WebauthnError>,
    ) -> Result<Assertion> {
        let mut passkey: Passkey = serde_json::from_str(&stored.credential)
            .map_err(|e| Error::Internal(format!("a stored passkey does not read: {e}")))?;
        let result = match finish(&passkey) {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                tracing::warn!(passkey = %stored.id, user = %stored.user_id, "passkey counter went back: refused");
                return Ok(Assertion::Refused(Outcome::PasskeyCloned));
            }
            Err(e) => {
                tracing::info!(passkey = %stored.id, error = %e, "passkey assertion refused");
                return Ok(Assertion::Refused(Outcome::InvalidPasskey));
            }
        };
        if result.cred_id() != passkey.cred_id() {
            return Ok(Assertion::Refused(Outcome::InvalidPasskey));
        }
        passkey.update_credential(&result);
        let (credential, _, _, _) = flags(&passkey)?;
        let used = PasskeyUse {
            credential,
            counter: result.counter(),
            backup_eligible: result.backup_eligible(),
            backup_state: result.backup_state(),
            at: self.now(),
        };
        self.store.use_passkey(scope, stored.id, &used).await?;
        Ok(Assertion::Good)
    }

    /// The options and state of a passkey answer to an MFA challenge, when the scope has a
    /// relying party and the user has passkeys.
    pub(super) async fn passkey_challenge(
        &self,
        scope: &Scope,
        user_id: Uuid,
    ) -> Result<Option<(serde_json::Value, serde_json::Value)>> {
        let Ok(webauthn) = self.relying_party(scope) else { return Ok(None) };
        let passkeys: Vec<Passkey> = self
            .store
            .list_passkeys(scope, user_id)
            .await?
            .iter()
            .filter_map(|p| serde_json::from_str(&p.credential).ok())
            .collect();
        if passkeys.is_empty() {
            return Ok(None);
        }
        let (rcr, state) = webauthn.start_passkey_authentication(&passkeys).map_err(internal)?;
        Ok(Some((options(rcr)?, serde_json::to_value(state).map_err(internal)?)))
    }

    /// Checks a passkey answer to an MFA challenge of `user_id` whose state is `state`.
    pub(super) async fn passkey_answer(
        &self,
        scope: &Scope,
        user_id: Uuid,
        state: &serde_json::Value,
        credential: &serde_json::Value,
    ) -> Result<Assertion> {
        let webauthn = self.relying_party(scope)?;
        let state: PasskeyAuthentication = serde_json::from_value(state.clone()).map_err(internal)?;
        let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(credential.clone()) else {
            return Ok(Assertion::Refused(Outcome::InvalidPasskey));
        };
        let Some(stored) = self
            .store
            .find_passkey(scope, credential.get_credential_id())
            .await?
            .filter(|p| p.user_id == user_id)
        else {
            return Ok(Assertion::Refused(Outcome::InvalidPasskey));
        };
        self.verify_assertion(scope, &stored, |_| webauthn.finish_passkey_authentication(&credential, &state))
            .await
    }
}
