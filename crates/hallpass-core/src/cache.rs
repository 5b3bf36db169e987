//! The per-process caches of the hot path: sessions (with their users) by token hash, and
//! API keys by key hash.
//!
//! A cached copy is only ever a shortcut for the read it replaces, so it must never say
//! "valid" where the database would say "ended". The rules:
//!
//! - **Every change made through this process drops what it touches** before its answer
//!   is sent: the service calls `Caches::apply` after each store write that ends a
//!   session or changes a user or key (see [`Change`]), and publishes the change to other
//!   processes ([`crate::Store::publish_change`]).
//! - **Changes made by other processes** arrive through [`crate::Store::changes`]
//!   (PostgreSQL `LISTEN`, SQLite `data_version`, MariaDB's polled `hallpass_changes`
//!   log); a lost channel drops everything.
//! - **One exception, a login**: it ends sessions only when the per-user cap does, and
//!   only then is it published to other processes (by the backend inside the login's own
//!   transaction where it can). A login that ends nothing changes only the user's
//!   `last_login_at`; another process's cached copy of the user may show the previous
//!   value for at most `ttl`. That field is informational (no decision reads it), and a
//!   cross-process message per login would cost more than the login's own writes.
//! - **Nothing lives longer than `ttl`**, the bound on staleness should a notification
//!   be lost on the way (a process that crashed between its commit and its notify).
//! - **A read racing a change loses**: each load takes a ticket from one counter before
//!   it reads the database, each change takes one after its commit; a cached copy counts
//!   only when its ticket is newer than every change to its user, its token and the last
//!   "drop everything". So a copy read before a change can never be kept after it.
//! - Expiry and `active` are judged on every hit, by the service's clock, exactly as on a
//!   database read.

use crate::model::{ApiKey, SessionView};
use crate::secret::{TokenHash, TokenHashBuilder};
use crate::store::Change;
use moka::sync::Cache;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How the session and API-key caches are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// Never cache.
    Off,
    /// Cache when the store can tell this process of other processes' changes
    /// ([`crate::Store::changes`] is `Some`: SQLite, PostgreSQL, MariaDB); else off.
    Auto,
    /// Always cache; with a store that cannot tell of other processes' changes, a change
    /// made through another process is seen after at most `ttl`.
    On,
}

/// Settings of the caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Whether to cache (default [`CacheMode::Auto`]).
    pub mode: CacheMode,
    /// The longest a copy is used (default 10 s): the bound on staleness if a change
    /// notification is lost, and with [`CacheMode::On`] on a store without a channel.
    pub ttl: Duration,
    /// Most sessions kept (default 50,000; beyond, the least used go first).
    pub capacity: u64,
    /// Most bytes the session cache holds (default 100 MiB), by each entry's estimated
    /// size ([`entry_weight`]): a few sessions with large `data` or `extra` cannot hold
    /// more memory than this. An entry counts at least `max_bytes / capacity` (2 KiB by
    /// default), so `capacity` still bounds the number of entries.
    pub max_bytes: u64,
}

/// Bytes one cached session is assumed to hold beyond its `data` and `extra`: the
/// structs, ids, names, the map node, and their share of the JSON answer kept with it.
pub const ENTRY_OVERHEAD_BYTES: u64 = 1024;

/// The estimated memory of one cached session, computed once when it is kept: the
/// overhead plus twice the compact JSON of `data` and `extra` (the parsed copy and the
/// rendered answer, which are about as large as their JSON), at least `floor`.
pub fn entry_weight(view: &SessionView, floor: u64) -> u32 {
    let json = crate::types::json_size(&view.session.data) + crate::types::json_size(&view.user.extra);
    let bytes = ENTRY_OVERHEAD_BYTES.saturating_add(2 * json as u64).max(floor);
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self { mode: CacheMode::Auto, ttl: Duration::from_secs(10), capacity: 50_000, max_bytes: 100 << 20 }
    }
}

#[derive(Debug)]
struct CachedSession {
    view: Arc<SessionView>,
    ticket: u64,
    /// [`entry_weight`], computed once when kept (the weigher reads it).
    weight: u32,
    /// When it was kept: a copy older than `ttl` is not served.
    kept: Instant,
}

/// Weighs a cached session by its [`entry_weight`].
#[derive(Debug, Clone, Copy)]
struct ByWeight;

impl quick_cache::Weighter<TokenHash, Arc<CachedSession>> for ByWeight {
    fn weight(&self, _: &TokenHash, entry: &Arc<CachedSession>) -> u64 {
        u64::from(entry.weight)
    }
}

type SessionCache = quick_cache::sync::Cache<
    TokenHash,
    Arc<CachedSession>,
    ByWeight,
    TokenHashBuilder,
    quick_cache::sync::DefaultLifecycle<TokenHash, Arc<CachedSession>>,
>;

#[derive(Debug, Clone)]
struct CachedKey {
    key: Arc<ApiKey>,
    ticket: u64,
    kept: Instant,
}

/// Most API keys kept; beyond it the map starts again (a deployment has a handful).
const MAX_KEYS: usize = 10_000;

/// The caches of one service.
pub(crate) struct Caches {
    /// A `quick_cache` (bounded by bytes, the least used out first), not a `moka` one: it
    /// is read on every session check, and its lookup is a shard's read lock and a probe
    /// where `moka` also records every read for its eviction policy. Expiry (`ttl`) is
    /// judged on each hit.
    sessions: SessionCache,
    /// The least an entry weighs: `max_bytes / capacity`.
    floor: u64,
    /// A plain map, not a `moka` cache: a deployment has a handful of keys, every request
    /// looks one up, and a read lock and one probe cost a tenth of a `moka` lookup.
    keys: RwLock<HashMap<TokenHash, CachedKey, TokenHashBuilder>>,
    ttl: Duration,
    /// The ticket of the latest change of each user / session touched within `ttl`.
    users_changed: Cache<Uuid, u64>,
    sessions_changed: Cache<TokenHash, u64, TokenHashBuilder>,
    /// Tickets: loads and changes draw from one counter.
    tickets: AtomicU64,
    /// The ticket of the last "drop everything" and of the last key change.
    all_changed: AtomicU64,
    /// The ticket of the latest change of any kind: a copy newer than it needs no look at
    /// the per-user and per-session marks (the common case between changes).
    any_changed: AtomicU64,
    keys_changed: AtomicU64,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches").field("sessions", &self.sessions.len()).finish_non_exhaustive()
    }
}

impl Caches {
    pub(crate) fn new(settings: &CacheSettings) -> Self {
        let ttl = settings.ttl.max(Duration::from_millis(1));
        let max_bytes = settings.max_bytes.max(1);
        let floor = max_bytes / settings.capacity.max(1);
        Self {
            sessions: SessionCache::with(
                usize::try_from(settings.capacity).unwrap_or(usize::MAX).max(1),
                max_bytes,
                ByWeight,
                TokenHashBuilder,
                quick_cache::sync::DefaultLifecycle::default(),
            ),
            floor,
            keys: RwLock::new(HashMap::with_hasher(TokenHashBuilder)),
            ttl,
            // Change marks must outlive every copy they could veto: the same ttl, and room
            // for far more changes than copies (an evicted mark could revive a copy).
            users_changed: Cache::builder().time_to_live(ttl).build(),
            sessions_changed: Cache::builder().time_to_live(ttl).build_with_hasher(TokenHashBuilder),
            tickets: AtomicU64::new(1),
            all_changed: AtomicU64::new(0),
            any_changed: AtomicU64::new(0),
            keys_changed: AtomicU64::new(0),
        }
    }

    /// A ticket for a load about to read the database.
    pub(crate) fn ticket(&self) -> u64 {
        self.tickets.fetch_add(1, Ordering::SeqCst)
    }

    fn fresh(&self, ticket: u64) -> bool {
        ticket > self.all_changed.load(Ordering::SeqCst)
    }

    /// The cached session of a token hash, if a copy is still good (expiry is the caller's).
    /// Shared, not copied: every answer a copy serves is the same [`SessionView`].
    pub(crate) fn session(&self, hash: &TokenHash) -> Option<Arc<SessionView>> {
        let hit = self.sessions.get(hash)?;
        let good = hit.kept.elapsed() < self.ttl
            && (hit.ticket > self.any_changed.load(Ordering::SeqCst)
                || self.fresh(hit.ticket)
                    && self.users_changed.get(&hit.view.user.id).is_none_or(|t| t < hit.ticket)
                    && self.sessions_changed.get(hash).is_none_or(|t| t < hit.ticket));
        if good {
            Some(Arc::clone(&hit.view))
        } else {
            self.sessions.remove(hash);
            None
        }
    }

    /// Keeps what a load with `ticket` read.
    pub(crate) fn keep_session(&self, hash: TokenHash, view: Arc<SessionView>, ticket: u64) {
        let weight = entry_weight(&view, self.floor);
        self.sessions.insert(hash, Arc::new(CachedSession { view, ticket, weight, kept: Instant::now() }));
    }

    /// The cached API key of a key hash.
    pub(crate) fn key(&self, hash: &TokenHash) -> Option<Arc<ApiKey>> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let hit = keys.get(hash)?;
        // A stale copy is left for the next load to replace (`keep_key`).
        (self.fresh(hit.ticket)
            && hit.ticket > self.keys_changed.load(Ordering::SeqCst)
            && hit.kept.elapsed() < self.ttl)
            .then(|| Arc::clone(&hit.key))
    }

    /// Keeps a key a load with `ticket` read.
    pub(crate) fn keep_key(&self, hash: TokenHash, key: Arc<ApiKey>, ticket: u64) {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if keys.len() >= MAX_KEYS && !keys.contains_key(&hash) {
            keys.clear();
        }
        keys.insert(hash, CachedKey { key, ticket, kept: Instant::now() });
    }

    fn drop_keys(&self) {
        self.keys.write().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Drops what `change` touches; copies loaded before now no longer count.
    pub(crate) fn apply(&self, change: &Change) {
        let ticket = self.ticket();
        // Before the marks: a reader that sees no newer `any_changed` yet reads the marks,
        // which it then finds (the mark is set before `apply` returns, and a copy with a
        // later ticket cannot have read older data than this change's commit).
        self.any_changed.fetch_max(ticket, Ordering::SeqCst);
        match change {
            Change::User { id, .. } => self.users_changed.insert(*id, ticket),
            Change::Session(s) => {
                self.sessions_changed.insert(s.hash, ticket);
                self.sessions.remove(&s.hash);
            }
            Change::Key { .. } => {
                self.keys_changed.fetch_max(ticket, Ordering::SeqCst);
                self.drop_keys();
            }
            Change::All => {
                self.all_changed.fetch_max(ticket, Ordering::SeqCst);
                self.sessions.clear();
                self.drop_keys();
            }
        }
    }

    /// Sessions held now (approximate).
    pub(crate) fn len(&self) -> u64 {
        self.sessions.len() as u64
    }

    /// The estimated bytes the sessions held now weigh (approximate).
    #[cfg(test)]
    pub(crate) fn weight(&self) -> u64 {
        self.sessions.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientInfo, Session, User};
    use crate::types::{Group, JsonObject, Scope};
    use time::OffsetDateTime;

    fn pair() -> Arc<SessionView> {
        let now = OffsetDateTime::UNIX_EPOCH;
        let scope = Scope::parse("app").unwrap();
        let user = User {
            id: Uuid::now_v7(),
            scope: scope.clone(),
            username: None,
            email: None,
            group: Group::parse("default").unwrap(),
            extra: JsonObject::new(),
            active: true,
            confirmation: None,
            confirmed: false,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        let session = Session {
            id: Uuid::now_v7(),
            user_id: user.id,
            scope,
            created_at: now,
            last_seen_at: now,
            expires_at: now,
            absolute_expires_at: now,
            data: JsonObject::new(),
            client: ClientInfo::default(),
            amr: vec!["pwd".into()],
        };
        Arc::new(SessionView::new(session, user))
    }

    #[test]
    fn a_copy_read_before_a_change_never_counts_after_it() {
        let caches = Caches::new(&CacheSettings::default());
        let hash = TokenHash::of("t");
        let view = pair();
        let user_id = view.user.id;

        // Kept, then hit.
        let t = caches.ticket();
        caches.keep_session(hash, Arc::clone(&view), t);
        assert!(caches.session(&hash).is_some());

        // A load that read before a change to its user is kept too late: never served.
        let before = caches.ticket();
        caches.apply(&Change::user(&Scope::default_scope(), user_id));
        caches.keep_session(hash, Arc::clone(&view), before);
        assert!(caches.session(&hash).is_none());
        // A load after the change counts.
        let after = caches.ticket();
        caches.keep_session(hash, Arc::clone(&view), after);
        assert!(caches.session(&hash).is_some());

        // The same for one session and for everything.
        let session = Change::Session(crate::store::SessionChange {
            scope: Scope::default_scope(),
            hash,
            id: None,
            user: None,
            ended: true,
        });
        for change in [session, Change::All] {
            let before = caches.ticket();
            caches.apply(&change);
            caches.keep_session(hash, Arc::clone(&view), before);
            assert!(caches.session(&hash).is_none(), "{change:?}");
            let after = caches.ticket();
            caches.keep_session(hash, Arc::clone(&view), after);
            assert!(caches.session(&hash).is_some(), "{change:?}");
        }

        // Another user's change leaves this copy alone.
        caches.apply(&Change::user(&Scope::default_scope(), Uuid::now_v7()));
        assert!(caches.session(&hash).is_some());
    }

    #[test]
    fn the_session_cache_is_bounded_by_bytes_and_by_entries() {
        let settings = CacheSettings { capacity: 1000, max_bytes: 100_000, ..CacheSettings::default() };
        let caches = Caches::new(&settings);
        // Small sessions weigh the overhead and twice `{}` `{}`: 50 fit (51,600 bytes).
        for i in 0..50 {
            caches.keep_session(TokenHash::of(&format!("small{i}")), pair(), caches.ticket());
        }
        assert_eq!(caches.weight(), 50 * (ENTRY_OVERHEAD_BYTES + 8));
        // Sessions with 10 KB of data weigh about 21 KB each: the bytes bound holds.
        for i in 0..50 {
            let mut view = Arc::into_inner(pair()).unwrap();
            view.session.data.insert("blob".into(), serde_json::Value::String("x".repeat(10_000)));
            let view = Arc::new(SessionView::new(view.session, view.user));
            assert_eq!(entry_weight(&view, 0), 1024 + 2 * (10_011 + 2));
            caches.keep_session(TokenHash::of(&format!("big{i}")), view, caches.ticket());
        }
        assert!(caches.weight() <= 100_000, "{} bytes", caches.weight());
        // The entry floor (max_bytes / capacity) keeps `capacity` a bound on entries.
        let view = pair();
        assert_eq!(entry_weight(&view, 2048), 2048);
        assert_eq!(entry_weight(&view, 0), 1032);
    }

    #[test]
    fn keys_drop_on_any_key_change() {
        let caches = Caches::new(&CacheSettings::default());
        let hash = TokenHash::of("k");
        let key = api_key();
        let before = caches.ticket();
        caches.keep_key(hash, Arc::clone(&key), before);
        assert!(caches.key(&hash).is_some());
        caches.apply(&Change::Key { scope: Scope::default_scope(), id: key.id, revoked: true });
        assert!(caches.key(&hash).is_none());
        caches.keep_key(hash, Arc::clone(&key), before);
        assert!(caches.key(&hash).is_none(), "read before the change");
        let after = caches.ticket();
        caches.keep_key(hash, key, after);
        assert!(caches.key(&hash).is_some());
    }

    fn api_key() -> Arc<ApiKey> {
        Arc::new(ApiKey {
            id: Uuid::now_v7(),
            scope: Scope::parse("app").unwrap(),
            name: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            revoked_at: None,
            last_used_at: None,
        })
    }

    #[test]
    fn no_copy_is_served_past_the_ttl() {
        let caches =
            Caches::new(&CacheSettings { ttl: Duration::from_millis(20), ..CacheSettings::default() });
        let (session, key) = (TokenHash::of("t"), TokenHash::of("k"));
        caches.keep_session(session, pair(), caches.ticket());
        caches.keep_key(key, api_key(), caches.ticket());
        assert!(caches.session(&session).is_some() && caches.key(&key).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(caches.session(&session).is_none(), "a session copy outlived the ttl");
        assert!(caches.key(&key).is_none(), "a key copy outlived the ttl");
    }
}
