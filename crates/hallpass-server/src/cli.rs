//! The command line: `serve`, `migrate`, `keys ...`, `users ...`, moving users in and
//! out (`export`, `import`, `import-sleepless`, in [`crate::transfer`]), and copies of a
//! SQLite database (`backup`, `restore`, in [`crate::backup`]). Every command but
//! `serve` (and `restore`, which needs the database to itself) opens the same database the server uses and works while a server runs on it
//! (SQLite in WAL mode with a busy timeout; later the network databases). What a command
//! produces goes to stdout; logs go to stderr.

use crate::config::Config;
use crate::{backup, serve, transfer};
use anyhow::{Context, bail};
use clap::{Args, CommandFactory, Parser, Subcommand};
use hallpass_core::service::NewUser;
use hallpass_core::{
    Email, Group, Hallpass, Password, Scope, User, UserFilter, UserPatch, UserRef, Username,
};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

/// `0.1.0 (abc1234 2026-12-06)`: the crate's version and the commit it was built from
/// (build.rs; only the version when built without git).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), env!("BUILD_COMMIT_DETAIL"));

/// hallpass: user accounts and login sessions for applications.
#[derive(Debug, Parser)]
#[command(name = "hallpass", version = VERSION, about)]
pub struct Cli {
    /// A TOML configuration file (environment variables HALLPASS_* win over it).
    #[arg(long, global = true, env = "HALLPASS_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrating the database first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage the admins of the web page at `/admin`.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The mail outbox.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Webhook endpoints of a scope and their deliveries (needs the server secret key).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Export every user of every scope (with password hashes and provider links) as JSON
    /// Lines, to move them to another database or keep them. The admins of the web page
    /// (scope `_admin`) are written too; `import` takes them only with `--include-admins`.
    Export {
        /// Write to this file (created readable by its owner only) instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Import users from JSON Lines (the format `export` writes); re-running is harmless.
    Import(ImportArgs),
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Take a consistent copy of the SQLite database while the server keeps running
    /// (PostgreSQL and MariaDB: use pg_dump or mariadb-dump, see DEPLOYMENT.md).
    Backup(backup::BackupArgs),
    /// Put a backup in place of the SQLite database (stop the server first); the replaced
    /// database is kept beside it unless --no-keep.
    Restore(backup::RestoreArgs),
    /// Import the users of a sleepless-sessions MariaDB/MySQL database into one scope.
    ImportSleepless {
        /// The sleepless-sessions database, `mysql://user:password@host/db`.
        #[arg(long, env = "HALLPASS_SLEEPLESS_URL")]
        from: String,
        /// The scope (application) the users go to.
        #[arg(long)]
        scope: String,
        /// Exit with an error when any row is invalid or conflicts (the rest is still imported).
        #[arg(long)]
        strict: bool,
    },
    /// Print the shell completion script for SHELL to stdout (for packagers; hidden).
    #[command(hide = true)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages, `hallpass.1` and one per subcommand, into a directory (for
    /// packagers; hidden).
    #[command(hide = true)]
    Man {
        /// The directory (created when missing).
        #[arg(long)]
        out: PathBuf,
    },
}

/// `hallpass mail ...`.
#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Show the outbox: rows per state, the oldest undelivered, and the latest rows (state,
    /// attempts, last error, kind, recipient; never a code).
    Status {
        /// How many of the latest rows to list.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put a mail left `in_doubt` (handed to the SMTP server, answer lost) back in the
    /// queue. It may then arrive twice: check the recipient's mailbox or the SMTP server's
    /// log first.
    Retry {
        /// The outbox row's id.
        id: uuid::Uuid,
    },
}

/// `hallpass config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Read the configuration as `serve` would (defaults, `--config FILE`, `HALLPASS_*`
    /// variables) and print every effective setting with where it came from, secrets
    /// masked. Exits non-zero (2) naming the setting on any error, an unknown setting
    /// included.
    Check,
}

/// `hallpass import` (and `hallpass users import`).
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to read; `-` reads stdin, and so does nothing when stdin is not a terminal.
    pub file: Option<PathBuf>,
    /// Exit with an error when any line is invalid or conflicts (the rest is still imported).
    #[arg(long)]
    pub strict: bool,
    /// Also import the admins of the web page (users of scope `_admin`, which `export`
    /// writes): only for a file that moves a whole deployment. Without it such lines are
    /// refused as invalid.
    #[arg(long)]
    pub include_admins: bool,
}

/// `hallpass webhooks ...`
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Register an endpoint; its signing secret is printed alone on the last line of
    /// stdout (shown once).
    Create {
        /// The scope whose events it receives.
        #[arg(long)]
        scope: String,
        /// Where deliveries go (`http` or `https`).
        #[arg(long)]
        url: String,
        /// The events, comma-separated (`user.created,login.failed`, ...).
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        /// A note for people.
        #[arg(long)]
        description: Option<String>,
    },
    /// List the scope's endpoints (never their secrets), as JSON lines.
    List {
        /// The scope.
        #[arg(long)]
        scope: String,
    },
    /// Delete an endpoint and its deliveries.
    Delete {
        /// The scope.
        #[arg(long)]
        scope: String,
        /// The endpoint's id.
        id: Uuid,
    },
    /// A new signing secret (printed alone on the last line of stdout); the old one signs
    /// too for `webhook_secret_overlap`.
    RotateSecret {
        /// The scope.
        #[arg(long)]
        scope: String,
        /// The endpoint's id.
        id: Uuid,
    },
    /// The endpoint's latest deliveries, newest first, as JSON lines.
    Deliveries {
        /// The scope.
        #[arg(long)]
        scope: String,
        /// The endpoint's id.
        id: Uuid,
        /// Only this state: queued, sending, in_doubt, sent or failed.
        #[arg(long)]
        status: Option<String>,
        /// How many (1 to 1000).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Send a delivery that was not delivered (waiting, failed or in doubt) again now.
    Retry {
        /// The scope.
        #[arg(long)]
        scope: String,
        /// The endpoint's id.
        id: Uuid,
        /// The delivery's id.
        delivery: Uuid,
    },
}

/// `hallpass keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key; the key is printed alone on the last line of stdout.
    Create {
        /// The scope (application) the key reaches.
        #[arg(long)]
        scope: String,
        /// A label for people.
        #[arg(long)]
        name: Option<String>,
    },
    /// List API keys (never the keys themselves).
    List {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key by id. Committed when this returns; running servers that cached
    /// the key refuse it within milliseconds, once they hear of the change (at most
    /// `HALLPASS_CACHE_TTL`, 10 s, should a notification be lost).
    Revoke {
        /// The key's id, as `keys list` shows it.
        id: Uuid,
    },
}

/// `hallpass admin ...`: the accounts of the admin web page, users of the internal scope
/// `_admin` that no API key can reach.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin; the password is read from stdin, or a prompt on a terminal.
    Create {
        /// The admin's username.
        #[arg(long)]
        username: String,
    },
    /// List the admins.
    List,
    /// Set an admin's password (stdin or a prompt); ends the admin's sessions.
    SetPassword {
        /// The admin's username.
        username: String,
    },
    /// Delete an admin (the audit trail keeps their name).
    Delete {
        /// The admin's username.
        username: String,
    },
    /// Remove an admin's second factors (authenticator app, recovery codes, passkeys), for
    /// an admin who lost them; ends the admin's sessions. Audited.
    RemoveFactors {
        /// The admin's username.
        username: String,
    },
}

/// Which scope a user command works in.
#[derive(Debug, Args)]
pub struct ScopeArg {
    /// The scope (application).
    #[arg(long, default_value = "default")]
    pub scope: String,
}

/// `hallpass users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List or search users.
    List {
        #[command(flatten)]
        scope: ScopeArg,
        /// Substring of the username or email.
        #[arg(long)]
        query: Option<String>,
        /// Only this group.
        #[arg(long)]
        group: Option<String>,
        /// Only active (true) or inactive (false) users.
        #[arg(long)]
        active: Option<bool>,
        /// At most this many (default: all).
        #[arg(long)]
        limit: Option<usize>,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one user (by id, username or email) as JSON.
    Show {
        #[command(flatten)]
        scope: ScopeArg,
        /// Id, username or email.
        user: String,
    },
    /// Create a user; the password, if any, is read from stdin (or a prompt).
    Create {
        #[command(flatten)]
        scope: ScopeArg,
        /// Username.
        #[arg(long)]
        username: Option<String>,
        /// Email.
        #[arg(long)]
        email: Option<String>,
        /// Group (default `default`).
        #[arg(long)]
        group: Option<String>,
        /// Read a password from stdin (or prompt for one).
        #[arg(long)]
        password: bool,
        /// Create the user inactive.
        #[arg(long)]
        inactive: bool,
    },
    /// Activate or deactivate a user (deactivation ends every session).
    SetActive {
        #[command(flatten)]
        scope: ScopeArg,
        /// Id, username or email.
        user: String,
        /// true or false.
        #[arg(action = clap::ArgAction::Set)]
        active: bool,
    },
    /// Set a user's password, read from stdin (or a prompt); ends every session.
    SetPassword {
        #[command(flatten)]
        scope: ScopeArg,
        /// Id, username or email.
        user: String,
    },
    /// Delete a user with their sessions.
    Delete {
        #[command(flatten)]
        scope: ScopeArg,
        /// Id, username or email.
        user: String,
    },
    /// Import users from JSON Lines (the same as `hallpass import`).
    Import(ImportArgs),
}

fn scope(s: &str) -> anyhow::Result<Scope> {
    Ok(Scope::parse(s)?)
}

fn user_ref(s: &str) -> anyhow::Result<UserRef> {
    Ok(UserRef::parse(s)?)
}

/// Reads a password: a hidden prompt on a terminal, else the first line of stdin.
fn read_password(prompt: &str) -> anyhow::Result<Password> {
    let line = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt)?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    Ok(Password::new(&line)?)
}

/// A user as JSON, the same shape the HTTP API answers.
pub fn user_json(service: &Hallpass, u: &User) -> serde_json::Value {
    serde_json::to_value(crate::http::dto::UserDto::from_user(service, u)).unwrap_or_default()
}

fn print_users_table(users: &[User]) {
    println!("{:<36}  {:<24}  {:<32}  {:<12}  active", "id", "username", "email", "group");
    for u in users {
        println!(
            "{:<36}  {:<24}  {:<32}  {:<12}  {}",
            u.id,
            u.username.as_ref().map_or("-", |x| x.as_str()),
            u.email.as_ref().map_or("-", |x| x.as_str()),
            u.group.as_str(),
            u.active
        );
    }
}

async fn service(config: &Config) -> anyhow::Result<Arc<Hallpass>> {
    serve::open_service(config).await
}

/// Runs a parsed command line.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => serve::serve(config).await,
        Command::Config(ConfigCommand::Check) => {
            // `main` loaded the configuration already, so it is valid; print it.
            print!("{}", crate::config_check::run(cli.config.as_deref())?);
            eprintln!("configuration ok");
            Ok(())
        }
        Command::Migrate => {
            serve::open_store(&config.database_url).await?;
            eprintln!("migrations applied to {}", serve::redact_url(&config.database_url));
            Ok(())
        }
        Command::Keys(cmd) => keys(cmd, &*service(&config).await?).await,
        Command::Webhooks(cmd) => webhooks(cmd, &*service(&config).await?).await,
        Command::Users(UsersCommand::Import(args)) | Command::Import(args) => {
            let store = serve::open_store(&config.database_url).await?;
            let settings = config.settings()?;
            let rules = transfer::import::ImportRules {
                limits: settings.limits,
                hash_ceiling: settings.hash_ceiling(),
                include_admins: args.include_admins,
                secret: crate::secret_key::load(&config, false, true)?,
            };
            transfer::import::run(&*store, args.file.as_deref(), args.strict, &rules).await.map(drop)
        }
        Command::Users(cmd) => users(cmd, &*service(&config).await?).await,
        Command::Admin(cmd) => admins(cmd, &*service(&config).await?).await,
        Command::Mail(cmd) => mail(cmd, &*service(&config).await?).await,
        Command::Export { output } => {
            let store = serve::open_store(&config.database_url).await?;
            let secret = crate::secret_key::load(&config, false, false)?;
            transfer::export::run(&*store, secret.as_ref(), output.as_deref()).await.map(drop)
        }
        Command::Backup(args) => backup::backup(&config.database_url, args).await,
        Command::Restore(args) => backup::restore(&config.database_url, args).await,
        Command::ImportSleepless { from, scope, strict } => {
            let store = serve::open_store(&config.database_url).await?;
            transfer::sleepless::run(&*store, &from, &scope, strict).await.map(drop)
        }
        Command::Completions { shell } => completions(shell),
        Command::Man { out } => man_pages(&out),
    }
}

/// Runs the commands that need neither the configuration nor a database, before `main`
/// reads either: a package build generates completions and man pages with the binary it
/// ships, where no configuration exists. `None` for every other command.
pub fn run_without_config(command: &Command) -> Option<anyhow::Result<()>> {
    match command {
        Command::Completions { shell } => Some(completions(*shell)),
        Command::Man { out } => Some(man_pages(out)),
        _ => None,
    }
}

fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    // Into memory first: `generate` panics when a write fails (a closed pipe, a full
    // disk), and that should be an ordinary error.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "hallpass", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(())
}

/// `hallpass.1`, `hallpass-keys.1`, `hallpass-keys-create.1`, ...: a page for every
/// command that is not hidden.
fn man_pages(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))
}

fn webhook_json(w: &hallpass_core::WebhookEndpoint) -> serde_json::Value {
    serde_json::json!({
        "id": w.id,
        "scope": w.scope,
        "url": w.url,
        "events": w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "description": w.description,
        "created_at": w.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
    })
}

async fn webhooks(cmd: WebhooksCommand, svc: &Hallpass) -> anyhow::Result<()> {
    use hallpass_core::service::WebhookInput;
    let mut out = std::io::stdout().lock();
    match cmd {
        WebhooksCommand::Create { scope: s, url, events, description } => {
            let input = WebhookInput { url: Some(url), events: Some(events), description: Some(description) };
            let (w, secret) = svc.create_webhook(&scope(&s)?, input).await?;
            eprintln!(
                "created webhook endpoint {} for scope `{}` (the secret is shown once):",
                w.id, w.scope
            );
            writeln!(out, "{secret}")?;
        }
        WebhooksCommand::List { scope: s } => {
            for w in svc.list_webhooks(&scope(&s)?).await? {
                writeln!(out, "{}", webhook_json(&w))?;
            }
        }
        WebhooksCommand::Delete { scope: s, id } => {
            svc.delete_webhook(&scope(&s)?, id).await.with_context(|| format!("deleting webhook {id}"))?;
            eprintln!("deleted webhook endpoint {id} and its deliveries");
        }
        WebhooksCommand::RotateSecret { scope: s, id } => {
            let (w, secret) = svc.rotate_webhook_secret(&scope(&s)?, id).await?;
            let until =
                w.previous_until.and_then(|u| u.format(&time::format_description::well_known::Rfc3339).ok());
            eprintln!(
                "new secret for webhook endpoint {id} (shown once); the previous one signs too until {}",
                until.as_deref().unwrap_or("-")
            );
            writeln!(out, "{secret}")?;
        }
        WebhooksCommand::Deliveries { scope: s, id, status, limit } => {
            let state = match status.as_deref() {
                None => None,
                Some(st) => Some(hallpass_core::OutboxState::from_stored(st).with_context(|| {
                    format!("unknown status {st:?}: queued, sending, in_doubt, sent or failed")
                })?),
            };
            let page = svc.webhook_deliveries(&scope(&s)?, id, state, Some(limit), None).await?;
            for d in page.items {
                let m = &d.message;
                let v = serde_json::json!({
                    "id": m.id,
                    "type": d.event_type,
                    "status": m.state.as_str(),
                    "attempts": m.attempts,
                    "last_status_code": d.last_status,
                    "last_error": m.last_error,
                    "response_ms": d.last_response_ms,
                    "created_at": m.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
                });
                writeln!(out, "{v}")?;
            }
        }
        WebhooksCommand::Retry { scope: s, id, delivery } => {
            svc.retry_webhook_delivery(&scope(&s)?, id, delivery).await?;
            eprintln!("delivery {delivery} queued again; a running server sends it within a second");
        }
    }
    Ok(())
}

async fn keys(cmd: KeysCommand, svc: &Hallpass) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create { scope: s, name } => {
            let (key, secret) = svc.create_api_key(scope(&s)?, name).await?;
            eprintln!("created API key {} for scope `{}` (the key is shown once):", key.id, key.scope);
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", secret.expose())?;
        }
        KeysCommand::List { json } => {
            let keys = svc.list_api_keys().await?;
            if !json {
                println!("{:<36}  {:<20}  {:<24}  {:<20}  revoked", "id", "scope", "name", "created");
            }
            for k in keys {
                let created = k.created_at.format(&time::format_description::well_known::Rfc3339)?;
                let revoked = match k.revoked_at {
                    Some(t) => Some(t.format(&time::format_description::well_known::Rfc3339)?),
                    None => None,
                };
                if json {
                    let v = serde_json::json!({"id": k.id, "scope": k.scope, "name": k.name,
                        "created_at": created, "revoked_at": revoked});
                    println!("{v}");
                } else {
                    println!(
                        "{:<36}  {:<20}  {:<24}  {:<20}  {}",
                        k.id,
                        k.scope,
                        k.name.as_deref().unwrap_or("-"),
                        &created[..created.len().min(20)],
                        revoked.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        KeysCommand::Revoke { id } => {
            svc.revoke_api_key(id).await.with_context(|| format!("revoking key {id}"))?;
            eprintln!(
                "revoked key {id}: refused by running servers within milliseconds, as each hears of the \
                 change (at most the cache TTL, 10 s by default, should a notification be lost)"
            );
        }
    }
    Ok(())
}

async fn admins(cmd: AdminCommand, svc: &Hallpass) -> anyhow::Result<()> {
    let admin = Scope::admin();
    match cmd {
        AdminCommand::Create { username } => {
            let new = NewUser {
                username: Some(Username::parse(&username)?),
                password: Some(read_password("Password: ")?),
                ..NewUser::default()
            };
            let u = svc.register(&admin, new).await?;
            eprintln!("created admin {} ({})", username, u.id);
        }
        AdminCommand::List => {
            let page = svc.list_users(&admin, &UserFilter::default(), Some(1000), None).await?;
            print_users_table(&page.items);
        }
        AdminCommand::SetPassword { username } => {
            let r = user_ref(&username)?;
            svc.get_user(&admin, &r).await?;
            let pw = read_password("New password: ")?;
            svc.set_password(&admin, &r, pw).await?;
            eprintln!("password set; every session of the admin was ended");
        }
        AdminCommand::Delete { username } => {
            svc.delete_user(&admin, &user_ref(&username)?).await?;
            eprintln!("admin deleted");
        }
        AdminCommand::RemoveFactors { username } => {
            let r = user_ref(&username)?;
            let removed = svc.remove_mfa(&admin, &r, None).await?;
            let detail = serde_json::json!({"removed": removed, "admin": username});
            let detail = detail.as_object().cloned().unwrap_or_default();
            svc.audit("cli", "admin_mfa_remove", None, None, detail).await?;
            if removed {
                eprintln!("second factors removed; every session of the admin was ended");
            } else {
                eprintln!("the admin had no second factor");
            }
        }
    }
    Ok(())
}

async fn users(cmd: UsersCommand, svc: &Hallpass) -> anyhow::Result<()> {
    match cmd {
        UsersCommand::List { scope: s, query, group, active, limit, json } => {
            let s = scope(&s.scope)?;
            let filter = UserFilter { query, group, active };
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = svc.list_users(&s, &filter, Some(500), cursor.as_deref()).await?;
                all.extend(page.items);
                if limit.is_some_and(|l| all.len() >= l) {
                    all.truncate(limit.unwrap_or(usize::MAX));
                    break;
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            if json {
                for u in &all {
                    println!("{}", user_json(svc, u));
                }
            } else {
                print_users_table(&all);
            }
        }
        UsersCommand::Show { scope: s, user } => {
            let u = svc.get_user(&scope(&s.scope)?, &user_ref(&user)?).await?;
            println!("{}", serde_json::to_string_pretty(&user_json(svc, &u))?);
        }
        UsersCommand::Create { scope: s, username, email, group, password, inactive } => {
            let new = NewUser {
                username: username.as_deref().map(Username::parse).transpose()?,
                email: email.as_deref().map(Email::parse).transpose()?,
                group: group.as_deref().map(Group::parse).transpose()?,
                password: if password { Some(read_password("Password: ")?) } else { None },
                extra: None,
                active: Some(!inactive),
            };
            let u = svc.register(&scope(&s.scope)?, new).await?;
            println!("{}", serde_json::to_string_pretty(&user_json(svc, &u))?);
        }
        UsersCommand::SetActive { scope: s, user, active } => {
            let patch = UserPatch { active: Some(active), ..Default::default() };
            let u = svc.update_user(&scope(&s.scope)?, &user_ref(&user)?, patch).await?;
            eprintln!("user {} is now {}", u.id, if active { "active" } else { "inactive" });
        }
        UsersCommand::SetPassword { scope: s, user } => {
            let (s, r) = (scope(&s.scope)?, user_ref(&user)?);
            svc.get_user(&s, &r).await?;
            let pw = read_password("New password: ")?;
            svc.set_password(&s, &r, pw).await?;
            eprintln!("password set; every session of the user was ended");
        }
        UsersCommand::Delete { scope: s, user } => {
            svc.delete_user(&scope(&s.scope)?, &user_ref(&user)?).await?;
            eprintln!("user deleted");
        }
        UsersCommand::Import(_) => bail!("`users import` is handled before the service is opened"),
    }
    Ok(())
}

/// One outbox row as `mail status` shows it: never the payload's code.
pub fn outbox_row_json(m: &hallpass_core::OutboxMessage) -> serde_json::Value {
    let payload: Option<hallpass_core::outbox::MailPayload> = serde_json::from_value(m.payload.clone()).ok();
    let rfc = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).ok();
    serde_json::json!({
        "id": m.id,
        "scope": m.scope.as_str(),
        "kind": payload.as_ref().map_or(m.kind.as_str(), |p| p.mail.as_str()),
        "to": payload.as_ref().map(|p| p.to.clone()),
        "state": m.state.as_str(),
        "attempts": m.attempts,
        "last_error": m.last_error,
        "created_at": rfc(m.created_at),
        "next_attempt_at": rfc(m.next_attempt_at),
        "sent_at": m.sent_at.and_then(rfc),
    })
}

async fn mail(cmd: MailCommand, service: &Hallpass) -> anyhow::Result<()> {
    match cmd {
        MailCommand::Status { limit, json } => {
            let stats = service.outbox_stats().await?;
            let rows = service.outbox_list(None, limit.clamp(1, 1000)).await?;
            let oldest = stats.oldest_pending_at.map(|t| (service.now() - t).whole_seconds().max(0));
            if json {
                let out = serde_json::json!({
                    "mail_enabled": service.mail_enabled(),
                    "queued": stats.queued, "sending": stats.sending, "in_doubt": stats.in_doubt,
                    "sent": stats.sent, "failed": stats.failed,
                    "oldest_pending_seconds": oldest,
                    "latest": rows.iter().map(outbox_row_json).collect::<Vec<_>>(),
                });
                println!("{out}");
                return Ok(());
            }
            if !service.mail_enabled() {
                println!("mail is not configured (HALLPASS_SMTP_URL unset): nothing is sent");
            }
            println!(
                "queued {}  sending {}  in_doubt {}  sent {}  failed {}",
                stats.queued, stats.sending, stats.in_doubt, stats.sent, stats.failed
            );
            if let Some(age) = oldest {
                println!("oldest undelivered: {age} s");
            }
            if stats.in_doubt > 0 {
                println!(
                    "in_doubt mails were handed to the SMTP server and its answer was lost; they are not resent by themselves (`hallpass mail retry ID`)"
                );
            }
            for r in rows.iter().map(outbox_row_json) {
                let s = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
                println!(
                    "{}  {:<8}  {:<13}  {:<8}  attempts {}  to {}  {}",
                    s("id"),
                    s("state"),
                    s("kind"),
                    s("scope"),
                    r["attempts"],
                    s("to"),
                    r["last_error"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        MailCommand::Retry { id } => {
            if service.outbox_retry(id).await? {
                println!("queued again: {id}");
                Ok(())
            } else {
                anyhow::bail!("no mail {id} in doubt")
            }
        }
    }
}
