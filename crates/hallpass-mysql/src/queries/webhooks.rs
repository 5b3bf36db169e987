//! Webhook endpoints: insert, list (one scope or all), replace, delete with their
//! deliveries (outbox rows of kind `webhook` in the endpoint's lane).

use crate::codec::{get_opt_time, get_parsed, get_time, get_uuid, id, ms, opt_ms};
use crate::error::QResult;
use hallpass_core::webhook::{events_from_stored, events_to_stored};
use hallpass_core::{Scope, WebhookEndpoint};
use sqlx::Row;
use sqlx::mysql::{MySqlConnection, MySqlRow};
use uuid::Uuid;

macro_rules! cols {
    () => {
        "id, scope, url, events, description, secret, previous_secret, previous_until, created_at, updated_at"
    };
}

fn row(r: &MySqlRow) -> QResult<WebhookEndpoint> {
    let events: String = r.try_get(3)?;
    Ok(WebhookEndpoint {
        id: get_uuid(r, 0)?,
        scope: get_parsed(r, 1, Scope::from_stored)?,
        url: r.try_get(2)?,
        events: events_from_stored(&events),
        description: r.try_get(4)?,
        secret: r.try_get(5)?,
        previous_secret: r.try_get(6)?,
        previous_until: get_opt_time(r, 7)?,
        created_at: get_time(r, 8)?,
        updated_at: get_time(r, 9)?,
    })
}

pub(crate) async fn insert(c: &mut MySqlConnection, w: &WebhookEndpoint) -> QResult<()> {
    sqlx::query(concat!(
        "INSERT INTO webhook_endpoints (",
        cols!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(id(w.id))
    .bind(w.scope.as_str())
    .bind(&w.url)
    .bind(events_to_stored(&w.events))
    .bind(w.description.as_deref())
    .bind(&w.secret)
    .bind(w.previous_secret.as_deref())
    .bind(opt_ms(w.previous_until))
    .bind(ms(w.created_at))
    .bind(ms(w.updated_at))
    .execute(c)
    .await?;
    Ok(())
}

pub(crate) async fn list(c: &mut MySqlConnection, scope: Option<&Scope>) -> QResult<Vec<WebhookEndpoint>> {
    let scope = scope.map(Scope::as_str);
    let rows = sqlx::query(concat!(
        "SELECT ",
        cols!(),
        " FROM webhook_endpoints WHERE ? IS NULL OR scope = ? ORDER BY id"
    ))
    .bind(scope)
    .bind(scope)
    .fetch_all(c)
    .await?;
    rows.iter().map(row).collect()
}

pub(crate) async fn update(c: &mut MySqlConnection, w: &WebhookEndpoint) -> QResult<bool> {
    let n = sqlx::query(
        "UPDATE webhook_endpoints SET url = ?, events = ?, description = ?, secret = ?, \
         previous_secret = ?, previous_until = ?, updated_at = ? WHERE scope = ? AND id = ?",
    )
    .bind(&w.url)
    .bind(events_to_stored(&w.events))
    .bind(w.description.as_deref())
    .bind(&w.secret)
    .bind(w.previous_secret.as_deref())
    .bind(opt_ms(w.previous_until))
    .bind(ms(w.updated_at))
    .bind(w.scope.as_str())
    .bind(id(w.id))
    .execute(c)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// On the caller's transaction.
pub(crate) async fn delete(c: &mut MySqlConnection, scope: &Scope, endpoint: Uuid) -> QResult<bool> {
    let n = sqlx::query("DELETE FROM webhook_endpoints WHERE scope = ? AND id = ?")
        .bind(scope.as_str())
        .bind(id(endpoint))
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n > 0 {
        sqlx::query("DELETE FROM outbox WHERE kind = 'webhook' AND lane = ?")
            .bind(endpoint.to_string())
            .execute(&mut *c)
            .await?;
    }
    Ok(n > 0)
}
