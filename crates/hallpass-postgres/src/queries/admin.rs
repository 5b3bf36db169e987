//! What the admin web page needs beyond the API: its audit trail, the figures of every
//! scope, and login attempts counted per outcome.

use crate::codec::{id, json, ms};
use crate::error::{QResult, corrupt};
use crate::rows::audit_row;
use hallpass_core::clock::from_unix_ms;
use hallpass_core::{AuditEntry, Bucket, Outcome, OutcomeCount, Scope, ScopeFigures};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) async fn insert_audit(pool: &PgPool, e: &AuditEntry) -> QResult<()> {
    sqlx::query(
        "INSERT INTO admin_audit (id, at, admin, action, scope, target, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id(e.id))
    .bind(ms(e.at))
    .bind(&e.admin)
    .bind(&e.action)
    .bind(e.scope.as_ref().map(Scope::as_str))
    .bind(e.target.as_deref())
    .bind(json(&e.detail))
    .execute(pool)
    .await?;
    Ok(())
}

const LIST_AUDIT: &str =
    "SELECT id, at, admin, action, scope, target, detail FROM admin_audit ORDER BY id DESC LIMIT $1";
const LIST_AUDIT_BEFORE: &str = "SELECT id, at, admin, action, scope, target, detail FROM admin_audit \
     WHERE id < $1 ORDER BY id DESC LIMIT $2";

pub(crate) async fn list_audit(pool: &PgPool, before: Option<Uuid>, limit: u32) -> QResult<Vec<AuditEntry>> {
    let limit = i64::from(limit);
    let found = match before {
        None => sqlx::query(LIST_AUDIT).bind(limit).fetch_all(pool).await?,
        Some(b) => sqlx::query(LIST_AUDIT_BEFORE).bind(id(b)).bind(limit).fetch_all(pool).await?,
    };
    found.iter().map(audit_row).collect()
}

/// One row per scope that has a user or a key: an operator's page, not a hot path.
const SCOPE_FIGURES: &str = "SELECT s.scope, \
     (SELECT count(*) FROM users u WHERE u.scope = s.scope), \
     (SELECT count(*) FROM users u WHERE u.scope = s.scope AND u.active), \
     (SELECT count(*) FROM sessions x WHERE x.scope = s.scope AND LEAST(x.expires_at, x.absolute_expires_at) > $1), \
     (SELECT count(*) FROM api_keys k WHERE k.scope = s.scope AND k.revoked_at IS NULL) \
     FROM (SELECT scope FROM users UNION SELECT scope FROM api_keys) s";

pub(crate) async fn scope_figures(pool: &PgPool, now: OffsetDateTime) -> QResult<Vec<ScopeFigures>> {
    let found = sqlx::query(SCOPE_FIGURES).bind(ms(now)).fetch_all(pool).await?;
    found
        .iter()
        .map(|r| {
            let scope: String = r.try_get(0)?;
            Ok(ScopeFigures {
                scope: Scope::from_stored(&scope).map_err(|e| corrupt("scope", e))?,
                users: r.try_get::<i64, _>(1)?.unsigned_abs(),
                active_users: r.try_get::<i64, _>(2)?.unsigned_abs(),
                live_sessions: r.try_get::<i64, _>(3)?.unsigned_abs(),
                api_keys: r.try_get::<i64, _>(4)?.unsigned_abs(),
            })
        })
        .collect()
}

/// Attempts per bucket and outcome over `[$2, $3)`, buckets as in `events::LOGIN_STATS`.
const OUTCOME_STATS: &str = "SELECT at - ((at % $4) + $4) % $4 AS start, outcome, count(*) \
     FROM login_events WHERE scope = $1 AND at >= $2 AND at < $3 GROUP BY start, outcome";

pub(crate) async fn outcome_stats(
    pool: &PgPool,
    scope: &Scope,
    from: OffsetDateTime,
    to: OffsetDateTime,
    bucket: Bucket,
) -> QResult<Vec<OutcomeCount>> {
    let found = sqlx::query(OUTCOME_STATS)
        .bind(scope.as_str())
        .bind(ms(from))
        .bind(ms(to))
        .bind(bucket.millis())
        .fetch_all(pool)
        .await?;
    found
        .iter()
        .map(|r| {
            let outcome: String = r.try_get(1)?;
            Ok(OutcomeCount {
                start: from_unix_ms(r.try_get::<i64, _>(0)?),
                outcome: Outcome::from_stored(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
                count: r.try_get::<i64, _>(2)?.unsigned_abs(),
            })
        })
        .collect()
}
