//! The mechanism behind equal timing, checked without a clock: a login for an unknown user
//! and one with a wrong password make the same store calls and compute the same number of
//! Argon2 hashes; a reset-code request for a login that names nobody makes the same store
//! calls as one for a user. (How long each takes is measured in `bench/`, not here.) The
//! same recording of store calls also checks that a login publishes a change to other
//! processes only when its session cap ended older sessions.

use hallpass_core::observed::{Observed, Observer};
use hallpass_core::service::{Credentials, LoginRequest, NewUser};
use hallpass_core::store::StoreResult;
use hallpass_core::*;
use std::sync::{Arc, Mutex};

/// Writes down the name of every store call.
#[derive(Default)]
struct Calls(Mutex<Vec<&'static str>>);

impl Observer for Calls {
    fn before(&self, op: &'static str) -> StoreResult<()> {
        self.0.lock().expect("lock").push(op);
        Ok(())
    }
}

struct Env {
    hp: Hallpass,
    store: Arc<Observed<Calls>>,
    scope: Scope,
}

impl Env {
    async fn new() -> Self {
        let store = Arc::new(Observed::new(Arc::new(MemoryStore::new()), Calls::default()));
        let settings =
            Settings { hash_params: HashParams { m_cost: 256, t_cost: 1, p_cost: 1 }, ..Default::default() };
        let hp =
            Hallpass::with_clock(store.clone(), settings, Arc::new(FakeClock::fixed())).expect("service");
        let scope = Scope::parse("app").expect("scope");
        let new = NewUser {
            username: Some(Username::parse("alice").expect("username")),
            email: Some(Email::parse("alice@example.com").expect("email")),
            password: Some(Password::new("ivy velvet kumquat").expect("password")),
            ..Default::default()
        };
        hp.register(&scope, new).await.expect("register");
        Self { hp, store, scope }
    }

    /// The store calls and Argon2 hashes `op` makes.
    async fn work<T>(&self, op: impl std::future::Future<Output = T>) -> (T, Vec<&'static str>, u64) {
        self.store.observer().0.lock().expect("lock").clear();
        let hashes = self.hp.hasher().hashes_computed();
        let out = op.await;
        let calls = std::mem::take(&mut *self.store.observer().0.lock().expect("lock"));
        (out, calls, self.hp.hasher().hashes_computed() - hashes)
    }

    fn login_from(&self, login: &str, password: &str, device: Option<DeviceToken>) -> LoginRequest {
        LoginRequest {
            credentials: Credentials::Password {
                login: UserRef::parse(login).expect("login"),
                password: Password::new(password).expect("password"),
            },
            data: Default::default(),
            client: ClientInfo { ip: Some("203.0.113.9".into()), user_agent: Some("test".into()) },
            device,
        }
    }
}

#[tokio::test]
async fn unknown_user_and_wrong_password_do_the_same_work() {
    let env = Env::new().await;
    let pairs = [("alice", "nobody"), ("alice@example.com", "nobody@example.com")];
    // With a device token too: whether it is known to the login is read alike for both.
    for ((known, unknown), device) in
        pairs.into_iter().flat_map(|p| [(p, None), (p, Some(DeviceToken::generate()))])
    {
        let (wrong, wrong_calls, wrong_hashes) = env
            .work(env.hp.login(&env.scope, env.login_from(known, "not her password at all", device.clone())))
            .await;
        let (missing, missing_calls, missing_hashes) = env
            .work(
                env.hp.login(&env.scope, env.login_from(unknown, "not her password at all", device.clone())),
            )
            .await;
        assert!(matches!(wrong, Err(Error::InvalidCredentials(CredentialFailure::WrongPassword))));
        assert!(matches!(missing, Err(Error::InvalidCredentials(CredentialFailure::UserNotFound))));
        assert_eq!(wrong_calls, missing_calls, "{known} vs {unknown}");
        assert_eq!((wrong_hashes, missing_hashes), (1, 1), "one Argon2 verification each");
        // Both take a place in the throttle's budget and leave an event: the calls
        // include the writes, and with a device the read of whether it is known.
        assert!(
            wrong_calls.contains(&"throttle_update") && wrong_calls.contains(&"insert_event"),
            "{wrong_calls:?}"
        );
        assert_eq!(wrong_calls.contains(&"throttle_get"), device.is_some(), "{wrong_calls:?}");
    }
}

#[tokio::test]
async fn reset_code_request_for_nobody_does_the_same_work_as_for_a_user() {
    let env = Env::new().await;
    for (known, unknown) in [("alice", "nobody"), ("alice@example.com", "nobody@example.com")] {
        let known_ref = UserRef::parse(known).expect("login");
        let unknown_ref = UserRef::parse(unknown).expect("login");
        let (issued, known_calls, known_hashes) =
            env.work(env.hp.create_reset_code(&env.scope, &known_ref)).await;
        let (refused, unknown_calls, unknown_hashes) =
            env.work(env.hp.create_reset_code(&env.scope, &unknown_ref)).await;
        assert!(issued.is_ok(), "{issued:?}");
        assert!(matches!(refused, Err(Error::UserNotFound)), "{refused:?}");
        assert_eq!(known_calls, vec!["request_code"], "one store call, one transaction");
        assert_eq!(known_calls, unknown_calls);
        assert_eq!((known_hashes, unknown_hashes), (0, 0));
    }
}

/// Mail flows that must not tell whether an account exists: reset by mail and emailed
/// sign-in codes make the same store calls (one lookup, one `request_code` transaction;
/// sign-in codes also reset the guess counter) and answer `Ok` alike; only the known
/// user's transaction also queues the mail. A wrong emailed code costs the same for nobody.
#[tokio::test]
async fn mail_requests_for_nobody_do_the_same_work_as_for_a_user() {
    let store = Arc::new(Observed::new(Arc::new(MemoryStore::new()), Calls::default()));
    let settings = Settings {
        hash_params: HashParams { m_cost: 256, t_cost: 1, p_cost: 1 },
        mail: true,
        ..Default::default()
    };
    let hp = Hallpass::with_clock(store.clone(), settings, Arc::new(FakeClock::fixed())).expect("service");
    let scope = Scope::parse("app").expect("scope");
    let new =
        NewUser { email: Some(Email::parse("alice@example.com").expect("email")), ..Default::default() };
    hp.register(&scope, new).await.expect("register");
    let take = || std::mem::take(&mut *store.observer().0.lock().expect("lock"));
    take();
    for (known, unknown) in [("alice@example.com", "nobody@example.com")] {
        hp.mail_reset_code(&scope, &UserRef::parse(known).expect("login")).await.expect("known");
        let known_calls = take();
        hp.mail_reset_code(&scope, &UserRef::parse(unknown).expect("login")).await.expect("unknown");
        assert_eq!(known_calls, vec!["find_user", "request_code"]);
        assert_eq!(known_calls, take());

        hp.mail_email_code(&scope, &Email::parse(known).expect("email")).await.expect("known");
        let known_calls = take();
        hp.mail_email_code(&scope, &Email::parse(unknown).expect("email")).await.expect("unknown");
        assert_eq!(known_calls, vec!["find_user", "request_code", "throttle_clear"]);
        assert_eq!(known_calls, take());
    }
    assert_eq!(store.outbox_stats().await.expect("stats").queued, 2, "only alice's mails were queued");

    let login = |email: &str| LoginRequest {
        credentials: Credentials::EmailCode {
            email: Email::parse(email).expect("email"),
            code: "000000".into(),
        },
        data: JsonObject::new(),
        client: ClientInfo::default(),
        device: None,
    };
    take();
    let known = hp.login(&scope, login("alice@example.com")).await;
    let known_calls = take();
    let unknown = hp.login(&scope, login("nobody@example.com")).await;
    assert!(matches!(known, Err(Error::InvalidCredentials(_))), "{known:?}");
    assert!(matches!(unknown, Err(Error::InvalidCredentials(_))), "{unknown:?}");
    assert_eq!(known_calls, take(), "a wrong code costs the same for nobody");
}

#[tokio::test]
async fn reset_code_requests_are_limited_per_login_whoever_it_names() {
    let env = Env::new().await;
    let limit = ThrottleSettings::default().code_requests;
    for login in ["alice", "nobody"] {
        let login = UserRef::parse(login).expect("login");
        for _ in 0..limit {
            let out = env.hp.create_reset_code(&env.scope, &login).await;
            assert!(!matches!(out, Err(Error::RateLimited { .. })), "{out:?}");
        }
        let over = env.hp.create_reset_code(&env.scope, &login).await;
        assert!(
            matches!(over, Err(Error::RateLimited { retry_after_secs }) if retry_after_secs > 0),
            "{over:?}"
        );
    }
}

/// A login tells other processes of itself (`publish_change`) only when the per-user cap
/// ended older sessions; a login that ends nothing only moves `last_login_at`, which
/// other processes' caches may show late (see `cache.rs`).
#[tokio::test]
async fn a_login_publishes_only_when_the_cap_ended_sessions() {
    let store = Arc::new(Observed::new(Arc::new(MemoryStore::new()), Calls::default()));
    let mut settings =
        Settings { hash_params: HashParams { m_cost: 256, t_cost: 1, p_cost: 1 }, ..Default::default() };
    settings.default_scope.max_sessions_per_user = 2;
    let hp = Hallpass::with_clock(store.clone(), settings, Arc::new(FakeClock::fixed())).expect("service");
    let scope = Scope::parse("app").expect("scope");
    let new = NewUser {
        username: Some(Username::parse("alice").expect("username")),
        password: Some(Password::new("ivy velvet kumquat").expect("password")),
        ..Default::default()
    };
    hp.register(&scope, new).await.expect("register");
    let login = || LoginRequest {
        credentials: Credentials::Password {
            login: UserRef::parse("alice").expect("login"),
            password: Password::new("ivy velvet kumquat").expect("password"),
        },
        data: Default::default(),
        client: ClientInfo::default(),
        device: None,
    };
    let mut published = Vec::new();
    for _ in 0..3 {
        store.observer().0.lock().expect("lock").clear();
        hp.login(&scope, login()).await.expect("login");
        let calls = std::mem::take(&mut *store.observer().0.lock().expect("lock"));
        assert!(calls.contains(&"insert_login"), "{calls:?}");
        published.push(calls.iter().filter(|c| **c == "publish_change").count());
    }
    assert_eq!(published, vec![0, 0, 1], "the third login's cap ended the first session");
}
