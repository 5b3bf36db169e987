//! The change feed behind `GET /v1/changes`: every [`Change`] this process hears of
//! (through the store's change channel, so from whichever process made it), numbered, with
//! a bounded history so that a client that reconnects with the id of the last event it saw
//! is given what it missed, or told to drop everything when the history no longer covers
//! the gap.
//!
//! It is the same channel the process's own caches are kept true by (see
//! [`crate::cache`]): one channel, two readers.
//!
//! Ids are `<epoch>-<seq>`: `epoch` is random per process, `seq` counts from 1. An id of
//! another process (a client that reconnected through a load balancer to another server)
//! or one older than the history cannot be resumed from: [`Feed::subscribe`] answers
//! [`Resume::Reset`].

use crate::store::Change;
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use tokio::sync::broadcast;

/// Events kept for resuming.
pub const HISTORY: usize = 4096;

/// Events a subscriber may fall behind by before it is cut off (its stream then ends with
/// `reset`): what bounds a slow client's memory.
pub const LAG: usize = 1024;

/// One numbered change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    /// Its number in this process's feed.
    pub seq: u64,
    /// What changed.
    pub change: Change,
}

/// The numbered changes of this process, with their recent history.
#[derive(Debug)]
pub struct Feed {
    epoch: String,
    state: Mutex<State>,
    tx: broadcast::Sender<FeedEvent>,
    closed: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug)]
struct State {
    next: u64,
    history: VecDeque<FeedEvent>,
}

/// Where a subscriber starts.
#[derive(Debug)]
pub enum Resume {
    /// From now on, after these missed events (empty without a `Last-Event-ID`).
    From(Vec<FeedEvent>),
    /// The gap cannot be covered (another process's id, or older than the history): the
    /// subscriber must drop everything it cached, then go on from now.
    Reset,
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

impl Feed {
    /// An empty feed with a fresh epoch.
    pub fn new() -> Self {
        let epoch = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let (tx, _) = broadcast::channel(LAG);
        let closed = tokio::sync::watch::Sender::new(false);
        Self { epoch, state: Mutex::new(State { next: 1, history: VecDeque::new() }), tx, closed }
    }

    /// This process's epoch (the first half of every id).
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The id of an event.
    pub fn id_of(&self, event: &FeedEvent) -> String {
        format!("{}-{}", self.epoch, event.seq)
    }

    /// Numbers `change`, keeps it in the history and hands it to every subscriber.
    pub fn push(&self, change: Change) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let event = FeedEvent { seq: state.next, change };
        state.next += 1;
        if state.history.len() == HISTORY {
            state.history.pop_front();
        }
        state.history.push_back(event.clone());
        // Under the lock: a subscriber starting now sees each event once, in the history
        // or on its receiver, never both and never neither.
        let _ = self.tx.send(event);
    }

    /// Subscribes, resuming after `last_event_id` when given. Also answers the number of
    /// the latest event now (0: none yet), from which a reset subscriber goes on.
    pub fn subscribe(&self, last_event_id: Option<&str>) -> (Resume, broadcast::Receiver<FeedEvent>, u64) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let rx = self.tx.subscribe();
        let latest = state.next - 1;
        let Some(last) = last_event_id else {
            return (Resume::From(Vec::new()), rx, latest);
        };
        let seq = last
            .split_once('-')
            .filter(|(epoch, _)| *epoch == self.epoch)
            .and_then(|(_, seq)| seq.parse::<u64>().ok())
            .filter(|seq| *seq < state.next);
        let resume = match seq {
            // Covered when the event right after it is still kept (or nothing came since).
            Some(seq) if seq + 1 == state.next => Resume::From(Vec::new()),
            Some(seq) if state.history.front().is_some_and(|first| first.seq <= seq + 1) => {
                Resume::From(state.history.iter().filter(|e| e.seq > seq).cloned().collect())
            }
            _ => Resume::Reset,
        };
        (resume, rx, latest)
    }

    /// Ends every subscription (the server is shutting down): [`Feed::closed`] resolves.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Resolves once [`Feed::close`] was called.
    pub async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// The number of the latest event (0: none yet).
    pub fn latest(&self) -> u64 {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).next - 1
    }

    /// Subscribers now.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Scope;

    fn user(n: u128) -> Change {
        Change::user(&Scope::default_scope(), uuid::Uuid::from_u128(n))
    }

    #[test]
    fn a_subscriber_resumes_after_its_last_event_or_is_told_to_reset() {
        let feed = Feed::new();
        for n in 1..=3 {
            feed.push(user(n));
        }
        let id2 = format!("{}-2", feed.epoch());
        let Resume::From(missed) = feed.subscribe(Some(&id2)).0 else { panic!("covered") };
        assert_eq!(missed.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
        assert_eq!(missed[0].change, user(3));
        let id3 = format!("{}-3", feed.epoch());
        assert!(matches!(feed.subscribe(Some(&id3)).0, Resume::From(m) if m.is_empty()));
        // Another process's id, a future one, or nonsense: reset.
        for other in ["0123456789ab-2".to_owned(), format!("{}-9", feed.epoch()), "x".to_owned()] {
            assert!(matches!(feed.subscribe(Some(&other)).0, Resume::Reset), "{other}");
        }
        // Older than the history: reset.
        for n in 0..HISTORY as u128 {
            feed.push(user(n));
        }
        assert!(matches!(feed.subscribe(Some(&id2)).0, Resume::Reset));
        // Events 4 to 3 + HISTORY are kept: resuming after 4 is covered.
        let kept = format!("{}-4", feed.epoch());
        assert!(matches!(feed.subscribe(Some(&kept)).0, Resume::From(m) if m.len() == HISTORY - 1));
    }

    #[test]
    fn every_event_reaches_a_subscriber_once_in_order() {
        let feed = std::sync::Arc::new(Feed::new());
        feed.push(user(1));
        let id = format!("{}-1", feed.epoch());
        let pusher = {
            let feed = feed.clone();
            std::thread::spawn(move || (2..=200).for_each(|n| feed.push(user(n))))
        };
        let (resume, mut rx, _) = feed.subscribe(Some(&id));
        pusher.join().unwrap();
        let Resume::From(missed) = resume else { panic!("covered") };
        let mut seen: Vec<u64> = missed.iter().map(|e| e.seq).collect();
        while let Ok(e) = rx.try_recv() {
            seen.push(e.seq);
        }
        assert_eq!(seen, (2..=200).collect::<Vec<_>>());
    }
}
