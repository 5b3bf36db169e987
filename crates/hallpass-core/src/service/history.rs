//! Login history: a user's login events, paged, and login statistics in time buckets.

use super::{Hallpass, MAX_BUCKETS, page_limit, parse_cursor};
use crate::error::{Error, Result};
use crate::model::*;
use crate::types::*;
use time::{Duration, OffsetDateTime};

impl Hallpass {
    /// A user's login events, newest first.
    pub async fn login_history(
        &self,
        scope: &Scope,
        r: &UserRef,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<LoginEvent>> {
        let limit = page_limit(limit)?;
        let before = parse_cursor(cursor)?;
        let user = self.resolve(scope, r).await?.user;
        let mut items = self.store.list_events(scope, user.id, before, limit + 1).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|e| e.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Successful logins and distinct users per bucket over `[from, to)`, every bucket
    /// present (zeros included). Defaults: `to` = now; `from` = 24 hours (hour buckets) or
    /// 30 days (day buckets) before `to`.
    pub async fn login_stats(
        &self,
        scope: &Scope,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
        bucket: Bucket,
    ) -> Result<Vec<StatBucket>> {
        let width = bucket.millis();
        let to = to.unwrap_or_else(|| self.now());
        let from = from.unwrap_or(match bucket {
            Bucket::Hour => to - Duration::hours(24),
            Bucket::Day => to - Duration::days(30),
        });
        if from >= to {
            return Err(Error::invalid("from", "must be before `to`"));
        }
        let first = crate::clock::to_unix_ms(from).div_euclid(width) * width;
        let end = crate::clock::to_unix_ms(to);
        if (end - first) / width > MAX_BUCKETS {
            return Err(Error::invalid("from", format!("the range spans more than {MAX_BUCKETS} buckets")));
        }
        let found = self.store.login_stats(scope, from, to, bucket).await?;
        let mut out = Vec::new();
        let mut start = first;
        while start < end {
            let at = crate::clock::from_unix_ms(start);
            let hit = found.iter().find(|b| b.start == at);
            out.push(StatBucket {
                start: at,
                logins: hit.map_or(0, |b| b.logins),
                users: hit.map_or(0, |b| b.users),
            });
            start += width;
        }
        Ok(out)
    }
}
