//! Presented secrets: any text is accepted, hashes like its trimmed self, and two texts
//! hash alike only when they are the same once trimmed.
#![no_main]

use hallpass_core::{ApiKeySecret, Code, SessionToken, TokenHash};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (a, b) = input;
    let ha = SessionToken::from_presented(a).hash();
    assert_eq!(ha, Code::from_presented(a).hash());
    assert_eq!(ha, ApiKeySecret::from_presented(a).hash());
    assert_eq!(ha, TokenHash::of(a.trim()));
    assert_eq!(ha == SessionToken::from_presented(b).hash(), a.trim() == b.trim());
});
