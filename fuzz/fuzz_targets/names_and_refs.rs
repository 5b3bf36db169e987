//! Scope and provider names (accepted exactly when they match `[a-z0-9][a-z0-9_-]{0,62}`)
//! and `UserRef::parse` / `UserRef::login` (never panic; read by shape).
#![no_main]

use hallpass_core::{ProviderName, Scope, UserRef};
use libfuzzer_sys::fuzz_target;

fn matches_pattern(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

fuzz_target!(|s: &str| {
    assert_eq!(Scope::parse(s).is_ok(), matches_pattern(s));
    assert_eq!(ProviderName::parse(s).is_ok(), matches_pattern(s));
    if let Ok(r) = UserRef::parse(s) {
        match r {
            UserRef::Id(_) => {}
            UserRef::Email(_) => assert!(s.contains('@')),
            UserRef::Username(_) => assert!(!s.contains('@')),
        }
    }
    let _ = UserRef::login(s);
});
