//! Password hashing with Argon2id on a bounded pool.
//!
//! Hashing is CPU-bound and deliberately slow, so it never runs on the async workers: each
//! hash or verification is queued for a fixed number of threads of its own (by default one
//! per CPU) that run at the lowest CPU priority the OS has (`SCHED_IDLE` on Linux). They
//! use every cycle nothing else wants, so an idle server hashes as fast as the cores
//! allow, and a session check that arrives while logins saturate every core preempts them
//! at once instead of waiting for its turn. Session checks, which never
//! hash, stay fast while logins queue.
//! An unknown user is verified against a dummy hash made with the same parameters, so it
//! costs what a wrong password costs.
//!
//! Besides its own Argon2 hashes, the hasher verifies hashes imported from other systems
//! (bcrypt, scrypt, PBKDF2, sleepless-sessions' salted SHA-1: see [`legacy`]), on the same
//! pool, and asks for a rehash to Argon2id after the first good login with one.
//!
//! The strength of a new password ([`strength`]) is estimated on the same pool.

use crate::error::{Error, Result};
use crate::types::Password;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};

pub mod legacy;
pub mod strength;

pub use legacy::{SLEEPLESS_SHA1_PREFIX, sleepless_sha1_hash_string};

/// Most Argon2 memory (KiB) [`is_supported_hash`] accepts in an imported hash: 2 GiB, RFC
/// 9106's first recommendation.
pub const ARGON2_IMPORT_MAX_M_COST: u32 = 2 * 1024 * 1024;
/// Most Argon2 work (memory in KiB times passes) [`is_supported_hash`] accepts.
pub const ARGON2_IMPORT_MAX_WORK: u64 = 4 * 1024 * 1024;

/// The most a stored password hash may cost to verify, for hashes hallpass did not make
/// with its current parameters (imported ones, or its own after the parameters were
/// lowered). `hallpass import` refuses a hash above it; at login such a hash never
/// matches and costs what one hash with the current parameters costs (see
/// [`PasswordHasher::verify`]), so no stored string can make one wrong login take seconds
/// and gigabytes. The built-in limits of [`is_supported_hash`] still apply above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCeiling {
    /// Most Argon2 memory, KiB (default: 4 × the current `m`, at least 64 MiB).
    pub argon2_m_cost: u32,
    /// Most Argon2 passes (default: 4 × the current `t`, at least 4).
    pub argon2_t_cost: u32,
    /// Most Argon2 lanes (default: 4 × the current `p`, at least 8).
    pub argon2_p_cost: u32,
    /// Highest bcrypt cost (default 14, about a second).
    pub bcrypt_cost: u32,
    /// Most scrypt memory (`128 · r · N`), KiB (default: the Argon2 memory ceiling); its
    /// work (memory × `p`) may be four times that.
    pub scrypt_memory_kib: u64,
    /// Most PBKDF2 rounds (default 2,000,000).
    pub pbkdf2_rounds: u32,
}

impl HashCeiling {
    /// The default ceiling for a server hashing with `own`: a few times its own cost.
    pub fn for_params(own: HashParams) -> Self {
        let m = own.m_cost.saturating_mul(4).max(64 * 1024);
        Self {
            argon2_m_cost: m,
            argon2_t_cost: own.t_cost.saturating_mul(4).max(4),
            argon2_p_cost: own.p_cost.saturating_mul(4).max(8),
            bcrypt_cost: 14,
            scrypt_memory_kib: u64::from(m),
            pbkdf2_rounds: 2_000_000,
        }
    }

    /// This ceiling raised where needed to admit `own` (hallpass's own hashes always pass).
    pub fn admitting(self, own: HashParams) -> Self {
        Self {
            argon2_m_cost: self.argon2_m_cost.max(own.m_cost),
            argon2_t_cost: self.argon2_t_cost.max(own.t_cost),
            argon2_p_cost: self.argon2_p_cost.max(own.p_cost),
            ..self
        }
    }

    /// Whether `stored` is a hash [`PasswordHasher::verify`] can check ([`is_supported_hash`])
    /// and costs no more than this ceiling; `Err` says why not (never quoting the hash).
    pub fn check(&self, stored: &str) -> std::result::Result<(), String> {
        match legacy::parse(stored) {
            Err(refusal) => Err(format!("{}: {}", refusal.scheme, refusal.reason)),
            Ok(Some(foreign)) => self.check_foreign(&foreign),
            Ok(None) => {
                if !is_supported_argon2(stored) {
                    return Err("not a supported hash (Argon2, bcrypt, scrypt, PBKDF2-SHA256/512 in PHC \
                                form, or $sleepless-sha1$), or its cost is above the built-in limits"
                        .into());
                }
                let params = PasswordHash::new(stored)
                    .ok()
                    .and_then(|p| Params::try_from(&p).ok())
                    .ok_or("argon2: unreadable parameters")?;
                self.check_argon2(&params)
            }
        }
    }

    fn check_argon2(&self, p: &Params) -> std::result::Result<(), String> {
        if p.m_cost() > self.argon2_m_cost
            || p.t_cost() > self.argon2_t_cost
            || p.p_cost() > self.argon2_p_cost
        {
            return Err(format!(
                "argon2: m={},t={},p={} above the ceiling m={},t={},p={}",
                p.m_cost(),
                p.t_cost(),
                p.p_cost(),
                self.argon2_m_cost,
                self.argon2_t_cost,
                self.argon2_p_cost
            ));
        }
        Ok(())
    }

    fn check_foreign(&self, foreign: &legacy::Foreign<'_>) -> std::result::Result<(), String> {
        match foreign.cost() {
            legacy::Cost::Bcrypt(cost) if cost > self.bcrypt_cost => {
                Err(format!("bcrypt: cost {cost} above the ceiling {}", self.bcrypt_cost))
            }
            legacy::Cost::Scrypt { memory, work }
                if memory > self.scrypt_memory_kib * 1024 || work > self.scrypt_memory_kib * 4096 =>
            {
                Err(format!(
                    "scrypt: {memory} bytes ({work} of work) above the ceiling of {} KiB",
                    self.scrypt_memory_kib
                ))
            }
            legacy::Cost::Pbkdf2(rounds) if rounds > self.pbkdf2_rounds => {
                Err(format!("pbkdf2: {rounds} rounds above the ceiling {}", self.pbkdf2_rounds))
            }
            _ => Ok(()),
        }
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB (OWASP: 19456).
    pub m_cost: u32,
    /// Passes (OWASP: 2).
    pub t_cost: u32,
    /// Lanes (OWASP: 1).
    pub p_cost: u32,
}

impl Default for HashParams {
    /// The OWASP recommendation: m=19 MiB, t=2, p=1.
    fn default() -> Self {
        Self { m_cost: 19 * 1024, t_cost: 2, p_cost: 1 }
    }
}

impl HashParams {
    /// Checks the parameters are ones Argon2 accepts (memory at least 8 KiB per lane...).
    pub fn validate(&self) -> Result<()> {
        self.argon2().map(|_| ())
    }

    fn argon2(&self) -> Result<Argon2<'static>> {
        let params = Params::new(self.m_cost, self.t_cost, self.p_cost, None)
            .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The password matched.
    pub ok: bool,
    /// It matched, but the stored hash uses other parameters or another algorithm.
    pub needs_rehash: bool,
}

/// A job for the hashing threads.
type Job = Box<dyn FnOnce() + Send>;

/// Puts the calling thread at the lowest CPU priority: `SCHED_IDLE` on Linux (it runs
/// only when no ordinary thread wants the core, and yields to one at once), elsewhere the
/// lowest priority of its normal policy.
fn lower_priority() -> std::result::Result<(), thread_priority::Error> {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
    }
}

/// Starts `threads` hashing threads taking jobs from one queue; they end when the queue's
/// sender is dropped (with the hasher).
fn start_threads(threads: usize, low_priority: bool) -> Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..threads.max(1) {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("hallpass-hash-{i}"))
            .spawn(move || {
                if low_priority && let Err(e) = lower_priority() {
                    tracing::warn!(error = ?e, "could not lower the priority of a hashing thread");
                }
                loop {
                    // The lock is held only while waiting for the next job, not while it runs.
                    let job = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                    match job {
                        // A panicking job loses its answer (the caller sees an error), not the thread.
                        Ok(job) => drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))),
                        Err(_) => break,
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("starting a hashing thread: {e}")))?;
    }
    Ok(tx)
}

/// Hashes and verifies passwords on a bounded pool.
pub struct PasswordHasher {
    params: HashParams,
    argon2: Argon2<'static>,
    jobs: mpsc::Sender<Job>,
    waiting: Arc<AtomicUsize>,
    queue_limit: usize,
    hashes: AtomicU64,
    dummy: String,
    ceiling: HashCeiling,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("params", &self.params).finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with `params` running at most `threads` hashes at once (at least one), on
    /// threads of its own at the lowest CPU priority. Computes the dummy hash once, here.
    pub fn new(params: HashParams, threads: usize) -> Result<Self> {
        Self::with_priority(params, threads, true)
    }

    /// As [`PasswordHasher::new`]; with `low_priority: false` the hashing threads keep the
    /// priority of the process.
    pub fn with_priority(params: HashParams, threads: usize, low_priority: bool) -> Result<Self> {
        let argon2 = params.argon2()?;
        let dummy = argon2
            .hash_password(b"hallpass dummy password for unknown users")
            .map_err(|e| Error::Internal(format!("argon2: {e}")))?
            .to_string();
        Ok(Self {
            params,
            argon2,
            jobs: start_threads(threads, low_priority)?,
            queue_limit: 0,
            waiting: Arc::new(AtomicUsize::new(0)),
            hashes: AtomicU64::new(0),
            dummy,
            ceiling: HashCeiling::for_params(params),
        })
    }

    /// Refuses, at login, stored hashes costing more than `ceiling` (raised where needed to
    /// admit the current parameters); the default is [`HashCeiling::for_params`].
    pub fn with_ceiling(mut self, ceiling: HashCeiling) -> Self {
        self.ceiling = ceiling.admitting(self.params);
        self
    }

    /// The ceiling stored hashes are held to.
    pub fn ceiling(&self) -> HashCeiling {
        self.ceiling
    }

    /// Refuses jobs ([`Error::Overloaded`]) while `limit` already wait (0: no limit).
    pub fn with_queue_limit(mut self, limit: usize) -> Self {
        self.queue_limit = limit;
        self
    }

    /// The parameters new hashes are made with.
    pub fn params(&self) -> HashParams {
        self.params
    }

    /// How many password hashes (new hashes and verifications, the dummy ones for unknown
    /// users included) this hasher has computed.
    pub fn hashes_computed(&self) -> u64 {
        self.hashes.load(Ordering::Relaxed)
    }

    /// How many hash jobs wait for a hashing thread now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Runs a CPU-bound job (a hash, a verification, a strength estimate) on the pool. A
    /// job whose caller has gone away (the request was dropped) before a thread took it up
    /// is skipped.
    pub(crate) async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let waiting = self.waiting.clone();
        let before = waiting.fetch_add(1, Ordering::Relaxed);
        if self.queue_limit > 0 && before >= self.queue_limit {
            waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::Overloaded);
        }
        let task: Job = Box::new(move || {
            waiting.fetch_sub(1, Ordering::Relaxed);
            if !tx.is_closed() {
                let _ = tx.send(job());
            }
        });
        if self.jobs.send(task).is_err() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::Internal("hashing pool closed".into()));
        }
        rx.await.map_err(|_| Error::Internal("hashing job failed".into()))
    }

    /// Hashes a new password to a PHC string.
    pub async fn hash(&self, password: Password) -> Result<String> {
        let argon2 = self.argon2.clone();
        let out = self
            .run(move || argon2.hash_password(password.expose()).map(|h| h.to_string()))
            .await?
            .map_err(|e| Error::Internal(format!("argon2: {e}")));
        self.hashes.fetch_add(1, Ordering::Relaxed);
        out
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no
    /// stored hash, so both paths cost the same.
    ///
    /// `stored` is an Argon2 PHC string (`$argon2id$`, `$argon2i$`, `$argon2d$`) or a hash
    /// imported from another system (see [`legacy`]). A match with anything but Argon2id
    /// with the current parameters answers `needs_rehash`. A string in no known format, or
    /// a foreign one that is malformed or costs more than the limits in [`legacy`], or an
    /// Argon2 one costing more than both [`ARGON2_IMPORT_MAX_M_COST`] /
    /// [`ARGON2_IMPORT_MAX_WORK`] and the current parameters, never matches: it costs one
    /// Argon2 hash and leaves a warning in the log (without the hash).
    pub async fn verify(&self, password: Password, stored: Option<String>) -> Result<Verified> {
        let has_user = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy.clone());
        let argon2 = self.argon2.clone();
        let params = self.params;
        let ceiling = self.ceiling;
        let verified = self.run(move || check(&argon2, params, ceiling, password.expose(), &phc)).await?;
        self.hashes.fetch_add(1, Ordering::Relaxed);
        Ok(Verified { ok: verified.ok && has_user, ..verified })
    }
}

/// Whether `s` is a password hash [`PasswordHasher::verify`] can check: an Argon2 PHC string
/// (`$argon2id$`, `$argon2i$`, `$argon2d$` with salt and hash, at most
/// [`ARGON2_IMPORT_MAX_M_COST`] KiB and [`ARGON2_IMPORT_MAX_WORK`]), or one of the foreign
/// formats of [`legacy`] within its limits. An importer calls it to reject garbage before
/// storing anything.
pub fn is_supported_hash(s: &str) -> bool {
    match legacy::parse(s) {
        Ok(Some(_)) => true,
        Err(_) => false,
        Ok(None) => is_supported_argon2(s),
    }
}

fn is_argon2(algorithm: &str) -> bool {
    matches!(algorithm, "argon2id" | "argon2i" | "argon2d")
}

fn is_supported_argon2(s: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(s) else {
        return false;
    };
    if !is_argon2(parsed.algorithm.as_str()) || parsed.salt.is_none() || parsed.hash.is_none() {
        return false;
    }
    if let Some(v) = parsed.version
        && Version::try_from(v).is_err()
    {
        return false;
    }
    Params::try_from(&parsed).is_ok_and(|p| argon2_within_limits(&p, None))
}

/// Whether an Argon2 hash costs at most [`ARGON2_IMPORT_MAX_M_COST`] and
/// [`ARGON2_IMPORT_MAX_WORK`], or no more than `own`, the parameters hallpass hashes with.
fn argon2_within_limits(p: &Params, own: Option<HashParams>) -> bool {
    let (own_m, own_work) = own.map_or((0, 0), |o| (o.m_cost, u64::from(o.m_cost) * u64::from(o.t_cost)));
    p.m_cost() <= ARGON2_IMPORT_MAX_M_COST.max(own_m)
        && u64::from(p.m_cost()) * u64::from(p.t_cost()) <= ARGON2_IMPORT_MAX_WORK.max(own_work)
}

/// The blocking part of [`PasswordHasher::verify`].
fn check(
    argon2: &Argon2<'static>,
    params: HashParams,
    ceiling: HashCeiling,
    password: &[u8],
    stored: &str,
) -> Verified {
    const NO: Verified = Verified { ok: false, needs_rehash: false };
    match legacy::parse(stored) {
        Ok(Some(foreign)) => {
            if let Err(reason) = ceiling.check_foreign(&foreign) {
                // Above the ceiling: never verified at its cost; one hash at ours instead.
                tracing::warn!(%reason, "stored password hash costs more than the ceiling, the login fails");
                let _ = argon2.hash_password(password);
                return NO;
            }
            let ok = foreign.verify(password);
            if foreign.is_fast() {
                // Fast schemes would tell an existing user from an unknown one by time.
                let _ = argon2.hash_password(password);
            }
            if ok {
                tracing::debug!(scheme = foreign.scheme(), "verified a foreign password hash; rehashing");
            }
            return Verified { ok, needs_rehash: ok };
        }
        Err(refusal) => {
            tracing::warn!(
                scheme = refusal.scheme,
                reason = %refusal.reason,
                "stored password hash refused, the login fails"
            );
            let _ = argon2.hash_password(password);
            return NO;
        }
        Ok(None) => {}
    }
    let parsed = match PasswordHash::new(stored) {
        Ok(parsed) if is_argon2(parsed.algorithm.as_str()) => parsed,
        _ => {
            // Not a format we know: spend the same time, then refuse.
            tracing::warn!("stored password hash in an unknown format, the login fails");
            let _ = argon2.hash_password(password);
            return NO;
        }
    };
    // An Argon2 hash costing more than both the limits and the current parameters (none
    // that hallpass made under sane settings) is refused before Argon2 allocates its memory.
    if let Ok(p) = Params::try_from(&parsed)
        && (!argon2_within_limits(&p, Some(params)) || ceiling.check_argon2(&p).is_err())
    {
        tracing::warn!(
            m_cost = p.m_cost(),
            t_cost = p.t_cost(),
            "stored argon2 hash costs more than the limits, the login fails"
        );
        let _ = argon2.hash_password(password);
        return NO;
    }
    if uses_params(&parsed, params)
        && let Some(ok) = verify_in_place(argon2, params, password, &parsed)
    {
        return Verified { ok, needs_rehash: false };
    }
    let ok = argon2.verify_password(password, &parsed).is_ok();
    Verified { ok, needs_rehash: ok && !uses_params(&parsed, params) }
}

thread_local! {
    /// Argon2's working memory (`m_cost` KiB), kept by each hashing thread from one
    /// verification to the next. Allocating it afresh for every hash cost a 19 MiB
    /// allocation, its page faults and zeroing each time (a login used ~40 % more CPU than
    /// its hash), and left freed memory in per-thread allocator arenas (hundreds of MB
    /// after a login flood). Now the memory is at most threads × `m_cost`.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Verifies an Argon2id hash made with the current parameters in this thread's kept
/// memory; `None` when the hash lacks a salt or output, or Argon2 refuses (the caller then
/// verifies the ordinary way).
fn verify_in_place(
    argon2: &Argon2<'static>,
    params: HashParams,
    password: &[u8],
    parsed: &PasswordHash,
) -> Option<bool> {
    let (salt, expected) = (parsed.salt.as_ref()?, parsed.hash.as_ref()?);
    let blocks = Params::new(params.m_cost, params.t_cost, params.p_cost, None).ok()?.block_count();
    let mut out = vec![0u8; expected.as_bytes().len()];
    let hashed = BLOCKS.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.len() != blocks {
            *kept = vec![argon2::Block::default(); blocks];
        }
        argon2.hash_password_into_with_memory(password, salt, &mut out, &mut kept[..])
    });
    hashed.ok()?;
    Some(bool::from(subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes())))
}

fn uses_params(parsed: &PasswordHash, want: HashParams) -> bool {
    if parsed.algorithm.as_str() != "argon2id" || parsed.version != Some(0x13) {
        return false;
    }
    match Params::try_from(parsed) {
        Ok(p) => p.m_cost() == want.m_cost && p.t_cost() == want.t_cost && p.p_cost() == want.p_cost,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> HashParams {
        HashParams { m_cost: 256, t_cost: 1, p_cost: 1 }
    }

    /// The scheduling policy of the calling thread (field 41 of `/proc/thread-self/stat`;
    /// 0 is `SCHED_OTHER`, 5 `SCHED_IDLE`).
    #[cfg(target_os = "linux")]
    fn own_policy() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The command name (field 2) may hold spaces; fields after it follow its ')'.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        rest.split(' ').nth(41 - 3).unwrap().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_the_lowest_priority_unless_asked_not_to() {
        let caller = own_policy();
        let low = PasswordHasher::new(cheap(), 1).unwrap();
        assert_eq!(low.run(own_policy).await.unwrap(), 5, "SCHED_IDLE");
        let normal = PasswordHasher::with_priority(cheap(), 1, false).unwrap();
        assert_eq!(normal.run(own_policy).await.unwrap(), caller);
        // A panicking job costs its caller an error, not the thread.
        assert!(normal.run(|| panic!("job")).await.is_err());
        assert_eq!(normal.run(|| 7).await.unwrap(), 7);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_queue_limit_jobs_are_refused_at_once() {
        let hasher = Arc::new(PasswordHasher::new(cheap(), 1).unwrap().with_queue_limit(2));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        // Occupies the only thread until released.
        let busy = {
            let hasher = hasher.clone();
            tokio::spawn(async move {
                hasher
                    .run(move || {
                        let _ = started.send(());
                        gate.recv().unwrap();
                    })
                    .await
            })
        };
        running.await.unwrap();
        let queued: Vec<_> = (0..2)
            .map(|i| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.run(move || i).await })
            })
            .collect();
        while hasher.queue_depth() < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(hasher.run(|| 9).await, Err(Error::Overloaded)), "a third may not wait");
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        for (i, q) in queued.into_iter().enumerate() {
            assert_eq!(q.await.unwrap().unwrap(), i);
        }
        assert_eq!(hasher.run(|| 7).await.unwrap(), 7, "room again");
    }

    #[tokio::test]
    async fn hash_then_verify_and_rehash_on_new_params() {
        let h = PasswordHasher::new(cheap(), 2).unwrap();
        let pw = Password::new("correct horse battery").unwrap();
        let phc = h.hash(pw.clone()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=256,t=1,p=1$"));
        let v = h.verify(pw.clone(), Some(phc.clone())).await.unwrap();
        assert_eq!(v, Verified { ok: true, needs_rehash: false });
        let wrong = Password::for_login("wrong horse battery").unwrap();
        assert!(!h.verify(wrong, Some(phc.clone())).await.unwrap().ok);

        let stronger = PasswordHasher::new(HashParams { m_cost: 512, ..cheap() }, 1).unwrap();
        let v = stronger.verify(pw.clone(), Some(phc)).await.unwrap();
        assert_eq!(v, Verified { ok: true, needs_rehash: true });
    }

    #[tokio::test]
    async fn unknown_user_never_verifies_even_with_the_dummy_password() {
        let h = PasswordHasher::new(cheap(), 1).unwrap();
        let pw = Password::for_login("hallpass dummy password for unknown users").unwrap();
        assert!(!h.verify(pw, None).await.unwrap().ok);
        let garbage = Password::for_login("x").unwrap();
        assert!(!h.verify(garbage, Some("not a phc".into())).await.unwrap().ok);
    }

    // ------------------------------------------------------------ foreign hashes

    use argon2::password_hash::PasswordHasher as PhcHasher;
    use sha1::Digest as _;

    const REHASH: Verified = Verified { ok: true, needs_rehash: true };
    const NO: Verified = Verified { ok: false, needs_rehash: false };
    const PW: &str = "hunter22";
    const SALT: &[u8] = b"hallpass-salt-16";

    async fn check_with(h: &PasswordHasher, password: &str, stored: &str) -> Verified {
        h.verify(Password::for_login(password).unwrap(), Some(stored.to_owned())).await.unwrap()
    }

    /// `stored` is supported, `password` verifies and asks for a rehash, a wrong one fails.
    async fn assert_foreign(h: &PasswordHasher, stored: &str, password: &str) {
        assert!(is_supported_hash(stored), "supported: {stored}");
        assert_eq!(check_with(h, password, stored).await, REHASH, "right password: {stored}");
        assert_eq!(check_with(h, "wrong password", stored).await, NO, "wrong password: {stored}");
    }

    /// `stored` is not supported and nothing verifies against it (nor panics).
    async fn assert_refused(h: &PasswordHasher, stored: &str, password: &str) {
        assert!(!is_supported_hash(stored), "not supported: {stored}");
        assert_eq!(check_with(h, password, stored).await, NO, "refused: {stored}");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[tokio::test]
    async fn argon2_variants_verify_and_only_current_argon2id_skips_the_rehash() {
        let h = PasswordHasher::new(cheap(), 2).unwrap();
        let own = h.hash(Password::new(PW).unwrap()).await.unwrap();
        assert!(is_supported_hash(&own));
        assert_eq!(check_with(&h, PW, &own).await, Verified { ok: true, needs_rehash: false });
        for algorithm in [Algorithm::Argon2i, Algorithm::Argon2d] {
            let params = Params::new(256, 1, 1, None).unwrap();
            let other = Argon2::new(algorithm, Version::V0x13, params).hash_password(PW.as_bytes()).unwrap();
            assert_foreign(&h, &other.to_string(), PW).await;
        }
        // Far beyond the limits (4 TiB): refused before Argon2 would allocate it.
        let salt = "c2FsdHNhbHRzYWx0c2FsdA";
        let hash = "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert_refused(&h, &format!("$argon2id$v=19$m=4294967295,t=1,p=1${salt}${hash}"), PW).await;
        assert_refused(&h, &format!("$argon2id$v=19$m=4194304,t=1,p=1${salt}${hash}"), PW).await;
        assert!(is_supported_hash(&format!("$argon2id$v=19$m=2097152,t=2,p=4${salt}${hash}")));
        assert!(!is_supported_hash(&format!("$argon2id$v=19$m=2097152,t=3,p=4${salt}${hash}")));
        assert!(!is_supported_hash(&format!("$argon2id$v=18$m=256,t=1,p=1${salt}${hash}")));
        assert!(!is_supported_hash(&format!("$argon2id$v=19$m=256,t=1,p=1${salt}")));
    }

    #[tokio::test]
    async fn a_stored_hash_above_the_ceiling_never_matches_and_costs_one_own_hash() {
        let params = Params::new(1024, 2, 1, None).unwrap();
        let big =
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password(PW.as_bytes()).unwrap();
        let big = big.to_string();
        let bcrypt6 = bcrypt::hash(PW, 6).unwrap();
        // Within the default ceiling: verifies (and asks for a rehash).
        let h = PasswordHasher::new(cheap(), 1).unwrap();
        assert_eq!(check_with(&h, PW, &big).await, REHASH);
        assert_eq!(check_with(&h, PW, &bcrypt6).await, REHASH);
        // Above a lower ceiling: the right password no longer matches; one hash is spent.
        let low = HashCeiling { argon2_m_cost: 512, bcrypt_cost: 5, ..HashCeiling::for_params(cheap()) };
        let h = PasswordHasher::new(cheap(), 1).unwrap().with_ceiling(low);
        let before = h.hashes_computed();
        assert_eq!(check_with(&h, PW, &big).await, NO);
        assert_eq!(check_with(&h, PW, &bcrypt6).await, NO);
        assert_eq!(h.hashes_computed() - before, 2);
        assert!(low.check(&big).unwrap_err().contains("m=1024"));
        assert!(low.check(&bcrypt6).unwrap_err().contains("cost 6"));
        // The ceiling never refuses hallpass's own parameters.
        let own = h.hash(Password::new(PW).unwrap()).await.unwrap();
        let tiny = HashCeiling { argon2_m_cost: 8, argon2_t_cost: 1, argon2_p_cost: 1, ..low };
        let h = PasswordHasher::new(cheap(), 1).unwrap().with_ceiling(tiny);
        assert_eq!(check_with(&h, PW, &own).await, Verified { ok: true, needs_rehash: false });
        // Defaults: a few times the server's own cost; the m = 2 GiB is refused.
        let d = HashCeiling::for_params(HashParams::default());
        assert_eq!((d.argon2_m_cost, d.argon2_t_cost, d.argon2_p_cost), (4 * 19 * 1024, 8, 8));
        let salt = "c2FsdHNhbHRzYWx0c2FsdA";
        let hash = "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(is_supported_hash(&format!("$argon2id$v=19$m=2097152,t=1,p=1${salt}${hash}")));
        assert!(d.check(&format!("$argon2id$v=19$m=2097152,t=1,p=1${salt}${hash}")).is_err());
        assert!(d.check(&format!("$argon2id$v=19$m=65536,t=3,p=4${salt}${hash}")).is_ok());
        assert!(d.check(&format!("$pbkdf2-sha256$i=2000001,l=32${salt}${hash}")).is_err());
        assert!(d.check("plaintext").is_err());
    }

    #[tokio::test]
    async fn bcrypt_hashes_verify_and_ask_for_a_rehash() {
        let h = PasswordHasher::new(cheap(), 2).unwrap();
        let parts = bcrypt::hash_with_result(PW, 4).unwrap();
        for version in
            [bcrypt::Version::TwoA, bcrypt::Version::TwoB, bcrypt::Version::TwoY, bcrypt::Version::TwoX]
        {
            assert_foreign(&h, &parts.format_for_version(version), PW).await;
        }
        // Independent: the OpenWall crypt_blowfish test vector.
        assert_foreign(&h, "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U").await;
        // As in the system it came from, only the first 72 bytes of a password count.
        let long = "x".repeat(72);
        let stored = bcrypt::hash(format!("{long}one"), 4).unwrap();
        assert_eq!(check_with(&h, &format!("{long}two"), &stored).await, REHASH);
    }

    #[tokio::test]
    async fn malformed_or_too_costly_bcrypt_is_refused_without_panicking() {
        let h = PasswordHasher::new(cheap(), 2).unwrap();
        let good = bcrypt::hash(PW, 4).unwrap();
        let body = &good[7..]; // salt and hash
        assert!(is_supported_hash(&format!("$2b$16${body}")), "the highest cost accepted");
        let mut bad = vec![
            good[..59].to_owned(),
            good[..30].to_owned(),
            "$2b$".to_owned(),
            "$2b$04$".to_owned(),
            format!("{good}x"),
            format!("$2b$17${body}"),
            format!("$2b$31${body}"),
            format!("$2b$99${body}"),
            format!("$2b$03${body}"),
            format!("$2b$00${body}"),
            format!("$2b$-1${body}"),
            format!("$2b$ab${body}"),
            format!("$2b$04${}", "!".repeat(53)),
            format!("$2b$04x{body}"),
            format!("$2b$04${}é", &body[..51]),
            format!("$2z$04${body}"),
        ];
        bad.push(format!("$2b$04${}", "é".repeat(26)));
        for stored in bad {
            assert_refused(&h, &stored, PW).await;
        }
    }

    #[tokio::test]
    async fn scrypt_hashes_verify_and_ask_for_a_rehash() {
        let h = PasswordHasher::new(cheap(), 2).unwrap();
        let scrypt = scrypt::Scrypt::new_with_params(scrypt::Params::new(4, 8, 1).unwrap());
        let stored = PhcHasher::hash_password_with_salt(&scrypt, PW.as_bytes(), SALT).unwrap().to_string();
        assert!(stored.starts_with("$scrypt$ln=4,r=8,p=1$aGFsbHBhc3Mtc2FsdC0xNg$"), "{stored}");
        assert_foreign(&h, &stored, PW).await;
        // Independent: Python's hashlib.scrypt(b"hunter22", salt=b"hallpass-salt-16", n=1024,
        // r=8, p=1, dklen=32), in unpadded standard base64.
        let python =
            "$scrypt$ln=10,r=8,p=1$aGFsbHBhc3Mtc2FsdC0xNg$+h/cwPS4FnbiKJc1JXCiT+8hgqPbQdrHR9D6Sj6RCD8";
        assert_foreign(&h, python, PW).await;
    }

    #[tokio::test]
    async fn malformed_or_too_costly_scrypt_is_refused_without_panicking() {
        let h = PasswordHasher::new(cheap(), 2).unwrap();
        let salt = "aGFsbHBhc3Mtc2FsdC0xNg";
        let hash = "+h/cwPS4FnbiKJc1JXCiT+8hgqPbQdrHR9D6Sj6RCD8";
        let with = |params: &str| format!("$scrypt${params}${salt}${hash}");
        // At the limits: 256 MiB of memory; 1 GiB of work; ln = 20.
        for params in ["ln=18,r=8,p=1", "ln=17,r=8,p=8", "ln=20,r=2,p=1"] {
            assert!(is_supported_hash(&with(params)), "{params}");
        }
        let mut bad: Vec<String> = [
            "ln=21,r=1,p=1",
            "ln=63,r=8,p=1",
            "ln=64,r=8,p=1",
            "ln=255,r=8,p=1",
            "ln=256,r=8,p=1",
            "ln=19,r=8,p=1",
            "ln=10,r=4294967295,p=1",
            "ln=17,r=8,p=9",
            "ln=1,r=65536,p=65536",
            "ln=1,r=4294967295,p=4294967295",
            "ln=10,r=0,p=1",
            "ln=10,r=8,p=0",
            "ln=10,r=8,p=1,x=1",
            "ln=-1,r=8,p=1",
            "ln=ten,r=8,p=1",
        ]
        .iter()
        .map(|p| with(p))
        .collect();
        bad.extend([
            "$scrypt$".to_owned(),
            "$scrypt$ln=10,r=8,p=1".to_owned(),
            format!("$scrypt$ln=10,r=8,p=1${salt}"),
            format!("$scrypt$ln=10,r=8,p=1${salt}$"),
            format!("$scrypt$ln=10,r=8,p=1$!!!!!!!!$${hash}"),
            format!("$scrypt$ln=10,r=8,p=1${salt}$not*base64"),
            format!("$scrypt$ln=10,r=8,p=1${salt}$AAAA"),
            format!("$scrypt$v=1$ln=10,r=8,p=1${salt}${hash}"),
        ]);
        for stored in bad {
            assert_refused(&h, &stored, PW).await;
        }
    }

    #[tokio::test]
    async fn pbkdf2_hashes_verify_and_ask_for_a_rehash() {
        let h = PasswordHasher::new(cheap(), 2).unwrap();
        for (algorithm, len) in [(pbkdf2::Algorithm::Pbkdf2Sha256, 32), (pbkdf2::Algorithm::Pbkdf2Sha512, 64)]
        {
            let params = pbkdf2::Params::new_with_output_len(1000, len).unwrap();
            let pbkdf2 = pbkdf2::Pbkdf2::new(algorithm, params);
            let stored =
                PhcHasher::hash_password_with_salt(&pbkdf2, PW.as_bytes(), SALT).unwrap().to_string();
            assert!(stored.starts_with(&format!("${algorithm}$i=1000,l={len}$")), "{stored}");
            assert_foreign(&h, &stored, PW).await;
        }
        // Independent: Python's hashlib.pbkdf2_hmac(alg, b"hunter22", b"hallpass-salt-16", 1000,
        // dklen), in unpadded standard base64.
        let sha256 =
            "$pbkdf2-sha256$i=1000,l=32$aGFsbHBhc3Mtc2FsdC0xNg$3wrG8QKgsZzk9hNieOqU0pQOW8eZSMCTkp0zCNkp2s0";
        let sha512 = "$pbkdf2-sha512$i=1000,l=64$aGFsbHBhc3Mtc2FsdC0xNg$7CK7xSp/LyaRKZnhmFUTwaHu6wBBwHoFoWNIUQ+aoSxp\
                      Whe9xPfAYQRvuZI8XHC7ieD5BKB/a8YLinDnUebIYQ";
        assert_foreign(&h, sha256, PW).await;
        assert_foreign(&h, sha512, PW).await;
    }

    #[tokio::test]
    async fn malformed_or_too_costly_pbkdf2_is_refused_without_panicking() {
        let h = PasswordHasher::new(cheap(), 2).unwrap();
        let salt = "aGFsbHBhc3Mtc2FsdC0xNg";
        let hash = "3wrG8QKgsZzk9hNieOqU0pQOW8eZSMCTkp0zCNkp2s0";
        assert!(is_supported_hash(&format!("$pbkdf2-sha256$i=10000000,l=32${salt}${hash}")));
        for stored in [
            format!("$pbkdf2-sha256$i=10000001,l=32${salt}${hash}"),
            format!("$pbkdf2-sha256$i=4294967295,l=32${salt}${hash}"),
            format!("$pbkdf2-sha256$i=4294967296,l=32${salt}${hash}"),
            format!("$pbkdf2-sha256$i=999,l=32${salt}${hash}"),
            format!("$pbkdf2-sha256$i=0,l=32${salt}${hash}"),
            format!("$pbkdf2-sha256$i=1000,l=64${salt}${hash}"),
            format!("$pbkdf2-sha256$i=1000,l=1000${salt}${hash}"),
            format!("$pbkdf2-sha256$i=1000,l=32,x=1${salt}${hash}"),
            format!("$pbkdf2-sha256$i=1000,l=32${salt}"),
            format!("$pbkdf2-sha256$i=1000,l=32$!!!!!!!!${hash}"),
            format!("$pbkdf2-sha256$i=1000,l=32${salt}${hash}$"),
            format!("$pbkdf2-sha1$i=1000,l=20${salt}$AAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            format!("$pbkdf2-md5$i=1000,l=32${salt}${hash}"),
            "$pbkdf2-sha512$".to_owned(),
        ] {
            assert_refused(&h, &stored, PW).await;
        }
    }

    #[tokio::test]
    async fn sleepless_sha1_hashes_verify_and_ask_for_a_rehash() {
        let h = PasswordHasher::new(cheap(), 2).unwrap();
        let salt = "9c1185a5c5e9fc54612808977ee8f548b2258d31";
        let digest = hex(&sha1::Sha1::new().chain_update(PW).chain_update(salt).finalize());
        // Independent: python3 -c "import hashlib; print(hashlib.sha1(b'hunter22' +
        // b'9c1185a5c5e9fc54612808977ee8f548b2258d31').hexdigest())"
        assert_eq!(digest, "fb04943bf5d085d17c88ce14ecdb7582cdac5043");
        let stored = sleepless_sha1_hash_string(salt, &digest);
        assert_eq!(
            stored,
            "$sleepless-sha1$9c1185a5c5e9fc54612808977ee8f548b2258d31$fb04943bf5d085d17c88ce14ecdb7582cdac5043"
        );
        assert!(stored.starts_with(SLEEPLESS_SHA1_PREFIX));
        assert_foreign(&h, &stored, PW).await;
        // The digest in either case; the salt is hashed as written, so its case matters.
        assert_foreign(&h, &sleepless_sha1_hash_string(salt, &digest.to_uppercase()), PW).await;
        let upper_salt = sleepless_sha1_hash_string(&salt.to_uppercase(), &digest);
        assert!(is_supported_hash(&upper_salt));
        assert_eq!(check_with(&h, PW, &upper_salt).await, NO);
        // The password goes first: sha1(salt + password) is not the scheme.
        let swapped = hex(&sha1::Sha1::new().chain_update(salt).chain_update(PW).finalize());
        assert_eq!(check_with(&h, PW, &sleepless_sha1_hash_string(salt, &swapped)).await, NO);
    }

    #[tokio::test]
    async fn malformed_sleepless_sha1_is_refused_without_panicking() {
        let h = PasswordHasher::new(cheap(), 2).unwrap();
        let salt = "9c1185a5c5e9fc54612808977ee8f548b2258d31";
        let digest = "fb04943bf5d085d17c88ce14ecdb7582cdac5043";
        for stored in [
            sleepless_sha1_hash_string(&salt[1..], digest),
            sleepless_sha1_hash_string(&format!("{salt}0"), digest),
            sleepless_sha1_hash_string(&salt.replace('c', "g"), digest),
            sleepless_sha1_hash_string("", digest),
            sleepless_sha1_hash_string(salt, &digest[1..]),
            sleepless_sha1_hash_string(salt, &format!("{digest}0")),
            sleepless_sha1_hash_string(salt, &digest.replace('f', "x")),
            sleepless_sha1_hash_string(salt, ""),
            sleepless_sha1_hash_string(salt, &"é".repeat(20)),
            sleepless_sha1_hash_string(&"é".repeat(20), digest),
            sleepless_sha1_hash_string(salt, &format!("{digest}$")),
            format!("{SLEEPLESS_SHA1_PREFIX}{salt}"),
            format!("{SLEEPLESS_SHA1_PREFIX}{salt}{digest}"),
            SLEEPLESS_SHA1_PREFIX.to_owned(),
        ] {
            assert_refused(&h, &stored, PW).await;
        }
    }

    #[tokio::test]
    async fn unknown_formats_are_refused_without_panicking() {
        let h = PasswordHasher::new(cheap(), 2).unwrap();
        for stored in [
            String::new(),
            "$".to_owned(),
            "$$$$".to_owned(),
            PW.to_owned(),
            "5f4dcc3b5aa765d61d8327deb882cf99".to_owned(),
            "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/".to_owned(),
            "$5$rounds=5000$saltsalt$qjXMvbEw8oaL.CzflDugX".to_owned(),
            "$pbkdf2$1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned(),
            "pbkdf2_sha256$1000$salt$aGFzaGhhc2hoYXNoaGFzaA=".to_owned(),
            "$argon2id$".to_owned(),
            "$argon2id$v=19$m=256,t=1,p=1$!!!!$!!!!".to_owned(),
            "$2b".to_owned(),
            "$".repeat(10_000),
            "x".repeat(100_000),
        ] {
            assert_refused(&h, &stored, PW).await;
        }
    }
}
