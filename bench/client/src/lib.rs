//! Shared pieces of the client benchmarks: percentiles, and a user with a session on a
//! live server.

use hallpass_client::{Client, LoginRequest, RegisterRequest};
use std::time::Duration;

/// A password no strength rule refuses.
pub const PASSWORD: &str = "quilted marsupial drumbeat 42";

/// `(p50, p99, max, mean)` of `samples`, sorted in place.
pub fn summary(samples: &mut [Duration]) -> (Duration, Duration, Duration, Duration) {
    samples.sort_unstable();
    let n = samples.len().max(1);
    let at = |q: f64| samples[((n as f64 * q) as usize).min(n - 1)];
    let sum: Duration = samples.iter().sum();
    (at(0.50), at(0.99), samples[n - 1], sum / n as u32)
}

/// Registers a fresh user on `hp` and answers its name.
///
/// # Errors
///
/// When the server refuses.
pub async fn fresh_user(hp: &Client) -> Result<String, hallpass_client::Error> {
    let name = format!("bench-{}", uuid::Uuid::now_v7().simple());
    hp.register(&RegisterRequest {
        username: Some(name.clone()),
        password: Some(PASSWORD.into()),
        ..Default::default()
    })
    .await?;
    Ok(name)
}

/// Logs `name` in and answers the token.
///
/// # Errors
///
/// When the server refuses, or asks for a second factor.
pub async fn token(hp: &Client, name: &str) -> Result<String, hallpass_client::Error> {
    match hp.login(&LoginRequest::password(name, PASSWORD)).await?.session() {
        Some(s) => Ok(s.token),
        None => Err(hallpass_client::Error::Decode("a second factor was required".into())),
    }
}
