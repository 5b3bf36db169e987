//! `hallpass export`: every user of every scope, with password hash and provider links, as
//! JSON Lines (see [`super`] for the format). Reads pages of [`BATCH`] through
//! [`Store::export_users`]; the output goes to stdout or a file, progress to stderr.

use super::{BATCH, FORMAT_VERSION, Progress, timestamp};
use anyhow::Context as _;
use hallpass_core::mfa::totp_aad;
use hallpass_core::service::open_identity_with;
use hallpass_core::store::ExportedUser;
use hallpass_core::{Identity, JsonObject};
use hallpass_core::{ServerSecret, Store};
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use time::OffsetDateTime;
use uuid::Uuid;

/// The first line of an export.
#[derive(Debug, Serialize)]
pub struct Header {
    /// The format version ([`FORMAT_VERSION`]).
    pub hallpass_export: u64,
    /// When the export started.
    pub exported_at: String,
}

/// One user as a line of the export.
#[derive(Debug, Serialize)]
pub struct UserLine<'a> {
    scope: &'a str,
    id: Uuid,
    username: Option<&'a str>,
    email: Option<&'a str>,
    group: &'a str,
    extra: &'a JsonObject,
    active: bool,
    confirmation: Option<&'static str>,
    confirmed: bool,
    created_at: String,
    updated_at: String,
    last_login_at: Option<String>,
    password_hash: Option<&'a str>,
    providers: Vec<ProviderLine<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa: Option<MfaLine<'a>>,
}

/// A user's second factors as written: the TOTP secret opened (base32), recovery codes as
/// their hashes (hex), passkeys with their credential as stored (public key, counter).
#[derive(Debug, Serialize)]
pub struct MfaLine<'a> {
    totp: Option<TotpLine>,
    recovery_codes: Vec<RecoveryCodeLine>,
    passkeys: Vec<PasskeyLine<'a>>,
}

#[derive(Debug, Serialize)]
pub struct TotpLine {
    secret: String,
    confirmed: bool,
    last_step: Option<i64>,
    created_at: String,
}

#[derive(Debug, Serialize)]
pub struct RecoveryCodeLine {
    hash: String,
    created_at: String,
}

#[derive(Debug, Serialize)]
pub struct PasskeyLine<'a> {
    id: Uuid,
    name: &'a str,
    credential_id: String,
    credential: serde_json::Value,
    counter: u32,
    backup_eligible: bool,
    backup_state: bool,
    created_at: String,
    last_used_at: Option<String>,
}

impl<'a> MfaLine<'a> {
    /// `None` for a user without second factors; `opened` is the TOTP secret in base32
    /// (absent when it could not be opened).
    fn of(e: &'a ExportedUser, opened: Option<String>) -> Option<Self> {
        use base64::Engine as _;
        let m = &e.mfa;
        if m.is_empty() {
            return None;
        }
        let totp = m.totp.as_ref().zip(opened).map(|(t, secret)| TotpLine {
            secret,
            confirmed: t.confirmed,
            last_step: t.last_step,
            created_at: timestamp(t.created_at),
        });
        let recovery_codes = m
            .recovery_codes
            .iter()
            .map(|c| RecoveryCodeLine { hash: c.hash.to_hex(), created_at: timestamp(c.created_at) })
            .collect();
        let passkeys = m
            .passkeys
            .iter()
            .map(|p| PasskeyLine {
                id: p.id,
                name: &p.name,
                credential_id: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&p.credential_id),
                credential: serde_json::from_str(&p.credential).unwrap_or(serde_json::Value::Null),
                counter: p.counter,
                backup_eligible: p.backup_eligible,
                backup_state: p.backup_state,
                created_at: timestamp(p.created_at),
                last_used_at: p.last_used_at.map(timestamp),
            })
            .collect();
        Some(Self { totp, recovery_codes, passkeys })
    }
}

/// One provider link of a user.
#[derive(Debug, Serialize)]
pub struct ProviderLine<'a> {
    provider: &'a str,
    client_id: &'a str,
    access_token: Option<&'a str>,
    access_token_expiry: Option<String>,
    refresh_token: Option<&'a str>,
    created_at: String,
    updated_at: String,
}

impl<'a> UserLine<'a> {
    /// The line of an exported user; `totp_secret` is its TOTP secret opened (base32), if any.
    pub fn of(e: &'a ExportedUser, totp_secret: Option<String>) -> Self {
        let u = &e.record.user;
        Self {
            scope: u.scope.as_str(),
            id: u.id,
            username: u.username.as_ref().map(|x| x.as_str()),
            email: u.email.as_ref().map(|x| x.as_str()),
            group: u.group.as_str(),
            extra: &u.extra,
            active: u.active,
            confirmation: u.confirmation.map(|c| c.as_str()),
            confirmed: u.confirmed,
            created_at: timestamp(u.created_at),
            updated_at: timestamp(u.updated_at),
            last_login_at: u.last_login_at.map(timestamp),
            password_hash: e.record.password_hash.as_deref(),
            providers: e.identities.iter().map(ProviderLine::of).collect(),
            mfa: MfaLine::of(e, totp_secret),
        }
    }
}

impl<'a> ProviderLine<'a> {
    fn of(i: &'a Identity) -> Self {
        Self {
            provider: i.provider.as_str(),
            client_id: i.client_id.as_str(),
            access_token: i.access_token.as_deref(),
            access_token_expiry: i.access_token_expiry.map(timestamp),
            refresh_token: i.refresh_token.as_deref(),
            created_at: timestamp(i.created_at),
            updated_at: timestamp(i.updated_at),
        }
    }
}

/// Opens the output: stdout, or `path` created (or truncated) readable by its owner only.
fn open_output(path: Option<&Path>) -> anyhow::Result<Box<dyn Write + Send>> {
    let Some(path) = path.filter(|p| p.as_os_str() != "-") else {
        return Ok(Box::new(std::io::BufWriter::with_capacity(1 << 16, std::io::stdout())));
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Box::new(std::io::BufWriter::with_capacity(1 << 16, file)))
}

/// `hallpass export [--output FILE]`: writes every user; returns how many. Provider tokens
/// sealed at rest are written opened by `secret` (the server's key), so that an import
/// into a server with another key can seal them with its own; a token that cannot be
/// opened is left out, with a warning.
pub async fn run(
    store: &dyn Store,
    secret: Option<&ServerSecret>,
    output: Option<&Path>,
) -> anyhow::Result<u64> {
    let mut out = open_output(output)?;
    let header =
        Header { hallpass_export: FORMAT_VERSION, exported_at: timestamp(OffsetDateTime::now_utc()) };
    writeln!(out, "{}", serde_json::to_string(&header)?)?;
    let progress = Progress::new(None);
    let (mut users, mut pages, mut providers, mut lost) = (0u64, 0u64, 0u64, 0u64);
    let (mut with_factors, mut lost_totp) = (0u64, 0u64);
    let mut scopes = BTreeSet::new();
    let mut after = None;
    let limit = u32::try_from(BATCH).unwrap_or(u32::MAX);
    loop {
        let mut page = store.export_users(after.clone(), limit).await.context("reading users to export")?;
        let Some(last) = page.last() else { break };
        after = Some((last.record.user.scope.clone(), last.record.user.id));
        // Serialise the page, then write it off the async workers (stdout may be a slow pipe).
        let mut text = String::with_capacity(page.len() * 512);
        for e in &mut page {
            e.identities = std::mem::take(&mut e.identities)
                .into_iter()
                .map(|identity| {
                    let (opened, unreadable) = open_identity_with(secret, identity);
                    lost += u64::from(unreadable);
                    opened
                })
                .collect();
            // The TOTP secret opened by this server's key, to be sealed by the importer's.
            let u = &e.record.user;
            let totp_secret = e.mfa.totp.as_ref().and_then(|t| {
                let opened = secret.and_then(|k| k.open_text(&totp_aad(&u.scope, u.id), &t.secret).ok());
                lost_totp += u64::from(opened.is_none());
                opened
            });
            with_factors += u64::from(!e.mfa.is_empty());
            text.push_str(&serde_json::to_string(&UserLine::of(e, totp_secret))?);
            text.push('\n');
            providers += e.identities.len() as u64;
            if !scopes.contains(e.record.user.scope.as_str()) {
                scopes.insert(e.record.user.scope.as_str().to_owned());
            }
        }
        tokio::task::block_in_place(|| out.write_all(text.as_bytes())).context("writing the export")?;
        users += page.len() as u64;
        pages += 1;
        progress.update(None, format!("exported {users} users"));
        if progress.every_batches(pages) {
            eprintln!("export: {users} users so far");
        }
        if page.len() < BATCH {
            break;
        }
    }
    tokio::task::block_in_place(|| out.flush()).context("writing the export")?;
    progress.finish();
    let to = output.filter(|p| p.as_os_str() != "-").map_or("stdout".to_owned(), |p| p.display().to_string());
    let scopes = match scopes.len() {
        1 => "1 scope".to_owned(),
        n => format!("{n} scopes"),
    };
    eprintln!(
        "exported {users} users ({providers} provider links, {with_factors} with second factors) of {scopes} to {to}"
    );
    if lost_totp > 0 {
        eprintln!(
            "warning: {lost_totp} authenticator-app secrets were sealed by a key this server does not have; those \
             users were exported without them (their recovery codes and passkeys are in the export)"
        );
    }
    if lost > 0 {
        eprintln!(
            "warning: {lost} provider links had tokens sealed by a key this server does not have; they were \
             exported without them"
        );
    }
    Ok(users)
}
