//! Mail: the settings (`smtp_url`, `smtp_password_file`, `[mail]` and
//! `[scopes.NAME.mail]`), and the worker that delivers the outbox's mail rows over SMTP.
//!
//! The worker wakes when this process queues a mail ([`hallpass_core::Hallpass::outbox_signal`])
//! and every few seconds (rows queued by other processes, retries coming due), claims a
//! batch with a lease, and for each row renders its templates ([`templates`]), sends it
//! ([`smtp::deliver`], which marks the row `in_doubt` at the point of no return) and records
//! the outcome: `sent`; queued again with exponential backoff for a failure that may pass
//! (until a day after the row was written, then `failed`); `failed` at once for a refusal;
//! left `in_doubt` when the answer was lost. `sent` and `failed` rows keep no code.
//! A confirmation mail that is sent makes the user's `confirmation` `pending`; one that
//! fails, `failed`.

pub mod smtp;
pub mod templates;

use crate::config::Config;
use anyhow::Context;
use hallpass_core::outbox::{GIVE_UP_AFTER, MailKind, MailPayload, retry_delay};
use hallpass_core::{Confirmation, Hallpass, OutboxKind, OutboxMessage, OutboxState, OutboxUpdate};
use lettre::message::{Mailbox, MultiPart};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use templates::Templates;

/// The link templates of a scope's mails: URLs with `{code}` where the code goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksConfig {
    /// The confirmation link (default: hallpass's own `/pages/confirm`).
    pub confirm: Option<String>,
    /// The reset link (default: hallpass's own `/pages/reset`).
    pub reset: Option<String>,
    /// A link in sign-in code mails (default: none; the code is typed).
    pub email_code: Option<String>,
}

/// Mail settings: `[mail]` for every scope, `[scopes.NAME.mail]` field by field over it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// The sender, `Name <address>` or an address (default `hallpass@localhost`).
    pub from: Option<String>,
    /// Where replies go.
    pub reply_to: Option<String>,
    /// Mail a user when they log in from a client not seen in 90 days (default false).
    pub notify_new_device: Option<bool>,
    /// A directory of template files replacing the compiled-in ones.
    pub templates_dir: Option<PathBuf>,
    /// Link templates.
    pub links: Option<LinksConfig>,
}

impl MailConfig {
    fn over(&self, base: &MailConfig) -> MailConfig {
        let links = match (&self.links, &base.links) {
            (Some(a), Some(b)) => Some(LinksConfig {
                confirm: a.confirm.clone().or_else(|| b.confirm.clone()),
                reset: a.reset.clone().or_else(|| b.reset.clone()),
                email_code: a.email_code.clone().or_else(|| b.email_code.clone()),
            }),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        MailConfig {
            from: self.from.clone().or_else(|| base.from.clone()),
            reply_to: self.reply_to.clone().or_else(|| base.reply_to.clone()),
            notify_new_device: self.notify_new_device.or(base.notify_new_device),
            templates_dir: self.templates_dir.clone().or_else(|| base.templates_dir.clone()),
            links,
        }
    }
}

/// One scope's mail, resolved.
#[derive(Debug)]
pub struct ScopeMail {
    from: Mailbox,
    reply_to: Option<Mailbox>,
    links: LinksConfig,
    templates: Templates,
    /// Whether new-device notices are sent.
    pub notify_new_device: bool,
}

impl ScopeMail {
    fn resolve(c: &MailConfig, what: &str) -> anyhow::Result<Self> {
        let from = c.from.as_deref().unwrap_or("hallpass@localhost");
        let from: Mailbox =
            from.parse().with_context(|| format!("{what}: from {from:?} is not a mail address"))?;
        let reply_to = match &c.reply_to {
            Some(r) => {
                Some(r.parse().with_context(|| format!("{what}: reply_to {r:?} is not a mail address"))?)
            }
            None => None,
        };
        let links = c.links.clone().unwrap_or_default();
        for link in [&links.confirm, &links.reset, &links.email_code].into_iter().flatten() {
            anyhow::ensure!(
                link.contains("{code}") && (link.starts_with("https://") || link.starts_with("http://")),
                "{what}: link {link:?} must be an http(s) URL with {{code}} in it"
            );
        }
        let templates = Templates::load(c.templates_dir.as_deref()).with_context(|| what.to_owned())?;
        Ok(Self { from, reply_to, links, templates, notify_new_device: c.notify_new_device.unwrap_or(false) })
    }
}

/// Everything the worker needs: where to send, and each scope's mail.
#[derive(Debug)]
pub struct Mailer {
    target: smtp::SmtpTarget,
    default: ScopeMail,
    scopes: BTreeMap<String, ScopeMail>,
    public_url: Option<String>,
    /// Who this worker is, as a lease owner (unique per process).
    owner: String,
    /// How long `sent` rows stay (`outbox_keep_sent`).
    keep_sent: time::Duration,
}

/// Rows one claim takes.
const BATCH: u32 = 10;
/// How long a claim holds (the longest a delivery may take before another process may
/// take the row; a delivery's steps time out well within it).
const LEASE: time::Duration = time::Duration::minutes(5);
/// How often the worker looks for due rows when nobody wakes it.
const POLL: Duration = Duration::from_secs(2);
/// How often the worker deletes `sent` rows older than `outbox_keep_sent` (and once at
/// start).
const HOUSEKEEPING: Duration = Duration::from_secs(3600);

impl Mailer {
    /// The mailer `config` describes; `None` when `smtp_url` is unset (no mail).
    pub fn from_config(config: &Config) -> anyhow::Result<Option<Mailer>> {
        let Some(url) = &config.smtp_url else { return Ok(None) };
        let target = smtp::SmtpTarget::parse(
            url,
            config.smtp_password_file.as_deref(),
            config.smtp_ca_file.as_deref(),
        )?;
        let default = ScopeMail::resolve(&config.mail, "[mail]")?;
        let mut scopes = BTreeMap::new();
        for (name, sc) in &config.scopes {
            if let Some(m) = &sc.mail {
                scopes.insert(
                    name.clone(),
                    ScopeMail::resolve(&m.over(&config.mail), &format!("[scopes.{name}.mail]"))?,
                );
            }
        }
        let public_url = config.public_url.as_ref().map(|u| u.trim_end_matches('/').to_owned());
        let owner = format!("{}:{}", std::process::id(), uuid::Uuid::now_v7());
        let keep_sent = config.outbox_keep_sent.to_time();
        Ok(Some(Mailer { target, default, scopes, public_url, owner, keep_sent }))
    }

    /// The mail settings of `scope`.
    pub fn scope(&self, scope: &str) -> &ScopeMail {
        self.scopes.get(scope).unwrap_or(&self.default)
    }

    /// Where mail goes, without secrets.
    pub fn target(&self) -> String {
        self.target.display()
    }

    /// The link a mail of `kind` carries for `code`, if any.
    fn link(&self, scope: &str, kind: MailKind, code: &str) -> Option<String> {
        let links = &self.scope(scope).links;
        let encoded: String = url::form_urlencoded::byte_serialize(code.as_bytes()).collect();
        let own = |page: &str| {
            self.public_url.as_ref().map(|base| {
                let scope: String = url::form_urlencoded::byte_serialize(scope.as_bytes()).collect();
                format!("{base}/pages/{page}?scope={scope}&code={encoded}")
            })
        };
        match kind {
            MailKind::Confirm => {
                links.confirm.as_ref().map(|t| t.replace("{code}", &encoded)).or_else(|| own("confirm"))
            }
            MailKind::Reset => {
                links.reset.as_ref().map(|t| t.replace("{code}", &encoded)).or_else(|| own("reset"))
            }
            MailKind::EmailCode => links.email_code.as_ref().map(|t| t.replace("{code}", &encoded)),
            MailKind::EmailChanged | MailKind::NewDevice => None,
        }
    }

    /// The message of a row: envelope addresses and the formatted bytes.
    fn compose(
        &self,
        row: &OutboxMessage,
        p: &MailPayload,
        now: time::OffsetDateTime,
    ) -> anyhow::Result<(lettre::Address, lettre::Address, Vec<u8>)> {
        let scope = row.scope.as_str();
        let sm = self.scope(scope);
        let to: Mailbox =
            p.to.parse().with_context(|| format!("the recipient {:?} is not a mail address", p.to))?;
        let code = p.code.clone().unwrap_or_default();
        let link = if code.is_empty() { None } else { self.link(scope, p.mail, &code) };
        let minutes = p.expires_at.map_or(0, |e| ((e - now).whole_seconds().max(0) + 59) / 60);
        let ctx = minijinja::context! {
            scope => scope,
            username => p.username.clone().unwrap_or_default(),
            email => p.to.clone(),
            code => code,
            link => link.unwrap_or_default(),
            expires_minutes => minutes,
            detail => minijinja::Value::from(minijinja::value::Serde(&p.detail)),
        };
        let r = sm.templates.render(p.mail, &ctx).context("rendering the mail")?;
        let mut b = lettre::Message::builder()
            .from(sm.from.clone())
            .to(to.clone())
            .subject(r.subject)
            .message_id(Some(format!("<{}@hallpass>", row.id)));
        if let Some(reply) = &sm.reply_to {
            b = b.reply_to(reply.clone());
        }
        let message =
            b.multipart(MultiPart::alternative_plain_html(r.text, r.html)).context("building the mail")?;
        Ok((sm.from.email.clone(), to.email, message.formatted()))
    }
}

/// Starts the worker. It stops (after the row in hand) when `stop` turns true.
pub fn spawn_worker(
    mailer: Arc<Mailer>,
    service: Arc<Hallpass>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let signal = service.outbox_signal();
        tracing::info!(smtp = %mailer.target(), "mail worker started");
        let mut housekeeping = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                break;
            }
            if tokio::time::Instant::now() >= housekeeping {
                housekeeping = tokio::time::Instant::now() + HOUSEKEEPING;
                match service.outbox_purge_sent(OutboxKind::Mail, mailer.keep_sent).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(deleted = n, "mail worker: deleted sent mails past outbox_keep_sent")
                    }
                    Err(e) => tracing::warn!(error = %e, "mail worker: deleting old sent mails failed"),
                }
            }
            let batch = match service.outbox_claim(OutboxKind::Mail, &mailer.owner, BATCH, LEASE).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "mail worker: claiming due mails failed");
                    Vec::new()
                }
            };
            let full = batch.len() == BATCH as usize;
            for row in batch {
                if *stop.borrow() {
                    // Not started: back in the queue at once rather than after the lease.
                    let back = OutboxUpdate {
                        state: OutboxState::Queued,
                        at: service.now(),
                        next_attempt_at: Some(service.now()),
                        error: None,
                        payload: None,
                        user_confirmation: None,
                    };
                    let _ = service.outbox_update(&row, &mailer.owner, &back).await;
                    continue;
                }
                deliver(&mailer, &service, &row).await;
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                // A dropped sender (the server ended without a shutdown) stops the worker too.
                changed = stop.changed() => if changed.is_err() { break },
            }
        }
        tracing::info!("mail worker stopped");
    })
}

/// A factor in 0.5..=1.0 for the retry delay, so rows that failed together spread out.
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return 1.0;
    }
    0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0
}

/// Delivers one claimed row and records what happened.
async fn deliver(mailer: &Mailer, service: &Hallpass, row: &OutboxMessage) {
    let owner = &mailer.owner;
    let now = service.now();
    let payload: Option<MailPayload> = serde_json::from_value(row.payload.clone()).ok();
    let Some(p) = payload else {
        tracing::error!(id = %row.id, "mail worker: a mail row this version cannot read; marked failed");
        let up = final_update(OutboxState::Failed, now, "unreadable payload".into(), None, None);
        let _ = service.outbox_update(row, owner, &up).await;
        return;
    };
    let confirm = p.mail == MailKind::Confirm;
    let scrubbed = serde_json::to_value(p.scrubbed()).ok();
    let (from, to, bytes) = match mailer.compose(row, &p, now) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(id = %row.id, kind = p.mail.as_str(), error = format!("{e:#}"), "mail worker: cannot compose");
            let up = final_update(
                OutboxState::Failed,
                now,
                format!("{e:#}"),
                scrubbed,
                confirm.then_some(Confirmation::Failed),
            );
            let _ = service.outbox_update(row, owner, &up).await;
            return;
        }
    };
    let in_doubt = || async {
        let up = OutboxUpdate {
            state: OutboxState::InDoubt,
            at: service.now(),
            next_attempt_at: None,
            error: None,
            payload: None,
            user_confirmation: None,
        };
        service.outbox_update(row, owner, &up).await.map_err(|e| e.to_string())
    };
    let outcome = smtp::deliver(&mailer.target, &from, &to, &bytes, in_doubt).await;
    let now = service.now();
    let update = match outcome {
        smtp::Outcome::Accepted => {
            tracing::info!(id = %row.id, kind = p.mail.as_str(), attempts = row.attempts, "mail sent");
            OutboxUpdate {
                state: OutboxState::Sent,
                at: now,
                next_attempt_at: None,
                error: None,
                payload: scrubbed,
                user_confirmation: confirm.then_some(Confirmation::Pending),
            }
        }
        smtp::Outcome::Permanent(e) => {
            tracing::warn!(id = %row.id, kind = p.mail.as_str(), error = %e, "mail refused for good");
            final_update(OutboxState::Failed, now, e, scrubbed, confirm.then_some(Confirmation::Failed))
        }
        smtp::Outcome::Transient(e) => {
            let next = now + retry_delay(row.attempts, jitter());
            if next > row.created_at + GIVE_UP_AFTER {
                tracing::warn!(id = %row.id, kind = p.mail.as_str(), error = %e, "mail given up after a day of failures");
                final_update(OutboxState::Failed, now, e, scrubbed, confirm.then_some(Confirmation::Failed))
            } else {
                tracing::info!(id = %row.id, kind = p.mail.as_str(), error = %e, attempts = row.attempts, "mail not sent; will retry");
                OutboxUpdate {
                    state: OutboxState::Queued,
                    at: now,
                    next_attempt_at: Some(next),
                    error: Some(e),
                    payload: None,
                    user_confirmation: None,
                }
            }
        }
        smtp::Outcome::InDoubt(e) => {
            tracing::warn!(id = %row.id, kind = p.mail.as_str(), error = %e, "mail in doubt: handed over, answer lost; not resent");
            OutboxUpdate {
                state: OutboxState::InDoubt,
                at: now,
                next_attempt_at: None,
                error: Some(e),
                payload: None,
                user_confirmation: None,
            }
        }
        smtp::Outcome::Stopped(e) => {
            tracing::warn!(id = %row.id, error = %e, "mail worker: row taken over by another process");
            return;
        }
    };
    if let Err(e) = service.outbox_update(row, owner, &update).await {
        tracing::warn!(id = %row.id, error = %e, "mail worker: recording the outcome failed");
    }
}

fn final_update(
    state: OutboxState,
    at: time::OffsetDateTime,
    error: String,
    payload: Option<serde_json::Value>,
    user_confirmation: Option<Confirmation>,
) -> OutboxUpdate {
    OutboxUpdate { state, at, next_attempt_at: None, error: Some(error), payload, user_confirmation }
}
