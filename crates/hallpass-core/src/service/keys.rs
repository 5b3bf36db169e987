//! API keys: creating, authenticating (with the process's cache), listing and revoking
//! them, and each key's request budgets in this process (token buckets, [`Hallpass::admit_key`]).

use super::{Hallpass, KeyBucket};
use crate::error::{Error, Result};
use crate::model::*;
use crate::secret::{ApiKeySecret, TokenHash};
use crate::settings::KeyCall;
use crate::store::Change;
use crate::types::*;
use std::sync::Arc;
use uuid::Uuid;

impl Hallpass {
    /// Creates an API key for `scope`; the secret is returned once and stored hashed.
    pub async fn create_api_key(&self, scope: Scope, name: Option<String>) -> Result<(ApiKey, ApiKeySecret)> {
        if let Some(n) = &name
            && (n.chars().count() > 200 || n.chars().any(char::is_control))
        {
            return Err(Error::invalid("name", "must be at most 200 characters without control characters"));
        }
        let secret = ApiKeySecret::generate();
        let key = ApiKey {
            id: Uuid::now_v7(),
            scope,
            name,
            created_at: self.now(),
            revoked_at: None,
            last_used_at: None,
        };
        self.store.insert_api_key(&key, &secret.hash()).await?;
        Ok((key, secret))
    }

    /// Spends one request of the key's budget for `call` (a token bucket per key and
    /// kind of call, by the service's clock); [`Error::RateLimited`] when it is empty.
    ///
    /// [`KeyCall::Costly`] calls (those that hash a password or issue a code) spend from
    /// [`crate::ThrottleSettings::key_rate`] / `key_burst`; every other call from
    /// `key_other_rate` / `key_other_burst`, which is off by default: a session check costs
    /// one indexed read, so a budget there would only refuse a busy backend its own users.
    /// The buckets live in this process: with several processes, each grants the budget
    /// on its own.
    pub fn admit_key(&self, key: &ApiKey, call: KeyCall) -> Result<()> {
        let policy = &self.scope_settings(&key.scope).throttle;
        let (rate, burst) = match call {
            KeyCall::Costly => (policy.key_rate, policy.key_burst),
            KeyCall::Other => (policy.key_other_rate, policy.key_other_burst),
        };
        if !policy.enabled || rate == 0 {
            return Ok(());
        }
        let burst = if burst == 0 { rate.saturating_mul(2) } else { burst };
        let (rate, full) = (u64::from(rate), u64::from(burst) * 1000);
        let now = self.now();
        let mut buckets = self.key_buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry((key.id, call)).or_insert(KeyBucket { milli: full, at: now });
        let elapsed_ms = u64::try_from((now - bucket.at).whole_milliseconds()).unwrap_or(0);
        // A token per second is a thousandth per millisecond: `rate` thousandths per ms.
        bucket.milli = bucket.milli.saturating_add(elapsed_ms.saturating_mul(rate)).min(full);
        bucket.at = bucket.at.max(now);
        if bucket.milli >= 1000 {
            bucket.milli -= 1000;
            return Ok(());
        }
        let wait_ms = (1000 - bucket.milli).div_ceil(rate);
        Err(Error::RateLimited { retry_after_secs: wait_ms.div_ceil(1000).max(1) })
    }

    /// The unrevoked key a client presented, if any.
    pub async fn authenticate_key(&self, presented: &str) -> Result<Option<Arc<ApiKey>>> {
        if !presented.starts_with(ApiKeySecret::PREFIX) || presented.len() > 128 {
            return Ok(None);
        }
        // Hashed as presented (trimmed, as `ApiKeySecret::from_presented` would): no copy of
        // the secret is made on the path of every request.
        let hash = TokenHash::of(presented.trim());
        let key = match &self.caches {
            Some(caches) => match caches.key(&hash) {
                Some(hit) => Some(hit),
                None => {
                    let ticket = caches.ticket();
                    let found = self.store.find_api_key(&hash).await?.map(Arc::new);
                    if let Some(key) = found.as_ref().filter(|k| k.revoked_at.is_none()) {
                        caches.keep_key(hash, Arc::clone(key), ticket);
                    }
                    found
                }
            },
            None => self.store.find_api_key(&hash).await?.map(Arc::new),
        };
        let key = key.filter(|k| k.revoked_at.is_none());
        if let Some(k) = &key {
            self.note_key_use(k.id);
        }
        Ok(key)
    }

    /// Records a key's use for the admin page's "last used", cheaply: this is the path of
    /// every API request. At most once a minute per key in this process, and written by a
    /// spawned task, so the request never waits for it and a failed write only leaves the
    /// figure a little older (it is logged, not answered). Outside a Tokio runtime nothing
    /// is recorded.
    fn note_key_use(&self, id: Uuid) {
        use std::sync::atomic::Ordering;
        const EVERY_MS: i64 = 60_000;
        let now_ms = self.clock.unix_ms();
        let due = |last: &std::sync::atomic::AtomicI64| {
            let seen = last.load(Ordering::Relaxed);
            // Whoever moves the mark records the use; a racing request sees it moved.
            now_ms - seen >= EVERY_MS
                && last.compare_exchange(seen, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        };
        let known = {
            let uses = self.key_uses.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            uses.get(&id).map(due)
        };
        match known {
            Some(false) => return,
            Some(true) => {}
            None => {
                let mut uses = self.key_uses.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(last) = uses.get(&id) {
                    if !due(last) {
                        return;
                    }
                } else {
                    uses.insert(id, std::sync::atomic::AtomicI64::new(now_ms));
                }
            }
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let store = self.store.clone();
        let now = crate::clock::from_unix_ms(now_ms);
        runtime.spawn(async move {
            if let Err(e) = store.touch_api_key(id, now).await {
                tracing::warn!(error = %e, key = %id, "recording an API key's last use failed");
            }
        });
    }

    /// Every key.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        Ok(self.store.list_api_keys().await?)
    }

    /// Revokes a key.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<()> {
        // The key's scope, for the change stream's `key.revoked` (keys are few).
        let scope = self.store.list_api_keys().await?.into_iter().find(|k| k.id == id).map(|k| k.scope);
        if self.store.revoke_api_key(id, self.now()).await? {
            let change = scope.map_or(Change::All, |scope| Change::Key { scope, id, revoked: true });
            self.changed(change).await;
            Ok(())
        } else {
            Err(Error::KeyNotFound)
        }
    }
}
