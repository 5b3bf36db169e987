//! The outbox: deliveries (mail now, webhooks later) written in the same store transaction
//! as the change that causes them, and sent later by a worker that claims them with a lease.
//!
//! A row ([`OutboxMessage`]) has a [`OutboxKind`] (what delivers it), a `lane` (the target
//! a kind may bound its concurrency by: the recipient's domain for mail, the endpoint for a
//! webhook), and a JSON `payload` that only the kind's deliverer reads. Its life:
//!
//! ```text
//! queued --claim--> sending --(point of no return)--> in_doubt --accepted--> sent
//!    ^                 |                                  |
//!    +----retry--------+ (failure before the point)       +--refused--> queued / failed
//!                      +--permanent failure / too old---> failed
//! ```
//!
//! Invariants every store keeps and the conformance suite checks:
//!
//! - A claim ([`crate::Store::outbox_claim`]) takes rows that are due (`queued` with
//!   `next_attempt_at <= now`, or `sending` whose lease ran out: that claimer died before
//!   the point of no return, so nothing was delivered) and gives each to exactly one
//!   claimer: two claimers, in any processes, never get the same row under one lease.
//! - Every later change ([`crate::Store::outbox_update`]) names the lease owner and
//!   happens only while that owner still holds the row; a claimer whose lease was taken
//!   over learns it (`false`) before its point of no return and stops.
//! - A row left `in_doubt` (its sender died between handing the message over and hearing
//!   the answer) is never taken by a claim: it may have been delivered. An operator sees
//!   it and may put it back in the queue ([`crate::Store::outbox_retry`]).
//! - The payload may hold a one-time code until the row is final: a deliverer scrubs it
//!   when it marks a row `sent` or `failed` ([`OutboxUpdate::payload`]). Nothing outside
//!   the deliverer shows a payload ([`OutboxMessage`]'s `Debug` leaves it out).

use crate::model::Confirmation;
use crate::types::Scope;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// What delivers a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxKind {
    /// A mail, sent over SMTP (payload: the server's mail job).
    Mail,
    /// One event to one webhook endpoint (payload: [`crate::webhook::DeliveryPayload`]).
    Webhook,
}

impl OutboxKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mail => "mail",
            Self::Webhook => "webhook",
        }
    }
    /// Reads a stored name.
    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "mail" => Some(Self::Mail),
            "webhook" => Some(Self::Webhook),
            _ => None,
        }
    }
}

/// Where a row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutboxState {
    /// Waiting for `next_attempt_at`.
    Queued,
    /// Claimed by a sender under a lease, not yet handed over.
    Sending,
    /// Handed over, the answer not heard: maybe delivered. Never sent again by itself.
    InDoubt,
    /// Delivered (the receiver accepted it).
    Sent,
    /// Given up: refused for good, or undeliverable for too long.
    Failed,
}

impl OutboxState {
    /// Every state, in display order.
    pub const ALL: [OutboxState; 5] = [Self::Queued, Self::Sending, Self::InDoubt, Self::Sent, Self::Failed];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::InDoubt => "in_doubt",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
    /// Reads a stored name.
    pub fn from_stored(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
    /// Whether the row is done with (sent or failed).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Sent | Self::Failed)
    }
}

/// One row of the outbox.
#[derive(Clone, PartialEq)]
pub struct OutboxMessage {
    /// UUIDv7: rows list in the order they were made.
    pub id: Uuid,
    /// The scope the delivery belongs to.
    pub scope: Scope,
    /// What delivers it.
    pub kind: OutboxKind,
    /// The target (mail: the recipient's domain), for per-target limits.
    pub lane: String,
    /// The user the delivery is about, if any (mail: the recipient's account).
    pub user_id: Option<Uuid>,
    /// What the deliverer needs, as JSON; may hold a code until the row is final.
    pub payload: serde_json::Value,
    /// Where it stands.
    pub state: OutboxState,
    /// Claims so far.
    pub attempts: u32,
    /// When a queued row is due.
    pub next_attempt_at: OffsetDateTime,
    /// Until when the current claim holds (sending, in_doubt).
    pub lease_until: Option<OffsetDateTime>,
    /// Who holds the current claim.
    pub lease_owner: Option<String>,
    /// Why the latest attempt failed (never a secret).
    pub last_error: Option<String>,
    /// When it was written.
    pub created_at: OffsetDateTime,
    /// When it was delivered.
    pub sent_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("id", &self.id)
            .field("scope", &self.scope)
            .field("kind", &self.kind)
            .field("lane", &self.lane)
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .field("last_error", &self.last_error)
            .field("payload", &"***")
            .finish_non_exhaustive()
    }
}

impl OutboxMessage {
    /// A new queued row, due at once.
    pub fn new(
        scope: &Scope,
        kind: OutboxKind,
        lane: impl Into<String>,
        user_id: Option<Uuid>,
        payload: serde_json::Value,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            scope: scope.clone(),
            kind,
            lane: lane.into(),
            user_id,
            payload,
            state: OutboxState::Queued,
            attempts: 0,
            next_attempt_at: now,
            lease_until: None,
            lease_owner: None,
            last_error: None,
            created_at: now,
            sent_at: None,
        }
    }
}

/// A claim of due rows ([`crate::Store::outbox_claim`]).
#[derive(Debug, Clone)]
pub struct OutboxClaim {
    /// Now: rows due at or before it are taken.
    pub now: OffsetDateTime,
    /// The lease the claimed rows get.
    pub lease_until: OffsetDateTime,
    /// Who claims (unique per claiming worker).
    pub owner: String,
    /// Only rows of this kind.
    pub kind: OutboxKind,
    /// At most this many rows.
    pub limit: u32,
    /// Rows of these lanes are left alone (the claimer's busy targets: a webhook
    /// endpoint that already has as many deliveries in flight as it may).
    pub skip_lanes: Vec<String>,
}

impl OutboxClaim {
    /// [`OutboxClaim::skip_lanes`] as one text the SQL backends search: `,a,b,` (empty:
    /// none). Lanes never hold a comma (a mail domain, an endpoint's UUID).
    pub fn skip_lanes_text(&self) -> String {
        if self.skip_lanes.is_empty() { String::new() } else { format!(",{},", self.skip_lanes.join(",")) }
    }
}

/// A change of a claimed row ([`crate::Store::outbox_update`]).
#[derive(Debug, Clone)]
pub struct OutboxUpdate {
    /// The new state: `in_doubt` (from `sending`), `sent`, `queued` (a retry) or `failed`.
    pub state: OutboxState,
    /// Now (becomes `sent_at` for `sent`).
    pub at: OffsetDateTime,
    /// For `queued`: when it is due again.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The failure to remember (replaces `last_error` when set).
    pub error: Option<String>,
    /// A payload to store in place of the old one (the old one without its code).
    pub payload: Option<serde_json::Value>,
    /// Sets the confirmation state of the row's user (in the same transaction, only while
    /// the user's email is not confirmed): `pending` once a confirmation mail was taken,
    /// `failed` when it finally was not.
    pub user_confirmation: Option<Confirmation>,
}

/// How many rows are in each state, and the age of the oldest undelivered one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// `queued` rows.
    pub queued: u64,
    /// `sending` rows.
    pub sending: u64,
    /// `in_doubt` rows.
    pub in_doubt: u64,
    /// `sent` rows.
    pub sent: u64,
    /// `failed` rows.
    pub failed: u64,
    /// The `created_at` of the oldest `queued` or `sending` row.
    pub oldest_pending_at: Option<OffsetDateTime>,
}

impl OutboxStats {
    /// Adds `n` rows of `state` (how a backend folds its `GROUP BY state` rows in).
    pub fn add(&mut self, state: OutboxState, n: u64) {
        match state {
            OutboxState::Queued => self.queued += n,
            OutboxState::Sending => self.sending += n,
            OutboxState::InDoubt => self.in_doubt += n,
            OutboxState::Sent => self.sent += n,
            OutboxState::Failed => self.failed += n,
        }
    }
    /// The count of `state`.
    pub fn count(&self, state: OutboxState) -> u64 {
        match state {
            OutboxState::Queued => self.queued,
            OutboxState::Sending => self.sending,
            OutboxState::InDoubt => self.in_doubt,
            OutboxState::Sent => self.sent,
            OutboxState::Failed => self.failed,
        }
    }
}

/// What [`crate::Store::enqueue`] writes in one transaction: an optional new user, an
/// optional code (voiding the user's older code of its kind, as
/// [`crate::Store::insert_code`]) and the outbox rows they cause.
#[derive(Debug, Clone, Copy, Default)]
pub struct Enqueue<'a> {
    /// A user to insert first (conflicts as [`crate::Store::insert_user`]).
    pub user: Option<&'a crate::model::UserRecord>,
    /// A code to store.
    pub code: Option<&'a crate::model::CodeRecord>,
    /// The rows to queue.
    pub messages: &'a [OutboxMessage],
}

/// The kinds of mail hallpass sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// Confirm an email address (code and link).
    Confirm,
    /// Told to the old address when a user's email changed.
    EmailChanged,
    /// Reset a password (code and link).
    Reset,
    /// Sign in with a short code.
    EmailCode,
    /// A login from a new device.
    NewDevice,
}

impl MailKind {
    /// Every kind.
    pub const ALL: [MailKind; 5] =
        [Self::Confirm, Self::EmailChanged, Self::Reset, Self::EmailCode, Self::NewDevice];

    /// The stable name (template file names, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::EmailChanged => "email_changed",
            Self::Reset => "reset",
            Self::EmailCode => "email_code",
            Self::NewDevice => "new_device",
        }
    }
}

/// The payload of a [`OutboxKind::Mail`] row: what the mail worker renders and sends.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MailPayload {
    /// Which mail.
    pub mail: MailKind,
    /// The recipient's address, as the user typed it.
    pub to: String,
    /// The recipient's username, if any (for the greeting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The one-time code the mail carries; scrubbed once the row is final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// When the code stops working.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Whatever else the mail tells (the new address, the login's time and client).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for MailPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailPayload")
            .field("mail", &self.mail)
            .field("code", &self.code.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl MailPayload {
    /// The outbox row that sends this mail, due at once; its lane is the recipient's
    /// domain.
    pub fn into_message(self, scope: &Scope, user_id: Option<Uuid>, now: OffsetDateTime) -> OutboxMessage {
        let lane = self.to.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
        let payload = serde_json::to_value(&self).unwrap_or(serde_json::Value::Null);
        OutboxMessage::new(scope, OutboxKind::Mail, lane, user_id, payload, now)
    }

    /// The payload with its code taken out: what a final row keeps.
    pub fn scrubbed(&self) -> MailPayload {
        MailPayload { code: None, ..self.clone() }
    }
}

/// When to try again after `attempts` failed attempts (1 for the first failure):
/// 5 s, 10 s, 20 s ... doubling, at most an hour, each scaled by `jitter` (clamped to
/// 0.5..=1.0; a sender passes a random value so that many rows failed together do not
/// come back together).
pub fn retry_delay(attempts: u32, jitter: f64) -> Duration {
    let base_ms: i64 = 5_000;
    let cap_ms: i64 = 3_600_000;
    let shift = attempts.saturating_sub(1).min(20);
    let ms = base_ms.saturating_mul(1_i64 << shift).min(cap_ms);
    let jitter = if jitter.is_finite() { jitter.clamp(0.5, 1.0) } else { 1.0 };
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    Duration::milliseconds((ms as f64 * jitter) as i64)
}

/// How long a row keeps being retried after it was written before it is `failed`.
pub const GIVE_UP_AFTER: Duration = Duration::hours(24);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_within_seconds_and_stop_growing_at_an_hour() {
        assert_eq!(retry_delay(1, 1.0), Duration::seconds(5));
        assert_eq!(retry_delay(2, 1.0), Duration::seconds(10));
        assert_eq!(retry_delay(1, 0.5), Duration::milliseconds(2500));
        assert_eq!(retry_delay(11, 1.0), Duration::hours(1));
        assert_eq!(retry_delay(u32::MAX, 1.0), Duration::hours(1));
        assert_eq!(retry_delay(3, f64::NAN), Duration::seconds(20));
    }

    #[test]
    fn states_read_back() {
        for s in OutboxState::ALL {
            assert_eq!(OutboxState::from_stored(s.as_str()), Some(s));
        }
        assert_eq!(OutboxState::from_stored("x"), None);
        assert_eq!(OutboxKind::from_stored("mail"), Some(OutboxKind::Mail));
    }
}
