//! The committed OpenAPI document (`docs/openapi.json`) is the one the server serves, so
//! an API change shows in review as a change of that file. After a deliberate change,
//! write the new document with
//! `HALLPASS_WRITE_OPENAPI=1 cargo nextest run -p hallpass-server --test openapi`
//! and commit it.

#![allow(clippy::unwrap_used)]

mod common;

use common::TestApp;

/// `value` with every object's keys in order: the file reads the same whether or not some
/// dependency turns on serde_json's `preserve_order` (a dev-dependency does).
fn sorted(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            serde_json::Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[tokio::test]
async fn the_served_openapi_document_is_the_committed_one() {
    let app = TestApp::start().await;
    let served = app.send(app.client.get(app.url("/openapi.json"))).await.ok(200);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let pretty = serde_json::to_string_pretty(&sorted(&served)).unwrap() + "\n";
    if std::env::var_os("HALLPASS_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let committed_doc: serde_json::Value = serde_json::from_str(&committed).unwrap_or_default();
    assert!(
        committed_doc == served,
        "docs/openapi.json differs from the document the server serves; if the API change is \
         meant, run HALLPASS_WRITE_OPENAPI=1 cargo nextest run -p hallpass-server --test openapi \
         and commit docs/openapi.json"
    );
    assert_eq!(
        committed, pretty,
        "docs/openapi.json is written pretty-printed, as the command above writes it"
    );
}
