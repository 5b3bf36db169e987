//! Provider identities: one link per (user, provider), one user per
//! (scope, provider, client_id); the second rule surfaces as `IdentityTaken` through the
//! unique constraint `identities_client_id` (see `crate::error`).

use crate::codec::{id, ms, opt_ms};
use crate::error::QResult;
use crate::rows::{self, identity_cols};
use hallpass_core::{Identity, ProviderName, Scope};
use sqlx::PgPool;
use uuid::Uuid;

/// Inserts the link or replaces the user's link to that provider (every field, as the
/// reference store does), in one statement. A client id another user of the scope holds
/// violates `identities_client_id` (also against a concurrent link, which PostgreSQL
/// makes wait for the other transaction) and becomes `IdentityTaken`; a missing user
/// fails on the foreign key.
pub(crate) async fn upsert_identity(
    pool: &PgPool,
    i: &Identity,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO identities (scope, user_id, provider, client_id, access_token, access_token_expiry, \
         created_at, updated_at, refresh_token) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT ON CONSTRAINT identities_pkey DO UPDATE SET client_id = excluded.client_id, \
         access_token = excluded.access_token, access_token_expiry = excluded.access_token_expiry, \
         refresh_token = excluded.refresh_token, \
         created_at = excluded.created_at, updated_at = excluded.updated_at",
    )
    .bind(i.scope.as_str())
    .bind(id(i.user_id))
    .bind(i.provider.as_str())
    .bind(i.client_id.as_str())
    .bind(i.access_token.as_deref())
    .bind(opt_ms(i.access_token_expiry))
    .bind(ms(i.created_at))
    .bind(ms(i.updated_at))
    .bind(i.refresh_token.as_deref())
    .execute(&mut *tx)
    .await?;
    crate::queries::outbox::insert_messages(&mut tx, outbox).await?;
    tx.commit().await?;
    Ok(())
}

/// A user's link to a provider (the primary key).
pub(crate) const GET_IDENTITY: &str = concat!(
    "SELECT ",
    identity_cols!(),
    " FROM identities WHERE scope = $1 AND user_id = $2 AND provider = $3"
);
/// The link with a provider's client id (`identities_client_id`).
pub(crate) const FIND_IDENTITY: &str = concat!(
    "SELECT ",
    identity_cols!(),
    " FROM identities WHERE scope = $1 AND provider = $2 AND client_id = $3"
);
/// A user's links by provider (the primary key, already in provider order).
pub(crate) const LIST_IDENTITIES: &str = concat!(
    "SELECT ",
    identity_cols!(),
    " FROM identities WHERE scope = $1 AND user_id = $2 ORDER BY provider"
);

pub(crate) async fn get_identity(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    provider: &ProviderName,
) -> QResult<Option<Identity>> {
    let row = sqlx::query(GET_IDENTITY)
        .bind(scope.as_str())
        .bind(id(user_id))
        .bind(provider.as_str())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(rows::identity).transpose()
}

pub(crate) async fn find_identity(
    pool: &PgPool,
    scope: &Scope,
    provider: &ProviderName,
    client_id: &str,
) -> QResult<Option<Identity>> {
    let row = sqlx::query(FIND_IDENTITY)
        .bind(scope.as_str())
        .bind(provider.as_str())
        .bind(client_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(rows::identity).transpose()
}

pub(crate) async fn list_identities(pool: &PgPool, scope: &Scope, user_id: Uuid) -> QResult<Vec<Identity>> {
    let found = sqlx::query(LIST_IDENTITIES).bind(scope.as_str()).bind(id(user_id)).fetch_all(pool).await?;
    found.iter().map(rows::identity).collect()
}

pub(crate) async fn delete_identity(
    pool: &PgPool,
    scope: &Scope,
    user_id: Uuid,
    provider: &ProviderName,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query("DELETE FROM identities WHERE scope = $1 AND user_id = $2 AND provider = $3")
        .bind(scope.as_str())
        .bind(id(user_id))
        .bind(provider.as_str())
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    crate::queries::outbox::insert_messages(&mut tx, outbox).await?;
    tx.commit().await?;
    Ok(true)
}
