//! Second factors (`hallpass_core::mfa`): a TOTP enrolled pending, confirmed once; a time
//! step accepted once per user, also by racing callers; recovery codes replaced as a set
//! and used once, also by racing callers; removal ends sessions.

use super::*;

fn change(codes: &[TokenHash], keep: Option<Uuid>) -> FactorChange {
    FactorChange { recovery_codes: codes.to_vec(), at: at(SEC), keep_session: keep, outbox: Vec::new() }
}

/// Enrolment stores a pending TOTP (replacing a pending one, never a confirmed one);
/// confirmation accepts a step once, sets the codes and ends the other sessions.
pub async fn totp_enrol_confirm_and_steps(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let s = scope("a");
    let u = add_user(store, &s, Some("alice"), None).await;
    assert_eq!(store.mfa_state(&s, u.id).await.expect("state"), MfaState::default());
    assert!(!store.enrol_totp(&s, Uuid::now_v7(), "hp1.x", at(0)).await.expect("enrol"), "no such user");
    assert!(store.enrol_totp(&s, u.id, "hp1.first", at(0)).await.expect("enrol"));
    assert!(
        store.enrol_totp(&s, u.id, "hp1.second", at(1)).await.expect("enrol"),
        "a pending one is replaced"
    );
    let state = store.mfa_state(&s, u.id).await.expect("state");
    assert!(!state.enabled());
    let totp = state.totp.expect("pending");
    assert_eq!((totp.secret.as_str(), totp.confirmed, totp.last_step), ("hp1.second", false, None));

    // A pending TOTP does not accept login steps; a confirmed one does not confirm again.
    assert!(!store.accept_totp_step(&s, u.id, 100, None).await.expect("step"), "pending: no login step");
    let kept = login_at(store, &s, u.id, at(0)).await;
    let other = login_at(store, &s, u.id, at(SEC)).await;
    let codes = [random_hash(), random_hash()];
    assert!(
        store
            .accept_totp_step(&s, u.id, 100, Some(&change(&codes, Some(kept.session.id))))
            .await
            .expect("confirm")
    );
    let state = store.mfa_state(&s, u.id).await.expect("state");
    assert!(state.enabled());
    assert_eq!(state.recovery_codes, 2);
    assert_eq!(state.totp.expect("totp").last_step, Some(100));
    assert!(
        store.find_session(&s, &kept.token_hash).await.expect("find").is_some(),
        "the kept session stays"
    );
    assert!(store.find_session(&s, &other.token_hash).await.expect("find").is_none(), "the others end");
    assert!(
        !store.accept_totp_step(&s, u.id, 101, Some(&change(&codes, None))).await.expect("confirm"),
        "confirmed once"
    );
    assert!(!store.enrol_totp(&s, u.id, "hp1.third", at(2)).await.expect("enrol"), "a confirmed one stays");

    // Steps: each once, only forward.
    assert!(!store.accept_totp_step(&s, u.id, 100, None).await.expect("step"), "the confirming step is used");
    assert!(store.accept_totp_step(&s, u.id, 101, None).await.expect("step"));
    assert!(!store.accept_totp_step(&s, u.id, 101, None).await.expect("step"), "replay refused");
    assert!(!store.accept_totp_step(&s, u.id, 99, None).await.expect("step"), "an older step refused");
    assert!(!store.accept_totp_step(&scope("b"), u.id, 102, None).await.expect("step"), "other scope");
}

/// Twenty concurrent acceptances of one step: exactly one wins.
pub async fn totp_concurrent_steps_have_one_winner(store: Arc<dyn Store>) {
    let s = scope("a");
    let u = add_user(store.as_ref(), &s, Some("alice"), None).await;
    store.enrol_totp(&s, u.id, "hp1.x", at(0)).await.expect("enrol");
    assert!(store.accept_totp_step(&s, u.id, 10, Some(&change(&[], None))).await.expect("confirm"));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, s) = (store.clone(), s.clone());
        tasks.push(tokio::spawn(
            async move { store.accept_totp_step(&s, u.id, 11, None).await.expect("step") },
        ));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.expect("join"));
    }
    assert_eq!(winners, 1, "a step is accepted once");
}

/// Recovery codes: replaced as a set (only with a confirmed TOTP), each used once, the
/// count left told; twenty concurrent uses of one code have one winner; removal takes
/// everything and ends sessions.
pub async fn recovery_codes_single_use_and_removal(store: Arc<dyn Store>) {
    let s = scope("a");
    let u = add_user(store.as_ref(), &s, Some("alice"), None).await;
    let old = [random_hash(), random_hash()];
    assert!(!store.replace_recovery_codes(&s, u.id, &old, at(0)).await.expect("replace"), "no factor");
    store.enrol_totp(&s, u.id, "hp1.x", at(0)).await.expect("enrol");
    store.accept_totp_step(&s, u.id, 1, Some(&change(&old, None))).await.expect("confirm");
    let new: Vec<TokenHash> = (0..3).map(|_| random_hash()).collect();
    assert!(store.replace_recovery_codes(&s, u.id, &new, at(SEC)).await.expect("replace"));
    assert_eq!(store.use_recovery_code(&s, u.id, &old[0]).await.expect("use"), None, "the old set is void");
    assert_eq!(store.use_recovery_code(&s, u.id, &new[0]).await.expect("use"), Some(2));
    assert_eq!(store.use_recovery_code(&s, u.id, &new[0]).await.expect("use"), None, "used once");
    assert_eq!(store.use_recovery_code(&scope("b"), u.id, &new[1]).await.expect("use"), None, "other scope");

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, s, code) = (store.clone(), s.clone(), new[1]);
        tasks.push(tokio::spawn(async move { store.use_recovery_code(&s, u.id, &code).await.expect("use") }));
    }
    let mut wins = Vec::new();
    for t in tasks {
        wins.extend(t.await.expect("join"));
    }
    assert_eq!(wins, [1], "exactly one concurrent use wins, and one code is left");

    let kept = login_at(store.as_ref(), &s, u.id, at(0)).await;
    let other = login_at(store.as_ref(), &s, u.id, at(SEC)).await;
    assert!(store.remove_mfa(&s, u.id, Some(kept.session.id), &[]).await.expect("remove"));
    assert_eq!(store.mfa_state(&s, u.id).await.expect("state"), MfaState::default());
    assert!(store.find_session(&s, &kept.token_hash).await.expect("find").is_some());
    assert!(store.find_session(&s, &other.token_hash).await.expect("find").is_none());
    assert!(!store.remove_mfa(&s, u.id, None, &[]).await.expect("remove"), "nothing left");
    assert!(
        store.find_session(&s, &kept.token_hash).await.expect("find").is_some(),
        "nothing removed, nothing ended"
    );

    // Deleting the user takes the factors along.
    store.enrol_totp(&s, u.id, "hp1.y", at(0)).await.expect("enrol");
    assert!(store.delete_user(&s, u.id, &[]).await.expect("delete"));
    assert_eq!(store.mfa_state(&s, u.id).await.expect("state"), MfaState::default());
}
