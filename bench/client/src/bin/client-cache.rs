//! The cached session check through `hallpass-client`: `Sessions::check` of one token once
//! the change stream is live and the session is in memory, timed call by call (each sample
//! includes one `Instant::now()` pair, about 20 ns). Prints one JSON line.
//!
//! `client-cache BASE_URL API_KEY [SAMPLES]`

use hallpass_client::{CacheConfig, Client, Sessions};
use hallpass_client_bench::{fresh_user, summary, token};
use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(base), Some(key)) = (args.get(1), args.get(2)) else {
        return Err("usage: client-cache BASE_URL API_KEY [SAMPLES]".into());
    };
    let samples: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(200_000);
    let hp = Client::new(base, key)?;
    let name = fresh_user(&hp).await?;
    let t = token(&hp, &name).await?;
    let sessions = Sessions::start(hp, CacheConfig::default());
    if !sessions.wait_live(Duration::from_secs(10)).await {
        return Err("the change stream did not connect".into());
    }
    sessions.check(&t).await?;
    for _ in 0..10_000 {
        sessions.check(&t).await?;
    }
    let before = sessions.stats();
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        let v = sessions.check(&t).await?;
        times.push(start.elapsed());
        std::hint::black_box(v);
    }
    let after = sessions.stats();
    let (p50, p99, max, mean) = summary(&mut times);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{}",
        serde_json::json!({
            "what": "hallpass-client Sessions::check, cached",
            "samples": samples,
            "p50_us": us(p50), "p99_us": us(p99), "max_us": us(max), "mean_us": us(mean),
            "from_memory": after.hits - before.hits,
            "asked_server": after.misses - before.misses,
        })
    );
    Ok(())
}
