//! Every operation of the committed `docs/openapi.json` has a client method: the list in
//! `hallpass_client::operations::OPERATIONS` must name exactly the spec's operations (an
//! endpoint added to the server fails this test until the client has it).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

#[test]
fn every_operation_of_the_spec_has_a_client_method() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut in_spec = BTreeSet::new();
    for (p, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op.get("responses").is_some() {
                in_spec.insert((method.to_uppercase(), p.clone()));
            }
        }
    }
    let listed: BTreeSet<(String, String)> = hallpass_client::operations::OPERATIONS
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let missing: Vec<_> = in_spec.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&in_spec).collect();
    assert!(
        missing.is_empty(),
        "operations without a client method (add one to client.rs and operations.rs): {missing:?}"
    );
    assert!(extra.is_empty(), "client methods for operations the spec no longer has: {extra:?}");
    assert_eq!(listed.len(), hallpass_client::operations::OPERATIONS.len(), "a row is listed twice");
}

#[test]
fn every_problem_code_of_the_spec_is_known() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let text = std::fs::read_to_string(path).unwrap();
    let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    let described =
        spec["components"]["schemas"]["Problem"]["properties"]["code"]["description"].as_str().unwrap();
    for code in described.split('`').skip(1).step_by(2) {
        assert!(
            hallpass_client::ProblemCode::KNOWN.contains(&code),
            "problem code `{code}` of the spec has no ProblemCode variant"
        );
    }
}
