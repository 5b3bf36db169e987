//! JSON merge patch (RFC 7396) on session data: never panics; an object patch applies and
//! applying it again changes nothing; anything else is refused and changes nothing.
#![no_main]

use hallpass_core::service::merge_patch;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|input: (&str, &str)| {
    let (Ok(Value::Object(target)), Ok(patch)) =
        (serde_json::from_str::<Value>(input.0), serde_json::from_str::<Value>(input.1))
    else {
        return;
    };
    let mut once = target.clone();
    match merge_patch(&mut once, &patch) {
        Ok(()) => {
            assert!(patch.is_object());
            let mut twice = once.clone();
            merge_patch(&mut twice, &patch).expect("applies again");
            assert_eq!(twice, once);
        }
        Err(_) => {
            assert!(!patch.is_object());
            assert_eq!(once, target);
        }
    }
});
