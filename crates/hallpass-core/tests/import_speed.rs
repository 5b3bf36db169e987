//! How fast the in-memory store imports and exports users (a measurement, ignored by
//! default): `cargo test -p hallpass-core --test import_speed -- --ignored --nocapture`.

use hallpass_core::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn import_100k_users() {
    let store = MemoryStore::new();
    let run = hallpass_store_tests::speed::import_export(&store, 100_000, 1000).await;
    println!("{}", run.report("memory"));
}
