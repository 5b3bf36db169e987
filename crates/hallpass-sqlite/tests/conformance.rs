//! The shared storage conformance suite (`hallpass-store-tests`), run unchanged against
//! `SqliteStore`: each case gets a fresh database file in its own temporary directory.

use hallpass_core::Store;
use hallpass_sqlite::SqliteStore;
use std::any::Any;
use std::sync::Arc;

async fn make() -> (Arc<dyn Store>, Box<dyn Any + Send>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("t.db")).expect("open a fresh SQLite store");
    // The directory (and with it the file) lives as long as the guard.
    (Arc::new(store), Box::new(dir))
}

hallpass_store_tests::conformance!(make);
