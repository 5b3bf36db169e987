//! Password hashing with Argon2id on a bounded pool.
//!
//! Hashing is CPU-bound and deliberately slow, so it never runs on the async workers: each
//! hash or verification waits for one of a fixed number of permits and then runs on a
//! blocking thread. Session checks, which never hash, stay responsive while logins queue.
//! An unknown user is verified against a dummy hash made with the same parameters, so it
//! costs what a wrong password costs.

use crate::error::{Error, Result};
use crate::types::Password;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Semaphore;

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

/// Hashes and verifies passwords on a bounded pool.
pub struct PasswordHasher {
    params: HashParams,
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    dummy: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("params", &self.params).finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with `params` running at most `threads` hashes at once (at least one).
    /// Computes the dummy hash once, here.
    pub fn new(params: HashParams, threads: usize) -> Result<Self> {
        let argon2 = params.argon2()?;
        let dummy = argon2
            .hash_password(b"hallpass dummy password for unknown users")
            .map_err(|e| Error::Internal(format!("argon2: {e}")))?
            .to_string();
        Ok(Self {
            params,
            argon2,
            permits: Arc::new(Semaphore::new(threads.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            dummy,
        })
    }

    /// The parameters new hashes are made with.
    pub fn params(&self) -> HashParams {
        self.params
    }

    /// How many hash jobs wait for a permit now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let permit = permit.map_err(|_| Error::Internal("hashing pool closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let out = job();
            drop(permit);
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("hashing task failed: {e}")))
    }

    /// Hashes a new password to a PHC string.
    pub async fn hash(&self, password: Password) -> Result<String> {
        let argon2 = self.argon2.clone();
        self.run(move || argon2.hash_password(password.expose()).map(|h| h.to_string()))
            .await?
            .map_err(|e| Error::Internal(format!("argon2: {e}")))
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no
    /// stored hash, so both paths cost the same.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> Result<Verified> {
        let has_user = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy.clone());
        let argon2 = self.argon2.clone();
        let params = self.params;
        let verified = self
            .run(move || {
                let Ok(parsed) = PasswordHash::new(&phc) else {
                    // Not a PHC string we know: spend the same time, then refuse.
                    let _ = argon2.hash_password(password.expose());
                    return Verified { ok: false, needs_rehash: false };
                };
                let ok = argon2.verify_password(password.expose(), &parsed).is_ok();
                Verified { ok, needs_rehash: ok && !uses_params(&parsed, params) }
            })
            .await?;
        Ok(Verified { ok: verified.ok && has_user, ..verified })
    }
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
}
