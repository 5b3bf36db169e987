//! The password policy at the service: every way of setting a new password (register, set
//! password, reset redemption) refuses one that is too easy to guess, with the user's own
//! username and email counted as known, and says why; the minimum score is per scope; a
//! login never judges a password.

use hallpass_core::service::{Credentials, LoginRequest, NewUser};
use hallpass_core::*;
use std::sync::Arc;

const STRONG: &str = "correct horse battery staple";

fn settings() -> Settings {
    let mut s =
        Settings { hash_params: HashParams { m_cost: 256, t_cost: 1, p_cost: 1 }, ..Default::default() };
    // "lax" takes anything of the right length; "strict" wants zxcvbn's best score.
    s.scopes.insert("lax".into(), ScopeSettings { min_password_score: 0, ..Default::default() });
    s.scopes.insert("strict".into(), ScopeSettings { min_password_score: 4, ..Default::default() });
    s
}

struct Env {
    hp: Hallpass,
    store: Arc<MemoryStore>,
}

fn scope(name: &str) -> Scope {
    Scope::parse(name).expect("scope")
}

impl Env {
    fn new() -> Self {
        let store = Arc::new(MemoryStore::new());
        let hp =
            Hallpass::with_clock(store.clone(), settings(), Arc::new(FakeClock::fixed())).expect("service");
        Self { hp, store }
    }

    async fn register(
        &self,
        scope: &str,
        username: &str,
        email: Option<&str>,
        password: &str,
    ) -> Result<User> {
        let new = NewUser {
            username: Some(Username::parse(username).expect("username")),
            email: email.map(|e| Email::parse(e).expect("email")),
            password: Some(Password::new(password)?),
            ..Default::default()
        };
        self.hp.register(&self::scope(scope), new).await
    }

    async fn login(&self, scope: &str, login: &str, password: &str) -> Result<()> {
        let credentials =
            Credentials::Password { login: UserRef::login(login)?, password: Password::for_login(password)? };
        let req = LoginRequest {
            credentials,
            data: JsonObject::new(),
            client: ClientInfo::default(),
            device: None,
        };
        self.hp.login(&self::scope(scope), req).await.map(|_| ())
    }
}

/// The reason of a `WeakPassword`, or a panic naming what came instead.
fn weak<T: std::fmt::Debug>(r: Result<T>) -> String {
    match r {
        Err(Error::WeakPassword(why)) => why,
        other => panic!("expected weak_password, got {other:?}"),
    }
}

#[tokio::test]
async fn a_common_password_is_refused_with_advice() {
    let env = Env::new();
    let why = weak(env.register("app", "mira", None, "iloveyou").await);
    assert_eq!(
        why,
        "The password is too easy to guess. This is a top-100 common password. \
         Add another word or two. Uncommon words are better."
    );
    let why = weak(env.register("app", "mira", None, "P@ssw0rd2024").await);
    assert!(why.contains("similar to a commonly used password"), "{why}");
    // Nothing was stored.
    assert!(
        env.store
            .find_user(&scope("app"), &UserRef::login("mira").expect("ref"))
            .await
            .expect("find")
            .is_none()
    );
    // The length rule still answers first, without an estimate.
    assert!(weak(env.register("app", "mira", None, "short").await).contains("at least 8 characters"));
}

#[tokio::test]
async fn the_users_own_username_or_email_does_not_make_a_password() {
    let env = Env::new();
    let email = Some("Mira.Voss@example.com");
    let why = weak(env.register("app", "Zanzibarquokka", email, "zanzibarquokka").await);
    assert_eq!(why, "The password must not be your username or email address.");
    assert!(env.register("app", "Zanzibarquokka", email, "mira.voss@example.com").await.is_err());
    let why = weak(env.register("app", "Zanzibarquokka", email, "ZanzibarQuokka2024").await);
    assert!(why.contains("contains your username or email address"), "{why}");
    let why = weak(env.register("app", "Zanzibarquokka", email, "voss password").await);
    assert!(why.contains("contains your username or email address"), "{why}");
    // The same password for a user with other names is fine: the context made the difference.
    env.register("app", "someone", None, "ZanzibarQuokka2024").await.expect("no context, strong enough");
    env.register("app", "Zanzibarquokka", email, STRONG).await.expect("a strong password is accepted");
}

#[tokio::test]
async fn set_password_and_reset_redemption_apply_the_policy_with_the_users_names() {
    let env = Env::new();
    let app = scope("app");
    let user =
        env.register("app", "Zanzibarquokka", Some("mira@example.com"), STRONG).await.expect("register");
    let r = UserRef::Id(user.id);

    let why = weak(env.hp.set_password(&app, &r, Password::new("zanzibarquokka1").expect("length")).await);
    assert!(why.contains("contains your username"), "{why}");
    weak(env.hp.set_password(&app, &r, Password::new("qwertyuiop").expect("length")).await);
    env.hp
        .set_password(&app, &r, Password::new("velvet kumquat orbit lantern").expect("length"))
        .await
        .expect("strong");
    env.login("app", "zanzibarquokka", "velvet kumquat orbit lantern").await.expect("the new password works");

    let code = env.hp.create_reset_code(&app, &r).await.expect("code").code;
    let why = weak(env.hp.redeem_reset_code(&app, &code, Password::new("mira2024!").expect("length")).await);
    assert!(why.contains("contains your username or email"), "{why}");
    // A refused password leaves the code usable.
    env.hp.redeem_reset_code(&app, &code, Password::new(STRONG).expect("length")).await.expect("redeem");
    env.login("app", "zanzibarquokka", STRONG).await.expect("the reset password works");
    // An unknown code is refused as such, whatever the password.
    let bogus = Code::from_presented("hpc_not-a-code");
    assert!(matches!(
        env.hp.redeem_reset_code(&app, &bogus, Password::new("iloveyou").expect("length")).await,
        Err(Error::InvalidCode)
    ));
}

#[tokio::test]
async fn the_minimum_score_is_per_scope() {
    let env = Env::new();
    // Score 3 by zxcvbn: enough for the default (3), not for "strict" (4).
    let three = "horse battery";
    env.register("app", "ann", None, three).await.expect("default scope takes score 3");
    let why = weak(env.register("strict", "ann", None, three).await);
    assert_eq!(why, "The password is too easy to guess. Add another word or two. Uncommon words are better.");
    env.register("strict", "ann", None, STRONG).await.expect("score 4");
    // "lax" keeps only the length rules.
    env.register("lax", "ann", None, "iloveyou").await.expect("min score 0");
    assert_eq!(env.hp.scope_settings(&scope("app")).min_password_score, 3);
}

#[tokio::test]
async fn a_login_never_judges_the_password() {
    let env = Env::new();
    let app = scope("app");
    // A weak password from before the policy (an import, a laxer past): stored as is.
    let hash = env.hp.hasher().hash(Password::new("iloveyou").expect("length")).await.expect("hash");
    let user = env.register("app", "old", None, STRONG).await.expect("register");
    assert!(env.store.set_password_hash(&app, user.id, &hash, env.hp.now(), &[]).await.expect("set"));
    env.login("app", "old", "iloveyou").await.expect("a login with a weak password still works");
    assert!(matches!(env.login("app", "old", STRONG).await, Err(Error::InvalidCredentials(_))));
}
