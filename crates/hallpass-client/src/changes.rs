//! The change stream, `GET /v1/changes`: server-sent events parsed by hand
//! ([`SseParser`], the WHATWG event-stream rules that matter here) into [`ChangeEvent`]s.

use crate::error::Error;
use std::collections::VecDeque;
use std::time::Duration;
use uuid::Uuid;

/// A silence this long means the stream is gone (the server pings every 15 s).
pub const SILENCE: Duration = Duration::from_secs(40);

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `session.ended`: the session is gone.
    SessionEnded {
        /// The session.
        session_id: Uuid,
        /// Its user.
        user_id: Uuid,
    },
    /// `session.changed`: freshened, or its data changed.
    SessionChanged {
        /// The session.
        session_id: Uuid,
        /// Its user.
        user_id: Uuid,
    },
    /// `user.changed`: deactivated, deleted, password set, sessions ended: every cached
    /// session of the user is stale.
    UserChanged {
        /// The user.
        user_id: Uuid,
    },
    /// `key.revoked`: an API key of the scope was revoked.
    KeyRevoked {
        /// The key.
        key_id: Uuid,
    },
    /// `reset`: the server cannot vouch that nothing was missed; drop everything cached.
    Reset {
        /// `changes_missed`, `cannot_resume`, `too_slow`.
        reason: String,
    },
    /// `ping`: the connection is alive.
    Ping,
    /// An event this client does not know (a newer server's).
    Other {
        /// The event name.
        event: String,
        /// Its data.
        data: String,
    },
}

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// The event's `id` (resume after it with `Last-Event-ID`), if it had one.
    pub id: Option<String>,
    /// What changed.
    pub change: Change,
}

impl ChangeEvent {
    fn parse(raw: RawEvent) -> ChangeEvent {
        #[derive(serde::Deserialize)]
        struct Ids {
            session_id: Option<Uuid>,
            user_id: Option<Uuid>,
            key_id: Option<Uuid>,
            reason: Option<String>,
        }
        let ids: Option<Ids> = serde_json::from_str(&raw.data).ok();
        let other = |raw: &RawEvent| Change::Other { event: raw.event.clone(), data: raw.data.clone() };
        let change = match (raw.event.as_str(), ids) {
            ("session.ended", Some(Ids { session_id: Some(s), user_id: Some(u), .. })) => {
                Change::SessionEnded { session_id: s, user_id: u }
            }
            ("session.changed", Some(Ids { session_id: Some(s), user_id: Some(u), .. })) => {
                Change::SessionChanged { session_id: s, user_id: u }
            }
            ("user.changed", Some(Ids { user_id: Some(u), .. })) => Change::UserChanged { user_id: u },
            ("key.revoked", Some(Ids { key_id: Some(k), .. })) => Change::KeyRevoked { key_id: k },
            ("reset", ids) => Change::Reset { reason: ids.and_then(|i| i.reason).unwrap_or_default() },
            ("ping", _) => Change::Ping,
            _ => other(&raw),
        };
        ChangeEvent { id: raw.id, change }
    }
}

/// An event as the wire format gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawEvent {
    /// `event:` (default `message`).
    pub event: String,
    /// The `data:` lines joined by `\n`.
    pub data: String,
    /// `id:` of this event, if it set one.
    pub id: Option<String>,
}

/// A text/event-stream parser fed with bytes as they arrive.
///
/// ```
/// use hallpass_client::changes::{RawEvent, SseParser};
/// let mut p = SseParser::default();
/// let mut out: Vec<RawEvent> = Vec::new();
/// p.feed(b"event: ping\r\nda", &mut out);
/// assert!(out.is_empty()); // the event is not complete yet
/// p.feed(b"ta: {}\r\n\r\n", &mut out);
/// assert_eq!(out[0].event, "ping");
/// assert_eq!(out[0].data, "{}");
/// ```
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
}

impl SseParser {
    /// Feeds bytes; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8], out: &mut impl Extend<RawEvent>) {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            let b = self.buf[i];
            if b == b'\n' || b == b'\r' {
                // A `\r` at the end may be half of `\r\n`: wait for the next byte.
                if b == b'\r' && i + 1 == self.buf.len() {
                    break;
                }
                let line = String::from_utf8_lossy(&self.buf[start..i]).into_owned();
                if let Some(e) = self.line(&line) {
                    out.extend(std::iter::once(e));
                }
                i += if b == b'\r' && self.buf.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                start = i;
            } else {
                i += 1;
            }
        }
        self.buf.drain(..start);
    }

    fn line(&mut self, line: &str) -> Option<RawEvent> {
        if line.is_empty() {
            let data = self.data.take();
            let event = self.event.take();
            let id = self.id.take();
            return data.map(|data| RawEvent { event: event.unwrap_or_else(|| "message".into()), data, id });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

/// An open change stream ([`crate::Client::changes`]).
#[derive(Debug)]
pub struct ChangeStream {
    res: reqwest::Response,
    parser: SseParser,
    pending: VecDeque<RawEvent>,
}

impl ChangeStream {
    pub(crate) fn new(res: reqwest::Response) -> ChangeStream {
        ChangeStream { res, parser: SseParser::default(), pending: VecDeque::new() }
    }

    /// The next event; `None` when the server ended the stream. An error when the
    /// connection broke (or stayed silent for [`SILENCE`]).
    pub async fn next(&mut self) -> Option<Result<ChangeEvent, Error>> {
        loop {
            if let Some(raw) = self.pending.pop_front() {
                return Some(Ok(ChangeEvent::parse(raw)));
            }
            match self.res.chunk().await {
                Ok(Some(bytes)) => self.parser.feed(&bytes, &mut self.pending),
                Ok(None) => return None,
                Err(e) => return Some(Err(Error::Transport(e))),
            }
        }
    }

    /// An event already received, without waiting for the network.
    pub(crate) fn ready(&mut self) -> Option<ChangeEvent> {
        self.pending.pop_front().map(ChangeEvent::parse)
    }

    /// Reads what arrives within `wait`, without blocking longer. `false` when the stream
    /// ended or broke.
    pub(crate) async fn pull(&mut self, wait: Duration) -> bool {
        match tokio::time::timeout(wait, self.res.chunk()).await {
            Ok(Ok(Some(bytes))) => {
                self.parser.feed(&bytes, &mut self.pending);
                true
            }
            Ok(Ok(None) | Err(_)) => false,
            Err(_) => true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_chunks_and_line_endings() {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        let text = b": comment\r\nevent: session.ended\r\nid: 1-5\r\ndata: {\"a\":1}\r\n\r\nevent:ping\ndata:{}\n\ndata: x\rdata: y\r\r\n";
        for chunk in text.chunks(3) {
            p.feed(chunk, &mut out);
        }
        assert_eq!(
            out,
            vec![
                RawEvent { event: "session.ended".into(), data: "{\"a\":1}".into(), id: Some("1-5".into()) },
                RawEvent { event: "ping".into(), data: "{}".into(), id: None },
                RawEvent { event: "message".into(), data: "x\ny".into(), id: None },
            ]
        );
    }

    #[test]
    fn events_of_the_contract() {
        let s = Uuid::now_v7();
        let u = Uuid::now_v7();
        let raw = RawEvent {
            event: "session.ended".into(),
            data: format!("{{\"session_id\":\"{s}\",\"user_id\":\"{u}\"}}"),
            id: Some("e-1".into()),
        };
        assert_eq!(ChangeEvent::parse(raw).change, Change::SessionEnded { session_id: s, user_id: u });
        let raw = RawEvent { event: "reset".into(), data: "{\"reason\":\"too_slow\"}".into(), id: None };
        assert_eq!(ChangeEvent::parse(raw).change, Change::Reset { reason: "too_slow".into() });
        let raw = RawEvent { event: "webhook.new".into(), data: "{}".into(), id: None };
        assert!(matches!(ChangeEvent::parse(raw).change, Change::Other { .. }));
    }
}
