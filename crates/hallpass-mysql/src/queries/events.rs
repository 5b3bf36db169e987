//! Login events: insert, a user's history (newest first, paged by id) and the bucketed
//! statistics of successful logins.

use crate::codec::*;
use crate::error::QResult;
use crate::rows::{event_cols, event_row};
use hallpass_core::clock::{from_unix_ms, to_unix_ms};
use hallpass_core::{Bucket, LoginEvent, Scope, StatBucket};
use sqlx::Row;
use sqlx::mysql::MySqlConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// Stores a failed attempt's event and its webhook deliveries, on the caller's
/// transaction.
pub(crate) async fn insert_failure(
    c: &mut MySqlConnection,
    e: &LoginEvent,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<()> {
    insert_event(&mut *c, e).await?;
    crate::queries::outbox::insert_messages(c, outbox).await
}

pub(crate) async fn insert_event(c: &mut MySqlConnection, e: &LoginEvent) -> QResult<()> {
    sqlx::query(concat!("INSERT INTO login_events (", event_cols!(), ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"))
        .bind(id(e.id))
        .bind(e.scope.as_str())
        .bind(opt_id(e.user_id))
        .bind(ms(e.at))
        .bind(&e.method)
        .bind(e.outcome.as_str())
        .bind(opt_id(e.session_id))
        .bind(e.ip.as_deref())
        .bind(e.user_agent.as_deref())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Two statements rather than `(? IS NULL OR id < ?)`, so the cursor is a range on the
/// (scope, user_id, id) index read backwards.
const LIST_EVENTS: &str = concat!(
    "SELECT ",
    event_cols!(),
    " FROM login_events WHERE scope = ? AND user_id = ? ORDER BY id DESC LIMIT ?"
);
const LIST_EVENTS_BEFORE: &str = concat!(
    "SELECT ",
    event_cols!(),
    " FROM login_events WHERE scope = ? AND user_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
);

pub(crate) async fn list_events(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    before: Option<Uuid>,
    limit: u32,
) -> QResult<Vec<LoginEvent>> {
    let rows = match before {
        None => {
            sqlx::query(LIST_EVENTS)
                .bind(scope.as_str())
                .bind(id(user_id))
                .bind(limit)
                .fetch_all(&mut *c)
                .await?
        }
        Some(before) => {
            sqlx::query(LIST_EVENTS_BEFORE)
                .bind(scope.as_str())
                .bind(id(user_id))
                .bind(id(before))
                .bind(limit)
                .fetch_all(&mut *c)
                .await?
        }
    };
    rows.iter().map(event_row).collect()
}

/// Successful logins and distinct users per bucket over `[from, to)`. A bucket starts at a
/// multiple of its width `w` since the epoch: `at - ((at MOD w) + w) MOD w`, a floored
/// modulo (MySQL's `MOD` keeps the dividend's sign, wrong before 1970). Integer arithmetic
/// throughout, cast to a signed BIGINT so the column decodes as `i64`. Answered from the
/// (scope, at, outcome, user_id) index alone.
const LOGIN_STATS: &str = "SELECT CAST(at - MOD(MOD(at, ?) + ?, ?) AS SIGNED) AS bucket_start, \
     COUNT(*), COUNT(DISTINCT user_id) FROM login_events \
     WHERE scope = ? AND at >= ? AND at < ? AND outcome = 'success' \
     GROUP BY bucket_start ORDER BY bucket_start";

pub(crate) async fn login_stats(
    c: &mut MySqlConnection,
    scope: &Scope,
    from: OffsetDateTime,
    to: OffsetDateTime,
    bucket: Bucket,
) -> QResult<Vec<StatBucket>> {
    let w = bucket.millis();
    let rows = sqlx::query(LOGIN_STATS)
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
            Ok(StatBucket {
                start: from_unix_ms(r.try_get(0)?),
                logins: r.try_get::<i64, _>(1)?.unsigned_abs(),
                users: r.try_get::<i64, _>(2)?.unsigned_abs(),
            })
        })
        .collect()
}
