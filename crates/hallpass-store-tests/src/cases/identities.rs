//! Provider identities: linking, finding, unlinking, and an identity held by another user.

use super::*;

/// Provider links: stored and read back whole by (user, provider) and by (provider,
/// client id); listed by provider; re-linking replaces the user's link to that
/// provider; unlinking removes it once.
pub async fn identities_link_find_and_unlink(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), None).await;
    let mut gh = identity(&s, alice.id, "github", "gh-1");
    gh.access_token = Some("gho_token".into());
    gh.access_token_expiry = Some(at(HOUR));
    gh.refresh_token = Some("ghr_refresh".into());
    store.upsert_identity(&gh, &[]).await.expect("upsert");
    let (github, gitlab, google) = (provider("github"), provider("gitlab"), provider("google"));

    assert_eq!(store.get_identity(&s, alice.id, &github).await.expect("get"), Some(gh.clone()));
    assert_eq!(store.find_identity(&s, &github, "gh-1").await.expect("find"), Some(gh.clone()));
    assert!(store.find_identity(&s, &github, "gh-2").await.expect("find").is_none());
    assert!(store.find_identity(&s, &gitlab, "gh-1").await.expect("find").is_none());
    assert!(store.get_identity(&s, alice.id, &gitlab).await.expect("get").is_none());

    store.upsert_identity(&identity(&s, alice.id, "google", "g-1"), &[]).await.expect("upsert");
    store.upsert_identity(&identity(&s, alice.id, "gitlab", "gl-1"), &[]).await.expect("upsert");
    let listed = store.list_identities(&s, alice.id).await.expect("list");
    let providers: Vec<&str> = listed.iter().map(|i| i.provider.as_str()).collect();
    assert_eq!(providers, ["github", "gitlab", "google"]);
    assert_eq!(listed[0], gh);

    // Re-linking replaces the link (one per user and provider).
    let relinked = Identity {
        client_id: ClientId::parse("gh-2").expect("c"),
        access_token: None,
        access_token_expiry: None,
        refresh_token: None,
        updated_at: at(5000),
        ..gh.clone()
    };
    store.upsert_identity(&relinked, &[]).await.expect("upsert");
    assert_eq!(store.get_identity(&s, alice.id, &github).await.expect("get"), Some(relinked.clone()));
    assert!(store.find_identity(&s, &github, "gh-1").await.expect("find").is_none());
    assert_eq!(store.find_identity(&s, &github, "gh-2").await.expect("find"), Some(relinked));
    assert_eq!(store.list_identities(&s, alice.id).await.expect("list").len(), 3);

    // Updating the token of the same link.
    let updated = Identity {
        access_token: Some("new".into()),
        access_token_expiry: Some(at(2 * HOUR)),
        updated_at: at(6000),
        ..identity(&s, alice.id, "gitlab", "gl-1")
    };
    store.upsert_identity(&updated, &[]).await.expect("upsert");
    assert_eq!(store.find_identity(&s, &gitlab, "gl-1").await.expect("find"), Some(updated));

    assert!(store.delete_identity(&s, alice.id, &gitlab, &[]).await.expect("delete"));
    assert!(!store.delete_identity(&s, alice.id, &gitlab, &[]).await.expect("delete"));
    assert!(store.find_identity(&s, &gitlab, "gl-1").await.expect("find").is_none());
    let providers: Vec<String> = store
        .list_identities(&s, alice.id)
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.provider.as_str().to_owned())
        .collect();
    assert_eq!(providers, ["github", "google"]);
    assert!(store.find_identity(&s, &google, "g-1").await.expect("find").is_some());
}

/// (provider, client id) belongs to one user of the scope: linking it to another user
/// is `IdentityTaken` and stores nothing; the same client id at another provider is
/// fine; once unlinked it is free.
pub async fn identity_taken_by_another_user(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let alice = add_user(store, &s, Some("alice"), None).await;
    let bob = add_user(store, &s, Some("bob"), None).await;
    let github = provider("github");
    store.upsert_identity(&identity(&s, alice.id, "github", "same"), &[]).await.expect("upsert");

    assert_err(store.upsert_identity(&identity(&s, bob.id, "github", "same"), &[]).await, "IdentityTaken");
    assert!(store.get_identity(&s, bob.id, &github).await.expect("get").is_none());
    assert_eq!(
        store.find_identity(&s, &github, "same").await.expect("find").map(|i| i.user_id),
        Some(alice.id)
    );

    store.upsert_identity(&identity(&s, bob.id, "gitlab", "same"), &[]).await.expect("another provider");
    let mut again = identity(&s, alice.id, "github", "same");
    again.access_token = Some("t2".into());
    store.upsert_identity(&again, &[]).await.expect("re-linking one's own identity");

    assert!(store.delete_identity(&s, alice.id, &github, &[]).await.expect("delete"));
    store.upsert_identity(&identity(&s, bob.id, "github", "same"), &[]).await.expect("free again");
    assert_eq!(
        store.find_identity(&s, &github, "same").await.expect("find").map(|i| i.user_id),
        Some(bob.id)
    );
}
