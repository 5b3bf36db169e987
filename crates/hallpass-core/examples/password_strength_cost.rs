//! What one password-strength estimate costs, for ordinary and adversarial passwords of
//! 8 to 256 characters. Run it optimised:
//!
//! ```sh
//! cargo run --release -p hallpass-core --example password_strength_cost
//! ```
//!
//! The worst inputs mix many of zxcvbn's l33t characters (`4@8({[<3691!|70$5+%2`): each
//! distinct substitution table is another dictionary pass over every substring.

use hallpass_core::Password;
use hallpass_core::password::strength::{self, ANALYSED_CHARS};
use std::time::{Duration, Instant};

/// A deterministic pseudo-random string of `n` characters drawn from `alphabet`.
fn mix(alphabet: &str, n: usize, seed: u64) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            chars[((x >> 33) as usize) % chars.len()]
        })
        .collect()
}

fn main() {
    const L33T: &str = "4@8({[<3691!|70$5+%2";
    let words = strength::user_words(Some("someuser"), Some("some.user@example.com"));
    let mut cases: Vec<(String, String)> = vec![
        ("common".into(), "iloveyou".into()),
        ("passphrase".into(), "correct horse battery staple".into()),
        ("passphrase x9, 256".into(), "correct horse battery staple ".repeat(9).chars().take(256).collect()),
        ("one letter, 256".into(), "ab".repeat(128)),
    ];
    for n in [16, 32, 48, 64, 100, 256] {
        cases.push((format!("l33t only, {n}"), mix(L33T, n, n as u64)));
        cases.push((
            format!("l33t + letters, {n}"),
            mix(&format!("{L33T}abcdefghijklmnopqrstuvwxyz"), n, n as u64),
        ));
    }
    // The first call builds zxcvbn's dictionaries.
    let start = Instant::now();
    let _ = strength::check(&Password::new("warm up the dictionaries").expect("ok"), 3, &words);
    println!("first call (dictionaries): {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
    println!("analysed characters: at most {ANALYSED_CHARS}");
    let mut worst = Duration::ZERO;
    for (name, password) in &cases {
        let password = Password::new(password).expect("8 to 256 characters");
        let rounds = 5;
        let start = Instant::now();
        let mut verdict = Ok(());
        for _ in 0..rounds {
            verdict = strength::check(&password, 3, &words);
        }
        let each = start.elapsed() / rounds;
        worst = worst.max(each);
        let verdict = if verdict.is_ok() { "accepted" } else { "refused" };
        println!("{:>9.3} ms  {verdict:<8}  {name}", each.as_secs_f64() * 1e3);
    }
    println!("worst: {:.1} ms", worst.as_secs_f64() * 1e3);
}
