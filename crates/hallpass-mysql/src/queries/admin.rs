//! What the admin web page needs beyond the API: its audit trail, the figures of every
//! scope, and login attempts counted per outcome.

use crate::codec::*;
use crate::error::{QResult, corrupt};
use crate::rows::audit_row;
use hallpass_core::clock::{from_unix_ms, to_unix_ms};
use hallpass_core::{AuditEntry, Bucket, Outcome, OutcomeCount, Scope, ScopeFigures};
use sqlx::Row;
use sqlx::mysql::MySqlConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) async fn insert_audit(c: &mut MySqlConnection, e: &AuditEntry) -> QResult<()> {
    sqlx::query(
        "INSERT INTO admin_audit (id, at, admin, action, scope, target, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id(e.id))
    .bind(ms(e.at))
    .bind(&e.admin)
    .bind(&e.action)
    .bind(e.scope.as_ref().map(Scope::as_str))
    .bind(e.target.as_deref())
    .bind(json(&e.detail)?)
    .execute(&mut *c)
    .await?;
    Ok(())
}

const LIST_AUDIT: &str =
    "SELECT id, at, admin, action, scope, target, detail FROM admin_audit ORDER BY id DESC LIMIT ?";
const LIST_AUDIT_BEFORE: &str = "SELECT id, at, admin, action, scope, target, detail FROM admin_audit \
     WHERE id < ? ORDER BY id DESC LIMIT ?";

pub(crate) async fn list_audit(
    c: &mut MySqlConnection,
    before: Option<Uuid>,
    limit: u32,
) -> QResult<Vec<AuditEntry>> {
    let rows = match before {
        None => sqlx::query(LIST_AUDIT).bind(limit).fetch_all(&mut *c).await?,
        Some(b) => sqlx::query(LIST_AUDIT_BEFORE).bind(id(b)).bind(limit).fetch_all(&mut *c).await?,
    };
    rows.iter().map(audit_row).collect()
}

/// One row per scope that has a user or a key: an operator's page, not a hot path.
/// Counts are cast to a signed BIGINT so they decode as `i64`.
const SCOPE_FIGURES: &str = "SELECT s.scope, \
     CAST((SELECT COUNT(*) FROM users u WHERE u.scope = s.scope) AS SIGNED), \
     CAST((SELECT COUNT(*) FROM users u WHERE u.scope = s.scope AND u.active) AS SIGNED), \
     CAST((SELECT COUNT(*) FROM sessions x WHERE x.scope = s.scope AND x.valid_until > ?) AS SIGNED), \
     CAST((SELECT COUNT(*) FROM api_keys k WHERE k.scope = s.scope AND k.revoked_at IS NULL) AS SIGNED) \
     FROM (SELECT scope FROM users UNION SELECT scope FROM api_keys) s";

pub(crate) async fn scope_figures(
    c: &mut MySqlConnection,
    now: OffsetDateTime,
) -> QResult<Vec<ScopeFigures>> {
    let rows = sqlx::query(SCOPE_FIGURES).bind(ms(now)).fetch_all(&mut *c).await?;
    rows.iter()
        .map(|r| {
            Ok(ScopeFigures {
                scope: get_parsed(r, 0, Scope::from_stored)?,
                users: r.try_get::<i64, _>(1)?.unsigned_abs(),
                active_users: r.try_get::<i64, _>(2)?.unsigned_abs(),
                live_sessions: r.try_get::<i64, _>(3)?.unsigned_abs(),
                api_keys: r.try_get::<i64, _>(4)?.unsigned_abs(),
            })
        })
        .collect()
}

/// Attempts per bucket and outcome over `[from, to)`, buckets as in `events::LOGIN_STATS`.
const OUTCOME_STATS: &str = "SELECT CAST(at - MOD(MOD(at, ?) + ?, ?) AS SIGNED) AS bucket_start, outcome, \
     COUNT(*) FROM login_events WHERE scope = ? AND at >= ? AND at < ? GROUP BY bucket_start, outcome";

pub(crate) async fn outcome_stats(
    c: &mut MySqlConnection,
    scope: &Scope,
    from: OffsetDateTime,
    to: OffsetDateTime,
    bucket: Bucket,
) -> QResult<Vec<OutcomeCount>> {
    let w = bucket.millis();
    let rows = sqlx::query(OUTCOME_STATS)
        .bind(w)
        .bind(w)
        .bind(w)
        .bind(scope.as_str())
        .bind(to_unix_ms(from))
        .bind(to_unix_ms(to))
        .fetch_all(&mut *c)
        .await?;
    rows.iter()
        .map(|r| {
            let outcome: String = r.try_get(1)?;
            Ok(OutcomeCount {
                start: from_unix_ms(r.try_get(0)?),
                outcome: Outcome::from_stored(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
                count: r.try_get::<i64, _>(2)?.unsigned_abs(),
            })
        })
        .collect()
}
