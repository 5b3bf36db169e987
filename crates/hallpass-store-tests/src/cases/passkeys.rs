//! Passkeys (`hallpass_core::passkey`): stored once per credential id and scope, listed,
//! found by credential id, their use recorded, renamed, removed (ending the user's other
//! sessions, as adding one does), and gone with the user or with `remove_mfa`.

use super::*;

pub(super) fn passkey(
    s: &Scope,
    user_id: Uuid,
    credential_id: &[u8],
    created: OffsetDateTime,
) -> PasskeyRecord {
    PasskeyRecord {
        id: Uuid::now_v7(),
        scope: s.clone(),
        user_id,
        credential_id: credential_id.to_vec(),
        name: "Laptop".into(),
        credential: r#"{"cred":{}}"#.into(),
        counter: 0,
        backup_eligible: true,
        backup_state: false,
        created_at: created,
        last_used_at: None,
    }
}

/// The whole life of a passkey, and that every store keeps the same invariants.
pub async fn passkeys_stored_used_renamed_and_removed(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (s, t) = (scope("a"), scope("b"));
    let u = add_user(store, &s, Some("alice"), None).await;
    let v = add_user(store, &s, Some("bob"), None).await;
    let kept = login_at(store, &s, u.id, at(0)).await;
    let other = login_at(store, &s, u.id, at(SEC)).await;

    let first = passkey(&s, u.id, b"cred-1", at(0));
    assert!(store.insert_passkey(&first, Some(kept.session.id), &[]).await.expect("insert"));
    assert!(store.find_session(&s, &kept.token_hash).await.expect("find").is_some(), "the kept one stays");
    assert!(store.find_session(&s, &other.token_hash).await.expect("find").is_none(), "the others end");
    assert!(
        !store.insert_passkey(&passkey(&s, v.id, b"cred-1", at(1)), None, &[]).await.expect("insert"),
        "a credential id once per scope"
    );
    assert!(
        !store
            .insert_passkey(&passkey(&s, Uuid::now_v7(), b"cred-9", at(1)), None, &[])
            .await
            .expect("insert"),
        "no such user"
    );
    let second = passkey(&s, u.id, b"cred-2", at(2));
    assert!(store.insert_passkey(&second, None, &[]).await.expect("insert"));
    assert_eq!(store.mfa_state(&s, u.id).await.expect("state").passkeys, 2);
    assert!(store.mfa_state(&s, u.id).await.expect("state").enabled(), "a passkey is a second factor");

    let list = store.list_passkeys(&s, u.id).await.expect("list");
    assert_eq!(list, vec![first.clone(), second.clone()], "oldest first, as stored");
    assert!(store.list_passkeys(&s, v.id).await.expect("list").is_empty());
    assert_eq!(store.find_passkey(&s, b"cred-2").await.expect("find"), Some(second.clone()));
    assert_eq!(store.find_passkey(&t, b"cred-2").await.expect("find"), None, "scoped");

    let used = PasskeyUse {
        credential: r#"{"cred":{"counter":7}}"#.into(),
        counter: 7,
        backup_eligible: true,
        backup_state: true,
        at: at(3 * SEC),
    };
    assert!(store.use_passkey(&s, first.id, &used).await.expect("use"));
    let found = store.find_passkey(&s, b"cred-1").await.expect("find").expect("there");
    assert_eq!(
        (found.counter, found.backup_state, found.last_used_at, found.credential.as_str()),
        (7, true, Some(at(3 * SEC)), used.credential.as_str())
    );
    assert!(!store.use_passkey(&t, first.id, &used).await.expect("use"), "another scope's id");

    assert!(store.rename_passkey(&s, u.id, first.id, "Phone").await.expect("rename"));
    assert!(store.rename_passkey(&s, u.id, first.id, "Phone").await.expect("rename"), "unchanged is found");
    assert!(!store.rename_passkey(&s, v.id, first.id, "Mine").await.expect("rename"), "another user's");
    assert_eq!(store.list_passkeys(&s, u.id).await.expect("list")[0].name, "Phone");

    let session = login_at(store, &s, u.id, at(4 * SEC)).await;
    assert!(!store.delete_passkey(&s, v.id, first.id, None, &[]).await.expect("delete"), "another user's");
    assert!(store.find_session(&s, &session.token_hash).await.expect("find").is_some());
    assert!(store.delete_passkey(&s, u.id, first.id, None, &[]).await.expect("delete"));
    assert!(
        store.find_session(&s, &session.token_hash).await.expect("find").is_none(),
        "removal ends sessions"
    );
    assert!(!store.delete_passkey(&s, u.id, first.id, None, &[]).await.expect("delete"), "once");

    // remove_mfa takes passkeys too; deleting the user takes them.
    assert!(store.remove_mfa(&s, u.id, None, &[]).await.expect("remove"));
    assert!(store.list_passkeys(&s, u.id).await.expect("list").is_empty());
    assert!(!store.remove_mfa(&s, u.id, None, &[]).await.expect("remove"), "nothing left");
    assert!(store.insert_passkey(&passkey(&s, v.id, b"cred-3", at(5)), None, &[]).await.expect("insert"));
    assert!(store.delete_user(&s, v.id, &[]).await.expect("delete user"));
    assert_eq!(store.find_passkey(&s, b"cred-3").await.expect("find"), None);
}

/// A webhook row of `scope` about `user_id`, as a factor or link change hands the store.
fn hook(s: &Scope, user_id: Uuid, n: i64) -> OutboxMessage {
    let mut m = OutboxMessage::new(
        s,
        OutboxKind::Webhook,
        Uuid::now_v7().to_string(),
        Some(user_id),
        json!({"type": "test", "n": n}),
        at(n * SEC),
    );
    m.id = id_at(at(n * SEC));
    m
}

async fn outbox_ids(store: &dyn Store) -> Vec<Uuid> {
    let mut ids: Vec<_> =
        store.outbox_list(None, 1000).await.expect("outbox_list").iter().map(|m| m.id).collect();
    ids.sort();
    ids
}

/// Removing a TOTP leaves the user's passkeys (and, while a passkey is left, the recovery
/// codes that back it up) and ends the other sessions; without a passkey the codes go too,
/// and so they do with the last passkey of a user without a TOTP.
pub async fn totp_removal_keeps_passkeys(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let u = add_user(store, &s, Some("alice"), None).await;
    let v = add_user(store, &s, Some("bob"), None).await;
    for user in [u.id, v.id] {
        assert!(store.enrol_totp(&s, user, "hp1.secret", at(0)).await.expect("enrol"));
        let change = FactorChange {
            recovery_codes: vec![random_hash(), random_hash()],
            at: at(SEC),
            keep_session: None,
            outbox: Vec::new(),
        };
        assert!(store.accept_totp_step(&s, user, 100, Some(&change)).await.expect("confirm"));
    }
    let key = passkey(&s, u.id, b"cred-keep", at(2));
    assert!(store.insert_passkey(&key, None, &[]).await.expect("insert"));

    let kept = login_at(store, &s, u.id, at(3 * SEC)).await;
    let other = login_at(store, &s, u.id, at(3 * SEC)).await;
    let row = hook(&s, u.id, 4);
    assert!(
        store.remove_totp(&s, u.id, Some(kept.session.id), std::slice::from_ref(&row)).await.expect("remove")
    );
    let state = store.mfa_state(&s, u.id).await.expect("state");
    assert_eq!(
        (state.totp.is_some(), state.passkeys, state.recovery_codes),
        (false, 1, 2),
        "the passkey stays"
    );
    assert!(state.enabled(), "the passkey is still a second factor");
    assert_eq!(store.list_passkeys(&s, u.id).await.expect("list"), vec![key.clone()]);
    assert!(store.find_session(&s, &kept.token_hash).await.expect("find").is_some(), "the kept one stays");
    assert!(store.find_session(&s, &other.token_hash).await.expect("find").is_none(), "the others end");
    assert_eq!(outbox_ids(store).await, vec![row.id], "the event is written with the change");
    assert!(!store.remove_totp(&s, u.id, None, &[hook(&s, u.id, 5)]).await.expect("remove"), "once");
    assert_eq!(outbox_ids(store).await, vec![row.id], "nothing removed, nothing written");

    // The last passkey gone too: the codes have nothing left to back up.
    assert!(store.delete_passkey(&s, u.id, key.id, None, &[]).await.expect("delete"));
    assert_eq!(store.mfa_state(&s, u.id).await.expect("state"), MfaState::default());

    // Without a passkey the recovery codes have nothing left to back up.
    assert!(store.remove_totp(&s, v.id, None, &[]).await.expect("remove"));
    assert_eq!(store.mfa_state(&s, v.id).await.expect("state"), MfaState::default());
}
