//! Password-reset codes: issuing one ([`IssuedCode`]; a login that names nobody costs the
//! same, see [`Hallpass::create_reset_code`]) and redeeming it for a new password.

use super::Hallpass;
use super::throttle::hashed_key;
use crate::error::{Error, Result};
use crate::model::*;
use crate::secret::Code;
use crate::store::{Change, CodeRequest};
use crate::types::*;
use time::OffsetDateTime;
use uuid::Uuid;

/// The counter code requests for `login` count against: by the login as typed (normalised
/// and hashed), so a login that names nobody is counted exactly like one that names a user.
pub(super) fn code_request_key(kind: CodeKind, login: &UserRef) -> String {
    let prefix = format!("code:{}:", kind.as_str());
    match login {
        UserRef::Id(id) => hashed_key(&prefix, &format!("i:{id}")),
        UserRef::Username(key) => hashed_key(&prefix, &format!("u:{key}")),
        UserRef::Email(key) => hashed_key(&prefix, &format!("e:{key}")),
    }
}

/// A freshly issued reset code.
#[derive(Debug, Clone)]
pub struct IssuedCode {
    /// The code, shown once.
    pub code: Code,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// For whom.
    pub user_id: Uuid,
}

impl Hallpass {
    /// Issues a password-reset code for the user with that login; voids older ones.
    ///
    /// A login that names a user and one that names nobody take the same path, so they
    /// cost the same: one store call, [`Store::request_code`](crate::store::Store::request_code), one write transaction that
    /// counts the request against the login's counter (`code:reset:` + a hash of the
    /// normalised login, never the user id) and stores the code only when there is a user.
    /// The answer then differs ([`Error::UserNotFound`]): the application holds the key and
    /// is trusted with it; the time it took does not tell an onlooker which it was. More
    /// than [`crate::ThrottleSettings::code_requests`] requests for one login in the
    /// window answer [`Error::RateLimited`], whoever the login names.
    pub async fn create_reset_code(&self, scope: &Scope, login: &UserRef) -> Result<IssuedCode> {
        let policy = &self.scope_settings(scope).throttle;
        let code = Code::generate();
        let now = self.now();
        let expires_at = now + self.scope_settings(scope).code_ttl;
        let req = CodeRequest {
            login: login.clone(),
            kind: CodeKind::Reset,
            code_hash: code.hash(),
            created_at: now,
            expires_at,
            throttle_key: code_request_key(CodeKind::Reset, login),
            window: policy.code_request_window,
            limit: if policy.enabled { policy.code_requests } else { 0 },
            outbox: None,
        };
        let outcome = self.store.request_code(scope, &req).await?;
        if !req.within_limit(&outcome.requests) {
            let wait = (outcome.requests.expires_at - now).whole_milliseconds();
            let retry_after_secs = u64::try_from((wait + 999) / 1000).unwrap_or(u64::MAX).max(1);
            return Err(Error::RateLimited { retry_after_secs });
        }
        match outcome.user_id {
            Some(user_id) if outcome.stored => Ok(IssuedCode { code, expires_at, user_id }),
            _ => Err(Error::UserNotFound),
        }
    }

    /// Redeems a reset code: sets the password and ends every session of the user.
    ///
    /// The code is looked at first (without consuming it), so an invalid code costs no
    /// hash and the new password is checked against the names of the user it belongs to;
    /// the redemption itself then decides atomically whether the code is still good.
    pub async fn redeem_reset_code(&self, scope: &Scope, code: &Code, password: Password) -> Result<Uuid> {
        if !code.expose().starts_with(Code::PREFIX) || code.expose().len() > 128 {
            return Err(Error::InvalidCode);
        }
        let owner = self
            .store
            .code_owner(scope, CodeKind::Reset, &code.hash(), self.now())
            .await?
            .ok_or(Error::InvalidCode)?;
        let user = self.store.find_user(scope, &UserRef::Id(owner)).await?.ok_or(Error::InvalidCode)?.user;
        self.check_password_strength(scope, &password, user.username.as_ref(), user.email.as_ref()).await?;
        let hash = self.hasher.hash(password).await?;
        let event =
            crate::webhook::Event::new(crate::webhook::EventType::PasswordReset, self.now(), Some(user.id))
                .with_user(&user);
        let rows = self.webhook_rows(scope, event).await;
        let id = self
            .store
            .redeem_reset_code(scope, &code.hash(), self.now(), &hash, &rows)
            .await?
            .ok_or(Error::InvalidCode)?;
        self.changed(Change::user(scope, id)).await;
        self.webhooks_queued(&rows);
        // Whoever proved control of the account's mail may log in at once: a reset is
        // the way out of a throttle an attacker keeps renewing.
        self.store.throttle_clear(scope, &format!("acct:{id}")).await?;
        Ok(id)
    }
}
