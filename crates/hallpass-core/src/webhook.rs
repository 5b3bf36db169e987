//! Webhooks: the endpoints a scope registers ([`WebhookEndpoint`]), the events they
//! subscribe to ([`EventType`]), the outbox rows that carry one event to one endpoint
//! ([`DeliveryPayload`], kind [`crate::OutboxKind::Webhook`]), and the Standard Webhooks
//! signature ([`sign`]).
//!
//! A change that causes an event hands the store, with the change itself, one outbox row
//! per endpoint of the scope that subscribes to the event's type: the rows commit with the
//! change or not at all. Each row is one delivery: its id is the `webhook-id` (stable
//! across retries), its lane the endpoint's id (the worker bounds concurrency per lane),
//! and its payload the exact body to send (kept as text, so every attempt sends the same
//! bytes) plus what the latest attempt learned (status, response time).
//!
//! Endpoint secrets are `whsec_` + base64 of 32 random bytes. The store keeps them sealed
//! by the server secret (associated data `webhook|<scope>|<endpoint id>`), never in
//! clear; a rotation keeps the previous secret until `previous_until`, and both sign
//! while it lasts.

use crate::types::Scope;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The events of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A user was registered (API, CLI, admin page, import of one, provider sign-in).
    UserCreated,
    /// A user's fields changed.
    UserUpdated,
    /// A user was deleted.
    UserDeleted,
    /// A user was deactivated.
    UserDeactivated,
    /// A user was reactivated.
    UserReactivated,
    /// A login made a session.
    LoginSucceeded,
    /// A login failed (with why).
    LoginFailed,
    /// A session ended (with why).
    SessionEnded,
    /// A user's password was set.
    PasswordChanged,
    /// A password was reset with a code.
    PasswordReset,
    /// An email was confirmed.
    EmailConfirmed,
    /// A provider identity was linked.
    IdentityLinked,
    /// A provider identity was unlinked.
    IdentityUnlinked,
    /// A second factor was enabled.
    MfaEnabled,
    /// Second factors were removed.
    MfaDisabled,
    /// A passkey was added.
    PasskeyAdded,
    /// A passkey was removed.
    PasskeyRemoved,
}

impl EventType {
    /// Every type, in the contract's order.
    pub const ALL: [EventType; 17] = [
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::UserDeactivated,
        Self::UserReactivated,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::SessionEnded,
        Self::PasswordChanged,
        Self::PasswordReset,
        Self::EmailConfirmed,
        Self::IdentityLinked,
        Self::IdentityUnlinked,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::PasskeyAdded,
        Self::PasskeyRemoved,
    ];

    /// The name on the wire (`type` of the body).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDeleted => "user.deleted",
            Self::UserDeactivated => "user.deactivated",
            Self::UserReactivated => "user.reactivated",
            Self::LoginSucceeded => "login.succeeded",
            Self::LoginFailed => "login.failed",
            Self::SessionEnded => "session.ended",
            Self::PasswordChanged => "password.changed",
            Self::PasswordReset => "password.reset",
            Self::EmailConfirmed => "email.confirmed",
            Self::IdentityLinked => "identity.linked",
            Self::IdentityUnlinked => "identity.unlinked",
            Self::MfaEnabled => "mfa.enabled",
            Self::MfaDisabled => "mfa.disabled",
            Self::PasskeyAdded => "passkey.added",
            Self::PasskeyRemoved => "passkey.removed",
        }
    }

    /// Reads a name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// What an endpoint subscribes to, as stored: the names joined by `,`.
pub fn events_to_stored(events: &[EventType]) -> String {
    events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(",")
}

/// Reads [`events_to_stored`]'s text (unknown names are skipped: a newer server's).
pub fn events_from_stored(s: &str) -> Vec<EventType> {
    s.split(',').filter_map(EventType::parse).collect()
}

/// An endpoint as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// UUIDv7.
    pub id: Uuid,
    /// The scope whose events it receives.
    pub scope: Scope,
    /// Where deliveries go (`http` or `https`).
    pub url: String,
    /// The events it receives (never empty).
    pub events: Vec<EventType>,
    /// The operator's note.
    pub description: Option<String>,
    /// The signing secret, sealed by the server secret.
    pub secret: String,
    /// The secret before the latest rotation, sealed, while it still signs.
    pub previous_secret: Option<String>,
    /// Until when `previous_secret` signs too.
    pub previous_until: Option<OffsetDateTime>,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("scope", &self.scope)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &"***")
            .finish_non_exhaustive()
    }
}

impl WebhookEndpoint {
    /// Whether it receives events of `t`.
    pub fn wants(&self, t: EventType) -> bool {
        self.events.contains(&t)
    }
}

/// The associated data a secret of endpoint `id` in `scope` is sealed with.
pub fn secret_aad(scope: &Scope, id: Uuid) -> Vec<u8> {
    format!("webhook|{}|{id}", scope.as_str()).into_bytes()
}

/// A new endpoint secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    format!("whsec_{}", STANDARD.encode(crate::secret::random_bytes()))
}

/// The key bytes of a `whsec_` secret (the base64 after the prefix), as the
/// specification defines them.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix("whsec_")?).ok()
}

/// One Standard Webhooks signature: `v1,` + base64 of HMAC-SHA256 over
/// `{id}.{timestamp}.{body}` keyed by the secret's bytes.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The payload of a [`crate::OutboxKind::Webhook`] row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryPayload {
    /// The endpoint it goes to.
    pub endpoint_id: Uuid,
    /// The event's type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The body to send, exactly (`{type, timestamp, data}` as JSON text).
    pub body: String,
    /// The HTTP status of the latest attempt, when one was answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// How long the latest attempt took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_response_ms: Option<u64>,
}

/// One event about to be written: its type, when, the user it is about, and its `data`
/// (ids, names, emails, client, reason: never a token, code, secret or hash).
#[derive(Debug, Clone)]
pub struct Event {
    /// The type.
    pub event_type: EventType,
    /// When the change happened.
    pub at: OffsetDateTime,
    /// The user it is about.
    pub user_id: Option<Uuid>,
    /// The body's `data`.
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl Event {
    /// An event of `event_type` at `at` about `user_id` with no data yet (the user's id
    /// goes in as `user_id`).
    pub fn new(event_type: EventType, at: OffsetDateTime, user_id: Option<Uuid>) -> Self {
        let mut data = serde_json::Map::new();
        if let Some(u) = user_id {
            data.insert("user_id".into(), u.to_string().into());
        }
        Self { event_type, at, user_id, data }
    }

    /// Adds a field to `data` (`None` is left out).
    pub fn with(mut self, key: &str, value: impl Into<Option<serde_json::Value>>) -> Self {
        if let Some(v) = value.into() {
            self.data.insert(key.to_owned(), v);
        }
        self
    }

    /// Adds a text field to `data` (`None` is left out).
    pub fn with_str(self, key: &str, value: Option<&str>) -> Self {
        let v = value.map(|s| serde_json::Value::String(s.to_owned()));
        self.with(key, v)
    }

    /// The body every endpoint gets: `{type, timestamp, data}`.
    pub fn body(&self, scope: &Scope) -> String {
        let mut data = self.data.clone();
        data.insert("scope".into(), scope.as_str().into());
        let ts = self.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        serde_json::json!({ "type": self.event_type.as_str(), "timestamp": ts, "data": data }).to_string()
    }

    /// The delivery row of this event to `endpoint`, due at once.
    pub fn delivery(&self, scope: &Scope, endpoint: Uuid, body: &str) -> crate::OutboxMessage {
        let payload = DeliveryPayload {
            endpoint_id: endpoint,
            event_type: self.event_type.as_str().to_owned(),
            body: body.to_owned(),
            last_status: None,
            last_response_ms: None,
        };
        crate::OutboxMessage::new(
            scope,
            crate::OutboxKind::Webhook,
            endpoint.to_string(),
            self.user_id,
            serde_json::to_value(&payload).unwrap_or(serde_json::Value::Null),
            self.at,
        )
    }
}

/// When to try a delivery again after `attempts` failed attempts (1 for the first
/// failure): 1 s, 2 s, 4 s ... doubling to at most an hour, each scaled by `jitter`
/// (clamped to 0.5..=1.0). A receiver back after a minute is caught up within about one
/// more: the first six retries come within a minute of the first failure.
pub fn retry_delay(attempts: u32, jitter: f64) -> Duration {
    let base_ms: i64 = 1_000;
    let cap_ms: i64 = 3_600_000;
    let shift = attempts.saturating_sub(1).min(30);
    let ms = base_ms.saturating_mul(1_i64 << shift).min(cap_ms);
    let jitter = if jitter.is_finite() { jitter.clamp(0.5, 1.0) } else { 1.0 };
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    Duration::milliseconds((ms as f64 * jitter) as i64)
}

/// Attempts after which a delivery is `failed`: with [`retry_delay`] about a day (12
/// doubling steps, about 68 minutes in all, then hourly).
pub const MAX_ATTEMPTS: u32 = 36;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(events_from_stored(&events_to_stored(&EventType::ALL)), EventType::ALL.to_vec());
    }

    #[test]
    fn signature_matches_the_specification_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn retries_start_within_seconds_and_give_up_after_about_a_day() {
        assert_eq!(retry_delay(1, 1.0), Duration::seconds(1));
        assert_eq!(retry_delay(20, 1.0), Duration::hours(1));
        let total: Duration = (1..MAX_ATTEMPTS).map(|a| retry_delay(a, 1.0)).sum();
        assert!(total > Duration::hours(20) && total < Duration::hours(28), "{total}");
    }
}
