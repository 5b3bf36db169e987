//! The shared storage conformance suite (`hallpass-store-tests`), run unchanged against
//! `MySqlStore`: each case gets a fresh, migrated database of its own on the test server
//! (`HALLPASS_TEST_MYSQL_URL`, see `hallpass_mysql::testing`), dropped when the case ends.

async fn make() -> Option<(std::sync::Arc<dyn hallpass_core::Store>, Box<dyn std::any::Any + Send>)> {
    hallpass_mysql::testing::conformance_store().await
}

hallpass_store_tests::conformance!(optional make);
