//! `hallpass import [FILE|-]`: reads the export format (see [`super`]) and inserts its users
//! through [`Store::import_users`] in batches of [`BATCH`].
//!
//! Every line is parsed into the core's typed values ([`Scope::parse`], [`Username::parse`],
//! [`Email::parse`], [`Group::parse`], [`ProviderName::parse`], [`ClientId::parse`]; a
//! password hash must pass [`HashCeiling::check`], `extra` the API's cap
//! ([`Limits::check_user_extra`]), a provider access token [`check_access_token`]). A line
//! that fails is reported
//! on stderr with its number and skipped; the others are imported. Users whose id is
//! already in their scope are left as they are, so importing a file twice inserts nothing
//! the second time. Users whose username, email or provider link belongs to another user
//! are reported as conflicts and not inserted.
//!
//! Users of the internal scope `_admin` (the admins of the web page, which `hallpass
//! export` writes) are refused unless the operator passes `--include-admins`
//! ([`ImportRules::include_admins`]): only a whole deployment moving should bring admins.
//!
//! Lines written by other systems may leave out what they do not know: `id` (then derived
//! from the scope, the username or email and `created_at`, the same on every run), `group`
//! (`default`), `extra` (`{}`), `active` (true), `confirmation` (null), `confirmed`
//! (false), `created_at` (the time of the import), `updated_at` (= `created_at`),
//! `last_login_at`, `password_hash` (null: no password) and `providers` (none). `scope` and
//! a username or an email are required; unknown fields are refused, so a typo never drops
//! data silently. A provider's `access_token_expiry` may be RFC 3339 or Unix seconds.

use super::{
    BATCH, FORMAT_VERSION, Progress, Totals, conflict_reason, deterministic_v7, import_batch, parse_timestamp,
};
use anyhow::{Context as _, bail};
use hallpass_core::mfa::totp_aad;
use hallpass_core::passkey::passkey_name;
use hallpass_core::service::seal_identity_with;
use hallpass_core::store::{ExportedMfa, ExportedUser, RecoveryCodeHash};
use hallpass_core::{
    ClientId, Confirmation, Email, Group, HashCeiling, Identity, JsonObject, Limits, PasskeyRecord,
    ProviderName, Scope, Store, TokenHash, TotpRecord, User, UserRecord, Username, check_access_token,
    check_json_object, check_refresh_token,
};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, IsTerminal as _};
use std::path::Path;
use time::OffsetDateTime;
use uuid::Uuid;

/// A user line as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserIn {
    scope: String,
    id: Option<String>,
    username: Option<String>,
    email: Option<String>,
    group: Option<String>,
    extra: Option<JsonObject>,
    active: Option<bool>,
    confirmation: Option<String>,
    confirmed: Option<bool>,
    created_at: Option<String>,
    updated_at: Option<String>,
    last_login_at: Option<String>,
    password_hash: Option<String>,
    providers: Option<Vec<ProviderIn>>,
    mfa: Option<MfaIn>,
}

/// Second factors as `hallpass export` writes them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MfaIn {
    totp: Option<TotpIn>,
    #[serde(default)]
    recovery_codes: Vec<RecoveryCodeIn>,
    #[serde(default)]
    passkeys: Vec<PasskeyIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpIn {
    secret: String,
    confirmed: bool,
    last_step: Option<i64>,
    created_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoveryCodeIn {
    hash: String,
    created_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasskeyIn {
    id: String,
    name: String,
    credential_id: String,
    credential: serde_json::Map<String, serde_json::Value>,
    counter: u32,
    #[serde(default)]
    backup_eligible: bool,
    #[serde(default)]
    backup_state: bool,
    created_at: Option<String>,
    last_used_at: Option<String>,
}

/// The second factors of the user `id` of `scope`, checked, the TOTP secret sealed by
/// this server's key (which it needs: without one a line with a TOTP is refused).
fn second_factors(
    m: MfaIn,
    scope: &Scope,
    id: Uuid,
    since: OffsetDateTime,
    rules: &ImportRules,
) -> Result<ExportedMfa, String> {
    use base64::Engine as _;
    let totp = match m.totp {
        None => None,
        Some(t) => {
            let secret = t.secret.trim().to_ascii_uppercase();
            let valid = secret.len() >= 16
                && secret
                    .trim_end_matches('=')
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
            if !valid {
                return Err("mfa.totp.secret: must be the base32 secret (16 or more characters)".into());
            }
            let Some(key) = rules.secret.as_ref() else {
                return Err("mfa.totp: this server has no secret key to seal the secret with (set \
                            HALLPASS_SECRET_KEY or secret_key_file)"
                    .into());
            };
            Some(TotpRecord {
                secret: key.seal_text(&totp_aad(scope, id), &secret),
                confirmed: t.confirmed,
                last_step: t.last_step,
                created_at: instant("mfa.totp.created_at", t.created_at.as_deref())?.unwrap_or(since),
            })
        }
    };
    let mut recovery_codes = Vec::with_capacity(m.recovery_codes.len());
    for c in m.recovery_codes {
        let hash = TokenHash::from_hex(&c.hash).ok_or("mfa.recovery_codes.hash: must be 64 hex digits")?;
        let created_at = instant("mfa.recovery_codes.created_at", c.created_at.as_deref())?.unwrap_or(since);
        recovery_codes.push(RecoveryCodeHash { hash, created_at });
    }
    let mut passkeys = Vec::with_capacity(m.passkeys.len());
    for p in m.passkeys {
        let pid = Uuid::parse_str(&p.id).map_err(|_| "mfa.passkeys.id: must be a UUID")?;
        let name = passkey_name(&p.name).map_err(|e| format!("mfa.passkeys.{e}"))?;
        let credential_id = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p.credential_id.trim_end_matches('='))
            .ok()
            .filter(|b| !b.is_empty() && b.len() <= 1023)
            .ok_or("mfa.passkeys.credential_id: must be base64url (1 to 1023 bytes)")?;
        let created_at = instant("mfa.passkeys.created_at", p.created_at.as_deref())?.unwrap_or(since);
        passkeys.push(PasskeyRecord {
            id: pid,
            scope: scope.clone(),
            user_id: id,
            credential_id,
            name,
            credential: serde_json::Value::Object(p.credential).to_string(),
            counter: p.counter,
            backup_eligible: p.backup_eligible,
            backup_state: p.backup_state,
            created_at,
            last_used_at: instant("mfa.passkeys.last_used_at", p.last_used_at.as_deref())?,
        });
    }
    Ok(ExportedMfa { totp, recovery_codes, passkeys })
}

/// A provider link as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderIn {
    provider: String,
    client_id: String,
    access_token: Option<String>,
    access_token_expiry: Option<serde_json::Value>,
    refresh_token: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

fn instant(field: &str, s: Option<&str>) -> Result<Option<OffsetDateTime>, String> {
    match s {
        None => Ok(None),
        Some(s) => parse_timestamp(s).map(Some).ok_or_else(|| format!("{field}: not an RFC 3339 timestamp")),
    }
}

fn expiry(v: Option<&serde_json::Value>) -> Result<Option<OffsetDateTime>, String> {
    const FIELD: &str = "providers.access_token_expiry";
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => instant(FIELD, Some(s)),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .filter(|s| (0..=253_402_300_799).contains(s))
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .map(Some)
            .ok_or_else(|| format!("{FIELD}: Unix seconds must be a whole number from 0 to 253402300799")),
        Some(_) => Err(format!("{FIELD}: must be an RFC 3339 timestamp or Unix seconds")),
    }
}

/// What an import accepts beyond the format itself.
#[derive(Debug, Clone)]
pub struct ImportRules {
    /// The API's caps (`extra`), applied to every line as the API applies them.
    pub limits: Limits,
    /// The most a password hash may cost to verify (the server's own ceiling).
    pub hash_ceiling: HashCeiling,
    /// Whether users of the internal scope `_admin` (the admins of the web page) are
    /// imported (`--include-admins`: the file is a whole deployment moving, written by
    /// `hallpass export`). Otherwise such a line is refused: an import must not be a way
    /// to make someone an admin.
    pub include_admins: bool,
    /// The server's key: provider tokens are sealed with it as they are stored (none: kept
    /// as read, as a server without a key keeps them).
    pub secret: Option<hallpass_core::ServerSecret>,
}

impl Default for ImportRules {
    /// The defaults of a server with default settings.
    fn default() -> Self {
        let settings = hallpass_core::Settings::default();
        Self {
            limits: settings.limits,
            hash_ceiling: settings.hash_ceiling(),
            include_admins: false,
            secret: None,
        }
    }
}

/// Parses one user line into what storage takes. The error is a sentence for the operator;
/// it never contains the password hash.
pub fn parse_user(
    value: serde_json::Value,
    now: OffsetDateTime,
    rules: &ImportRules,
) -> Result<ExportedUser, String> {
    let u: UserIn = serde_json::from_value(value).map_err(|e| e.to_string())?;
    // `from_stored`: an export carries the admins of the web page (scope `_admin`) too,
    // imported only when the operator says the file is a whole-deployment move.
    let scope = Scope::from_stored(&u.scope).map_err(|e| e.to_string())?;
    if scope.is_admin() && !rules.include_admins {
        return Err(format!(
            "scope: `{}` holds the admins of the web page; they are imported only with \
             --include-admins (a whole deployment moving)",
            Scope::ADMIN
        ));
    }
    let username = u.username.as_deref().map(Username::parse).transpose().map_err(|e| e.to_string())?;
    let email = u.email.as_deref().map(Email::parse).transpose().map_err(|e| e.to_string())?;
    if username.is_none() && email.is_none() {
        return Err("a username or an email is required".into());
    }
    let group = match u.group.as_deref() {
        Some(g) => Group::parse(g).map_err(|e| e.to_string())?,
        None => Group::default_group(),
    };
    let extra = u.extra.unwrap_or_default();
    check_json_object("extra", &extra).map_err(|e| e.to_string())?;
    rules.limits.check_user_extra(&extra).map_err(|e| e.to_string())?;
    let confirmation = match u.confirmation.as_deref() {
        None => None,
        Some(c) => Some(
            Confirmation::from_stored(c).ok_or("confirmation: must be \"pending\", \"failed\" or null")?,
        ),
    };
    let created_at = instant("created_at", u.created_at.as_deref())?;
    let updated_at = instant("updated_at", u.updated_at.as_deref())?;
    let last_login_at = instant("last_login_at", u.last_login_at.as_deref())?;
    let id = match u.id.as_deref() {
        Some(s) => match Uuid::parse_str(s) {
            Ok(id) if !id.is_nil() => id,
            _ => return Err("id: must be a UUID".into()),
        },
        // No id: the same one on every run, from what identifies the user in the file.
        None => {
            let key = match (&username, &email) {
                (Some(n), _) => format!("username:{}", n.key()),
                (None, Some(e)) => format!("email:{}", e.key()),
                (None, None) => unreachable!("checked above"),
            };
            let millis =
                created_at.map_or(0, |t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0));
            deterministic_v7(millis, scope.as_str(), &key)
        }
    };
    if let Some(h) = u.password_hash.as_deref() {
        // The reason names the scheme and its parameters, never the hash itself.
        rules.hash_ceiling.check(h).map_err(|why| format!("password_hash: {why}"))?;
    }
    let created_at = created_at.unwrap_or(now);
    let updated_at = updated_at.unwrap_or(created_at);

    let mut identities = Vec::new();
    let mut providers_seen = HashSet::new();
    for p in u.providers.unwrap_or_default() {
        let provider = ProviderName::parse(&p.provider).map_err(|e| format!("providers.{e}"))?;
        let client_id = ClientId::parse(&p.client_id).map_err(|e| format!("providers.{e}"))?;
        if !providers_seen.insert(provider.clone()) {
            return Err(format!("providers: `{provider}` is linked twice"));
        }
        if let Some(token) = p.access_token.as_deref() {
            check_access_token(token).map_err(|e| format!("providers.{e}"))?;
        }
        if let Some(token) = p.refresh_token.as_deref() {
            check_refresh_token(token).map_err(|e| format!("providers.{e}"))?;
        }
        let linked = instant("providers.created_at", p.created_at.as_deref())?.unwrap_or(created_at);
        let identity = Identity {
            user_id: id,
            scope: scope.clone(),
            provider,
            client_id,
            access_token: p.access_token,
            access_token_expiry: expiry(p.access_token_expiry.as_ref())?,
            refresh_token: p.refresh_token,
            created_at: linked,
            updated_at: instant("providers.updated_at", p.updated_at.as_deref())?.unwrap_or(linked),
        };
        // Stored as the service stores links: tokens sealed by this server's key.
        identities.push(seal_identity_with(rules.secret.as_ref(), &identity));
    }

    let user = User {
        id,
        scope,
        username,
        email,
        group,
        extra,
        active: u.active.unwrap_or(true),
        confirmation,
        confirmed: u.confirmed.unwrap_or(false),
        created_at,
        updated_at,
        last_login_at,
    };
    let mfa = match u.mfa {
        Some(m) => second_factors(m, &user.scope, id, created_at, rules)?,
        None => ExportedMfa::default(),
    };
    Ok(ExportedUser { record: UserRecord { user, password_hash: u.password_hash }, identities, mfa })
}

/// What one line was.
enum Line {
    /// Blank: ignored.
    Blank,
    /// The header (first line only).
    Header,
    /// A valid user.
    User(Box<ExportedUser>),
}

/// Classifies one line; `Err` is the reason the line is invalid. A header with another
/// version stops the whole import (the file is in a format this build does not know).
fn parse_line(
    bytes: &[u8],
    first: bool,
    now: OffsetDateTime,
    rules: &ImportRules,
) -> anyhow::Result<Result<Line, String>> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(Err("not UTF-8".into()));
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(Ok(Line::Blank));
    }
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Ok(Err(format!("not JSON: {e}"))),
    };
    let Some(object) = value.as_object() else {
        return Ok(Err("not a JSON object".into()));
    };
    if let Some(version) = object.get("hallpass_export") {
        if !first {
            return Ok(Err("a header (`hallpass_export`) may only be the first line".into()));
        }
        if version.as_u64() != Some(FORMAT_VERSION) {
            bail!(
                "the file is hallpass export version {version}; this hallpass reads version {FORMAT_VERSION}"
            );
        }
        return Ok(Ok(Line::Header));
    }
    Ok(parse_user(value, now, rules).map(|u| Line::User(Box::new(u))))
}

/// The input and where we are in it.
struct Input {
    reader: Box<dyn BufRead + Send>,
    line: u64,
    bytes: u64,
    seen_content: bool,
    eof: bool,
}

/// A batch of users and the line each came from.
#[derive(Default)]
struct Batch {
    users: Vec<ExportedUser>,
    lines: Vec<u64>,
}

impl Input {
    /// Reads lines until a batch is full or the input ends; reports invalid lines.
    fn next_batch(
        &mut self,
        now: OffsetDateTime,
        rules: &ImportRules,
        totals: &mut Totals,
        progress: &Progress,
    ) -> anyhow::Result<Batch> {
        let mut batch = Batch::default();
        // (scope, id) -> line, to refuse the same user twice in one batch.
        let mut in_batch: HashMap<(String, Uuid), u64> = HashMap::new();
        let mut buf = Vec::new();
        while batch.users.len() < BATCH {
            buf.clear();
            let n = self.reader.read_until(b'\n', &mut buf).context("reading the import")?;
            if n == 0 {
                self.eof = true;
                break;
            }
            self.line += 1;
            self.bytes += n as u64;
            let first = !self.seen_content;
            match parse_line(&buf, first, now, rules)? {
                Ok(Line::Blank) => continue,
                Ok(Line::Header) => {}
                Ok(Line::User(u)) => {
                    let key = (u.record.user.scope.as_str().to_owned(), u.record.user.id);
                    if let Some(earlier) = in_batch.get(&key) {
                        totals.invalid += 1;
                        progress.say(&format!(
                            "line {}: invalid: user {} of scope {} is already on line {earlier}",
                            self.line, key.1, key.0
                        ));
                    } else {
                        in_batch.insert(key, self.line);
                        batch.users.push(*u);
                        batch.lines.push(self.line);
                    }
                }
                Err(why) => {
                    totals.invalid += 1;
                    progress.say(&format!("line {}: invalid: {why}", self.line));
                }
            }
            self.seen_content = true;
        }
        Ok(batch)
    }
}

/// Opens `path` (`None` or `-`: stdin, but `None` only when stdin is not a terminal);
/// returns the reader and its length when known.
fn open_input(path: Option<&Path>) -> anyhow::Result<(Box<dyn BufRead + Send>, Option<u64>)> {
    if path.is_none() && std::io::stdin().is_terminal() {
        bail!("no input: give a FILE, pipe the users into stdin, or pass `-` to type them");
    }
    match path.filter(|p| p.as_os_str() != "-") {
        None => Ok((Box::new(std::io::BufReader::with_capacity(1 << 16, std::io::stdin())), None)),
        Some(p) => {
            let file = std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            let len = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
            Ok((Box::new(std::io::BufReader::with_capacity(1 << 16, file)), len))
        }
    }
}

/// `hallpass import [FILE|-] [--strict] [--include-admins]`. Prints the summary line on
/// stderr and returns the totals; with `strict`, any invalid line or conflict makes it an
/// error (after everything valid was imported). `rules` says what a line may hold.
pub async fn run(
    store: &dyn Store,
    path: Option<&Path>,
    strict: bool,
    rules: &ImportRules,
) -> anyhow::Result<Totals> {
    let (reader, total_bytes) = open_input(path)?;
    let mut input = Input { reader, line: 0, bytes: 0, seen_content: false, eof: false };
    let progress = Progress::new(total_bytes);
    let now = OffsetDateTime::now_utc();
    let mut totals = Totals::default();
    let mut batches = 0u64;
    while !input.eof {
        let batch = tokio::task::block_in_place(|| input.next_batch(now, rules, &mut totals, &progress))?;
        if batch.users.is_empty() {
            continue;
        }
        let outcome = match import_batch(store, &batch.users).await {
            Ok(o) => o,
            Err(e) => {
                progress.finish();
                eprintln!("stopped at line {}: {totals}", input.line);
                return Err(e);
            }
        };
        let line_of: HashMap<Uuid, u64> =
            batch.users.iter().zip(&batch.lines).map(|(u, l)| (u.record.user.id, *l)).collect();
        for (id, why) in &outcome.conflicts {
            let line = line_of.get(id).map_or_else(|| "?".to_owned(), u64::to_string);
            progress
                .say(&format!("line {line}: conflict: user {id} not imported: {}", conflict_reason(*why)));
        }
        totals.add(&outcome);
        batches += 1;
        progress.update(Some(input.bytes), format!("{} lines: {totals}", input.line));
        if progress.every_batches(batches) {
            eprintln!("import: {} lines read: {totals}", input.line);
        }
    }
    progress.finish();
    eprintln!("{totals}");
    if strict && (totals.invalid > 0 || totals.conflicts > 0) {
        bail!(
            "--strict: {} invalid lines and {} conflicts (everything else was imported)",
            totals.invalid,
            totals.conflicts
        );
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn parse(v: serde_json::Value) -> Result<ExportedUser, String> {
        parse_user(v, now(), &ImportRules::default())
    }

    #[test]
    fn a_full_line_round_trips_into_records() {
        let u = parse(json!({
            "scope": "shop", "id": "01936a1e-0000-7000-8000-000000000001", "username": "Alice",
            "email": "alice@Example.COM", "group": "staff", "extra": {"a": 1}, "active": false,
            "confirmation": "pending", "confirmed": false, "created_at": "2025-01-01T00:00:00.001Z",
            "updated_at": "2025-01-02T00:00:00Z", "last_login_at": null,
            "password_hash": "$2b$04$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            "providers": [{"provider": "github", "client_id": "42", "access_token": "t",
                           "access_token_expiry": 1800000000, "created_at": "2025-01-03T00:00:00Z",
                           "updated_at": "2025-01-04T00:00:00Z"}]
        }))
        .unwrap();
        let user = &u.record.user;
        assert_eq!(user.scope.as_str(), "shop");
        assert_eq!(user.email.as_ref().unwrap().key(), "alice@example.com");
        assert_eq!(user.username.as_ref().unwrap().as_str(), "Alice");
        assert!(!user.active);
        assert_eq!(user.confirmation, Some(Confirmation::Pending));
        assert_eq!(super::super::timestamp(user.created_at), "2025-01-01T00:00:00.001Z");
        assert_eq!(u.identities.len(), 1);
        assert_eq!(u.identities[0].user_id, user.id);
        assert_eq!(u.identities[0].access_token_expiry, Some(now()));
    }

    /// Second factors are checked field by field; the TOTP secret is sealed by this
    /// server's key (bound to the user), and a server without one refuses the line rather
    /// than keep the secret in clear.
    #[test]
    fn second_factors_are_checked_and_the_secret_sealed() {
        let line = |mfa: serde_json::Value| json!({"scope": "shop", "id": "01936a1e-0000-7000-8000-000000000002", "username": "dora", "mfa": mfa});
        let good = json!({
            "totp": {"secret": "JBSWY3DPEHPK3PXPJBSWY3DP", "confirmed": true, "last_step": 7},
            "recovery_codes": [{"hash": "ab".repeat(32)}],
            "passkeys": [{"id": "01936a1e-0000-7000-8000-0000000000aa", "name": "Laptop",
                          "credential_id": "AQID", "credential": {"cred": {}}, "counter": 3}]
        });
        let err = parse(line(good.clone())).unwrap_err();
        assert!(err.contains("mfa.totp") && err.contains("no secret key"), "{err}");
        let key = hallpass_core::ServerSecret::from_bytes(&[7u8; 32]);
        let rules = ImportRules { secret: Some(key.clone()), ..ImportRules::default() };
        let u = parse_user(line(good), now(), &rules).unwrap();
        let totp = u.mfa.totp.as_ref().unwrap();
        assert!(totp.secret.starts_with("hp1.") && !totp.secret.contains("JBSWY3DP"), "sealed");
        let opened = key.open_text(&totp_aad(&u.record.user.scope, u.record.user.id), &totp.secret).unwrap();
        assert_eq!(opened, "JBSWY3DPEHPK3PXPJBSWY3DP");
        assert_eq!((totp.confirmed, totp.last_step), (true, Some(7)));
        assert_eq!(u.mfa.recovery_codes[0].hash.as_bytes(), &[0xab; 32]);
        assert_eq!(u.mfa.passkeys[0].credential_id, vec![1, 2, 3]);
        assert_eq!(u.mfa.passkeys[0].user_id, u.record.user.id);
        for (mfa, field) in [
            (json!({"totp": {"secret": "not base32!", "confirmed": true}}), "mfa.totp.secret"),
            (json!({"recovery_codes": [{"hash": "abc"}]}), "mfa.recovery_codes.hash"),
            // 64 bytes but not 64 digits: refused, never sliced mid-character.
            (
                json!({"recovery_codes": [{"hash": format!("a{}", "€".repeat(21))}]}),
                "mfa.recovery_codes.hash",
            ),
            (
                json!({"passkeys": [{"id": "x", "name": "a", "credential_id": "AQID", "credential": {}, "counter": 0}]}),
                "mfa.passkeys.id",
            ),
            (
                json!({"passkeys": [{"id": "01936a1e-0000-7000-8000-0000000000aa", "name": "a", "credential_id": "%%", "credential": {}, "counter": 0}]}),
                "mfa.passkeys.credential_id",
            ),
        ] {
            let err = parse_user(line(mfa), now(), &rules).unwrap_err();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn defaults_and_a_stable_id_for_lines_from_other_systems() {
        let line = json!({"scope": "default", "username": "legacy"});
        let a = parse(line.clone()).unwrap();
        let b = parse(line).unwrap();
        assert_eq!(a.record.user.id, b.record.user.id, "the same line gives the same id");
        assert_eq!(a.record.user.id.get_version_num(), 7);
        assert!(a.record.user.active);
        assert_eq!(a.record.user.group.as_str(), "default");
        assert_eq!(a.record.user.created_at, now());
        assert_eq!(a.record.password_hash, None);
        let other = parse(json!({"scope": "default", "username": "LEGACY"})).unwrap();
        assert_eq!(other.record.user.id, a.record.user.id, "derived from the normalised username");
    }

    #[test]
    fn invalid_lines_say_which_field() {
        let cases = [
            (json!({"username": "x"}), "scope"),
            (json!({"scope": "Bad Scope", "username": "x"}), "scope"),
            (json!({"scope": "s"}), "a username or an email is required"),
            (json!({"scope": "s", "username": "a b"}), "username"),
            (json!({"scope": "s", "email": "nope"}), "email"),
            (json!({"scope": "s", "username": "x", "group": ""}), "group"),
            (json!({"scope": "s", "username": "x", "pasword_hash": null}), "unknown field"),
            (json!({"scope": "s", "username": "x", "password_hash": "plaintext"}), "password_hash"),
            (json!({"scope": "s", "username": "x", "id": "7"}), "id"),
            (json!({"scope": "s", "username": "x", "created_at": "yesterday"}), "created_at"),
            (json!({"scope": "s", "username": "x", "confirmation": "maybe"}), "confirmation"),
            (
                json!({"scope": "s", "username": "x", "providers": [{"provider": "Git Hub", "client_id": "1"}]}),
                "provider",
            ),
            (
                json!({"scope": "s", "username": "x", "providers": [{"provider": "gh", "client_id": ""}]}),
                "client_id",
            ),
            (
                json!({"scope": "s", "username": "x", "providers": [{"provider": "gh", "client_id": "1"}, {"provider": "gh", "client_id": "2"}]}),
                "linked twice",
            ),
            (json!({"scope": "s", "username": "x", "extra": {"k": "a\u{0}b"}}), "extra"),
        ];
        for (line, want) in cases {
            let err = parse(line.clone()).err().unwrap_or_else(|| panic!("{line} should be refused"));
            assert!(err.contains(want), "{line}: {err:?} should mention {want:?}");
            assert!(!err.contains("plaintext"), "never echo the hash");
        }
    }

    #[test]
    fn the_apis_limits_and_the_hash_ceiling_apply() {
        let salt = "c2FsdHNhbHRzYWx0c2FsdA";
        let hash = "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        let cases = [
            (json!({"scope": "s", "username": "x", "extra": {"b": "x".repeat(64 * 1024)}}), "extra"),
            (
                json!({"scope": "s", "username": "x", "providers": [{"provider": "gh", "client_id": "1", "access_token": "t".repeat(8193)}]}),
                "access_token",
            ),
            (
                json!({"scope": "s", "username": "x", "providers": [{"provider": "gh", "client_id": "1", "access_token": "a\nb"}]}),
                "access_token",
            ),
            (
                json!({"scope": "s", "username": "x", "password_hash": format!("$argon2id$v=19$m=2097152,t=1,p=1${salt}${hash}")}),
                "m=2097152",
            ),
            (
                json!({"scope": "s", "username": "x", "password_hash": format!("$2b$15${}", "C".repeat(53))}),
                "bcrypt",
            ),
        ];
        for (line, want) in cases {
            let err = parse(line.clone()).err().unwrap_or_else(|| panic!("{line} should be refused"));
            assert!(err.contains(want), "{err:?} should mention {want:?}");
            assert!(!err.contains(hash), "never echo the hash");
        }
        assert!(parse(json!({"scope": "s", "username": "x", "extra": {"b": "x".repeat(1000)}})).is_ok());
    }

    #[test]
    fn admins_only_with_include_admins() {
        let line = json!({"scope": "_admin", "username": "root", "password_hash": null});
        let err = parse(line.clone()).err().unwrap();
        assert!(err.contains("--include-admins"), "{err}");
        let rules = ImportRules { include_admins: true, ..ImportRules::default() };
        let admin = parse_user(line, now(), &rules).unwrap();
        assert!(admin.record.user.scope.is_admin());
    }

    #[test]
    fn headers_are_checked() {
        let h = br#"{"hallpass_export": 1, "exported_at": "2025-01-01T00:00:00.000Z"}"#;
        assert!(matches!(parse_line(h, true, now(), &ImportRules::default()).unwrap(), Ok(Line::Header)));
        assert!(
            parse_line(h, false, now(), &ImportRules::default()).unwrap().is_err(),
            "a header later on is an invalid line"
        );
        assert!(
            parse_line(br#"{"hallpass_export": 2}"#, true, now(), &ImportRules::default()).is_err(),
            "another version stops"
        );
        assert!(matches!(
            parse_line(b"  \n", true, now(), &ImportRules::default()).unwrap(),
            Ok(Line::Blank)
        ));
        assert!(parse_line(b"[1]", true, now(), &ImportRules::default()).unwrap().is_err());
        assert!(parse_line(b"\xff", true, now(), &ImportRules::default()).unwrap().is_err());
    }
}
