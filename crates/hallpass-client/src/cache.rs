//! [`Sessions`]: checked sessions kept in memory (bounded size and age) and kept true by
//! the change stream. The rules:
//!
//! - memory answers only while the stream is connected; while it is down every check asks
//!   the server (and nothing is stored);
//! - `session.ended`, `session.changed` drop that session, `user.changed` every session
//!   of the user, `key.revoked` and `reset` everything;
//! - a reconnect that resumed (`Last-Event-ID` accepted: no `reset` first) keeps the cache,
//!   after applying the events it missed; any other reconnect starts empty;
//! - an answer from the server is stored only if nothing was dropped while it was on its
//!   way (an invalidation counter), so a check racing a revocation cannot store a session
//!   the stream already ended;
//! - entries live at most the configured TTL and never past the session's own expiry.

use crate::changes::{Change, ChangeEvent};
use crate::client::Client;
use crate::error::Error;
use crate::types::SessionWithUser;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

type Key = [u8; 32];

/// Options of [`Sessions`].
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// At most this many sessions are kept (the oldest go first). Default 10 000.
    pub capacity: usize,
    /// A session is asked for again after this long at most. Default 5 minutes.
    pub ttl: Duration,
    /// The cookie `Authenticated` (feature `axum`) reads the token from, after `X-Session-Token`
    /// and `Authorization: Bearer`. Default none.
    pub cookie: Option<String>,
    /// The first wait before reconnecting the stream (doubles to 5 s). Default 100 ms.
    pub reconnect_delay: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity: 10_000,
            ttl: Duration::from_secs(300),
            cookie: None,
            reconnect_delay: Duration::from_millis(100),
        }
    }
}

/// Counters of a [`Sessions`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Checks answered from memory.
    pub hits: u64,
    /// Checks that asked the server.
    pub misses: u64,
    /// Times the change stream (re)connected.
    pub connects: u64,
    /// Times the whole cache was dropped (reset, key revoked, fresh reconnect).
    pub clears: u64,
}

/// A session check that answers from memory while hallpass's change stream vouches for it.
/// Cheap to clone; the stream runs on a task of the current tokio runtime and stops when
/// the last clone is dropped.
///
/// ```no_run
/// # async fn run(token: &str) -> Result<(), hallpass_client::Error> {
/// use hallpass_client::{CacheConfig, Client, Sessions};
/// let sessions = Sessions::start(Client::new("http://127.0.0.1:8080", "hp_...")?, CacheConfig::default());
/// let me = sessions.check(token).await?; // asks hallpass
/// let again = sessions.check(token).await?; // from memory, until the session changes
/// assert_eq!(me.session.id, again.session.id);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Sessions {
    inner: Arc<Inner>,
    _task: Arc<TaskGuard>,
}

#[derive(Debug)]
struct TaskGuard(tokio::task::AbortHandle);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug)]
struct Inner {
    client: Client,
    config: CacheConfig,
    state: Mutex<State>,
    /// The stream is connected and caught up: memory may answer.
    live: AtomicBool,
    live_tx: watch::Sender<bool>,
    /// Bumped by every drop: a server answer is stored only if it did not move.
    epoch: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    connects: AtomicU64,
    clears: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    by_key: HashMap<Key, Entry>,
    by_session: HashMap<Uuid, Key>,
    by_user: HashMap<Uuid, Vec<Key>>,
    /// Insertion order, for eviction; stale pairs (entry gone or replaced) are skipped.
    order: VecDeque<(Key, u64)>,
    next: u64,
}

#[derive(Debug)]
struct Entry {
    value: Arc<SessionWithUser>,
    until: Instant,
    seq: u64,
}

impl State {
    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.by_key.remove(key) {
            self.by_session.remove(&e.value.session.id);
            if let Some(keys) = self.by_user.get_mut(&e.value.user.id) {
                keys.retain(|k| k != key);
                if keys.is_empty() {
                    self.by_user.remove(&e.value.user.id);
                }
            }
        }
    }

    fn clear(&mut self) {
        *self = State { next: self.next, ..State::default() };
    }

    fn insert(&mut self, key: Key, value: Arc<SessionWithUser>, until: Instant, capacity: usize) {
        self.remove(&key);
        while self.by_key.len() >= capacity.max(1) {
            let Some((old, seq)) = self.order.pop_front() else { break };
            if self.by_key.get(&old).is_some_and(|e| e.seq == seq) {
                self.remove(&old);
            }
        }
        self.next += 1;
        let seq = self.next;
        self.by_session.insert(value.session.id, key);
        self.by_user.entry(value.user.id).or_default().push(key);
        self.by_key.insert(key, Entry { value, until, seq });
        self.order.push_back((key, seq));
        if self.order.len() > 2 * capacity.max(16) {
            let by_key = &self.by_key;
            self.order.retain(|(k, s)| by_key.get(k).is_some_and(|e| e.seq == *s));
        }
    }
}

fn key_of(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    /// Starts the cache and its change stream (on the current tokio runtime).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start(client: Client, config: CacheConfig) -> Sessions {
        let (live_tx, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            client,
            config,
            state: Mutex::new(State::default()),
            live: AtomicBool::new(false),
            live_tx,
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            clears: AtomicU64::new(0),
        });
        let task = tokio::spawn(follow(Arc::downgrade(&inner)));
        Sessions { inner, _task: Arc::new(TaskGuard(task.abort_handle())) }
    }

    /// The client the cache asks.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The configured cookie name, if any.
    pub fn cookie(&self) -> Option<&str> {
        self.inner.config.cookie.as_deref()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    /// The session of `token` and its user: from memory when the stream vouches for it,
    /// else from the server (then remembered). `session_invalid` when it is not valid.
    pub async fn check(&self, token: &str) -> Result<Arc<SessionWithUser>, Error> {
        let key = key_of(token);
        if let Some(v) = self.cached_key(&key) {
            return Ok(v);
        }
        self.inner.misses.fetch_add(1, Ordering::Relaxed);
        let was_live = self.inner.live.load(Ordering::Acquire);
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let value = Arc::new(self.inner.client.get_session(token).await?);
        if was_live {
            let mut state = self.state();
            // Under the lock: a drop that happened meanwhile moved the epoch first.
            if self.inner.live.load(Ordering::Acquire) && self.inner.epoch.load(Ordering::Acquire) == epoch {
                let now = Instant::now();
                let left = value.session.ends_at() - time::OffsetDateTime::now_utc();
                let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
                let until = now + left.min(self.inner.config.ttl);
                state.insert(key, Arc::clone(&value), until, self.inner.config.capacity);
            }
        }
        Ok(value)
    }

    /// The session of `token` from memory only (`None`: not cached, expired, or the stream
    /// is down).
    pub fn cached(&self, token: &str) -> Option<Arc<SessionWithUser>> {
        self.cached_key(&key_of(token))
    }

    fn cached_key(&self, key: &Key) -> Option<Arc<SessionWithUser>> {
        if !self.inner.live.load(Ordering::Acquire) {
            return None;
        }
        let state = self.state();
        let e = state.by_key.get(key)?;
        if e.until <= Instant::now() {
            return None;
        }
        self.inner.hits.fetch_add(1, Ordering::Relaxed);
        Some(Arc::clone(&e.value))
    }

    /// Forgets the session of `token` (the stream would say so within milliseconds; this is
    /// for the very next request after the app's own logout).
    pub fn forget(&self, token: &str) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.state().remove(&key_of(token));
    }

    /// Logs the session out (`DELETE /v1/session`) and forgets it.
    pub async fn end(&self, token: &str) -> Result<(), Error> {
        self.forget(token);
        self.inner.client.end_session(token).await
    }

    /// Whether memory may answer now (the stream is connected and caught up).
    pub fn is_live(&self) -> bool {
        self.inner.live.load(Ordering::Acquire)
    }

    /// Waits until the stream is connected, at most `limit`; answers whether it is.
    pub async fn wait_live(&self, limit: Duration) -> bool {
        let mut rx = self.inner.live_tx.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|live| *live)).await.is_ok_and(|r| r.is_ok())
    }

    /// How many sessions are in memory.
    pub fn len(&self) -> usize {
        self.state().by_key.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
            connects: self.inner.connects.load(Ordering::Relaxed),
            clears: self.inner.clears.load(Ordering::Relaxed),
        }
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves a map, not a broken invariant worth dying for.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inner {
    fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Release);
        self.live_tx.send_replace(live);
    }

    fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        lock(&self.state).clear();
        self.clears.fetch_add(1, Ordering::Relaxed);
    }

    fn apply(&self, event: &ChangeEvent) {
        match &event.change {
            Change::SessionEnded { session_id, .. } | Change::SessionChanged { session_id, .. } => {
                self.epoch.fetch_add(1, Ordering::AcqRel);
                let mut s = lock(&self.state);
                if let Some(key) = s.by_session.get(session_id).copied() {
                    s.remove(&key);
                }
            }
            Change::UserChanged { user_id } => {
                self.epoch.fetch_add(1, Ordering::AcqRel);
                let mut s = lock(&self.state);
                for key in s.by_user.get(user_id).cloned().unwrap_or_default() {
                    s.remove(&key);
                }
            }
            Change::KeyRevoked { .. } | Change::Reset { .. } => {
                tracing::debug!(change = ?event.change, "hallpass: dropping every cached session");
                self.clear();
            }
            Change::Ping | Change::Other { .. } => {}
        }
    }
}

/// Follows the change stream for as long as the cache lives.
async fn follow(weak: std::sync::Weak<Inner>) {
    let mut last_id: Option<String> = None;
    let mut delay = Duration::ZERO;
    loop {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let Some(inner) = weak.upgrade() else { return };
        let base_delay = inner.config.reconnect_delay;
        let client = inner.client.clone();
        drop(inner);
        let stream = client.changes(last_id.as_deref()).await;
        let Some(inner) = weak.upgrade() else { return };
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "hallpass: the change stream is down; asking the server for every check");
                delay = (delay * 2).clamp(base_delay, Duration::from_secs(5));
                continue;
            }
        };
        inner.connects.fetch_add(1, Ordering::Relaxed);
        if last_id.is_none() {
            // Nothing to resume from: whatever is cached may have missed something.
            inner.clear();
        }
        // A resume sends the missed events at once: apply them before memory answers
        // again (a `reset` among them clears everything).
        for _ in 0..50 {
            if !stream.pull(Duration::from_millis(20)).await {
                break;
            }
            let mut any = false;
            while let Some(ev) = stream.ready() {
                any = true;
                inner.apply(&ev);
                if ev.id.is_some() {
                    last_id.clone_from(&ev.id);
                }
            }
            if !any {
                break;
            }
        }
        inner.set_live(true);
        drop(inner);
        loop {
            let next = tokio::time::timeout(crate::changes::SILENCE, stream.next()).await;
            let Some(inner) = weak.upgrade() else { return };
            match next {
                Ok(Some(Ok(ev))) => {
                    inner.apply(&ev);
                    if ev.id.is_some() {
                        last_id.clone_from(&ev.id);
                    }
                }
                Ok(Some(Err(_)) | None) | Err(_) => {
                    inner.set_live(false);
                    tracing::info!("hallpass: the change stream ended; reconnecting");
                    delay = base_delay;
                    break;
                }
            }
        }
    }
}
