//! How fast PostgreSQL imports and exports users (a measurement, ignored by default):
//! `cargo test -p hallpass-postgres --test import_speed -- --ignored --nocapture`.

use hallpass_postgres::testing::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn import_100k_users() {
    let Some(db) = TestDb::create().await else { return };
    let run = hallpass_store_tests::speed::import_export(db.store(), 100_000, 1000).await;
    println!("{}", run.report("postgres"));
}
