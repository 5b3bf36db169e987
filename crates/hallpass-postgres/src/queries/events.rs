//! Login events: insert, a user's history (newest first, paged by id) and the bucketed
//! statistics of successful logins.

use crate::codec::{id, ms, opt_id};
use crate::error::QResult;
use crate::rows::{self, event_cols};
use hallpass_core::clock::from_unix_ms;
use hallpass_core::{Bucket, LoginEvent, Scope, StatBucket};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

/// Binds an event's nine columns, in [`event_cols!`] order, wherever they stand in a
/// statement (here, and in the login statement of `sessions.rs`).
pub(crate) fn bind_event<'q>(q: PgQuery<'q>, e: &'q LoginEvent) -> PgQuery<'q> {
    q.bind(id(e.id))
        .bind(e.scope.as_str())
        .bind(opt_id(e.user_id))
        .bind(ms(e.at))
        .bind(&e.method)
        .bind(e.outcome.as_str())
        .bind(opt_id(e.session_id))
        .bind(e.ip.as_deref())
        .bind(e.user_agent.as_deref())
}

/// A query with PostgreSQL arguments.
pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Stores a failed attempt's event: one statement, or with webhook deliveries one
/// transaction holding them all.
pub(crate) async fn insert_event(
    pool: &PgPool,
    e: &LoginEvent,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<()> {
    let q = sqlx::query(concat!(
        "INSERT INTO login_events (",
        event_cols!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ));
    if outbox.is_empty() {
        bind_event(q, e).execute(pool).await?;
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    bind_event(q, e).execute(&mut *tx).await?;
    crate::queries::outbox::insert_messages(&mut tx, outbox).await?;
    tx.commit().await?;
    Ok(())
}

/// Two statements rather than `($3 IS NULL OR id < $3)`, so the cursor is always a range
/// on the (scope, user_id, id) index, also in a generic plan.
pub(crate) const LIST_EVENTS: &str = concat!(
    "SELECT ",
    event_cols!(),
    " FROM login_events WHERE scope = $1 AND user_id = $2 ORDER BY id DESC LIMIT $3"
);
pub(crate) const LIST_EVENTS_BEFORE: &str = concat!(
    "SELECT ",
    event_cols!(),
    " FROM login_events WHERE scope = $1 AND user_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4"
);

pub(crate) async fn list_events(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    before: Option<Uuid>,
    limit: u32,
) -> QResult<Vec<LoginEvent>> {
    let limit = i64::from(limit);
    let found = match before {
        None => {
            sqlx::query(LIST_EVENTS)
                .bind(scope.as_str())
                .bind(id(user_id))
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
        Some(before) => {
            sqlx::query(LIST_EVENTS_BEFORE)
                .bind(scope.as_str())
                .bind(id(user_id))
                .bind(id(before))
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
    };
    found.iter().map(rows::event).collect()
}

/// Successful logins and distinct users per bucket over `[$2, $3)`. A bucket starts at a
/// multiple of its width `$4` since the epoch: `at - (at mod w)` with a floored modulo
/// (PostgreSQL's `%` truncates toward zero, wrong before 1970). Answered from the partial
/// index `login_events_success`, whose predicate the literal `outcome = 'success'` matches.
pub(crate) const LOGIN_STATS: &str = "SELECT at - ((at % $4) + $4) % $4 AS start, count(*), count(DISTINCT user_id) \
     FROM login_events WHERE scope = $1 AND outcome = 'success' AND at >= $2 AND at < $3 \
     GROUP BY start ORDER BY start";

pub(crate) async fn login_stats(
    pool: &PgPool,
    scope: &Scope,
    from: OffsetDateTime,
    to: OffsetDateTime,
    bucket: Bucket,
) -> QResult<Vec<StatBucket>> {
    let found = sqlx::query(LOGIN_STATS)
        .bind(scope.as_str())
        .bind(ms(from))
        .bind(ms(to))
        .bind(bucket.millis())
        .fetch_all(pool)
        .await?;
    found
        .iter()
        .map(|r| {
            Ok(StatBucket {
                start: from_unix_ms(r.try_get::<i64, _>(0)?),
                logins: r.try_get::<i64, _>(1)?.unsigned_abs(),
                users: r.try_get::<i64, _>(2)?.unsigned_abs(),
            })
        })
        .collect()
}
