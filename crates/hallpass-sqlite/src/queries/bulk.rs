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
//!
//! Second factors go with their users: a page's TOTP rows, recovery codes and passkeys are
//! read with one statement each (the same JSON array of ids), and an import inserts those
//! of the users it inserts, in the same transaction.

use crate::codec::*;
use crate::error::QResult;
use crate::queries::identities::insert_identity;
use crate::queries::users::insert_user_row;
use crate::rows::{identity_cols, identity_row, record_from_row, user_cols};
use hallpass_core::mfa::TotpRecord;
use hallpass_core::store::{ExportedMfa, ExportedUser, ImportOutcome, ImportTaken, RecoveryCodeHash};
use hallpass_core::{Email, Identity, PasskeyRecord, Scope, TokenHash, Username};
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
    for link in stmt.query_map([&ids], identity_row)? {
        let link = link?;
        links.entry((link.scope.clone(), link.user_id)).or_default().push(link);
    }
    let mut mfa = export_mfa(conn, &ids)?;
    Ok(records
        .into_iter()
        .map(|record| {
            let key = (record.user.scope.clone(), record.user.id);
            let identities = links.remove(&key).unwrap_or_default();
            ExportedUser { record, identities, mfa: mfa.remove(&key).unwrap_or_default() }
        })
        .collect())
}

/// The second factors of the users whose ids the JSON array `ids` lists.
fn export_mfa(conn: &Connection, ids: &str) -> QResult<HashMap<(Scope, Uuid), ExportedMfa>> {
    let mut all: HashMap<(Scope, Uuid), ExportedMfa> = HashMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT scope, user_id, secret, confirmed, last_step, created_at FROM mfa_totp \
         WHERE user_id IN (SELECT value FROM json_each(?1))",
    )?;
    let rows = stmt.query_map([ids], |r| {
        let key = (get_parsed(r, 0, Scope::from_stored)?, get_uuid(r, 1)?);
        let totp = TotpRecord {
            secret: r.get(2)?,
            confirmed: r.get::<_, i64>(3)? != 0,
            last_step: r.get(4)?,
            created_at: get_time(r, 5)?,
        };
        Ok((key, totp))
    })?;
    for row in rows {
        let (key, totp) = row?;
        all.entry(key).or_default().totp = Some(totp);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT scope, user_id, code_hash, created_at FROM mfa_recovery_codes \
         WHERE user_id IN (SELECT value FROM json_each(?1)) ORDER BY user_id, code_hash",
    )?;
    let rows = stmt.query_map([ids], |r| {
        let key = (get_parsed(r, 0, Scope::from_stored)?, get_uuid(r, 1)?);
        let bytes: Vec<u8> = r.get(2)?;
        Ok((key, bytes, get_time(r, 3)?))
    })?;
    for row in rows {
        let (key, bytes, created_at) = row?;
        if let Some(hash) = TokenHash::from_slice(&bytes) {
            all.entry(key).or_default().recovery_codes.push(RecoveryCodeHash { hash, created_at });
        }
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM passkeys WHERE user_id IN (SELECT value FROM json_each(?1)) ORDER BY user_id, created_at, id",
        crate::queries::passkeys::COLUMNS
    ))?;
    for p in stmt.query_map([ids], crate::queries::passkeys::passkey)? {
        let p: PasskeyRecord = p?;
        all.entry((p.scope.clone(), p.user_id)).or_default().passkeys.push(p);
    }
    Ok(all)
}

/// Stores an inserted user's second factors (in the import's transaction).
fn import_mfa(conn: &Connection, scope: &Scope, user_id: Uuid, mfa: &ExportedMfa) -> QResult<()> {
    if let Some(t) = &mfa.totp {
        conn.prepare_cached(
            "INSERT INTO mfa_totp (scope, user_id, secret, confirmed, last_step, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (scope, user_id) DO NOTHING",
        )?
        .execute((
            scope.as_str(),
            id(user_id),
            &t.secret,
            i64::from(t.confirmed),
            t.last_step,
            ms(t.created_at),
        ))?;
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO mfa_recovery_codes (scope, user_id, code_hash, created_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT DO NOTHING",
    )?;
    for c in &mfa.recovery_codes {
        insert.execute((scope.as_str(), id(user_id), hash(&c.hash), ms(c.created_at)))?;
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO passkeys (id, scope, user_id, credential_id, name, credential, counter, \
         backup_eligible, backup_state, created_at, last_used_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
    )?;
    for p in &mfa.passkeys {
        insert.execute((
            id(p.id),
            scope.as_str(),
            id(user_id),
            &p.credential_id,
            &p.name,
            &p.credential,
            i64::from(p.counter),
            i64::from(p.backup_eligible),
            i64::from(p.backup_state),
            ms(p.created_at),
            p.last_used_at.map(ms),
        ))?;
    }
    Ok(())
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
        if !users[i].mfa.is_empty() {
            let u = &users[i].record.user;
            import_mfa(conn, &u.scope, u.id, &users[i].mfa)?;
        }
    }
    Ok(plan.outcome(users))
}
