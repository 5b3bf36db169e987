//! Shared bits of the benchmark tools run by `bench/run.sh` (see `bench/README.md`).
#![forbid(unsafe_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use std::time::Duration;

/// The password every bench user has (zxcvbn score 4, so every scope policy accepts it).
pub const BENCH_PASSWORD: &str = "Tr0ub4dor&3-horse-staple";

/// The session token of seeded session `index`: `hps_` + base64url(SHA-256("hallpass-bench:"
/// index)), the shape of a real token, so the load scripts can present known tokens.
pub fn seeded_token(index: u64) -> String {
    let digest = Sha256::digest(format!("hallpass-bench:{index}").as_bytes());
    format!("hps_{}", URL_SAFE_NO_PAD.encode(digest))
}

/// The username of seeded user `index`.
pub fn seeded_username(index: u64) -> String {
    format!("bench{index}")
}

/// Percentiles and mean of a set of durations, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Mean.
    pub mean_us: f64,
}

impl Summary {
    /// Summarises `samples` (sorted in place).
    pub fn of(samples: &mut [Duration]) -> Summary {
        samples.sort_unstable();
        let n = samples.len();
        if n == 0 {
            return Summary { n, p50_us: 0.0, p99_us: 0.0, mean_us: 0.0 };
        }
        let at = |q: f64| samples[((n as f64 * q) as usize).min(n - 1)].as_secs_f64() * 1e6;
        let total: f64 = samples.iter().map(Duration::as_secs_f64).sum();
        Summary { n, p50_us: at(0.50), p99_us: at(0.99), mean_us: total / n as f64 * 1e6 }
    }

    /// One JSON line for the bench script.
    pub fn json(&self, name: &str) -> String {
        serde_json::json!({
            "name": name, "n": self.n,
            "p50_us": round2(self.p50_us), "p99_us": round2(self.p99_us), "mean_us": round2(self.mean_us),
        })
        .to_string()
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_look_real_and_differ() {
        let a = seeded_token(0);
        assert!(a.starts_with("hps_"));
        assert_eq!(a.len(), 4 + 43);
        assert_ne!(a, seeded_token(1));
    }

    #[test]
    fn summary_percentiles() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let s = Summary::of(&mut v);
        assert_eq!(s.n, 100);
        assert!((s.p50_us - 51.0).abs() < 1e-9);
        assert!((s.p99_us - 100.0).abs() < 1e-9);
    }
}
