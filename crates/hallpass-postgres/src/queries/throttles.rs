//! Login throttling counters: read, count a failure (one upsert), clear, several changes
//! in one statement, sweep.

use crate::error::{Fail, QResult};
use crate::rows::ms;
use hallpass_core::clock::from_unix_ms;
use hallpass_core::{Scope, ThrottleState};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use time::{Duration, OffsetDateTime};

fn state(row: &PgRow) -> QResult<ThrottleState> {
    let failures: i64 = row.try_get(0)?;
    Ok(ThrottleState {
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        first_at: from_unix_ms(row.try_get(1)?),
        last_at: from_unix_ms(row.try_get(2)?),
        expires_at: from_unix_ms(row.try_get(3)?),
    })
}

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

/// Several counters in one read, in the order of `keys` (`None` where none lives).
pub(crate) async fn get_many(
    pool: &PgPool,
    scope: &Scope,
    keys: &[&str],
    now: OffsetDateTime,
) -> QResult<Vec<Option<ThrottleState>>> {
    let rows = sqlx::query(
        "SELECT failures, first_at, last_at, expires_at, key FROM throttles \
         WHERE scope = $1 AND key = ANY($2) AND expires_at > $3",
    )
    .bind(scope.as_str())
    .bind(keys)
    .bind(ms(now))
    .fetch_all(pool)
    .await?;
    let mut found = vec![None; keys.len()];
    for row in &rows {
        let key: &str = row.try_get(4)?;
        let got = state(row)?;
        for (i, k) in keys.iter().enumerate() {
            if *k == key {
                found[i] = Some(got);
            }
        }
    }
    Ok(found)
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
    let row = sqlx::query(
        "INSERT INTO throttles AS t (scope, key, failures, first_at, last_at, expires_at) \
         VALUES ($1, $2, 1, $3, $3, $4) \
         ON CONFLICT ON CONSTRAINT throttles_pkey DO UPDATE SET \
           failures = CASE WHEN t.expires_at > EXCLUDED.last_at THEN t.failures + 1 ELSE 1 END, \
           first_at = CASE WHEN t.expires_at > EXCLUDED.last_at THEN t.first_at ELSE EXCLUDED.first_at END, \
           expires_at = CASE WHEN t.expires_at > EXCLUDED.last_at THEN t.expires_at ELSE EXCLUDED.expires_at END, \
           last_at = EXCLUDED.last_at \
         RETURNING failures, first_at, last_at, expires_at",
    )
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
/// clears or undos (a login's settlement) it is one transaction that first locks every
/// existing counter it names, in key order, then judges each undo on the locked row
/// (decrement, or remove at one or expired: exact however many run at once), then hits.
/// A deadlock victim (possible only against a statement that took its locks in another
/// order) was rolled back whole and runs again.
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
    let mut tx = pool.begin().await?;
    let named: Vec<&str> =
        update.clear.iter().chain(update.undo).chain(update.hit.iter().map(|(k, _)| k)).copied().collect();
    let rows = sqlx::query(
        "SELECT key, failures, expires_at FROM throttles WHERE scope = $1 AND key = ANY($2) \
         ORDER BY key FOR UPDATE",
    )
    .bind(scope.as_str())
    .bind(&named)
    .fetch_all(&mut *tx)
    .await?;
    let mut gone: Vec<&str> = update.clear.to_vec();
    let mut less: Vec<&str> = Vec::new();
    for row in &rows {
        let key: &str = row.try_get(0)?;
        let (failures, expires_at): (i64, i64) = (row.try_get(1)?, row.try_get(2)?);
        if let Some(undo) = update.undo.iter().find(|k| **k == key) {
            if failures <= 1 || expires_at <= ms(now) { gone.push(undo) } else { less.push(undo) }
        }
    }
    sqlx::query(
        "WITH cleared AS (DELETE FROM throttles WHERE scope = $1 AND key = ANY($2)) \
         UPDATE throttles SET failures = failures - 1 WHERE scope = $1 AND key = ANY($3)",
    )
    .bind(scope.as_str())
    .bind(&gone)
    .bind(&less)
    .execute(&mut *tx)
    .await?;
    let states = hits(&mut *tx, scope, update.hit, now).await?;
    tx.commit().await?;
    Ok(states)
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
    let rows = sqlx::query(
        "INSERT INTO throttles AS t (scope, key, failures, first_at, last_at, expires_at) \
         SELECT $1, u.k, 1, $2, $2, u.e FROM UNNEST($3::text[], $4::bigint[]) AS u(k, e) ORDER BY u.k \
         ON CONFLICT ON CONSTRAINT throttles_pkey DO UPDATE SET \
           failures = CASE WHEN t.expires_at > EXCLUDED.last_at THEN t.failures + 1 ELSE 1 END, \
           first_at = CASE WHEN t.expires_at > EXCLUDED.last_at THEN t.first_at ELSE EXCLUDED.first_at END, \
           expires_at = CASE WHEN t.expires_at > EXCLUDED.last_at THEN t.expires_at ELSE EXCLUDED.expires_at END, \
           last_at = EXCLUDED.last_at \
         RETURNING failures, first_at, last_at, expires_at, key",
    )
    .bind(scope.as_str())
    .bind(ms(now))
    .bind(&hit_keys)
    .bind(&hit_expiry)
    .fetch_all(conn)
    .await?;
    let mut found: Vec<Option<ThrottleState>> = vec![None; hit_keys.len()];
    for row in &rows {
        let key: &str = row.try_get(4)?;
        if let Some(i) = hit_keys.iter().position(|k| *k == key) {
            found[i] = Some(state(row)?);
        }
    }
    found.into_iter().map(|s| s.ok_or_else(|| sqlx::Error::RowNotFound.into())).collect()
}

/// Up to `$2` counters expired at `$1`.
pub(crate) const SWEEP_THROTTLES: &str = "DELETE FROM throttles WHERE (scope, key) IN (SELECT scope, key \
     FROM throttles WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)";
