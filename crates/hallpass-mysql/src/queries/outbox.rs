//! The outbox. A claim picks the due rows with `FOR UPDATE SKIP LOCKED` (a row another
//! claim holds is skipped, not waited for) and gives them the lease in the same
//! transaction, so processes sharing the database never take one row twice. Under READ
//! COMMITTED the locking read sees the latest committed state, so a row another claim has
//! just taken no longer matches.

use crate::codec::*;
use crate::error::QResult;
use crate::queries::{codes, users};
use crate::rows::outbox_row;
use hallpass_core::{
    Enqueue, OutboxClaim, OutboxKind, OutboxMessage, OutboxState, OutboxStats, OutboxUpdate,
};
use sqlx::Row;
use sqlx::mysql::MySqlConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// The columns `crate::rows::outbox_row` reads, in its order.
macro_rules! cols {
    () => {
        "id, scope, kind, lane, user_id, payload, state, attempts, next_attempt_at, lease_until, \
         lease_owner, last_error, created_at, sent_at"
    };
}

fn payload(v: &serde_json::Value) -> String {
    v.to_string()
}

pub(crate) async fn insert_message(c: &mut MySqlConnection, m: &OutboxMessage) -> QResult<()> {
    sqlx::query(
        "INSERT INTO outbox (id, scope, kind, lane, user_id, payload, state, attempts, next_attempt_at, \
         lease_until, lease_owner, last_error, created_at, sent_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id(m.id))
    .bind(m.scope.as_str())
    .bind(m.kind.as_str())
    .bind(&m.lane)
    .bind(opt_id(m.user_id))
    .bind(payload(&m.payload))
    .bind(m.state.as_str())
    .bind(i32::try_from(m.attempts).unwrap_or(i32::MAX))
    .bind(ms(m.next_attempt_at))
    .bind(opt_ms(m.lease_until))
    .bind(m.lease_owner.as_deref())
    .bind(m.last_error.as_deref())
    .bind(ms(m.created_at))
    .bind(opt_ms(m.sent_at))
    .execute(c)
    .await?;
    Ok(())
}

/// Writes `m` and deletes it again in the caller's transaction: the work of queueing a
/// mail, for a request that names nobody; nothing remains at commit.
pub(crate) async fn insert_decoy(c: &mut MySqlConnection, m: &OutboxMessage) -> QResult<()> {
    insert_message(&mut *c, m).await?;
    sqlx::query("DELETE FROM outbox WHERE id = ?").bind(id(m.id)).execute(&mut *c).await?;
    Ok(())
}

/// Writes every row of `messages`, on the caller's transaction.
pub(crate) async fn insert_messages(c: &mut MySqlConnection, messages: &[OutboxMessage]) -> QResult<()> {
    for m in messages {
        insert_message(&mut *c, m).await?;
    }
    Ok(())
}

/// On the caller's transaction.
pub(crate) async fn enqueue(c: &mut MySqlConnection, e: &Enqueue<'_>) -> QResult<()> {
    if let Some(user) = e.user {
        users::insert_user(&mut *c, user).await?;
    }
    if let Some(code) = e.code {
        codes::insert_code(&mut *c, code).await?;
    }
    for m in e.messages {
        insert_message(&mut *c, m).await?;
    }
    Ok(())
}

/// On the caller's transaction: lock the due rows (skipping locked ones), lease them,
/// read them back.
pub(crate) async fn claim(c: &mut MySqlConnection, cl: &OutboxClaim) -> QResult<Vec<OutboxMessage>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM outbox WHERE kind = ? AND ((state = 'queued' AND next_attempt_at <= ?) \
         OR (state = 'sending' AND lease_until < ?)) AND LOCATE(CONCAT(',', lane, ','), ?) = 0 \
         ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED",
    )
    .bind(cl.kind.as_str())
    .bind(ms(cl.now))
    .bind(ms(cl.now))
    .bind(cl.skip_lanes_text())
    .bind(i64::from(cl.limit))
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(ids.len());
    for row_id in ids {
        sqlx::query(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, lease_until = ?, lease_owner = ? \
             WHERE id = ?",
        )
        .bind(ms(cl.lease_until))
        .bind(&cl.owner)
        .bind(&row_id)
        .execute(&mut *c)
        .await?;
        let sql: &str = concat!("SELECT ", cols!(), " FROM outbox WHERE id = ?");
        let row = sqlx::query(sql).bind(&row_id).fetch_one(&mut *c).await?;
        out.push(outbox_row(&row)?);
    }
    Ok(out)
}

/// On the caller's transaction.
pub(crate) async fn update(
    c: &mut MySqlConnection,
    message: Uuid,
    owner: &str,
    u: &OutboxUpdate,
) -> QResult<bool> {
    let drop_lease = matches!(u.state, OutboxState::Queued | OutboxState::Sent | OutboxState::Failed);
    let sent_at = (u.state == OutboxState::Sent).then_some(ms(u.at));
    let changed = sqlx::query(
        "UPDATE outbox SET state = ?, \
         lease_until = CASE WHEN ? THEN NULL ELSE lease_until END, \
         lease_owner = CASE WHEN ? THEN NULL ELSE lease_owner END, \
         sent_at = COALESCE(?, sent_at), next_attempt_at = COALESCE(?, next_attempt_at), \
         last_error = COALESCE(?, last_error), payload = COALESCE(?, payload) \
         WHERE id = ? AND lease_owner = ? AND state IN ('sending', 'in_doubt')",
    )
    .bind(u.state.as_str())
    .bind(drop_lease)
    .bind(drop_lease)
    .bind(sent_at)
    .bind(u.next_attempt_at.map(ms))
    .bind(u.error.as_deref())
    .bind(u.payload.as_ref().map(payload))
    .bind(id(message))
    .bind(owner)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    if let Some(confirmation) = u.user_confirmation {
        sqlx::query(
            "UPDATE users u JOIN outbox o ON u.scope = o.scope AND u.id = o.user_id \
             SET u.confirmation = ? WHERE o.id = ? AND NOT u.confirmed",
        )
        .bind(confirmation.as_str())
        .bind(id(message))
        .execute(&mut *c)
        .await?;
    }
    Ok(true)
}

pub(crate) async fn retry(c: &mut MySqlConnection, message: Uuid, now: OffsetDateTime) -> QResult<bool> {
    let n = sqlx::query(
        "UPDATE outbox SET state = 'queued', next_attempt_at = ?, lease_until = NULL, lease_owner = NULL, \
         attempts = CASE WHEN kind = 'webhook' THEN 0 ELSE attempts END \
         WHERE id = ? AND (state = 'in_doubt' OR (kind = 'webhook' AND state IN ('queued', 'failed')))",
    )
    .bind(ms(now))
    .bind(id(message))
    .execute(c)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Deletes old `sent` rows of `kind`, at most `limit`.
pub(crate) async fn purge_sent(
    c: &mut MySqlConnection,
    kind: OutboxKind,
    before: OffsetDateTime,
    limit: u32,
) -> QResult<u64> {
    let n = sqlx::query("DELETE FROM outbox WHERE kind = ? AND state = 'sent' AND sent_at < ? LIMIT ?")
        .bind(kind.as_str())
        .bind(ms(before))
        .bind(i64::from(limit))
        .execute(c)
        .await?
        .rows_affected();
    Ok(n)
}

pub(crate) async fn stats(c: &mut MySqlConnection) -> QResult<OutboxStats> {
    let rows = sqlx::query(
        "SELECT state, count(*), min(CASE WHEN state IN ('queued', 'sending') THEN created_at END) \
         FROM outbox GROUP BY state",
    )
    .fetch_all(c)
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

pub(crate) async fn list(
    c: &mut MySqlConnection,
    before: Option<Uuid>,
    limit: u32,
) -> QResult<Vec<OutboxMessage>> {
    let limit = i64::from(limit);
    let rows = match before {
        None => {
            let sql: &str = concat!("SELECT ", cols!(), " FROM outbox ORDER BY id DESC LIMIT ?");
            sqlx::query(sql).bind(limit).fetch_all(c).await?
        }
        Some(b) => {
            let sql: &str = concat!("SELECT ", cols!(), " FROM outbox WHERE id < ? ORDER BY id DESC LIMIT ?");
            sqlx::query(sql).bind(id(b)).bind(limit).fetch_all(c).await?
        }
    };
    rows.iter().map(outbox_row).collect()
}

pub(crate) async fn lane(
    c: &mut MySqlConnection,
    kind: OutboxKind,
    lane: &str,
    state: Option<OutboxState>,
    before: Option<Uuid>,
    limit: u32,
) -> QResult<Vec<OutboxMessage>> {
    let sql: &str = concat!(
        "SELECT ",
        cols!(),
        " FROM outbox WHERE kind = ? AND lane = ? AND (? IS NULL OR state = ?) \
         AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?"
    );
    let state = state.map(OutboxState::as_str);
    let before = before.map(id);
    let rows = sqlx::query(sql)
        .bind(kind.as_str())
        .bind(lane)
        .bind(state)
        .bind(state)
        .bind(before.clone())
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(c)
        .await?;
    rows.iter().map(outbox_row).collect()
}

pub(crate) async fn lane_stats(
    c: &mut MySqlConnection,
    kind: OutboxKind,
) -> QResult<Vec<(String, OutboxStats)>> {
    let rows = sqlx::query(
        "SELECT lane, state, count(*), min(CASE WHEN state IN ('queued', 'sending') THEN created_at END) \
         FROM outbox WHERE kind = ? GROUP BY lane, state ORDER BY lane",
    )
    .bind(kind.as_str())
    .fetch_all(c)
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
