//! A real SMTP server for the mail tests: `sink.py` (Python's aiosmtpd) on 127.0.0.1,
//! started by the test, writing each accepted message to a temporary folder that the test
//! reads; optionally with STARTTLS or implicit TLS (a CA and certificate made at start,
//! [`Sink::ca_file`]) and AUTH. The Python comes from the project's `.venv-tools`
//! (`scripts/setup.sh` installs aiosmtpd and cryptography there), else `python3`. Without aiosmtpd a test is skipped with a notice,
//! unless `CI=true`, where it fails.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A free TCP port on 127.0.0.1 (bound, then released: the sink or server takes it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-tools/bin/python");
    if venv.exists() { venv } else { PathBuf::from("python3") }
}

/// Whether aiosmtpd can be imported; outside CI a missing one prints a notice (skip).
pub fn available() -> bool {
    let ok = std::process::Command::new(python())
        .args(["-c", "import aiosmtpd.controller, cryptography"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "aiosmtpd or cryptography is missing (scripts/setup.sh installs them into .venv-tools); under CI=true this fails"
        );
        let _ = writeln!(std::io::stderr(), "skipping: aiosmtpd is not installed (run scripts/setup.sh)");
    }
    ok
}

/// How a sink protects its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Offers STARTTLS and refuses mail before it.
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// What a sink demands beyond plain SMTP.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// TLS, with a certificate for 127.0.0.1 signed by a CA made at start ([`Sink::ca_file`]).
    pub tls: Option<Tls>,
    /// AUTH (PLAIN or LOGIN) with exactly this user and password before MAIL.
    pub auth: Option<(String, String)>,
}

/// A delivered message.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The envelope recipients.
    pub to: String,
    /// The message with quoted-printable soft breaks and `=3D` undone (enough to read
    /// codes and links).
    pub text: String,
    /// The `Subject:` header.
    pub subject: String,
    /// The TLS version the message came over (`TLSv1.3`), or `none`.
    pub tls: String,
    /// Whether the client had authenticated.
    pub authenticated: bool,
}

impl Mail {
    /// The first `hpc_` code.
    pub fn long_code(&self) -> Option<String> {
        let start = self.text.find("hpc_")?;
        Some(
            self.text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect(),
        )
    }
    /// The six digits after "sign-in code is ".
    pub fn short_code(&self) -> Option<String> {
        let start = self.text.find("sign-in code is ")? + "sign-in code is ".len();
        Some(self.text[start..].chars().take_while(char::is_ascii_digit).collect())
    }
    /// The first link starting with `base` (up to the end of the line or a quote).
    pub fn link(&self, base: &str) -> Option<String> {
        let start = self.text.find(base)?;
        Some(
            self.text[start..].chars().take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<').collect(),
        )
    }
}

fn decode_qp(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let b = joined.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A running sink.
pub struct Sink {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// Where the CA of a TLS sink lives (kept while the sink runs).
    tls_dir: Option<tempfile::TempDir>,
}

impl Sink {
    /// Starts a sink on `port` (ready when this returns). `kill_pid`: SIGKILL that process
    /// on the first message, after receiving it and before answering 250.
    pub async fn start(port: u16, kill_pid: Option<u32>, reject_rcpt: Option<&str>) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(port, dir, kill_pid, reject_rcpt).await
    }

    /// A sink on a free port with TLS and/or AUTH.
    pub async fn start_with(options: &Options) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        Self::spawn(free_port(), dir, None, None, options).await
    }

    /// [`Sink::start`] writing into an existing folder (a sink started again after an outage).
    pub async fn start_in(
        port: u16,
        dir: tempfile::TempDir,
        kill_pid: Option<u32>,
        reject_rcpt: Option<&str>,
    ) -> Sink {
        Self::spawn(port, dir, kill_pid, reject_rcpt, &Options::default()).await
    }

    async fn spawn(
        port: u16,
        dir: tempfile::TempDir,
        kill_pid: Option<u32>,
        reject_rcpt: Option<&str>,
        options: &Options,
    ) -> Sink {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/sink.py");
        let mut cmd = Command::new(python());
        cmd.arg(script).args(["--port", &port.to_string(), "--dir"]).arg(dir.path());
        if let Some(pid) = kill_pid {
            cmd.args(["--kill-pid", &pid.to_string()]);
        }
        if let Some(r) = reject_rcpt {
            cmd.args(["--reject-rcpt", r]);
        }
        let tls_dir = options.tls.map(|tls| {
            let tls_dir = tempfile::tempdir().unwrap();
            let mode = match tls {
                Tls::StartTls => "starttls",
                Tls::Implicit => "implicit",
            };
            cmd.args(["--tls", mode, "--tls-dir"]).arg(tls_dir.path());
            tls_dir
        });
        if let Some((user, password)) = &options.auth {
            cmd.args(["--auth", &format!("{user}:{password}")]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), out.next_line()).await.expect("sink start");
        assert_eq!(line.unwrap().as_deref(), Some("ready"));
        Sink { child, port, dir, tls_dir }
    }

    /// The PEM file of the CA that signed a TLS sink's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.tls_dir.as_ref().expect("a TLS sink").path().join("ca.pem")
    }

    /// The `smtp://` URL of this sink (opportunistic STARTTLS: it offers none).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message delivered so far, in arrival order.
    pub fn messages(&self) -> Vec<Mail> {
        read_dir(self.dir.path())
    }

    /// Waits until at least `n` messages arrived (at most `limit`); returns all of them.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} mails, got {}: {got:#?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the sink and hands back its folder.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill().await;
        self.dir
    }
}

/// The messages in a sink's folder.
pub fn read_dir(dir: &std::path::Path) -> Vec<Mail> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml") && !n.starts_with('.'))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let raw = std::fs::read_to_string(dir.join(n)).unwrap();
            let to = raw.lines().next().unwrap_or("").trim_start_matches("X-Envelope-To: ").trim().to_owned();
            let subject =
                raw.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or("").trim().to_owned();
            let header =
                |name: &str| raw.lines().find_map(|l| l.strip_prefix(name)).unwrap_or("").trim().to_owned();
            let (tls, authenticated) = (header("X-Sink-TLS: "), header("X-Sink-Auth: ") == "yes");
            Mail { to, text: decode_qp(&raw), subject, tls, authenticated }
        })
        .collect()
}
