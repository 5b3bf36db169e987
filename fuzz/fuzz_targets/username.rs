//! `Username::parse`: never panics; an accepted username keeps what was typed, and its key
//! is a fixed point that, as a ref, finds the same user.
#![no_main]

use hallpass_core::{UserRef, Username};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    if let Ok(u) = Username::parse(s) {
        assert_eq!(u.as_str(), s.trim());
        assert_eq!(Username::key_of(u.key()), u.key());
        // A ref made of the key finds the same user; the key has no '@', '/' or id shape.
        assert_eq!(UserRef::parse(u.key()), Ok(UserRef::Username(u.key().to_owned())));
        assert!(!u.key().contains(['@', '/']));
        assert_eq!(UserRef::parse(u.as_str()), Ok(UserRef::Username(u.key().to_owned())));
    }
});
