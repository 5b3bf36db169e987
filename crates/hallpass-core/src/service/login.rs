//! Logins: what a login request is ([`Credentials`], [`LoginRequest`]) and gives
//! ([`LoginResult`]), [`Hallpass::login`] by password or provider, the failure event, and
//! `finish_login`, which makes the session and settles the attempt's throttling counters
//! (see [`super::throttle`]) in one store call.

use super::Hallpass;
use super::throttle::{AttemptKeys, account_key, device_key};
use crate::error::{CredentialFailure, Error, Result};
use crate::model::*;
use crate::secret::{DeviceToken, SessionToken};
use crate::store::{Change, NewLogin, ThrottleUpdate};
use crate::types::*;
use time::Duration;
use uuid::Uuid;

/// How a login proves who it is.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A username or email with a password.
    Password {
        /// Whom (never `UserRef::Id`; use username or email).
        login: UserRef,
        /// The password offered.
        password: Password,
    },
    /// An email with the short code mailed to it ([`Hallpass::mail_email_code`]).
    EmailCode {
        /// The email the code was sent to.
        email: Email,
        /// The code as typed (6 to 8 digits).
        code: String,
    },
    /// A provider identity the calling backend vouches for.
    Provider {
        /// The provider.
        provider: ProviderName,
        /// The user's id at the provider.
        client_id: ClientId,
    },
}

/// A login request.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// The proof.
    pub credentials: Credentials,
    /// Initial session data.
    pub data: JsonObject,
    /// The end user's client, as the backend reports it.
    pub client: ClientInfo,
    /// The device token an earlier login of this browser answered with, if the
    /// application kept one (see [`crate::ThrottleSettings`]).
    pub device: Option<DeviceToken>,
}

/// What a successful login gives: the token (once), the session and the login object.
#[derive(Debug, Clone)]
pub struct LoginResult {
    /// The bearer token; hallpass keeps only its hash.
    pub token: SessionToken,
    /// The new session.
    pub session: Session,
    /// The login object.
    pub login: LoginInfo,
    /// The device token for the application to keep for this browser (a long-lived
    /// cookie) and send back as the `device` of later logins: the one presented, or a
    /// new one.
    pub device: DeviceToken,
}

impl Hallpass {
    pub(super) async fn record_failure(
        &self,
        scope: &Scope,
        user_id: Option<Uuid>,
        method: &LoginMethod,
        outcome: Outcome,
        client: &ClientInfo,
    ) -> Result<()> {
        self.record_failed_method(scope, user_id, method.to_text(), outcome, client).await
    }

    /// [`Hallpass::record_failure`] with the method as recorded (a second factor's event
    /// says `password+totp`, say).
    pub(super) async fn record_failed_method(
        &self,
        scope: &Scope,
        user_id: Option<Uuid>,
        method: String,
        outcome: Outcome,
        client: &ClientInfo,
    ) -> Result<()> {
        let event = LoginEvent {
            id: Uuid::now_v7(),
            scope: scope.clone(),
            user_id,
            at: self.now(),
            method,
            outcome,
            session_id: None,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        };
        let webhook = crate::webhook::Event::new(crate::webhook::EventType::LoginFailed, event.at, user_id)
            .with_str("method", Some(&event.method))
            .with_str("reason", Some(outcome.as_str()))
            .with_client(client.ip.as_deref(), client.user_agent.as_deref());
        let rows = self.webhook_rows(scope, webhook).await;
        self.store.insert_event(&event, &rows).await?;
        self.webhooks_queued(&rows);
        Ok(())
    }

    /// Logs a user in. Wrong password and unknown user cost the same and both answer
    /// [`Error::InvalidCredentials`]; an inactive user gets [`Error::UserInactive`] and no
    /// session. Every attempt leaves a login event.
    ///
    /// Password logins are throttled (see [`crate::ThrottleSettings`]): each attempt first
    /// takes its place in the budget of its counters (the device's own for a device known
    /// to the user, else the account's for unknown devices and the client IP's); one
    /// beyond a budget answers [`Error::RateLimited`] without verifying anything and is
    /// recorded with outcome `throttled`. A failure keeps its places; a good password
    /// clears the account's (or device's) counter and gives the IP's place back. Every
    /// successful login answers with a device token, remembered as known to the user.
    pub async fn login(&self, scope: &Scope, req: LoginRequest) -> Result<LoginResult> {
        let LoginRequest { credentials, data, client, device } = req;
        check_json_object("data", &data)?;
        self.settings.limits.check_session_data(&data)?;
        if client.user_agent.as_ref().is_some_and(|ua| ua.contains('\0'))
            || client.ip.as_ref().is_some_and(|ip| ip.contains('\0'))
        {
            return Err(Error::invalid("client", "must not contain NUL characters"));
        }
        let mut settle: Option<AttemptKeys> = None;
        let (method, record, oauth) = match credentials {
            Credentials::Password { login, password } => {
                let method = LoginMethod::Password;
                let record = self.store.find_user(scope, &login).await?;
                let user_id = record.as_ref().map(|r| r.user.id);
                let account = account_key(&login, user_id);
                let keys = self.attempt_keys(scope, account, &client, device.as_ref()).await?;
                if let Err(e) = self.reserve(scope, &keys).await {
                    self.record_failure(scope, user_id, &method, Outcome::Throttled, &client).await?;
                    return Err(e);
                }
                let stored = record.as_ref().and_then(|r| r.password_hash.clone());
                let verified = match self.hasher.verify(password.clone(), stored.clone()).await {
                    Ok(verified) => verified,
                    Err(e) => {
                        // Nothing was checked (the hashing pool is full, say): not a failure.
                        self.give_back(scope, &keys).await?;
                        return Err(e);
                    }
                };
                // A failure keeps the places `reserve` took: they are its count.
                let Some(record) = record else {
                    self.record_failure(scope, None, &method, Outcome::UnknownUser, &client).await?;
                    return Err(Error::InvalidCredentials(CredentialFailure::UserNotFound));
                };
                if !verified.ok {
                    self.record_failure(
                        scope,
                        Some(record.user.id),
                        &method,
                        Outcome::WrongPassword,
                        &client,
                    )
                    .await?;
                    return Err(Error::InvalidCredentials(CredentialFailure::WrongPassword));
                }
                settle = Some(keys);
                if verified.needs_rehash
                    && record.user.active
                    && let Some(old) = stored
                {
                    let new = self.hasher.hash(password).await?;
                    self.store.rehash_password(scope, record.user.id, &old, &new).await?;
                }
                (method, record, None)
            }
            Credentials::EmailCode { email, code } => {
                // Throttled exactly as a password login by that email; the code is checked
                // in place of the password, at the same cost for nobody.
                let method = LoginMethod::EmailCode;
                let login = UserRef::Email(email.key().to_owned());
                let record = self.store.find_user(scope, &login).await?;
                let user_id = record.as_ref().map(|r| r.user.id);
                let account = Self::email_code_account(&email, user_id);
                let keys = self.attempt_keys(scope, account, &client, device.as_ref()).await?;
                if let Err(e) = self.reserve(scope, &keys).await {
                    self.record_failure(scope, user_id, &method, Outcome::Throttled, &client).await?;
                    return Err(e);
                }
                let good = self.check_email_code(scope, &email, record.as_ref(), &code).await?;
                let Some(record) = record.filter(|_| good.is_some()) else {
                    let outcome =
                        if user_id.is_some() { Outcome::WrongPassword } else { Outcome::UnknownUser };
                    self.record_failure(scope, user_id, &method, outcome, &client).await?;
                    return Err(Self::email_code_failure(user_id.is_some()));
                };
                settle = Some(keys);
                (method, record, None)
            }
            Credentials::Provider { provider, client_id } => {
                let method = LoginMethod::Provider(provider.clone());
                let identity = self.store.find_identity(scope, &provider, client_id.as_str()).await?;
                let record = match &identity {
                    Some(i) => self.store.find_user(scope, &UserRef::Id(i.user_id)).await?,
                    None => None,
                };
                let (Some(identity), Some(record)) = (identity, record) else {
                    self.record_failure(scope, None, &method, Outcome::UnknownUser, &client).await?;
                    return Err(Error::InvalidCredentials(CredentialFailure::UserNotFound));
                };
                let identity = self.open_identity(identity);
                let now = self.now();
                let oauth = OAuthInfo {
                    provider: identity.provider.as_str().to_owned(),
                    client_id: identity.client_id.as_str().to_owned(),
                    access_token: identity.access_token.clone(),
                    access_token_expiry: identity.access_token_expiry,
                    access_token_expired: identity.access_token_expired(now),
                    refresh_token: identity.refresh_token.clone(),
                };
                (method, record, Some(oauth))
            }
        };
        self.finish_login(scope, record.user, method, oauth, data, client, device, settle).await
    }

    /// Makes the session of a login whose proof was accepted, or refuses an inactive user.
    /// Either way the counters the attempt reserved are settled; an active user's device
    /// is remembered as known to the user (one store call for all of it).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn finish_login(
        &self,
        scope: &Scope,
        user: User,
        method: LoginMethod,
        oauth: Option<OAuthInfo>,
        data: JsonObject,
        client: ClientInfo,
        device: Option<DeviceToken>,
        settle: Option<AttemptKeys>,
    ) -> Result<LoginResult> {
        let device = device.unwrap_or_else(DeviceToken::generate);
        // A user with a second factor gets a challenge instead of a session (see `mfa.rs`).
        let second_factor = user.active && self.store.mfa_state(scope, user.id).await?.enabled();
        let policy = &self.scope_settings(scope).throttle;
        if policy.enabled {
            let known = settle.as_ref().is_some_and(|keys| keys.known_device);
            let account = account_key(&UserRef::Id(user.id), Some(user.id));
            // The device becomes known when the whole login succeeds: with a second factor,
            // only once that is answered (`complete_mfa`), never on the password alone.
            let marker =
                (user.active && !known && !second_factor).then(|| device_key("known:", &account, &device));
            let hit: Vec<(&str, Duration)> =
                marker.as_deref().map(|m| (m, policy.device_lifetime)).into_iter().collect();
            // A good login forgets the account's (or device's) failures and gives the IP's
            // place back: it was no failure.
            let clear: Vec<&str> = settle.as_ref().map(|keys| keys.account.as_str()).into_iter().collect();
            let undo: Vec<&str> = settle.as_ref().and_then(|keys| keys.ip.as_deref()).into_iter().collect();
            if !(hit.is_empty() && clear.is_empty() && undo.is_empty()) {
                let update = ThrottleUpdate { hit: &hit, undo: &undo, clear: &clear };
                self.store.throttle_update(scope, &update, self.now()).await?;
            }
        }
        if !user.active {
            self.record_failure(scope, Some(user.id), &method, Outcome::Inactive, &client).await?;
            return Err(Error::UserInactive(Box::new(self.login_info(&user, oauth))));
        }
        if second_factor {
            let challenge =
                self.mfa_challenge(scope, &user, &method, oauth.as_ref(), &data, &client, &device).await?;
            return Err(Error::MfaRequired(Box::new(challenge)));
        }
        let amr = vec![method.amr().to_owned()];
        let mut done =
            self.make_session(scope, user, method.to_text(), oauth, data, client, device, amr, None).await?;
        done.login.mfa_enrollment_required = self.scope_settings(scope).require_mfa;
        Ok(done)
    }

    /// Makes the session of a login whose every factor was accepted: the session, its
    /// success event (`method` as recorded) and the user's `last_login_at`, in one store
    /// call.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn make_session(
        &self,
        scope: &Scope,
        user: User,
        method: String,
        oauth: Option<OAuthInfo>,
        data: JsonObject,
        client: ClientInfo,
        device: DeviceToken,
        amr: Vec<String>,
        recovery_codes_remaining: Option<u32>,
    ) -> Result<LoginResult> {
        let settings = self.scope_settings(scope);
        let now = self.now();
        let token = SessionToken::generate();
        let session = Session {
            id: Uuid::now_v7(),
            user_id: user.id,
            scope: scope.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: (now + settings.session_idle_timeout).min(now + settings.session_absolute_timeout),
            absolute_expires_at: now + settings.session_absolute_timeout,
            data,
            client: client.clone(),
            amr,
        };
        let event = LoginEvent {
            id: Uuid::now_v7(),
            scope: scope.clone(),
            user_id: Some(user.id),
            at: now,
            method,
            outcome: Outcome::Success,
            session_id: Some(session.id),
            ip: client.ip,
            user_agent: client.user_agent,
        };
        // The new-device notice (when due) is queued in the login's own transaction: it
        // exists exactly when the login committed.
        let notice = self.new_device_notice(scope, &user, &event).await;
        let webhook =
            crate::webhook::Event::new(crate::webhook::EventType::LoginSucceeded, now, Some(user.id))
                .with_user(&user)
                .with_str("method", Some(&event.method))
                .with_str("session_id", Some(&session.id.to_string()))
                .with_client(event.ip.as_deref(), event.user_agent.as_deref());
        let webhooks = self.webhook_rows(scope, webhook).await;
        let login = NewLogin {
            session: SessionRecord { session: session.clone(), token_hash: token.hash() },
            event,
            max_sessions: Some(settings.max_sessions_per_user),
            notice,
            webhooks,
        };
        let stored = self.store.insert_login(&login).await?;
        self.webhooks_queued(&login.webhooks);
        if login.notice.is_some() {
            self.queued();
        }
        // The user's `last_login_at` moved and the cap may have ended older sessions: this
        // process's copies go at once. Other processes must hear of ended sessions only; a
        // moved `last_login_at` alone is not worth a cross-process message (on PostgreSQL a
        // `NOTIFY` is a transaction of its own, committed under a global lock, that wakes
        // every listener), so their copies of the user may show the previous login's time
        // until their cache TTL (see `cache.rs`). Where the backend already told them in
        // the login's own transaction, it is not said twice.
        if let Some(caches) = &self.caches {
            caches.apply(&Change::user(scope, user.id));
        }
        if stored.ended > 0 && !stored.published {
            self.publish(Change::user(scope, user.id)).await;
        }
        let mut user = user;
        user.last_login_at = Some(now);
        let mut login = self.login_info(&user, oauth);
        login.recovery_codes_remaining = recovery_codes_remaining;
        Ok(LoginResult { token, session, login, device })
    }
}
