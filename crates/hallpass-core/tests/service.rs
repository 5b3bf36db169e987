//! Tests of the service (`Hallpass`) on the in-memory store with a fake clock: what a
//! program embedding hallpass relies on, from registration to expiry, resets, provider
//! logins, statistics and rehashing.

use hallpass_core::clock::{from_unix_ms, to_unix_ms};
use hallpass_core::service::{Credentials, Expiry, LoginRequest, LoginResult, NewUser, TokenUpdate};
use hallpass_core::*;
use serde_json::json;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const PASSWORD: &str = "correct horse battery";

fn cheap() -> HashParams {
    HashParams { m_cost: 256, t_cost: 1, p_cost: 1 }
}

fn settings() -> Settings {
    Settings { hash_params: cheap(), ..Default::default() }
}

struct Env {
    hp: Hallpass,
    store: Arc<MemoryStore>,
    clock: Arc<FakeClock>,
    scope: Scope,
}

impl Env {
    fn new() -> Self {
        Self::with(settings())
    }

    fn with(settings: Settings) -> Self {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(FakeClock::fixed());
        let hp = Hallpass::with_clock(store.clone(), settings, clock.clone()).expect("service");
        Self { hp, store, clock, scope: Scope::parse("app").expect("scope") }
    }

    /// A second service on the same store and clock, with other settings.
    fn sibling(&self, settings: Settings) -> Hallpass {
        Hallpass::with_clock(self.store.clone(), settings, self.clock.clone()).expect("service")
    }

    fn now(&self) -> OffsetDateTime {
        self.hp.now()
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    async fn register(&self, username: Option<&str>, email: Option<&str>, password: Option<&str>) -> User {
        let new = NewUser {
            username: username.map(|u| Username::parse(u).expect("username")),
            email: email.map(|e| Email::parse(e).expect("email")),
            password: password.map(|p| Password::new(p).expect("password")),
            ..Default::default()
        };
        self.hp.register(&self.scope, new).await.expect("register")
    }

    async fn login_with(&self, hp: &Hallpass, login: &str, password: &str) -> Result<LoginResult> {
        let credentials =
            Credentials::Password { login: UserRef::login(login)?, password: Password::for_login(password)? };
        hp.login(
            &self.scope,
            LoginRequest {
                credentials,
                data: JsonObject::new(),
                client: ClientInfo::default(),
                device: None,
            },
        )
        .await
    }

    async fn login(&self, login: &str, password: &str) -> Result<LoginResult> {
        self.login_with(&self.hp, login, password).await
    }

    async fn provider_login(&self, provider: &str, client_id: &str) -> Result<LoginResult> {
        let credentials = Credentials::Provider {
            provider: ProviderName::parse(provider).expect("provider"),
            client_id: ClientId::parse(client_id).expect("client id"),
        };
        self.hp
            .login(
                &self.scope,
                LoginRequest {
                    credentials,
                    data: JsonObject::new(),
                    client: ClientInfo::default(),
                    device: None,
                },
            )
            .await
    }

    async fn valid(&self, token: &SessionToken) -> bool {
        match self.hp.get_session(&self.scope, token).await {
            Ok(_) => true,
            Err(Error::SessionInvalid) => false,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }

    async fn stored_hash(&self, id: uuid::Uuid) -> Option<String> {
        self.store
            .find_user(&self.scope, &UserRef::Id(id))
            .await
            .expect("find_user")
            .expect("the user exists")
            .password_hash
    }

    fn events(&self) -> Vec<LoginEvent> {
        self.store.events(&self.scope)
    }

    fn id_ref(user: &User) -> UserRef {
        UserRef::Id(user.id)
    }
}

fn is_wrong_password<T: std::fmt::Debug>(r: &Result<T>) -> bool {
    matches!(r, Err(Error::InvalidCredentials(CredentialFailure::WrongPassword)))
}

fn is_unknown_user<T: std::fmt::Debug>(r: &Result<T>) -> bool {
    matches!(r, Err(Error::InvalidCredentials(CredentialFailure::UserNotFound)))
}

#[tokio::test]
async fn register_then_log_in_by_username_email_and_login_field() {
    let env = Env::new();
    let alice = env.register(Some("Alice"), Some("Alice@Example.COM"), Some(PASSWORD)).await;
    assert_eq!(alice.group.as_str(), "default");
    assert!(alice.active);

    // The `login` field: a username in any case, or the email with any case of the domain.
    for login in ["Alice", "alice", "ALICE", "Alice@example.com", "Alice@EXAMPLE.COM"] {
        let r = env.login(login, PASSWORD).await.unwrap_or_else(|e| panic!("login {login}: {e:?}"));
        assert_eq!(r.login.user_id, alice.id);
        assert_eq!(r.session.user_id, alice.id);
        assert!(r.token.expose().starts_with("hps_"));
    }

    // Explicit username and email credentials, with session data and client.
    for login in [
        UserRef::Username(Username::parse("ALICE").unwrap().key().to_owned()),
        UserRef::Email(Email::parse("Alice@example.com").unwrap().key().to_owned()),
    ] {
        let client = ClientInfo { ip: Some("203.0.113.9".into()), user_agent: Some("test/1".into()) };
        let credentials = Credentials::Password { login, password: Password::for_login(PASSWORD).unwrap() };
        let data = json!({"cart": 3}).as_object().cloned().unwrap();
        let r = env
            .hp
            .login(&env.scope, LoginRequest { credentials, data, client: client.clone(), device: None })
            .await
            .unwrap();
        let now = env.now();
        assert_eq!(r.session.created_at, now);
        assert_eq!(r.session.expires_at, now + Duration::hours(24));
        assert_eq!(r.session.absolute_expires_at, now + Duration::days(30));
        assert_eq!(r.session.client, client);
        assert_eq!(r.login.username.as_deref(), Some("Alice"), "shown as typed");
        assert_eq!(r.login.email.as_deref(), Some("Alice@Example.COM"));
        assert_eq!(r.login.scope, env.scope);
        assert!(r.login.active && r.login.validated);
        assert!(r.login.oauth.is_none());

        let (session, user) = env.hp.get_session(&env.scope, &r.token).await.unwrap();
        assert_eq!(session, r.session);
        assert_eq!(session.data, json!({"cart": 3}).as_object().cloned().unwrap());
        assert_eq!(user.id, alice.id);
        assert_eq!(user.last_login_at, Some(now));
    }

    let history = env.hp.login_history(&env.scope, &Env::id_ref(&alice), None, None).await.unwrap();
    assert_eq!(history.items.len(), 7);
    assert!(history.items.iter().all(|e| e.outcome == Outcome::Success && e.method == "password"));
    assert_eq!(history.items[0].ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(env.hp.list_sessions(&env.scope, &Env::id_ref(&alice)).await.unwrap().len(), 7);

    // A session token of one scope means nothing in another.
    let r = env.login("alice", PASSWORD).await.unwrap();
    let other = Scope::parse("other").unwrap();
    assert!(matches!(env.hp.get_session(&other, &r.token).await, Err(Error::SessionInvalid)));
}

#[tokio::test]
async fn registration_conflicts_and_required_fields() {
    let env = Env::new();
    let alice = env.register(Some("alice"), Some("alice@example.com"), None).await;
    let dup = NewUser { username: Some(Username::parse("ALICE").unwrap()), ..Default::default() };
    assert!(matches!(env.hp.register(&env.scope, dup).await, Err(Error::UsernameTaken)));
    let dup = NewUser { email: Some(Email::parse("alice@EXAMPLE.com").unwrap()), ..Default::default() };
    assert!(matches!(env.hp.register(&env.scope, dup).await, Err(Error::EmailTaken)));
    assert!(matches!(env.hp.register(&env.scope, NewUser::default()).await, Err(Error::Invalid(_))));

    let patch = UserPatch { username: Some(None), email: Some(None), ..Default::default() };
    let r = env.hp.update_user(&env.scope, &Env::id_ref(&alice), patch).await;
    assert!(matches!(r, Err(Error::Invalid(_))), "a user keeps a username or an email");
    let patch = UserPatch { username: Some(None), ..Default::default() };
    let updated = env.hp.update_user(&env.scope, &Env::id_ref(&alice), patch).await.unwrap();
    assert!(updated.username.is_none());
    assert_eq!(updated.email.as_ref().map(Email::as_str), Some("alice@example.com"));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_both_invalid_credentials_and_recorded() {
    let env = Env::new();
    let alice = env.register(Some("alice"), Some("alice@example.com"), Some(PASSWORD)).await;
    let nopass = env.register(Some("nopass"), None, None).await;

    let wrong = env.login("alice", "wrong horse battery").await;
    assert!(is_wrong_password(&wrong), "{wrong:?}");
    let unknown = env.login("nobody", PASSWORD).await;
    assert!(is_unknown_user(&unknown), "{unknown:?}");
    let unknown_email = env.login("nobody@example.com", PASSWORD).await;
    assert!(is_unknown_user(&unknown_email));
    let no_password = env.login("nopass", PASSWORD).await;
    assert!(is_wrong_password(&no_password), "a user without a password cannot log in with one");

    let events = env.events();
    let outcomes: Vec<(Option<uuid::Uuid>, Outcome)> =
        events.iter().map(|e| (e.user_id, e.outcome)).collect();
    assert_eq!(
        outcomes,
        vec![
            (Some(alice.id), Outcome::WrongPassword),
            (None, Outcome::UnknownUser),
            (None, Outcome::UnknownUser),
            (Some(nopass.id), Outcome::WrongPassword),
        ]
    );
    assert!(events.iter().all(|e| e.session_id.is_none() && e.at == env.now()));
    assert!(env.hp.list_sessions(&env.scope, &Env::id_ref(&alice)).await.unwrap().is_empty());
    let user = env.hp.get_user(&env.scope, &Env::id_ref(&alice)).await.unwrap();
    assert_eq!(user.last_login_at, None);
}

#[tokio::test]
async fn inactive_user_gets_login_info_but_no_session() {
    let env = Env::new();
    let new = NewUser {
        username: Some(Username::parse("sleepy").unwrap()),
        password: Some(Password::new(PASSWORD).unwrap()),
        active: Some(false),
        ..Default::default()
    };
    let sleepy = env.hp.register(&env.scope, new).await.unwrap();

    let r = env.login("sleepy", PASSWORD).await;
    let Err(Error::UserInactive(info)) = r else { panic!("expected UserInactive, got {r:?}") };
    assert_eq!(info.user_id, sleepy.id);
    assert_eq!(info.username.as_deref(), Some("sleepy"));
    assert!(!info.active);
    assert!(!info.validated);
    assert!(env.hp.list_sessions(&env.scope, &Env::id_ref(&sleepy)).await.unwrap().is_empty());
    assert_eq!(env.hp.get_user(&env.scope, &Env::id_ref(&sleepy)).await.unwrap().last_login_at, None);

    // A wrong password does not reveal that the user is inactive.
    assert!(is_wrong_password(&env.login("sleepy", "wrong horse battery").await));

    let outcomes: Vec<Outcome> = env.events().iter().map(|e| e.outcome).collect();
    assert_eq!(outcomes, vec![Outcome::Inactive, Outcome::WrongPassword]);
    assert!(env.events().iter().all(|e| e.user_id == Some(sleepy.id) && e.session_id.is_none()));
    let stats =
        env.hp.login_stats(&env.scope, None, Some(env.now() + Duration::HOUR), Bucket::Hour).await.unwrap();
    assert_eq!(stats.iter().map(|b| b.logins).sum::<u64>(), 0, "no success is counted");

    // Activated, the same credentials log in.
    let patch = UserPatch { active: Some(true), ..Default::default() };
    env.hp.update_user(&env.scope, &Env::id_ref(&sleepy), patch).await.unwrap();
    let r = env.login("sleepy", PASSWORD).await.unwrap();
    assert!(env.valid(&r.token).await);
}

fn short_sessions() -> Settings {
    let mut s = settings();
    s.default_scope.session_idle_timeout = Duration::minutes(30);
    s.default_scope.session_absolute_timeout = Duration::hours(2);
    s
}

#[tokio::test]
async fn idle_expiry_ends_a_session_and_get_session_does_not_extend() {
    let env = Env::with(short_sessions());
    env.register(Some("alice"), None, Some(PASSWORD)).await;
    let r = env.login("alice", PASSWORD).await.unwrap();
    let t0 = env.now();
    assert_eq!(r.session.expires_at, t0 + Duration::minutes(30));

    env.advance(Duration::minutes(20));
    let (session, _) = env.hp.get_session(&env.scope, &r.token).await.unwrap();
    assert_eq!(session.expires_at, t0 + Duration::minutes(30), "get_session does not extend");
    assert_eq!(session.last_seen_at, t0);

    env.advance(Duration::minutes(10) - Duration::milliseconds(1));
    assert!(env.valid(&r.token).await, "valid until the last millisecond");
    env.advance(Duration::milliseconds(1));
    assert!(!env.valid(&r.token).await, "invalid at the idle expiry");
    assert!(matches!(env.hp.freshen(&env.scope, &r.token).await, Err(Error::SessionInvalid)));
    assert!(matches!(
        env.hp.patch_session_data(&env.scope, &r.token, &json!({"a": 1})).await,
        Err(Error::SessionInvalid)
    ));
    assert!(env.hp.list_sessions(&env.scope, &UserRef::login("alice").unwrap()).await.unwrap().is_empty());
}

#[tokio::test]
async fn freshen_extends_but_never_past_the_absolute_expiry() {
    let env = Env::with(short_sessions());
    env.register(Some("alice"), None, Some(PASSWORD)).await;
    let r = env.login("alice", PASSWORD).await.unwrap();
    let t0 = env.now();
    let absolute = t0 + Duration::hours(2);

    // Freshened every 20 minutes, the session lives past its first idle expiry...
    for step in 1..=4 {
        env.advance(Duration::minutes(20));
        let s = env.hp.freshen(&env.scope, &r.token).await.unwrap();
        assert_eq!(s.last_seen_at, env.now());
        assert_eq!(s.expires_at, env.now() + Duration::minutes(30), "step {step}");
        assert_eq!(s.absolute_expires_at, absolute);
    }
    // ...but at t0+100m a freshen is capped by the absolute expiry (100m + 30m > 120m)...
    env.advance(Duration::minutes(20));
    let s = env.hp.freshen(&env.scope, &r.token).await.unwrap();
    assert_eq!(s.expires_at, absolute);
    // ...and the session dies at the absolute expiry however often it is freshened.
    env.advance(Duration::minutes(19));
    let s = env.hp.freshen(&env.scope, &r.token).await.unwrap();
    assert_eq!(s.expires_at, absolute);
    assert!(env.valid(&r.token).await);
    env.advance(Duration::minutes(1));
    assert_eq!(env.now(), absolute);
    assert!(!env.valid(&r.token).await);
    assert!(matches!(env.hp.freshen(&env.scope, &r.token).await, Err(Error::SessionInvalid)));
}

#[tokio::test]
async fn session_data_takes_merge_patches() {
    let env = Env::new();
    env.register(Some("alice"), None, Some(PASSWORD)).await;
    let r = env.login("alice", PASSWORD).await.unwrap();
    let s = env.hp.patch_session_data(&env.scope, &r.token, &json!({"a": 1, "b": {"c": 2}})).await.unwrap();
    assert_eq!(serde_json::Value::Object(s.data), json!({"a": 1, "b": {"c": 2}}));
    let s =
        env.hp.patch_session_data(&env.scope, &r.token, &json!({"a": null, "b": {"d": 3}})).await.unwrap();
    assert_eq!(serde_json::Value::Object(s.data), json!({"b": {"c": 2, "d": 3}}));
    let (stored, _) = env.hp.get_session(&env.scope, &r.token).await.unwrap();
    assert_eq!(serde_json::Value::Object(stored.data), json!({"b": {"c": 2, "d": 3}}));
    assert!(matches!(
        env.hp.patch_session_data(&env.scope, &r.token, &json!([1])).await,
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn end_session_is_idempotent() {
    let env = Env::new();
    env.register(Some("alice"), None, Some(PASSWORD)).await;
    let r = env.login("alice", PASSWORD).await.unwrap();
    let keep = env.login("alice", PASSWORD).await.unwrap();
    env.hp.end_session(&env.scope, &r.token).await.unwrap();
    assert!(!env.valid(&r.token).await);
    env.hp.end_session(&env.scope, &r.token).await.unwrap();
    env.hp.end_session(&env.scope, &SessionToken::from_presented("hps_never-issued")).await.unwrap();
    env.hp.end_session(&env.scope, &SessionToken::from_presented("garbage")).await.unwrap();
    assert!(env.valid(&keep.token).await, "only that session ended");
}

#[tokio::test]
async fn end_other_sessions_keeps_the_callers() {
    let env = Env::new();
    let alice = env.register(Some("alice"), None, Some(PASSWORD)).await;
    env.register(Some("bob"), None, Some(PASSWORD)).await;
    let mine = env.login("alice", PASSWORD).await.unwrap();
    let other1 = env.login("alice", PASSWORD).await.unwrap();
    let other2 = env.login("alice", PASSWORD).await.unwrap();
    let bobs = env.login("bob", PASSWORD).await.unwrap();

    assert_eq!(env.hp.end_other_sessions(&env.scope, &mine.token).await.unwrap(), 2);
    assert!(env.valid(&mine.token).await);
    assert!(!env.valid(&other1.token).await);
    assert!(!env.valid(&other2.token).await);
    assert!(env.valid(&bobs.token).await);
    let listed = env.hp.list_sessions(&env.scope, &Env::id_ref(&alice)).await.unwrap();
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), vec![mine.session.id]);

    // Ending one session of a user by id, and all of them.
    let extra = env.login("alice", PASSWORD).await.unwrap();
    env.hp.end_user_session(&env.scope, &Env::id_ref(&alice), extra.session.id).await.unwrap();
    assert!(!env.valid(&extra.token).await);
    let again = env.hp.end_user_session(&env.scope, &Env::id_ref(&alice), extra.session.id).await;
    assert!(matches!(again, Err(Error::SessionNotFound)));
    assert_eq!(env.hp.end_user_sessions(&env.scope, &Env::id_ref(&alice)).await.unwrap(), 1);
    assert!(!env.valid(&mine.token).await);
}

#[tokio::test]
async fn deactivation_password_change_and_deletion_end_sessions() {
    let env = Env::new();
    let alice = env.register(Some("alice"), Some("alice@example.com"), Some(PASSWORD)).await;
    let alice_ref = Env::id_ref(&alice);

    // Deactivation.
    let a = env.login("alice", PASSWORD).await.unwrap();
    let b = env.login("alice@example.com", PASSWORD).await.unwrap();
    let patch = UserPatch { active: Some(false), ..Default::default() };
    let updated = env.hp.update_user(&env.scope, &alice_ref, patch).await.unwrap();
    assert!(!updated.active);
    assert!(!env.valid(&a.token).await);
    assert!(!env.valid(&b.token).await);
    assert!(matches!(env.login("alice", PASSWORD).await, Err(Error::UserInactive(_))));
    let patch = UserPatch { active: Some(true), ..Default::default() };
    env.hp.update_user(&env.scope, &alice_ref, patch).await.unwrap();
    assert!(!env.valid(&a.token).await, "reactivation brings no session back");

    // Password change.
    let c = env.login("alice", PASSWORD).await.unwrap();
    let new_password = "a brand new passphrase";
    env.hp.set_password(&env.scope, &alice_ref, Password::new(new_password).unwrap()).await.unwrap();
    assert!(!env.valid(&c.token).await);
    assert!(is_wrong_password(&env.login("alice", PASSWORD).await));
    let d = env.login("alice", new_password).await.unwrap();
    assert!(env.valid(&d.token).await);

    // Deletion.
    env.hp.delete_user(&env.scope, &alice_ref).await.unwrap();
    assert!(!env.valid(&d.token).await);
    assert!(is_unknown_user(&env.login("alice", new_password).await));
    assert!(matches!(env.hp.get_user(&env.scope, &alice_ref).await, Err(Error::UserNotFound)));
    assert!(matches!(env.hp.delete_user(&env.scope, &alice_ref).await, Err(Error::UserNotFound)));
}

#[tokio::test]
async fn max_sessions_per_user_ends_the_oldest() {
    let mut s = settings();
    s.default_scope.max_sessions_per_user = 2;
    let env = Env::with(s);
    env.register(Some("alice"), None, Some(PASSWORD)).await;
    let first = env.login("alice", PASSWORD).await.unwrap();
    env.advance(Duration::SECOND);
    let second = env.login("alice", PASSWORD).await.unwrap();
    env.advance(Duration::SECOND);
    let third = env.login("alice", PASSWORD).await.unwrap();
    assert!(!env.valid(&first.token).await);
    assert!(env.valid(&second.token).await);
    assert!(env.valid(&third.token).await);
}

#[tokio::test]
async fn reset_codes_expire_are_single_use_and_the_newest_wins() {
    let env = Env::new();
    let alice = env.register(Some("alice"), Some("alice@example.com"), Some(PASSWORD)).await;
    let by_login = UserRef::login("alice@example.com").unwrap();
    let reset = |code: &Code, password: &str| {
        let (code, password) = (code.clone(), Password::new(password).unwrap());
        let env = &env;
        async move { env.hp.redeem_reset_code(&env.scope, &code, password).await }
    };

    // Expiry by the clock: refused at the expiry instant, the password unchanged.
    let issued = env.hp.create_reset_code(&env.scope, &by_login).await.unwrap();
    assert_eq!(issued.user_id, alice.id);
    assert_eq!(issued.expires_at, env.now() + Duration::hours(1));
    assert!(issued.code.expose().starts_with("hpc_"));
    env.advance(Duration::hours(1));
    assert!(matches!(reset(&issued.code, "expired code password").await, Err(Error::InvalidCode)));
    env.login("alice", PASSWORD).await.unwrap();

    // A new code voids the older one.
    let old = env.hp.create_reset_code(&env.scope, &by_login).await.unwrap();
    let new = env.hp.create_reset_code(&env.scope, &UserRef::login("ALICE").unwrap()).await.unwrap();
    assert!(matches!(reset(&old.code, "voided code password").await, Err(Error::InvalidCode)));

    // Redeeming ends every session; the new password works, the old one fails.
    let s1 = env.login("alice", PASSWORD).await.unwrap();
    let s2 = env.login("alice", PASSWORD).await.unwrap();
    env.advance(Duration::minutes(59));
    assert_eq!(reset(&new.code, "the reset passphrase").await.unwrap(), alice.id);
    assert!(!env.valid(&s1.token).await);
    assert!(!env.valid(&s2.token).await);
    assert!(is_wrong_password(&env.login("alice", PASSWORD).await));
    env.login("alice", "the reset passphrase").await.unwrap();

    // Single use.
    assert!(matches!(reset(&new.code, "second use password").await, Err(Error::InvalidCode)));
    env.login("alice", "the reset passphrase").await.unwrap();

    assert!(matches!(
        reset(&Code::from_presented("hpc_unknown"), "whatever password").await,
        Err(Error::InvalidCode)
    ));
    assert!(matches!(
        reset(&Code::from_presented("not-a-code"), "whatever password").await,
        Err(Error::InvalidCode)
    ));
    let nobody = env.hp.create_reset_code(&env.scope, &UserRef::login("nobody").unwrap()).await;
    assert!(matches!(nobody, Err(Error::UserNotFound)));
}

#[tokio::test]
async fn provider_link_login_and_token_expiry_by_the_clock() {
    let env = Env::new();
    let alice = env.register(Some("alice"), None, None).await;
    let alice_ref = Env::id_ref(&alice);
    let github = ProviderName::parse("github").unwrap();
    let update = TokenUpdate {
        access_token: Some(Some("gho_abc".into())),
        expiry: Some(Some(Expiry::In(3600))),
        ..Default::default()
    };
    let linked = env
        .hp
        .link_provider(&env.scope, &alice_ref, github.clone(), ClientId::parse("gh-42").unwrap(), update)
        .await
        .unwrap();
    let expiry = env.now() + Duration::seconds(3600);
    assert_eq!(linked.access_token_expiry, Some(expiry));
    assert!(!linked.access_token_expired(env.now()));

    let r = env.provider_login("github", "gh-42").await.unwrap();
    assert_eq!(r.login.user_id, alice.id);
    let oauth = r.login.oauth.clone().expect("oauth info");
    assert_eq!(oauth.provider, "github");
    assert_eq!(oauth.client_id, "gh-42");
    assert_eq!(oauth.access_token.as_deref(), Some("gho_abc"));
    assert_eq!(oauth.access_token_expiry, Some(expiry));
    assert!(!oauth.access_token_expired);
    assert!(env.valid(&r.token).await);
    assert_eq!(env.events().last().map(|e| e.method.clone()).as_deref(), Some("provider:github"));

    // At the expiry instant the token counts as expired, by the service's clock.
    env.advance(Duration::seconds(3600));
    let r = env.provider_login("github", "gh-42").await.unwrap();
    assert!(r.login.oauth.as_ref().is_some_and(|o| o.access_token_expired));
    let got = env.hp.get_provider(&env.scope, &alice_ref, &github).await.unwrap();
    assert!(got.access_token_expired(env.now()));

    // Updating the expiry (and only it).
    let update = TokenUpdate { expiry: Some(Some(Expiry::In(60))), ..Default::default() };
    let updated = env.hp.update_provider(&env.scope, &alice_ref, &github, update).await.unwrap();
    assert_eq!(updated.access_token.as_deref(), Some("gho_abc"));
    assert_eq!(updated.access_token_expiry, Some(env.now() + Duration::seconds(60)));
    let r = env.provider_login("github", "gh-42").await.unwrap();
    assert!(r.login.oauth.as_ref().is_some_and(|o| !o.access_token_expired));

    // Unknown identities, identities of another user, unlinking.
    assert!(is_unknown_user(&env.provider_login("github", "gh-43").await));
    assert!(is_unknown_user(&env.provider_login("gitlab", "gh-42").await));
    let bob = env.register(Some("bob"), None, None).await;
    let taken = env
        .hp
        .link_provider(
            &env.scope,
            &Env::id_ref(&bob),
            github.clone(),
            ClientId::parse("gh-42").unwrap(),
            TokenUpdate::default(),
        )
        .await;
    assert!(matches!(taken, Err(Error::IdentityTaken)));
    // Alice has no password: her only link is her only way to log in.
    assert!(matches!(
        env.hp.unlink_provider(&env.scope, &alice_ref, &github).await,
        Err(Error::LastLoginMethod)
    ));
    assert!(env.provider_login("github", "gh-42").await.is_ok(), "the refused unlink changed nothing");
    env.hp.set_password(&env.scope, &alice_ref, Password::new(PASSWORD).unwrap()).await.unwrap();
    env.hp.unlink_provider(&env.scope, &alice_ref, &github).await.unwrap();
    assert!(is_unknown_user(&env.provider_login("github", "gh-42").await));
    assert!(matches!(
        env.hp.unlink_provider(&env.scope, &alice_ref, &github).await,
        Err(Error::ProviderNotLinked)
    ));
    assert!(matches!(
        env.hp.get_provider(&env.scope, &alice_ref, &github).await,
        Err(Error::ProviderNotLinked)
    ));
}

#[tokio::test]
async fn provider_login_of_an_inactive_user_is_refused_with_oauth_info() {
    let env = Env::new();
    let alice = env.register(Some("alice"), None, None).await;
    let github = ProviderName::parse("github").unwrap();
    env.hp
        .link_provider(
            &env.scope,
            &Env::id_ref(&alice),
            github,
            ClientId::parse("gh-1").unwrap(),
            TokenUpdate::default(),
        )
        .await
        .unwrap();
    let patch = UserPatch { active: Some(false), ..Default::default() };
    env.hp.update_user(&env.scope, &Env::id_ref(&alice), patch).await.unwrap();
    let r = env.provider_login("github", "gh-1").await;
    let Err(Error::UserInactive(info)) = r else { panic!("expected UserInactive, got {r:?}") };
    assert_eq!(info.oauth.map(|o| o.client_id).as_deref(), Some("gh-1"));
    assert_eq!(env.events().last().map(|e| e.outcome), Some(Outcome::Inactive));
}

#[tokio::test]
async fn login_stats_fill_empty_buckets_with_zeros() {
    let env = Env::new();
    env.register(Some("alice"), None, Some(PASSWORD)).await;
    env.register(Some("bob"), None, Some(PASSWORD)).await;
    let d = env.now(); // 2030-01-01T00:00Z
    let hour = |h: i64| d + Duration::hours(h);

    env.advance(Duration::minutes(10));
    env.login("alice", PASSWORD).await.unwrap();
    env.advance(Duration::minutes(10));
    env.login("bob", PASSWORD).await.unwrap();
    env.login("bob", "wrong horse battery").await.unwrap_err();
    env.advance(Duration::minutes(130)); // 02:30
    env.login("alice", PASSWORD).await.unwrap();

    let stats = env.hp.login_stats(&env.scope, Some(d), Some(hour(4)), Bucket::Hour).await.unwrap();
    let got: Vec<(OffsetDateTime, u64, u64)> = stats.iter().map(|b| (b.start, b.logins, b.users)).collect();
    assert_eq!(got, vec![(hour(0), 2, 2), (hour(1), 0, 0), (hour(2), 1, 1), (hour(3), 0, 0)]);

    // Defaults: the 24 hours up to now, in whole-hour buckets from the hour `from` falls in.
    env.advance(Duration::minutes(30)); // 03:00
    let stats = env.hp.login_stats(&env.scope, None, None, Bucket::Hour).await.unwrap();
    assert_eq!(stats.len(), 24);
    assert_eq!(stats.first().map(|b| b.start), Some(hour(-21)));
    assert_eq!(stats.last().map(|b| b.start), Some(hour(2)));
    assert_eq!(stats.iter().map(|b| b.logins).sum::<u64>(), 3);
    assert!(stats.iter().all(|b| to_unix_ms(b.start) % 3_600_000 == 0));

    let stats = env
        .hp
        .login_stats(&env.scope, Some(d - Duration::days(1)), Some(d + Duration::days(2)), Bucket::Day)
        .await
        .unwrap();
    let got: Vec<(OffsetDateTime, u64, u64)> = stats.iter().map(|b| (b.start, b.logins, b.users)).collect();
    assert_eq!(got, vec![(d - Duration::days(1), 0, 0), (d, 3, 2), (d + Duration::days(1), 0, 0)]);

    // An unaligned `from` still gives buckets on the hour.
    let stats = env
        .hp
        .login_stats(&env.scope, Some(hour(0) + Duration::minutes(15)), Some(hour(2)), Bucket::Hour)
        .await
        .unwrap();
    let got: Vec<(OffsetDateTime, u64, u64)> = stats.iter().map(|b| (b.start, b.logins, b.users)).collect();
    assert_eq!(got, vec![(hour(0), 1, 1), (hour(1), 0, 0)]);

    assert!(matches!(
        env.hp.login_stats(&env.scope, Some(hour(2)), Some(hour(2)), Bucket::Hour).await,
        Err(Error::Invalid(_))
    ));
    assert_eq!(from_unix_ms(to_unix_ms(d)), d);
}

#[tokio::test]
async fn login_rehashes_a_password_made_with_old_parameters() {
    let env = Env::new();
    let alice = env.register(Some("alice"), None, Some(PASSWORD)).await;
    let old_hash = env.stored_hash(alice.id).await.unwrap();
    assert!(old_hash.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{old_hash}");
    let before = env.login("alice", PASSWORD).await.unwrap();

    let stronger = env.sibling(Settings {
        hash_params: HashParams { m_cost: 512, t_cost: 2, p_cost: 1 },
        ..Default::default()
    });

    // A wrong password changes nothing.
    assert!(is_wrong_password(&env.login_with(&stronger, "alice", "wrong horse battery").await));
    assert_eq!(env.stored_hash(alice.id).await.as_deref(), Some(old_hash.as_str()));

    env.login_with(&stronger, "alice", PASSWORD).await.unwrap();
    let new_hash = env.stored_hash(alice.id).await.unwrap();
    assert_ne!(new_hash, old_hash);
    assert!(new_hash.starts_with("$argon2id$v=19$m=512,t=2,p=1$"), "{new_hash}");
    assert!(env.valid(&before.token).await, "a rehash ends no session");

    // Current parameters: no further rehash; the old service still verifies the new hash.
    env.login_with(&stronger, "alice", PASSWORD).await.unwrap();
    assert_eq!(env.stored_hash(alice.id).await.as_deref(), Some(new_hash.as_str()));
    env.login("alice", PASSWORD).await.unwrap();
}

#[tokio::test]
async fn listing_users_pages_with_cursors() {
    let env = Env::new();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(env.register(Some(&format!("user{i}")), None, None).await.id);
    }
    ids.sort();
    let filter = UserFilter::default();
    let page = env.hp.list_users(&env.scope, &filter, Some(2), None).await.unwrap();
    assert_eq!(page.items.iter().map(|u| u.id).collect::<Vec<_>>(), ids[0..2]);
    let cursor = page.next_cursor.expect("more");
    let page = env.hp.list_users(&env.scope, &filter, Some(2), Some(&cursor)).await.unwrap();
    assert_eq!(page.items.iter().map(|u| u.id).collect::<Vec<_>>(), ids[2..4]);
    let cursor = page.next_cursor.expect("more");
    let page = env.hp.list_users(&env.scope, &filter, Some(2), Some(&cursor)).await.unwrap();
    assert_eq!(page.items.iter().map(|u| u.id).collect::<Vec<_>>(), ids[4..5]);
    assert!(page.next_cursor.is_none());
    assert!(matches!(env.hp.list_users(&env.scope, &filter, Some(0), None).await, Err(Error::Invalid(_))));
    assert!(matches!(
        env.hp.list_users(&env.scope, &filter, None, Some("nope")).await,
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn sweep_removes_only_what_expired() {
    let env = Env::with(short_sessions());
    env.register(Some("alice"), None, Some(PASSWORD)).await;
    let old = env.login("alice", PASSWORD).await.unwrap();
    env.hp.create_reset_code(&env.scope, &UserRef::login("alice").unwrap()).await.unwrap();
    env.advance(Duration::minutes(45));
    let fresh = env.login("alice", PASSWORD).await.unwrap();
    assert_eq!(env.hp.sweep(100).await.unwrap(), 1, "the idle-expired session; the code lives an hour");
    env.advance(Duration::minutes(15));
    assert_eq!(env.hp.sweep(100).await.unwrap(), 2, "the expired code and its request counter (1 h window)");
    assert!(!env.valid(&old.token).await);
    assert!(env.valid(&fresh.token).await);
    assert_eq!(env.hp.sweep(100).await.unwrap(), 0);
}

#[tokio::test]
async fn api_keys_authenticate_until_revoked() {
    let env = Env::new();
    let (key, secret) = env.hp.create_api_key(env.scope.clone(), Some("backend".into())).await.unwrap();
    assert!(secret.expose().starts_with("hpk_"));
    assert_eq!(env.hp.authenticate_key(secret.expose()).await.unwrap().as_deref(), Some(&key));
    assert_eq!(env.hp.authenticate_key("hpk_wrong").await.unwrap(), None);
    assert_eq!(env.hp.authenticate_key("garbage").await.unwrap(), None);
    env.hp.revoke_api_key(key.id).await.unwrap();
    assert_eq!(env.hp.authenticate_key(secret.expose()).await.unwrap(), None);
    assert!(matches!(env.hp.revoke_api_key(key.id).await, Err(Error::KeyNotFound)));
    assert_eq!(env.hp.list_api_keys().await.unwrap()[0].revoked_at, Some(env.now()));
}

#[tokio::test]
async fn login_rehashes_an_imported_bcrypt_hash_to_argon2id() {
    let env = Env::new();
    let now = env.now();
    let user = User {
        id: uuid::Uuid::now_v7(),
        scope: env.scope.clone(),
        username: Some(Username::parse("imported").unwrap()),
        email: None,
        group: Group::default_group(),
        extra: JsonObject::new(),
        active: true,
        confirmation: None,
        confirmed: false,
        created_at: now,
        updated_at: now,
        last_login_at: None,
    };
    let bcrypt_hash = bcrypt::hash(PASSWORD, 4).unwrap();
    assert!(password::is_supported_hash(&bcrypt_hash));
    env.store
        .insert_user(&UserRecord { user: user.clone(), password_hash: Some(bcrypt_hash.clone()) })
        .await
        .unwrap();

    // A wrong password changes nothing.
    assert!(is_wrong_password(&env.login("imported", "wrong horse battery").await));
    assert_eq!(env.stored_hash(user.id).await.as_deref(), Some(bcrypt_hash.as_str()));

    let first = env.login("imported", PASSWORD).await.unwrap();
    assert_eq!(first.login.user_id, user.id);
    let new_hash = env.stored_hash(user.id).await.unwrap();
    assert!(new_hash.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{new_hash}");
    assert!(env.valid(&first.token).await, "a rehash ends no session");

    env.login("imported", PASSWORD).await.unwrap();
    assert_eq!(env.stored_hash(user.id).await.as_deref(), Some(new_hash.as_str()), "no further rehash");
    assert!(is_wrong_password(&env.login("imported", "wrong horse battery").await));
}

// ------------------------------------------------------------------ throttling

/// A password login from `ip` (or no IP).
async fn login_from(env: &Env, login: &str, password: &str, ip: Option<&str>) -> Result<LoginResult> {
    let credentials =
        Credentials::Password { login: UserRef::login(login)?, password: Password::for_login(password)? };
    let client = ClientInfo { ip: ip.map(str::to_owned), user_agent: None };
    env.hp
        .login(&env.scope, LoginRequest { credentials, data: JsonObject::new(), client, device: None })
        .await
}

fn retry_after<T: std::fmt::Debug>(r: &Result<T>) -> Option<u64> {
    match r {
        Err(Error::RateLimited { retry_after_secs }) => Some(*retry_after_secs),
        _ => None,
    }
}

fn throttled_events(env: &Env) -> usize {
    env.events().iter().filter(|e| e.outcome == Outcome::Throttled).count()
}

#[tokio::test]
async fn ten_failures_throttle_the_account_even_with_the_right_password_until_the_delay_passes() {
    let env = Env::new();
    let alice = env.register(Some("alice"), None, Some(PASSWORD)).await;
    for i in 0..10 {
        assert!(is_wrong_password(&env.login("alice", "wrong password").await), "failure {i} is a plain 401");
    }
    let refused = env.login("alice", PASSWORD).await;
    assert_eq!(retry_after(&refused), Some(1), "{refused:?}");
    let last = env.events().last().cloned().expect("an event");
    assert_eq!((last.outcome, last.user_id), (Outcome::Throttled, Some(alice.id)));
    assert!(last.session_id.is_none());

    env.advance(Duration::seconds(1));
    let ok = env.login("alice", PASSWORD).await.expect("the delay has passed");
    assert!(env.valid(&ok.token).await);

    // The good login forgot the failures: ten more are allowed again.
    for _ in 0..10 {
        assert!(is_wrong_password(&env.login("alice", "wrong password").await));
    }
    assert!(retry_after(&env.login("alice", PASSWORD).await).is_some());
}

#[tokio::test]
async fn throttling_delays_double_up_to_the_cap_and_never_lock_for_good() {
    let mut s = settings();
    s.default_scope.throttle.account_max_delay = Duration::seconds(60);
    let env = Env::with(s);
    env.register(Some("alice"), None, Some(PASSWORD)).await;
    for _ in 0..10 {
        env.login("alice", "wrong password").await.unwrap_err();
    }
    let mut waits = Vec::new();
    for _ in 0..9 {
        let wait = retry_after(&env.login("alice", "wrong password").await).expect("throttled");
        waits.push(wait);
        env.advance(Duration::seconds(wait as i64));
        // After the wait the attempt is verified again (and fails, growing the delay).
        assert!(is_wrong_password(&env.login("alice", "wrong password").await));
    }
    assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    // Half-way through a wait it is still refused, with the rest of the wait.
    env.advance(Duration::seconds(30));
    assert_eq!(retry_after(&env.login("alice", PASSWORD).await), Some(30));
    env.advance(Duration::seconds(30));
    env.login("alice", PASSWORD).await.expect("never a permanent lock");
}

#[tokio::test]
async fn unknown_users_are_throttled_the_same_way() {
    let env = Env::new();
    for _ in 0..10 {
        assert!(is_unknown_user(&env.login("nobody", "wrong password").await));
    }
    let refused = env.login("nobody", "wrong password").await;
    assert_eq!(retry_after(&refused), Some(1));
    assert_eq!(throttled_events(&env), 1);
    assert_eq!(env.events().last().and_then(|e| e.user_id), None);
    // Another login name is not affected.
    assert!(is_unknown_user(&env.login("somebody", "wrong password").await));
}

#[tokio::test]
async fn the_account_counter_is_shared_by_username_and_email() {
    let env = Env::new();
    env.register(Some("alice"), Some("alice@example.com"), Some(PASSWORD)).await;
    for i in 0..10 {
        let login = if i % 2 == 0 { "ALICE" } else { "alice@EXAMPLE.com" };
        assert!(is_wrong_password(&env.login(login, "wrong password").await));
    }
    assert!(retry_after(&env.login("alice@example.com", PASSWORD).await).is_some());
    assert!(retry_after(&env.login("Alice", PASSWORD).await).is_some());
}

#[tokio::test]
async fn one_ip_is_throttled_across_accounts_and_others_are_not() {
    let mut s = settings();
    s.default_scope.throttle.ip_max_failures = 5;
    s.default_scope.throttle.ip_window = Duration::minutes(10);
    let env = Env::with(s);
    env.register(Some("alice"), None, Some(PASSWORD)).await;
    env.register(Some("bob"), None, Some(PASSWORD)).await;
    let attacker = Some("203.0.113.9");
    for i in 0..5 {
        let r = login_from(&env, &format!("user{i}"), "wrong password", attacker).await;
        assert!(is_unknown_user(&r), "{r:?}");
    }
    // The IP has used its failures: even a right password of another account waits.
    let refused = login_from(&env, "alice", PASSWORD, attacker).await;
    assert_eq!(retry_after(&refused), Some(600));
    assert_eq!(throttled_events(&env), 1);
    // Alice from her own IP, and bob without an IP, are not affected.
    login_from(&env, "alice", PASSWORD, Some("198.51.100.7")).await.expect("another IP");
    login_from(&env, "bob", PASSWORD, None).await.expect("no IP");
    // A good login does not clear the IP's counter; the end of the window does.
    env.advance(Duration::minutes(5));
    assert_eq!(retry_after(&login_from(&env, "bob", PASSWORD, attacker).await), Some(300));
    env.advance(Duration::minutes(5));
    login_from(&env, "bob", PASSWORD, attacker).await.expect("the window has ended");
}

#[tokio::test]
async fn a_throttled_account_does_not_block_another_account() {
    let env = Env::new();
    env.register(Some("alice"), None, Some(PASSWORD)).await;
    env.register(Some("bob"), None, Some(PASSWORD)).await;
    for _ in 0..12 {
        let _ = login_from(&env, "alice", "wrong password", Some("203.0.113.9")).await;
    }
    assert!(retry_after(&login_from(&env, "alice", PASSWORD, Some("203.0.113.9")).await).is_some());
    login_from(&env, "bob", PASSWORD, Some("198.51.100.7")).await.expect("bob is not affected");
    let events = env.events();
    assert!(events.iter().any(|e| e.outcome == Outcome::Throttled && e.ip.as_deref() == Some("203.0.113.9")));
}

#[tokio::test]
async fn throttling_can_be_turned_off_per_scope() {
    let mut s = settings();
    s.default_scope.throttle.enabled = false;
    let env = Env::with(s);
    env.register(Some("alice"), None, Some(PASSWORD)).await;
    for _ in 0..30 {
        assert!(is_wrong_password(&env.login("alice", "wrong password").await));
    }
    env.login("alice", PASSWORD).await.expect("no throttling");
    assert_eq!(throttled_events(&env), 0);
}

#[tokio::test]
async fn expired_account_counters_are_forgotten_and_swept() {
    let env = Env::new();
    env.register(Some("alice"), None, Some(PASSWORD)).await;
    for _ in 0..9 {
        env.login("alice", "wrong password").await.unwrap_err();
    }
    env.advance(Duration::hours(24));
    // The nine failures are forgotten: ten more may fail before throttling starts.
    for _ in 0..10 {
        assert!(is_wrong_password(&env.login("alice", "wrong password").await));
    }
    assert!(retry_after(&env.login("alice", PASSWORD).await).is_some());
    env.advance(Duration::hours(25));
    assert!(env.hp.sweep(100).await.expect("sweep") >= 1, "the expired counter is swept");
    env.login("alice", PASSWORD).await.expect("forgotten");
}

#[tokio::test]
async fn an_api_key_has_a_request_budget_refilled_over_time() {
    let mut s = settings();
    s.default_scope.throttle.key_rate = 2;
    s.default_scope.throttle.key_burst = 3;
    let env = Env::with(s);
    let (key, _) = env.hp.create_api_key(env.scope.clone(), None).await.expect("key");
    let (other, _) = env.hp.create_api_key(env.scope.clone(), None).await.expect("key");
    for _ in 0..3 {
        env.hp.admit_key(&key, KeyCall::Costly).expect("within the burst");
    }
    assert_eq!(retry_after(&env.hp.admit_key(&key, KeyCall::Costly)), Some(1));
    env.hp.admit_key(&other, KeyCall::Costly).expect("each key has its own budget");
    env.advance(Duration::milliseconds(500));
    env.hp.admit_key(&key, KeyCall::Costly).expect("one request refilled after 1/rate seconds");
    assert!(retry_after(&env.hp.admit_key(&key, KeyCall::Costly)).is_some());
    env.advance(Duration::hours(1));
    for _ in 0..3 {
        env.hp.admit_key(&key, KeyCall::Costly).expect("refilled to the burst, no more");
    }
    assert!(retry_after(&env.hp.admit_key(&key, KeyCall::Costly)).is_some());
    for _ in 0..10_000 {
        env.hp.admit_key(&key, KeyCall::Other).expect("other calls have no budget by default");
    }

    let mut off = settings();
    off.default_scope.throttle.key_rate = 0;
    let hp = env.sibling(off);
    for _ in 0..10_000 {
        hp.admit_key(&key, KeyCall::Costly).expect("no budget");
    }
}

#[tokio::test]
async fn the_budget_of_other_calls_is_separate_and_its_burst_defaults_to_twice_the_rate() {
    let mut s = settings();
    s.default_scope.throttle.key_rate = 1;
    s.default_scope.throttle.key_burst = 1;
    s.default_scope.throttle.key_other_rate = 5;
    let env = Env::with(s);
    let (key, _) = env.hp.create_api_key(env.scope.clone(), None).await.expect("key");
    env.hp.admit_key(&key, KeyCall::Costly).expect("one costly call");
    assert!(retry_after(&env.hp.admit_key(&key, KeyCall::Costly)).is_some());
    for _ in 0..10 {
        env.hp.admit_key(&key, KeyCall::Other).expect("an empty costly budget leaves the other one");
    }
    assert_eq!(retry_after(&env.hp.admit_key(&key, KeyCall::Other)), Some(1), "burst 0: twice the rate");
}

#[tokio::test]
async fn a_password_reset_or_a_new_password_ends_the_accounts_throttle() {
    let mut s = settings();
    s.default_scope.min_password_score = 0;
    let env = Env::with(s);
    let alice = env.register(Some("alice"), None, Some(PASSWORD)).await;
    for _ in 0..10 {
        env.login("alice", "wrong password").await.unwrap_err();
    }
    assert!(retry_after(&env.login("alice", PASSWORD).await).is_some());
    let issued = env.hp.create_reset_code(&env.scope, &UserRef::login("alice").unwrap()).await.unwrap();
    let new = Password::new("a brand new password").unwrap();
    env.hp.redeem_reset_code(&env.scope, &issued.code, new).await.expect("reset");
    env.login("alice", "a brand new password").await.expect("the reset ended the throttle");

    for _ in 0..10 {
        env.login("alice", "wrong password").await.unwrap_err();
    }
    assert!(retry_after(&env.login("alice", "a brand new password").await).is_some());
    env.hp.set_password(&env.scope, &Env::id_ref(&alice), Password::new(PASSWORD).unwrap()).await.unwrap();
    env.login("alice", PASSWORD).await.expect("a new password ended the throttle");
}

/// Provider sign-ins through the service: tokens sealed in the store and opened for the
/// API, a refresh token kept when the provider sends no new one, new users named from the
/// claims with a suffix when the name is taken, and `new_users = refuse`.
#[tokio::test]
async fn oidc_sign_ins_seal_tokens_and_keep_the_refresh_token() {
    use hallpass_core::service::{NewUsers, OidcPolicy, ProviderIdentity};
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(FakeClock::fixed());
    let hp = Hallpass::with_clock(store.clone(), settings(), clock)
        .expect("service")
        .with_server_secret(ServerSecret::from_bytes(&[3; 32]));
    let scope = Scope::parse("app").expect("scope");
    let corp = ProviderName::parse("corp").expect("provider");
    let who = |access: &str, refresh: Option<&str>| ProviderIdentity {
        provider: corp.clone(),
        subject: ClientId::parse("sub-1").expect("subject"),
        email: Some("pat@example.com".into()),
        email_verified: true,
        username: Some("pat".into()),
        access_token: Some(access.into()),
        access_token_expiry: None,
        refresh_token: refresh.map(str::to_owned),
    };
    let taken = NewUser { username: Some(Username::parse("pat").expect("name")), ..Default::default() };
    hp.register(&scope, taken).await.expect("a pat already");
    let policy = OidcPolicy::default();
    let first = hp
        .oidc_login(
            &scope,
            who("at-1", Some("rt-1")),
            policy,
            Default::default(),
            ClientInfo::default(),
            None,
        )
        .await
        .expect("first sign-in");
    assert_eq!(first.login.username.as_deref(), Some("pat-2"), "a taken name gets a suffix");
    assert_eq!(first.login.oauth.as_ref().and_then(|o| o.access_token.as_deref()), Some("at-1"));
    let user = first.login.user_id;

    let again = hp
        .oidc_login(&scope, who("at-2", None), policy, Default::default(), ClientInfo::default(), None)
        .await
        .expect("second sign-in");
    assert_eq!(again.login.user_id, user);
    let raw = store.get_identity(&scope, user, &corp).await.expect("read").expect("link");
    let (access, refresh) = (raw.access_token.expect("access"), raw.refresh_token.expect("refresh kept"));
    assert!(access.starts_with("hp1.") && refresh.starts_with("hp1."), "sealed: {access} {refresh}");
    let shown = hp.get_provider(&scope, &UserRef::Id(user), &corp).await.expect("link");
    assert_eq!(shown.access_token.as_deref(), Some("at-2"));
    assert_eq!(shown.refresh_token.as_deref(), Some("rt-1"));

    let refuse = OidcPolicy { new_users: NewUsers::Refuse, link_by_verified_email: false };
    let mut stranger = who("at", None);
    stranger.subject = ClientId::parse("sub-2").expect("subject");
    let refused =
        hp.oidc_login(&scope, stranger, refuse, Default::default(), ClientInfo::default(), None).await;
    assert!(matches!(refused, Err(Error::IdentityUnknown)), "{refused:?}");
}

/// The emailed code (six digits) of the newest mail in the outbox.
async fn mailed_digits(store: &MemoryStore) -> String {
    let rows = store.outbox_list(None, 100).await.expect("outbox");
    let newest = rows.iter().max_by_key(|m| (m.created_at, m.id)).expect("a mail");
    newest.payload["code"].as_str().expect("a code").to_owned()
}

/// Sign-in codes are stored under an HMAC keyed by the server secret; a code stored
/// without it (or under another key) simply does not match: 401, never an error.
#[tokio::test]
async fn emailed_sign_in_codes_are_keyed_by_the_server_secret() {
    let mail = Settings { mail: true, ..settings() };
    let plain = Env::with(mail.clone());
    let keyed = plain.sibling(mail.clone()).with_server_secret(ServerSecret::from_bytes(&[7; 32]));
    let other_key = plain.sibling(mail).with_server_secret(ServerSecret::from_bytes(&[8; 32]));
    plain.register(None, Some("kim@example.com"), None).await;
    let email = Email::parse("kim@example.com").expect("email");
    let login = |code: &str| LoginRequest {
        credentials: Credentials::EmailCode { email: email.clone(), code: code.to_owned() },
        data: JsonObject::new(),
        client: ClientInfo::default(),
        device: None,
    };

    // A code requested before the key existed does not open a keyed service's door.
    plain.hp.mail_email_code(&plain.scope, &email).await.expect("request");
    let old = mailed_digits(&plain.store).await;
    let r = keyed.login(&plain.scope, login(&old)).await;
    assert!(matches!(r, Err(Error::InvalidCredentials(_))), "{r:?}");

    // A keyed code works with the same key only.
    keyed.mail_email_code(&plain.scope, &email).await.expect("request");
    let new = mailed_digits(&plain.store).await;
    let r = other_key.login(&plain.scope, login(&new)).await;
    assert!(matches!(r, Err(Error::InvalidCredentials(_))), "{r:?}");
    let r = plain.hp.login(&plain.scope, login(&new)).await;
    assert!(matches!(r, Err(Error::InvalidCredentials(_))), "{r:?}");
    keyed.login(&plain.scope, login(&new)).await.expect("the keyed code logs in");
}
