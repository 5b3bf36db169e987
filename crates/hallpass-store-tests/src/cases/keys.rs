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
        last_used_at: None,
    };
    let k2 = ApiKey {
        id: id_at(at(1000)),
        scope: scope("b"),
        name: None,
        created_at: at(1000),
        revoked_at: None,
        last_used_at: None,
    };
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

/// A key's last use is recorded, only ever moved forward, and kept after revocation; an
/// unknown key is no error.
pub async fn api_keys_record_their_last_use(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let h = random_hash();
    let k = ApiKey {
        id: id_at(at(0)),
        scope: scope("a"),
        name: None,
        created_at: at(0),
        revoked_at: None,
        last_used_at: None,
    };
    store.insert_api_key(&k, &h).await.expect("insert");
    store.touch_api_key(k.id, at(5000)).await.expect("touch");
    let found = store.find_api_key(&h).await.expect("find").expect("the key");
    assert_eq!(found.last_used_at, Some(at(5000)));
    store.touch_api_key(k.id, at(3000)).await.expect("touch");
    assert_eq!(store.list_api_keys().await.expect("list")[0].last_used_at, Some(at(5000)), "never backwards");
    store.touch_api_key(k.id, at(9000)).await.expect("touch");
    assert!(store.revoke_api_key(k.id, at(10_000)).await.expect("revoke"));
    let listed = &store.list_api_keys().await.expect("list")[0];
    assert_eq!((listed.last_used_at, listed.revoked_at), (Some(at(9000)), Some(at(10_000))));
    store.touch_api_key(Uuid::now_v7(), at(9000)).await.expect("an unknown key is no error");
}
