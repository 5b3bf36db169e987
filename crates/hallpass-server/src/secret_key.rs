//! Where the server secret comes from (the key that seals provider tokens at rest, see
//! `hallpass_core::server_secret`): `HALLPASS_SECRET_KEY` (32 bytes, base64), or the file
//! `secret_key_file` names; neither set, on SQLite, the file `<database>.secret-key`
//! beside the database, generated (mode 0600) the first time the server starts and read
//! ever after; on PostgreSQL and MariaDB there is no such place, so a server with providers
//! and no key refuses to start, saying what to set (without providers it starts, and what
//! needs the key — TOTP, webhook secrets — answers `secret_key_not_configured`).
//!
//! Lose the key and the sealed tokens are gone (sign-ins still work: the next sign-in
//! stores fresh tokens). Back the file up with the database.

use crate::config::Config;
use anyhow::{Context, bail};
use hallpass_core::ServerSecret;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The file a SQLite database's generated key lives in.
pub fn beside_database(database_url: &str) -> Option<PathBuf> {
    if !database_url.starts_with("sqlite:") {
        return None;
    }
    let path = hallpass_sqlite::path_of_url(database_url).ok()?;
    let mut name = path.file_name()?.to_os_string();
    name.push(".secret-key");
    Some(path.with_file_name(name))
}

fn read_key_file(path: &Path, what: &str) -> anyhow::Result<ServerSecret> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    ServerSecret::from_base64(&text).map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))
}

/// Makes a fresh key at `path`, readable by its owner only, unless another process made
/// one first; answers whether this call made it.
///
/// Two servers starting at once on a new database both get here. The key is written whole
/// under a temporary name beside the database and then hard-linked to `path`, which never
/// replaces a file: one key wins, and a process that reads `path` finds it complete, never
/// half written (which it could when the key was written into `path` itself). The
/// directory is synced after the link, so a crash cannot lose a key that sealed anything.
fn generate(path: &Path) -> anyhow::Result<bool> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let random: String =
        hallpass_core::secret::random_bytes()[..8].iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{name}.{}.{random}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| -> std::io::Result<()> {
        let mut file = options.open(&tmp)?;
        let key = ServerSecret::generate_base64();
        file.write_all(key.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// What `config check` can say of the key settings without touching the database: both
/// set, `secret_key` not 32 bytes of base64, or providers on PostgreSQL/MariaDB without
/// any key.
pub fn check(config: &Config) -> anyhow::Result<()> {
    match (&config.secret_key, &config.secret_key_file) {
        (Some(_), Some(_)) => {
            bail!("configuration: set secret_key (HALLPASS_SECRET_KEY) or secret_key_file, not both")
        }
        (Some(text), None) => ServerSecret::from_base64(text)
            .map(drop)
            .map_err(|e| anyhow::anyhow!("configuration: secret_key (HALLPASS_SECRET_KEY): {e}")),
        (None, Some(_)) => Ok(()),
        (None, None) => {
            let providers = config.scopes.values().any(|s| s.oidc.as_ref().is_some_and(|p| !p.is_empty()));
            if providers && beside_database(&config.database_url).is_none() {
                bail!("{NO_KEY}");
            }
            Ok(())
        }
    }
}

/// Why a server with providers on PostgreSQL or MariaDB and no key does not start.
const NO_KEY: &str = "configuration: identity providers are configured, but no server secret key is: set \
     HALLPASS_SECRET_KEY to 32 random bytes in base64 (`openssl rand -base64 32`), or secret_key_file to a file \
     holding them. It seals the providers' tokens in the database; on PostgreSQL and MariaDB hallpass has no \
     place beside the database to keep one of its own.";

/// The server secret the configuration gives, if any. `needed`: identity providers are
/// configured, so one must exist (generated on SQLite, else an error naming what to set).
/// `wanted`: one is useful (mail is configured: it keys the sign-in code hashes), so on
/// SQLite one is generated, but its absence elsewhere is no error.
pub fn load(config: &Config, needed: bool, wanted: bool) -> anyhow::Result<Option<ServerSecret>> {
    match (&config.secret_key, &config.secret_key_file) {
        (Some(_), Some(_)) => {
            bail!("configuration: set secret_key (HALLPASS_SECRET_KEY) or secret_key_file, not both")
        }
        (Some(text), None) => {
            return ServerSecret::from_base64(text)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("configuration: secret_key (HALLPASS_SECRET_KEY): {e}"));
        }
        (None, Some(file)) => {
            return read_key_file(Path::new(file), "configuration: secret_key_file").map(Some);
        }
        (None, None) => {}
    }
    if let Some(path) = beside_database(&config.database_url) {
        if !path.exists() && (needed || wanted) && generate(&path)? {
            tracing::info!(path = %path.display(), "generated the server secret key (back it up with the database)");
        }
        if path.exists() {
            return read_key_file(&path, "the server secret key file").map(Some);
        }
        return Ok(None);
    }
    if needed {
        bail!("{NO_KEY}");
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_generates_a_private_key_file_once_and_reads_it_after() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("hp.db");
        let config = Config { database_url: format!("sqlite://{}", db.display()), ..Config::default() };
        assert!(load(&config, false, false).expect("load").is_none(), "nothing made when not needed");
        let first = load(&config, true, true).expect("load").expect("generated");
        let path = dir.path().join("hp.db.secret-key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).expect("file").permissions().mode() & 0o777, 0o600);
        }
        let again = load(&config, false, false).expect("load").expect("read back");
        assert_eq!(first.key_id(), again.key_id());
        let sealed = first.seal(b"a", b"b");
        assert_eq!(again.open(b"a", &sealed).expect("same key").as_slice(), b"b");
    }

    /// Servers starting at once on a new database all end up with the one same key, and
    /// none reads a half-written file (one did, and exited, before keys were linked into
    /// place whole).
    #[test]
    fn servers_starting_at_once_share_one_whole_key() {
        for _ in 0..50 {
            let dir = tempfile::tempdir().expect("dir");
            let db = dir.path().join("hp.db");
            let config = Config { database_url: format!("sqlite://{}", db.display()), ..Config::default() };
            let start = std::sync::Barrier::new(8);
            let keys: Vec<ServerSecret> = std::thread::scope(|s| {
                let loads: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            load(&config, false, true).expect("load").expect("a key")
                        })
                    })
                    .collect();
                loads.into_iter().map(|h| h.join().expect("thread")).collect()
            });
            let sealed = keys[0].seal(b"aad", b"secret");
            for k in &keys {
                assert_eq!(k.open(b"aad", &sealed).expect("the same key").as_slice(), b"secret");
            }
            let left: Vec<_> =
                std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("entry").file_name()).collect();
            assert_eq!(left, vec![std::ffi::OsString::from("hp.db.secret-key")], "no temporary file left");
        }
    }

    #[test]
    fn server_databases_need_a_key_named_by_the_operator() {
        let config = Config { database_url: "postgres://localhost/x".into(), ..Config::default() };
        assert!(load(&config, false, false).expect("load").is_none());
        let e = load(&config, true, true).expect_err("refused").to_string();
        assert!(e.contains("HALLPASS_SECRET_KEY") && e.contains("secret_key_file"), "{e}");
        let bad = Config { secret_key: Some("c2hvcnQ=".into()), ..config.clone() };
        assert!(load(&bad, true, true).expect_err("short").to_string().contains("32 bytes"));
        let good = Config { secret_key: Some(ServerSecret::generate_base64().to_string()), ..config };
        assert!(load(&good, true, true).expect("load").is_some());
    }

    #[test]
    fn config_check_refuses_providers_on_a_server_database_without_a_key() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("h.toml");
        let toml = "database_url = \"postgres://localhost/x\"\npublic_url = \"https://auth.example\"\n\
                    [scopes.shop.oidc.g]\nissuer = \"https://i.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
                    return_to = [\"https://a.example/done\"]\n";
        std::fs::write(&file, toml).expect("write");
        let e = format!("{:#}", Config::load(Some(&file)).expect_err("refused"));
        assert!(e.contains("HALLPASS_SECRET_KEY") && e.contains("PostgreSQL"), "{e}");
        let key = format!("secret_key = \"{}\"\n", &*ServerSecret::generate_base64());
        std::fs::write(&file, format!("{key}{toml}")).expect("write");
        Config::load(Some(&file)).expect("with a key");
    }
}
