//! Get-session through the library, in-process: `hallpass::open_sqlite` on a temporary
//! file, one user registered and logged in, then N `get_session` calls one at a time, each
//! timed. Prints one JSON line per figure: `{"name", "n", "p50_us", "p99_us", "mean_us"}`.
//!
//! Figures:
//! - `sqlite`: `Hallpass::get_session` with the default settings (every call reads SQLite);
//! - `store_find_session`: the raw `Store::find_session` call under it, for the profile;
//! - `cached`: `Hallpass::get_session` with [`cached_settings`]; `{"name":"cached",
//!   "skipped":"..."}` while the in-process session cache is not built.
//!
//! `inproc [N]` (default 200000).
#![forbid(unsafe_code)]

use anyhow::Context as _;
use hallpass::service::{Credentials, LoginRequest, NewUser};
use hallpass::{ClientInfo, Hallpass, Password, Scope, SessionToken, Settings, UserRef, Username};
use hallpass_bench::{BENCH_PASSWORD, Summary};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// HOOK FOR THE SESSION CACHE (issue 6): return the settings that turn the in-process
// session cache on, built from `base`. `None` means "not built yet" and the `cached` figure
// is reported as skipped. When the cache lands, set its field here, e.g.
// `Some(Settings { session_cache: SessionCacheSettings { capacity: 100_000, .. }, ..base })`.
// ---------------------------------------------------------------------------------------
fn cached_settings(base: Settings) -> Option<Settings> {
    let mut settings = base;
    settings.cache.mode = hallpass::CacheMode::On;
    Some(settings)
}

/// The settings of the "from SQLite" figure: the cache off, so every call reads.
fn uncached_settings() -> Settings {
    let mut settings = Settings::default();
    settings.cache.mode = hallpass::CacheMode::Off;
    settings
}

async fn setup(
    settings: Settings,
    dir: &std::path::Path,
    name: &str,
) -> anyhow::Result<(Hallpass, Scope, SessionToken)> {
    let hp = hallpass::open_sqlite(dir.join(format!("{name}.db")), settings).await?;
    let scope = Scope::parse("bench")?;
    hp.register(
        &scope,
        NewUser {
            username: Some(Username::parse("alice")?),
            password: Some(Password::new(BENCH_PASSWORD)?),
            ..Default::default()
        },
    )
    .await?;
    let login = hp
        .login(
            &scope,
            LoginRequest {
                credentials: Credentials::Password {
                    login: UserRef::login("alice")?,
                    password: Password::for_login(BENCH_PASSWORD)?,
                },
                data: Default::default(),
                client: ClientInfo { ip: Some("127.0.0.1".into()), user_agent: Some("bench".into()) },
                device: None,
            },
        )
        .await?;
    Ok((hp, scope, login.token))
}

async fn time_get_session(
    hp: &Hallpass,
    scope: &Scope,
    token: &SessionToken,
    n: usize,
) -> anyhow::Result<Summary> {
    for _ in 0..n.min(10_000) / 10 {
        hp.get_session(scope, token).await?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let got = hp.get_session(scope, token).await;
        samples.push(t.elapsed());
        got.context("get_session failed")?;
    }
    Ok(Summary::of(&mut samples))
}

async fn time_find_session(
    hp: &Hallpass,
    scope: &Scope,
    token: &SessionToken,
    n: usize,
) -> anyhow::Result<Summary> {
    let hash = token.hash();
    let mut samples: Vec<Duration> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let got = hp.store().find_session(scope, &hash).await;
        samples.push(t.elapsed());
        got?.context("session not found")?;
    }
    Ok(Summary::of(&mut samples))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(200_000);
    let dir = tempfile::tempdir()?;

    let (hp, scope, token) = setup(uncached_settings(), dir.path(), "plain").await?;
    println!("{}", time_get_session(&hp, &scope, &token, n).await?.json("sqlite"));
    println!("{}", time_find_session(&hp, &scope, &token, n).await?.json("store_find_session"));
    drop(hp);

    match cached_settings(Settings::default()) {
        Some(settings) => {
            let (hp, scope, token) = setup(settings, dir.path(), "cached").await?;
            println!("{}", time_get_session(&hp, &scope, &token, n).await?.json("cached"));
        }
        None => println!(
            "{}",
            serde_json::json!({"name": "cached", "skipped": "session cache not built yet (cached_settings returns None)"})
        ),
    }
    Ok(())
}
