//! API keys: creating, authenticating (with the process's cache), listing and revoking
//! them, and each key's request budget in this process (a token bucket, [`Hallpass::admit_key`]).

use super::{Hallpass, KeyBucket};
use crate::error::{Error, Result};
use crate::model::*;
use crate::secret::ApiKeySecret;
use crate::store::Change;
use crate::types::*;
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
        let key = ApiKey { id: Uuid::now_v7(), scope, name, created_at: self.now(), revoked_at: None };
        self.store.insert_api_key(&key, &secret.hash()).await?;
        Ok((key, secret))
    }

    /// Spends one request of the key's budget (a token bucket of
    /// [`crate::ThrottleSettings::key_burst`] requests refilled at `key_rate` per second,
    /// by the service's clock); [`Error::RateLimited`] when it is empty. The buckets live
    /// in this process: with several processes, each grants the budget on its own.
    pub fn admit_key(&self, key: &ApiKey) -> Result<()> {
        let policy = &self.scope_settings(&key.scope).throttle;
        if !policy.enabled || policy.key_rate == 0 {
            return Ok(());
        }
        let (rate, full) = (u64::from(policy.key_rate), u64::from(policy.key_burst.max(1)) * 1000);
        let now = self.now();
        let mut buckets = self.key_buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(key.id).or_insert(KeyBucket { milli: full, at: now });
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
    pub async fn authenticate_key(&self, presented: &str) -> Result<Option<ApiKey>> {
        if !presented.starts_with(ApiKeySecret::PREFIX) || presented.len() > 128 {
            return Ok(None);
        }
        let hash = ApiKeySecret::from_presented(presented).hash();
        let key = match &self.caches {
            Some(caches) => match caches.key(&hash) {
                Some(hit) => Some(hit),
                None => {
                    let ticket = caches.ticket();
                    let found = self.store.find_api_key(&hash).await?;
                    if let Some(key) = found.as_ref().filter(|k| k.revoked_at.is_none()) {
                        caches.keep_key(hash, key.clone(), ticket);
                    }
                    found
                }
            },
            None => self.store.find_api_key(&hash).await?,
        };
        Ok(key.filter(|k| k.revoked_at.is_none()))
    }

    /// Every key.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        Ok(self.store.list_api_keys().await?)
    }

    /// Revokes a key.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<()> {
        if self.store.revoke_api_key(id, self.now()).await? {
            self.changed(Change::Keys).await;
            Ok(())
        } else {
            Err(Error::KeyNotFound)
        }
    }
}
