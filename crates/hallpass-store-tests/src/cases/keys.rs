//! API keys: insert, find by hash, list, revoke.

use super::*;

/// API keys: found by hash while unrevoked, listed oldest first with revoked ones,
/// revoked once.
pub async fn api_keys_insert_find_list_revoke(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (h1, h2) = (random_hash(), random_hash());
    let k1 = ApiKey {
        id: id_at(at(0)),
        scope: scope("a"),
        name: Some("ci".into()),
        created_at: at(0),
        revoked_at: None,
    };
    let k2 =
        ApiKey { id: id_at(at(1000)), scope: scope("b"), name: None, created_at: at(1000), revoked_at: None };
    store.insert_api_key(&k2, &h2).await.expect("insert");
    store.insert_api_key(&k1, &h1).await.expect("insert");

    assert_eq!(store.find_api_key(&h1).await.expect("find"), Some(k1.clone()));
    assert_eq!(store.find_api_key(&h2).await.expect("find"), Some(k2.clone()));
    assert_eq!(store.find_api_key(&random_hash()).await.expect("find"), None);
    assert_eq!(store.list_api_keys().await.expect("list"), vec![k1.clone(), k2.clone()]);

    assert!(store.revoke_api_key(k1.id, at(2000)).await.expect("revoke"));
    assert_eq!(store.find_api_key(&h1).await.expect("find"), None, "a revoked key is not found");
    let revoked = ApiKey { revoked_at: Some(at(2000)), ..k1.clone() };
    assert_eq!(store.list_api_keys().await.expect("list"), vec![revoked.clone(), k2.clone()]);
    assert!(!store.revoke_api_key(k1.id, at(3000)).await.expect("revoke"), "already revoked");
    assert_eq!(store.list_api_keys().await.expect("list")[0], revoked, "the first revocation stands");
    assert!(!store.revoke_api_key(Uuid::now_v7(), at(3000)).await.expect("revoke"));
    assert_eq!(store.find_api_key(&h2).await.expect("find"), Some(k2));
}
