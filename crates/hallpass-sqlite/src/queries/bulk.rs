//! Export and import of users in bulk (`Store::export_users` / `Store::import_users`).
//!
//! Export: a page is one range scan of the users' primary key (scope, id) — TEXT under
//! SQLite's BINARY collation, so scopes order by their bytes as the contract wants, and
//! hyphenated ids by UUID order — then the links of exactly those users in one statement
//! (their ids passed as one JSON array), not one query per user.
//!
//! Import: the whole batch runs in the writer's one `BEGIN IMMEDIATE` transaction, which
//! holds SQLite's write lock from the start, so nothing can take a key between the checks
//! and the inserts. Each of the batch's keys is probed with a cached statement (an index
//! lookup each), the batch is decided by the core's `ImportTaken::plan`, and the chosen
//! users and links are inserted with cached statements. One fsync per batch, at commit.

use crate::codec::*;
use crate::error::QResult;
use crate::queries::identities::insert_identity;
use crate::queries::users::insert_user_row;
use crate::rows::{identity_cols, identity_row, record_from_row, user_cols};
use hallpass_core::store::{ExportedUser, ImportOutcome, ImportTaken};
use hallpass_core::{Email, Identity, Scope, Username};
use rusqlite::Connection;
use std::collections::HashMap;
use uuid::Uuid;

/// The first page.
pub(crate) const EXPORT_FIRST: &str =
    concat!("SELECT ", user_cols!(""), " FROM users ORDER BY scope, id LIMIT ?1");
/// A page after a cursor: a row-value range of the primary key.
pub(crate) const EXPORT_AFTER: &str = concat!(
    "SELECT ",
    user_cols!(""),
    " FROM users WHERE (scope, id) > (?1, ?2) ORDER BY scope, id LIMIT ?3"
);
/// The links of the users whose ids the JSON array `?1` lists (the identities' primary
/// key leads with `user_id`). Ids are unique across scopes, but the scope is compared in
/// Rust anyway.
pub(crate) const EXPORT_LINKS: &str = concat!(
    "SELECT ",
    identity_cols!(),
    " FROM identities WHERE user_id IN (SELECT value FROM json_each(?1)) ORDER BY user_id, provider"
);

pub(crate) fn export_users(
    conn: &Connection,
    after: Option<(Scope, Uuid)>,
    limit: u32,
) -> QResult<Vec<ExportedUser>> {
    let records = match &after {
        None => {
            let mut stmt = conn.prepare_cached(EXPORT_FIRST)?;
            stmt.query_map([limit], record_from_row)?.collect::<Result<Vec<_>, _>>()?
        }
        Some((scope, after)) => {
            let mut stmt = conn.prepare_cached(EXPORT_AFTER)?;
            stmt.query_map((scope.as_str(), id(*after), limit), record_from_row)?
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = records.iter().map(|r| id(r.user.id)).collect();
    let ids = serde_json::to_string(&ids)
        .map_err(|e| hallpass_core::StoreError::Other(format!("cannot encode JSON: {e}")))?;
    let mut links: HashMap<(Scope, Uuid), Vec<Identity>> = HashMap::new();
    let mut stmt = conn.prepare_cached(EXPORT_LINKS)?;
    for link in stmt.query_map([ids], identity_row)? {
        let link = link?;
        links.entry((link.scope.clone(), link.user_id)).or_default().push(link);
    }
    Ok(records
        .into_iter()
        .map(|record| {
            let identities = links.remove(&(record.user.scope.clone(), record.user.id)).unwrap_or_default();
            ExportedUser { record, identities }
        })
        .collect())
}

pub(crate) fn import_users(conn: &Connection, users: &[ExportedUser]) -> QResult<ImportOutcome> {
    let mut taken = ImportTaken::default();
    {
        let mut has_id =
            conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE scope = ?1 AND id = ?2)")?;
        let mut has_username = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE scope = ?1 AND username_key = ?2)")?;
        let mut has_email =
            conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE scope = ?1 AND email_key = ?2)")?;
        let mut has_link = conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM identities WHERE scope = ?1 AND provider = ?2 AND client_id = ?3)",
        )?;
        for exported in users {
            let u = &exported.record.user;
            let scope = u.scope.as_str();
            if has_id.query_row((scope, id(u.id)), |r| r.get::<_, bool>(0))? {
                taken.ids.insert((scope.to_owned(), u.id));
                // Existing users are left alone whatever their keys: no need to probe them.
                continue;
            }
            if let Some(key) = u.username.as_ref().map(Username::key)
                && has_username.query_row((scope, key), |r| r.get::<_, bool>(0))?
            {
                taken.usernames.insert((scope.to_owned(), key.to_owned()));
            }
            if let Some(key) = u.email.as_ref().map(Email::key)
                && has_email.query_row((scope, key), |r| r.get::<_, bool>(0))?
            {
                taken.emails.insert((scope.to_owned(), key.to_owned()));
            }
            for link in &exported.identities {
                let (provider, client_id) = (link.provider.as_str(), link.client_id.as_str());
                if has_link.query_row((scope, provider, client_id), |r| r.get::<_, bool>(0))? {
                    taken.identities.insert((scope.to_owned(), provider.to_owned(), client_id.to_owned()));
                }
            }
        }
    }
    let plan = taken.plan(users);
    for i in plan.to_insert() {
        insert_user_row(conn, &users[i].record)?;
        for link in users[i].links() {
            insert_identity(conn, &link)?;
        }
    }
    Ok(plan.outcome(users))
}
