//! Running the real `hallpass` binary in tests: a command with a database URL, port 0,
//! JSON logs and cheap hashing, and `serve` started with its first key and bound address
//! read back. Shared by the binary, transfer and multiprocess tests.
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
    serve(command(url), limit).await
}

/// [`start`] with a command of the caller's ([`command`] with more settings): runs it with
/// `serve`. A server that exits before listening fails the test with what it logged.
pub async fn serve(mut command: Command, limit: Duration) -> Server {
    let mut child =
        command.arg("serve").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start hallpass");
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let addr = loop {
        let line = tokio::time::timeout_at(deadline, err.next_line()).await.expect("server start timed out");
        let Some(line) = line.unwrap() else {
            panic!("the server exited before listening:\n{}", seen.join("\n"));
        };
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && v["message"] == "hallpass listening"
            && let Some(addr) = v["addr"].as_str()
        {
            break addr.to_owned();
        }
        seen.push(line);
    };
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
    Server { child, base: format!("http://{addr}"), first_key }
}

impl Server {
    /// Kills the server (SIGKILL) and waits for it.
    pub async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}
