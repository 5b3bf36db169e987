//! SMTP delivery of one message on lettre's low-level connection, so that the outbox row
//! is marked `in_doubt` at the point of no return: after the server said yes to MAIL, RCPT
//! and DATA, before the message and its final terminator go out. Before that point every
//! failure is certain (nothing was accepted); after it, only the server's answer to the
//! terminator tells, and a lost answer leaves the row in doubt, never sent twice.

use anyhow::{Context, bail};
use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailParameter};
use std::future::Future;
use std::time::Duration;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: STARTTLS when the server offers it, else plain.
    Opportunistic,
    /// `smtp://...?tls=required`: STARTTLS or fail.
    Required,
    /// `smtp://...?tls=none`: never TLS (a relay on the same host).
    None,
    /// `smtps://`: TLS from the first byte.
    Wrapper,
}

/// Where mail goes, parsed from `HALLPASS_SMTP_URL`.
#[derive(Clone)]
pub struct SmtpTarget {
    /// Host name (also the name TLS checks the certificate against).
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS policy.
    pub security: Security,
    credentials: Option<Credentials>,
    /// Certificates (PEM) trusted besides the public roots (`smtp_ca_file`): a private CA
    /// or a self-signed relay.
    ca_pem: Option<Vec<u8>>,
    /// How long one step (connect, a command, the message) may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_pem.is_some())
            .finish()
    }
}

impl SmtpTarget {
    /// Parses `smtp://[user[:password]@]host[:port][?tls=required|none]` or
    /// `smtps://...`; the password may instead come from `password_file` (its contents,
    /// trailing newline removed). `ca_file`: PEM certificates to trust besides the public
    /// roots (checked here, so a wrong file stops the start, not the first mail).
    pub fn parse(raw: &str, password_file: Option<&str>, ca_file: Option<&str>) -> anyhow::Result<Self> {
        let url = url::Url::parse(raw).context("smtp_url is not a URL")?;
        let (mut security, default_port) = match url.scheme() {
            "smtp" => (Security::Opportunistic, 587),
            "smtps" => (Security::Wrapper, 465),
            other => bail!("smtp_url must start with smtp:// or smtps:// (got {other}://)"),
        };
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref(), security) {
                ("tls", "required", Security::Opportunistic) => security = Security::Required,
                ("tls", "none", Security::Opportunistic) => security = Security::None,
                ("tls", "opportunistic", Security::Opportunistic) => {}
                _ => bail!("smtp_url: unknown option {k}={v} (smtp:// takes tls=required or tls=none)"),
            }
        }
        let host = url.host_str().filter(|h| !h.is_empty()).context("smtp_url has no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let decode = |s: &str| percent_decode(s);
        let user = decode(url.username());
        let mut password = url.password().map(decode);
        if let Some(file) = password_file {
            let secret = std::fs::read_to_string(file)
                .with_context(|| format!("reading smtp_password_file {file}"))?;
            password = Some(secret.trim_end_matches(['\r', '\n']).to_owned());
        }
        let credentials = match (user.is_empty(), password) {
            (true, None) => None,
            (false, Some(p)) => Some(Credentials::new(user, p)),
            (false, None) => {
                bail!("smtp_url names a user but no password (put it in the URL or smtp_password_file)")
            }
            (true, Some(_)) => bail!("smtp_url has a password but no user"),
        };
        let ca_pem = match ca_file {
            None => None,
            Some(file) => {
                let pem = std::fs::read(file).with_context(|| format!("reading smtp_ca_file {file}"))?;
                let certs = String::from_utf8_lossy(&pem).matches("-----BEGIN CERTIFICATE-----").count();
                if certs == 0 || Certificate::from_pem(&pem).is_err() {
                    bail!("smtp_ca_file {file} holds no PEM certificate");
                }
                if security == Security::None {
                    bail!("smtp_ca_file is set but smtp_url says tls=none");
                }
                Some(pem)
            }
        };
        Ok(Self {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            credentials,
            ca_pem,
            timeout: Duration::from_secs(60),
        })
    }

    /// The URL without its password, for logs and `config check`.
    pub fn display(&self) -> String {
        let scheme = if self.security == Security::Wrapper { "smtps" } else { "smtp" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) =
                (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server accepted the message (250 after the terminator).
    Accepted,
    /// Not delivered, try again later: no connection, a 4xx answer, a timeout before the
    /// point of no return.
    Transient(String),
    /// Not delivered and never will be: a 5xx answer.
    Permanent(String),
    /// The message went out and the answer was lost: it may have been delivered.
    InDoubt(String),
    /// The point-of-no-return hook refused (the lease was lost): nothing was sent.
    Stopped(String),
}

fn step_error(what: &str, e: &lettre::transport::smtp::Error) -> Outcome {
    if e.is_permanent() {
        Outcome::Permanent(format!("{what}: {e}"))
    } else {
        Outcome::Transient(format!("{what}: {e}"))
    }
}

/// Sends `message` from `from` to `to`. `point_of_no_return` runs after DATA was accepted
/// and before the message is written; it answers whether to go on (`Ok(false)` or an
/// error: the session is aborted and nothing is delivered).
pub async fn deliver<F, Fut>(
    target: &SmtpTarget,
    from: &Address,
    to: &Address,
    message: &[u8],
    point_of_no_return: F,
) -> Outcome
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<bool, String>>,
{
    let t = target.timeout;
    let hello = ClientId::Domain("hallpass".into());
    let tls = || {
        let mut builder = TlsParameters::builder(target.host.clone());
        if let Some(pem) = &target.ca_pem {
            builder = builder.add_root_certificate(Certificate::from_pem(pem)?);
        }
        builder.build()
    };
    let wrapper = match target.security {
        Security::Wrapper => match tls() {
            Ok(p) => Some(p),
            Err(e) => return Outcome::Transient(format!("TLS setup: {e}")),
        },
        _ => None,
    };
    let connect = AsyncSmtpConnection::connect_tokio1(
        (target.host.as_str(), target.port),
        Some(t),
        &hello,
        wrapper,
        None,
    );
    let mut conn = match tokio::time::timeout(t, connect).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return step_error("connect", &e),
        Err(_) => return Outcome::Transient("connect: timed out".into()),
    };
    let starttls = match target.security {
        Security::Required => true,
        Security::Opportunistic => conn.can_starttls(),
        Security::None | Security::Wrapper => false,
    };
    if starttls {
        let params = match tls() {
            Ok(p) => p,
            Err(e) => return Outcome::Transient(format!("TLS setup: {e}")),
        };
        match tokio::time::timeout(t, conn.starttls(params, &hello)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return step_error("STARTTLS", &e),
            Err(_) => return Outcome::Transient("STARTTLS: timed out".into()),
        }
    }
    macro_rules! step {
        ($what:literal, $fut:expr) => {
            match tokio::time::timeout(t, $fut).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    conn.abort().await;
                    return step_error($what, &e);
                }
                Err(_) => {
                    conn.abort().await;
                    return Outcome::Transient(concat!($what, ": timed out").into());
                }
            }
        };
    }
    if let Some(creds) = &target.credentials {
        // A refused login is the configuration's fault, not the message's: retried with
        // backoff (an operator may fix the password within the day), never `failed` at once.
        match tokio::time::timeout(t, conn.auth(&[Mechanism::Plain, Mechanism::Login], creds)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                conn.abort().await;
                return Outcome::Transient(format!("AUTH refused (check the SMTP user and password): {e}"));
            }
            Err(_) => {
                conn.abort().await;
                return Outcome::Transient("AUTH: timed out".into());
            }
        }
    }
    let mut params = Vec::new();
    let non_ascii = !AsRef::<str>::as_ref(from).is_ascii() || !AsRef::<str>::as_ref(to).is_ascii();
    if non_ascii {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            conn.abort().await;
            return Outcome::Permanent("the address is not ASCII and the server lacks SMTPUTF8".into());
        }
        params.push(MailParameter::SmtpUtfEight);
    }
    step!("MAIL FROM", conn.command(Mail::new(Some(from.clone()), params)));
    step!("RCPT TO", conn.command(Rcpt::new(to.clone(), vec![])));
    step!("DATA", conn.command(Data));
    match point_of_no_return().await {
        Ok(true) => {}
        Ok(false) => {
            conn.abort().await;
            return Outcome::Stopped("the row's lease was taken over".into());
        }
        Err(e) => {
            conn.abort().await;
            return Outcome::Transient(format!("marking the row in doubt: {e}"));
        }
    }
    let outcome = match tokio::time::timeout(t, conn.message(message)).await {
        Ok(Ok(_)) => Outcome::Accepted,
        // An answer was heard: the server refused the message, it was not delivered.
        Ok(Err(e)) if e.is_permanent() => Outcome::Permanent(format!("message: {e}")),
        Ok(Err(e)) if e.is_transient() => Outcome::Transient(format!("message: {e}")),
        Ok(Err(e)) => Outcome::InDoubt(format!("message: {e}")),
        Err(_) => Outcome::InDoubt("message: no answer in time".into()),
    };
    if outcome == Outcome::Accepted {
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.quit()).await;
    } else {
        conn.abort().await;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let t =
            SmtpTarget::parse("smtp://u%40x:p%3Aw@mail.example.com:2525?tls=required", None, None).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.security), ("mail.example.com", 2525, Security::Required));
        assert!(format!("{t:?}").contains("***") && !format!("{t:?}").contains("p:w"));
        assert_eq!(t.display(), "smtp://mail.example.com:2525");
        let t = SmtpTarget::parse("smtps://mail.example.com", None, None).unwrap();
        assert_eq!((t.port, t.security), (465, Security::Wrapper));
        let t = SmtpTarget::parse("smtp://127.0.0.1:25?tls=none", None, None).unwrap();
        assert_eq!(t.security, Security::None);
        assert!(SmtpTarget::parse("http://x", None, None).is_err());
        assert!(SmtpTarget::parse("smtp://user@x", None, None).is_err());
        assert!(SmtpTarget::parse("smtps://x?tls=none", None, None).is_err());
        assert_eq!(percent_decode("a%40b%zz"), "a@b%zz");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = SmtpTarget::parse("smtps://x", None, empty.to_str()).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        assert!(SmtpTarget::parse("smtps://x", None, Some("/nonexistent/ca.pem")).is_err());
    }
}
