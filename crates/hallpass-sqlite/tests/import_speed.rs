//! How fast SQLite imports and exports users (a measurement, ignored by default):
//! `cargo test -p hallpass-sqlite --test import_speed -- --ignored --nocapture`.

use hallpass_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn import_100k_users() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("speed.db")).expect("open");
    let run = hallpass_store_tests::speed::import_export(&store, 100_000, 1000).await;
    println!("{}", run.report("sqlite"));
}
