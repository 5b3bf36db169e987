//! Running the server: open storage (migrating it), build the service, make the first API
//! key on an empty database, sweep expired rows in the background, and serve HTTP until a
//! shutdown signal, draining requests in flight. Store calls are counted for `/metrics`.

use crate::app::{AppState, build_app};
use crate::config::Config;
use crate::metrics::{Metrics, StoreMetrics};
use anyhow::{Context, bail};
use hallpass_core::observed::Observed;
use hallpass_core::{Hallpass, Scope, Store};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Opens the storage `url` names, applying migrations.
pub async fn open_store(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        let url = url.to_owned();
        let store = tokio::task::spawn_blocking(move || hallpass_sqlite::SqliteStore::from_url(&url))
            .await
            .context("opening the database")?
            .context("opening the SQLite database")?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let store =
            hallpass_postgres::PostgresStore::connect(url).await.context("connecting to PostgreSQL")?;
        store.migrate().await.context("migrating the PostgreSQL database")?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        let store = hallpass_mysql::MySqlStore::connect(url).await.context("connecting to MariaDB/MySQL")?;
        store.migrate().await.context("migrating the MariaDB/MySQL database")?;
        return Ok(Arc::new(store));
    }
    bail!("HALLPASS_DATABASE_URL must start with sqlite://, postgres:// or mysql://")
}

/// The service on `store` with the configuration's settings and server secret (see
/// [`crate::secret_key`]; one is required when identity providers are configured, and
/// made on SQLite at the first start).
fn service_on(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Arc<Hallpass>> {
    let providers = !crate::oidc::ProviderSpec::all(config)?.is_empty();
    let mail = config.smtp_url.is_some();
    let mut service = Hallpass::new(store, config.settings()?)?;
    // Always wanted: on SQLite a key is made at the first start, so TOTP (and anything
    // else sealed at rest) works with no settings; elsewhere the operator names one.
    match crate::secret_key::load(config, providers, true)? {
        Some(secret) => service = service.with_server_secret(secret),
        None if mail => tracing::warn!(
            "no server secret key (HALLPASS_SECRET_KEY or secret_key_file): mailed sign-in codes are stored as \
             plain SHA-256, which a reader of the database can brute-force; set one"
        ),
        None => {}
    }
    Ok(Arc::new(service))
}

/// Opens storage and builds the service the configuration describes.
pub async fn open_service(config: &Config) -> anyhow::Result<Arc<Hallpass>> {
    let store = open_store(&config.database_url).await?;
    service_on(config, store)
}

/// As [`open_service`], with every store call counted into `metrics`.
pub async fn open_measured_service(config: &Config, metrics: &Arc<Metrics>) -> anyhow::Result<Arc<Hallpass>> {
    let store = open_store(&config.database_url).await?;
    let store = Arc::new(Observed::new(store, StoreMetrics(metrics.clone())));
    service_on(config, store)
}

/// Folds recorded latency samples into their histogram buckets every few seconds, so they
/// do not pile up in memory between scrapes (or when nobody scrapes).
pub fn spawn_metrics_upkeep(metrics: Arc<Metrics>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            metrics.upkeep();
        }
    })
}

/// On a database with no API key at all, creates one for scope `default` and returns it.
pub async fn first_key(service: &Hallpass) -> anyhow::Result<Option<String>> {
    if !service.list_api_keys().await?.is_empty() {
        return Ok(None);
    }
    let (_, secret) = service.create_api_key(Scope::default_scope(), Some("first key".into())).await?;
    Ok(Some(secret.expose().to_owned()))
}

/// Deletes expired sessions and codes every `every`, in batches, until the process ends.
pub fn spawn_sweeper(service: Arc<Hallpass>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Small batches keep each write transaction short; loop while a batch is full.
            loop {
                match service.sweep(500).await {
                    Ok(n) if n >= 500 => tokio::task::yield_now().await,
                    Ok(n) => {
                        if n > 0 {
                            tracing::debug!(rows = n, "swept expired sessions and codes");
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "sweeping expired rows failed");
                        break;
                    }
                }
            }
        }
    })
}

/// Serves HTTP on `listener` until `shutdown` completes, then drains in-flight requests.
/// `metrics` should be the value the service's store reports to
/// ([`open_measured_service`]).
pub async fn run(
    config: &Config,
    service: Arc<Hallpass>,
    metrics: Arc<Metrics>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let sweeper = spawn_sweeper(service.clone(), config.sweep_interval.0);
    let upkeep = spawn_metrics_upkeep(metrics.clone());
    let admin = crate::admin::AdminOptions::from_config(config);
    let oidc = Arc::new(crate::oidc::Oidc::from_config(config)?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mailer = crate::mail::Mailer::from_config(config)?
        .map(|m| crate::mail::spawn_worker(Arc::new(m), service.clone(), stop_rx.clone()));
    let webhooks = crate::webhooks::spawn_worker(
        crate::webhooks::WebhookOptions::from_config(config),
        service.clone(),
        stop_rx,
    );
    let feed = Arc::clone(service.feed());
    let app = build_app(AppState { service, body_limit: config.body_limit, metrics, admin, oidc });
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        // Change streams never end by themselves: end them, or the drain would wait.
        feed.close();
    };
    let result = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await;
    sweeper.abort();
    upkeep.abort();
    // The deliveries in hand end within their 10 s timeout; waiting ones go back queued.
    if tokio::time::timeout(Duration::from_secs(30), webhooks).await.is_err() {
        tracing::warn!("the webhook worker did not stop in time");
    }
    if let Some(worker) = mailer {
        // The mail in hand is finished (its steps time out), the rest stays queued.
        if tokio::time::timeout(Duration::from_secs(90), worker).await.is_err() {
            tracing::warn!("the mail worker did not stop in time");
        }
    }
    result.context("serving HTTP")
}

/// `hallpass serve`: everything above, bound to `config.listen`, stopped by SIGTERM or
/// Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let service = open_measured_service(&config, &metrics).await?;
    if let Some(key) = first_key(&service).await? {
        tracing::warn!("no API key existed: created one for scope `default`; it is printed once on stdout");
        println!("First API key for scope `default` (shown once, keep it):");
        println!("{key}");
    }
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = %redact_url(&config.database_url), "hallpass listening");
    run(&config, service, metrics, listener, shutdown_signal()).await?;
    tracing::info!("hallpass stopped");
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested: draining requests in flight");
}

/// A database URL with any password replaced by `***`, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_in_database_urls_are_redacted() {
        assert_eq!(super::redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact_url("sqlite://hallpass.db"), "sqlite://hallpass.db");
    }

    /// `open_store` may give any of the three backends: version N of the schema must name
    /// the same change on each, so a database's version says the same whatever it runs on.
    #[test]
    fn the_backends_number_their_migrations_alike() {
        assert_eq!(hallpass_sqlite::MIGRATION_NAMES, hallpass_postgres::MIGRATION_NAMES);
        assert_eq!(hallpass_sqlite::MIGRATION_NAMES, hallpass_mysql::MIGRATION_NAMES);
        assert_eq!(i64::from(hallpass_sqlite::SCHEMA_VERSION), hallpass_postgres::SCHEMA_VERSION);
        assert_eq!(hallpass_postgres::SCHEMA_VERSION, hallpass_mysql::SCHEMA_VERSION);
    }
}
