//! The outbox. SQLite has one writer at a time (`BEGIN IMMEDIATE` on the writer
//! connection), so a claim's read of due rows and its update of them, in one write
//! transaction, cannot interleave with another claim, from this process or another.

use crate::codec::*;
use crate::error::QResult;
use crate::queries::{codes, users};
use crate::rows::outbox_row;
use hallpass_core::{
    Enqueue, OutboxClaim, OutboxKind, OutboxMessage, OutboxState, OutboxStats, OutboxUpdate,
};
use rusqlite::{Connection, OptionalExtension};
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

pub(crate) fn insert_message(conn: &Connection, m: &OutboxMessage) -> QResult<()> {
    conn.prepare_cached(
        "INSERT INTO outbox (id, scope, kind, lane, user_id, payload, state, attempts, next_attempt_at, \
         lease_until, lease_owner, last_error, created_at, sent_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(rusqlite::params![
        id(m.id),
        m.scope.as_str(),
        m.kind.as_str(),
        &m.lane,
        opt_id(m.user_id),
        payload(&m.payload),
        m.state.as_str(),
        m.attempts,
        ms(m.next_attempt_at),
        opt_ms(m.lease_until),
        m.lease_owner.as_deref(),
        m.last_error.as_deref(),
        ms(m.created_at),
        opt_ms(m.sent_at),
    ])?;
    Ok(())
}

/// Writes every row of `messages`.
pub(crate) fn insert_messages(conn: &Connection, messages: &[OutboxMessage]) -> QResult<()> {
    for m in messages {
        insert_message(conn, m)?;
    }
    Ok(())
}

/// Writes `m` and deletes it again in the caller's transaction: the work of queueing a
/// mail, for a request that names nobody; nothing remains at commit.
pub(crate) fn insert_decoy(conn: &Connection, m: &OutboxMessage) -> QResult<()> {
    insert_message(conn, m)?;
    conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?.execute([id(m.id)])?;
    Ok(())
}

pub(crate) fn enqueue(conn: &Connection, e: &Enqueue<'_>) -> QResult<()> {
    if let Some(user) = e.user {
        users::insert_user(conn, user)?;
    }
    if let Some(code) = e.code {
        codes::insert_code(conn, code)?;
    }
    for m in e.messages {
        insert_message(conn, m)?;
    }
    Ok(())
}

fn get(conn: &Connection, message: Uuid) -> QResult<Option<OutboxMessage>> {
    let sql: &str = concat!("SELECT ", cols!(), " FROM outbox WHERE id = ?1");
    Ok(conn.prepare_cached(sql)?.query_row([id(message)], outbox_row).optional()?)
}

pub(crate) fn claim(conn: &Connection, c: &OutboxClaim) -> QResult<Vec<OutboxMessage>> {
    let ids: Vec<Uuid> = conn
        .prepare_cached(
            "SELECT id FROM outbox WHERE kind = ?1 AND ((state = 'queued' AND next_attempt_at <= ?2) \
             OR (state = 'sending' AND lease_until < ?2)) AND instr(?4, ',' || lane || ',') = 0 \
             ORDER BY next_attempt_at, id LIMIT ?3",
        )?
        .query_map((c.kind.as_str(), ms(c.now), c.limit, c.skip_lanes_text()), |r| get_uuid(r, 0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for m in ids {
        conn.prepare_cached(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, lease_until = ?2, lease_owner = ?3 \
             WHERE id = ?1",
        )?
        .execute((id(m), ms(c.lease_until), &c.owner))?;
        out.extend(get(conn, m)?);
    }
    Ok(out)
}

pub(crate) fn update(conn: &Connection, message: Uuid, owner: &str, u: &OutboxUpdate) -> QResult<bool> {
    let drop_lease = matches!(u.state, OutboxState::Queued | OutboxState::Sent | OutboxState::Failed);
    let sent_at = (u.state == OutboxState::Sent).then_some(ms(u.at));
    let changed = conn
        .prepare_cached(
            "UPDATE outbox SET state = ?3, \
             lease_until = CASE WHEN ?4 THEN NULL ELSE lease_until END, \
             lease_owner = CASE WHEN ?4 THEN NULL ELSE lease_owner END, \
             sent_at = COALESCE(?5, sent_at), next_attempt_at = COALESCE(?6, next_attempt_at), \
             last_error = COALESCE(?7, last_error), payload = COALESCE(?8, payload) \
             WHERE id = ?1 AND lease_owner = ?2 AND state IN ('sending', 'in_doubt')",
        )?
        .execute(rusqlite::params![
            id(message),
            owner,
            u.state.as_str(),
            drop_lease,
            sent_at,
            u.next_attempt_at.map(ms),
            u.error.as_deref(),
            u.payload.as_ref().map(payload),
        ])?;
    if changed == 0 {
        return Ok(false);
    }
    if let Some(confirmation) = u.user_confirmation {
        conn.prepare_cached(
            "UPDATE users SET confirmation = ?2 WHERE confirmed = 0 AND (scope, id) = \
             (SELECT scope, user_id FROM outbox WHERE id = ?1)",
        )?
        .execute((id(message), confirmation.as_str()))?;
    }
    Ok(true)
}

pub(crate) fn retry(conn: &Connection, message: Uuid, now: OffsetDateTime) -> QResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE outbox SET state = 'queued', next_attempt_at = ?2, lease_until = NULL, lease_owner = NULL, \
             attempts = CASE WHEN kind = 'webhook' THEN 0 ELSE attempts END \
             WHERE id = ?1 AND (state = 'in_doubt' OR (kind = 'webhook' AND state IN ('queued', 'failed')))",
        )?
        .execute((id(message), ms(now)))?;
    Ok(n > 0)
}

/// Deletes old `sent` rows of `kind`, at most `limit` (the `outbox_due` index's
/// `(kind, state)` prefix finds them).
pub(crate) fn purge_sent(
    conn: &Connection,
    kind: OutboxKind,
    before: OffsetDateTime,
    limit: u32,
) -> QResult<u64> {
    let n = conn
        .prepare_cached(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE kind = ?1 AND state = 'sent' \
             AND sent_at < ?2 LIMIT ?3)",
        )?
        .execute((kind.as_str(), ms(before), limit))?;
    Ok(n as u64)
}

pub(crate) fn stats(conn: &Connection) -> QResult<OutboxStats> {
    let mut stats = OutboxStats::default();
    let mut stmt = conn.prepare_cached(
        "SELECT state, count(*), min(CASE WHEN state IN ('queued', 'sending') THEN created_at END) \
         FROM outbox GROUP BY state",
    )?;
    let rows =
        stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, get_opt_time(r, 2)?)))?;
    for row in rows {
        let (state, n, oldest) = row?;
        if let Some(state) = OutboxState::from_stored(&state) {
            stats.add(state, n.unsigned_abs());
        }
        if let Some(o) = oldest {
            stats.oldest_pending_at = Some(stats.oldest_pending_at.map_or(o, |p| p.min(o)));
        }
    }
    Ok(stats)
}

pub(crate) fn list(conn: &Connection, before: Option<Uuid>, limit: u32) -> QResult<Vec<OutboxMessage>> {
    let rows = match before {
        None => {
            let sql: &str = concat!("SELECT ", cols!(), " FROM outbox ORDER BY id DESC LIMIT ?1");
            conn.prepare_cached(sql)?.query_map([limit], outbox_row)?.collect::<Result<_, _>>()?
        }
        Some(before) => {
            let sql: &str =
                concat!("SELECT ", cols!(), " FROM outbox WHERE id < ?1 ORDER BY id DESC LIMIT ?2");
            conn.prepare_cached(sql)?.query_map((id(before), limit), outbox_row)?.collect::<Result<_, _>>()?
        }
    };
    Ok(rows)
}

pub(crate) fn lane(
    conn: &Connection,
    kind: OutboxKind,
    lane: &str,
    state: Option<OutboxState>,
    before: Option<Uuid>,
    limit: u32,
) -> QResult<Vec<OutboxMessage>> {
    let sql: &str = concat!(
        "SELECT ",
        cols!(),
        " FROM outbox WHERE kind = ?1 AND lane = ?2 AND (?3 IS NULL OR state = ?3) \
         AND (?4 IS NULL OR id < ?4) ORDER BY id DESC LIMIT ?5"
    );
    let rows = conn
        .prepare_cached(sql)?
        .query_map(
            rusqlite::params![kind.as_str(), lane, state.map(OutboxState::as_str), before.map(id), limit],
            outbox_row,
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(crate) fn lane_stats(conn: &Connection, kind: OutboxKind) -> QResult<Vec<(String, OutboxStats)>> {
    let mut out: Vec<(String, OutboxStats)> = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT lane, state, count(*), min(CASE WHEN state IN ('queued', 'sending') THEN created_at END) \
         FROM outbox WHERE kind = ?1 GROUP BY lane, state ORDER BY lane",
    )?;
    let rows = stmt.query_map([kind.as_str()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, get_opt_time(r, 3)?))
    })?;
    for row in rows {
        let (lane, state, n, oldest) = row?;
        if out.last().is_none_or(|(l, _)| *l != lane) {
            out.push((lane, OutboxStats::default()));
        }
        let Some((_, stats)) = out.last_mut() else { continue };
        if let Some(state) = OutboxState::from_stored(&state) {
            stats.add(state, n.unsigned_abs());
        }
        if let Some(o) = oldest {
            stats.oldest_pending_at = Some(stats.oldest_pending_at.map_or(o, |p| p.min(o)));
        }
    }
    Ok(out)
}
