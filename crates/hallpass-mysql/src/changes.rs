//! The cross-process change channel of MariaDB: what lets a process cache sessions and API
//! keys (`hallpass_core::cache`) while other processes end them.
//!
//! MariaDB has no `LISTEN`/`NOTIFY`, so the channel is a table, `hallpass_changes`
//! (migration 0005): [`publish`] inserts one row per change (`Change::to_wire`), after the
//! change committed; a poller per store reads the rows above the last id it has read, every
//! [`POLL_EVERY`], and sends each as a [`Change`] (its own process's too, like PostgreSQL's
//! listener). The poller also prunes rows older than [`KEEP_FOR`], in bounded batches.
//!
//! # Reading an AUTO_INCREMENT log without missing a row
//!
//! Ids are handed out in order but commit in any order: id 11 can be visible before id 10
//! commits, and an id can be skipped for good (a rolled-back insert; Galera's
//! `auto_increment_increment` of the cluster size, each node on its own offset). So "read
//! above the highest id seen" could step over a row that commits later. [`GapTracker`]
//! keeps a low-water mark instead: every id up to it was read (or given up), and the
//! poller re-reads from it while an id is missing below one already read. Only ids that can
//! exist are waited for: those in `@@auto_increment_increment`'s residues that rows have
//! shown in use (every id when the increment is 1). A missing id is given up after
//! [`GAP_WAIT`], and the poller then sends [`Change::All`].
//!
//! Why giving up is safe: one server hands out ids in order, and a change is published
//! after its commit. If row 11 is visible while row 10 is not, row 10's id was taken before
//! row 11's, so the change behind row 10 had committed before row 11 became visible, and
//! before the poller read it. `Change::All` sent after that read drops every copy cached
//! before it, so every copy the missed row would have dropped. The same argument makes the
//! baseline safe: rows below the highest id at subscription that commit later belong to
//! changes committed before the subscription. (On a multi-writer Galera cluster another
//! node's counter can lag, so a row can take an id below one already read *after* it was
//! read; such a row is caught if it arrives within [`GAP_WAIT`], else the cache TTL bounds
//! how long the copies it should have dropped live. InnoDB's counter survives restarts
//! since MariaDB 10.2.4 and MySQL 8.0, so ids never go back.)
//!
//! # The poller
//!
//! It runs on a thread of its own with a small Tokio runtime and a connection of its own,
//! not the pool's: `Store::changes` is synchronous and must read the baseline (the highest
//! id) before it returns, so that no change committed after subscription is missed; it
//! blocks on that first reading (at most [`BASELINE_WAIT`]), which it could not do on a
//! pooled connection whose socket belongs to the caller's runtime. It ends within a poll
//! interval once the store is dropped or closed.
//!
//! When it cannot read (the server is down, the connection was lost) it sends
//! [`Change::All`] at every attempt (every [`RETRY_EVERY`]): copies made meanwhile count
//! only until the next one. It warns once per outage, and says when it is back, after a
//! fresh baseline and one more [`Change::All`] (anything may have changed meanwhile).

use crate::error::{Fail, QResult, classify_quietly};
use hallpass_core::store::Change;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool};
use sqlx::{ConnectOptions, Connection, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::Sender;

/// How often the poller reads new rows: the delay another process's change may take to
/// reach this one's cache (as SQLite's `data_version` watcher).
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(20);
/// How long an id missing below one already read is waited for before it is given up
/// (with [`Change::All`]). Out-of-order commits of single-row inserts close in
/// milliseconds; waiting saves dropping the whole cache for them.
pub(crate) const GAP_WAIT: Duration = Duration::from_secs(2);
/// How often the poller tries again while it cannot read.
const RETRY_EVERY: Duration = Duration::from_millis(100);
/// The longest one database round trip (connect, poll, prune) may take before the poller
/// counts it as failed.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `Store::changes` waits for the baseline before it returns without one (the
/// poller then sends [`Change::All`] once it has one).
pub(crate) const BASELINE_WAIT: Duration = Duration::from_secs(5);
/// Most rows read by one query. More wait for the next poll (20 ms later); behind an open
/// gap, a full batch is followed by a read from the highest id already read.
const POLL_LIMIT: u32 = 2000;
/// Rows older than this are pruned: far longer than any poller lags (a poller that cannot
/// read starts again from a fresh baseline).
const KEEP_FOR: Duration = Duration::from_secs(600);
/// How often a poller prunes, and the batches it prunes in (at most [`PRUNE_BATCHES`]
/// per round, so a prune never holds locks for long; the rest waits for the next round).
const PRUNE_EVERY: Duration = Duration::from_secs(60);
const PRUNE_BATCH: u64 = 1000;
const PRUNE_BATCHES: u32 = 10;

/// Tells the other processes of a change: one row of the change log.
pub(crate) async fn publish(c: &mut MySqlConnection, change: &Change) -> QResult<()> {
    sqlx::query("INSERT INTO hallpass_changes (payload) VALUES (?)")
        .bind(change.to_wire())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// The server's `auto_increment_increment` (the step between ids one server hands out) and
/// the highest id now in the log (0 when empty).
async fn baseline(c: &mut MySqlConnection) -> QResult<(u64, u64)> {
    let row = sqlx::query(
        "SELECT CAST(@@auto_increment_increment AS UNSIGNED), CAST(COALESCE(MAX(id), 0) AS UNSIGNED) \
         FROM hallpass_changes",
    )
    .fetch_one(&mut *c)
    .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// The rows above `after`, in id order (at most [`POLL_LIMIT`]).
async fn rows_after(c: &mut MySqlConnection, after: u64) -> QResult<Vec<(u64, String)>> {
    let rows = sqlx::query("SELECT id, payload FROM hallpass_changes WHERE id > ? ORDER BY id LIMIT ?")
        .bind(after)
        .bind(POLL_LIMIT)
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

/// Deletes rows older than `keep_for`, at most [`PRUNE_BATCHES`] batches of
/// [`PRUNE_BATCH`]; returns how many. Every process prunes: no process is special.
pub(crate) async fn prune(c: &mut MySqlConnection, keep_for: Duration) -> QResult<u64> {
    let seconds = i64::try_from(keep_for.as_secs()).unwrap_or(i64::MAX);
    let mut pruned = 0;
    for _ in 0..PRUNE_BATCHES {
        let done = sqlx::query("DELETE FROM hallpass_changes WHERE at < NOW(6) - INTERVAL ? SECOND LIMIT ?")
            .bind(seconds)
            .bind(PRUNE_BATCH)
            .execute(&mut *c)
            .await?
            .rows_affected();
        pruned += done;
        if done < PRUNE_BATCH {
            break;
        }
    }
    Ok(pruned)
}

/// Which ids of the change log a poller has read: a plain value with pure methods (time
/// comes in as an argument), so the gap rules are tested without a database or a clock.
///
/// `low` is the low-water mark: every id up to it was read or given up, so a poll reads
/// the rows above it. `seen` holds the ids read above it, with when each was first read,
/// so a row read again (a gap below it keeps `low` down) is sent only once.
#[derive(Debug)]
pub(crate) struct GapTracker {
    /// `@@auto_increment_increment`: ids one server hands out are this far apart.
    step: u64,
    /// The residues (`id % step`) rows have shown in use; only ids of these are waited
    /// for. With a step of 1, every id.
    residues: BTreeSet<u64>,
    low: u64,
    seen: BTreeMap<u64, Instant>,
    wait: Duration,
}

impl GapTracker {
    /// A tracker that has read everything up to `baseline`.
    pub(crate) fn new(baseline: u64, step: u64, wait: Duration) -> Self {
        let step = step.max(1);
        let residues = if step == 1 { BTreeSet::from([0]) } else { BTreeSet::new() };
        Self { step, residues, low: baseline, seen: BTreeMap::new(), wait }
    }

    /// The id to read above.
    pub(crate) fn low(&self) -> u64 {
        self.low
    }

    /// The highest id read (`low` when no gap is open).
    pub(crate) fn high(&self) -> u64 {
        self.seen.last_key_value().map_or(self.low, |(id, _)| *id)
    }

    /// Records a row read at `now`; `true` the first time (send it), `false` for one
    /// already read or below the low-water mark.
    pub(crate) fn see(&mut self, id: u64, now: Instant) -> bool {
        if id <= self.low || self.seen.contains_key(&id) {
            return false;
        }
        // A residue learnt now makes the ids of it below this one expected too: another
        // server's rows that may still commit.
        self.residues.insert(id % self.step);
        self.seen.insert(id, now);
        true
    }

    /// Whether an id is missing below one already read (polls then re-read from `low`).
    #[cfg(test)]
    fn gap_open(&self) -> bool {
        !self.seen.is_empty()
    }

    /// After a poll at `now`: moves `low` over the ids read in sequence, and gives up the
    /// ids missing for longer than the wait. `true` when it gave some up: the caller must
    /// send [`Change::All`], since a row of a given-up id is never read.
    ///
    /// An id missing below a row read at `t` has been missing since `t` at least, so the
    /// ids given up are those below the highest row read more than `wait` ago; ids missing
    /// only below younger rows keep their time.
    pub(crate) fn settle(&mut self, now: Instant) -> bool {
        self.advance();
        let expired = self
            .seen
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) > self.wait)
            .map(|(id, _)| *id)
            .max();
        let Some(expired) = expired else { return false };
        self.low = expired;
        self.seen = self.seen.split_off(&expired.saturating_add(1));
        self.advance();
        true
    }

    /// The next id that can exist above `low`: the smallest above it in one of the
    /// residues in use.
    fn next_expected(&self) -> Option<u64> {
        let block = self.low - self.low % self.step;
        self.residues
            .iter()
            .filter_map(|r| {
                let candidate = block.checked_add(*r)?;
                if candidate > self.low { Some(candidate) } else { candidate.checked_add(self.step) }
            })
            .min()
    }

    fn advance(&mut self) {
        while let Some(next) = self.next_expected() {
            if self.seen.remove(&next).is_none() {
                break;
            }
            self.low = next;
        }
    }
}

/// Starts the poller of a store (see the module documentation) and waits, at most
/// [`BASELINE_WAIT`], for its baseline. It ends once `alive` is gone or `pool` is closed.
pub(crate) fn start(pool: MySqlPool, tx: Sender<Change>, alive: Weak<()>) {
    let handshake = Arc::new(Handshake::default());
    let poller_side = handshake.clone();
    let spawned = std::thread::Builder::new().name("hallpass-mysql-changes".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(error = %e, "mysql: cannot start the change poller's runtime");
                return;
            }
        };
        // The poller runs as a task of its own, started again should it ever panic (a
        // bug: every row reads as some change), after dropping every cached copy.
        runtime.block_on(async move {
            let mut handshake = Some(poller_side);
            while alive.strong_count() > 0 && !pool.is_closed() {
                let poller = Poller::new(pool.clone(), tx.clone(), alive.clone());
                let first = handshake.take().unwrap_or_else(|| Arc::new(Handshake::settled()));
                match tokio::spawn(poller.run(first)).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::error!(error = %e, "mysql: the change poller failed; starting it again");
                        let _ = tx.send(Change::All);
                        tokio::time::sleep(RETRY_EVERY).await;
                    }
                }
            }
        });
    });
    match spawned {
        // Blocks the caller once per store, for one connection and one query.
        Ok(_) => {
            if !handshake.wait(BASELINE_WAIT) {
                tracing::warn!(
                    "mysql: the change poller has no baseline yet; it drops every cached copy once it has"
                );
            }
        }
        Err(e) => tracing::error!(error = %e, "mysql: cannot start the change poller"),
    }
}

/// Whether `Store::changes` still waits for the first baseline. Both sides decide under
/// one lock, so the poller knows for sure whether its first baseline came in time (no
/// copy cached before it) or not (copies may have been cached: it sends [`Change::All`]).
#[derive(Default)]
struct Handshake {
    /// `None` while waiting; `Some(true)` when the baseline came in time, `Some(false)`
    /// when the caller stopped waiting (or the first attempt failed).
    outcome: Mutex<Option<bool>>,
    done: Condvar,
}

impl Handshake {
    /// A handshake nobody waits for (a restarted poller's): its first baseline is late, so
    /// the poller drops every cached copy once it has one.
    fn settled() -> Self {
        Self { outcome: Mutex::new(Some(false)), done: Condvar::new() }
    }

    /// The caller's side: waits at most `wait`; `true` when the baseline was read.
    fn wait(&self, wait: Duration) -> bool {
        let outcome = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        let (mut outcome, _) =
            self.done.wait_timeout_while(outcome, wait, |o| o.is_none()).unwrap_or_else(|e| e.into_inner());
        *outcome.get_or_insert(false)
    }

    /// The poller's side, after its first attempt: `true` when the caller was still
    /// waiting and `read` (so no copy was cached before this baseline).
    fn settle(&self, read: bool) -> bool {
        let mut outcome = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        let in_time = *outcome.get_or_insert(read);
        self.done.notify_all();
        in_time && read
    }
}

/// The poller's state.
struct Poller {
    pool: MySqlPool,
    options: MySqlConnectOptions,
    tx: Sender<Change>,
    alive: Weak<()>,
    /// The connection and what was read through it; `None` until (again) connected.
    reading: Option<(MySqlConnection, GapTracker)>,
    /// Whether the poller failed since it last read: warn once per outage.
    failing: bool,
    last_prune: Instant,
}

impl Poller {
    fn new(pool: MySqlPool, tx: Sender<Change>, alive: Weak<()>) -> Self {
        let options = (*pool.connect_options()).clone();
        Self { pool, options, tx, alive, reading: None, failing: false, last_prune: Instant::now() }
    }

    fn running(&self) -> bool {
        self.alive.strong_count() > 0 && !self.pool.is_closed()
    }

    /// Connects and reads the baseline, then polls every [`POLL_EVERY`] until the store
    /// is gone. `handshake` hears once, after the first attempt at a baseline.
    async fn run(mut self, handshake: Arc<Handshake>) {
        let mut handshake = Some(handshake);
        while self.running() {
            if self.reading.is_none() {
                let connected = with_timeout(self.connect()).await;
                let in_time = handshake.take().is_some_and(|h| h.settle(connected.is_ok()));
                match connected {
                    Ok(reading) => {
                        self.reading = Some(reading);
                        // Changes committed before this baseline are not read: unless this
                        // is the first one and `changes()` waited for it (nothing cached
                        // yet), drop what was cached meanwhile.
                        if !in_time {
                            self.send(Change::All);
                        }
                        if self.failing {
                            tracing::info!("mysql: the change poller reads the change log again");
                            self.failing = false;
                        }
                    }
                    Err(fail) => self.failed(fail),
                }
            } else {
                self.poll().await;
            }
            if self.reading.is_some() && self.last_prune.elapsed() >= PRUNE_EVERY {
                self.prune().await;
            }
            tokio::time::sleep(if self.reading.is_some() { POLL_EVERY } else { RETRY_EVERY }).await;
        }
        if let Some((conn, _)) = self.reading.take() {
            let _ = conn.close().await;
        }
    }

    /// A connection of the poller's own, set up like the pool's, and a tracker from the
    /// log's current end.
    async fn connect(&self) -> QResult<(MySqlConnection, GapTracker)> {
        let mut conn = self.options.connect().await?;
        crate::connection::configure(&mut conn).await?;
        let (step, high) = baseline(&mut conn).await?;
        Ok((conn, GapTracker::new(high, step, GAP_WAIT)))
    }

    async fn poll(&mut self) {
        let Some((conn, tracker)) = self.reading.as_mut() else { return };
        let mut rows = match with_timeout(rows_after(conn, tracker.low())).await {
            Ok(rows) => rows,
            Err(fail) => return self.failed(fail),
        };
        // A full batch behind an open gap may be rows already read: read on from the
        // highest one too, so that new changes do not wait for the gap.
        if rows.len() >= POLL_LIMIT as usize && tracker.high() > tracker.low() {
            match with_timeout(rows_after(conn, tracker.high())).await {
                Ok(more) => rows.extend(more),
                Err(fail) => return self.failed(fail),
            }
        }
        let now = Instant::now();
        let mut fresh = Vec::new();
        for (id, payload) in rows {
            if tracker.see(id, now) {
                fresh.push(Change::from_wire(&payload));
            }
        }
        let gave_up = tracker.settle(now);
        for change in fresh {
            self.send(change);
        }
        if gave_up {
            tracing::debug!("mysql: a change log id stayed missing; dropping every cached copy");
            self.send(Change::All);
        }
    }

    async fn prune(&mut self) {
        self.last_prune = Instant::now();
        let Some((conn, _)) = self.reading.as_mut() else { return };
        match with_timeout(prune(conn, KEEP_FOR)).await {
            Ok(0) => {}
            Ok(rows) => tracing::debug!(rows, "mysql: pruned the change log"),
            // Not a lost change: the next poll finds out whether the connection is gone.
            Err(fail) => {
                tracing::debug!(error = %classify_quietly("prune_changes", &fail), "mysql: pruning the change log failed")
            }
        }
    }

    /// A failed connect or poll: whatever changed meanwhile is unknown, so every cached
    /// copy goes; the connection is dropped and made again.
    fn failed(&mut self, fail: Fail) {
        self.reading = None;
        self.send(Change::All);
        let error = classify_quietly("changes", &fail);
        if self.failing {
            tracing::debug!(%error, "mysql: the change poller still cannot read");
        } else {
            self.failing = true;
            let cause = match &fail {
                Fail::Db(e) => e.to_string(),
                Fail::Store(e) => e.to_string(),
            };
            tracing::warn!(
                %error,
                cause,
                "mysql: the change poller cannot read the change log; cached sessions and keys are \
                 dropped until it can"
            );
        }
    }

    fn send(&self, change: Change) {
        // No receiver (no cache subscribed, or all gone) is not an error.
        let _ = self.tx.send(change);
    }
}

/// Bounds one round trip by [`IO_TIMEOUT`] (a server that stopped answering, a connect to
/// a host that drops packets).
async fn with_timeout<T>(f: impl Future<Output = QResult<T>>) -> QResult<T> {
    match tokio::time::timeout(IO_TIMEOUT, f).await {
        Ok(result) => result,
        Err(_) => Err(Fail::Store(hallpass_core::StoreError::Unavailable(
            "the database did not answer the change poller in time".into(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(2);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds one poll's ids; returns the ones to send and whether a gap was given up.
    fn poll(t: &mut GapTracker, ids: &[u64], now: Instant) -> (Vec<u64>, bool) {
        let sent = ids.iter().copied().filter(|id| t.see(*id, now)).collect();
        (sent, t.settle(now))
    }

    #[test]
    fn rows_in_order_are_sent_once_and_move_the_mark() {
        let t0 = Instant::now();
        let mut t = GapTracker::new(10, 1, WAIT);
        assert_eq!(poll(&mut t, &[11, 12, 13], t0), (vec![11, 12, 13], false));
        assert_eq!((t.low(), t.gap_open()), (13, false));
        // At or below the mark (the baseline, or a row read before): never sent.
        assert_eq!(poll(&mut t, &[5, 10, 13], t0 + ms(20)), (vec![], false));
        assert_eq!(t.low(), 13);
    }

    #[test]
    fn a_row_committed_late_is_read_and_sent_once() {
        let t0 = Instant::now();
        let mut t = GapTracker::new(10, 1, WAIT);
        // 12 commits before 11: sent, but the mark stays below 11 and polls re-read.
        assert_eq!(poll(&mut t, &[12], t0), (vec![12], false));
        assert_eq!((t.low(), t.gap_open()), (10, true));
        assert_eq!(poll(&mut t, &[12, 13], t0 + ms(20)), (vec![13], false));
        assert_eq!((t.low(), t.high()), (10, 13), "a full batch reads on from 13");
        // 11 commits within the wait: sent, and the mark catches up.
        assert_eq!(poll(&mut t, &[11, 12, 13], t0 + ms(1900)), (vec![11], false));
        assert_eq!((t.low(), t.high(), t.gap_open()), (13, 13, false));
    }

    #[test]
    fn a_gap_is_given_up_after_the_wait_once_and_only_below_old_rows() {
        let t0 = Instant::now();
        let mut t = GapTracker::new(10, 1, WAIT);
        // 11 never commits (a rolled-back insert).
        assert_eq!(poll(&mut t, &[12], t0), (vec![12], false));
        // 15 (14 missing) is read later.
        assert_eq!(poll(&mut t, &[12, 13, 15], t0 + ms(1500)), (vec![13, 15], false));
        assert_eq!(poll(&mut t, &[12, 13, 15], t0 + WAIT), (vec![], false), "not past the wait yet");
        // Past the wait of 11 (missing below 12, read at t0): given up, once. 14 is missing
        // only below 15, read 0.5 s later: still waited for.
        assert_eq!(poll(&mut t, &[12, 13, 15], t0 + WAIT + ms(1)), (vec![], true));
        assert_eq!((t.low(), t.gap_open()), (13, true));
        assert_eq!(poll(&mut t, &[15], t0 + WAIT + ms(20)), (vec![], false));
        // 14 commits in time: sent, no more gaps.
        assert_eq!(poll(&mut t, &[14, 15], t0 + ms(3000)), (vec![14], false));
        assert_eq!((t.low(), t.gap_open()), (15, false));
        // A given-up id that commits after all is below the mark: never read again.
        assert_eq!(poll(&mut t, &[11], t0 + ms(3100)), (vec![], false));
    }

    #[test]
    fn with_an_increment_only_ids_of_residues_in_use_are_waited_for() {
        let t0 = Instant::now();
        // Galera with three nodes, every write on node 1 (ids 1, 4, 7, ...): no gaps.
        let mut t = GapTracker::new(10, 3, WAIT);
        assert_eq!(poll(&mut t, &[13, 16], t0), (vec![13, 16], false));
        assert_eq!((t.low(), t.gap_open()), (16, false));
        // Node 2 starts writing (residue 2): 17 follows 16.
        assert_eq!(poll(&mut t, &[17, 19], t0 + ms(20)), (vec![17, 19], false));
        assert_eq!((t.low(), t.gap_open()), (19, false));
        // 22 is read before 20 (both residues in use now): 20 is waited for, 21 is not.
        assert_eq!(poll(&mut t, &[22], t0 + ms(40)), (vec![22], false));
        assert_eq!((t.low(), t.gap_open()), (19, true));
        assert_eq!(poll(&mut t, &[20, 22], t0 + ms(60)), (vec![20], false));
        assert_eq!((t.low(), t.gap_open()), (22, false));
    }

    #[test]
    fn a_residue_seen_late_makes_its_lower_ids_expected() {
        let t0 = Instant::now();
        let mut t = GapTracker::new(10, 3, WAIT);
        // The first row is 16: 13, of the same residue, may still commit.
        assert_eq!(poll(&mut t, &[16], t0), (vec![16], false));
        assert_eq!((t.low(), t.gap_open()), (10, true));
        assert_eq!(poll(&mut t, &[13, 16], t0 + ms(20)), (vec![13], false));
        assert_eq!((t.low(), t.gap_open()), (16, false));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prune_deletes_only_old_rows_in_batches() {
        let Some(db) = crate::testing::TestDatabase::create().await else { return };
        let store = db.store().await;
        let mut conn = store.pool().acquire().await.expect("connection");
        // 2,500 rows of 11 minutes ago (three batches), and 3 new ones.
        let old = vec!["('k', NOW(6) - INTERVAL 11 MINUTE)"; 2500].join(", ");
        let rows = format!(
            "INSERT INTO hallpass_changes (payload, at) VALUES {old}; \
             INSERT INTO hallpass_changes (payload) VALUES ('k'), ('k'), ('k')"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(rows)).execute(&mut *conn).await.expect("rows");
        let pruned = prune(&mut conn, Duration::from_secs(600)).await.map_err(|e| format!("{e:?}"));
        assert_eq!(pruned, Ok(2500));
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hallpass_changes")
            .fetch_one(&mut *conn)
            .await
            .expect("count");
        assert_eq!(left, 3);
    }

    #[test]
    fn a_baseline_counts_as_in_time_only_while_the_caller_waits() {
        // Read before the caller waits, or while it waits: in time, both sides agree.
        let h = Handshake::default();
        assert!(h.settle(true));
        assert!(h.wait(Duration::ZERO));
        // The caller stopped waiting first: late, both sides agree (the poller then sends
        // Change::All).
        let h = Handshake::default();
        assert!(!h.wait(Duration::from_millis(1)));
        assert!(!h.settle(true));
        // A failed first attempt is never in time.
        let h = Handshake::default();
        assert!(!h.settle(false));
        assert!(!h.wait(Duration::ZERO));
    }

    #[test]
    fn a_step_of_zero_counts_as_one() {
        let t0 = Instant::now();
        let mut t = GapTracker::new(0, 0, WAIT);
        assert_eq!(poll(&mut t, &[1, 3], t0), (vec![1, 3], false));
        assert_eq!((t.low(), t.gap_open()), (1, true));
    }
}
