//! The shared storage conformance suite, run against PostgreSQL: one fresh database per
//! case (see `hallpass_postgres::testing`).

async fn make() -> Option<(std::sync::Arc<dyn hallpass_core::Store>, Box<dyn std::any::Any + Send>)> {
    hallpass_postgres::testing::conformance_store().await
}

hallpass_store_tests::conformance!(optional make);
