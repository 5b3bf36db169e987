//! Running the real `hallpass` binary in tests: a command with a database URL, port 0,
//! JSON logs and cheap hashing, and `serve` started with its first key and bound address
//! read back. Shared by the binary and transfer tests.
#![allow(clippy::unwrap_used, dead_code)]

use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_hallpass");

/// `hallpass` on `url`, listening on port 0, logging JSON, hashing cheaply (these tests are
/// not about hashing cost).
pub fn command(url: &str) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HALLPASS_DATABASE_URL", url)
        .env("HALLPASS_LISTEN", "127.0.0.1:0")
        .env("HALLPASS_LOG_FORMAT", "json")
        .env("HALLPASS_ARGON2_MEMORY_KIB", "256")
        .env("HALLPASS_ARGON2_ITERATIONS", "1")
        .kill_on_drop(true);
    c
}

/// A running `hallpass serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub first_key: Option<String>,
}

/// Starts `hallpass serve` on `url`, waiting at most `limit` for it to listen; reads the
/// first key (if printed) from stdout and the bound address from the JSON log on stderr.
pub async fn start(url: &str, limit: Duration) -> Server {
    let mut child = command(url)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hallpass");
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut addr = None;
    let deadline = tokio::time::Instant::now() + limit;
    while addr.is_none() {
        let line = tokio::time::timeout_at(deadline, err.next_line()).await.expect("server start timed out");
        let line = line.unwrap().expect("server exited before listening");
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && v["message"] == "hallpass listening"
        {
            addr = v["addr"].as_str().map(str::to_owned);
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = err.next_line().await {} });
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut first_key = None;
    // The key is printed before the server listens, so it is already in the pipe.
    if let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_millis(300), out.next_line()).await
        && line.starts_with("First API key")
    {
        first_key = out.next_line().await.unwrap();
    }
    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
    Server { child, base: format!("http://{}", addr.unwrap()), first_key }
}
