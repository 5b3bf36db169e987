//! `hallpass export`: every user of every scope, with password hash and provider links, as
//! JSON Lines (see [`super`] for the format). Reads pages of [`BATCH`] through
//! [`Store::export_users`]; the output goes to stdout or a file, progress to stderr.

use super::{BATCH, FORMAT_VERSION, Progress, timestamp};
use anyhow::Context as _;
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
    /// The line of an exported user.
    pub fn of(e: &'a ExportedUser) -> Self {
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
            text.push_str(&serde_json::to_string(&UserLine::of(e))?);
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
    eprintln!("exported {users} users ({providers} provider links) of {scopes} to {to}");
    if lost > 0 {
        eprintln!(
            "warning: {lost} provider links had tokens sealed by a key this server does not have; they were \
             exported without them"
        );
    }
    Ok(users)
}
