//! Webhook endpoints: insert, list (one scope or all), replace, delete with their
//! deliveries (outbox rows of kind `webhook` in the endpoint's lane).

use crate::codec::{id, id_at, ms, opt_ms, opt_time_at, scope_at, time_at};
use crate::error::QResult;
use hallpass_core::webhook::{events_from_stored, events_to_stored};
use hallpass_core::{Scope, WebhookEndpoint};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

macro_rules! cols {
    () => {
        "id, scope, url, events, description, secret, previous_secret, previous_until, created_at, updated_at"
    };
}

fn row(r: &PgRow) -> QResult<WebhookEndpoint> {
    let events: String = r.try_get(3)?;
    Ok(WebhookEndpoint {
        id: id_at(r, 0)?,
        scope: scope_at(r, 1)?,
        url: r.try_get(2)?,
        events: events_from_stored(&events),
        description: r.try_get(4)?,
        secret: r.try_get(5)?,
        previous_secret: r.try_get(6)?,
        previous_until: opt_time_at(r, 7)?,
        created_at: time_at(r, 8)?,
        updated_at: time_at(r, 9)?,
    })
}

pub(crate) async fn insert(pool: &PgPool, w: &WebhookEndpoint) -> QResult<()> {
    sqlx::query(concat!(
        "INSERT INTO webhook_endpoints (",
        cols!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
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
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn list(pool: &PgPool, scope: Option<&Scope>) -> QResult<Vec<WebhookEndpoint>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        cols!(),
        " FROM webhook_endpoints WHERE $1::text IS NULL OR scope = $1 ORDER BY id"
    ))
    .bind(scope.map(Scope::as_str))
    .fetch_all(pool)
    .await?;
    rows.iter().map(row).collect()
}

pub(crate) async fn update(pool: &PgPool, w: &WebhookEndpoint) -> QResult<bool> {
    let n = sqlx::query(
        "UPDATE webhook_endpoints SET url = $3, events = $4, description = $5, secret = $6, \
         previous_secret = $7, previous_until = $8, updated_at = $9 WHERE scope = $1 AND id = $2",
    )
    .bind(w.scope.as_str())
    .bind(id(w.id))
    .bind(&w.url)
    .bind(events_to_stored(&w.events))
    .bind(w.description.as_deref())
    .bind(&w.secret)
    .bind(w.previous_secret.as_deref())
    .bind(opt_ms(w.previous_until))
    .bind(ms(w.updated_at))
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n > 0)
}

pub(crate) async fn delete(pool: &PgPool, scope: &Scope, endpoint: Uuid) -> QResult<bool> {
    let mut tx = pool.begin().await?;
    let n = sqlx::query("DELETE FROM webhook_endpoints WHERE scope = $1 AND id = $2")
        .bind(scope.as_str())
        .bind(id(endpoint))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n > 0 {
        sqlx::query("DELETE FROM outbox WHERE kind = 'webhook' AND lane = $1")
            .bind(endpoint.to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(n > 0)
}
