//! Flows (`hallpass_core::flow`): taken once, by kind and scope, never after expiry, and
//! exactly one winner among concurrent takes.

use super::*;

fn flow(
    scope: &Scope,
    kind: FlowKind,
    handle: &FlowHandle,
    payload: serde_json::Value,
    ttl_ms: i64,
) -> FlowRecord {
    FlowRecord {
        hash: handle.hash(),
        scope: scope.clone(),
        kind,
        payload,
        created_at: at(0),
        expires_at: at(ttl_ms),
    }
}

/// A flow comes back whole once; a second take gets nothing. A take of another kind or
/// scope gets nothing and leaves the flow for the right one.
pub async fn flows_take_once_by_kind_and_scope(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (a, b) = (scope("a"), scope("b"));
    let handle = FlowHandle::generate();
    let payload = json!({"provider": "google", "verifier": "v-1", "nested": {"n": [1, 2]}});
    let record = flow(&a, FlowKind::OidcState, &handle, payload, 10 * MIN);
    store.insert_flow(&record).await.expect("insert");
    let hash = handle.hash();

    let wrong_kind = store.take_flow(Some(&a), FlowKind::OidcCode, &hash, at(SEC)).await.expect("take");
    assert!(wrong_kind.is_none(), "a flow of another kind is not found");
    let wrong_scope = store.take_flow(Some(&b), FlowKind::OidcState, &hash, at(SEC)).await.expect("take");
    assert!(wrong_scope.is_none(), "another scope's flow is not found");
    let unknown = FlowHandle::generate().hash();
    assert!(store.take_flow(None, FlowKind::OidcState, &unknown, at(SEC)).await.expect("take").is_none());

    let taken = store.take_flow(Some(&a), FlowKind::OidcState, &hash, at(SEC)).await.expect("take");
    assert_eq!(taken, Some(record.clone()), "the flow comes back whole");
    let again = store.take_flow(Some(&a), FlowKind::OidcState, &hash, at(SEC)).await.expect("take");
    assert!(again.is_none(), "a flow is single use");

    // Without a scope (the public OIDC callback) the flow tells its own scope.
    let other = FlowHandle::generate();
    store.insert_flow(&flow(&b, FlowKind::OidcCode, &other, json!({}), MIN)).await.expect("insert");
    let taken = store.take_flow(None, FlowKind::OidcCode, &other.hash(), at(SEC)).await.expect("take");
    assert_eq!(taken.map(|f| f.scope), Some(b));
}

/// At or after its expiry a flow is gone for takes, and the sweeper removes it; an unexpired
/// flow survives the sweep.
pub async fn flows_expire_and_are_swept(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let (short, long) = (FlowHandle::generate(), FlowHandle::generate());
    store.insert_flow(&flow(&s, FlowKind::OidcCode, &short, json!({}), MIN)).await.expect("insert");
    store.insert_flow(&flow(&s, FlowKind::OidcCode, &long, json!({}), HOUR)).await.expect("insert");
    let late = store.take_flow(Some(&s), FlowKind::OidcCode, &short.hash(), at(MIN)).await.expect("take");
    assert!(late.is_none(), "a flow at its expiry is not takeable");

    assert_eq!(store.sweep_expired(at(2 * MIN), 100).await.expect("sweep"), 1, "only the expired flow goes");
    assert_eq!(store.sweep_expired(at(2 * MIN), 100).await.expect("sweep"), 0);
    let alive = store.take_flow(Some(&s), FlowKind::OidcCode, &long.hash(), at(2 * MIN)).await.expect("take");
    assert!(alive.is_some(), "the sweep leaves live flows");
}

/// Twenty concurrent takes of one flow: exactly one gets it.
pub async fn concurrent_flow_takes_have_one_winner(store: Arc<dyn Store>) {
    let s = scope("a");
    let handle = FlowHandle::generate();
    store.insert_flow(&flow(&s, FlowKind::OidcState, &handle, json!({"x": 1}), HOUR)).await.expect("insert");
    let hash = handle.hash();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, s) = (store.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            store.take_flow(Some(&s), FlowKind::OidcState, &hash, at(SEC)).await.expect("take").is_some()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.expect("join") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one concurrent take wins");
}
