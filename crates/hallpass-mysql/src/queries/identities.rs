//! Provider identities: one link per (user, provider) (the primary key), one user per
//! (scope, provider, client_id) (the unique index `identities_client_id`, whose violation
//! `crate::error` maps to `IdentityTaken`).
//!
//! The upsert is an UPDATE of the user's link, else an INSERT — not `INSERT ... ON
//! DUPLICATE KEY UPDATE`: with two unique keys, that statement updates whichever row
//! conflicts first, which for a client id held by another user would be *that user's*
//! link.

use crate::codec::*;
use crate::error::QResult;
use crate::queries::users::{lock_user, no_such_user};
use crate::rows::{identity_cols, identity_row};
use hallpass_core::{Identity, ProviderName, Scope};
use sqlx::mysql::MySqlConnection;
use uuid::Uuid;

/// A user's link to a provider (the primary key).
const GET_IDENTITY: &str =
    concat!("SELECT ", identity_cols!(), " FROM identities WHERE scope = ? AND user_id = ? AND provider = ?");
/// The link with a provider's client id (`identities_client_id`).
const FIND_IDENTITY: &str = concat!(
    "SELECT ",
    identity_cols!(),
    " FROM identities WHERE scope = ? AND provider = ? AND client_id = ?"
);
/// A user's links by provider (the primary key, already in provider order).
const LIST_IDENTITIES: &str = concat!(
    "SELECT ",
    identity_cols!(),
    " FROM identities WHERE scope = ? AND user_id = ? ORDER BY provider"
);

/// Replaces the user's link to the provider (every field, as the reference store does)
/// or inserts it, under the user's row lock. A client id another user of the scope holds
/// fails either statement on `identities_client_id`.
pub(crate) async fn upsert_identity(
    c: &mut MySqlConnection,
    i: &Identity,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<()> {
    if !lock_user(c, &i.scope, i.user_id).await? {
        return Err(no_such_user("identity"));
    }
    let replaced = sqlx::query(
        "UPDATE identities SET client_id = ?, access_token = ?, access_token_expiry = ?, created_at = ?, \
         updated_at = ?, refresh_token = ? WHERE scope = ? AND user_id = ? AND provider = ?",
    )
    .bind(i.client_id.as_str().as_bytes())
    .bind(i.access_token.as_deref())
    .bind(opt_ms(i.access_token_expiry))
    .bind(ms(i.created_at))
    .bind(ms(i.updated_at))
    .bind(i.refresh_token.as_deref())
    .bind(i.scope.as_str())
    .bind(id(i.user_id))
    .bind(i.provider.as_str())
    .execute(&mut *c)
    .await?
    .rows_affected();
    if replaced == 0 {
        sqlx::query(concat!(
            "INSERT INTO identities (",
            identity_cols!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(i.scope.as_str())
        .bind(id(i.user_id))
        .bind(i.provider.as_str())
        .bind(i.client_id.as_str().as_bytes())
        .bind(i.access_token.as_deref())
        .bind(opt_ms(i.access_token_expiry))
        .bind(ms(i.created_at))
        .bind(ms(i.updated_at))
        .bind(i.refresh_token.as_deref())
        .execute(&mut *c)
        .await?;
    }
    crate::queries::outbox::insert_messages(c, outbox).await?;
    Ok(())
}

pub(crate) async fn get_identity(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    provider: &ProviderName,
) -> QResult<Option<Identity>> {
    let row = sqlx::query(GET_IDENTITY)
        .bind(scope.as_str())
        .bind(id(user_id))
        .bind(provider.as_str())
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(identity_row).transpose()
}

pub(crate) async fn find_identity(
    c: &mut MySqlConnection,
    scope: &Scope,
    provider: &ProviderName,
    client_id: &str,
) -> QResult<Option<Identity>> {
    let row = sqlx::query(FIND_IDENTITY)
        .bind(scope.as_str())
        .bind(provider.as_str())
        .bind(client_id.as_bytes())
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(identity_row).transpose()
}

pub(crate) async fn list_identities(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
) -> QResult<Vec<Identity>> {
    let rows = sqlx::query(LIST_IDENTITIES).bind(scope.as_str()).bind(id(user_id)).fetch_all(&mut *c).await?;
    rows.iter().map(identity_row).collect()
}

pub(crate) async fn delete_identity(
    c: &mut MySqlConnection,
    scope: &Scope,
    user_id: Uuid,
    provider: &ProviderName,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let n = sqlx::query("DELETE FROM identities WHERE scope = ? AND user_id = ? AND provider = ?")
        .bind(scope.as_str())
        .bind(id(user_id))
        .bind(provider.as_str())
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n > 0 {
        crate::queries::outbox::insert_messages(c, outbox).await?;
    }
    Ok(n > 0)
}
