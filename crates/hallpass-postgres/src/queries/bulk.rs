//! Export and import of users in bulk (`Store::export_users` / `Store::import_users`).
//!
//! **Export** orders scopes by their bytes, as the contract says, while the `scope`
//! column uses the database's default collation (under `en_US.UTF-8`, "ab" sorts before
//! "a_c"; bytewise it is the other way round). Rather than sort the table under
//! `COLLATE "C"` on every page, a page is built from per-scope index range scans: the
//! scopes come from a loose index scan of the primary key (one probe per scope), are put
//! in byte order in Rust, and each scope from the cursor on contributes `scope = $1 AND
//! id > $2 ORDER BY id` (the primary key (scope, id), in uuid order) until the page is
//! full. The links of the page's users then come in one statement (`user_id = ANY($1)`,
//! the identities' primary key), not one per user.
//!
//! **Import** runs in one transaction: four statements find which of the batch's ids,
//! username keys, email keys and links are taken (each probes a unique index once per
//! key of the batch, the keys passed as arrays), the core's `ImportTaken::plan` decides the batch, and two
//! statements insert every chosen user and link at once (`INSERT ... SELECT FROM
//! unnest(...)`, one array per column). Every statement is static, so prepared once per
//! connection.
//!
//! Every statement's parameters stay under [`STATEMENT_BUDGET`] bytes: a batch's keys and
//! rows are split into runs of the same static statement. sqlx 0.9.0 leaves Nagle's
//! algorithm on (transact-rs/sqlx#4335; the fix, #4336, is not released yet): a message
//! larger than the socket's send buffer (16 KiB to start with on Linux) goes out in two
//! parts, and the second waits for the server's delayed ACK, about 40 ms — per statement.
//! Measured here: 16,000 bytes of parameters take 0.2 ms, 24,000 bytes 44 ms. A thousand
//! users in one `INSERT` is about 300 KB; in runs of 12 KiB it is some 25 statements of a
//! fraction of a millisecond each.
//!
//! Another transaction may take one of the keys between the checks and the insert (a
//! registration, another import); the unique constraints then refuse the insert. It runs
//! under a savepoint, so that refusal only undoes the bulk insert, which is then redone
//! one user at a time, each under its own savepoint: a user refused by a constraint
//! becomes a conflict (or `existing`, for the primary key) instead of failing the batch.
//!
//! Second factors go with their users: a page's TOTP rows, recovery codes and passkeys
//! come in one statement each (`user_id = ANY($1)`); an import inserts those of the users
//! it inserts, with them (few users have any, so one statement per row).

use crate::codec::{DbId, JsonbText, id, id_at, ms, opt_ms, scope_at, time_at};
use crate::error::{Fail, QResult};
use crate::rows::{self, identity_cols, user_cols};
use hallpass_core::store::{
    ExportedMfa, ExportedUser, ImportConflict, ImportDecision, ImportOutcome, ImportPlan, ImportTaken,
    RecoveryCodeHash,
};
use hallpass_core::{Confirmation, Email, Identity, Scope, StoreError, TokenHash, TotpRecord, Username};
use sqlx::postgres::PgConnection;
use sqlx::{PgPool, Row};
use std::collections::HashMap;
use uuid::Uuid;

/// Every scope that has users: a loose index scan of the primary key, one probe per
/// scope, in the order of the column's collation (re-sorted bytewise by the caller).
pub(crate) const SCOPES: &str = "WITH RECURSIVE s (scope) AS ( \
     (SELECT scope FROM users ORDER BY scope LIMIT 1) \
     UNION ALL \
     SELECT (SELECT u.scope FROM users u WHERE u.scope > s.scope ORDER BY u.scope LIMIT 1) \
     FROM s WHERE s.scope IS NOT NULL) \
     SELECT scope FROM s WHERE scope IS NOT NULL";
/// A scope's users from its first id.
pub(crate) const EXPORT_SCOPE: &str =
    concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = $1 ORDER BY id LIMIT $2");
/// A scope's users after an id.
pub(crate) const EXPORT_SCOPE_AFTER: &str =
    concat!("SELECT ", user_cols!(""), " FROM users WHERE scope = $1 AND id > $2 ORDER BY id LIMIT $3");
/// The links of the listed users (`provider` is `COLLATE "C"`: byte order).
pub(crate) const EXPORT_LINKS: &str = concat!(
    "SELECT ",
    identity_cols!(),
    " FROM identities WHERE user_id = ANY($1) ORDER BY user_id, provider"
);

pub(crate) async fn export_users(
    pool: &PgPool,
    after: Option<(Scope, Uuid)>,
    limit: u32,
) -> QResult<Vec<ExportedUser>> {
    let mut conn = pool.acquire().await?;
    let mut records = Vec::new();
    let mut left = i64::from(limit);
    // The rest of the cursor's own scope first: often it fills the page alone.
    if let Some((scope, after)) = &after {
        let found = sqlx::query(EXPORT_SCOPE_AFTER)
            .bind(scope.as_str())
            .bind(id(*after))
            .bind(left)
            .fetch_all(&mut *conn)
            .await?;
        left -= found.len() as i64;
        for row in &found {
            records.push(rows::user_record(row)?);
        }
    }
    if left > 0 {
        let mut scopes: Vec<String> = sqlx::query_scalar(SCOPES).fetch_all(&mut *conn).await?;
        scopes.sort_unstable();
        let from = after.as_ref().map(|(s, _)| s.as_str());
        for scope in scopes.iter().filter(|s| from.is_none_or(|from| s.as_str() > from)) {
            let found = sqlx::query(EXPORT_SCOPE).bind(scope).bind(left).fetch_all(&mut *conn).await?;
            left -= found.len() as i64;
            for row in &found {
                records.push(rows::user_record(row)?);
            }
            if left <= 0 {
                break;
            }
        }
    }
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<DbId> = records.iter().map(|r| id(r.user.id)).collect();
    let mut links: HashMap<(Scope, Uuid), Vec<Identity>> = HashMap::new();
    for run in runs(&ids, |_| 4 + 16) {
        for row in &sqlx::query(EXPORT_LINKS).bind(run).fetch_all(&mut *conn).await? {
            let link = rows::identity(row)?;
            links.entry((link.scope.clone(), link.user_id)).or_default().push(link);
        }
    }
    let mut mfa = export_mfa(&mut conn, &ids).await?;
    Ok(records
        .into_iter()
        .map(|record| {
            let key = (record.user.scope.clone(), record.user.id);
            let identities = links.remove(&key).unwrap_or_default();
            ExportedUser { record, identities, mfa: mfa.remove(&key).unwrap_or_default() }
        })
        .collect())
}

/// The second factors of the listed users.
async fn export_mfa(conn: &mut PgConnection, ids: &[DbId]) -> QResult<HashMap<(Scope, Uuid), ExportedMfa>> {
    let mut all: HashMap<(Scope, Uuid), ExportedMfa> = HashMap::new();
    let passkeys = format!(
        "SELECT {} FROM passkeys WHERE user_id = ANY($1) ORDER BY user_id, created_at, id",
        crate::queries::passkeys::COLUMNS
    );
    for run in runs(ids, |_| 4 + 16) {
        let totp = "SELECT scope, user_id, secret, confirmed, last_step, created_at FROM mfa_totp \
                    WHERE user_id = ANY($1)";
        for row in &sqlx::query(totp).bind(run).fetch_all(&mut *conn).await? {
            let record = TotpRecord {
                secret: row.try_get(2)?,
                confirmed: row.try_get(3)?,
                last_step: row.try_get(4)?,
                created_at: time_at(row, 5)?,
            };
            all.entry((scope_at(row, 0)?, id_at(row, 1)?)).or_default().totp = Some(record);
        }
        let codes = "SELECT scope, user_id, code_hash, created_at FROM mfa_recovery_codes \
                     WHERE user_id = ANY($1) ORDER BY user_id, code_hash";
        for row in &sqlx::query(codes).bind(run).fetch_all(&mut *conn).await? {
            let bytes: Vec<u8> = row.try_get(2)?;
            if let Some(hash) = TokenHash::from_slice(&bytes) {
                let code = RecoveryCodeHash { hash, created_at: time_at(row, 3)? };
                all.entry((scope_at(row, 0)?, id_at(row, 1)?)).or_default().recovery_codes.push(code);
            }
        }
        for row in
            &sqlx::query(sqlx::AssertSqlSafe(passkeys.as_str())).bind(run).fetch_all(&mut *conn).await?
        {
            let p = crate::queries::passkeys::passkey(row)?;
            all.entry((p.scope.clone(), p.user_id)).or_default().passkeys.push(p);
        }
    }
    Ok(all)
}

/// Stores an inserted user's second factors (in the import's transaction).
async fn import_mfa(conn: &mut PgConnection, exported: &ExportedUser) -> QResult<()> {
    let (scope, user_id) = (exported.record.user.scope.as_str(), id(exported.record.user.id));
    let mfa = &exported.mfa;
    if let Some(t) = &mfa.totp {
        sqlx::query(
            "INSERT INTO mfa_totp (scope, user_id, secret, confirmed, last_step, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(scope)
        .bind(user_id)
        .bind(&t.secret)
        .bind(t.confirmed)
        .bind(t.last_step)
        .bind(ms(t.created_at))
        .execute(&mut *conn)
        .await?;
    }
    for c in &mfa.recovery_codes {
        sqlx::query(
            "INSERT INTO mfa_recovery_codes (scope, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(scope)
        .bind(user_id)
        .bind(&c.hash.as_bytes()[..])
        .bind(ms(c.created_at))
        .execute(&mut *conn)
        .await?;
    }
    for p in &mfa.passkeys {
        sqlx::query(
            "INSERT INTO passkeys (id, scope, user_id, credential_id, name, credential, counter, \
             backup_eligible, backup_state, created_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
        )
        .bind(id(p.id))
        .bind(scope)
        .bind(user_id)
        .bind(&p.credential_id)
        .bind(&p.name)
        .bind(&p.credential)
        .bind(i64::from(p.counter))
        .bind(p.backup_eligible)
        .bind(p.backup_state)
        .bind(ms(p.created_at))
        .bind(opt_ms(p.last_used_at))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

// Which of the batch's keys are taken. Each walks the batch's keys (arrays, one per
// column) and probes the matching unique index once per key: the `LATERAL ... LIMIT 1`
// keeps the planner from hashing the whole table instead, which a plain join with
// `unnest` gets (its row estimate knows nothing of the arrays), and which would cost a
// scan of every user per batch.

/// Which of the given (scope, id) exist (primary key).
pub(crate) const TAKEN_IDS: &str = "SELECT k.scope, k.id FROM unnest($1::text[], $2::uuid[]) AS k (scope, id) \
     CROSS JOIN LATERAL (SELECT 1 FROM users u WHERE u.scope = k.scope AND u.id = k.id LIMIT 1) AS hit";
/// Which of the given (scope, username key) are held (`users_username_key`).
pub(crate) const TAKEN_USERNAMES: &str = "SELECT k.scope, k.key FROM unnest($1::text[], $2::text[]) AS k (scope, key) \
     CROSS JOIN LATERAL (SELECT 1 FROM users u WHERE u.scope = k.scope AND u.username_key = k.key LIMIT 1) AS hit";
/// Which of the given (scope, email key) are held (`users_email_key`).
pub(crate) const TAKEN_EMAILS: &str = "SELECT k.scope, k.key FROM unnest($1::text[], $2::text[]) AS k (scope, key) \
     CROSS JOIN LATERAL (SELECT 1 FROM users u WHERE u.scope = k.scope AND u.email_key = k.key LIMIT 1) AS hit";
/// Which of the given (scope, provider, client id) are held (`identities_client_id`).
pub(crate) const TAKEN_LINKS: &str = "SELECT k.scope, k.provider, k.client_id \
     FROM unnest($1::text[], $2::text[], $3::text[]) AS k (scope, provider, client_id) \
     CROSS JOIN LATERAL (SELECT 1 FROM identities i \
     WHERE i.scope = k.scope AND i.provider = k.provider AND i.client_id = k.client_id LIMIT 1) AS hit";

/// Inserts users, one array per column.
const INSERT_USERS: &str = concat!(
    "INSERT INTO users (",
    user_cols!(""),
    ", username_key, email_key) SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], \
     $5::text[], $6::jsonb[], $7::bool[], $8::text[], $9::bool[], $10::int8[], $11::int8[], $12::int8[], \
     $13::text[], $14::text[], $15::text[])"
);
/// Inserts links, one array per column.
const INSERT_LINKS: &str = concat!(
    "INSERT INTO identities (",
    identity_cols!(),
    ") SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int8[], \
     $7::int8[], $8::int8[], $9::text[])"
);

pub(crate) async fn import_users(pool: &PgPool, users: &[ExportedUser]) -> QResult<ImportOutcome> {
    if users.is_empty() {
        return Ok(ImportOutcome::default());
    }
    let mut tx = pool.begin().await?;
    let mut plan = find_taken(&mut tx, users).await?.plan(users);
    insert_planned(&mut tx, users, &mut plan).await?;
    tx.commit().await?;
    Ok(plan.outcome(users))
}

/// What the database holds of the batch's keys: one statement per kind of key (per run
/// of [`STATEMENT_BUDGET`] bytes of keys).
async fn find_taken(conn: &mut PgConnection, users: &[ExportedUser]) -> QResult<ImportTaken> {
    let mut taken = ImportTaken::default();
    let ids: Vec<(&str, DbId)> =
        users.iter().map(|e| (e.record.user.scope.as_str(), id(e.record.user.id))).collect();
    for run in runs(&ids, |(scope, _)| 8 + scope.len() + 16) {
        let (scopes, ids): (Vec<&str>, Vec<DbId>) = run.iter().copied().unzip();
        for row in sqlx::query(TAKEN_IDS).bind(scopes).bind(ids).fetch_all(&mut *conn).await? {
            taken.ids.insert((row.try_get(0)?, row.try_get::<DbId, _>(1)?.0));
        }
    }
    let usernames: Vec<(&str, &str)> = users
        .iter()
        .filter_map(|e| e.record.user.username.as_ref().map(|u| (e.record.user.scope.as_str(), u.key())))
        .collect();
    for run in runs(&usernames, |(scope, key)| 8 + scope.len() + key.len()) {
        let (scopes, keys): (Vec<&str>, Vec<&str>) = run.iter().copied().unzip();
        for row in sqlx::query(TAKEN_USERNAMES).bind(scopes).bind(keys).fetch_all(&mut *conn).await? {
            taken.usernames.insert((row.try_get(0)?, row.try_get(1)?));
        }
    }
    let emails: Vec<(&str, &str)> = users
        .iter()
        .filter_map(|e| e.record.user.email.as_ref().map(|m| (e.record.user.scope.as_str(), m.key())))
        .collect();
    for run in runs(&emails, |(scope, key)| 8 + scope.len() + key.len()) {
        let (scopes, keys): (Vec<&str>, Vec<&str>) = run.iter().copied().unzip();
        for row in sqlx::query(TAKEN_EMAILS).bind(scopes).bind(keys).fetch_all(&mut *conn).await? {
            taken.emails.insert((row.try_get(0)?, row.try_get(1)?));
        }
    }
    let links: Vec<(&str, &str, &str)> = users
        .iter()
        .flat_map(|e| {
            let scope = e.record.user.scope.as_str();
            e.identities.iter().map(move |l| (scope, l.provider.as_str(), l.client_id.as_str()))
        })
        .collect();
    for run in runs(&links, |(s, p, c)| 12 + s.len() + p.len() + c.len()) {
        let scopes: Vec<&str> = run.iter().map(|k| k.0).collect();
        let providers: Vec<&str> = run.iter().map(|k| k.1).collect();
        let client_ids: Vec<&str> = run.iter().map(|k| k.2).collect();
        let found = sqlx::query(TAKEN_LINKS)
            .bind(scopes)
            .bind(providers)
            .bind(client_ids)
            .fetch_all(&mut *conn)
            .await?;
        for row in found {
            taken.identities.insert((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
        }
    }
    Ok(taken)
}

/// Inserts the users the plan chose, all at once under a savepoint; if a unique
/// constraint refuses that (a concurrent writer took a key since the checks), inserts
/// them one by one instead and turns each refusal into the plan's decision for that user.
pub(crate) async fn insert_planned(
    conn: &mut PgConnection,
    users: &[ExportedUser],
    plan: &mut ImportPlan,
) -> QResult<()> {
    let chosen = plan.to_insert();
    if chosen.is_empty() {
        return Ok(());
    }
    sqlx::query("SAVEPOINT import_batch").execute(&mut *conn).await?;
    match insert_rows(conn, users, &chosen).await {
        Ok(()) => {
            sqlx::query("RELEASE SAVEPOINT import_batch").execute(&mut *conn).await?;
            return Ok(());
        }
        Err(e) if lost_race(&e).is_some() => {
            sqlx::query("ROLLBACK TO SAVEPOINT import_batch").execute(&mut *conn).await?;
            tracing::debug!("postgres: import batch met a key taken meanwhile; inserting one by one");
        }
        Err(e) => return Err(e),
    }
    for i in chosen {
        sqlx::query("SAVEPOINT import_user").execute(&mut *conn).await?;
        match insert_rows(conn, users, &[i]).await {
            Ok(()) => {
                sqlx::query("RELEASE SAVEPOINT import_user").execute(&mut *conn).await?;
            }
            Err(e) => match lost_race(&e) {
                Some(decision) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT import_user").execute(&mut *conn).await?;
                    plan.decisions[i] = decision;
                }
                None => return Err(e),
            },
        }
    }
    Ok(())
}

/// What a unique violation met while inserting a user means for that user.
fn lost_race(e: &Fail) -> Option<ImportDecision> {
    let Fail::Sql(sqlx::Error::Database(db)) = e else { return None };
    if db.code().as_deref() != Some("23505") {
        return None;
    }
    match db.constraint()? {
        "users_pkey" => Some(ImportDecision::Existing),
        "users_username_key" => Some(ImportDecision::Conflict(ImportConflict::Username)),
        "users_email_key" => Some(ImportDecision::Conflict(ImportConflict::Email)),
        "identities_client_id" => Some(ImportDecision::Conflict(ImportConflict::Identity)),
        _ => None,
    }
}

/// Most bytes of parameters one statement carries (see the module documentation).
pub(crate) const STATEMENT_BUDGET: usize = 12 * 1024;

/// Splits `items` into consecutive runs whose estimated encoded size (`size` of each, in
/// bytes) stays within [`STATEMENT_BUDGET`]; a run holds at least one item.
pub(crate) fn runs<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        if i > start && bytes + n > STATEMENT_BUDGET {
            out.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += n;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

/// A user about to be inserted, its `extra` serialised once (its length counts).
struct NewRow<'a> {
    exported: &'a ExportedUser,
    extra: String,
}

impl NewRow<'_> {
    /// About the bytes the row adds to the statement: 4 per column (an array element's
    /// length) and the values.
    fn size(&self) -> usize {
        let r = &self.exported.record;
        let u = &r.user;
        15 * 4
            + u.scope.as_str().len()
            + 16
            + 2 * u.username.as_ref().map_or(0, |n| n.as_str().len() + n.key().len())
            + 2 * u.email.as_ref().map_or(0, |e| e.as_str().len() + e.key().len())
            + u.group.as_str().len()
            + 1
            + self.extra.len()
            + 3
            + 7
            + 24
            + r.password_hash.as_ref().map_or(0, String::len)
    }
}

/// About the bytes a link adds to the statement.
fn link_size(l: &Identity) -> usize {
    8 * 4
        + l.scope.as_str().len()
        + 16
        + l.provider.as_str().len()
        + l.client_id.as_str().len()
        + l.access_token.as_ref().map_or(0, String::len)
        + l.refresh_token.as_ref().map_or(0, String::len)
        + 24
}

/// Inserts `users[i]` for every `i` of `chosen`, then their links: one statement per run
/// of rows.
async fn insert_rows(conn: &mut PgConnection, users: &[ExportedUser], chosen: &[usize]) -> QResult<()> {
    let mut rows = Vec::with_capacity(chosen.len());
    for &i in chosen {
        let exported = &users[i];
        let extra = serde_json::to_string(&exported.record.user.extra)
            .map_err(|e| StoreError::Other(format!("cannot encode JSON: {e}")))?;
        rows.push(NewRow { exported, extra });
    }
    for run in runs(&rows, NewRow::size) {
        insert_users(conn, run).await?;
    }
    let links: Vec<Identity> = chosen.iter().flat_map(|&i| users[i].links()).collect();
    for run in runs(&links, link_size) {
        insert_links(conn, run).await?;
    }
    for &i in chosen {
        if !users[i].mfa.is_empty() {
            import_mfa(conn, &users[i]).await?;
        }
    }
    Ok(())
}

async fn insert_users(conn: &mut PgConnection, rows: &[NewRow<'_>]) -> QResult<()> {
    let n = rows.len();
    let mut scope = Vec::with_capacity(n);
    let mut user_id = Vec::with_capacity(n);
    let mut username = Vec::with_capacity(n);
    let mut email = Vec::with_capacity(n);
    let mut group = Vec::with_capacity(n);
    let mut extra = Vec::with_capacity(n);
    let mut active = Vec::with_capacity(n);
    let mut confirmation = Vec::with_capacity(n);
    let mut confirmed = Vec::with_capacity(n);
    let mut created_at = Vec::with_capacity(n);
    let mut updated_at = Vec::with_capacity(n);
    let mut last_login_at = Vec::with_capacity(n);
    let mut password_hash = Vec::with_capacity(n);
    let mut username_key = Vec::with_capacity(n);
    let mut email_key = Vec::with_capacity(n);
    for row in rows {
        let record = &row.exported.record;
        let u = &record.user;
        scope.push(u.scope.as_str());
        user_id.push(id(u.id));
        username.push(u.username.as_ref().map(Username::as_str));
        email.push(u.email.as_ref().map(Email::as_str));
        group.push(u.group.as_str());
        extra.push(JsonbText(&row.extra));
        active.push(u.active);
        confirmation.push(u.confirmation.map(Confirmation::as_str));
        confirmed.push(u.confirmed);
        created_at.push(ms(u.created_at));
        updated_at.push(ms(u.updated_at));
        last_login_at.push(opt_ms(u.last_login_at));
        password_hash.push(record.password_hash.as_deref());
        username_key.push(u.username.as_ref().map(Username::key));
        email_key.push(u.email.as_ref().map(Email::key));
    }
    sqlx::query(INSERT_USERS)
        .bind(scope)
        .bind(user_id)
        .bind(username)
        .bind(email)
        .bind(group)
        .bind(extra)
        .bind(active)
        .bind(confirmation)
        .bind(confirmed)
        .bind(created_at)
        .bind(updated_at)
        .bind(last_login_at)
        .bind(password_hash)
        .bind(username_key)
        .bind(email_key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert_links(conn: &mut PgConnection, links: &[Identity]) -> QResult<()> {
    let scope: Vec<&str> = links.iter().map(|l| l.scope.as_str()).collect();
    let user_id: Vec<DbId> = links.iter().map(|l| id(l.user_id)).collect();
    let provider: Vec<&str> = links.iter().map(|l| l.provider.as_str()).collect();
    let client_id: Vec<&str> = links.iter().map(|l| l.client_id.as_str()).collect();
    let access_token: Vec<Option<&str>> = links.iter().map(|l| l.access_token.as_deref()).collect();
    let expiry: Vec<Option<i64>> = links.iter().map(|l| opt_ms(l.access_token_expiry)).collect();
    let refresh_token: Vec<Option<&str>> = links.iter().map(|l| l.refresh_token.as_deref()).collect();
    let created_at: Vec<i64> = links.iter().map(|l| ms(l.created_at)).collect();
    let updated_at: Vec<i64> = links.iter().map(|l| ms(l.updated_at)).collect();
    sqlx::query(INSERT_LINKS)
        .bind(scope)
        .bind(user_id)
        .bind(provider)
        .bind(client_id)
        .bind(access_token)
        .bind(expiry)
        .bind(created_at)
        .bind(updated_at)
        .bind(refresh_token)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;
    use hallpass_core::Store;
    use hallpass_store_tests::fixtures::{identity, scope, user};

    /// What a concurrent writer can cause: keys taken after the checks. The plan below
    /// was made as if nothing were taken; the constraints refuse those users one by one,
    /// and each refusal becomes that user's conflict (or `Existing`) instead of failing
    /// the batch; the others are inserted with their links.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_taken_after_the_checks_become_conflicts() {
        let Some(db) = TestDb::create().await else { return };
        let store = db.store();
        let s = scope("a");
        let holder = user(&s, Some("taken"), Some("taken@example.com"));
        store.insert_user(&holder).await.expect("insert_user");
        store.upsert_identity(&identity(&s, holder.user.id, "github", "gh"), &[]).await.expect("link");
        let entry = |username: &str, email: &str, link: Option<(&str, &str)>| {
            let record = user(&s, Some(username), Some(email));
            let identities = link.map(|(p, c)| identity(&s, record.user.id, p, c)).into_iter().collect();
            ExportedUser { record, identities, mfa: Default::default() }
        };
        let mut again = entry("someone", "someone@example.com", None);
        again.record.user.id = holder.user.id;
        let batch = vec![
            entry("first", "first@example.com", Some(("github", "gh-first"))),
            entry("TAKEN", "x1@example.com", None),
            entry("x2", "taken@example.com", None),
            entry("x3", "x3@example.com", Some(("github", "gh"))),
            again,
            entry("last", "last@example.com", Some(("google", "gh"))),
        ];
        let mut plan = ImportTaken::default().plan(&batch);
        assert!(plan.decisions.iter().all(|d| *d == ImportDecision::Insert));
        let mut tx = store.pool().begin().await.expect("begin");
        insert_planned(&mut tx, &batch, &mut plan).await.expect("insert_planned");
        tx.commit().await.expect("commit");
        use ImportConflict::{Email, Identity, Username};
        use ImportDecision::{Conflict, Existing, Insert};
        assert_eq!(
            plan.decisions,
            [Insert, Conflict(Username), Conflict(Email), Conflict(Identity), Existing, Insert]
        );
        for (i, stored) in [(0, true), (1, false), (2, false), (3, false), (5, true)] {
            let u = &batch[i].record.user;
            let found = store.find_user(&s, &hallpass_core::UserRef::Id(u.id)).await.expect("find");
            assert_eq!(found.is_some(), stored, "user {i}");
            let links = store.list_identities(&s, u.id).await.expect("links");
            assert_eq!(links, if stored { batch[i].links() } else { vec![] }, "links of user {i}");
        }
        let kept = store.find_user(&s, &hallpass_core::UserRef::Id(holder.user.id)).await.expect("find");
        assert_eq!(kept.map(|r| r.user), Some(holder.user), "the existing user is untouched");
    }

    #[test]
    fn runs_stay_within_the_budget_and_keep_every_item_in_order() {
        let sizes = [5000, 5000, 5000, 20_000, 1, 2, 3, 12 * 1024];
        let got: Vec<Vec<usize>> = runs(&sizes, |&n| n).into_iter().map(<[usize]>::to_vec).collect();
        assert_eq!(got, vec![vec![5000, 5000], vec![5000], vec![20_000], vec![1, 2, 3], vec![12 * 1024]]);
        assert!(runs(&[] as &[usize], |&n| n).is_empty());
    }
}
