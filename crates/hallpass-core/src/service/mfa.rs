//! Second factors (see [`crate::mfa`]): TOTP enrolment, confirmation and removal, recovery
//! codes, and the MFA challenge a login answers when its user has a second factor.
//!
//! The challenge is a flow ([`FlowKind::MfaChallenge`]) carrying what the session will be
//! made of (user, first-factor method, session data, client, device, provider info). An
//! answer takes the flow (single use, even when raced); a wrong answer puts it back with
//! one more wrong guess counted, until [`CHALLENGE_MAX_GUESSES`], after which it is gone.
//! Answers are also throttled per user (the counter `mfa:<user id>`, with the account
//! budget of password logins), so new challenges do not buy new guesses.

use super::Hallpass;
use super::throttle::{AttemptKeys, account_key, device_key};
use crate::error::{Error, Result};
use crate::flow::{FlowHandle, FlowKind, FlowRecord};
use crate::mfa::*;
use crate::model::*;
use crate::secret::DeviceToken;
use crate::service::LoginResult;
use crate::store::{Change, ThrottleUpdate};
use crate::types::*;
use crate::webhook::{Event, EventType};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a login of a user with a second factor answers instead of a session.
#[derive(Debug, Clone)]
pub struct MfaChallenge {
    /// The handle to answer with (shown once).
    pub challenge: FlowHandle,
    /// The factors that may answer: `totp`, `recovery_code`, `passkey`.
    pub methods: Vec<&'static str>,
    /// When the challenge ends.
    pub expires_at: OffsetDateTime,
    /// With `passkey` among the methods: the options for `navigator.credentials.get`.
    pub options: Option<serde_json::Value>,
}

/// A second factor offered for a challenge.
#[derive(Debug, Clone)]
pub enum MfaProof {
    /// A TOTP code (6 digits).
    Totp(String),
    /// One of the user's recovery codes.
    RecoveryCode(String),
    /// A passkey assertion (the JSON of the `PublicKeyCredential`) of the challenge's
    /// options.
    Passkey(serde_json::Value),
}

impl MfaProof {
    fn name(&self) -> &'static str {
        match self {
            MfaProof::Totp(_) => "totp",
            MfaProof::RecoveryCode(_) => "recovery_code",
            MfaProof::Passkey(_) => "passkey",
        }
    }
}

/// A pending TOTP as enrolment answers it (shown once; the secret is then stored sealed).
#[derive(Clone)]
pub struct TotpEnrolment {
    /// The secret in base32, for typing into an authenticator app.
    pub secret: String,
    /// The `otpauth://totp/...` URI (for a QR code).
    pub otpauth_uri: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment(***)")
    }
}

/// The challenge flow's payload.
#[derive(serde::Serialize, serde::Deserialize)]
struct Pending {
    user_id: Uuid,
    /// The first factor's method text (`password`, `oidc:google`, ...).
    method: String,
    /// The first factor's authentication method reference (`pwd`, `oidc`, ...).
    amr: String,
    data: serde_json::Value,
    ip: Option<String>,
    user_agent: Option<String>,
    device: String,
    oauth: Option<PendingOAuth>,
    /// Wrong answers so far.
    guesses: u32,
    /// The passkey ceremony's state (webauthn-rs's `PasskeyAuthentication`), when the
    /// user has passkeys.
    #[serde(default)]
    passkey: Option<serde_json::Value>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PendingOAuth {
    provider: String,
    client_id: String,
    access_token: Option<String>,
    access_token_expiry: Option<i64>,
    /// Sealed with the challenge's associated data and `|refresh`.
    #[serde(default)]
    refresh_token: Option<String>,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

impl Hallpass {
    /// Stores the challenge of a login whose first factor was right.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn mfa_challenge(
        &self,
        scope: &Scope,
        user: &User,
        method: &LoginMethod,
        oauth: Option<&OAuthInfo>,
        data: &JsonObject,
        client: &ClientInfo,
        device: &DeviceToken,
    ) -> Result<MfaChallenge> {
        // The device token and a provider's access token wait in the database until the
        // answer: sealed, as every secret at rest is (a challenge exists only for a user
        // with a second factor: a TOTP needs the key too; passkeys need it here).
        let key = self.secret_key()?;
        let aad = challenge_aad(scope, user.id);
        let pending = Pending {
            user_id: user.id,
            method: method.to_text(),
            amr: method.amr().to_owned(),
            data: serde_json::Value::Object(data.clone()),
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            device: key.seal_text(&aad, device.expose()),
            oauth: oauth.map(|o| PendingOAuth {
                provider: o.provider.clone(),
                client_id: o.client_id.clone(),
                access_token: o.access_token.as_deref().map(|t| key.seal_text(&aad, t)),
                access_token_expiry: o.access_token_expiry.map(|t| t.unix_timestamp()),
                refresh_token: o.refresh_token.as_deref().map(|t| key.seal_text(&refresh_aad(&aad), t)),
            }),
            guesses: 0,
            passkey: None,
        };
        let mut pending = pending;
        let state = self.store.mfa_state(scope, user.id).await?;
        let mut methods = Vec::new();
        if state.totp_confirmed() {
            methods.push("totp");
        }
        if state.totp_confirmed() || state.recovery_codes > 0 {
            methods.push("recovery_code");
        }
        let mut options = None;
        if let Some((opts, ceremony)) = self.passkey_challenge(scope, user.id).await? {
            methods.push("passkey");
            options = Some(opts);
            pending.passkey = Some(ceremony);
        }
        let payload = serde_json::to_value(&pending).map_err(internal)?;
        let (challenge, expires_at) =
            self.create_flow(scope, FlowKind::MfaChallenge, payload, CHALLENGE_TTL).await?;
        Ok(MfaChallenge { challenge, methods, expires_at, options })
    }

    /// Answers an MFA challenge: with a right second factor, the session the login would
    /// have made (its event's method is the first factor's and the second's, as
    /// `password+totp`); a wrong one is [`Error::InvalidFactor`] (recorded with outcome
    /// `wrong_factor`), an unknown, used, expired or ended challenge
    /// [`Error::InvalidChallenge`].
    pub async fn complete_mfa(
        &self,
        scope: &Scope,
        challenge: &FlowHandle,
        proof: MfaProof,
    ) -> Result<LoginResult> {
        let flow = self
            .take_flow(Some(scope), FlowKind::MfaChallenge, challenge)
            .await?
            .ok_or(Error::InvalidChallenge)?;
        let mut pending: Pending = serde_json::from_value(flow.payload.clone()).map_err(internal)?;
        let client = ClientInfo { ip: pending.ip.clone(), user_agent: pending.user_agent.clone() };
        let method = format!("{}+{}", pending.method, proof.name());
        let Some(record) = self.store.find_user(scope, &UserRef::Id(pending.user_id)).await? else {
            return Err(Error::InvalidChallenge);
        };
        let user = record.user;
        let keys = AttemptKeys { account: format!("mfa:{}", user.id), ip: None, known_device: false };
        if let Err(e) = self.reserve(scope, &keys).await {
            self.record_failed_method(scope, Some(user.id), method, Outcome::Throttled, &client).await?;
            // Not a guess: the challenge stays as it was.
            self.store.insert_flow(&flow).await?;
            return Err(e);
        }
        let mut refused = Outcome::WrongFactor;
        let accepted = match &proof {
            MfaProof::Totp(code) => {
                let state = self.store.mfa_state(scope, user.id).await?;
                match state.totp.filter(|t| t.confirmed) {
                    Some(totp) => {
                        let secret = self.open_totp_secret(scope, user.id, &totp)?;
                        match check_totp(&secret, code, self.now()) {
                            Some(step) => self.store.accept_totp_step(scope, user.id, step, None).await?,
                            None => false,
                        }
                        .then_some(None)
                    }
                    None => None,
                }
            }
            MfaProof::RecoveryCode(code) => self
                .store
                .use_recovery_code(scope, user.id, &recovery_code_hash(user.id, code))
                .await?
                .map(Some),
            MfaProof::Passkey(credential) => match &pending.passkey {
                Some(state) => match self.passkey_answer(scope, user.id, state, credential).await? {
                    super::passkeys::Assertion::Good => Some(None),
                    super::passkeys::Assertion::Refused(outcome) => {
                        refused = outcome;
                        None
                    }
                },
                None => None,
            },
        };
        let Some(recovery_left) = accepted else {
            self.record_failed_method(scope, Some(user.id), method, refused, &client).await?;
            pending.guesses += 1;
            if pending.guesses < CHALLENGE_MAX_GUESSES {
                let payload = serde_json::to_value(&pending).map_err(internal)?;
                self.store.insert_flow(&FlowRecord { payload, ..flow }).await?;
            }
            return Err(Error::InvalidFactor);
        };
        if !user.active {
            self.record_failed_method(scope, Some(user.id), method, Outcome::Inactive, &client).await?;
            return Err(Error::UserInactive(Box::new(self.login_info(&user, None))));
        }
        let now = self.now();
        let aad = challenge_aad(scope, user.id);
        // Sealed by `mfa_challenge`; a value that does not open (the key changed meanwhile)
        // ends the challenge like any other unusable one.
        let open = |text: &str| -> Result<String> {
            if !crate::server_secret::is_sealed_text(text) {
                return Ok(text.to_owned()); // a challenge stored before values were sealed
            }
            self.secret_key()?.open_text(&aad, text).map_err(|_| Error::InvalidChallenge)
        };
        let access_token = match pending.oauth.as_ref().and_then(|o| o.access_token.as_deref()) {
            Some(sealed) => Some(open(sealed)?),
            None => None,
        };
        let refresh_token = match pending.oauth.as_ref().and_then(|o| o.refresh_token.as_deref()) {
            Some(sealed) => Some(
                self.secret_key()?
                    .open_text(&refresh_aad(&aad), sealed)
                    .map_err(|_| Error::InvalidChallenge)?,
            ),
            None => None,
        };
        let device_text = open(&pending.device)?;
        let oauth = pending.oauth.map(|o| {
            let expiry = o.access_token_expiry.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
            OAuthInfo {
                provider: o.provider,
                client_id: o.client_id,
                access_token,
                access_token_expiry: expiry,
                access_token_expired: expiry.is_some_and(|e| e <= now),
                refresh_token,
            }
        });
        let data = match pending.data {
            serde_json::Value::Object(map) => map,
            _ => JsonObject::new(),
        };
        let device = DeviceToken::parse(&device_text).unwrap_or_else(DeviceToken::generate);
        let policy = &self.scope_settings(scope).throttle;
        if policy.enabled {
            // The guesses are forgotten, and the device is known to the user from now on
            // (a password alone never made it so: see `finish_login`).
            let clear = [keys.account.as_str()];
            let marker = device_key("known:", &account_key(&UserRef::Id(user.id), Some(user.id)), &device);
            let hit = [(marker.as_str(), policy.device_lifetime)];
            self.store
                .throttle_update(scope, &ThrottleUpdate { clear: &clear, hit: &hit, undo: &[] }, now)
                .await?;
        }
        let second = match proof {
            MfaProof::Totp(_) => "otp",
            MfaProof::RecoveryCode(_) => "recovery",
            MfaProof::Passkey(_) => "passkey",
        };
        let amr = vec![pending.amr.clone(), second.to_owned()];
        self.make_session(scope, user, method, oauth, data, client, device, amr, recovery_left).await
    }

    fn secret_key(&self) -> Result<&crate::server_secret::ServerSecret> {
        self.server_secret.as_ref().ok_or(Error::SecretKeyNotConfigured)
    }

    fn open_totp_secret(&self, scope: &Scope, user_id: Uuid, totp: &TotpRecord) -> Result<Vec<u8>> {
        let text = self
            .secret_key()?
            .open_text(&totp_aad(scope, user_id), &totp.secret)
            .map_err(|e| Error::Internal(format!("a stored TOTP secret does not open: {e}")))?;
        totp_rs::Secret::try_from_base32(&text)
            .ok()
            .map(|s| s.as_bytes().to_vec())
            .ok_or_else(|| Error::Internal("a stored TOTP secret is not base32".into()))
    }

    /// The user's second factors (never a secret): whether a TOTP is pending or
    /// confirmed, and how many recovery codes are left.
    pub async fn mfa_state(&self, scope: &Scope, by: &UserRef) -> Result<MfaState> {
        let user = self.resolve(scope, by).await?.user;
        Ok(self.store.mfa_state(scope, user.id).await?)
    }

    /// Enrols a new, pending TOTP for the user (replacing a pending one):
    /// [`Error::MfaAlreadyEnabled`] when a confirmed one exists. The secret is stored
    /// sealed by the server secret ([`Error::SecretKeyNotConfigured`] without one).
    pub async fn enrol_totp(&self, scope: &Scope, by: &UserRef) -> Result<TotpEnrolment> {
        let user = self.resolve(scope, by).await?.user;
        let key = self.secret_key()?;
        let bytes = new_totp_secret();
        let account = user
            .username
            .as_ref()
            .map(|u| u.as_str().to_owned())
            .or_else(|| user.email.as_ref().map(|e| e.as_str().to_owned()))
            .unwrap_or_else(|| user.id.to_string());
        let totp = totp(&bytes, TOTP_DIGITS, &account, scope.as_str()).map_err(Error::Internal)?;
        let secret = totp_rs::Secret::from(bytes).to_base32();
        let sealed = key.seal_text(&totp_aad(scope, user.id), &secret);
        if !self.store.enrol_totp(scope, user.id, &sealed, self.now()).await? {
            return Err(Error::MfaAlreadyEnabled);
        }
        let otpauth_uri = totp.to_url().map_err(|e| Error::Internal(e.to_string()))?;
        Ok(TotpEnrolment { secret, otpauth_uri })
    }

    /// Confirms the user's pending TOTP with a first code: answers ten new recovery codes
    /// (shown once) and ends the user's sessions but `keep_session`, in one transaction.
    /// A wrong or replayed code is [`Error::InvalidCode`]; no pending TOTP is
    /// [`Error::MfaNotEnabled`] (or [`Error::MfaAlreadyEnabled`] when confirmed).
    pub async fn confirm_totp(
        &self,
        scope: &Scope,
        by: &UserRef,
        code: &str,
        keep_session: Option<Uuid>,
    ) -> Result<Vec<String>> {
        let user = self.resolve(scope, by).await?.user;
        let state = self.store.mfa_state(scope, user.id).await?;
        let totp = match state.totp.clone() {
            Some(t) if t.confirmed => return Err(Error::MfaAlreadyEnabled),
            Some(t) => t,
            None => return Err(Error::MfaNotEnabled),
        };
        let secret = self.open_totp_secret(scope, user.id, &totp)?;
        let step = check_totp(&secret, code, self.now()).ok_or(Error::InvalidCode)?;
        let codes = new_recovery_codes();
        let now = self.now();
        // `mfa.enabled` when the user had no second factor before this one.
        let outbox = if state.enabled() {
            Vec::new()
        } else {
            let event = Event::new(EventType::MfaEnabled, now, Some(user.id))
                .with_user(&user)
                .with_str("method", Some("totp"));
            self.webhook_rows(scope, event).await
        };
        let change = FactorChange {
            recovery_codes: codes.iter().map(|c| recovery_code_hash(user.id, c)).collect(),
            at: now,
            keep_session,
            outbox,
        };
        if !self.store.accept_totp_step(scope, user.id, step, Some(&change)).await? {
            return Err(Error::InvalidCode);
        }
        self.webhooks_queued(&change.outbox);
        self.changed(Change::user(scope, user.id)).await;
        Ok(codes)
    }

    /// A new set of ten recovery codes, voiding the old set; [`Error::MfaNotEnabled`]
    /// when the user has no confirmed second factor.
    pub async fn regenerate_recovery_codes(&self, scope: &Scope, by: &UserRef) -> Result<Vec<String>> {
        let user = self.resolve(scope, by).await?.user;
        let codes = new_recovery_codes();
        let hashes: Vec<_> = codes.iter().map(|c| recovery_code_hash(user.id, c)).collect();
        if !self.store.replace_recovery_codes(scope, user.id, &hashes, self.now()).await? {
            return Err(Error::MfaNotEnabled);
        }
        Ok(codes)
    }

    /// Removes every second factor of the user (TOTP, recovery codes, passkeys) and, when
    /// there was one, ends the user's sessions but `keep_session`; answers whether anything went.
    /// Its events: `passkey.removed` for each passkey, and `mfa.disabled` when the user had
    /// a second factor (as read just before).
    pub async fn remove_mfa(&self, scope: &Scope, by: &UserRef, keep_session: Option<Uuid>) -> Result<bool> {
        let user = self.resolve(scope, by).await?.user;
        let state = self.store.mfa_state(scope, user.id).await?;
        let now = self.now();
        let mut rows = Vec::new();
        if state.passkeys > 0 {
            for p in self.store.list_passkeys(scope, user.id).await? {
                rows.extend(
                    self.webhook_rows(scope, passkey_event(EventType::PasskeyRemoved, now, &user, &p)).await,
                );
            }
        }
        if state.enabled() {
            rows.extend(self.webhook_rows(scope, mfa_disabled(now, &user, "all")).await);
        }
        let removed = self.store.remove_mfa(scope, user.id, keep_session, &rows).await?;
        if removed {
            self.webhooks_queued(&rows);
            self.changed(Change::user(scope, user.id)).await;
        }
        Ok(removed)
    }

    /// Removes the user's TOTP (pending or confirmed), never a passkey: the recovery codes
    /// go with it only when the user has no passkey left. When there was a TOTP, ends the
    /// user's sessions but `keep_session`; answers whether there was one. `mfa.disabled`
    /// when a confirmed TOTP was the user's only second factor.
    pub async fn remove_totp(&self, scope: &Scope, by: &UserRef, keep_session: Option<Uuid>) -> Result<bool> {
        let user = self.resolve(scope, by).await?.user;
        let state = self.store.mfa_state(scope, user.id).await?;
        let rows = if state.totp_confirmed() && state.passkeys == 0 {
            self.webhook_rows(scope, mfa_disabled(self.now(), &user, "totp")).await
        } else {
            Vec::new()
        };
        let removed = self.store.remove_totp(scope, user.id, keep_session, &rows).await?;
        if removed {
            self.webhooks_queued(&rows);
            self.changed(Change::user(scope, user.id)).await;
        }
        Ok(removed)
    }
}

/// `mfa.disabled`: the user has no second factor left; `removed` says what went (`all`,
/// `totp`, `passkey`).
pub(super) fn mfa_disabled(at: OffsetDateTime, user: &User, removed: &str) -> Event {
    Event::new(EventType::MfaDisabled, at, Some(user.id)).with_user(user).with_str("removed", Some(removed))
}

/// `passkey.added` or `passkey.removed`: the user and the passkey's id and name (never its
/// credential id or key).
pub(super) fn passkey_event(
    t: EventType,
    at: OffsetDateTime,
    user: &User,
    p: &crate::PasskeyRecord,
) -> Event {
    Event::new(t, at, Some(user.id))
        .with_user(user)
        .with_str("passkey_id", Some(&p.id.to_string()))
        .with_str("name", Some(&p.name))
}

/// What a challenge's sealed values are bound to: they open for this scope and user only.
fn challenge_aad(scope: &Scope, user_id: Uuid) -> Vec<u8> {
    format!("mfa-challenge|{scope}|{user_id}").into_bytes()
}

/// What a pending provider refresh token is bound to: the challenge, and which token it is.
fn refresh_aad(challenge: &[u8]) -> Vec<u8> {
    [challenge, b"|refresh"].concat()
}
