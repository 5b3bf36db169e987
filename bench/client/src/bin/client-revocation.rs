//! Revocation latency across processes: a `Sessions` cache connected to server A holds a
//! session; `DELETE /v1/session` is sent to server B; the time from sending it until A's
//! client no longer answers the session from memory (polled every 100 µs). Prints one
//! JSON line.
//!
//! `client-revocation BASE_A BASE_B API_KEY [SAMPLES]`

use hallpass_client::{CacheConfig, Client, Sessions};
use hallpass_client_bench::{fresh_user, summary, token};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(a), Some(b), Some(key)) = (args.get(1), args.get(2), args.get(3)) else {
        return Err("usage: client-revocation BASE_A BASE_B API_KEY [SAMPLES]".into());
    };
    let samples: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(200);
    let on_a = Client::new(a, key)?;
    let on_b = Client::new(b, key)?;
    let name = fresh_user(&on_a).await?;
    let sessions = Sessions::start(on_a.clone(), CacheConfig::default());
    if !sessions.wait_live(Duration::from_secs(10)).await {
        return Err("the change stream did not connect".into());
    }
    on_b.healthz().await?;
    let limit = Duration::from_secs(5);
    let mut times = Vec::with_capacity(samples);
    let mut call = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = token(&on_a, &name).await?;
        sessions.check(&t).await?;
        if sessions.cached(&t).is_none() {
            return Err("the session was not cached".into());
        }
        let start = Instant::now();
        let ended = on_b.end_session(&t);
        tokio::pin!(ended);
        let mut answered = None;
        loop {
            tokio::select! {
                r = &mut ended, if answered.is_none() => { r?; answered = Some(start.elapsed()); }
                () = tokio::time::sleep(Duration::from_micros(100)) => {}
            }
            if sessions.cached(&t).is_none() {
                times.push(start.elapsed());
                break;
            }
            if start.elapsed() > limit {
                return Err("not refused within 5 s".into());
            }
        }
        if answered.is_none() {
            (&mut ended).await?;
            answered = Some(start.elapsed());
        }
        call.extend(answered);
    }
    let over = times.iter().filter(|d| **d > Duration::from_millis(100)).count();
    let (p50, p99, max, mean) = summary(&mut times);
    let (c50, c99, _, _) = summary(&mut call);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{}",
        serde_json::json!({
            "what": "DELETE /v1/session on B -> refused from memory by a hallpass-client cache on A",
            "samples": samples,
            "p50_ms": ms(p50), "p99_ms": ms(p99), "max_ms": ms(max), "mean_ms": ms(mean),
            "over_100ms": over,
            "delete_call_p50_ms": ms(c50), "delete_call_p99_ms": ms(c99),
        })
    );
    Ok(())
}
