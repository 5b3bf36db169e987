//! Mail flows: the confirmation of an email address (sent on registration and on demand,
//! redeemed by its code), a password reset sent by mail, and sign-in by an emailed
//! short code. Each writes its code and its mail ([`crate::outbox`]) in one store call, so a
//! code is never stored without the mail that carries it, nor a mail queued without its
//! code; a worker outside the core sends the mail.
//!
//! Requests that name a user and requests that name nobody take the same path (a lookup,
//! then one `request_code` transaction), so their answers and times do not tell whether an
//! account exists.

use super::Hallpass;
use super::throttle::account_key;
use crate::error::{CredentialFailure, Error, Result};
use crate::model::*;
use crate::outbox::{Enqueue, MailKind, MailPayload, OutboxMessage};
use crate::secret::{Code, TokenHash};
use crate::store::{Change, CodeRequest};
use crate::types::*;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Digits of an emailed sign-in code.
pub const EMAIL_CODE_DIGITS: u32 = 6;
/// How long an emailed sign-in code works.
pub const EMAIL_CODE_TTL: Duration = Duration::minutes(10);
/// Wrong guesses that void the user's emailed sign-in code.
pub const EMAIL_CODE_MAX_GUESSES: u32 = 5;

/// How long a client stays known to a user for new-device notices.
pub const NEW_DEVICE_WINDOW: Duration = Duration::days(90);
/// Most recent login events read to decide whether a client is new.
const NEW_DEVICE_LOOKBACK: u32 = 500;

/// A client as new-device notices compare it: the IP (IPv6 by its /64) and the browser
/// family and platform read from the user agent (so a browser update is not a new device).
pub fn client_family(ip: Option<&str>, user_agent: Option<&str>) -> String {
    let ip = ip.unwrap_or("");
    let net = match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => ip.to_owned(),
    };
    let ua = user_agent.unwrap_or("");
    let browser = ["Edg/", "OPR/", "Firefox/", "Chrome/", "Safari/"]
        .into_iter()
        .find(|b| ua.contains(b))
        .map(|b| b.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| ua.split('/').next().unwrap_or("").trim().to_owned());
    let platform = ["Windows", "Android", "iPhone", "iPad", "Mac OS", "Linux", "CrOS"]
        .into_iter()
        .find(|p| ua.contains(p))
        .unwrap_or("");
    format!("{net}|{browser}|{platform}")
}

/// The stored hash of a short sign-in code: bound to the scope and user, so equal codes of
/// two users never meet in the codes table and a guess is only ever tried against one user.
///
/// With a server secret, an HMAC keyed by it ([`ServerSecret::code_hash`]): six digits are
/// a million guesses, so a plain hash would give a reader of the database the code at
/// once. Without one (PostgreSQL or MariaDB with no `HALLPASS_SECRET_KEY`; the server
/// warns at start), the plain SHA-256 of before. A code stored under the other form
/// simply does not match (codes live minutes; no migration).
///
/// [`ServerSecret::code_hash`]: crate::server_secret::ServerSecret::code_hash
fn email_code_hash(
    secret: Option<&crate::server_secret::ServerSecret>,
    scope: &Scope,
    owner: &str,
    code: &str,
) -> TokenHash {
    let message = format!("email-code:{scope}:{owner}:{code}");
    match secret {
        Some(secret) => secret.code_hash(&message),
        None => TokenHash::of(&message),
    }
}

/// The mail row carrying a code to `user`. For nobody (no such user, or one without an
/// email) the same row with no user and a placeholder address: the store writes and
/// removes it in the code's transaction (a decoy, like the decoy code), so a request for
/// nobody costs what one for a user does. Measured by `bench/timing.py`.
fn code_mail(
    scope: &Scope,
    user: Option<&User>,
    mail: MailKind,
    code: &str,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> OutboxMessage {
    let to = user.and_then(|u| u.email.as_ref()).map(|e| e.as_str().to_owned());
    let user_id = user.filter(|_| to.is_some()).map(|u| u.id);
    let payload = MailPayload {
        mail,
        to: to.unwrap_or_else(|| "nobody@example.invalid".to_owned()),
        username: user.and_then(|u| u.username.as_ref()).map(|n| n.as_str().to_owned()),
        code: Some(code.to_owned()),
        expires_at: Some(expires_at),
        detail: Default::default(),
    };
    payload.into_message(scope, user_id, now)
}

/// The counter of wrong guesses against a user's sign-in code.
fn guess_key(user: &str) -> String {
    format!("ecode:{user}")
}

/// A fresh code of [`EMAIL_CODE_DIGITS`] digits from the operating system's generator.
fn digits() -> String {
    let mut out = String::with_capacity(EMAIL_CODE_DIGITS as usize);
    while out.len() < EMAIL_CODE_DIGITS as usize {
        let mut b = [0u8; 1];
        if getrandom::fill(&mut b).is_err() {
            continue;
        }
        // 250 = 25 * 10: values above are dropped so every digit is equally likely.
        if b[0] < 250 {
            out.push(char::from(b'0' + b[0] % 10));
        }
    }
    out
}

impl Hallpass {
    /// Whether this server sends mail (`HALLPASS_SMTP_URL` set).
    pub fn mail_enabled(&self) -> bool {
        self.settings.mail
    }

    fn require_mail(&self) -> Result<()> {
        if self.settings.mail { Ok(()) } else { Err(Error::MailNotConfigured) }
    }

    /// Wakes the mail worker (it also polls).
    pub(super) fn queued(&self) {
        self.outbox_signal.notify_one();
    }

    /// What the mail worker waits on besides its timer: told whenever this process queues
    /// a delivery.
    pub fn outbox_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.outbox_signal.clone()
    }

    /// The confirmation code and mail for `user` (who has an email), due now.
    fn confirmation_for(&self, user: &User, now: OffsetDateTime) -> Option<(CodeRecord, OutboxMessage)> {
        let email = user.email.as_ref()?;
        let code = Code::generate();
        let expires_at = now + self.scope_settings(&user.scope).code_ttl;
        let record = CodeRecord {
            code_hash: code.hash(),
            scope: user.scope.clone(),
            user_id: user.id,
            kind: CodeKind::Confirm,
            created_at: now,
            expires_at,
        };
        let payload = MailPayload {
            mail: MailKind::Confirm,
            to: email.as_str().to_owned(),
            username: user.username.as_ref().map(|u| u.as_str().to_owned()),
            code: Some(code.expose().to_owned()),
            expires_at: Some(expires_at),
            detail: Default::default(),
        };
        Some((record, payload.into_message(&user.scope, Some(user.id), now)))
    }

    /// Stores a new user and, when mail is on, the scope requires confirmation and the user
    /// has an email, the confirmation code and its mail in the same transaction.
    pub(super) async fn insert_new_user(&self, record: &UserRecord) -> Result<()> {
        let user = &record.user;
        let confirm = self.settings.mail && self.scope_settings(&user.scope).require_confirmation;
        let event = crate::webhook::Event::new(
            crate::webhook::EventType::UserCreated,
            user.created_at,
            Some(user.id),
        )
        .with_user(user);
        let rows = self.webhook_rows(&user.scope, event).await;
        match confirm.then(|| self.confirmation_for(user, user.created_at)).flatten() {
            Some((code, message)) => {
                let mut messages = rows.clone();
                messages.push(message);
                let e = Enqueue { user: Some(record), code: Some(&code), messages: &messages };
                self.store.enqueue(&e).await?;
                self.queued();
            }
            None if rows.is_empty() => self.store.insert_user(record).await?,
            None => self.store.enqueue(&Enqueue { user: Some(record), code: None, messages: &rows }).await?,
        }
        self.webhooks_queued(&rows);
        Ok(())
    }

    /// A change of email with its mails, in one store call: `email_changed` to the old
    /// address (if any), and where the scope requires confirmation the new address becomes
    /// unconfirmed and gets its confirmation mail (unless the patch itself says confirmed).
    pub(super) async fn change_email_with_mail(
        &self,
        scope: &Scope,
        current: User,
        mut patch: UserPatch,
    ) -> Result<User> {
        let now = self.now();
        let new_email = patch.email.clone().flatten();
        let mut messages = Vec::new();
        if let Some(old) = &current.email {
            let mut detail = serde_json::Map::new();
            detail.insert(
                "new_email".into(),
                serde_json::Value::String(
                    new_email.as_ref().map_or_else(|| "(none)".to_owned(), |e| e.as_str().to_owned()),
                ),
            );
            let payload = MailPayload {
                mail: MailKind::EmailChanged,
                to: old.as_str().to_owned(),
                username: current.username.as_ref().map(|u| u.as_str().to_owned()),
                code: None,
                expires_at: None,
                detail,
            };
            messages.push(payload.into_message(scope, Some(current.id), now));
        }
        let mut code = None;
        if let Some(new) = &new_email
            && self.scope_settings(scope).require_confirmation
            && patch.confirmed != Some(true)
        {
            patch.confirmed = Some(false);
            if patch.confirmation.is_none() {
                patch.confirmation = Some(None);
            }
            let future = User { email: Some(new.clone()), ..current.clone() };
            if let Some((c, m)) = self.confirmation_for(&future, now) {
                code = Some(c);
                messages.push(m);
            }
        }
        let mails = messages.len();
        let rows = self.user_update_rows(scope, &current, &patch, now).await;
        messages.extend(rows.iter().cloned());
        let e = Enqueue { user: None, code: code.as_ref(), messages: &messages };
        let updated = self.store.update_user_enqueue(scope, current.id, &patch, now, &e).await?;
        self.changed(Change::user(scope, current.id)).await;
        if updated.is_some() && mails > 0 {
            self.queued();
        }
        if updated.is_some() {
            self.webhooks_queued(&rows);
        }
        updated.ok_or(Error::UserNotFound)
    }

    /// Sends (again) the confirmation mail of a user's email, voiding the older code.
    /// Answers the user's confirmation state: `pending` once a mail was taken by the mail
    /// server, `failed` when the latest could not be delivered.
    pub async fn send_confirmation(&self, scope: &Scope, r: &UserRef) -> Result<Option<Confirmation>> {
        self.require_mail()?;
        let user = self.resolve(scope, r).await?.user;
        if user.email.is_none() {
            return Err(Error::invalid("email", "the user has no email to confirm"));
        }
        if user.confirmed {
            return Err(Error::invalid("email", "the user's email is already confirmed"));
        }
        let now = self.now();
        let (code, message) = self.confirmation_for(&user, now).ok_or(Error::UserNotFound)?;
        let e = Enqueue { user: None, code: Some(&code), messages: std::slice::from_ref(&message) };
        self.store.enqueue(&e).await?;
        self.queued();
        Ok(user.confirmation)
    }

    /// Confirms the email of the user the code belongs to: `confirmed`, no `confirmation`.
    pub async fn redeem_confirmation(&self, scope: &Scope, code: &Code) -> Result<User> {
        if !code.expose().starts_with(Code::PREFIX) || code.expose().len() > 128 {
            return Err(Error::InvalidCode);
        }
        // The owner is read first (no change) so the event can name the user and address.
        let now = self.now();
        let owner = self.store.code_owner(scope, CodeKind::Confirm, &code.hash(), now).await?;
        let owner = match owner {
            Some(id) => self.store.find_user(scope, &UserRef::Id(id)).await?.map(|r| r.user),
            None => None,
        };
        let rows = match &owner {
            Some(u) => {
                let event =
                    crate::webhook::Event::new(crate::webhook::EventType::EmailConfirmed, now, Some(u.id))
                        .with_user(u);
                self.webhook_rows(scope, event).await
            }
            None => Vec::new(),
        };
        let id = self
            .store
            .redeem_code(scope, CodeKind::Confirm, &code.hash(), now, &rows)
            .await?
            .ok_or(Error::InvalidCode)?;
        self.changed(Change::user(scope, id)).await;
        self.webhooks_queued(&rows);
        self.get_user(scope, &UserRef::Id(id)).await
    }

    /// Mails a password-reset code to the user `login` names, if any, and if the user has
    /// an email. Known and unknown logins take the same path and give the same answer
    /// (`Ok`); only the rate limit of [`Hallpass::create_reset_code`] is told.
    pub async fn mail_reset_code(&self, scope: &Scope, login: &UserRef) -> Result<()> {
        self.require_mail()?;
        let found = self.store.find_user(scope, login).await?.map(|r| r.user);
        let now = self.now();
        let code = Code::generate();
        let expires_at = now + self.scope_settings(scope).code_ttl;
        let outbox = code_mail(scope, found.as_ref(), MailKind::Reset, code.expose(), expires_at, now);
        let queued = outbox.user_id.is_some();
        self.request(scope, login, CodeKind::Reset, code.hash(), now, expires_at, Some(outbox)).await?;
        // The worker is woken (after the answer's work is done) only for a real mail: a
        // wake for nobody would double the writes a flood of probes costs, and what the
        // worker then does happens beside later requests, not inside this one.
        if queued {
            self.queued();
        }
        Ok(())
    }

    /// Mails a short sign-in code to the user with that email, if any (`Ok` either way).
    pub async fn mail_email_code(&self, scope: &Scope, email: &Email) -> Result<()> {
        self.require_mail()?;
        let login = UserRef::Email(email.key().to_owned());
        let found = self.store.find_user(scope, &login).await?.map(|r| r.user);
        let now = self.now();
        let code = digits();
        let expires_at = now + EMAIL_CODE_TTL;
        let owner = found.as_ref().map_or_else(|| format!("e:{}", email.key()), |u| u.id.to_string());
        let outbox = code_mail(scope, found.as_ref(), MailKind::EmailCode, &code, expires_at, now);
        let queued = outbox.user_id.is_some();
        let hash = email_code_hash(self.server_secret.as_ref(), scope, &owner, &code);
        self.request(scope, &login, CodeKind::Login, hash, now, expires_at, Some(outbox)).await?;
        // A new code starts with a clean slate of guesses (for nobody too: equal work).
        self.store.throttle_clear(scope, &guess_key(&owner)).await?;
        if queued {
            self.queued();
        }
        Ok(())
    }

    /// One `request_code` call, rate limited per login as reset codes are.
    #[allow(clippy::too_many_arguments)]
    async fn request(
        &self,
        scope: &Scope,
        login: &UserRef,
        kind: CodeKind,
        code_hash: TokenHash,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        outbox: Option<OutboxMessage>,
    ) -> Result<()> {
        let policy = &self.scope_settings(scope).throttle;
        let req = CodeRequest {
            login: login.clone(),
            kind,
            code_hash,
            created_at: now,
            expires_at,
            throttle_key: super::codes::code_request_key(kind, login),
            window: policy.code_request_window,
            limit: if policy.enabled { policy.code_requests } else { 0 },
            outbox,
        };
        let outcome = self.store.request_code(scope, &req).await?;
        if !req.within_limit(&outcome.requests) {
            let wait = (outcome.requests.expires_at - now).whole_milliseconds();
            let retry_after_secs = u64::try_from((wait + 999) / 1000).unwrap_or(u64::MAX).max(1);
            return Err(Error::RateLimited { retry_after_secs });
        }
        Ok(())
    }

    /// Checks an emailed sign-in code for the user with that email: the user (or `None`
    /// for nobody, after the same work) when the code is good, which uses it up. Wrong
    /// guesses count; after [`EMAIL_CODE_MAX_GUESSES`] the user's code is void until a
    /// new one is requested.
    pub(super) async fn check_email_code(
        &self,
        scope: &Scope,
        email: &Email,
        record: Option<&UserRecord>,
        code: &str,
    ) -> Result<Option<Uuid>> {
        let owner = record.map_or_else(|| format!("e:{}", email.key()), |r| r.user.id.to_string());
        let now = self.now();
        let shape_ok = code.len() >= 6 && code.len() <= 8 && code.bytes().all(|b| b.is_ascii_digit());
        let guesses = self.store.throttle_get(scope, &guess_key(&owner), now).await?;
        let spent = guesses.is_some_and(|g| g.failures >= EMAIL_CODE_MAX_GUESSES);
        let hash = email_code_hash(self.server_secret.as_ref(), scope, &owner, code);
        // Nobody's and a void code's check costs the same store call as a real one.
        let redeemed = if shape_ok && !spent {
            self.store.redeem_code(scope, CodeKind::Login, &hash, now, &[]).await?
        } else {
            self.store.redeem_code(scope, CodeKind::Login, &Code::generate().hash(), now, &[]).await?
        };
        match (redeemed, record) {
            (Some(id), Some(r)) if id == r.user.id => {
                self.store.throttle_clear(scope, &guess_key(&owner)).await?;
                Ok(Some(id))
            }
            _ => {
                self.store.throttle_hit(scope, &guess_key(&owner), now, EMAIL_CODE_TTL).await?;
                Ok(None)
            }
        }
    }

    /// The new-device notice a successful login should send, if any: mail on, the scope
    /// opted in, the user has an email and has logged in before, and no successful login
    /// of the user in the last [`NEW_DEVICE_WINDOW`] came from the same client (IP and
    /// browser family, see [`client_family`]). One read of the user's recent events.
    pub(super) async fn new_device_notice(
        &self,
        scope: &Scope,
        user: &User,
        event: &LoginEvent,
    ) -> Option<OutboxMessage> {
        if !self.settings.mail
            || !self.scope_settings(scope).notify_new_device
            || user.last_login_at.is_none()
        {
            return None;
        }
        let email = user.email.as_ref()?;
        let family = client_family(event.ip.as_deref(), event.user_agent.as_deref());
        let since = event.at - NEW_DEVICE_WINDOW;
        let events = match self.store.list_events(scope, user.id, None, NEW_DEVICE_LOOKBACK).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "new-device check: reading the login history failed; no notice");
                return None;
            }
        };
        let seen = events.iter().take_while(|e| e.at >= since).any(|e| {
            e.outcome == Outcome::Success && client_family(e.ip.as_deref(), e.user_agent.as_deref()) == family
        });
        if seen {
            return None;
        }
        let at = event.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let mut detail = serde_json::Map::new();
        detail.insert("at".into(), serde_json::Value::String(at));
        detail
            .insert("ip".into(), event.ip.clone().map_or(serde_json::Value::Null, serde_json::Value::String));
        detail.insert(
            "user_agent".into(),
            event.user_agent.clone().map_or(serde_json::Value::Null, serde_json::Value::String),
        );
        let payload = MailPayload {
            mail: MailKind::NewDevice,
            to: email.as_str().to_owned(),
            username: user.username.as_ref().map(|u| u.as_str().to_owned()),
            code: None,
            expires_at: None,
            detail,
        };
        Some(payload.into_message(scope, Some(user.id), event.at))
    }

    // ---- the outbox, for the worker that delivers it and for operators ----

    /// Claims up to `limit` due rows of `kind` for `owner`, leased for `lease`.
    pub async fn outbox_claim(
        &self,
        kind: crate::outbox::OutboxKind,
        owner: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>> {
        self.outbox_claim_skipping(kind, owner, limit, lease, Vec::new()).await
    }

    /// [`Hallpass::outbox_claim`] leaving rows of `skip_lanes` alone (targets the caller
    /// has enough in flight for).
    pub async fn outbox_claim_skipping(
        &self,
        kind: crate::outbox::OutboxKind,
        owner: &str,
        limit: u32,
        lease: Duration,
        skip_lanes: Vec<String>,
    ) -> Result<Vec<OutboxMessage>> {
        let now = self.now();
        let claim = crate::outbox::OutboxClaim {
            now,
            lease_until: now + lease,
            owner: owner.to_owned(),
            kind,
            limit,
            skip_lanes,
        };
        Ok(self.store.outbox_claim(&claim).await?)
    }

    /// Changes a claimed row (see [`crate::Store::outbox_update`]); a changed user
    /// confirmation is told to the caches.
    pub async fn outbox_update(
        &self,
        message: &OutboxMessage,
        owner: &str,
        update: &crate::outbox::OutboxUpdate,
    ) -> Result<bool> {
        let done = self.store.outbox_update(message.id, owner, update).await?;
        if done
            && update.user_confirmation.is_some()
            && let Some(user) = message.user_id
        {
            self.changed(Change::user(&message.scope, user)).await;
        }
        Ok(done)
    }

    /// An operator's retry of an `in_doubt` row: queued again, due now.
    pub async fn outbox_retry(&self, message: Uuid) -> Result<bool> {
        let done = self.store.outbox_retry(message, self.now()).await?;
        if done {
            self.queued();
        }
        Ok(done)
    }

    /// Rows per state and the oldest undelivered row.
    pub async fn outbox_stats(&self) -> Result<crate::outbox::OutboxStats> {
        Ok(self.store.outbox_stats().await?)
    }

    /// Rows, newest first.
    pub async fn outbox_list(&self, before: Option<Uuid>, limit: u32) -> Result<Vec<OutboxMessage>> {
        Ok(self.store.outbox_list(before, limit).await?)
    }

    /// Housekeeping: deletes the `sent` rows of `kind` sent more than `keep` ago, in
    /// batches; `failed` and `in_doubt` rows stay. Answers how many went.
    pub async fn outbox_purge_sent(&self, kind: crate::outbox::OutboxKind, keep: Duration) -> Result<u64> {
        const BATCH: u32 = 1000;
        let before = self.now() - keep;
        let mut total = 0;
        loop {
            let n = self.store.outbox_purge_sent(kind, before, BATCH).await?;
            total += n;
            if n < u64::from(BATCH) {
                return Ok(total);
            }
        }
    }

    /// The account counter of an email-code login (as for a password login by email).
    pub(super) fn email_code_account(email: &Email, user_id: Option<Uuid>) -> String {
        account_key(&UserRef::Email(email.key().to_owned()), user_id)
    }

    /// The failure an email-code login answers for a wrong code.
    pub(super) fn email_code_failure(found: bool) -> Error {
        Error::InvalidCredentials(if found {
            CredentialFailure::WrongPassword
        } else {
            CredentialFailure::UserNotFound
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_families_ignore_versions_and_the_host_part_of_ipv6() {
        let ff = |v: &str| format!("Mozilla/5.0 (X11; Linux x86_64; rv:{v}) Gecko/20100101 Firefox/{v}");
        assert_eq!(
            client_family(Some("1.2.3.4"), Some(&ff("120.0"))),
            client_family(Some("1.2.3.4"), Some(&ff("121.0")))
        );
        assert_ne!(
            client_family(Some("1.2.3.4"), Some(&ff("120.0"))),
            client_family(Some("1.2.3.5"), Some(&ff("120.0")))
        );
        assert_eq!(client_family(Some("2001:db8::1"), None), client_family(Some("2001:db8::2"), None));
        let chrome = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120 Safari/537.36";
        assert!(client_family(None, Some(chrome)).ends_with("|Chrome|Windows"));
        assert_eq!(client_family(None, Some("curl/8.1")), "|curl|");
    }

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..100 {
            let c = digits();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
