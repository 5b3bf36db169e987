//! Webhook endpoints: insert, list (one scope or all), replace, delete with their
//! deliveries (outbox rows of kind `webhook` in the endpoint's lane).

use crate::codec::*;
use crate::error::QResult;
use hallpass_core::webhook::{events_from_stored, events_to_stored};
use hallpass_core::{Scope, WebhookEndpoint};
use rusqlite::{Connection, Row};
use uuid::Uuid;

const COLS: &str =
    "id, scope, url, events, description, secret, previous_secret, previous_until, created_at, updated_at";

fn row(r: &Row<'_>) -> rusqlite::Result<WebhookEndpoint> {
    Ok(WebhookEndpoint {
        id: get_uuid(r, 0)?,
        scope: get_parsed(r, 1, Scope::from_stored)?,
        url: r.get(2)?,
        events: events_from_stored(&r.get::<_, String>(3)?),
        description: r.get(4)?,
        secret: r.get(5)?,
        previous_secret: r.get(6)?,
        previous_until: get_opt_time(r, 7)?,
        created_at: get_time(r, 8)?,
        updated_at: get_time(r, 9)?,
    })
}

pub(crate) fn insert(conn: &Connection, w: &WebhookEndpoint) -> QResult<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO webhook_endpoints ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(rusqlite::params![
        id(w.id),
        w.scope.as_str(),
        &w.url,
        events_to_stored(&w.events),
        w.description.as_deref(),
        &w.secret,
        w.previous_secret.as_deref(),
        opt_ms(w.previous_until),
        ms(w.created_at),
        ms(w.updated_at),
    ])?;
    Ok(())
}

pub(crate) fn list(conn: &Connection, scope: Option<&Scope>) -> QResult<Vec<WebhookEndpoint>> {
    let sql = format!("SELECT {COLS} FROM webhook_endpoints WHERE ?1 IS NULL OR scope = ?1 ORDER BY id");
    let out = conn
        .prepare_cached(&sql)?
        .query_map([scope.map(Scope::as_str)], row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(out)
}

pub(crate) fn update(conn: &Connection, w: &WebhookEndpoint) -> QResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE webhook_endpoints SET url = ?3, events = ?4, description = ?5, secret = ?6, \
             previous_secret = ?7, previous_until = ?8, updated_at = ?9 WHERE scope = ?1 AND id = ?2",
        )?
        .execute(rusqlite::params![
            w.scope.as_str(),
            id(w.id),
            &w.url,
            events_to_stored(&w.events),
            w.description.as_deref(),
            &w.secret,
            w.previous_secret.as_deref(),
            opt_ms(w.previous_until),
            ms(w.updated_at),
        ])?;
    Ok(n > 0)
}

pub(crate) fn delete(conn: &Connection, scope: &Scope, endpoint: Uuid) -> QResult<bool> {
    let n = conn
        .prepare_cached("DELETE FROM webhook_endpoints WHERE scope = ?1 AND id = ?2")?
        .execute((scope.as_str(), id(endpoint)))?;
    if n > 0 {
        conn.prepare_cached("DELETE FROM outbox WHERE kind = 'webhook' AND lane = ?1")?
            .execute([id(endpoint)])?;
    }
    Ok(n > 0)
}
