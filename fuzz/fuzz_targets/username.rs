//! `Username::parse`: never panics; an accepted username keeps what was typed, and its key
//! is a fixed point that, as a ref, finds the same user. Neither form holds a control or a
//! known invisible character, nor anything a URL client rewrites in a path segment.
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
        for form in [u.as_str(), u.key()] {
            // Stands as one path segment unchanged.
            assert!(form != "." && form != "..", "{form:?}");
            assert!(!form.contains(['/', '\\', '?', '#', '%']), "{form:?}");
            // No control, zero-width, BOM, soft hyphen, bidi, variation selector, tag or filler.
            assert!(
                !form.chars().any(|c| c.is_control()
                    || matches!(c, '\u{AD}' | '\u{34F}' | '\u{61C}' | '\u{115F}' | '\u{1160}' | '\u{180B}'..='\u{180F}'
                        | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
                        | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{E0000}'..='\u{E0FFF}')),
                "{form:?}"
            );
        }
    }
});
