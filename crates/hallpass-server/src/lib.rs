//! The hallpass server as a library: configuration ([`config`], checked by
//! [`config_check`]), the application value and
//! its assembly ([`app`]), the HTTP API ([`http`]),
//! the admin web page ([`admin`]), the command line ([`cli`]), running the server ([`serve`]),
//! logging ([`telemetry`]), Prometheus metrics ([`metrics`]), mail and its outbox worker
//! ([`mail`]) and
//! moving users in and out ([`transfer`]), and backing up and restoring a SQLite
//! database ([`backup`]).
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
pub mod pages;
pub mod serve;
pub mod telemetry;
pub mod transfer;
