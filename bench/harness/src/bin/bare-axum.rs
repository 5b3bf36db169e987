//! A bare axum server: the same axum and tokio as `hallpass serve`, the same runtime
//! (multi-thread), listener (`tokio::net::TcpListener`) and `axum::serve` with connect
//! info, and one route, `GET /v1/session`, answering a constant JSON body read from a file
//! (a real get-session answer the bench captured), so its size is byte-for-byte the same.
//! No middleware, no storage: the ceiling hallpass's get-session is compared with. It uses
//! the same global allocator as `hallpass` (mimalloc), so the comparison is of the work
//! done, not of the allocator.
//!
//! `bare-axum BODY_FILE [LISTEN]` (LISTEN default 127.0.0.1:0). Logs the bound address as a
//! JSON line on stderr, `{"addr":"127.0.0.1:PORT"}`, as the real server does in JSON mode.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use axum::Router;
use axum::http::header;
use axum::routing::get;
use std::net::SocketAddr;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let body_file = args.next().context("usage: bare-axum BODY_FILE [LISTEN]")?;
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let body: &'static [u8] =
        std::fs::read(&body_file).with_context(|| format!("reading {body_file}"))?.leak();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let app = Router::new().route(
            "/v1/session",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], body) }),
        );
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        let addr = listener.local_addr()?;
        eprintln!("{}", serde_json::json!({"addr": addr.to_string(), "body_bytes": body.len()}));
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
        Ok(())
    })
}
