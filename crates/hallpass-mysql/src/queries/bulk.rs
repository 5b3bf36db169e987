//! Export and import of users in bulk (`Store::export_users` / `Store::import_users`).
//!
//! **Export**: a page is one range scan of the users' primary key (scope, id). `scope` is
//! `ascii_bin` and `id` hyphenated lower-case ASCII, so key order is (scope bytes, UUID)
//! order, as the contract wants. The cursor is written `scope > ? OR (scope = ? AND id >
//! ?)`: MariaDB turns that into a range of the primary key, while the row comparison
//! `(scope, id) > (?, ?)` makes it walk the index from its start on every page. The
//! page's links come per scope in a few statements (`scope = ? AND user_id IN (...)`, the
//! identities' primary key), not one per user.
//!
//! **Import** runs in one transaction (retried whole if InnoDB picks it as a deadlock
//! victim, like every transaction here). Per scope, `... IN (...)` statements find which
//! of the batch's ids, username keys, email keys and (per provider) client ids are taken,
//! each a range of a unique index; the core's `ImportTaken::plan` decides the batch; then
//! multi-row INSERTs store the chosen users and their links.
//!
//! Every statement's parameters stay under [`STATEMENT_BUDGET`] bytes, so a batch's keys
//! and rows are split into runs. sqlx 0.9.0 leaves Nagle's algorithm on
//! (transact-rs/sqlx#4335; the fix is not released yet): a message larger than the
//! socket's send buffer (16 KiB to start with on Linux) goes out in two parts, and the
//! second waits for the server's delayed ACK, about 40 ms — per statement. The `IN` lists
//! are padded (repeating their last key) to a power of two, so a handful of statement
//! shapes serve every batch size and stay in sqlx's per-connection statement cache.
//!
//! Another transaction may take a key between the checks and the inserts (a
//! registration, another import): InnoDB makes our insert wait for it, then refuses it
//! with a duplicate key. The inserts run under a savepoint, so that refusal undoes only
//! them; they are then redone one user at a time, each under its own savepoint, and a
//! user refused by a unique index becomes a conflict (or `existing`, for the primary key)
//! instead of failing the batch.
//!
//! Second factors go with their users: a page's TOTP rows, recovery codes and passkeys are
//! read per scope like the links; an import inserts those of the users it inserts, with
//! them (`INSERT IGNORE`, one statement per row: few users have any).

use crate::codec::*;
use crate::error::{Fail, QResult, duplicate_key};
use crate::rows::{identity_cols, identity_row, record_from_row, user_cols};
use hallpass_core::store::{
    ExportedMfa, ExportedUser, ImportConflict, ImportDecision, ImportOutcome, ImportPlan, ImportTaken,
    RecoveryCodeHash,
};
use hallpass_core::{Confirmation, Email, Identity, Scope, TokenHash, TotpRecord, Username};
use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, Row};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Most bytes of parameters one statement carries (see the module documentation).
pub(crate) const STATEMENT_BUDGET: usize = 12 * 1024;
/// Most keys in one `IN (...)` list.
const MAX_KEYS: usize = 256;
/// Most rows in one multi-row INSERT.
const MAX_ROWS: usize = 128;

/// The first page.
pub(crate) const EXPORT_FIRST: &str =
    concat!("SELECT ", user_cols!(""), " FROM users ORDER BY scope, id LIMIT ?");
/// A page after a cursor (scope, id, in that order twice: see the module documentation).
pub(crate) const EXPORT_AFTER: &str = concat!(
    "SELECT ",
    user_cols!(""),
    " FROM users WHERE scope > ? OR (scope = ? AND id > ?) ORDER BY scope, id LIMIT ?"
);

pub(crate) async fn export_users(
    c: &mut MySqlConnection,
    after: Option<(Scope, Uuid)>,
    limit: u32,
) -> QResult<Vec<ExportedUser>> {
    let found = match &after {
        None => sqlx::query(EXPORT_FIRST).bind(limit).fetch_all(&mut *c).await?,
        Some((scope, after)) => {
            sqlx::query(EXPORT_AFTER)
                .bind(scope.as_str())
                .bind(scope.as_str())
                .bind(id(*after))
                .bind(limit)
                .fetch_all(&mut *c)
                .await?
        }
    };
    let records = found.iter().map(record_from_row).collect::<QResult<Vec<_>>>()?;
    let mut by_scope: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in &records {
        by_scope.entry(r.user.scope.as_str()).or_default().push(id(r.user.id));
    }
    let mut links: HashMap<(Scope, Uuid), Vec<Identity>> = HashMap::new();
    for (scope, ids) in &by_scope {
        for run in runs(ids, MAX_KEYS, |k| 4 + k.len()) {
            let keys = padded(run);
            let sql = format!(
                concat!(
                    "SELECT ",
                    identity_cols!(),
                    " FROM identities WHERE scope = ? AND user_id IN ({}) ORDER BY user_id, provider"
                ),
                placeholders(keys.len())
            );
            // Only placeholders went into `sql`; every value is bound.
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(*scope);
            for key in keys {
                q = q.bind(key.as_str());
            }
            for row in q.fetch_all(&mut *c).await? {
                let link = identity_row(&row)?;
                links.entry((link.scope.clone(), link.user_id)).or_default().push(link);
            }
        }
    }
    let mut mfa: HashMap<(Scope, Uuid), ExportedMfa> = HashMap::new();
    for (scope, ids) in &by_scope {
        for run in runs(ids, MAX_KEYS, |k| 4 + k.len()) {
            export_mfa(c, scope, run, &mut mfa).await?;
        }
    }
    Ok(records
        .into_iter()
        .map(|record| {
            let key = (record.user.scope.clone(), record.user.id);
            let identities = links.remove(&key).unwrap_or_default();
            ExportedUser { record, identities, mfa: mfa.remove(&key).unwrap_or_default() }
        })
        .collect())
}

/// The second factors of the listed users of one scope, added to `all`.
async fn export_mfa(
    c: &mut MySqlConnection,
    scope: &str,
    ids: &[String],
    all: &mut HashMap<(Scope, Uuid), ExportedMfa>,
) -> QResult<()> {
    let keys = padded(ids);
    let list = placeholders(keys.len());
    let totp = format!(
        "SELECT user_id, secret, confirmed, last_step, created_at FROM mfa_totp WHERE scope = ? AND user_id IN ({list})"
    );
    let codes = format!(
        "SELECT user_id, code_hash, created_at FROM mfa_recovery_codes WHERE scope = ? AND user_id IN ({list}) \
         ORDER BY user_id, code_hash"
    );
    let passkeys = format!(
        "SELECT {} FROM passkeys WHERE scope = ? AND user_id IN ({list}) ORDER BY user_id, created_at, id",
        crate::queries::passkeys::COLUMNS
    );
    let scope_of = Scope::from_stored(scope).map_err(|e| hallpass_core::StoreError::Other(e.to_string()))?;
    // Only placeholders went into the statements; every value is bound.
    let mut q = sqlx::query(AssertSqlSafe(totp)).bind(scope);
    for key in &keys {
        q = q.bind(key.as_str());
    }
    for row in q.fetch_all(&mut *c).await? {
        let record = TotpRecord {
            secret: row.try_get(1)?,
            confirmed: row.try_get::<i8, _>(2)? != 0,
            last_step: row.try_get(3)?,
            created_at: get_time(&row, 4)?,
        };
        all.entry((scope_of.clone(), get_uuid(&row, 0)?)).or_default().totp = Some(record);
    }
    let mut q = sqlx::query(AssertSqlSafe(codes)).bind(scope);
    for key in &keys {
        q = q.bind(key.as_str());
    }
    for row in q.fetch_all(&mut *c).await? {
        let bytes: Vec<u8> = row.try_get(1)?;
        if let Some(hash) = TokenHash::from_slice(&bytes) {
            let code = RecoveryCodeHash { hash, created_at: get_time(&row, 2)? };
            all.entry((scope_of.clone(), get_uuid(&row, 0)?)).or_default().recovery_codes.push(code);
        }
    }
    let mut q = sqlx::query(AssertSqlSafe(passkeys)).bind(scope);
    for key in &keys {
        q = q.bind(key.as_str());
    }
    for row in q.fetch_all(&mut *c).await? {
        let p = crate::queries::passkeys::passkey(&row)?;
        all.entry((p.scope.clone(), p.user_id)).or_default().passkeys.push(p);
    }
    Ok(())
}

/// Stores an inserted user's second factors (in the import's transaction).
async fn import_mfa(c: &mut MySqlConnection, exported: &ExportedUser) -> Result<(), sqlx::Error> {
    let (scope, user_id) = (exported.record.user.scope.as_str(), id(exported.record.user.id));
    let mfa = &exported.mfa;
    if let Some(t) = &mfa.totp {
        sqlx::query(
            "INSERT IGNORE INTO mfa_totp (scope, user_id, secret, confirmed, last_step, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(scope)
        .bind(&user_id)
        .bind(&t.secret)
        .bind(t.confirmed)
        .bind(t.last_step)
        .bind(ms(t.created_at))
        .execute(&mut *c)
        .await?;
    }
    for code in &mfa.recovery_codes {
        sqlx::query(
            "INSERT IGNORE INTO mfa_recovery_codes (scope, user_id, code_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(scope)
        .bind(&user_id)
        .bind(&code.hash.as_bytes()[..])
        .bind(ms(code.created_at))
        .execute(&mut *c)
        .await?;
    }
    for p in &mfa.passkeys {
        sqlx::query(
            "INSERT IGNORE INTO passkeys (id, scope, user_id, credential_id, name, credential, counter, \
             backup_eligible, backup_state, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id(p.id))
        .bind(scope)
        .bind(&user_id)
        .bind(&p.credential_id)
        .bind(&p.name)
        .bind(&p.credential)
        .bind(i64::from(p.counter))
        .bind(p.backup_eligible)
        .bind(p.backup_state)
        .bind(ms(p.created_at))
        .bind(opt_ms(p.last_used_at))
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

pub(crate) async fn import_users(c: &mut MySqlConnection, users: &[ExportedUser]) -> QResult<ImportOutcome> {
    if users.is_empty() {
        return Ok(ImportOutcome::default());
    }
    let mut plan = find_taken(c, users).await?.plan(users);
    insert_planned(c, users, &mut plan).await?;
    Ok(plan.outcome(users))
}

/// Which of `keys` the statement `sql` (a `?` for each leading value, then `IN ({})` for
/// the keys) finds, in runs within the budget. `binary`: the column is VARBINARY, so the
/// keys are bound and read back as bytes (a text column is compared as text, which keeps
/// its index usable).
async fn taken_keys(
    c: &mut MySqlConnection,
    sql: &str,
    leading: &[&str],
    keys: &[&str],
    binary: bool,
) -> QResult<Vec<String>> {
    let mut out = Vec::new();
    for run in runs(keys, MAX_KEYS, |k| 4 + k.len()) {
        let keys = padded(run);
        // Only placeholders are formatted into `sql`; every value is bound.
        let mut q = sqlx::query(AssertSqlSafe(sql.replace("{}", &placeholders(keys.len()))));
        for value in leading {
            q = q.bind(*value);
        }
        for key in keys {
            q = if binary { q.bind(key.as_bytes()) } else { q.bind(*key) };
        }
        for row in q.fetch_all(&mut *c).await? {
            out.push(if binary { get_bytes_text(&row, 0)? } else { row.try_get(0)? });
        }
    }
    Ok(out)
}

const TAKEN_IDS: &str = "SELECT id FROM users WHERE scope = ? AND id IN ({})";
const TAKEN_USERNAMES: &str = "SELECT username_key FROM users WHERE scope = ? AND username_key IN ({})";
const TAKEN_EMAILS: &str = "SELECT email_key FROM users WHERE scope = ? AND email_key IN ({})";
const TAKEN_LINKS: &str =
    "SELECT client_id FROM identities WHERE scope = ? AND provider = ? AND client_id IN ({})";

/// What the database holds of the batch's keys: per scope (and provider), one statement
/// per kind of key and run of keys.
async fn find_taken(c: &mut MySqlConnection, users: &[ExportedUser]) -> QResult<ImportTaken> {
    #[derive(Default)]
    struct Keys {
        ids: Vec<String>,
        usernames: Vec<String>,
        emails: Vec<String>,
        links: BTreeMap<String, Vec<String>>,
    }
    let mut by_scope: BTreeMap<&str, Keys> = BTreeMap::new();
    for e in users {
        let u = &e.record.user;
        let keys = by_scope.entry(u.scope.as_str()).or_default();
        keys.ids.push(id(u.id));
        keys.usernames.extend(u.username.as_ref().map(|n| n.key().to_owned()));
        keys.emails.extend(u.email.as_ref().map(|m| m.key().to_owned()));
        for link in &e.identities {
            keys.links
                .entry(link.provider.as_str().to_owned())
                .or_default()
                .push(link.client_id.as_str().to_owned());
        }
    }
    let mut taken = ImportTaken::default();
    for (scope, keys) in &by_scope {
        for found in taken_keys(c, TAKEN_IDS, &[scope], &as_strs(&keys.ids), false).await? {
            let found = Uuid::parse_str(&found).map_err(|e| crate::error::corrupt("id", e))?;
            taken.ids.insert(((*scope).to_owned(), found));
        }
        for found in taken_keys(c, TAKEN_USERNAMES, &[scope], &as_strs(&keys.usernames), true).await? {
            taken.usernames.insert(((*scope).to_owned(), found));
        }
        for found in taken_keys(c, TAKEN_EMAILS, &[scope], &as_strs(&keys.emails), true).await? {
            taken.emails.insert(((*scope).to_owned(), found));
        }
        for (provider, client_ids) in &keys.links {
            for found in taken_keys(c, TAKEN_LINKS, &[scope, provider], &as_strs(client_ids), true).await? {
                taken.identities.insert(((*scope).to_owned(), provider.clone(), found));
            }
        }
    }
    Ok(taken)
}

/// Inserts the users the plan chose, all at once under a savepoint; if a unique index
/// refuses that (a concurrent writer took a key since the checks), inserts them one by
/// one instead and turns each refusal into the plan's decision for that user.
pub(crate) async fn insert_planned(
    c: &mut MySqlConnection,
    users: &[ExportedUser],
    plan: &mut ImportPlan,
) -> QResult<()> {
    let chosen = plan.to_insert();
    if chosen.is_empty() {
        return Ok(());
    }
    sqlx::query("SAVEPOINT import_batch").execute(&mut *c).await?;
    match insert_rows(c, users, &chosen).await {
        Ok(()) => {
            sqlx::query("RELEASE SAVEPOINT import_batch").execute(&mut *c).await?;
            return Ok(());
        }
        Err(Refused::Lost(_)) => {
            sqlx::query("ROLLBACK TO SAVEPOINT import_batch").execute(&mut *c).await?;
            tracing::debug!("mysql: import batch met a key taken meanwhile; inserting one by one");
        }
        Err(Refused::Failed(e)) => return Err(e),
    }
    for i in chosen {
        sqlx::query("SAVEPOINT import_user").execute(&mut *c).await?;
        match insert_rows(c, users, &[i]).await {
            Ok(()) => {
                sqlx::query("RELEASE SAVEPOINT import_user").execute(&mut *c).await?;
            }
            Err(Refused::Lost(decision)) => {
                sqlx::query("ROLLBACK TO SAVEPOINT import_user").execute(&mut *c).await?;
                plan.decisions[i] = decision;
            }
            Err(Refused::Failed(e)) => return Err(e),
        }
    }
    Ok(())
}

/// Why an insert of users (or of their links) failed.
enum Refused {
    /// A unique index refused it: what that means for the user.
    Lost(ImportDecision),
    /// Anything else.
    Failed(Fail),
}

impl From<Fail> for Refused {
    fn from(e: Fail) -> Self {
        Self::Failed(e)
    }
}

impl From<sqlx::Error> for Refused {
    fn from(e: sqlx::Error) -> Self {
        Self::Failed(e.into())
    }
}

/// Classifies a failed INSERT into `users` (`links` false) or `identities` (`links` true).
fn refused(e: sqlx::Error, links: bool) -> Refused {
    let decision = match (duplicate_key(&e), links) {
        (Some("PRIMARY"), false) => Some(ImportDecision::Existing),
        (Some("users_username_key"), false) => Some(ImportDecision::Conflict(ImportConflict::Username)),
        (Some("users_email_key"), false) => Some(ImportDecision::Conflict(ImportConflict::Email)),
        (Some("identities_client_id"), true) => Some(ImportDecision::Conflict(ImportConflict::Identity)),
        _ => None,
    };
    match decision {
        Some(decision) => Refused::Lost(decision),
        None => Refused::Failed(e.into()),
    }
}

const USER_COLUMNS: usize = 15;
const LINK_COLUMNS: usize = 9;

/// About the bytes a user adds to an INSERT: a few per value, and the values.
fn user_size(e: &ExportedUser, extra: &str) -> usize {
    let r = &e.record;
    let u = &r.user;
    USER_COLUMNS * 4
        + u.scope.as_str().len()
        + 36
        + 2 * u.username.as_ref().map_or(0, |n| n.as_str().len() + n.key().len())
        + 2 * u.email.as_ref().map_or(0, |m| m.as_str().len() + m.key().len())
        + u.group.as_str().len()
        + extra.len()
        + 7
        + 3 * 8
        + r.password_hash.as_ref().map_or(0, String::len)
}

/// About the bytes a link adds to an INSERT.
fn link_size(l: &Identity) -> usize {
    LINK_COLUMNS * 4
        + l.scope.as_str().len()
        + 36
        + l.provider.as_str().len()
        + l.client_id.as_str().len()
        + l.access_token.as_ref().map_or(0, String::len)
        + l.refresh_token.as_ref().map_or(0, String::len)
        + 3 * 8
}

/// Inserts `users[i]` for every `i` of `chosen`, then their links: multi-row INSERTs,
/// one per run of rows.
async fn insert_rows(
    c: &mut MySqlConnection,
    users: &[ExportedUser],
    chosen: &[usize],
) -> Result<(), Refused> {
    let mut rows: Vec<(&ExportedUser, String)> = Vec::with_capacity(chosen.len());
    for &i in chosen {
        rows.push((&users[i], json(&users[i].record.user.extra)?));
    }
    for run in runs(&rows, MAX_ROWS, |(e, extra)| user_size(e, extra)) {
        let sql = format!(
            concat!("INSERT INTO users (", user_cols!(""), ", username_key, email_key) VALUES {}"),
            row_placeholders(run.len(), USER_COLUMNS)
        );
        // Only placeholders went into `sql`; every value is bound.
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (e, extra) in run {
            let r = &e.record;
            let u = &r.user;
            q = q
                .bind(u.scope.as_str())
                .bind(id(u.id))
                .bind(u.username.as_ref().map(Username::as_str))
                .bind(u.email.as_ref().map(Email::as_str))
                .bind(u.group.as_str().as_bytes())
                .bind(extra.as_str())
                .bind(u.active)
                .bind(u.confirmation.map(Confirmation::as_str))
                .bind(u.confirmed)
                .bind(ms(u.created_at))
                .bind(ms(u.updated_at))
                .bind(opt_ms(u.last_login_at))
                .bind(r.password_hash.as_deref().map(str::as_bytes))
                .bind(u.username.as_ref().map(|n| n.key().as_bytes()))
                .bind(u.email.as_ref().map(|m| m.key().as_bytes()));
        }
        q.execute(&mut *c).await.map_err(|e| refused(e, false))?;
    }
    let links: Vec<Identity> = chosen.iter().flat_map(|&i| users[i].links()).collect();
    for run in runs(&links, MAX_ROWS, link_size) {
        let sql = format!(
            concat!("INSERT INTO identities (", identity_cols!(), ") VALUES {}"),
            row_placeholders(run.len(), LINK_COLUMNS)
        );
        // Only placeholders went into `sql`; every value is bound.
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for l in run {
            q = q
                .bind(l.scope.as_str())
                .bind(id(l.user_id))
                .bind(l.provider.as_str())
                .bind(l.client_id.as_str().as_bytes())
                .bind(l.access_token.as_deref())
                .bind(opt_ms(l.access_token_expiry))
                .bind(ms(l.created_at))
                .bind(ms(l.updated_at))
                .bind(l.refresh_token.as_deref());
        }
        q.execute(&mut *c).await.map_err(|e| refused(e, true))?;
    }
    for &i in chosen {
        if !users[i].mfa.is_empty() {
            import_mfa(c, &users[i]).await.map_err(|e| refused(e, false))?;
        }
    }
    Ok(())
}

/// Splits `items` into consecutive runs of at most `max` items whose estimated encoded
/// size (`size` of each, in bytes) stays within [`STATEMENT_BUDGET`]; a run holds at
/// least one item.
fn runs<T>(items: &[T], max: usize, size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        if i > start && (bytes + n > STATEMENT_BUDGET || i - start == max) {
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

/// `keys` padded to the next power of two by repeating the last one (a repeated value
/// changes nothing in an `IN` list), so few statement shapes exist.
fn padded<T>(keys: &[T]) -> Vec<&T> {
    let mut out: Vec<&T> = keys.iter().collect();
    if let Some(last) = keys.last() {
        out.resize(keys.len().next_power_of_two(), last);
    }
    out
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

fn row_placeholders(rows: usize, columns: usize) -> String {
    let row = format!("({})", placeholders(columns));
    vec![row.as_str(); rows].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDatabase;
    use hallpass_core::{Store, UserRef};
    use hallpass_store_tests::fixtures::{identity, scope, user};

    /// What a concurrent writer can cause: keys taken after the checks. The plan below
    /// was made as if nothing were taken; the unique indexes refuse those users one by
    /// one, and each refusal becomes that user's conflict (or `Existing`) instead of
    /// failing the batch; the others are inserted with their links.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_taken_after_the_checks_become_conflicts() {
        let Some(db) = TestDatabase::create().await else { return };
        let store = db.store().await;
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
            let found = store.find_user(&s, &UserRef::Id(u.id)).await.expect("find");
            assert_eq!(found.is_some(), stored, "user {i}");
            let links = store.list_identities(&s, u.id).await.expect("links");
            assert_eq!(links, if stored { batch[i].links() } else { vec![] }, "links of user {i}");
        }
        let kept = store.find_user(&s, &UserRef::Id(holder.user.id)).await.expect("find");
        assert_eq!(kept.map(|r| r.user), Some(holder.user), "the existing user is untouched");
    }

    /// A page after a cursor is a range of the primary key, not a walk of the whole
    /// index from its start; the checks are ranges of their unique indexes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pages_and_checks_are_index_ranges() {
        let Some(db) = TestDatabase::create().await else { return };
        let store = db.store().await;
        let batch: Vec<ExportedUser> = ["a", "b", "c"]
            .iter()
            .flat_map(|name| {
                let s = scope(name);
                (0..50).map(move |i| ExportedUser {
                    record: user(&s, Some(&format!("u{i}")), Some(&format!("u{i}@example.com"))),
                    identities: vec![],
                    mfa: Default::default(),
                })
            })
            .collect();
        store.import_users(&batch).await.expect("import");
        sqlx::query("ANALYZE TABLE users").execute(store.pool()).await.expect("analyze");
        let explain = |sql: String| {
            let pool = store.pool().clone();
            async move {
                let row = sqlx::query(AssertSqlSafe(format!("EXPLAIN {sql}")))
                    .fetch_one(&pool)
                    .await
                    .expect("explain");
                let kind: Option<String> = row.try_get("type").expect("type");
                let kind = kind.unwrap_or_default();
                let key: Option<String> = row.try_get("key").expect("key");
                (kind, key.unwrap_or_default())
            }
        };
        let after = EXPORT_AFTER
            .replacen('?', "'b'", 2)
            .replacen('?', "'00000000-0000-0000-0000-000000000000'", 1)
            .replacen('?', "10", 1);
        assert_eq!(explain(after).await, ("range".to_owned(), "PRIMARY".to_owned()));
        let usernames = TAKEN_USERNAMES.replace('?', "'a'").replace("{}", "'u1', 'u2', 'zz'");
        assert_eq!(explain(usernames).await, ("range".to_owned(), "users_username_key".to_owned()));
        let (a, b) = (batch[0].record.user.id, batch[1].record.user.id);
        let ids = TAKEN_IDS.replace('?', "'a'").replace("{}", &format!("'{a}', '{b}'"));
        assert_eq!(explain(ids).await, ("range".to_owned(), "PRIMARY".to_owned()));
    }

    #[test]
    fn runs_respect_the_budget_and_the_count() {
        let sizes = [5000, 5000, 5000, 20_000, 1, 2, 3, 4, 5];
        let got: Vec<Vec<usize>> = runs(&sizes, 3, |&n| n).into_iter().map(<[usize]>::to_vec).collect();
        assert_eq!(got, vec![vec![5000, 5000], vec![5000], vec![20_000], vec![1, 2, 3], vec![4, 5]]);
        assert!(runs(&[] as &[usize], 3, |&n| n).is_empty());
    }

    #[test]
    fn key_lists_pad_to_powers_of_two() {
        assert_eq!(padded(&[1, 2, 3]), vec![&1, &2, &3, &3]);
        assert_eq!(padded(&[1, 2, 3, 4]), vec![&1, &2, &3, &4]);
        assert_eq!(padded(&[7]), vec![&7]);
        assert!(padded::<u8>(&[]).is_empty());
        assert_eq!(row_placeholders(2, 3), "(?, ?, ?), (?, ?, ?)");
    }
}
