//! How fast MariaDB imports and exports users (a measurement, ignored by default):
//! `cargo test -p hallpass-mysql --test import_speed -- --ignored --nocapture`.

use hallpass_mysql::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn import_100k_users() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = db.store().await;
    let run = hallpass_store_tests::speed::import_export(&store, 100_000, 1000).await;
    println!("{}", run.report("mariadb"));
}
