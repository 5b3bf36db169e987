//! `hallpass import-sleepless --from mysql://... --scope NAME`: imports the users of a
//! sleepless-sessions database (MariaDB/MySQL) into one scope.
//!
//! sleepless-sessions ships no schema; its SQL reads and writes
//! `users(user_id, email, locked, pw_hash, pw_salt, created, deleted, rst_code, rst_expire)`
//! and `sessions(user_id, sid, agent, remote_ip, expires)`. What its code does with them,
//! and what this importer makes of it:
//!
//! - `user_id` is the name the user registered with (`^[-_A-Za-z0-9]+$`), and users log in
//!   with it or with their email. It becomes the hallpass username when [`Username::parse`]
//!   accepts it (so users keep logging in with it), and is kept in
//!   `extra.sleepless_user_id` in every case.
//! - `email` is stored as given, never checked: it is parsed with [`Email::parse`]; a row
//!   whose email is not an address is reported and skipped. A row with no email imports
//!   with its username alone.
//! - `pw_hash = hex(sha1(password + pw_salt))` with a random 40-hex `pw_salt`: stored as
//!   `$sleepless-sha1$<pw_salt>$<pw_hash>` (the core's `sleepless_sha1_hash_string`),
//!   verified once at the user's first good login and then replaced by Argon2id. A row whose
//!   salt or hash is not in that form is imported without a password (a reset sets one) and
//!   reported.
//! - `locked <> 0` (or NULL) hides the user from every lookup, login included: the user is
//!   imported inactive. `deleted` is a soft delete (set to `now()`): such rows are not
//!   imported at all.
//! - `created` is not written by sleepless-sessions' insert, so it is the column's default
//!   (`now()`/`CURRENT_TIMESTAMP`). A `DATETIME`/`TIMESTAMP` column is read with
//!   `UNIX_TIMESTAMP()` on a connection left in the server's own time zone, the one
//!   `now()` wrote in; an integer column is read as Unix seconds (or milliseconds, when
//!   larger than 10^11). It becomes `created_at`; the id is a UUIDv7 with that instant in
//!   its time bits and SHA-256(scope ":" user_id) in its random bits, so a second run
//!   finds every user already there and inserts nothing. A row without a usable `created`
//!   gets the time of the import as `created_at` and the Unix epoch in its id.
//! - Sessions and reset codes are not imported: they are stored in clear, with about 12
//!   bits of real entropy per millisecond, and a used reset code becomes `""`, which then
//!   matches every user who ever reset. Users log in again once; resets start over.

use super::{BATCH, Progress, Totals, conflict_reason, deterministic_v7, import_batch};
use anyhow::{Context as _, bail};
use futures_util::TryStreamExt as _;
use hallpass_core::password::{is_supported_hash, sleepless_sha1_hash_string};
use hallpass_core::store::ExportedUser;
use hallpass_core::{Email, Group, JsonObject, Scope, Store, User, UserRecord, Username};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{Connection as _, Row as _};
use std::collections::HashMap;
use std::str::FromStr as _;
use time::OffsetDateTime;
use uuid::Uuid;

/// Columns the importer reads from `users`.
const REQUIRED: [&str; 7] = ["user_id", "email", "locked", "pw_hash", "pw_salt", "created", "deleted"];

/// Integers at least this large in an integer `created` column are milliseconds.
const MILLIS_FROM: i64 = 100_000_000_000;

/// One `users` row as read.
#[derive(Debug)]
pub struct Row {
    /// `user_id`.
    pub user_id: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `locked = 0`.
    pub unlocked: bool,
    /// `pw_salt`.
    pub pw_salt: Option<String>,
    /// `pw_hash`.
    pub pw_hash: Option<String>,
    /// `created` in Unix milliseconds, when usable.
    pub created_ms: Option<i64>,
    /// `deleted IS NOT NULL`.
    pub deleted: bool,
}

/// What became of a row.
#[derive(Debug)]
pub enum Converted {
    /// Soft-deleted in sleepless-sessions: not imported.
    Deleted,
    /// To import; `password` says whether the hash was usable.
    User { user: Box<ExportedUser>, password: bool },
}

/// Turns a row into a user of `scope`; `Err` is why the row is skipped.
pub fn convert(row: Row, scope: &Scope, now: OffsetDateTime) -> Result<Converted, String> {
    if row.deleted {
        return Ok(Converted::Deleted);
    }
    let user_id = row.user_id.filter(|u| !u.is_empty()).ok_or("a row without user_id")?;
    let email = match row.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        None => None,
        Some(e) => Some(
            Email::parse(e).map_err(|_| format!("user_id {user_id:?}: the email is not a valid address"))?,
        ),
    };
    let username = Username::parse(&user_id).ok();
    if username.is_none() && email.is_none() {
        return Err(format!("user_id {user_id:?}: no email, and the user_id is not a valid username"));
    }
    let password_hash = match (row.pw_salt.as_deref(), row.pw_hash.as_deref()) {
        (Some(salt), Some(hash)) => {
            Some(sleepless_sha1_hash_string(salt.trim(), hash.trim())).filter(|h| is_supported_hash(h))
        }
        _ => None,
    };
    let millis = row.created_ms.filter(|ms| *ms > 0);
    let created_at = millis
        .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .unwrap_or(now);
    let id = deterministic_v7(millis.unwrap_or(0), scope.as_str(), &user_id);
    let mut extra = JsonObject::new();
    extra.insert("sleepless_user_id".into(), serde_json::Value::String(user_id));
    let user = User {
        id,
        scope: scope.clone(),
        username,
        email,
        group: Group::default_group(),
        extra,
        active: row.unlocked,
        confirmation: None,
        confirmed: false,
        created_at,
        updated_at: created_at,
        last_login_at: None,
    };
    let password = password_hash.is_some();
    Ok(Converted::User {
        user: Box::new(ExportedUser {
            record: UserRecord { user, password_hash },
            identities: Vec::new(),
            mfa: Default::default(),
        }),
        password,
    })
}

/// How the `created` column is read, by its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CreatedKind {
    /// No such column.
    Missing,
    /// A date or time type (or text holding one): `UNIX_TIMESTAMP()` in the server's zone.
    Instant,
    /// A number: Unix seconds or milliseconds.
    Number,
}

impl CreatedKind {
    fn of(data_type: Option<&str>) -> Self {
        match data_type.map(str::to_ascii_lowercase).as_deref() {
            None => Self::Missing,
            Some(
                "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal" | "numeric"
                | "float" | "double",
            ) => Self::Number,
            Some(_) => Self::Instant,
        }
    }

    /// The select expression (constants only).
    fn expression(self) -> &'static str {
        match self {
            Self::Missing => "CAST(NULL AS SIGNED)",
            Self::Instant => "CAST(ROUND(UNIX_TIMESTAMP(`created`) * 1000) AS SIGNED)",
            Self::Number => "CAST(`created` AS SIGNED)",
        }
    }

    fn millis(self, v: Option<i64>) -> Option<i64> {
        match (self, v) {
            (Self::Number, Some(n)) if n.abs() < MILLIS_FROM => n.checked_mul(1000),
            (_, v) => v,
        }
    }
}

fn read_row(r: &MySqlRow, kind: CreatedKind) -> Result<Row, sqlx::Error> {
    Ok(Row {
        user_id: r.try_get(0)?,
        email: r.try_get(1)?,
        unlocked: r.try_get::<Option<i64>, _>(2)?.unwrap_or(0) != 0,
        pw_salt: r.try_get(3)?,
        pw_hash: r.try_get(4)?,
        created_ms: kind.millis(r.try_get(5)?),
        deleted: r.try_get::<Option<i64>, _>(6)?.unwrap_or(0) != 0,
    })
}

/// Connects to the sleepless-sessions database, in the server's own time zone.
async fn connect(from: &str) -> anyhow::Result<MySqlConnection> {
    let url = match from.strip_prefix("mariadb:") {
        Some(rest) => format!("mysql:{rest}"),
        None => from.to_owned(),
    };
    if !url.starts_with("mysql:") {
        bail!("--from must be a mysql:// (or mariadb://) URL");
    }
    let redacted = crate::serve::redact_url(from);
    // No `time_zone` setting: `UNIX_TIMESTAMP(datetime)` must read the column in the zone
    // sleepless-sessions' `now()` wrote it in, the server's default.
    let options = MySqlConnectOptions::from_str(&url)
        .with_context(|| format!("--from {redacted} is not a MySQL URL"))?
        .timezone(None::<String>);
    MySqlConnection::connect_with(&options).await.with_context(|| format!("connecting to {redacted}"))
}

/// The `created` column's type, after checking `users` has every column the importer reads.
async fn inspect(conn: &mut MySqlConnection) -> anyhow::Result<CreatedKind> {
    let rows = sqlx::query(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users'",
    )
    .fetch_all(&mut *conn)
    .await
    .context("reading the columns of table `users`")?;
    let mut columns = HashMap::new();
    for r in &rows {
        let name: String = r.try_get(0)?;
        let ty: String = r.try_get(1)?;
        columns.insert(name.to_ascii_lowercase(), ty);
    }
    if columns.is_empty() {
        bail!("the database has no table `users`: is this a sleepless-sessions database?");
    }
    let missing: Vec<_> =
        REQUIRED.iter().filter(|c| **c != "created" && !columns.contains_key(**c)).copied().collect();
    if !missing.is_empty() {
        bail!("table `users` lacks the sleepless-sessions columns {}", missing.join(", "));
    }
    Ok(CreatedKind::of(columns.get("created").map(String::as_str)))
}

/// `hallpass import-sleepless`. Prints the summary line on stderr and returns the totals.
pub async fn run(store: &dyn Store, from: &str, scope: &str, strict: bool) -> anyhow::Result<Totals> {
    let scope = Scope::parse(scope).context("--scope")?;
    let mut conn = connect(from).await?;
    let kind = inspect(&mut conn).await?;
    if kind == CreatedKind::Missing {
        eprintln!("note: `users` has no `created` column: users get the time of this import as created_at");
    }
    // Built from constants only (the created expression is chosen from three fixed ones).
    let sql = format!(
        "SELECT CAST(`user_id` AS CHAR), CAST(`email` AS CHAR), CAST(COALESCE(`locked` = 0, 0) AS SIGNED), \
         CAST(`pw_salt` AS CHAR), CAST(`pw_hash` AS CHAR), {}, CAST(`deleted` IS NOT NULL AS SIGNED) \
         FROM `users`",
        kind.expression()
    );
    let now = OffsetDateTime::now_utc();
    let progress = Progress::new(None);
    let mut totals = Totals::default();
    let (mut rows_read, mut deleted, mut without_password, mut batches) = (0u64, 0u64, 0u64, 0u64);
    let mut batch: Vec<ExportedUser> = Vec::with_capacity(BATCH);
    {
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut conn);
        loop {
            let next = rows.try_next().await.context("reading sleepless-sessions users")?;
            if let Some(r) = &next {
                rows_read += 1;
                match convert(read_row(r, kind).context("reading a sleepless-sessions user")?, &scope, now) {
                    Ok(Converted::Deleted) => deleted += 1,
                    Ok(Converted::User { user, password }) => {
                        if !password {
                            without_password += 1;
                            progress.say(&format!(
                                "user_id {:?}: pw_salt/pw_hash are not 40 hex digits each: imported without a \
                                 password (a password reset sets one)",
                                sleepless_id(&user)
                            ));
                        }
                        batch.push(*user);
                    }
                    Err(why) => {
                        totals.invalid += 1;
                        progress.say(&format!("invalid: {why}; skipped"));
                    }
                }
            }
            if batch.len() >= BATCH || (next.is_none() && !batch.is_empty()) {
                let outcome = import_batch(store, &batch).await?;
                let by_id: HashMap<Uuid, &ExportedUser> =
                    batch.iter().map(|u| (u.record.user.id, u)).collect();
                for (id, why) in &outcome.conflicts {
                    let who = by_id.get(id).map_or_else(String::new, |u| sleepless_id(u));
                    progress
                        .say(&format!("conflict: user_id {who:?} not imported: {}", conflict_reason(*why)));
                }
                totals.add(&outcome);
                batch.clear();
                batches += 1;
                progress.update(None, format!("{rows_read} rows: {totals}"));
                if progress.every_batches(batches) {
                    eprintln!("import-sleepless: {rows_read} rows read: {totals}");
                }
            }
            if next.is_none() {
                break;
            }
        }
    }
    let _ = conn.close().await;
    progress.finish();
    eprintln!(
        "read {rows_read} sleepless-sessions users into scope `{scope}`: {deleted} deleted ones skipped, \
         {without_password} imported without a password; sessions and reset codes are not imported"
    );
    eprintln!("{totals}");
    if strict && (totals.invalid > 0 || totals.conflicts > 0) {
        bail!(
            "--strict: {} invalid rows and {} conflicts (everything else was imported)",
            totals.invalid,
            totals.conflicts
        );
    }
    Ok(totals)
}

fn sleepless_id(u: &ExportedUser) -> String {
    u.record.user.extra.get("sleepless_user_id").and_then(|v| v.as_str()).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SALT: &str = "0123456789abcdef0123456789abcdef01234567";
    const HASH: &str = "89abcdef0123456789abcdef0123456789abcdef";

    fn row(user_id: &str, email: Option<&str>) -> Row {
        Row {
            user_id: Some(user_id.into()),
            email: email.map(Into::into),
            unlocked: true,
            pw_salt: Some(SALT.into()),
            pw_hash: Some(HASH.into()),
            created_ms: Some(1_700_000_000_123),
            deleted: false,
        }
    }

    fn user(c: Converted) -> (ExportedUser, bool) {
        match c {
            Converted::User { user, password } => (*user, password),
            Converted::Deleted => panic!("deleted"),
        }
    }

    #[test]
    fn a_sleepless_user_becomes_a_hallpass_user() {
        let scope = Scope::parse("legacy").unwrap();
        let now = OffsetDateTime::now_utc();
        let (u, password) = user(convert(row("bob_1", Some(" Bob@Example.COM ")), &scope, now).unwrap());
        assert!(password);
        let r = &u.record;
        assert_eq!(r.user.username.as_ref().unwrap().as_str(), "bob_1");
        assert_eq!(r.user.email.as_ref().unwrap().key(), "Bob@example.com");
        assert_eq!(r.password_hash.as_deref(), Some(format!("$sleepless-sha1${SALT}${HASH}").as_str()));
        assert_eq!(r.user.created_at.unix_timestamp_nanos(), 1_700_000_000_123_000_000);
        assert_eq!(r.user.extra["sleepless_user_id"], "bob_1");
        assert_eq!(r.user.id, deterministic_v7(1_700_000_000_123, "legacy", "bob_1"));
        let (again, _) = user(convert(row("bob_1", Some("bob@example.com")), &scope, now).unwrap());
        assert_eq!(again.record.user.id, r.user.id, "the id is the same on every run");
    }

    #[test]
    fn locked_deleted_and_broken_rows() {
        let scope = Scope::parse("legacy").unwrap();
        let now = OffsetDateTime::now_utc();
        let locked = Row { unlocked: false, ..row("a", Some("a@x.org")) };
        assert!(!user(convert(locked, &scope, now).unwrap()).0.record.user.active);
        let gone = Row { deleted: true, ..row("b", Some("b@x.org")) };
        assert!(matches!(convert(gone, &scope, now).unwrap(), Converted::Deleted));
        assert!(convert(row("c", Some("not an address")), &scope, now).is_err());
        assert!(convert(Row { user_id: None, ..row("d", None) }, &scope, now).is_err());
        // No email: the user_id alone identifies the user.
        let (u, _) = user(convert(row("e", None), &scope, now).unwrap());
        assert!(u.record.user.email.is_none());
        // A user_id that is no username, with an email: imported by email.
        let (u, _) = user(convert(row("has space", Some("f@x.org")), &scope, now).unwrap());
        assert!(u.record.user.username.is_none());
        // A mangled hash: imported without a password.
        let bad = Row { pw_hash: Some("zz".into()), ..row("g", Some("g@x.org")) };
        let (u, password) = user(convert(bad, &scope, now).unwrap());
        assert!(!password);
        assert!(u.record.password_hash.is_none());
        // No created: now, and the epoch in the id.
        let (u, _) = user(convert(Row { created_ms: None, ..row("h", None) }, &scope, now).unwrap());
        assert_eq!(u.record.user.created_at, now);
        assert_eq!(u.record.user.id, deterministic_v7(0, "legacy", "h"));
    }

    #[test]
    fn created_columns_of_each_type() {
        assert_eq!(CreatedKind::of(Some("datetime")), CreatedKind::Instant);
        assert_eq!(CreatedKind::of(Some("TIMESTAMP")), CreatedKind::Instant);
        assert_eq!(CreatedKind::of(Some("int")), CreatedKind::Number);
        assert_eq!(CreatedKind::of(None), CreatedKind::Missing);
        assert_eq!(CreatedKind::Number.millis(Some(1_700_000_000)), Some(1_700_000_000_000));
        assert_eq!(CreatedKind::Number.millis(Some(1_700_000_000_123)), Some(1_700_000_000_123));
        assert_eq!(CreatedKind::Instant.millis(Some(1_700_000_000_123)), Some(1_700_000_000_123));
    }
}
