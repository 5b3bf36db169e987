//! The outbox. A claim is one statement: the due rows are picked with `FOR UPDATE SKIP
//! LOCKED` (a row another claim is taking is skipped, not waited for; a row another claim
//! has just taken no longer matches when it is re-checked after the lock) and given the
//! lease in the same `UPDATE`, so processes sharing the database never take one row twice.

use crate::codec::{Jsonb, id, ms, opt_id, opt_ms};
use crate::error::QResult;
use crate::queries::{codes, users};
use crate::rows::outbox_row;
use hallpass_core::{
    Enqueue, OutboxClaim, OutboxKind, OutboxMessage, OutboxState, OutboxStats, OutboxUpdate,
};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

/// The columns `crate::rows::outbox_row` reads, in its order.
macro_rules! cols {
    () => {
        "id, scope, kind, lane, user_id, payload, state, attempts, next_attempt_at, lease_until, \
         lease_owner, last_error, created_at, sent_at"
    };
}

pub(crate) async fn insert_message(conn: impl sqlx::PgExecutor<'_>, m: &OutboxMessage) -> QResult<()> {
    sqlx::query(
        "INSERT INTO outbox (id, scope, kind, lane, user_id, payload, state, attempts, next_attempt_at, \
         lease_until, lease_owner, last_error, created_at, sent_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(id(m.id))
    .bind(m.scope.as_str())
    .bind(m.kind.as_str())
    .bind(&m.lane)
    .bind(opt_id(m.user_id))
    .bind(Jsonb(&m.payload))
    .bind(m.state.as_str())
    .bind(i32::try_from(m.attempts).unwrap_or(i32::MAX))
    .bind(ms(m.next_attempt_at))
    .bind(opt_ms(m.lease_until))
    .bind(m.lease_owner.as_deref())
    .bind(m.last_error.as_deref())
    .bind(ms(m.created_at))
    .bind(opt_ms(m.sent_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes every row of `messages` in the caller's transaction.
pub(crate) async fn insert_messages(tx: &mut sqlx::PgConnection, messages: &[OutboxMessage]) -> QResult<()> {
    for m in messages {
        insert_message(&mut *tx, m).await?;
    }
    Ok(())
}

/// Writes `m` and deletes it again in the caller's transaction: the work of queueing a
/// mail, for a request that names nobody; nothing remains at commit.
pub(crate) async fn insert_decoy(tx: &mut sqlx::PgConnection, m: &OutboxMessage) -> QResult<()> {
    insert_message(&mut *tx, m).await?;
    sqlx::query("DELETE FROM outbox WHERE id = $1").bind(id(m.id)).execute(&mut *tx).await?;
    Ok(())
}

pub(crate) async fn enqueue(pool: &PgPool, e: &Enqueue<'_>) -> QResult<()> {
    let mut tx = pool.begin().await?;
    if let Some(user) = e.user {
        users::insert_user(&mut *tx, user).await?;
    }
    if let Some(code) = e.code {
        codes::insert_code(&mut *tx, code).await?;
    }
    for m in e.messages {
        insert_message(&mut *tx, m).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// [`users::update_user`] and the rows, in one transaction.
pub(crate) async fn update_user_enqueue(
    pool: &PgPool,
    scope: &hallpass_core::Scope,
    user_id: Uuid,
    patch: &hallpass_core::UserPatch,
    at: OffsetDateTime,
    e: &Enqueue<'_>,
) -> QResult<Option<hallpass_core::User>> {
    let mut tx = pool.begin().await?;
    let Some(user) = users::update_user_in(&mut tx, scope, user_id, patch, at).await? else {
        return Ok(None);
    };
    if let Some(code) = e.code {
        codes::insert_code(&mut *tx, code).await?;
    }
    for m in e.messages {
        insert_message(&mut *tx, m).await?;
    }
    tx.commit().await?;
    Ok(Some(user))
}

pub(crate) async fn claim(pool: &PgPool, c: &OutboxClaim) -> QResult<Vec<OutboxMessage>> {
    let sql: &str = concat!(
        "UPDATE outbox SET state = 'sending', attempts = attempts + 1, lease_until = $3, lease_owner = $4 \
         WHERE id IN (SELECT id FROM outbox WHERE kind = $1 AND ((state = 'queued' AND next_attempt_at <= $2) \
         OR (state = 'sending' AND lease_until < $2)) AND strpos($6, ',' || lane || ',') = 0 \
         ORDER BY next_attempt_at, id LIMIT $5 FOR UPDATE SKIP LOCKED) RETURNING ",
        cols!(),
        ""
    );
    let rows = sqlx::query(sql)
        .bind(c.kind.as_str())
        .bind(ms(c.now))
        .bind(ms(c.lease_until))
        .bind(&c.owner)
        .bind(i64::from(c.limit))
        .bind(c.skip_lanes_text())
        .fetch_all(pool)
        .await?;
    let mut out = rows.iter().map(outbox_row).collect::<QResult<Vec<_>>>()?;
    out.sort_by_key(|m| (m.next_attempt_at, m.id));
    Ok(out)
}

pub(crate) async fn update(pool: &PgPool, message: Uuid, owner: &str, u: &OutboxUpdate) -> QResult<bool> {
    let drop_lease = matches!(u.state, OutboxState::Queued | OutboxState::Sent | OutboxState::Failed);
    let sent_at = (u.state == OutboxState::Sent).then_some(ms(u.at));
    let mut tx = pool.begin().await?;
    let changed = sqlx::query(
        "UPDATE outbox SET state = $3, \
         lease_until = CASE WHEN $4 THEN NULL ELSE lease_until END, \
         lease_owner = CASE WHEN $4 THEN NULL ELSE lease_owner END, \
         sent_at = COALESCE($5, sent_at), next_attempt_at = COALESCE($6, next_attempt_at), \
         last_error = COALESCE($7, last_error), payload = COALESCE($8, payload) \
         WHERE id = $1 AND lease_owner = $2 AND state IN ('sending', 'in_doubt')",
    )
    .bind(id(message))
    .bind(owner)
    .bind(u.state.as_str())
    .bind(drop_lease)
    .bind(sent_at)
    .bind(u.next_attempt_at.map(ms))
    .bind(u.error.as_deref())
    .bind(u.payload.as_ref().map(Jsonb))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    if let Some(confirmation) = u.user_confirmation {
        sqlx::query(
            "UPDATE users SET confirmation = $2 FROM outbox o WHERE o.id = $1 AND users.scope = o.scope \
             AND users.id = o.user_id AND NOT users.confirmed",
        )
        .bind(id(message))
        .bind(confirmation.as_str())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn retry(pool: &PgPool, message: Uuid, now: OffsetDateTime) -> QResult<bool> {
    let n = sqlx::query(
        "UPDATE outbox SET state = 'queued', next_attempt_at = $2, lease_until = NULL, lease_owner = NULL, \
         attempts = CASE WHEN kind = 'webhook' THEN 0 ELSE attempts END \
         WHERE id = $1 AND (state = 'in_doubt' OR (kind = 'webhook' AND state IN ('queued', 'failed')))",
    )
    .bind(id(message))
    .bind(ms(now))
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Deletes old `sent` rows of `kind`, at most `limit`.
pub(crate) async fn purge_sent(
    pool: &PgPool,
    kind: OutboxKind,
    before: OffsetDateTime,
    limit: u32,
) -> QResult<u64> {
    let n = sqlx::query(
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE kind = $1 AND state = 'sent' \
         AND sent_at < $2 LIMIT $3)",
    )
    .bind(kind.as_str())
    .bind(ms(before))
    .bind(i64::from(limit))
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n)
}

pub(crate) async fn stats(pool: &PgPool) -> QResult<OutboxStats> {
    let rows = sqlx::query(
        "SELECT state, count(*), min(created_at) FILTER (WHERE state IN ('queued', 'sending')) \
         FROM outbox GROUP BY state",
    )
    .fetch_all(pool)
    .await?;
    let mut stats = OutboxStats::default();
    for r in &rows {
        let state: String = r.try_get(0)?;
        let n: i64 = r.try_get(1)?;
        let oldest: Option<i64> = r.try_get(2)?;
        if let Some(state) = OutboxState::from_stored(&state) {
            stats.add(state, n.unsigned_abs());
        }
        if let Some(o) = oldest.map(hallpass_core::clock::from_unix_ms) {
            stats.oldest_pending_at = Some(stats.oldest_pending_at.map_or(o, |p| p.min(o)));
        }
    }
    Ok(stats)
}

pub(crate) async fn list(pool: &PgPool, before: Option<Uuid>, limit: u32) -> QResult<Vec<OutboxMessage>> {
    let limit = i64::from(limit);
    let rows = match before {
        None => {
            let sql: &str = concat!("SELECT ", cols!(), " FROM outbox ORDER BY id DESC LIMIT $1");
            sqlx::query(sql).bind(limit).fetch_all(pool).await?
        }
        Some(b) => {
            let sql: &str =
                concat!("SELECT ", cols!(), " FROM outbox WHERE id < $1 ORDER BY id DESC LIMIT $2");
            sqlx::query(sql).bind(id(b)).bind(limit).fetch_all(pool).await?
        }
    };
    rows.iter().map(outbox_row).collect()
}

pub(crate) async fn lane(
    pool: &PgPool,
    kind: OutboxKind,
    lane: &str,
    state: Option<OutboxState>,
    before: Option<Uuid>,
    limit: u32,
) -> QResult<Vec<OutboxMessage>> {
    let sql: &str = concat!(
        "SELECT ",
        cols!(),
        " FROM outbox WHERE kind = $1 AND lane = $2 AND ($3::text IS NULL OR state = $3) \
         AND ($4::uuid IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
    );
    let rows = sqlx::query(sql)
        .bind(kind.as_str())
        .bind(lane)
        .bind(state.map(OutboxState::as_str))
        .bind(opt_id(before))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(outbox_row).collect()
}

pub(crate) async fn lane_stats(pool: &PgPool, kind: OutboxKind) -> QResult<Vec<(String, OutboxStats)>> {
    let rows = sqlx::query(
        "SELECT lane, state, count(*), min(created_at) FILTER (WHERE state IN ('queued', 'sending')) \
         FROM outbox WHERE kind = $1 GROUP BY lane, state ORDER BY lane",
    )
    .bind(kind.as_str())
    .fetch_all(pool)
    .await?;
    let mut out: Vec<(String, OutboxStats)> = Vec::new();
    for r in &rows {
        let lane: String = r.try_get(0)?;
        let state: String = r.try_get(1)?;
        let n: i64 = r.try_get(2)?;
        let oldest: Option<i64> = r.try_get(3)?;
        if out.last().is_none_or(|(l, _)| *l != lane) {
            out.push((lane, OutboxStats::default()));
        }
        let Some((_, stats)) = out.last_mut() else { continue };
        if let Some(state) = OutboxState::from_stored(&state) {
            stats.add(state, n.unsigned_abs());
        }
        if let Some(o) = oldest.map(hallpass_core::clock::from_unix_ms) {
            stats.oldest_pending_at = Some(stats.oldest_pending_at.map_or(o, |p| p.min(o)));
        }
    }
    Ok(out)
}
