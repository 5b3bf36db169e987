//! Webhooks, in process on SQLite (a temporary file), with the real worker
//! (`hallpass_server::webhooks`) delivering to a receiver on 127.0.0.1 that answers 200.
//! Prints one JSON line per figure:
//!
//! - `delivered_per_s`: N `user.created` deliveries queued first (N registrations without
//!   a password, the worker stopped), then the worker started: deliveries per second until
//!   the receiver has all N (signature, HTTP request, outcome written per delivery);
//! - `login_no_subscription` / `login_one_subscription`: password logins with the default
//!   Argon2id costs, one at a time, alternating (ABBA) between a scope without endpoints
//!   and a scope with one endpoint wanting `login.succeeded` (the worker running), each timed;
//!   `login_overhead` their mean ratio minus one (the target: under 5 %).
//!
//! `webhooks [N] [LOGINS]` (defaults 2000 and 60).
#![forbid(unsafe_code)]

use hallpass::service::{Credentials, LoginRequest, NewUser, WebhookInput};
use hallpass::{ClientInfo, Hallpass, Password, Scope, ServerSecret, Settings, UserRef, Username};
use hallpass_bench::{BENCH_PASSWORD, Summary};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

async fn receiver() -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = axum::Router::new().fallback(axum::routing::post(move || {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::OK
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}/hook"), count))
}

fn worker(hp: &Arc<Hallpass>) -> tokio::sync::watch::Sender<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let options = hallpass_server::webhooks::WebhookOptions {
        refuse_private: false,
        per_endpoint: 4,
        keep_sent: time::Duration::days(7),
    };
    hallpass_server::webhooks::spawn_worker(options, hp.clone(), rx);
    tx
}

async fn login(hp: &Hallpass, scope: &Scope) -> anyhow::Result<Duration> {
    let started = Instant::now();
    hp.login(
        scope,
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
    Ok(started.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let logins: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(60);
    let dir = tempfile::tempdir()?;
    let hp = hallpass::open_sqlite(dir.path().join("bench.db"), Settings::default()).await?;
    let hp = Arc::new(hp.with_server_secret(ServerSecret::from_bytes(&[7; 32])));
    let (url, count) = receiver().await?;

    // Deliveries per second.
    let queue = Scope::parse("queue")?;
    let input =
        WebhookInput { url: Some(url.clone()), events: Some(vec!["user.created".into()]), description: None };
    hp.create_webhook(&queue, input).await?;
    for i in 0..n {
        let user = NewUser { username: Some(Username::parse(&format!("u{i}"))?), ..Default::default() };
        hp.register(&queue, user).await?;
    }
    let started = Instant::now();
    let stop = worker(&hp);
    while count.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
        anyhow::ensure!(started.elapsed() < Duration::from_secs(600), "not delivered in 10 minutes");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"name": "delivered_per_s", "n": n, "seconds": secs, "per_s": (n as f64 / secs).round()})
    );

    // Login latency with and without a subscription.
    let (none, one) = (Scope::parse("plain")?, Scope::parse("hooked")?);
    for scope in [&none, &one] {
        let user = NewUser {
            username: Some(Username::parse("alice")?),
            password: Some(Password::new(BENCH_PASSWORD)?),
            ..Default::default()
        };
        hp.register(scope, user).await?;
    }
    let input =
        WebhookInput { url: Some(url), events: Some(vec!["login.succeeded".into()]), description: None };
    hp.create_webhook(&one, input).await?;
    // Warm both (the hashing pool, SQLite's caches).
    login(&hp, &none).await?;
    login(&hp, &one).await?;
    // In ABBA order: the delivery a subscribed login queues runs in the background during
    // whichever login comes next, so a fixed order would charge it to the scope without
    // endpoints every time.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..logins {
        if i % 2 == 0 {
            a.push(login(&hp, &none).await?);
            b.push(login(&hp, &one).await?);
        } else {
            b.push(login(&hp, &one).await?);
            a.push(login(&hp, &none).await?);
        }
    }
    let (sa, sb) = (Summary::of(&mut a), Summary::of(&mut b));
    println!("{}", sa.json("login_no_subscription"));
    println!("{}", sb.json("login_one_subscription"));
    println!(
        "{}",
        serde_json::json!({"name": "login_overhead", "mean_ratio_minus_1": sb.mean_us / sa.mean_us - 1.0,
            "p50_ratio_minus_1": sb.p50_us / sa.p50_us - 1.0})
    );
    let _ = stop.send(true);
    Ok(())
}
