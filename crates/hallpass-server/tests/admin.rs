//! The admin web page end to end: the real application on port 0 over each storage
//! backend (`sqlite::NAME`, `postgres::NAME`, `mysql::NAME`, as in `http.rs`), driven
//! over HTTP like a browser without JavaScript: form posts, the session cookie, the CSRF
//! token read from the page. What a browser adds (rendering, keyboard, phone size) is
//! `tests/browser/` (scripts/browser-test.sh).

// clippy.toml allows unwrap in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;
#[path = "webhook/receiver.rs"]
mod receiver;

use common::{Options, TestApp};
use hallpass_core::service::NewUser;
use hallpass_core::{Password, Scope, UserRef, Username};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::json;

const ADMIN: &str = "root";
const ADMIN_PASSWORD: &str = "Quartz-Lantern-Meadow-42";
const USER_PASSWORD: &str = "Velvet-Trombone-Harbor-77";

backend_tests! {
    pages_need_a_signed_in_admin_and_carry_the_security_headers,
    admin_login_is_throttled_like_users,
    admin_sign_in_bursts_get_no_more_checked_than_the_budget,
    an_admin_browser_that_signed_in_before_keeps_its_attempts,
    csrf_and_origin_refusals_change_nothing,
    deactivating_a_user_on_the_page_ends_their_sessions,
    every_action_writes_its_audit_row,
    the_admin_scope_is_out_of_reach,
    users_are_searched_filtered_and_paged,
    creating_a_key_redirects_and_shows_it_once,
    destructive_forms_ask_first,
    the_audit_trail_speaks_words_and_filters,
    a_refused_edit_keeps_what_was_typed,
    errors_keep_the_navigation_and_unknown_scopes_are_404,
    a_keys_last_use_is_shown,
    every_scope_is_searched_and_paged_across_scopes,
    a_users_page_shows_identities_and_provider_sign_ins,
    a_users_second_factors_are_listed_and_removed_after_asking
        with Options { server_secret: true, ..Default::default() },
    an_admin_signs_in_with_an_authenticator_app_of_their_own
        with Options { server_secret: true, ..Default::default() },
    webhooks_are_listed_created_retried_rotated_and_deleted
        with Options { server_secret: true, ..Default::default() },
}

/// An answer: status, headers, body.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
    /// The CSRF token in the page's forms.
    fn csrf(&self) -> String {
        let at = self
            .text
            .find(r#"name="csrf" value=""#)
            .unwrap_or_else(|| panic!("no CSRF field: {}", self.text));
        let rest = &self.text[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

/// A browser without JavaScript: no redirects followed, one cookie kept by hand.
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        let client =
            hallpass_server::client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { app, client, cookie: None }
    }

    async fn send(&mut self, rb: reqwest::RequestBuilder) -> Page {
        let rb = match &self.cookie {
            Some(c) => rb.header("cookie", c),
            None => rb,
        };
        let res = rb.send().await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let text = res.text().await.unwrap();
        for f in ["password_hash", "token_hash", "$argon2"] {
            assert!(!text.contains(f), "page leaks {f}");
        }
        if let Some(set) = headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap().to_owned();
            self.cookie = if pair.ends_with('=') { None } else { Some(pair) };
        }
        Page { status, headers, text }
    }

    async fn get(&mut self, path: &str) -> Page {
        let rb = self.client.get(self.app.url(path));
        self.send(rb).await
    }

    /// A form post from this site (the `Origin` a browser sends).
    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let rb = self.client.post(self.app.url(path)).header("origin", &self.app.base).form(form);
        self.send(rb).await
    }

    async fn login(&mut self, username: &str, password: &str) -> Page {
        self.post("/admin/login", &[("username", username), ("password", password)]).await
    }

    /// Signs in as the admin; returns a CSRF token of the session.
    async fn sign_in(&mut self) -> String {
        let page = self.login(ADMIN, ADMIN_PASSWORD).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
        let page = self.get("/admin").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        page.csrf()
    }
}

async fn make_admin(app: &TestApp) {
    let new = NewUser {
        username: Some(Username::parse(ADMIN).unwrap()),
        password: Some(Password::new(ADMIN_PASSWORD).unwrap()),
        ..NewUser::default()
    };
    app.service.register(&Scope::admin(), new).await.unwrap();
}

/// A user of scope `app` through the API, logged in once; returns (id, token).
async fn user_with_session(app: &TestApp, name: &str) -> (String, String) {
    let user = app.register(name, USER_PASSWORD).await;
    let token = app.login(name, USER_PASSWORD).await;
    (user["id"].as_str().unwrap().to_owned(), token)
}

/// The actions of the audit trail, newest first.
async fn audit_actions(app: &TestApp) -> Vec<String> {
    let page = app.service.list_audit(Some(1000), None).await.unwrap();
    page.items.into_iter().map(|e| e.action).collect()
}

fn assert_security_headers(page: &Page) {
    let csp = page.header("content-security-policy");
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "no script is allowed: {csp}");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert_eq!(page.header("referrer-policy"), "same-origin");
    assert_eq!(page.header("cache-control"), "no-store");
}

async fn pages_need_a_signed_in_admin_and_carry_the_security_headers(app: TestApp) {
    make_admin(&app).await;
    let (alice, _) = user_with_session(&app, "alice").await;
    let user_page = format!("/admin/users/app/{alice}");
    let pages = [
        "/admin",
        "/admin/users",
        "/admin/users?scope=app&q=ali&active=true",
        &user_page,
        "/admin/keys",
        "/admin/audit",
    ];
    let mut b = Browser::new(&app);
    for path in pages {
        let page = b.get(path).await;
        assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/admin/login"), "{path}");
        assert_security_headers(&page);
    }
    let login = b.get("/admin/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.text.contains(r#"<html lang="en">"#) && login.text.contains(r#"<label for="password">"#));
    assert_security_headers(&login);

    let wrong = b.login(ADMIN, "not-the-password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text.contains("Wrong username or password."), "{}", wrong.text);
    let unknown = b.login("nobody", "not-the-password").await;
    assert_eq!((unknown.status, unknown.text.clone()), (wrong.status, wrong.text.replace(ADMIN, "nobody")));
    assert!(b.cookie.is_none());

    let ok = b.login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!((ok.status, ok.location()), (StatusCode::SEE_OTHER, "/admin"));
    let set = ok.header("set-cookie");
    assert!(set.starts_with("hallpass_admin=hps_"), "{set}");
    assert!(set.ends_with("; Path=/; HttpOnly; SameSite=Strict"), "plain http: no Secure, no __Host-: {set}");
    for path in pages {
        let page = b.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
        assert_security_headers(&page);
        assert!(page.text.contains("<main id=\"main\">") && page.text.contains("<nav aria-label=\"Main\">"));
        assert!(!page.text.contains("hps_"), "the session token is never in a page");
    }
    let dashboard = b.get("/admin").await;
    assert!(dashboard.text.contains("<svg class=\"chart\"") && dashboard.text.contains("role=\"img\""));
    let search = b.get("/admin/users?scope=app&q=ALI").await;
    assert!(search.text.contains(&user_page), "search finds alice: {}", search.text);
    let css = b.get("/admin/static/admin.css").await;
    assert_eq!((css.status, css.header("content-type")), (StatusCode::OK, "text/css; charset=utf-8"));

    // The admin logins are ordinary login events of the `_admin` scope.
    let admin = Scope::admin();
    let history =
        app.service.login_history(&admin, &UserRef::parse(ADMIN).unwrap(), None, None).await.unwrap();
    let outcomes: Vec<&str> = history.items.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["success", "wrong_password"]);

    let csrf = dashboard.csrf();
    let cookie = b.cookie.clone();
    let out = b.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.location()), (StatusCode::SEE_OTHER, "/admin/login?notice=signed-out"));
    assert!(b.get("/admin/login?notice=signed-out").await.text.contains("You are signed out."));
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    assert!(b.cookie.is_none());
    b.cookie = cookie;
    let again = b.get("/admin").await;
    assert_eq!(
        (again.status, again.location()),
        (StatusCode::SEE_OTHER, "/admin/login"),
        "the session ended"
    );
    assert_eq!(audit_actions(&app).await, ["admin_logout", "admin_login"]);
}

async fn admin_login_is_throttled_like_users(app: TestApp) {
    make_admin(&app).await;
    let mut b = Browser::new(&app);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(b.login(ADMIN, "not-the-password").await.status.as_u16());
    }
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    let refused = b.login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits: {}",
        refused.text
    );
    assert!(refused.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert!(refused.text.contains("Too many failed sign-ins"));
    app.clock.advance(time::Duration::hours(1));
    assert_eq!(
        b.login(ADMIN, ADMIN_PASSWORD).await.status,
        StatusCode::SEE_OTHER,
        "never locked out for good"
    );
}

/// 50 sign-ins at once with a wrong password: the ten free ones are checked, the other
/// forty refused unchecked.
async fn admin_sign_in_bursts_get_no_more_checked_than_the_budget(app: TestApp) {
    make_admin(&app).await;
    let form = [("username", ADMIN), ("password", "not-the-password")];
    let sends = (0..50).map(|_| {
        let rb = app.client.post(app.url("/admin/login")).header("origin", &app.base).form(&form);
        async move { rb.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_util::future::join_all(sends).await;
    let count = |s: u16| statuses.iter().filter(|x| **x == s).count();
    assert_eq!((count(401), count(429)), (10, 40), "{statuses:?}");
}

/// The sign-in answers with a year-long device cookie; a browser that sends it back is
/// not held by an attacker's failures, which throttle every other browser.
async fn an_admin_browser_that_signed_in_before_keeps_its_attempts(app: TestApp) {
    make_admin(&app).await;
    let client =
        hallpass_server::client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let sign_in = |password: &'static str, cookie: Option<String>| {
        let mut rb = client
            .post(app.url("/admin/login"))
            .header("origin", &app.base)
            .form(&[("username", ADMIN), ("password", password)]);
        if let Some(c) = cookie {
            rb = rb.header("cookie", c);
        }
        async move { rb.send().await.unwrap() }
    };
    let first = sign_in(ADMIN_PASSWORD, None).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let device = first
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("hallpass_admin_device="))
        .expect("a device cookie")
        .to_owned();
    assert!(
        device.contains("HttpOnly")
            && device.contains("SameSite=Strict")
            && device.contains("Max-Age=31536000")
    );
    let device = device.split(';').next().unwrap().to_owned();
    // The attacker spends the budget of unknown browsers.
    let mut refused = false;
    for _ in 0..20 {
        if sign_in("not-the-password", None).await.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = true;
            break;
        }
    }
    assert!(refused, "the attacker is throttled");
    assert_eq!(
        sign_in(ADMIN_PASSWORD, None).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "an unknown browser waits"
    );
    assert_eq!(
        sign_in(ADMIN_PASSWORD, Some(device)).await.status(),
        StatusCode::SEE_OTHER,
        "the admin's does not"
    );
}

async fn csrf_and_origin_refusals_change_nothing(app: TestApp) {
    make_admin(&app).await;
    let (alice, token) = user_with_session(&app, "alice").await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in().await;
    let path = format!("/admin/users/app/{alice}/active");
    let before = audit_actions(&app).await;

    let missing = b.post(&path, &[("active", "false")]).await;
    let wrong = b.post(&path, &[("active", "false"), ("csrf", "0000")]).await;
    let other_session = b.post(&path, &[("active", "false"), ("csrf", &"ab".repeat(32))]).await;
    let rb = b
        .client
        .post(app.url(&path))
        .header("origin", "http://evil.example")
        .form(&[("active", "false"), ("csrf", csrf.as_str())]);
    let cross_site = b.send(rb).await;
    for page in [&missing, &wrong, &other_session, &cross_site] {
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.text);
        assert_security_headers(page);
    }
    assert!(cross_site.text.contains("another site"));
    // Logout is a form too.
    assert_eq!(b.post("/admin/logout", &[("csrf", "nope")]).await.status, StatusCode::FORBIDDEN);
    // A cross-site login post is refused before any password is checked.
    let rb = b
        .client
        .post(app.url("/admin/login"))
        .header("origin", "http://evil.example")
        .form(&[("username", ADMIN), ("password", ADMIN_PASSWORD)]);
    let mut stranger = Browser::new(&app);
    assert_eq!(stranger.send(rb).await.status, StatusCode::FORBIDDEN);
    assert!(stranger.cookie.is_none());

    let user = app.get(&format!("/v1/users/{alice}")).await.ok(200);
    assert_eq!(user["active"], true, "nothing changed");
    app.with_token(reqwest::Method::GET, "/v1/session", &token, None).await.ok(200);
    assert_eq!(audit_actions(&app).await, before, "no audit row for a refused form");
    assert_eq!(b.get("/admin").await.status, StatusCode::OK, "still signed in");
}

async fn deactivating_a_user_on_the_page_ends_their_sessions(app: TestApp) {
    make_admin(&app).await;
    let (alice, token) = user_with_session(&app, "alice").await;
    let _second = app.login("alice", USER_PASSWORD).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in().await;
    let page = b.get(&format!("/admin/users/app/{alice}")).await;
    assert_eq!(page.text.matches("name=\"session_id\"").count(), 2);
    let done = b
        .post(
            &format!("/admin/users/app/{alice}/active"),
            &[("csrf", &csrf), ("active", "false"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(
        (done.status, done.location()),
        (StatusCode::SEE_OTHER, format!("/admin/users/app/{alice}?notice=deactivated").as_str())
    );
    app.with_token(reqwest::Method::GET, "/v1/session", &token, None).await.problem(401, "session_invalid");
    let page = b.get(&format!("/admin/users/app/{alice}?notice=deactivated")).await;
    assert!(
        page.text.contains("No active session.") && page.text.contains("every session of the user has ended")
    );
    assert_eq!(page.text.matches("name=\"session_id\"").count(), 0);
    let audit = app.service.list_audit(None, None).await.unwrap().items;
    assert_eq!(
        (audit[0].action.as_str(), audit[0].target.as_deref()),
        ("user_deactivate", Some(alice.as_str()))
    );
    assert_eq!(audit[0].scope.as_ref().map(Scope::as_str), Some("app"));
    assert_eq!(audit[0].admin, ADMIN);
}

async fn every_action_writes_its_audit_row(app: TestApp) {
    make_admin(&app).await;
    let (alice, token) = user_with_session(&app, "alice").await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in().await;
    let base = format!("/admin/users/app/{alice}");

    // Edit: bad extra is a 400 on the page, nothing changed; then a good edit.
    let bad =
        b.post(&base, &[("csrf", &csrf), ("group", "staff"), ("extra", "[1, 2]"), ("active", "on")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.text.contains("must be a JSON object") && bad.text.contains("[1, 2]"),
        "the typed value is kept"
    );
    let bad =
        b.post(&base, &[("csrf", &csrf), ("group", "staff"), ("extra", "{oops"), ("active", "on")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get(&format!("/v1/users/{alice}")).await.ok(200)["group"], "default");
    let ok = b
        .post(
            &base,
            &[("csrf", &csrf), ("group", "staff"), ("extra", r#"{"plan": "pro"}"#), ("active", "on")],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let user = app.get(&format!("/v1/users/{alice}")).await.ok(200);
    assert_eq!(
        (user["group"].clone(), user["extra"].clone(), user["active"].clone()),
        (json!("staff"), json!({"plan": "pro"}), json!(true))
    );
    app.with_token(reqwest::Method::GET, "/v1/session", &token, None).await.ok(200);

    // Password: a weak one is a 400 on the page; a good one ends the sessions.
    let weak = b.post(&format!("{base}/password"), &[("csrf", &csrf), ("password", "password1")]).await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(weak.text.contains("too weak"), "{}", weak.text);
    let set = b
        .post(&format!("{base}/password"), &[("csrf", &csrf), ("password", "Saffron-Glacier-Tulip-31")])
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.text);
    app.with_token(reqwest::Method::GET, "/v1/session", &token, None).await.problem(401, "session_invalid");

    // Sessions: end one, then all.
    let one = app.login("alice", "Saffron-Glacier-Tulip-31").await;
    let (session, _) = app
        .service
        .get_session(&Scope::parse("app").unwrap(), &hallpass_core::SessionToken::from_presented(&one))
        .await
        .unwrap();
    let _two = app.login("alice", "Saffron-Glacier-Tulip-31").await;
    let sid = session.id.to_string();
    let end = b.post(&format!("{base}/sessions/end"), &[("csrf", &csrf), ("session_id", &sid)]).await;
    assert_eq!(end.status, StatusCode::SEE_OTHER, "{}", end.text);
    app.with_token(reqwest::Method::GET, "/v1/session", &one, None).await.problem(401, "session_invalid");
    let gone = b.post(&format!("{base}/sessions/end"), &[("csrf", &csrf), ("session_id", &sid)]).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let all = b.post(&format!("{base}/sessions/end-all"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(all.status, StatusCode::SEE_OTHER);

    // Keys: a bad scope is a 400; a key is shown once and works until revoked.
    let bad = b.post("/admin/keys", &[("csrf", &csrf), ("scope", "_admin"), ("name", "x")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let made = b.post("/admin/keys", &[("csrf", &csrf), ("scope", "shop"), ("name", "from the page")]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER);
    let made = b.get(made.location()).await;
    let at = made.text.find("value=\"hpk_").unwrap() + "value=\"".len();
    let secret = made.text[at..at + made.text[at..].find('"').unwrap()].to_owned();
    let with_key = |key: String| app.client.get(app.url("/v1/users?limit=1")).bearer_auth(key).send();
    assert_eq!(with_key(secret.clone()).await.unwrap().status(), 200);
    let keys = b.get("/admin/keys").await;
    assert!(!keys.text.contains(&secret), "the key is shown once");
    let id = app
        .service
        .list_api_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name.as_deref() == Some("from the page"))
        .unwrap()
        .id
        .to_string();
    let revoke = b.post("/admin/keys/revoke", &[("csrf", &csrf), ("key_id", &id), ("confirm", "yes")]).await;
    assert_eq!((revoke.status, revoke.location()), (StatusCode::SEE_OTHER, "/admin/keys?notice=revoked"));
    assert_eq!(with_key(secret.clone()).await.unwrap().status(), 401);
    assert_eq!(
        b.post("/admin/keys/revoke", &[("csrf", &csrf), ("key_id", &id), ("confirm", "yes")]).await.status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        audit_actions(&app).await,
        [
            "key_revoke",
            "key_create",
            "sessions_end_all",
            "session_end",
            "user_set_password",
            "user_update",
            "admin_login"
        ]
    );
    let audit = app.service.list_audit(None, None).await.unwrap().items;
    assert_eq!(audit[5].detail["changed"], json!(["group", "extra"]));
    assert_eq!(audit[2].detail["ended"], json!(1));
    assert_eq!(audit[1].detail["name"], json!("from the page"));
    let page = b.get("/admin/audit").await;
    assert!(!page.text.contains(&secret) && page.text.contains("set the password of"));
    assert!(page.text.contains("<table id=\"sign-ins\""), "the admin's sign-ins are listed");
    assert_eq!(b.get("/admin/").await.location(), "/admin");
    let missing = b.get("/admin/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.text.contains("No such page.") && missing.header("content-type").starts_with("text/html")
    );
    assert_security_headers(&missing);
}

async fn the_admin_scope_is_out_of_reach(app: TestApp) {
    make_admin(&app).await;
    // An application's key cannot log an admin in: `_admin` is another scope.
    app.post("/v1/sessions", json!({"username": ADMIN, "password": ADMIN_PASSWORD}))
        .await
        .problem(401, "invalid_credentials");
    let mut b = Browser::new(&app);
    b.sign_in().await;
    let admin_id = app.service.get_user(&Scope::admin(), &UserRef::parse(ADMIN).unwrap()).await.unwrap().id;
    for path in [
        "/admin/users?scope=_admin".to_owned(),
        format!("/admin/users/_admin/{admin_id}"),
        "/admin?scope=_admin".to_owned(),
    ] {
        assert_eq!(b.get(&path).await.status, StatusCode::BAD_REQUEST, "{path}");
    }
    let dashboard = b.get("/admin").await;
    assert!(!dashboard.text.contains("_admin"), "the admin scope is not among the scopes");
    // The admin pages are not part of the API document.
    let doc = app.client.get(app.url("/openapi.json")).send().await.unwrap().text().await.unwrap();
    assert!(!doc.contains("/admin"));
}

async fn users_are_searched_filtered_and_paged(app: TestApp) {
    make_admin(&app).await;
    let scope = Scope::parse("app").unwrap();
    for i in 0..27 {
        let new = NewUser {
            username: Some(Username::parse(&format!("user-{i:02}")).unwrap()),
            email: Some(hallpass_core::Email::parse(&format!("u{i}@corp.example")).unwrap()),
            group: (i % 3 == 0).then(|| hallpass_core::Group::parse("staff").unwrap()),
            active: Some(i % 9 != 0),
            ..NewUser::default()
        };
        app.service.register(&scope, new).await.unwrap();
    }
    let mut b = Browser::new(&app);
    b.sign_in().await;
    let rows = |p: &Page| p.text.matches("<th scope=\"row\"><a href=\"/admin/users/app/").count();
    let first = b.get("/admin/users?scope=app").await;
    assert_eq!(rows(&first), 25);
    let at =
        first.text.find("href=\"/admin/users?scope=app&#38;").expect("a next-page link") + "href=\"".len();
    let next = first.text[at..at + first.text[at..].find('"').unwrap()].replace("&#38;", "&");
    let second = b.get(&next).await;
    assert_eq!((second.status, rows(&second)), (StatusCode::OK, 2), "{next}");
    assert!(!second.text.contains("Next page"));
    assert_eq!(rows(&b.get("/admin/users?scope=app&group=staff").await), 9);
    assert_eq!(rows(&b.get("/admin/users?scope=app&active=false").await), 3);
    assert_eq!(rows(&b.get("/admin/users?scope=app&group=staff&active=true").await), 6);
    let by_name = b.get("/admin/users?scope=app&q=USER-1").await;
    assert_eq!(rows(&by_name), 10);
    assert!(by_name.text.contains("Matching users in app"));
    assert_eq!(rows(&b.get("/admin/users?scope=app&q=u26%40corp").await), 1);
    assert_eq!(rows(&b.get("/admin/users?scope=app&q=nobody").await), 0);
    assert_eq!(b.get("/admin/users?scope=app&cursor=not-a-cursor").await.status, StatusCode::BAD_REQUEST);
}

/// Behind HTTPS (`HALLPASS_PUBLIC_URL=https://...`): the cookie is `__Host-` prefixed and
/// `Secure`, and forms must come from the public origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_https_the_cookie_is_secure_and_host_prefixed() {
    let mut config = hallpass_server::config::Config {
        public_url: Some("https://auth.example.com/base".into()),
        ..Default::default()
    };
    let options = hallpass_server::admin::AdminOptions::from_config(&config);
    assert!(options.secure_cookies);
    assert_eq!(options.public_origin.as_deref(), Some("https://auth.example.com"));
    config.admin_secure_cookies = Some(false);
    assert!(!hallpass_server::admin::AdminOptions::from_config(&config).secure_cookies, "the setting wins");

    let app = TestApp::start_with(Options { admin: options, ..Default::default() }).await;
    make_admin(&app).await;
    let mut b = Browser::new(&app);
    // The test talks plain HTTP to 127.0.0.1, so its own origin is refused...
    assert_eq!(b.login(ADMIN, ADMIN_PASSWORD).await.status, StatusCode::FORBIDDEN);
    // ...and the public origin is accepted (as a TLS proxy in front would forward it).
    let rb = b
        .client
        .post(app.url("/admin/login"))
        .header("origin", "https://auth.example.com")
        .form(&[("username", ADMIN), ("password", ADMIN_PASSWORD)]);
    let ok = b.send(rb).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let set = ok.header("set-cookie").to_owned();
    assert!(set.starts_with("__Host-hallpass_admin=hps_"), "{set}");
    assert!(set.ends_with("; Path=/; HttpOnly; SameSite=Strict; Secure"), "{set}");
    assert_eq!(b.get("/admin").await.status, StatusCode::OK, "the __Host- cookie signs in");
    let plain = b.cookie.clone().unwrap().replacen("__Host-hallpass_admin", "hallpass_admin", 1);
    b.cookie = Some(plain);
    assert_eq!(b.get("/admin").await.status, StatusCode::SEE_OTHER, "the unprefixed name is not read");
}

/// An overloaded hashing pool (one thread, one waiting hash) answers an admin sign-in
/// with the API's status for it: a 503 page with `Retry-After`, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_hashing_pool_is_a_503_page() {
    let mut settings = common::settings();
    settings.hash_params = hallpass_core::HashParams { m_cost: 19 * 1024, t_cost: 2, p_cost: 1 };
    settings.hash_threads = 1;
    settings.hash_queue_limit = 1;
    let app = TestApp::start_with(Options { settings, ..Default::default() }).await;
    make_admin(&app).await;
    let form = [("username", ADMIN), ("password", "not-the-password")];
    // Eight at once: within the throttle's ten free attempts, so only the pool refuses.
    let sends = (0..8).map(|_| {
        let rb = app.client.post(app.url("/admin/login")).header("origin", &app.base).form(&form);
        async move {
            let res = rb.send().await.unwrap();
            let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            (res.status().as_u16(), retry, res.text().await.unwrap())
        }
    });
    let answers = futures_util::future::join_all(sends).await;
    assert!(
        answers.iter().all(|(s, _, _)| matches!(s, 401 | 503)),
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    let busy: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "one thread and one waiting place cannot take eight at once");
    for (_, retry, text) in &busy {
        assert_eq!(retry.as_deref(), Some("1"));
        assert!(text.contains("busy"), "{text}");
    }
    // Refused unchecked, they were no failures: the budget still has its places.
    let checked = answers.len() - busy.len();
    let more = (0..10 - checked).map(|_| {
        let rb = app.client.post(app.url("/admin/login")).header("origin", &app.base).form(&form);
        async move { rb.send().await.unwrap().status().as_u16() }
    });
    for status in futures_util::future::join_all(more).await {
        assert!(matches!(status, 401 | 503), "{status}");
    }
}

/// The new key's secret is shown on the page the POST redirects to, once: reloading it
/// shows nothing again and makes no second key; another session never sees it.
async fn creating_a_key_redirects_and_shows_it_once(app: TestApp) {
    make_admin(&app).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in().await;
    let keys_before = app.service.list_api_keys().await.unwrap().len();
    let made = b.post("/admin/keys", &[("csrf", &csrf), ("scope", "shop"), ("name", "once")]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.text);
    let to = made.location().to_owned();
    assert!(to.starts_with("/admin/keys?shown="), "{to}");
    assert!(!to.contains("hpk_"), "the secret is never in the URL");
    // Another admin session with the same link sees nothing (and does not use it up).
    let mut other = Browser::new(&app);
    other.sign_in().await;
    let peek = other.get(&to).await;
    assert!(!peek.text.contains("value=\"hpk_") && peek.text.contains("shown once"), "{}", peek.text);
    let shown = b.get(&to).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.text.contains("value=\"hpk_"), "{}", shown.text);
    let again = b.get(&to).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(!again.text.contains("value=\"hpk_") && again.text.contains("not shown again"));
    assert_eq!(app.service.list_api_keys().await.unwrap().len(), keys_before + 1, "reloading made no key");
    // A refused form is re-rendered with its 400, as before.
    let bad = b.post("/admin/keys", &[("csrf", &csrf), ("scope", "Bad Scope"), ("name", "x")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("value=\"Bad Scope\""), "the typed scope is kept");
}

/// Revoking a key, deactivating a user (button or edit form) and ending every session
/// first answer a page that says what will happen; only its form, with `confirm=yes`, acts.
async fn destructive_forms_ask_first(app: TestApp) {
    make_admin(&app).await;
    let (alice, token) = user_with_session(&app, "alice").await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in().await;
    let base = format!("/admin/users/app/{alice}");
    let before = audit_actions(&app).await;

    let ask = b.post(&format!("{base}/active"), &[("csrf", &csrf), ("active", "false")]).await;
    assert_eq!(ask.status, StatusCode::OK, "{}", ask.text);
    assert!(
        ask.text.contains("Deactivate alice?") && ask.text.contains("one active session ends"),
        "{}",
        ask.text
    );
    assert!(
        ask.text.contains(r#"name="confirm" value="yes""#)
            && ask.text.contains(r#"name="active" value="false""#)
    );
    assert!(ask.text.contains(&format!(r#"href="{base}">Cancel</a>"#)));
    let edit = b.post(&base, &[("csrf", &csrf), ("group", "default"), ("extra", "{}")]).await;
    assert_eq!(edit.status, StatusCode::OK, "unticking Active asks too: {}", edit.text);
    assert!(edit.text.contains("Deactivate alice?") && edit.text.contains(r#"name="extra" value="{}""#));
    let all = b.post(&format!("{base}/sessions/end-all"), &[("csrf", &csrf)]).await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.text.contains("End every session of alice?"), "{}", all.text);
    app.with_token(reqwest::Method::GET, "/v1/session", &token, None).await.ok(200);
    assert_eq!(app.get(&format!("/v1/users/{alice}")).await.ok(200)["active"], true);

    // The API's own key is the only one of scope `app`: the page says what that means.
    let key =
        app.service.list_api_keys().await.unwrap().into_iter().find(|k| k.scope.as_str() == "app").unwrap();
    let id = key.id.to_string();
    let ask = b.post("/admin/keys/revoke", &[("csrf", &csrf), ("key_id", &id)]).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.text.contains(&id) && ask.text.contains("only active key of scope app"), "{}", ask.text);
    app.get(&format!("/v1/users/{alice}")).await.ok(200);
    assert_eq!(audit_actions(&app).await, before, "asking changes nothing");

    let done = b.post(&format!("{base}/sessions/end-all"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(
        (done.status, done.location()),
        (StatusCode::SEE_OTHER, format!("{base}?notice=sessions").as_str())
    );
    app.with_token(reqwest::Method::GET, "/v1/session", &token, None).await.problem(401, "session_invalid");
    let done =
        b.post(&base, &[("csrf", &csrf), ("group", "default"), ("extra", "{}"), ("confirm", "yes")]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get(&format!("/v1/users/{alice}")).await.ok(200)["active"], false);
    let done = b.post("/admin/keys/revoke", &[("csrf", &csrf), ("key_id", &id), ("confirm", "yes")]).await;
    assert_eq!((done.status, done.location()), (StatusCode::SEE_OTHER, "/admin/keys?notice=revoked"));
    assert_eq!(audit_actions(&app).await[..3], ["key_revoke", "user_update", "sessions_end_all"]);
}

async fn the_audit_trail_speaks_words_and_filters(app: TestApp) {
    make_admin(&app).await;
    let (alice, _) = user_with_session(&app, "alice").await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in().await;
    let base = format!("/admin/users/app/{alice}");
    b.post(&format!("{base}/active"), &[("csrf", &csrf), ("active", "false"), ("confirm", "yes")]).await;
    b.post(&format!("{base}/active"), &[("csrf", &csrf), ("active", "true")]).await;
    b.post("/admin/keys", &[("csrf", &csrf), ("scope", "shop"), ("name", "till")]).await;
    let page = b.get("/admin/audit").await;
    assert!(
        page.text.contains(&format!(r#"root deactivated <a href="{base}">alice</a> (app)"#)),
        "{}",
        page.text
    );
    assert!(page.text.contains(&format!(r#"root activated <a href="{base}">alice</a> (app)"#)));
    assert!(page.text.contains("root created API key <a href=\"/admin/keys#key-"));
    assert!(page.text.contains("“till” of scope shop"));
    assert!(!page.text.contains("root signed in"), "sign-ins are left out by default");
    assert!(!page.text.contains("user_deactivate") || page.text.contains("value=\"user_deactivate\""));
    let with = b.get("/admin/audit?signins=on").await;
    assert!(with.text.contains("root signed in"));
    let only = b.get("/admin/audit?action=user_deactivate").await;
    assert_eq!(only.text.matches("<td class=\"what\"").count(), 1, "{}", only.text);
    let scoped = b.get("/admin/audit?scope=shop").await;
    assert_eq!(scoped.text.matches("<td class=\"what\"").count(), 1);
    let nobody = b.get("/admin/audit?admin=someone-else").await;
    assert!(nobody.text.contains("No entry matches these filters"));
    let past = b.get("/admin/audit?to=2000-01-01").await;
    assert!(past.text.contains("No entry matches these filters"));
    let today = app.service.now().date().to_string();
    let now = b.get(&format!("/admin/audit?from={today}&to={today}")).await;
    assert_eq!(now.text.matches("<td class=\"what\"").count(), 3);
    assert_eq!(b.get("/admin/audit?from=yesterday").await.status, StatusCode::BAD_REQUEST);
}

/// A refused edit keeps every field as typed and says what is wrong in plain words.
async fn a_refused_edit_keeps_what_was_typed(app: TestApp) {
    make_admin(&app).await;
    let (alice, _) = user_with_session(&app, "alice").await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in().await;
    let base = format!("/admin/users/app/{alice}");
    let bad = b
        .post(&base, &[("csrf", &csrf), ("group", "editors"), ("extra", "{plan: pro}"), ("active", "on")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains(r#"value="editors""#), "the typed group is kept: {}", bad.text);
    assert!(bad.text.contains("{plan: pro}</textarea>"));
    assert!(
        bad.text.contains("not valid JSON near line 1, column 2") && bad.text.contains("double quotes"),
        "{}",
        bad.text
    );
    assert!(!bad.text.contains("key must be a string"), "no parser jargon");
    assert!(bad.text.contains(r#"aria-invalid="true""#));
    assert_eq!(app.get(&format!("/v1/users/{alice}")).await.ok(200)["group"], "default");
}

async fn errors_keep_the_navigation_and_unknown_scopes_are_404(app: TestApp) {
    make_admin(&app).await;
    user_with_session(&app, "alice").await;
    let mut b = Browser::new(&app);
    let anonymous = b.get("/admin/no/such/page").await;
    assert_eq!(anonymous.status, StatusCode::NOT_FOUND);
    assert!(!anonymous.text.contains("<nav"), "no navigation for a stranger");
    b.sign_in().await;
    let missing = b.get("/admin/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text.contains("<nav aria-label=\"Main\">") && missing.text.contains("Log out"));
    assert_security_headers(&missing);
    let unknown = b.get("/admin/users?scope=nosuch").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.text.contains("no scope named “nosuch”") && unknown.text.contains("<nav"),
        "{}",
        unknown.text
    );
    assert_eq!(b.get("/admin?scope=nosuch").await.status, StatusCode::NOT_FOUND);
    // Every scope at once is the default.
    let all = b.get("/admin/users?q=ali").await;
    assert!(all.text.contains("Matching users in every scope") && all.text.contains(">alice</a>"));
    // After a wrong password the password field has the focus, the name kept.
    let mut stranger = Browser::new(&app);
    let wrong = stranger.login(ADMIN, "not-the-password").await;
    assert!(wrong.text.contains(r#"autocomplete="current-password" required autofocus"#), "{}", wrong.text);
}

/// A key's use is recorded in the background (at most once a minute per key and process)
/// and the keys page shows it.
async fn a_keys_last_use_is_shown(app: TestApp) {
    make_admin(&app).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in().await;
    let made = b.post("/admin/keys", &[("csrf", &csrf), ("scope", "shop"), ("name", "used")]).await;
    let shown = b.get(made.location()).await;
    let at = shown.text.find("value=\"hpk_").unwrap() + "value=\"".len();
    let secret = shown.text[at..at + shown.text[at..].find('"').unwrap()].to_owned();
    let row = |page: &Page| {
        let at = page.text.find("data-label=\"Label\">used</td>").expect("the key's row");
        page.text[at..at + page.text[at..].find("</tr>").unwrap()].to_owned()
    };
    let before = b.get("/admin/keys").await;
    assert!(row(&before).contains("data-label=\"Last used (UTC)\">never<"), "{}", row(&before));
    let res = app.client.get(app.url("/v1/users?limit=1")).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mut recorded = None;
    for _ in 0..100 {
        let key = app
            .service
            .list_api_keys()
            .await
            .unwrap()
            .into_iter()
            .find(|k| k.name.as_deref() == Some("used"));
        recorded = key.and_then(|k| k.last_used_at);
        if recorded.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(recorded.is_some(), "the use was recorded in the background");
    let after = b.get("/admin/keys").await;
    assert!(!row(&after).contains(">never<"), "{}", row(&after));
}

/// With no scope chosen the list pages through every scope in turn: 20 + 20 users are a
/// page of 25 and one of 15, each user once.
async fn every_scope_is_searched_and_paged_across_scopes(app: TestApp) {
    make_admin(&app).await;
    for name in ["one", "two"] {
        let scope = Scope::parse(name).unwrap();
        for i in 0..20 {
            let new = NewUser {
                username: Some(Username::parse(&format!("{name}-{i:02}")).unwrap()),
                ..NewUser::default()
            };
            app.service.register(&scope, new).await.unwrap();
        }
    }
    let mut b = Browser::new(&app);
    b.sign_in().await;
    let names = |p: &Page| -> Vec<String> {
        p.text
            .split("<th scope=\"row\"><a href=\"/admin/users/")
            .skip(1)
            .map(|r| r[r.find('>').unwrap() + 1..r.find("</a>").unwrap()].to_owned())
            .collect()
    };
    let first = b.get("/admin/users").await;
    assert!(first.text.contains("Users in every scope"));
    let mut seen = names(&first);
    assert_eq!(seen.len(), 25);
    let at = first.text.find("href=\"/admin/users?scope=&#38;").expect("a next-page link") + "href=\"".len();
    let next = first.text[at..at + first.text[at..].find('"').unwrap()].replace("&#38;", "&");
    let second = b.get(&next).await;
    assert_eq!(second.status, StatusCode::OK, "{next}");
    seen.extend(names(&second));
    assert!(!second.text.contains("Next page"));
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 40, "every user once");
    let only_two = b.get("/admin/users?q=two-1").await;
    assert_eq!(names(&only_two).len(), 10);
    assert_eq!(b.get("/admin/users?cursor=nosuch~x").await.status, StatusCode::BAD_REQUEST);
}

/// A user's page lists the user's provider identities and the provider sign-ins, failed
/// ones with their reason in words.
async fn a_users_page_shows_identities_and_provider_sign_ins(app: TestApp) {
    use hallpass_core::service::{OidcPolicy, ProviderIdentity};
    use hallpass_core::{ClientId, ClientInfo, Outcome, ProviderName};
    make_admin(&app).await;
    let (id, _) = user_with_session(&app, "olga").await;
    let user_id = uuid::Uuid::parse_str(&id).unwrap();
    let scope = Scope::parse("app").unwrap();
    let corp = ProviderName::parse("corp").unwrap();
    let who = ProviderIdentity {
        provider: corp.clone(),
        subject: ClientId::parse("olga-at-corp").unwrap(),
        email: None,
        email_verified: false,
        username: None,
        access_token: Some("at".into()),
        access_token_expiry: None,
        refresh_token: Some("rt".into()),
    };
    app.service.oidc_link(&scope, user_id, who.clone()).await.unwrap();
    let policy = OidcPolicy::default();
    app.service
        .oidc_login(&scope, who, policy, Default::default(), ClientInfo::default(), None)
        .await
        .unwrap();
    app.service
        .record_oidc_failure(&scope, &corp, Some(user_id), Outcome::IdTokenInvalid, &ClientInfo::default())
        .await
        .unwrap();

    let mut b = Browser::new(&app);
    b.sign_in().await;
    let page = b.get(&format!("/admin/users/app/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(r#"data-label="Provider">corp<"#), "{}", page.text);
    assert!(page.text.contains(r#"data-label="Client id">olga-at-corp<"#), "{}", page.text);
    assert!(page.text.contains("kept (sealed)"), "the refresh token is mentioned, never shown");
    assert!(!page.text.contains(">rt<") && !page.text.contains(">at<"), "no token on the page");
    assert!(page.text.matches("oidc:corp").count() >= 2, "{}", page.text);
    assert!(
        page.text.contains("provider&#39;s ID token invalid")
            || page.text.contains("provider's ID token invalid")
    );
}

/// A user's page lists the second factors in words (never the secret) and removes them
/// after a confirmation page: audited, and the user's sessions end.
async fn a_users_second_factors_are_listed_and_removed_after_asking(app: TestApp) {
    make_admin(&app).await;
    let (id, token) = user_with_session(&app, "tina").await;
    let scope = Scope::parse("app").unwrap();
    let r = UserRef::Id(uuid::Uuid::parse_str(&id).unwrap());
    let mut b = Browser::new(&app);
    b.sign_in().await;
    let page = b.get(&format!("/admin/users/app/{id}")).await;
    assert!(page.text.contains("No second factor"), "{}", page.text);

    let enrolment = app.service.enrol_totp(&scope, &r).await.unwrap();
    let secret = totp_rs::Secret::try_from_base32(&enrolment.secret).unwrap().as_bytes().to_vec();
    let now = u64::try_from(app.now().unix_timestamp()).unwrap();
    let code = hallpass_core::mfa::totp(&secret, 6, "x", "x").unwrap().generate(now).to_string();
    let codes = app.service.confirm_totp(&scope, &r, &code, None).await.unwrap();
    let page = b.get(&format!("/admin/users/app/{id}")).await;
    assert!(page.text.contains(r#"data-label="Factor">Authenticator app (TOTP)<"#), "{}", page.text);
    assert!(page.text.contains("in use") && page.text.contains("10 unused"), "{}", page.text);
    assert!(!page.text.contains(&enrolment.secret) && !page.text.contains(&codes[0]), "no secret shown");

    // First the question; nothing changes until it is answered.
    let csrf = page.csrf();
    let action = format!("/admin/users/app/{id}/mfa/remove");
    let ask = b.post(&action, &[("csrf", &csrf)]).await;
    assert_eq!(ask.status, StatusCode::OK, "{}", ask.text);
    assert!(ask.text.contains("Remove the second factors of tina?"), "{}", ask.text);
    assert!(app.service.mfa_state(&scope, &r).await.unwrap().enabled());
    let done = b.post(&action, &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert!(done.location().ends_with("?notice=factors"), "{}", done.location());
    let state = app.service.mfa_state(&scope, &r).await.unwrap();
    assert!(state.totp.is_none() && state.recovery_codes == 0, "{state:?}");
    app.with_token(reqwest::Method::GET, "/v1/session", &token, None).await.problem(401, "session_invalid");
    assert_eq!(audit_actions(&app).await.first().map(String::as_str), Some("mfa_remove"));
    let page = b.get(&format!("/admin/users/app/{id}?notice=factors")).await;
    assert!(page.text.contains("second factors are removed") && page.text.contains("No second factor"));
    let trail = b.get("/admin/audit").await;
    assert!(trail.text.contains("removed the second factors of"), "{}", trail.text);
}

/// The value of the hidden field `name` in a page.
fn hidden(page: &Page, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let at = page.text.find(&marker).unwrap_or_else(|| panic!("no field {name}: {}", page.text));
    let rest = &page.text[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// An admin turns on an authenticator app on their own account page (the key shown once,
/// a wrong first code refused, ten recovery codes shown once), and from then on the
/// password alone makes no session: the second-factor step takes a fresh code (never the
/// one already used), or a recovery code once. Removing the factors (after asking) keeps
/// the session that removed them.
async fn an_admin_signs_in_with_an_authenticator_app_of_their_own(app: TestApp) {
    make_admin(&app).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in().await;
    let account = b.get("/admin/account").await;
    assert_eq!(account.status, StatusCode::OK, "{}", account.text);
    assert!(account.text.contains("Set up an authenticator app"), "{}", account.text);
    let mut other = Browser::new(&app);
    other.sign_in().await;

    let setup = b.post("/admin/account/totp", &[("csrf", &csrf)]).await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.text);
    assert!(setup.text.contains("data:image/svg+xml;base64,"), "a QR code: {}", setup.text);
    let at = setup.text.find(r#"id="totp-secret">"#).unwrap() + r#"id="totp-secret">"#.len();
    let key = setup.text[at..at + setup.text[at..].find('<').unwrap()].to_owned();
    let secret = totp_rs::Secret::try_from_base32(&key).unwrap().as_bytes().to_vec();
    let code_at = |offset: i64| {
        let t = u64::try_from(app.now().unix_timestamp() + offset * 30).unwrap();
        hallpass_core::mfa::totp(&secret, 6, "x", "x").unwrap().generate(t).to_string()
    };
    let near: Vec<String> = (-1..=1).map(code_at).collect();
    let wrong =
        ["111111", "222222", "333333", "444444"].into_iter().find(|c| !near.iter().any(|n| n == c)).unwrap();
    let refused = b
        .post(
            "/admin/account/totp/confirm",
            &[("csrf", &csrf), ("code", wrong), ("secret", &key), ("uri", &hidden(&setup, "uri"))],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert!(refused.text.contains("did not match") && refused.text.contains(&key), "{}", refused.text);
    let code = code_at(0);
    let done = b.post("/admin/account/totp/confirm", &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let codes: Vec<String> = done
        .text
        .split("<li><code>")
        .skip(1)
        .map(|rest| rest[..rest.find('<').unwrap()].to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{}", done.text);
    assert_eq!(audit_actions(&app).await.first().map(String::as_str), Some("admin_totp_enrol"));
    let account = b.get("/admin/account").await;
    assert_eq!(account.status, StatusCode::OK, "this session stays");
    assert!(account.text.contains("Recovery codes left: <strong id=\"codes-left\">10<"), "{}", account.text);
    assert!(!account.text.contains(&key) && !account.text.contains(&codes[0]), "shown once");
    assert_eq!(other.get("/admin").await.location(), "/admin/login", "the other session ended");

    // The password alone: the second-factor step, no session.
    let mut c = Browser::new(&app);
    let step = c.login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(step.status, StatusCode::OK, "{}", step.text);
    assert!(step.text.contains("Second factor") && c.cookie.is_none(), "{}", step.text);
    assert!(!step.text.contains("data-passkey"), "no passkey offered without one");
    let challenge = hidden(&step, "challenge");
    assert!(!challenge.is_empty());
    // The code already used to turn the app on is refused: a step counts once.
    let replayed = c
        .post(
            "/admin/login/mfa",
            &[("challenge", &challenge), ("offers", "totp,recovery_code"), ("totp", &code)],
        )
        .await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED, "{}", replayed.text);
    assert!(replayed.text.contains("did not match") && c.cookie.is_none(), "{}", replayed.text);
    assert_eq!(hidden(&replayed, "challenge"), challenge, "the same challenge goes on");
    let used = c
        .post(
            "/admin/login/mfa",
            &[("challenge", &challenge), ("offers", "totp,recovery_code"), ("recovery_code", &codes[0])],
        )
        .await;
    assert_eq!(used.status, StatusCode::SEE_OTHER, "{}", used.text);
    assert_eq!(used.location(), "/admin");
    assert!(c.cookie.is_some());
    assert_eq!(c.get("/admin").await.status, StatusCode::OK);
    // A used challenge is gone: back to the password.
    let again = c.post("/admin/login/mfa", &[("challenge", &challenge), ("recovery_code", &codes[1])]).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.text);
    assert!(again.text.contains("Sign in again"), "{}", again.text);
    // The same recovery code does not work twice.
    let mut d = Browser::new(&app);
    let step = d.login(ADMIN, ADMIN_PASSWORD).await;
    let twice = d
        .post("/admin/login/mfa", &[("challenge", &hidden(&step, "challenge")), ("recovery_code", &codes[0])])
        .await;
    assert_eq!(twice.status, StatusCode::UNAUTHORIZED, "{}", twice.text);
    let trail = c.get("/admin/audit?signins=on").await;
    assert!(trail.text.contains("signed in with a recovery code"), "{}", trail.text);
    assert!(trail.text.contains("turned on their authenticator app"), "{}", trail.text);

    // Removing every factor asks first, then keeps this session and ends the others.
    let csrf = c.get("/admin/account").await.csrf();
    let ask = c.post("/admin/account/factors/remove", &[("csrf", &csrf)]).await;
    assert!(ask.text.contains("Remove your second factors?"), "{}", ask.text);
    let removed = c.post("/admin/account/factors/remove", &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(removed.location(), "/admin/account?notice=own-factors");
    assert_eq!(c.get("/admin").await.status, StatusCode::OK, "this session stays");
    assert_eq!(b.get("/admin").await.location(), "/admin/login", "the other session ended");
    let mut e = Browser::new(&app);
    assert_eq!(
        e.login(ADMIN, ADMIN_PASSWORD).await.status,
        StatusCode::SEE_OTHER,
        "the password alone again"
    );
}

/// The text of the one-time secret field on a page, if it shows one.
fn shown_secret(page: &Page) -> Option<String> {
    let at = page.text.find(r#"value="whsec_"#)? + r#"value=""#.len();
    let rest = &page.text[at..];
    Some(rest[..rest.find('"').unwrap()].to_owned())
}

/// The webhooks page lists each endpoint with its pending and failed deliveries; adding
/// one shows its secret once; an endpoint's page shows its delivery log and sends an
/// undelivered delivery again (a form without the CSRF token changes nothing); rotating
/// and deleting ask first; every action is audited.
async fn webhooks_are_listed_created_retried_rotated_and_deleted(app: TestApp) {
    make_admin(&app).await;
    let rx = receiver::Receiver::start().await;
    rx.behaviour.fail_first.store(1_000_000, std::sync::atomic::Ordering::SeqCst);
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let options = hallpass_server::webhooks::WebhookOptions {
        refuse_private: false,
        per_endpoint: 4,
        keep_sent: time::Duration::days(7),
    };
    hallpass_server::webhooks::spawn_worker(options, app.service.clone(), stop);
    let mut b = Browser::new(&app);
    let csrf = b.sign_in().await;
    let listed = b.get("/admin/webhooks").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert!(listed.text.contains(r#"href="/admin/webhooks" aria-current="page""#), "{}", listed.text);
    assert!(listed.text.contains("No endpoint yet"));

    let url = rx.url("/hook");
    let form = [
        ("csrf", csrf.as_str()),
        ("scope", "app"),
        ("url", url.as_str()),
        ("description", "the CRM"),
        ("events", "user.created"),
        ("events", "login.failed"),
    ];
    let made = b.post("/admin/webhooks", &form).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.text);
    let to = made.location().to_owned();
    assert!(to.starts_with("/admin/webhooks/app/") && to.contains("?shown="), "{to}");
    assert!(!to.contains("whsec_"), "the secret is never in the URL");
    let base = to.split('?').next().unwrap().to_owned();
    let id = base.rsplit('/').next().unwrap().to_owned();
    let shown = b.get(&to).await;
    let secret = shown_secret(&shown).unwrap_or_else(|| panic!("no secret shown: {}", shown.text));
    let again = b.get(&to).await;
    assert!(shown_secret(&again).is_none() && again.text.contains("not shown again"), "{}", again.text);
    let api = app.get(&format!("/v1/webhooks/{id}")).await.ok(200);
    assert_eq!(api["events"], json!(["user.created", "login.failed"]), "{api}");
    let bad = b.post("/admin/webhooks", &[("csrf", &csrf), ("scope", "app"), ("url", "ftp://x")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(bad.text.contains(r#"value="ftp://x""#), "what was typed is kept");

    // A delivery the receiver refuses (500): attempted once, then waiting for its retry
    // (the test's clock does not move, so the worker's backoff never ends by itself).
    app.register("alice", USER_PASSWORD).await;
    rx.wait_for(10, "the first attempt", |g| g.len() == 1).await;
    let mut log = json!(null);
    for _ in 0..100 {
        log = app.get(&format!("/v1/webhooks/{id}/deliveries")).await.ok(200);
        if log["deliveries"][0]["attempts"] == 1 && log["deliveries"][0]["status"] == "queued" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(log["deliveries"][0]["last_status_code"], 500, "{log}");
    let delivery = log["deliveries"][0]["id"].as_str().unwrap().to_owned();

    let listed = b.get("/admin/webhooks").await;
    assert!(listed.text.contains(&format!(r#"href="{base}""#)) && listed.text.contains("the CRM"));
    assert!(listed.text.contains("user.created, login.failed"), "{}", listed.text);
    assert!(listed.text.contains(r#"data-label="Pending">1<"#), "{}", listed.text);
    let page = b.get(&base).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(&format!(r#"id="delivery-{delivery}""#)), "{}", page.text);
    assert!(page.text.contains(r#"data-label="Last status">500<"#), "{}", page.text);
    assert!(page.text.contains(r#"data-label="Attempts">1<"#), "{}", page.text);
    assert!(page.text.contains(" ms<"), "the response time: {}", page.text);
    assert!(page.text.contains(&format!(r#"name="delivery" value="{delivery}""#)), "a Retry button");
    assert!(!page.text.contains(&secret) && !page.text.contains(r#""type""#), "no secret, no body");

    // Retry: refused without the session's CSRF token; with it, sent again at once.
    let before = audit_actions(&app).await;
    let retry = format!("{base}/retry");
    let refused = b.post(&retry, &[("csrf", "0000"), ("delivery", &delivery)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(audit_actions(&app).await, before, "a refused form changes nothing");
    assert_eq!(rx.received().len(), 1, "nothing was sent again");
    let done = b.post(&retry, &[("csrf", &csrf), ("delivery", &delivery)]).await;
    assert_eq!(
        (done.status, done.location()),
        (StatusCode::SEE_OTHER, format!("{base}?notice=webhook-retried").as_str())
    );
    let got = rx.wait_for(10, "the retried attempt", |g| g.len() == 2).await;
    assert_eq!(got[0].id, got[1].id, "the same delivery (webhook-id) again");
    assert_eq!(got[1].id, delivery);

    // Rotation and deletion ask first; rotation shows the new secret once.
    let ask = b.post(&format!("{base}/rotate"), &[("csrf", &csrf)]).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(
        ask.text.contains("Rotate the secret of webhook")
            && ask.text.contains(r#"name="confirm" value="yes""#)
    );
    let rotated = b.post(&format!("{base}/rotate"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER);
    let shown = b.get(rotated.location()).await;
    let new_secret = shown_secret(&shown).unwrap_or_else(|| panic!("no secret shown: {}", shown.text));
    assert_ne!(new_secret, secret);
    assert!(shown.text.contains("Previous secret"), "the old one still signs for a while");
    let ask = b.post(&format!("{base}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.text.contains("Delete webhook") && ask.text.contains(&url), "{}", ask.text);
    app.get(&format!("/v1/webhooks/{id}")).await.ok(200);
    let deleted = b.post(&format!("{base}/delete"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(
        (deleted.status, deleted.location()),
        (StatusCode::SEE_OTHER, "/admin/webhooks?notice=webhook-deleted")
    );
    app.get(&format!("/v1/webhooks/{id}")).await.problem(404, "webhook_not_found");
    assert!(!b.get("/admin/webhooks").await.text.contains(&url));
    assert_eq!(b.get(&base).await.status, StatusCode::NOT_FOUND);

    assert_eq!(
        audit_actions(&app).await[..4],
        ["webhook_delete", "webhook_rotate", "webhook_retry", "webhook_create"]
    );
    let audit = b.get("/admin/audit").await;
    assert!(audit.text.contains("added webhook endpoint") && audit.text.contains("deleted webhook endpoint"));
}
