//! Login throttling counters: read, count a failure (one upsert), clear, several changes
//! in one statement, sweep.

use crate::error::{Fail, QResult};

/// The conflict clause of every hit: a live counter (`t`, the row before) grows by one; an
/// expired one starts again at one, with the new row's window. `last_at` is set last.
macro_rules! count_one_more {
    () => {
        "ON CONFLICT ON CONSTRAINT throttles_pkey DO UPDATE SET \
           failures = CASE WHEN t.expires_at > EXCLUDED.last_at THEN t.failures + 1 ELSE 1 END, \
           first_at = CASE WHEN t.expires_at > EXCLUDED.last_at THEN t.first_at ELSE EXCLUDED.first_at END, \
           expires_at = CASE WHEN t.expires_at > EXCLUDED.last_at THEN t.expires_at ELSE EXCLUDED.expires_at END, \
           last_at = EXCLUDED.last_at"
    };
}
use crate::codec::ms;
use crate::rows::state;
use hallpass_core::{Scope, ThrottleState};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use time::{Duration, OffsetDateTime};

pub(crate) async fn get(
    pool: &PgPool,
    scope: &Scope,
    key: &str,
    now: OffsetDateTime,
) -> QResult<Option<ThrottleState>> {
    let row = sqlx::query(
        "SELECT failures, first_at, last_at, expires_at FROM throttles \
         WHERE scope = $1 AND key = $2 AND expires_at > $3",
    )
    .bind(scope.as_str())
    .bind(key)
    .bind(ms(now))
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(state).transpose()
}

/// One statement: a live counter grows by one; a missing or expired one starts at one. The conflicting row is locked by the upsert, so concurrent hits are serialised and
/// each counts; in `SET`, `throttles.*` is the row before the update.
pub(crate) async fn hit(
    conn: impl sqlx::PgExecutor<'_>,
    scope: &Scope,
    key: &str,
    now: OffsetDateTime,
    window: Duration,
) -> QResult<ThrottleState> {
    let row = sqlx::query(concat!(
        "INSERT INTO throttles AS t (scope, key, failures, first_at, last_at, expires_at) \
             VALUES ($1, $2, 1, $3, $3, $4) ",
        count_one_more!(),
        " RETURNING failures, first_at, last_at, expires_at"
    ))
    .bind(scope.as_str())
    .bind(key)
    .bind(ms(now))
    .bind(ms(now + window))
    .fetch_one(conn)
    .await?;
    state(&row)
}

pub(crate) async fn clear(pool: &PgPool, scope: &Scope, key: &str) -> QResult<()> {
    sqlx::query("DELETE FROM throttles WHERE scope = $1 AND key = $2")
        .bind(scope.as_str())
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

/// [`hallpass_core::Store::throttle_update`]. Hits alone (a login's reservation, the
/// common case) are one multi-row upsert like [`hit`]'s, taking its rows in key order so
/// that concurrent reservations of the same counters queue instead of deadlocking. With
/// clears or undos (a login's settlement) it is one statement too, whose first part locks
/// every counter to clear or undo, in key order, and whose delete and update judge each
/// undo on the locked row (decrement, or remove at one or expired: exact however many run
/// at once); its hits name other counters. A deadlock victim (possible only against a
/// statement that took its locks in another order) was rolled back whole and runs again.
pub(crate) async fn update(
    pool: &PgPool,
    scope: &Scope,
    update: &hallpass_core::ThrottleUpdate<'_>,
    now: OffsetDateTime,
) -> QResult<Vec<ThrottleState>> {
    let mut tries = 0;
    loop {
        let done = if update.undo.is_empty() && update.clear.is_empty() {
            hits(pool, scope, update.hit, now).await
        } else {
            settle(pool, scope, update, now).await
        };
        match done {
            Err(Fail::Sql(sqlx::Error::Database(db)))
                if db.code().as_deref() == Some("40P01") && tries < 5 =>
            {
                tries += 1;
            }
            done => return done,
        }
    }
}

async fn settle(
    pool: &PgPool,
    scope: &Scope,
    update: &hallpass_core::ThrottleUpdate<'_>,
    now: OffsetDateTime,
) -> QResult<Vec<ThrottleState>> {
    let named: Vec<&str> = update.clear.iter().chain(update.undo).copied().collect();
    let hit_keys: Vec<&str> = update.hit.iter().map(|(key, _)| *key).collect();
    let hit_expiry: Vec<i64> = update.hit.iter().map(|(_, window)| ms(now + *window)).collect();
    // `locked` takes the row locks in key order and reads each row as it is once locked;
    // the delete and the update judge by that reading, so each undo counts however many
    // run at once. The hits (the main statement) name other keys.
    let rows = sqlx::query(concat!(
        "WITH locked AS MATERIALIZED ( \
           SELECT key, failures, expires_at FROM throttles \
           WHERE scope = $1 AND key = ANY($2) ORDER BY key FOR UPDATE \
         ), cleared AS ( \
           DELETE FROM throttles t USING locked l WHERE t.scope = $1 AND t.key = l.key \
             AND (l.key = ANY($3) OR l.failures <= 1 OR l.expires_at <= $4) \
         ), undone AS ( \
           UPDATE throttles t SET failures = l.failures - 1 FROM locked l \
           WHERE t.scope = $1 AND t.key = l.key AND NOT l.key = ANY($3) \
             AND l.failures > 1 AND l.expires_at > $4 \
         ) \
         INSERT INTO throttles AS t (scope, key, failures, first_at, last_at, expires_at) \
         SELECT $1, u.k, 1, $4, $4, u.e FROM UNNEST($5::text[], $6::bigint[]) AS u(k, e) ORDER BY u.k ",
        count_one_more!(),
        " RETURNING failures, first_at, last_at, expires_at, key"
    ))
    .bind(scope.as_str())
    .bind(&named)
    .bind(update.clear)
    .bind(ms(now))
    .bind(&hit_keys)
    .bind(&hit_expiry)
    .fetch_all(pool)
    .await?;
    in_order(&hit_keys, &rows)
}

/// The states of `rows` (a `RETURNING failures, first_at, last_at, expires_at, key`) in
/// the order of `keys`.
fn in_order(keys: &[&str], rows: &[PgRow]) -> QResult<Vec<ThrottleState>> {
    let mut found: Vec<Option<ThrottleState>> = vec![None; keys.len()];
    for row in rows {
        let key: &str = row.try_get(4)?;
        if let Some(i) = keys.iter().position(|k| *k == key) {
            found[i] = Some(state(row)?);
        }
    }
    found.into_iter().map(|s| s.ok_or_else(|| sqlx::Error::RowNotFound.into())).collect()
}

/// Counts one more against each of `hit` in one statement, in key order; the states come
/// back in the order of `hit`.
async fn hits(
    conn: impl sqlx::PgExecutor<'_>,
    scope: &Scope,
    hit: &[(&str, Duration)],
    now: OffsetDateTime,
) -> QResult<Vec<ThrottleState>> {
    if hit.is_empty() {
        return Ok(Vec::new());
    }
    let hit_keys: Vec<&str> = hit.iter().map(|(key, _)| *key).collect();
    let hit_expiry: Vec<i64> = hit.iter().map(|(_, window)| ms(now + *window)).collect();
    let rows = sqlx::query(concat!(
        "INSERT INTO throttles AS t (scope, key, failures, first_at, last_at, expires_at) \
         SELECT $1, u.k, 1, $2, $2, u.e FROM UNNEST($3::text[], $4::bigint[]) AS u(k, e) ORDER BY u.k ",
        count_one_more!(),
        " RETURNING failures, first_at, last_at, expires_at, key"
    ))
    .bind(scope.as_str())
    .bind(ms(now))
    .bind(&hit_keys)
    .bind(&hit_expiry)
    .fetch_all(conn)
    .await?;
    in_order(&hit_keys, &rows)
}

/// Up to `$2` counters expired at `$1`.
pub(crate) const SWEEP_THROTTLES: &str = "DELETE FROM throttles WHERE (scope, key) IN (SELECT scope, key \
     FROM throttles WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)";
