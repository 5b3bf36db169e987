//! Provider identities: one link per (user, provider), one user per
//! (scope, provider, client_id); the second rule surfaces as `IdentityTaken` through the
//! unique index `identities_client_id` (see `crate::error`).

use crate::codec::*;
use crate::error::QResult;
use crate::rows::{identity_cols, identity_row};
use hallpass_core::{Identity, ProviderName, Scope};
use rusqlite::{Connection, OptionalExtension};
use uuid::Uuid;

/// A user's link to a provider (the primary key).
pub(crate) const GET_IDENTITY: &str = concat!(
    "SELECT ",
    identity_cols!(),
    " FROM identities WHERE scope = ?1 AND user_id = ?2 AND provider = ?3"
);
/// The link with a provider's client id (`identities_client_id`).
pub(crate) const FIND_IDENTITY: &str = concat!(
    "SELECT ",
    identity_cols!(),
    " FROM identities WHERE scope = ?1 AND provider = ?2 AND client_id = ?3"
);
/// A user's links by provider (the primary key, already in provider order).
pub(crate) const LIST_IDENTITIES: &str = concat!(
    "SELECT ",
    identity_cols!(),
    " FROM identities WHERE scope = ?1 AND user_id = ?2 ORDER BY provider"
);

/// Inserts the link or replaces the user's link to that provider (every field, as the
/// reference store does). A client id held by another user of the scope violates
/// `identities_client_id` and becomes `IdentityTaken`.
pub(crate) fn upsert_identity(
    conn: &Connection,
    i: &Identity,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<()> {
    conn.prepare_cached(
        "INSERT INTO identities (scope, user_id, provider, client_id, access_token, access_token_expiry, \
         created_at, updated_at, refresh_token) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (user_id, provider) DO UPDATE SET client_id = excluded.client_id, \
         access_token = excluded.access_token, access_token_expiry = excluded.access_token_expiry, \
         refresh_token = excluded.refresh_token, \
         created_at = excluded.created_at, updated_at = excluded.updated_at",
    )?
    .execute((
        i.scope.as_str(),
        id(i.user_id),
        i.provider.as_str(),
        i.client_id.as_str(),
        i.access_token.as_deref(),
        opt_ms(i.access_token_expiry),
        ms(i.created_at),
        ms(i.updated_at),
        i.refresh_token.as_deref(),
    ))?;
    crate::queries::outbox::insert_messages(conn, outbox)?;
    Ok(())
}

/// Inserts a new link as given (an import: the user is new, so there is nothing to
/// replace). A client id held in the scope violates `identities_client_id`.
pub(crate) fn insert_identity(conn: &Connection, i: &Identity) -> QResult<()> {
    conn.prepare_cached(concat!(
        "INSERT INTO identities (",
        identity_cols!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?
    .execute((
        i.scope.as_str(),
        id(i.user_id),
        i.provider.as_str(),
        i.client_id.as_str(),
        i.access_token.as_deref(),
        opt_ms(i.access_token_expiry),
        ms(i.created_at),
        ms(i.updated_at),
        i.refresh_token.as_deref(),
    ))?;
    Ok(())
}

pub(crate) fn get_identity(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    provider: &ProviderName,
) -> QResult<Option<Identity>> {
    let mut stmt = conn.prepare_cached(GET_IDENTITY)?;
    Ok(stmt.query_row((scope.as_str(), id(user_id), provider.as_str()), identity_row).optional()?)
}

pub(crate) fn find_identity(
    conn: &Connection,
    scope: &Scope,
    provider: &ProviderName,
    client_id: &str,
) -> QResult<Option<Identity>> {
    let mut stmt = conn.prepare_cached(FIND_IDENTITY)?;
    Ok(stmt.query_row((scope.as_str(), provider.as_str(), client_id), identity_row).optional()?)
}

pub(crate) fn list_identities(conn: &Connection, scope: &Scope, user_id: Uuid) -> QResult<Vec<Identity>> {
    let mut stmt = conn.prepare_cached(LIST_IDENTITIES)?;
    let rows = stmt.query_map((scope.as_str(), id(user_id)), identity_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn delete_identity(
    conn: &Connection,
    scope: &Scope,
    user_id: Uuid,
    provider: &ProviderName,
    outbox: &[hallpass_core::OutboxMessage],
) -> QResult<bool> {
    let n = conn
        .prepare_cached("DELETE FROM identities WHERE scope = ?1 AND user_id = ?2 AND provider = ?3")?
        .execute((scope.as_str(), id(user_id), provider.as_str()))?;
    if n > 0 {
        crate::queries::outbox::insert_messages(conn, outbox)?;
    }
    Ok(n > 0)
}
