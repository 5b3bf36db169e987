//! `GET /v1/changes`: the change stream (server-sent events) of the caller's scope, what
//! makes a cached session check stale, from whichever process made the change (see
//! `hallpass_core::feed`). Events: `session.ended`, `session.changed`, `user.changed`,
//! `key.revoked`, `reset`, and a `ping` every 15 s.
//!
//! Memory per connection is bounded: a client that falls [`hallpass_core::feed::LAG`]
//! events behind is sent `reset` and cut off, never buffered for. The stream also ends
//! after telling the caller that its own key was revoked, and when the server shuts down.

use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::Caller;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::Stream;
use hallpass_core::feed::{Feed, FeedEvent, Resume};
use hallpass_core::store::Change;
use hallpass_core::types::Scope;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use uuid::Uuid;

/// How often a `ping` is sent when nothing else was.
pub const PING_EVERY: Duration = Duration::from_secs(15);

/// Why a `reset` was sent (its `reason`, and the label of its metric).
#[derive(Debug, Clone, Copy)]
enum ResetReason {
    /// The server may have missed changes (its channel to other processes was lost).
    ChangesMissed,
    /// `Last-Event-ID` names an event the server no longer keeps, or another server's.
    CannotResume,
    /// The client read too slowly and was cut off.
    TooSlow,
}

impl ResetReason {
    fn as_str(self) -> &'static str {
        match self {
            ResetReason::ChangesMissed => "changes_missed",
            ResetReason::CannotResume => "cannot_resume",
            ResetReason::TooSlow => "too_slow",
        }
    }
}

/// The stream of changes that make a cached session check stale, for the key's scope.
///
/// Server-sent events (`text/event-stream`), each with an `id` to resume from
/// (`Last-Event-ID`) and a JSON `data` line: `session.ended {session_id, user_id}`,
/// `session.changed {session_id, user_id}` (freshened or its data changed),
/// `user.changed {user_id}` (deactivated, deleted, password set, sessions ended: drop
/// every copy of the user's sessions), `key.revoked {key_id}`, `reset {reason}` (drop
/// everything cached: the server cannot vouch that nothing was missed) and `ping {}`
/// every 15 s.
#[utoipa::path(
    get,
    path = "/v1/changes",
    tag = "sessions",
    security(("bearer" = [])),
    params(("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received, to resume after it")),
    responses(
        (status = 200, description = "The event stream (never ends on its own but for a revoked key, a slow reader or shutdown)",
            body = String, content_type = "text/event-stream"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let last =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let feed = Arc::clone(state.service.feed());
    let (resume, rx, latest) = feed.subscribe(last);
    let watch =
        Watch { feed, scope: caller.scope().clone(), key_id: caller.key.id, metrics: state.metrics.clone() };
    let ping = KeepAlive::new().interval(PING_EVERY).event(Event::default().event("ping").data("{}"));
    Ok(Sse::new(watch.events(resume, rx, latest)).keep_alive(ping).into_response())
}

/// One subscriber's view of the feed.
struct Watch {
    feed: Arc<Feed>,
    scope: Scope,
    key_id: Uuid,
    metrics: Arc<crate::metrics::Metrics>,
}

/// What one feed event means to a subscriber.
enum Seen {
    /// Not for this scope (or nothing a client can act on).
    Skip,
    /// Send it.
    Send(Event),
    /// Send it, then end the stream (the subscriber's own key was revoked).
    Last(Event),
}

impl Watch {
    fn events(
        self,
        resume: Resume,
        rx: broadcast::Receiver<FeedEvent>,
        latest: u64,
    ) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
        let first: Vec<Event> = match resume {
            Resume::From(missed) => {
                let mut out = Vec::new();
                for event in &missed {
                    match self.see(event) {
                        Seen::Skip => {}
                        Seen::Send(e) | Seen::Last(e) => out.push(e),
                    }
                }
                out
            }
            Resume::Reset => vec![self.reset(latest, ResetReason::CannotResume)],
        };
        let closed = {
            let feed = Arc::clone(&self.feed);
            Box::pin(async move { feed.closed().await })
        };
        let state = (self, rx, first.into_iter(), closed, false);
        futures_util::stream::unfold(state, |(watch, mut rx, mut first, mut closed, done)| async move {
            if let Some(e) = first.next() {
                return Some((Ok(e), (watch, rx, first, closed, done)));
            }
            if done {
                return None;
            }
            loop {
                let received = tokio::select! {
                    r = rx.recv() => r,
                    () = &mut closed => return None,
                };
                match received {
                    Ok(event) => match watch.see(&event) {
                        Seen::Skip => continue,
                        Seen::Send(e) => return Some((Ok(e), (watch, rx, first, closed, false))),
                        Seen::Last(e) => return Some((Ok(e), (watch, rx, first, closed, true))),
                    },
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Cut off: from where the feed is now, which a reconnect resumes.
                        let e = watch.reset(watch.feed.latest(), ResetReason::TooSlow);
                        return Some((Ok(e), (watch, rx, first, closed, true)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    fn reset(&self, seq: u64, reason: ResetReason) -> Event {
        self.metrics.change_stream_reset(reason.as_str());
        let data = serde_json::json!({ "reason": reason.as_str() }).to_string();
        Event::default().event("reset").id(format!("{}-{seq}", self.feed.epoch())).data(data)
    }

    fn see(&self, event: &FeedEvent) -> Seen {
        let id = self.feed.id_of(event);
        let (name, data, last) = match &event.change {
            Change::All => return Seen::Send(self.reset(event.seq, ResetReason::ChangesMissed)),
            Change::User { scope, id } if *scope == self.scope => {
                ("user.changed", serde_json::json!({ "user_id": id }), false)
            }
            Change::Session(s) if s.scope == self.scope => {
                let (Some(session), Some(user)) = (s.id, s.user) else { return Seen::Skip };
                let name = if s.ended { "session.ended" } else { "session.changed" };
                (name, serde_json::json!({ "session_id": session, "user_id": user }), false)
            }
            Change::Key { scope, id, revoked: true } if *scope == self.scope => {
                ("key.revoked", serde_json::json!({ "key_id": id }), *id == self.key_id)
            }
            _ => return Seen::Skip,
        };
        self.metrics.change_stream_event();
        let e = Event::default().event(name).id(id).data(data.to_string());
        if last { Seen::Last(e) } else { Seen::Send(e) }
    }
}
