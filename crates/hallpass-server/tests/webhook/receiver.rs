//! A webhook receiver for the tests: a real HTTP server on 127.0.0.1 that records every
//! request and checks its Standard Webhooks signature itself (HMAC-SHA256 with the `hmac`
//! crate, not hallpass's code). It can answer 500 to the first requests, answer slowly,
//! or be stopped and started again on the same port.

#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// The status it answered.
    pub answered: u16,
    pub path: String,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }
}

/// What the handler shares with the test.
type Shared = (Arc<Mutex<Vec<Received>>>, Arc<Behaviour>);

#[derive(Default)]
pub struct Behaviour {
    /// Answer 500 to this many requests first.
    pub fail_first: AtomicUsize,
    /// Wait this long before answering (milliseconds).
    pub delay_ms: AtomicUsize,
}

/// The receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Received>>>,
    pub behaviour: Arc<Behaviour>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

async fn handle(
    axum::extract::State((got, behaviour)): axum::extract::State<Shared>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::http::StatusCode {
    let delay = behaviour.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    let fail =
        behaviour.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let status = if fail { 500 } else { 200 };
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    got.lock().unwrap().push(Received {
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
        body,
        answered: status,
        path: uri.path().to_owned(),
    });
    axum::http::StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    /// Starts on a free port.
    pub async fn start() -> Arc<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let r = Arc::new(Receiver {
            addr,
            got: Arc::default(),
            behaviour: Arc::default(),
            server: Mutex::new(None),
        });
        r.serve(listener);
        r
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = axum::Router::new()
            .fallback(axum::routing::post(handle))
            .with_state((self.got.clone(), self.behaviour.clone()));
        let h = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *self.server.lock().unwrap() = Some(h);
    }

    /// Stops listening (connections are refused until [`Receiver::restart`]).
    pub fn stop(&self) {
        if let Some(h) = self.server.lock().unwrap().take() {
            h.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&self) {
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        self.serve(listener);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received (at most `secs` seconds).
    pub async fn wait_for(&self, secs: u64, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.received();
            if done(&got) {
                return got;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; received: {got:#?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Whether one of the `v1,` signatures of `r` is the HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` under `secret` (`whsec_` + base64 of the key).
pub fn verifies(r: &Received, secret: &str) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").expect("whsec_ prefix")).expect("base64");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    r.signature.split(' ').any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}
