//! `Email::parse`: never panics; an accepted address keeps what was typed and its key is
//! normalised, its domain mapped to ASCII by UTS #46 (an address literal aside).
#![no_main]

use hallpass_core::{Email, UserRef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    if let Ok(e) = Email::parse(s) {
        assert_eq!(e.as_str(), s.trim());
        assert!(e.as_str().len() <= 254 && e.as_str().contains('@'));
        assert_eq!(Email::key_of(e.key()), e.key());
        let domain = e.key().rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        assert!(domain.is_ascii() || domain.starts_with('['), "{}", e.key());
        assert_eq!(UserRef::parse(e.as_str()), Ok(UserRef::Email(e.key().to_owned())));
    }
});
