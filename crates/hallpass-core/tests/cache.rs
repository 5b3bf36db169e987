//! The session cache never answers for what was ended: with caching on, every operation
//! that ends a session or changes its user is seen by the very next get-session, with the
//! copy primed by a get-session just before. (Other processes' changes arrive through the
//! store's change channel: `crates/hallpass-server/tests/multiprocess.rs`.)

use hallpass_core::service::{Credentials, LoginRequest, NewUser};
use hallpass_core::*;
use serde_json::json;
use std::sync::Arc;

const PASSWORD: &str = "ivy velvet kumquat";
const NEW_PASSWORD: &str = "quilted marsupial drumbeat";

struct Env {
    hp: Hallpass,
    scope: Scope,
}

impl Env {
    fn new() -> Self {
        let mut settings =
            Settings { hash_params: HashParams { m_cost: 256, t_cost: 1, p_cost: 1 }, ..Default::default() };
        settings.cache.mode = CacheMode::On;
        let hp = Hallpass::with_clock(Arc::new(MemoryStore::new()), settings, Arc::new(FakeClock::fixed()))
            .expect("service");
        assert!(hp.caching());
        Self { hp, scope: Scope::parse("app").expect("scope") }
    }

    async fn user(&self, name: &str) -> User {
        let new = NewUser {
            username: Some(Username::parse(name).expect("username")),
            password: Some(Password::new(PASSWORD).expect("password")),
            ..Default::default()
        };
        self.hp.register(&self.scope, new).await.expect("register")
    }

    async fn login(&self, name: &str, password: &str) -> SessionToken {
        let credentials = Credentials::Password {
            login: UserRef::login(name).expect("login"),
            password: Password::for_login(password).expect("password"),
        };
        let req = LoginRequest {
            credentials,
            data: Default::default(),
            client: ClientInfo::default(),
            device: None,
        };
        self.hp.login(&self.scope, req).await.expect("login").token
    }

    /// A session checked once (so its copy is cached).
    async fn primed(&self, name: &str) -> SessionToken {
        let token = self.login(name, PASSWORD).await;
        self.hp.get_session(&self.scope, &token).await.expect("valid");
        self.hp.get_session(&self.scope, &token).await.expect("valid, from the cache");
        token
    }

    async fn refused(&self, token: &SessionToken) -> bool {
        matches!(self.hp.get_session(&self.scope, token).await, Err(Error::SessionInvalid))
    }

    fn by(&self, name: &str) -> UserRef {
        UserRef::login(name).expect("ref")
    }
}

#[tokio::test]
async fn every_way_of_ending_a_session_is_seen_at_once() {
    let env = Env::new();
    let s = &env.scope;

    env.user("a").await;
    let t = env.primed("a").await;
    env.hp.end_session(s, &t).await.unwrap();
    assert!(env.refused(&t).await, "logout");

    env.user("b").await;
    let t = env.primed("b").await;
    env.hp
        .update_user(s, &env.by("b"), UserPatch { active: Some(false), ..Default::default() })
        .await
        .unwrap();
    assert!(env.refused(&t).await, "deactivation");

    env.user("c").await;
    let t = env.primed("c").await;
    env.hp.set_password(s, &env.by("c"), Password::new(NEW_PASSWORD).unwrap()).await.unwrap();
    assert!(env.refused(&t).await, "password change");

    env.user("d").await;
    let t = env.primed("d").await;
    env.hp.delete_user(s, &env.by("d")).await.unwrap();
    assert!(env.refused(&t).await, "deletion");

    env.user("e").await;
    let t = env.primed("e").await;
    env.hp.end_user_sessions(s, &env.by("e")).await.unwrap();
    assert!(env.refused(&t).await, "end all of a user's sessions");

    env.user("f").await;
    let t = env.primed("f").await;
    let (session, _) = env.hp.get_session(s, &t).await.unwrap();
    env.hp.end_user_session(s, &env.by("f"), session.id).await.unwrap();
    assert!(env.refused(&t).await, "end one session by id");

    env.user("g").await;
    let (keep, other) = (env.primed("g").await, env.primed("g").await);
    env.hp.end_other_sessions(s, &keep).await.unwrap();
    assert!(env.refused(&other).await, "end the others");
    assert!(!env.refused(&keep).await, "the caller's own stays");

    env.user("h").await;
    let t = env.primed("h").await;
    let code = env.hp.create_reset_code(s, &env.by("h")).await.unwrap().code;
    env.hp.redeem_reset_code(s, &code, Password::new(NEW_PASSWORD).unwrap()).await.unwrap();
    assert!(env.refused(&t).await, "reset redemption");

    let mut settings = env.hp.settings().clone();
    settings.default_scope.max_sessions_per_user = 1;
    let capped =
        Hallpass::with_clock(env.hp.store().clone(), settings, Arc::new(FakeClock::fixed())).unwrap();
    let env2 = Env { hp: capped, scope: s.clone() };
    env2.user("i").await;
    let t = env2.primed("i").await;
    env2.login("i", PASSWORD).await;
    assert!(env2.refused(&t).await, "the oldest session ended by the cap");
}

#[tokio::test]
async fn changes_to_the_user_and_the_session_show_at_once() {
    let env = Env::new();
    let s = &env.scope;
    env.user("ann").await;
    let t = env.primed("ann").await;
    let patch = UserPatch {
        group: Some(Group::parse("admins").unwrap()),
        extra: Some(json!({"plan": "pro"}).as_object().unwrap().clone()),
        ..Default::default()
    };
    env.hp.update_user(s, &env.by("ann"), patch).await.unwrap();
    let (_, user) = env.hp.get_session(s, &t).await.unwrap();
    assert_eq!((user.group.as_str(), &user.extra["plan"]), ("admins", &json!("pro")));

    env.hp.patch_session_data(s, &t, &json!({"cart": 3})).await.unwrap();
    let (session, _) = env.hp.get_session(s, &t).await.unwrap();
    assert_eq!(session.data["cart"], json!(3));

    // A token of this scope is not one of another scope, cached or not.
    let other = Scope::parse("other").unwrap();
    assert!(matches!(env.hp.get_session(&other, &t).await, Err(Error::SessionInvalid)));
}

#[tokio::test]
async fn a_revoked_api_key_is_refused_at_once() {
    let env = Env::new();
    let (key, secret) = env.hp.create_api_key(env.scope.clone(), None).await.unwrap();
    assert!(env.hp.authenticate_key(secret.expose()).await.unwrap().is_some());
    assert!(env.hp.authenticate_key(secret.expose()).await.unwrap().is_some(), "cached");
    env.hp.revoke_api_key(key.id).await.unwrap();
    assert!(env.hp.authenticate_key(secret.expose()).await.unwrap().is_none());
}
