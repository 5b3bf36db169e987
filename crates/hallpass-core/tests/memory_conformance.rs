//! The storage conformance suite, run on the in-memory store.

use hallpass_core::{MemoryStore, Store};
use std::any::Any;
use std::sync::Arc;

async fn make() -> (Arc<dyn Store>, Box<dyn Any + Send>) {
    (Arc::new(MemoryStore::new()), Box::new(()))
}

hallpass_store_tests::conformance!(make);

#[test]
fn every_case_is_listed_once() {
    let mut names = hallpass_store_tests::CASE_NAMES.to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), hallpass_store_tests::CASE_NAMES.len());
    assert!(names.contains(&"scope_isolation"));
}
