//! The raw Argon2id rate: verifications per second of a hash made with the server's default
//! `HashParams` (read from hallpass-core, so a change there moves this too), on as many OS
//! threads as the server's hashing pool uses by default (`hash_threads = 0`: the number of
//! CPUs), for a fixed time. A login verifies one such hash, so this is its ceiling.
//!
//! `argon2-rate [SECONDS] [THREADS]` (default 10 s, the number of CPUs). Prints one JSON line.
#![forbid(unsafe_code)]

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use hallpass::HashParams;
use hallpass_bench::BENCH_PASSWORD;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10.0);
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let threads: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(cpus);
    let p = HashParams::default();
    let params = Params::new(p.m_cost, p.t_cost, p.p_cost, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let phc =
        argon2.hash_password(BENCH_PASSWORD.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?.to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, count, argon2, phc) = (stop.clone(), count.clone(), argon2.clone(), phc.clone());
            std::thread::spawn(move || {
                let parsed = PasswordHash::new(&phc).expect("own hash parses");
                while !stop.load(Ordering::Relaxed) {
                    argon2.verify_password(BENCH_PASSWORD.as_bytes(), &parsed).expect("own hash verifies");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = count.load(Ordering::Relaxed);
    let cpu = process_cpu_seconds();
    println!(
        "{}",
        serde_json::json!({
            "name": "argon2id_verify", "threads": threads, "m_cost_kib": p.m_cost, "t_cost": p.t_cost,
            "p_cost": p.p_cost, "verifications": n, "seconds": elapsed, "per_second": n as f64 / elapsed,
            "cpu_seconds": cpu, "per_cpu_second": cpu.map(|c| (n + 1) as f64 / c),
        })
    );
    Ok(())
}

/// CPU time (user + system) this process (the one setup hash included, hence `n + 1` above) has used so far, from `/proc/self/stat` (Linux;
/// clock ticks of 1/100 s, the kernel's USER_HZ). `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
