//! What the admin web page asks of the service beyond the API: the audit trail of admin
//! actions, the figures of every scope, and login attempts per day and outcome.
//!
//! Admins themselves are ordinary users of the internal scope [`Scope::admin`] (`_admin`),
//! which no API key, CLI `--scope` or import can name (its name fails [`Scope::parse`]).
//! So an admin login is [`Hallpass::login`] in that scope (Argon2id on the bounded pool,
//! equal cost for unknown admins, the same throttling, login events) and an admin session
//! is an ordinary session there. The figures here leave that scope out.

use crate::error::Result;
use crate::model::{AuditEntry, Bucket, Outcome, Page, ScopeFigures};
use crate::service::{DEFAULT_PAGE, Hallpass, MAX_PAGE};
use crate::types::{JsonObject, Scope};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Login attempts of one day, by outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayOutcomes {
    /// The day's start (UTC midnight).
    pub day: OffsetDateTime,
    /// Attempts per outcome; outcomes with none are absent.
    pub counts: BTreeMap<&'static str, u64>,
}

impl DayOutcomes {
    /// Successful logins.
    pub fn successes(&self) -> u64 {
        self.counts.get(Outcome::Success.as_str()).copied().unwrap_or(0)
    }
    /// Failed attempts (every outcome but success).
    pub fn failures(&self) -> u64 {
        self.counts.iter().filter(|(k, _)| **k != Outcome::Success.as_str()).map(|(_, v)| v).sum()
    }
}

impl Hallpass {
    /// Writes one entry of the admin audit trail, at the service clock's now.
    pub async fn audit(
        &self,
        admin: &str,
        action: &str,
        scope: Option<&Scope>,
        target: Option<String>,
        detail: JsonObject,
    ) -> Result<()> {
        let entry = AuditEntry {
            id: Uuid::now_v7(),
            at: self.now(),
            admin: admin.to_owned(),
            action: action.to_owned(),
            scope: scope.cloned(),
            target,
            detail,
        };
        Ok(self.store().insert_audit(&entry).await?)
    }

    /// The audit trail, newest first, a page at a time (`cursor`: the `next_cursor` of the
    /// previous page).
    pub async fn list_audit(&self, limit: Option<u32>, cursor: Option<&str>) -> Result<Page<AuditEntry>> {
        let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let before = match cursor {
            None | Some("") => None,
            Some(c) => Some(
                Uuid::parse_str(c)
                    .map_err(|_| crate::Error::invalid("cursor", "is not a cursor this server issued"))?,
            ),
        };
        let mut items = self.store().list_audit(before, limit + 1).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|e| e.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// The figures of every application scope (the internal admin scope left out), by name.
    pub async fn scope_figures(&self) -> Result<Vec<ScopeFigures>> {
        let mut all = self.store().scope_figures(self.now()).await?;
        all.retain(|f| !f.scope.is_admin());
        all.sort_by(|a, b| a.scope.cmp(&b.scope));
        Ok(all)
    }

    /// Login attempts per UTC day and outcome over the last `days` days (today included),
    /// every day present, oldest first, summed over `scopes`.
    pub async fn outcomes_per_day(&self, scopes: &[Scope], days: u32) -> Result<Vec<DayOutcomes>> {
        let width = Bucket::Day.millis();
        let now = self.now();
        let today = crate::clock::to_unix_ms(now).div_euclid(width) * width;
        let first = today - i64::from(days.max(1) - 1) * width;
        let from = crate::clock::from_unix_ms(first);
        let to = crate::clock::from_unix_ms(today) + Duration::days(1);
        let mut out: Vec<DayOutcomes> = (0..i64::from(days.max(1)))
            .map(|i| DayOutcomes {
                day: crate::clock::from_unix_ms(first + i * width),
                counts: BTreeMap::new(),
            })
            .collect();
        for scope in scopes {
            for c in self.store().outcome_stats(scope, from, to, Bucket::Day).await? {
                let i = (crate::clock::to_unix_ms(c.start) - first).div_euclid(width);
                if let Some(day) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
                    *day.counts.entry(c.outcome.as_str()).or_default() += c.count;
                }
            }
        }
        Ok(out)
    }
}
