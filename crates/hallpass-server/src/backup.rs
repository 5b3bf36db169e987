//! `hallpass backup` and `hallpass restore`: a consistent copy of the live SQLite database
//! while the server keeps running, and putting such a copy back in place of the database.
//! The SQLite side (how the copy is taken, what is checked, how a database in use is told
//! apart) is `hallpass_sqlite::backup`; this module is about files: temporary names,
//! syncing, renaming, what is kept, and what the operator sees.
//!
//! Rules both commands keep:
//!
//! - **A file gets its final name only when it is complete and checked.** The copy is
//!   written to a temporary file in the destination's own directory (so the rename is
//!   atomic: same file system), checked (`integrity_check`, schema version), synced, then
//!   renamed; a failure at any point removes the temporary file and leaves the destination
//!   as it was. The directory is synced after each rename, so the new name survives a crash.
//! - **Backups hold password hashes**: they are created readable by their owner only.
//! - **The server secret key travels with the database.** Sealed values (provider tokens,
//!   TOTP secrets) are unreadable without the key that sealed them, so `backup` copies the
//!   generated `<database>.secret-key` to `<backup>.secret-key`, and `restore` puts a
//!   backup's key file in place (keeping a different current one as
//!   `<database>.secret-key.before-restore-<time>`). A key given by
//!   `HALLPASS_SECRET_KEY` or `secret_key_file` is the operator's to keep.
//! - PostgreSQL and MariaDB have their own, better tools; for those URLs both commands
//!   refuse and name them (DEPLOYMENT.md, "Backup and restore").

use crate::transfer::Progress;
use anyhow::{Context as _, bail};
use clap::Args;
use hallpass_sqlite::backup::{self as sqlite, BackupError, CopyInfo, Offline};
use indicatif::HumanBytes;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use time::macros::format_description;

/// `hallpass backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write (created readable by its owner only).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Report progress on stderr even when it is not a terminal (a line a second); on a
    /// terminal a progress bar is always shown.
    #[arg(long)]
    pub progress: bool,
}

/// `hallpass restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore (a file `hallpass backup` wrote).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Do not keep the replaced database as `PATH.before-restore-<time>`.
    #[arg(long)]
    pub no_keep: bool,
    /// Report progress on stderr even when it is not a terminal.
    #[arg(long)]
    pub progress: bool,
}

/// `hallpass backup`: copies the database `url` names into `args.output`.
pub async fn backup(url: &str, args: BackupArgs) -> anyhow::Result<()> {
    let db = sqlite_path(url, "backup")?;
    // The copy and the checks are long blocking SQLite calls: off the async workers.
    tokio::task::spawn_blocking(move || run_backup(&db, &args)).await.context("the backup task failed")?
}

/// `hallpass restore`: puts `args.input` in place of the database `url` names.
pub async fn restore(url: &str, args: RestoreArgs) -> anyhow::Result<()> {
    let db = sqlite_path(url, "restore")?;
    tokio::task::spawn_blocking(move || run_restore(&db, &args)).await.context("the restore task failed")?
}

/// The SQLite file of `url`, or an error naming the tools for the other databases.
fn sqlite_path(url: &str, command: &str) -> anyhow::Result<PathBuf> {
    if url.starts_with("sqlite:") {
        return Ok(hallpass_sqlite::path_of_url(url)?);
    }
    let tools = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        "a PostgreSQL database: back it up with `pg_dump -Fc` and restore it with `pg_restore`"
    } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        "a MariaDB/MySQL database: back it up with `mariadb-dump --single-transaction` and restore it \
         with `mariadb`"
    } else {
        bail!("HALLPASS_DATABASE_URL must start with sqlite://, postgres:// or mysql://")
    };
    bail!(
        "`hallpass {command}` works on SQLite databases only; HALLPASS_DATABASE_URL names {tools} \
         (see DEPLOYMENT.md, \"Backup and restore\")"
    )
}

fn run_backup(db: &Path, args: &BackupArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let output = &args.output;
    if output.is_dir() {
        bail!("{} is a directory; name the backup file", output.display());
    }
    if output.exists() {
        if same_file(output, db) {
            bail!("{} is the database itself; name another file", output.display());
        }
        if !args.force {
            bail!("{} exists; pass --force to replace it", output.display());
        }
    }
    let source = sqlite::Source::open(db).map_err(|e| explain(e, db))?;
    let estimate = source.estimated_bytes()?;
    let temp = temp_file_for(output)?;
    let mut report = Reporter::new("backup", estimate, args.progress);
    // The copy shows no progress of its own; a thread watches the file grow meanwhile.
    let done = AtomicBool::new(false);
    let copied = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                report.at(std::fs::metadata(&temp).map_or(0, |m| m.len()));
            }
        });
        let copied = source.copy_into(&temp);
        done.store(true, Ordering::Relaxed);
        let _ = watcher.join();
        copied
    });
    drop(source);
    copied.with_context(|| format!("copying {}", db.display()))?;
    report.say("backup: copied; checking the copy");
    let info = sqlite::check_copy(&temp)
        .map_err(|e| e.with_path(output))
        .context("the copy failed its check, so it was not kept")?;
    sync_file(&temp)?;
    let persisted = if args.force { temp.persist(output) } else { temp.persist_noclobber(output) };
    // A file of that name may have appeared while the copy was made: never overwritten
    // without --force (persist_noclobber refuses atomically).
    persisted.map_err(|e| e.error).with_context(|| format!("cannot name the backup {}", output.display()))?;
    sync_dir_of(output)?;
    let key = side_file(db, KEY_SUFFIX);
    let key_copied = key.exists();
    if key_copied {
        copy_key(&key, &side_file(output, KEY_SUFFIX))?;
    }
    report.finish();
    let bytes = std::fs::metadata(output).map_or(0, |m| m.len());
    println!(
        "backup of {} written to {}: {} ({bytes} bytes), {}, in {:.1} s",
        db.display(),
        output.display(),
        HumanBytes(bytes),
        describe(&info),
        started.elapsed().as_secs_f64()
    );
    if key_copied {
        println!(
            "the server secret key was copied to {} (keep it with the backup: sealed values need it)",
            side_file(output, KEY_SUFFIX).display()
        );
    }
    Ok(())
}

/// The generated server secret key beside a SQLite database (see `crate::secret_key`).
const KEY_SUFFIX: &str = ".secret-key";

/// Copies a key file to `to` (replacing it), readable by its owner only, synced.
fn copy_key(from: &Path, to: &Path) -> anyhow::Result<()> {
    let key = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    let temp = temp_file_for(to)?;
    std::fs::write(&temp, &key).with_context(|| format!("cannot write {}", to.display()))?;
    sync_file(&temp)?;
    temp.persist(to).map_err(|e| e.error).with_context(|| format!("cannot write {}", to.display()))?;
    sync_dir_of(to)
}

/// Puts the backup's key file (if any) beside the restored database; a different current
/// key is kept under `keep_as`. Answers what the operator should read.
fn restore_key(input: &Path, db: &Path, stamp: &str) -> anyhow::Result<Option<String>> {
    let (from, to) = (side_file(input, KEY_SUFFIX), side_file(db, KEY_SUFFIX));
    if !from.exists() {
        return Ok(to.exists().then(|| {
            format!(
                "the backup has no key file beside it ({}): the current key {} is kept; values sealed by \
                 another key read as absent",
                from.display(),
                to.display()
            )
        }));
    }
    let backup_key = std::fs::read(&from).with_context(|| format!("cannot read {}", from.display()))?;
    if std::fs::read(&to).is_ok_and(|k| k == backup_key) {
        return Ok(None);
    }
    let mut said = format!("the backup's server secret key is now {}", to.display());
    if to.exists() {
        let keep = side_file(&to, &format!(".before-restore-{stamp}"));
        std::fs::rename(&to, &keep)
            .with_context(|| format!("cannot keep {} as {}", to.display(), keep.display()))?;
        said.push_str(&format!("; the replaced key is kept as {}", keep.display()));
    }
    copy_key(&from, &to)?;
    Ok(Some(said))
}

fn run_restore(db: &Path, args: &RestoreArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let input = &args.input;
    if !input.is_file() {
        bail!("there is no backup at {}", input.display());
    }
    if db.exists() && same_file(input, db) {
        bail!("{} is the database itself; name a backup", input.display());
    }
    // A WAL beside the input means the file alone is not the whole database (a copy of a
    // live one, or of one that was not closed): restoring the file would lose what the
    // WAL holds. A backup written by `hallpass backup` never has one.
    let input_wal = side_file(input, "-wal");
    if std::fs::metadata(&input_wal).is_ok_and(|m| m.len() > 0) {
        bail!(
            "{} has a write-ahead log beside it ({}): it is a live or uncleanly closed database, not a \
             backup. Take a backup of it with `HALLPASS_DATABASE_URL=sqlite://{} hallpass backup --output \
             FILE` and restore that",
            input.display(),
            input_wal.display(),
            input.display()
        );
    }
    // Refuse a database in use before the copy, not only after it: no point copying a
    // large file to learn that the server must be stopped first.
    if db.exists() {
        sqlite::take_offline(db).map_err(|e| explain(e, db))?;
    }

    let total = std::fs::metadata(input).map_or(0, |m| m.len());
    let temp = temp_file_for(db)?;
    let mut report = Reporter::new("restore", total, args.progress);
    copy_with_progress(input, &temp, &mut report)?;
    report.say("restore: copied; checking the copy");
    // Errors name the input, not the temporary copy they were found in.
    let info = sqlite::check_copy(&temp).map_err(|e| explain(e.with_path(input), input))?;
    if info.schema_version > hallpass_sqlite::SCHEMA_VERSION {
        bail!(
            "{} has schema version {}, newer than this hallpass supports ({}): restore it with the \
             hallpass that wrote it, or a newer one",
            input.display(),
            info.schema_version,
            hallpass_sqlite::SCHEMA_VERSION
        );
    }
    sync_file(&temp)?;

    // The swap. First the old database: nobody may have it open (checked again: a server
    // may have started during the copy), and its WAL is written back into it.
    let stamp = time::OffsetDateTime::now_utc()
        .format(format_description!("[year][month][day]T[hour][minute][second]Z"))
        .context("formatting the time")?;
    let keep = (!args.no_keep).then(|| PathBuf::from(format!("{}.before-restore-{stamp}", db.display())));
    let mut kept_main = false;
    let replaced = db.exists();
    if replaced {
        if let Some(warning) = take_owner_and_mode(db, &temp)? {
            report.warn(&warning);
        }
        if let Offline::Unreadable(why) = sqlite::take_offline(db).map_err(|e| explain(e, db))? {
            report.warn(&format!(
                "restore: the current database could not be read ({why}); it is replaced as it is{}",
                if keep.is_some() { ", its files kept beside it" } else { "" }
            ));
        }
        if let Some(keep) = &keep {
            keep_copy(db, keep)?;
            kept_main = true;
        }
    }
    // Then whatever SQLite keeps beside the old file. A WAL or rollback journal next to the
    // restored file would be taken for its own at the next open and replayed into it,
    // overwriting its pages with the old database's: corruption. So they go before the new
    // file takes the name, with the kept copy (whose WAL they are) or away. The `-shm`
    // index is only ever rebuilt from the WAL: removed.
    for suffix in ["-wal", "-journal"] {
        let side = side_file(db, suffix);
        if !side.exists() {
            continue;
        }
        match &keep {
            Some(keep) => {
                let to = side_file(keep, suffix);
                std::fs::rename(&side, &to)
                    .with_context(|| format!("cannot move {} to {}", side.display(), to.display()))?;
            }
            None => {
                std::fs::remove_file(&side).with_context(|| format!("cannot remove {}", side.display()))?
            }
        }
    }
    let shm = side_file(db, "-shm");
    if shm.exists() {
        std::fs::remove_file(&shm).with_context(|| format!("cannot remove {}", shm.display()))?;
    }
    sync_dir_of(db)?;
    temp.persist(db)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot put the backup at {}", db.display()))?;
    sync_dir_of(db)?;
    let key_said = restore_key(input, db, &stamp)?;
    report.finish();

    println!(
        "restored {} to {}: {}, in {:.1} s; migrations run at the next start",
        input.display(),
        db.display(),
        describe(&info),
        started.elapsed().as_secs_f64()
    );
    match keep.filter(|_| kept_main) {
        Some(keep) => println!("the replaced database is kept as {}", keep.display()),
        None if replaced && args.no_keep => println!("the replaced database was not kept (--no-keep)"),
        None => {}
    }
    if let Some(said) = key_said {
        println!("{said}");
    }
    Ok(())
}

/// Turns a SQLite-side error into the sentence an operator needs.
fn explain(e: BackupError, db: &Path) -> anyhow::Error {
    match e {
        BackupError::Missing(_) => anyhow::anyhow!(
            "there is no database at {} (HALLPASS_DATABASE_URL, default sqlite://hallpass.db)",
            db.display()
        ),
        BackupError::InUse(_) => anyhow::anyhow!(
            "{} is in use by another process (a running `hallpass serve`, or another hallpass command): \
             stop it, then restore",
            db.display()
        ),
        other => other.into(),
    }
}

/// "schema version 4, 12 users, 3 sessions".
fn describe(info: &CopyInfo) -> String {
    let mut s = format!("schema version {}", info.schema_version);
    if let (Some(users), Some(sessions)) = (info.users, info.sessions) {
        s.push_str(&format!(", {users} users, {sessions} sessions"));
    }
    s
}

/// `PATH` + `suffix`, as SQLite names the files beside a database (`PATH-wal`).
fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether two existing paths are one file (through symbolic links too).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A new, empty file in `target`'s directory, readable by its owner only, removed when
/// dropped unless it was renamed. Closed at once: SQLite opens it by name, and an open
/// descriptor of ours would drop SQLite's locks on it when closed (POSIX locks belong to
/// the process, not the descriptor).
fn temp_file_for(target: &Path) -> anyhow::Result<tempfile::TempPath> {
    let dir = dir_of(target);
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".partial");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let file = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    Ok(file.into_temp_path())
}

/// Gives the restored file the owner and mode of the database it replaces: a restore run
/// as root must not leave the server's user a database it cannot open. Changing the owner
/// needs the right to (root, or owning both already); when that fails, the returned
/// warning says what to do.
fn take_owner_and_mode(old: &Path, new: &Path) -> anyhow::Result<Option<String>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let meta = std::fs::metadata(old).with_context(|| format!("cannot read {}", old.display()))?;
        let (new_meta, mode) = (std::fs::metadata(new)?, meta.mode() & 0o777);
        std::fs::set_permissions(new, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", new.display()))?;
        let owned_alike = new_meta.uid() == meta.uid() && new_meta.gid() == meta.gid();
        if !owned_alike && let Err(e) = std::os::unix::fs::chown(new, Some(meta.uid()), Some(meta.gid())) {
            return Ok(Some(format!(
                "restore: warning: the restored database cannot be given the owner of the replaced one \
                 (uid {}, gid {}: {e}); it belongs to whoever ran restore: chown it before starting the \
                 server",
                meta.uid(),
                meta.gid()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = (old, new);
    Ok(None)
}

/// Keeps the replaced database at `keep`: a second name for the same file (a hard link:
/// instant, and the database keeps its name until the new one takes it), or a copy where
/// the file system has no hard links.
fn keep_copy(db: &Path, keep: &Path) -> anyhow::Result<()> {
    match std::fs::hard_link(db, keep) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} exists already; wait a second and restore again", keep.display())
        }
        Err(_) => {
            std::fs::copy(db, keep)
                .with_context(|| format!("cannot keep {} as {}", db.display(), keep.display()))?;
            sync_file(keep)
        }
    }
}

fn sync_file(path: &Path) -> anyhow::Result<()> {
    File::open(path).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync {}", path.display()))
}

/// Makes a rename in `path`'s directory durable. Directories cannot be opened for syncing
/// everywhere (Windows); there a rename is as durable as the file system makes it.
fn sync_dir_of(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let dir = dir_of(path);
        File::open(dir)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot sync {}", dir.display()))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Copies `from` into the (empty) file `to` and syncs it, reporting the bytes copied.
fn copy_with_progress(from: &Path, to: &Path, report: &mut Reporter) -> anyhow::Result<()> {
    let mut input = File::open(from).with_context(|| format!("cannot open {}", from.display()))?;
    let mut output = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(to)
        .with_context(|| format!("cannot write {}", to.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut copied = 0u64;
    loop {
        let n = input.read(&mut buf).with_context(|| format!("reading {}", from.display()))?;
        if n == 0 {
            break;
        }
        output.write_all(&buf[..n]).with_context(|| format!("writing {}", to.display()))?;
        copied += n as u64;
        report.at(copied);
    }
    output.sync_all().with_context(|| format!("cannot sync {}", to.display()))?;
    Ok(())
}

/// Progress on stderr: a bar on a terminal; with `--progress` elsewhere, a line a second;
/// else nothing (a cron job's log gets the result line only).
struct Reporter {
    what: &'static str,
    total: u64,
    bar: Progress,
    lines: bool,
    last_line: Instant,
}

impl Reporter {
    fn new(what: &'static str, total: u64, progress: bool) -> Self {
        let bar = Progress::new(Some(total));
        let lines = progress && !bar.is_terminal();
        Self { what, total, bar, lines, last_line: Instant::now() }
    }

    /// `bytes` written so far (clamped to the total: the size of a copy is an estimate).
    fn at(&mut self, bytes: u64) {
        let bytes = bytes.min(self.total);
        self.bar.update(Some(bytes), String::new());
        if self.lines && self.last_line.elapsed() >= Duration::from_secs(1) {
            self.last_line = Instant::now();
            let percent = (bytes * 100).checked_div(self.total).unwrap_or(100);
            eprintln!(
                "{}: {} of about {} ({percent}%)",
                self.what,
                HumanBytes(bytes),
                HumanBytes(self.total)
            );
        }
    }

    /// A line for whoever watches progress.
    fn say(&self, line: &str) {
        if self.lines {
            eprintln!("{line}");
        } else if self.bar.is_terminal() {
            self.bar.say(line);
        }
    }

    /// A line everyone sees, progress shown or not.
    fn warn(&self, line: &str) {
        if self.bar.is_terminal() { self.bar.say(line) } else { eprintln!("{line}") }
    }

    fn finish(&self) {
        self.bar.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_databases_are_refused_with_their_tools() {
        for (url, tool) in [
            ("postgres://u:p@h/db", "pg_dump -Fc"),
            ("postgresql://h/db", "pg_restore"),
            ("mysql://u:p@h/db", "mariadb-dump --single-transaction"),
            ("mariadb://h/db", "mariadb-dump"),
        ] {
            let e = sqlite_path(url, "backup").err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(tool) && e.contains("DEPLOYMENT.md"), "{url}: {e}");
            assert!(!e.contains("u:p"), "the URL (and its password) is not repeated: {e}");
        }
        assert!(sqlite_path("redis://h", "backup").is_err());
        assert_eq!(sqlite_path("sqlite://a/b.db", "restore").ok(), Some(PathBuf::from("a/b.db")));
    }

    #[test]
    fn side_files_are_named_as_sqlite_names_them() {
        assert_eq!(side_file(Path::new("/x/h.db"), "-wal"), PathBuf::from("/x/h.db-wal"));
        assert_eq!(dir_of(Path::new("h.db")), Path::new("."));
        assert_eq!(dir_of(Path::new("/x/h.db")), Path::new("/x"));
    }
}
