//! The hallpass server as a library: configuration ([`config`], checked by
//! [`config_check`]), the application value and
//! its assembly ([`app`]), the HTTP API ([`http`]),
//! the admin web page ([`admin`]), the command line ([`cli`]), running the server ([`serve`]),
//! logging ([`telemetry`]), Prometheus metrics ([`metrics`]), mail and its outbox worker
//! ([`mail`]), moving users in and out ([`transfer`]), backing up and restoring a SQLite
//! database ([`backup`]), sign-in through identity providers ([`oidc`]) and the server
//! secret that seals their tokens ([`secret_key`]).
//! The `hallpass` binary (`main.rs`) only parses arguments and calls into these.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod backup;
pub mod cli;
pub mod config;
pub mod config_check;
mod html;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod oidc;
pub mod pages;
pub mod secret_key;
pub mod serve;
pub mod telemetry;
pub mod transfer;
pub mod webhooks;

/// A reqwest client builder that can make TLS connections: reqwest is built with rustls
/// and no crypto provider of its own (aws-lc-rs needs cmake), so ring is installed as the
/// process's default first (once; later calls find it there). Every reqwest client of the
/// server and its tests starts here.
pub fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
