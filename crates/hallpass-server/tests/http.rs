//! The HTTP API end to end: the real application on port 0, real HTTP, real storage.
//!
//! One test per area of API.md. Every error code the API answers is asserted here with its
//! status: `unauthorized`, `invalid_request`, `weak_password`, `invalid_credentials`,
//! `user_inactive`, `session_invalid`, `user_not_found`, `session_not_found`,
//! `provider_not_linked`, `username_taken`, `email_taken`, `identity_taken`,
//! `invalid_code`, `mail_not_configured`, `payload_too_large`, `unsupported_media_type`,
//! `not_found`, `method_not_allowed`, `storage_unavailable` and `internal`. (`key_not_found`
//! has no HTTP route yet; its mapping is unit-tested in `src/http/error.rs`.) Every
//! response body is also checked for leaked hashes (`common::TestApp::send`).
//!
//! Every test runs once per storage backend: `sqlite::NAME`, `postgres::NAME` and
//! `mysql::NAME` (MariaDB), each on a fresh database of its own (`cargo test postgres::`
//! runs one backend). A test is an `async fn NAME(app: TestApp)` listed in
//! `backend_tests!` below; a PostgreSQL or MariaDB server that cannot be reached skips its
//! tests with a notice (outside CI; with `CI=true` they fail).

// clippy.toml allows unwrap in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::{Options, TestApp};
use reqwest::Method;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// The member names of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> =
        v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect();
    k.sort();
    k
}

/// `names`, sorted.
fn sorted(names: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    k.sort();
    k
}

fn ts(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}")), &Rfc3339).unwrap()
}

backend_tests! {
    every_v1_route_needs_an_api_key,
    nothing_crosses_scopes,
    register_read_and_conflicts,
    invisible_and_path_rewriting_usernames_are_refused,
    email_domains_are_one_however_they_are_spelled,
    fifty_concurrent_registrations_of_one_name_make_one_user,
    list_search_and_page_users,
    update_and_delete_users,
    deactivation_and_password_change_end_sessions,
    malformed_requests_are_problems_not_crashes,
    the_body_limit_is_configurable with Options { body_limit: 1024, ..Default::default() },
    login_shapes_and_the_login_object,
    wrong_password_and_unknown_user_are_indistinguishable,
    an_inactive_user_gets_403_with_the_login_object_and_no_session,
    get_does_not_extend_and_freshen_does,
    idle_and_absolute_expiry,
    session_data_is_merge_patched,
    session_data_and_extra_have_a_size_cap with Options { body_limit: 256 * 1024, ..Default::default() },
    get_session_answers_follow_every_change,
    ending_sessions,
    password_reset_codes,
    reset_codes_die_with_a_password_or_email_change,
    provider_links,
    login_history_pages_newest_first,
    login_statistics_by_hour_and_day,
    probes_request_ids_and_storage_outages,
    the_openapi_document_describes_every_route,
    problem_types_resolve_to_pages_of_this_server,
}

// ------------------------------------------------------------------------------ auth

async fn every_v1_route_needs_an_api_key(app: TestApp) {
    let routes = [
        (Method::POST, "/v1/users"),
        (Method::GET, "/v1/users"),
        (Method::GET, "/v1/users/alice"),
        (Method::PATCH, "/v1/users/alice"),
        (Method::DELETE, "/v1/users/alice"),
        (Method::PUT, "/v1/users/alice/password"),
        (Method::POST, "/v1/sessions"),
        (Method::GET, "/v1/session"),
        (Method::PATCH, "/v1/session"),
        (Method::DELETE, "/v1/session"),
        (Method::POST, "/v1/session/freshen"),
        (Method::DELETE, "/v1/session/others"),
        (Method::GET, "/v1/users/alice/sessions"),
        (Method::DELETE, "/v1/users/alice/sessions"),
        (Method::DELETE, "/v1/users/alice/sessions/0190a0e0-0000-7000-8000-000000000000"),
        (Method::POST, "/v1/password-resets"),
        (Method::POST, "/v1/password-resets/redeem"),
        (Method::GET, "/v1/users/alice/providers"),
        (Method::PUT, "/v1/users/alice/providers/github"),
        (Method::PATCH, "/v1/users/alice/providers/github"),
        (Method::GET, "/v1/users/alice/providers/github"),
        (Method::DELETE, "/v1/users/alice/providers/github"),
        (Method::GET, "/v1/users/alice/logins"),
        (Method::GET, "/v1/stats/logins"),
    ];
    for (method, path) in routes {
        // No key at all, with a body that would otherwise be refused: auth comes first.
        let res = app.send(app.client.request(method.clone(), app.url(path)).json(&json!({"x": 1}))).await;
        res.problem(401, "unauthorized");
        assert_eq!(res.header("www-authenticate"), Some("Bearer"), "{method} {path}");
        // A wrong key.
        let res = app.send(app.client.request(method.clone(), app.url(path)).bearer_auth("hpk_nope")).await;
        res.problem(401, "unauthorized");
        assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    }
    // Another scheme, a garbage header, and a revoked key.
    let res = app.send(app.client.get(app.url("/v1/users")).header("authorization", "Basic YTpi")).await;
    res.problem(401, "unauthorized");
    let res = app.send(app.client.get(app.url("/v1/users")).header("authorization", "Bearer")).await;
    res.problem(401, "unauthorized");
    let (key, secret) =
        app.service.create_api_key(hallpass_core::Scope::parse("app").unwrap(), None).await.unwrap();
    let res = app.send(app.client.get(app.url("/v1/users")).bearer_auth(secret.expose())).await;
    res.ok(200);
    app.service.revoke_api_key(key.id).await.unwrap();
    let res = app.send(app.client.get(app.url("/v1/users")).bearer_auth(secret.expose())).await;
    res.problem(401, "unauthorized");
    // The scheme name is case-insensitive.
    let res = app
        .send(app.client.get(app.url("/v1/users")).header("authorization", format!("bearer {}", app.key)))
        .await;
    res.ok(200);
}

async fn nothing_crosses_scopes(app: TestApp) {
    let other = app.key_for("other").await;
    let alice = app.register("alice", "alice velvet kumquat").await;
    let id = alice["id"].as_str().unwrap().to_owned();
    let token = app.login("alice", "alice velvet kumquat").await;
    let as_other = |m: Method, p: &str| app.client.request(m, app.url(p)).bearer_auth(&other);

    for r in [id.as_str(), "alice", "alice@example.com"] {
        app.send(as_other(Method::GET, &format!("/v1/users/{r}"))).await.problem(404, "user_not_found");
        app.send(as_other(Method::GET, &format!("/v1/users/{r}/sessions")))
            .await
            .problem(404, "user_not_found");
        app.send(as_other(Method::DELETE, &format!("/v1/users/{r}/sessions")))
            .await
            .problem(404, "user_not_found");
        app.send(as_other(Method::DELETE, &format!("/v1/users/{r}"))).await.problem(404, "user_not_found");
        app.send(as_other(Method::GET, &format!("/v1/users/{r}/logins")))
            .await
            .problem(404, "user_not_found");
    }
    let list = app.send(as_other(Method::GET, "/v1/users")).await.ok(200);
    assert_eq!(list["users"], json!([]));
    // Scope a's token is nobody in scope other.
    for (m, p) in [(Method::GET, "/v1/session"), (Method::POST, "/v1/session/freshen")] {
        app.send(as_other(m, p).header("x-session-token", &token)).await.problem(401, "session_invalid");
    }
    app.send(as_other(Method::DELETE, "/v1/session/others").header("x-session-token", &token))
        .await
        .problem(401, "session_invalid");
    // Logging out with the wrong scope's key is a no-op (204: "already ended" there).
    app.send(as_other(Method::DELETE, "/v1/session").header("x-session-token", &token)).await.no_content();
    // Logging in to scope other with scope a's credentials fails.
    app.send(
        as_other(Method::POST, "/v1/sessions")
            .json(&json!({"username": "alice", "password": "alice velvet kumquat"})),
    )
    .await
    .problem(401, "invalid_credentials");
    app.send(as_other(Method::POST, "/v1/password-resets").json(&json!({"login": "alice"})))
        .await
        .problem(404, "user_not_found");
    // The same name is free in the other scope.
    app.send(as_other(Method::POST, "/v1/users").json(&json!({"username": "alice"}))).await.ok(201);
    // ... and scope a is untouched.
    let s = app.with_token(Method::GET, "/v1/session", &token, None).await.ok(200);
    assert_eq!(s["user"]["id"], id.as_str());
    assert_eq!(app.get("/v1/users/alice/sessions").await.ok(200)["sessions"].as_array().unwrap().len(), 1);
}

// ------------------------------------------------------------------------------ users

async fn register_read_and_conflicts(app: TestApp) {
    let res = app
        .post(
            "/v1/users",
            json!({"username": "Alice", "email": "Alice@Example.COM", "password": "correct horse",
                   "group": "staff", "extra": {"plan": "pro"}}),
        )
        .await;
    let u = res.ok(201);
    let id = u["id"].as_str().unwrap().to_owned();
    assert_eq!(res.header("location"), Some(format!("/v1/users/{id}").as_str()));
    assert_eq!(u["username"], "Alice");
    assert_eq!(u["email"], "Alice@Example.COM");
    assert_eq!(u["group"], "staff");
    assert_eq!(u["extra"], json!({"plan": "pro"}));
    assert_eq!(u["active"], true);
    assert_eq!(u["confirmation"], Value::Null);
    assert_eq!(u["confirmed"], false);
    assert_eq!(u["validated"], true);
    assert_eq!(u["last_login_at"], Value::Null);
    assert_eq!(ts(&u["created_at"]), app.now());
    assert_eq!(ts(&u["updated_at"]), app.now());
    assert_eq!(
        keys(&u),
        sorted(&[
            "id",
            "username",
            "email",
            "group",
            "extra",
            "active",
            "confirmation",
            "confirmed",
            "validated",
            "created_at",
            "updated_at",
            "last_login_at"
        ])
    );
    // Read by id, by username in another case, by email with another domain case.
    for r in [id.as_str(), "alice", "ALICE", "Alice@example.com"] {
        assert_eq!(app.get(&format!("/v1/users/{r}")).await.ok(200), u, "{r}");
    }
    app.get("/v1/users/bob").await.problem(404, "user_not_found");
    app.get("/v1/users/0190a0e0-0000-7000-8000-000000000000").await.problem(404, "user_not_found");

    // Taken names, case-insensitively; taken emails by normalised form.
    app.post("/v1/users", json!({"username": "ALICE"})).await.problem(409, "username_taken");
    app.post("/v1/users", json!({"username": "ａｌｉｃｅ"})).await.problem(409, "username_taken");
    app.post("/v1/users", json!({"email": "Alice@example.com"})).await.problem(409, "email_taken");
    // Defaults.
    let b = app.post("/v1/users", json!({"email": "bob@example.com"})).await.ok(201);
    assert_eq!(b["username"], Value::Null);
    assert_eq!(b["group"], "default");
    assert_eq!(b["extra"], json!({}));

    // Invalid input names the field.
    let p = app.post("/v1/users", json!({})).await.problem(400, "invalid_request");
    assert_eq!(p["field"], "username");
    let p = app.post("/v1/users", json!({"username": "has space"})).await.problem(400, "invalid_request");
    assert_eq!(p["field"], "username");
    assert!(p["detail"].as_str().unwrap().starts_with("username:"), "{p}");
    let p = app.post("/v1/users", json!({"email": "nope"})).await.problem(400, "invalid_request");
    assert_eq!(p["field"], "email");
    let p =
        app.post("/v1/users", json!({"username": "x", "group": ""})).await.problem(400, "invalid_request");
    assert_eq!(p["field"], "group");
    // Weak passwords.
    app.post("/v1/users", json!({"username": "carol", "password": "short"}))
        .await
        .problem(400, "weak_password");
    app.post("/v1/users", json!({"username": "carol", "password": "aaaaaaaaaaaa"}))
        .await
        .problem(400, "weak_password");
    app.get("/v1/users/carol").await.problem(404, "user_not_found");
}

/// Issue #12: names that look like another user's ("al\u{200B}ice" beside "alice") or
/// that a URL client rewrites in a path (a user named "." made the backend's
/// `DELETE /v1/users/./sessions` arrive as `DELETE /v1/users/sessions`, deleting the user
/// named "sessions") are refused at registration and rename; nothing is stored.
async fn invisible_and_path_rewriting_usernames_are_refused(app: TestApp) {
    let alice = app.post("/v1/users", json!({"username": "alice"})).await.ok(201);
    app.post("/v1/users", json!({"username": "sessions"})).await.ok(201);
    let refused = [
        "al\u{200B}ice",
        "alice\u{FEFF}",
        "al\u{00AD}ice",
        "\u{202E}ecila",
        "alice\u{2066}",
        "alice\u{FE0F}",
        "alice\u{E0041}",
        "\u{3164}alice",
        ".",
        "..",
        "‥",
        "．",
        "a?b",
        "a#b",
        "a%41",
        "a\\b",
        "a？b",
    ];
    for name in refused {
        let p = app.post("/v1/users", json!({"username": name})).await.problem(400, "invalid_request");
        assert_eq!(p["field"], "username", "{name:?}: {p}");
        let id = alice["id"].as_str().unwrap();
        let p = app
            .patch(&format!("/v1/users/{id}"), json!({"username": name}))
            .await
            .problem(400, "invalid_request");
        assert_eq!(p["field"], "username", "{name:?}: {p}");
    }
    let all = app.get("/v1/users?limit=100").await.ok(200);
    let names: Vec<&str> =
        all["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(sorted(&names), sorted(&["alice", "sessions"]));
    // Dots inside a name are fine.
    app.post("/v1/users", json!({"username": "a.b"})).await.ok(201);
    app.get("/v1/users/a.b").await.ok(200);
}

/// Issue #12: email domains are compared after UTS #46 (IDNA) mapping, so a fullwidth or
/// Punycode spelling of a taken address is taken; what was typed is what is shown.
async fn email_domains_are_one_however_they_are_spelled(app: TestApp) {
    app.post("/v1/users", json!({"email": "carol@example.com"})).await.ok(201);
    app.post("/v1/users", json!({"email": "carol@ｅｘａｍｐｌｅ.com"})).await.problem(409, "email_taken");
    let dora = app.post("/v1/users", json!({"email": "dora@Bücher.example"})).await.ok(201);
    assert_eq!(dora["email"], "dora@Bücher.example");
    app.post("/v1/users", json!({"email": "dora@xn--bcher-kva.example"})).await.problem(409, "email_taken");
    for r in ["dora@bücher.example", "dora@XN--BCHER-KVA.example"] {
        assert_eq!(app.get(&format!("/v1/users/{r}")).await.ok(200), dora, "{r}");
    }
    // A rename to another spelling of the user's own address is no conflict.
    let id = dora["id"].as_str().unwrap();
    let renamed =
        app.patch(&format!("/v1/users/{id}"), json!({"email": "dora@xn--bcher-kva.example"})).await.ok(200);
    assert_eq!(renamed["email"], "dora@xn--bcher-kva.example");
    // A domain IDNA refuses is a client mistake.
    let p =
        app.post("/v1/users", json!({"email": "erin@xn--a.example"})).await.problem(400, "invalid_request");
    assert_eq!(p["field"], "email");
    let p = app
        .patch(&format!("/v1/users/{id}"), json!({"email": "dora@aא.example"}))
        .await
        .problem(400, "invalid_request");
    assert_eq!(p["field"], "email");
}

async fn fifty_concurrent_registrations_of_one_name_make_one_user(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let app = app.clone();
        tasks.spawn(async move {
            let name = if i % 2 == 0 { "Racer" } else { "racer" };
            app.post("/v1/users", json!({"username": name, "password": "long enough pw"})).await
        });
    }
    let (mut created, mut taken) = (0, 0);
    while let Some(res) = tasks.join_next().await {
        let res = res.unwrap();
        match res.status.as_u16() {
            201 => created += 1,
            409 => {
                res.problem(409, "username_taken");
                taken += 1;
            }
            s => panic!("unexpected {s}: {}", res.text),
        }
    }
    assert_eq!((created, taken), (1, 49));
    assert_eq!(app.get("/v1/users?query=racer").await.ok(200)["users"].as_array().unwrap().len(), 1);
}

async fn list_search_and_page_users(app: TestApp) {
    for (name, group) in [("ann", "a"), ("annie", "b"), ("bert", "a"), ("cleo", "a")] {
        app.post("/v1/users", json!({"username": name, "group": group})).await.ok(201);
    }
    app.patch("/v1/users/cleo", json!({"active": false})).await.ok(200);

    let page = app.get("/v1/users?limit=3").await.ok(200);
    let names: Vec<&str> =
        page["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["ann", "annie", "bert"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let page = app
        .send(app.req(Method::GET, "/v1/users").query(&[("limit", "3"), ("cursor", &cursor)]))
        .await
        .ok(200);
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    assert_eq!(page["users"][0]["username"], "cleo");
    assert_eq!(page["next_cursor"], Value::Null);

    let names = |v: Value| -> Vec<String> {
        v["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(app.get("/v1/users?query=ANN").await.ok(200)), ["ann", "annie"]);
    assert_eq!(names(app.get("/v1/users?group=a").await.ok(200)), ["ann", "bert", "cleo"]);
    assert_eq!(names(app.get("/v1/users?group=a&active=true").await.ok(200)), ["ann", "bert"]);
    assert_eq!(names(app.get("/v1/users?active=false").await.ok(200)), ["cleo"]);
    assert_eq!(names(app.get("/v1/users?query=zzz").await.ok(200)), Vec::<String>::new());

    // Bad query strings are 400, never 500.
    for q in ["limit=0", "limit=1001", "limit=abc", "limit=-1", "active=maybe", "cursor=nope", "colour=red"] {
        app.get(&format!("/v1/users?{q}")).await.problem(400, "invalid_request");
    }
}

async fn update_and_delete_users(app: TestApp) {
    let u = app.register("dora", "dora velvet kumquat").await;
    let id = u["id"].as_str().unwrap();
    app.clock.advance(Duration::minutes(5));

    let v = app.patch("/v1/users/dora", json!({"group": "vip", "extra": {"a": 1}})).await.ok(200);
    assert_eq!(v["group"], "vip");
    assert_eq!(v["extra"], json!({"a": 1}));
    assert_eq!(ts(&v["updated_at"]), app.now());
    assert_eq!(v["created_at"], u["created_at"]);
    // Rename, then remove the username (the email stays).
    app.patch(&format!("/v1/users/{id}"), json!({"username": "Dorothy"})).await.ok(200);
    app.get("/v1/users/dora").await.problem(404, "user_not_found");
    let v = app.patch("/v1/users/dorothy", json!({"username": null})).await.ok(200);
    assert_eq!(v["username"], Value::Null);
    // Removing the email too would leave nothing to log in with.
    let p =
        app.patch(&format!("/v1/users/{id}"), json!({"email": null})).await.problem(400, "invalid_request");
    assert_eq!(p["field"], "username");
    // Conflicts on update.
    app.register("eve", "eve velvet kumquat!").await;
    app.patch(&format!("/v1/users/{id}"), json!({"username": "EVE"})).await.problem(409, "username_taken");
    app.patch(&format!("/v1/users/{id}"), json!({"email": "eve@EXAMPLE.com"}))
        .await
        .problem(409, "email_taken");
    // Not-updatable fields are unknown fields.
    app.patch(&format!("/v1/users/{id}"), json!({"confirmed": true})).await.problem(400, "invalid_request");
    app.patch(&format!("/v1/users/{id}"), json!({"group": null})).await.problem(400, "invalid_request");
    app.patch("/v1/users/nobody", json!({"group": "x"})).await.problem(404, "user_not_found");

    // Delete: the user, their sessions and their logins go.
    let token = app.login("eve", "eve velvet kumquat!").await;
    app.delete("/v1/users/eve").await.no_content();
    app.with_token(Method::GET, "/v1/session", &token, None).await.problem(401, "session_invalid");
    app.get("/v1/users/eve").await.problem(404, "user_not_found");
    app.delete("/v1/users/eve").await.problem(404, "user_not_found");
    app.post("/v1/sessions", json!({"username": "eve", "password": "eve velvet kumquat!"}))
        .await
        .problem(401, "invalid_credentials");
    // The name is free again.
    app.register("eve", "eve velvet kumquat!").await;
}

async fn deactivation_and_password_change_end_sessions(app: TestApp) {
    app.register("fred", "fred velvet kumquat").await;
    let t1 = app.login("fred", "fred velvet kumquat").await;
    let t2 = app.login("fred", "fred velvet kumquat").await;

    let v = app.patch("/v1/users/fred", json!({"active": false})).await.ok(200);
    assert_eq!(v["active"], false);
    assert_eq!(v["validated"], false);
    for t in [&t1, &t2] {
        app.with_token(Method::GET, "/v1/session", t, None).await.problem(401, "session_invalid");
    }
    assert_eq!(app.get("/v1/users/fred/sessions").await.ok(200)["sessions"], json!([]));
    app.patch("/v1/users/fred", json!({"active": true})).await.ok(200);
    // Ended sessions stay ended after reactivation.
    app.with_token(Method::GET, "/v1/session", &t1, None).await.problem(401, "session_invalid");

    let t3 = app.login("fred", "fred velvet kumquat").await;
    app.put("/v1/users/fred/password", json!({"password": "short"})).await.problem(400, "weak_password");
    app.with_token(Method::GET, "/v1/session", &t3, None).await.ok(200);
    app.put("/v1/users/fred/password", json!({"password": "a new velvet kumquat"})).await.no_content();
    app.with_token(Method::GET, "/v1/session", &t3, None).await.problem(401, "session_invalid");
    app.post("/v1/sessions", json!({"username": "fred", "password": "fred velvet kumquat"}))
        .await
        .problem(401, "invalid_credentials");
    app.login("fred", "a new velvet kumquat").await;
    app.put("/v1/users/nobody/password", json!({"password": "a new velvet kumquat"}))
        .await
        .problem(404, "user_not_found");
    app.put("/v1/users/fred/password", json!({})).await.problem(400, "invalid_request");
}

// ------------------------------------------------------------------------------ request hygiene

async fn malformed_requests_are_problems_not_crashes(app: TestApp) {
    // Unknown field.
    let p = app
        .post("/v1/users", json!({"username": "gus", "admin": true}))
        .await
        .problem(400, "invalid_request");
    assert!(p["detail"].as_str().unwrap().contains("admin"), "{p}");
    // Malformed JSON.
    let res = app
        .send(
            app.req(Method::POST, "/v1/users")
                .header("content-type", "application/json")
                .body("{\"username\": "),
        )
        .await;
    res.problem(400, "invalid_request");
    // Wrong types.
    app.post("/v1/users", json!({"username": 5})).await.problem(400, "invalid_request");
    app.post("/v1/users", json!({"username": "gus", "extra": [1]})).await.problem(400, "invalid_request");
    app.post("/v1/users", json!(["gus"])).await.problem(400, "invalid_request");
    // Empty body.
    let res = app.send(app.req(Method::POST, "/v1/users").header("content-type", "application/json")).await;
    res.problem(400, "invalid_request");
    // No or wrong content type: 415.
    let res = app.send(app.req(Method::POST, "/v1/users").body("{\"username\": \"gus\"}")).await;
    res.problem(415, "unsupported_media_type");
    let res = app
        .send(
            app.req(Method::POST, "/v1/users")
                .header("content-type", "text/plain")
                .body("{\"username\": \"gus\"}"),
        )
        .await;
    res.problem(415, "unsupported_media_type");
    // Over the limit: 413 (70 KiB against the default 64 KiB).
    let big = "x".repeat(70 * 1024);
    app.post("/v1/users", json!({"username": "gus", "extra": {"blob": big}}))
        .await
        .problem(413, "payload_too_large");
    // Just under the limit is fine.
    let fits = "x".repeat(60 * 1024);
    app.post("/v1/users", json!({"username": "gus", "extra": {"blob": fits}})).await.ok(201);
    // Unknown route and wrong method.
    let res = app.get("/v1/nothing-here").await;
    res.problem(404, "not_found");
    app.send(app.client.get(app.url("/nope"))).await.problem(404, "not_found");
    let res = app.call(Method::PUT, "/v1/users", Some(json!({}))).await;
    res.problem(405, "method_not_allowed");
    let allow = res.header("allow").unwrap_or_default().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "allow: {allow}");
    app.call(Method::POST, "/healthz", None).await.problem(405, "method_not_allowed");
    // Bad path parameters.
    app.delete("/v1/users/gus/sessions/not-a-uuid").await.problem(400, "invalid_request");
    app.get("/v1/users/gus/providers/Not_Valid").await.problem(400, "invalid_request");
    let long = "x".repeat(400);
    app.get(&format!("/v1/users/{long}")).await.problem(400, "invalid_request");
    app.get("/v1/users/%FF").await.problem(400, "invalid_request");
}

async fn the_body_limit_is_configurable(app: TestApp) {
    app.post("/v1/users", json!({"username": "h", "extra": {"b": "x".repeat(2000)}}))
        .await
        .problem(413, "payload_too_large");
    app.post("/v1/users", json!({"username": "h", "extra": {"b": "x".repeat(500)}})).await.ok(201);
}

// ------------------------------------------------------------------------------ login

async fn login_shapes_and_the_login_object(app: TestApp) {
    let u = app.register("ivy", "ivy velvet kumquat").await;
    let id = u["id"].as_str().unwrap();

    for body in [
        json!({"username": "IVY", "password": "ivy velvet kumquat"}),
        json!({"email": "ivy@EXAMPLE.com", "password": "ivy velvet kumquat"}),
        json!({"login": "ivy", "password": "ivy velvet kumquat"}),
        json!({"login": "ivy@example.com", "password": "ivy velvet kumquat"}),
    ] {
        let r = app.post("/v1/sessions", body.clone()).await.ok(201);
        assert!(r["token"].as_str().unwrap().starts_with("hps_"), "{body}");
        assert_eq!(r["session"]["user_id"], id);
        let l = &r["login"];
        assert_eq!(l["user_id"], id);
        assert_eq!(l["username"], "ivy");
        assert_eq!(l["email"], "ivy@example.com");
        assert_eq!(l["group"], "default");
        assert_eq!(l["scope"], "app");
        assert_eq!(l["active"], true);
        assert_eq!(l["validated"], true);
        assert_eq!(l["confirmation"], Value::Null);
        assert_eq!(l["oauth"], Value::Null);
        assert_eq!(l["extra"], json!({}));
    }

    // Data and client travel with the session.
    let r = app
        .post(
            "/v1/sessions",
            json!({"login": "ivy", "password": "ivy velvet kumquat", "data": {"cart": [1, 2]},
                   "client": {"ip": "2001:db8::1", "user_agent": "curl/8"}}),
        )
        .await
        .ok(201);
    let s = &r["session"];
    assert_eq!(s["data"], json!({"cart": [1, 2]}));
    assert_eq!(s["client"], json!({"ip": "2001:db8::1", "user_agent": "curl/8"}));
    assert_eq!(ts(&s["created_at"]), app.now());
    assert_eq!(ts(&s["last_seen_at"]), app.now());
    assert_eq!(ts(&s["expires_at"]), app.now() + Duration::hours(24));
    assert_eq!(ts(&s["absolute_expires_at"]), app.now() + Duration::days(30));
    assert_eq!(
        keys(s),
        sorted(&[
            "id",
            "user_id",
            "created_at",
            "last_seen_at",
            "expires_at",
            "absolute_expires_at",
            "data",
            "client",
            "aal",
            "amr"
        ])
    );
    assert_eq!((&s["aal"], &s["amr"]), (&json!(1), &json!(["pwd"])));
    let user = app.get("/v1/users/ivy").await.ok(200);
    assert_eq!(ts(&user["last_login_at"]), app.now());

    // Shapes that are not one of the four.
    for body in [
        json!({"password": "ivy velvet kumquat"}),
        json!({"login": "ivy"}),
        json!({"login": "ivy", "username": "ivy", "password": "ivy velvet kumquat"}),
        json!({"provider": "github"}),
        json!({"client_id": "123"}),
        json!({"provider": "github", "client_id": "1", "password": "ivy velvet kumquat"}),
        json!({"provider": "GitHub!", "client_id": "1"}),
        json!({"login": "", "password": "ivy velvet kumquat"}),
        json!({"login": "ivy", "password": ""}),
        json!({"login": "ivy", "password": "ivy velvet kumquat", "client": {"ip": "not an ip"}}),
        json!({"login": "ivy", "password": "ivy velvet kumquat", "client": {"user_agent": "u".repeat(1025)}}),
        json!({"login": "ivy", "password": "ivy velvet kumquat", "client": {"ip": "1.2.3.4", "port": 1}}),
        json!({"login": "ivy", "password": "ivy velvet kumquat", "data": [1]}),
        json!({"login": "ivy", "password": "ivy velvet kumquat", "code": "123"}),
    ] {
        app.post("/v1/sessions", body).await.problem(400, "invalid_request");
    }
    let p = app
        .post(
            "/v1/sessions",
            json!({"login": "ivy", "password": "ivy velvet kumquat", "client": {"ip": "999.1.1.1"}}),
        )
        .await
        .problem(400, "invalid_request");
    assert_eq!(p["field"], "client.ip");
    // 1024 characters of user agent are fine.
    app.post(
        "/v1/sessions",
        json!({"login": "ivy", "password": "ivy velvet kumquat", "client": {"ip": "10.0.0.1", "user_agent": "u".repeat(1024)}}),
    )
    .await
    .ok(201);
}

async fn wrong_password_and_unknown_user_are_indistinguishable(app: TestApp) {
    app.register("jack", "jack velvet kumquat").await;
    let wrong = app.post("/v1/sessions", json!({"username": "jack", "password": "not his password"})).await;
    let unknown = app.post("/v1/sessions", json!({"username": "jill", "password": "not his password"})).await;
    let unknown_email = app.post("/v1/sessions", json!({"email": "jill@example.com", "password": "x"})).await;
    let unknown_login = app.post("/v1/sessions", json!({"login": "jill", "password": "x"})).await;
    let unknown_provider = app.post("/v1/sessions", json!({"provider": "github", "client_id": "42"})).await;
    wrong.problem(401, "invalid_credentials");
    for other in [&unknown, &unknown_email, &unknown_login, &unknown_provider] {
        other.problem(401, "invalid_credentials");
        assert_eq!(wrong.text, other.text, "bodies must be byte-identical");
        assert_eq!(wrong.header("content-type"), other.header("content-type"));
        assert_eq!(wrong.header("content-length"), other.header("content-length"));
    }
}

async fn an_inactive_user_gets_403_with_the_login_object_and_no_session(app: TestApp) {
    let u = app
        .post(
            "/v1/users",
            json!({"username": "kim", "password": "kim velvet kumquat", "active": false, "extra": {"k": 1}}),
        )
        .await
        .ok(201);
    assert_eq!(u["active"], false);
    assert_eq!(u["validated"], false);
    let p = app
        .post("/v1/sessions", json!({"login": "kim", "password": "kim velvet kumquat"}))
        .await
        .problem(403, "user_inactive");
    let l = &p["login"];
    assert_eq!(l["user_id"], u["id"]);
    assert_eq!(l["username"], "kim");
    assert_eq!(l["active"], false);
    assert_eq!(l["validated"], false);
    assert_eq!(l["extra"], json!({"k": 1}));
    assert_eq!(l["scope"], "app");
    assert_eq!(l["oauth"], Value::Null);
    assert!(p.get("token").is_none() && p.get("session").is_none());
    assert_eq!(app.get("/v1/users/kim/sessions").await.ok(200)["sessions"], json!([]));
    // A wrong password of an inactive user is still just invalid_credentials.
    app.post("/v1/sessions", json!({"login": "kim", "password": "wrong password"}))
        .await
        .problem(401, "invalid_credentials");
    let events = app.get("/v1/users/kim/logins").await.ok(200);
    let outcomes: Vec<&str> =
        events["events"].as_array().unwrap().iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["wrong_password", "inactive"]);
    assert_eq!(events["events"][1]["session_id"], Value::Null);
    assert_eq!(app.get("/v1/users/kim").await.ok(200)["last_login_at"], Value::Null);
}

// ------------------------------------------------------------------------------ sessions

async fn get_does_not_extend_and_freshen_does(app: TestApp) {
    let u = app.register("lea", "lea velvet kumquat").await;
    let token = app.login("lea", "lea velvet kumquat").await;
    let start = app.now();

    app.clock.advance(Duration::hours(1));
    let s = app.with_token(Method::GET, "/v1/session", &token, None).await.ok(200);
    assert_eq!(ts(&s["session"]["expires_at"]), start + Duration::hours(24));
    assert_eq!(ts(&s["session"]["last_seen_at"]), start);
    assert_eq!(s["user"]["id"], u["id"]);
    assert_eq!(s["user"]["username"], "lea");
    let again = app.with_token(Method::GET, "/v1/session", &token, None).await.ok(200);
    assert_eq!(again["session"]["expires_at"], s["session"]["expires_at"]);

    let f = app.with_token(Method::POST, "/v1/session/freshen", &token, None).await.ok(200);
    assert_eq!(ts(&f["session"]["expires_at"]), app.now() + Duration::hours(24));
    assert_eq!(ts(&f["session"]["last_seen_at"]), app.now());
    assert_eq!(ts(&f["session"]["absolute_expires_at"]), start + Duration::days(30));
    let s = app.with_token(Method::GET, "/v1/session", &token, None).await.ok(200);
    assert_eq!(s["session"], f["session"]);

    // Missing and garbage tokens.
    app.get("/v1/session").await.problem(401, "session_invalid");
    for t in ["hps_nope", "nope", ""] {
        app.with_token(Method::GET, "/v1/session", t, None).await.problem(401, "session_invalid");
    }
}

async fn idle_and_absolute_expiry(app: TestApp) {
    app.register("max", "max velvet kumquat").await;
    // Idle: a day without freshen.
    let idle = app.login("max", "max velvet kumquat").await;
    app.clock.advance(Duration::hours(24) - Duration::seconds(1));
    app.with_token(Method::GET, "/v1/session", &idle, None).await.ok(200);
    app.clock.advance(Duration::seconds(1));
    app.with_token(Method::GET, "/v1/session", &idle, None).await.problem(401, "session_invalid");
    app.with_token(Method::POST, "/v1/session/freshen", &idle, None).await.problem(401, "session_invalid");
    app.with_token(Method::PATCH, "/v1/session", &idle, Some(json!({"a": 1})))
        .await
        .problem(401, "session_invalid");

    // Absolute: freshened every 20 hours, it still ends 30 days after login.
    let kept = app.login("max", "max velvet kumquat").await;
    let born = app.now();
    loop {
        app.clock.advance(Duration::hours(20));
        if app.now() >= born + Duration::days(30) {
            break;
        }
        let f = app.with_token(Method::POST, "/v1/session/freshen", &kept, None).await.ok(200);
        assert!(ts(&f["session"]["expires_at"]) <= born + Duration::days(30));
    }
    app.with_token(Method::GET, "/v1/session", &kept, None).await.problem(401, "session_invalid");
    assert_eq!(app.get("/v1/users/max/sessions").await.ok(200)["sessions"], json!([]));
}

/// Session `data` (at login, after every patch) and user `extra` (register, update) are
/// capped in bytes of compact JSON (defaults 16 KiB and 64 KiB, under a body limit raised to
/// 256 KiB here): beyond, 413 `payload_too_large` naming the field, and nothing changes.
async fn session_data_and_extra_have_a_size_cap(app: TestApp) {
    let u = app.register("ola", "ola velvet kumquat").await;
    let login = |data: Value| json!({"login": "ola", "password": "ola velvet kumquat", "data": data});
    let big = |n: usize| json!({"blob": "x".repeat(n)});

    // {"blob":"..."} is 11 bytes beside the string: 16,373 characters make 16,384 bytes.
    let p = app.post("/v1/sessions", login(big(16_374))).await.problem(413, "payload_too_large");
    assert_eq!(p["field"], "data");
    let sessions = app.get(&format!("/v1/users/{}/sessions", u["id"].as_str().unwrap())).await.ok(200);
    assert_eq!(sessions["sessions"], json!([]), "a refused login makes no session");
    let token =
        app.post("/v1/sessions", login(big(16_373))).await.ok(201)["token"].as_str().unwrap().to_owned();

    // Patches: one that would grow the data past the cap changes nothing.
    let patch = |body: Value| app.with_token(Method::PATCH, "/v1/session", &token, Some(body));
    patch(json!({"blob": "y".repeat(8000)})).await.ok(200);
    let p = patch(json!({"more": "z".repeat(8400)})).await.problem(413, "payload_too_large");
    assert_eq!(p["field"], "data");
    let got = app.with_token(Method::GET, "/v1/session", &token, None).await.ok(200);
    assert_eq!(got["session"]["data"], json!({"blob": "y".repeat(8000)}), "nothing half-written");
    // Sixty patches just under the body limit cannot make one big session.
    let mut refused = 0;
    for i in 0..60 {
        let res = patch(json!({ format!("k{i}"): "w".repeat(4000) })).await;
        if res.status.as_u16() == 413 {
            refused += 1;
        }
    }
    assert_eq!(refused, 58, "8 KB + two 4 KB keys fill the 16 KiB");
    let got = app.with_token(Method::GET, "/v1/session", &token, None).await.ok(200);
    assert!(got["session"]["data"].to_string().len() <= 16 * 1024);

    // `extra`: register and update.
    let p = app
        .post("/v1/users", json!({"username": "pim", "extra": {"blob": "x".repeat(64 * 1024)}}))
        .await
        .problem(413, "payload_too_large");
    assert_eq!(p["field"], "extra");
    app.get("/v1/users/pim").await.problem(404, "user_not_found");
    let p = app
        .patch("/v1/users/ola", json!({"group": "staff", "extra": {"blob": "x".repeat(64 * 1024)}}))
        .await
        .problem(413, "payload_too_large");
    assert_eq!(p["field"], "extra");
    let ola = app.get("/v1/users/ola").await.ok(200);
    assert_eq!((ola["group"].clone(), ola["extra"].clone()), (json!("default"), json!({})));
    app.patch("/v1/users/ola", json!({"extra": {"blob": "x".repeat(64 * 1024 - 11)}})).await.ok(200);
}

async fn session_data_is_merge_patched(app: TestApp) {
    app.register("nia", "nia velvet kumquat").await;
    let token = app
        .post(
            "/v1/sessions",
            json!({"login": "nia", "password": "nia velvet kumquat", "data": {"a": 1, "b": {"c": 2, "d": 3}}}),
        )
        .await
        .ok(201)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let s = app
        .with_token(Method::PATCH, "/v1/session", &token, Some(json!({"a": null, "b": {"c": 5}, "e": [1]})))
        .await
        .ok(200);
    assert_eq!(s["session"]["data"], json!({"b": {"c": 5, "d": 3}, "e": [1]}));
    let got = app.with_token(Method::GET, "/v1/session", &token, None).await.ok(200);
    assert_eq!(got["session"]["data"], s["session"]["data"]);
    // application/merge-patch+json is accepted too.
    let res = app
        .send(
            app.req(Method::PATCH, "/v1/session")
                .header("x-session-token", &token)
                .header("content-type", "application/merge-patch+json")
                .body(r#"{"e": null}"#),
        )
        .await;
    assert_eq!(res.ok(200)["session"]["data"], json!({"b": {"c": 5, "d": 3}}));
    // A patch must be an object.
    app.with_token(Method::PATCH, "/v1/session", &token, Some(json!([1])))
        .await
        .problem(400, "invalid_request");
    app.with_token(Method::PATCH, "/v1/session", &token, Some(json!("x")))
        .await
        .problem(400, "invalid_request");
}

/// Get-session answers from a kept copy (and its kept JSON) where the cache is on: every
/// change to the session or its user must show in the very next answer.
async fn get_session_answers_follow_every_change(app: TestApp) {
    app.register("otto", "otto velvet kumquat").await;
    let token = app.login("otto", "otto velvet kumquat").await;
    let first = app.with_token(Method::GET, "/v1/session", &token, None).await;
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert!(first.header("x-request-id").is_some());
    let first = first.ok(200);
    // Served again (from the cache where it is on): the same answer.
    assert_eq!(app.with_token(Method::GET, "/v1/session", &token, None).await.ok(200), first);

    app.with_token(Method::PATCH, "/v1/session", &token, Some(json!({"cart": 3}))).await.ok(200);
    let got = app.with_token(Method::GET, "/v1/session", &token, None).await.ok(200);
    assert_eq!(got["session"]["data"], json!({"cart": 3}));

    app.patch("/v1/users/otto", json!({"group": "staff", "extra": {"tier": "gold"}})).await.ok(200);
    let got = app.with_token(Method::GET, "/v1/session", &token, None).await.ok(200);
    assert_eq!(
        (got["user"]["group"].clone(), got["user"]["extra"].clone()),
        (json!("staff"), json!({"tier": "gold"}))
    );
    assert_eq!(got["session"]["data"], json!({"cart": 3}));

    app.patch("/v1/users/otto", json!({"active": false})).await.ok(200);
    app.with_token(Method::GET, "/v1/session", &token, None).await.problem(401, "session_invalid");
}

async fn ending_sessions(app: TestApp) {
    app.register("oli", "oli velvet kumquat").await;
    let a = app.login("oli", "oli velvet kumquat").await;
    let b = app.login("oli", "oli velvet kumquat").await;
    let c = app.login("oli", "oli velvet kumquat").await;

    // Logout twice: 204 both times.
    app.with_token(Method::DELETE, "/v1/session", &a, None).await.no_content();
    app.with_token(Method::DELETE, "/v1/session", &a, None).await.no_content();
    app.with_token(Method::DELETE, "/v1/session", "hps_never_issued", None).await.no_content();
    app.with_token(Method::GET, "/v1/session", &a, None).await.problem(401, "session_invalid");
    app.delete("/v1/session").await.problem(401, "session_invalid");

    // End the others: the caller stays.
    let d = app.login("oli", "oli velvet kumquat").await;
    app.with_token(Method::DELETE, "/v1/session/others", &b, None).await.no_content();
    app.with_token(Method::GET, "/v1/session", &b, None).await.ok(200);
    for t in [&c, &d] {
        app.with_token(Method::GET, "/v1/session", t, None).await.problem(401, "session_invalid");
    }
    app.with_token(Method::DELETE, "/v1/session/others", &a, None).await.problem(401, "session_invalid");

    // A user's sessions: list (no tokens), end one by id, end all.
    let e = app.login("oli", "oli velvet kumquat").await;
    let list = app.get("/v1/users/oli/sessions").await.ok(200);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(!list.to_string().contains(&b) && !list.to_string().contains(&e));
    assert!(sessions.iter().all(|s| s.get("token").is_none()));
    let b_id = app.with_token(Method::GET, "/v1/session", &b, None).await.ok(200)["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("/v1/users/oli/sessions/{b_id}")).await.no_content();
    app.delete(&format!("/v1/users/oli/sessions/{b_id}")).await.problem(404, "session_not_found");
    app.with_token(Method::GET, "/v1/session", &b, None).await.problem(401, "session_invalid");
    app.with_token(Method::GET, "/v1/session", &e, None).await.ok(200);
    // Another user's session id is not found under this user.
    app.register("pam", "pam velvet kumquat").await;
    let p = app.login("pam", "pam velvet kumquat").await;
    let p_id = app.with_token(Method::GET, "/v1/session", &p, None).await.ok(200)["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("/v1/users/oli/sessions/{p_id}")).await.problem(404, "session_not_found");
    app.with_token(Method::GET, "/v1/session", &p, None).await.ok(200);
    app.delete("/v1/users/oli/sessions").await.no_content();
    app.with_token(Method::GET, "/v1/session", &e, None).await.problem(401, "session_invalid");
    assert_eq!(app.get("/v1/users/oli/sessions").await.ok(200)["sessions"], json!([]));
    app.delete("/v1/users/nobody/sessions").await.problem(404, "user_not_found");
    app.delete(&format!("/v1/users/nobody/sessions/{p_id}")).await.problem(404, "user_not_found");
}

// ------------------------------------------------------------------------------ resets

async fn password_reset_codes(app: TestApp) {
    let u = app.register("quin", "quin velvet kumquat").await;
    let token = app.login("quin", "quin velvet kumquat").await;

    let first = app.post("/v1/password-resets", json!({"login": "quin"})).await.ok(201);
    assert!(first["code"].as_str().unwrap().starts_with("hpc_"));
    assert_eq!(first["user_id"], u["id"]);
    assert_eq!(ts(&first["expires_at"]), app.now() + Duration::hours(1));
    let second = app.post("/v1/password-resets", json!({"login": "quin@example.com"})).await.ok(201);
    assert_ne!(first["code"], second["code"]);

    // The newer code voids the older.
    app.post("/v1/password-resets/redeem", json!({"code": first["code"], "password": "brand new pass"}))
        .await
        .problem(400, "invalid_code");
    // A weak password is refused before the code is spent.
    app.post("/v1/password-resets/redeem", json!({"code": second["code"], "password": "short"}))
        .await
        .problem(400, "weak_password");
    let r = app
        .post("/v1/password-resets/redeem", json!({"code": second["code"], "password": "brand new pass"}))
        .await
        .ok(200);
    assert_eq!(r, json!({"user_id": u["id"]}));
    // Single use.
    app.post("/v1/password-resets/redeem", json!({"code": second["code"], "password": "another new pass"}))
        .await
        .problem(400, "invalid_code");
    // Sessions ended; old password out, new one in.
    app.with_token(Method::GET, "/v1/session", &token, None).await.problem(401, "session_invalid");
    app.post("/v1/sessions", json!({"login": "quin", "password": "quin velvet kumquat"}))
        .await
        .problem(401, "invalid_credentials");
    app.login("quin", "brand new pass").await;

    // Expired codes.
    let third = app.post("/v1/password-resets", json!({"login": "quin"})).await.ok(201);
    app.clock.advance(Duration::hours(1));
    app.post("/v1/password-resets/redeem", json!({"code": third["code"], "password": "too late pass"}))
        .await
        .problem(400, "invalid_code");
    // Codes that were never issued, and the empty code (sleepless-sessions' hole).
    for code in ["hpc_nope", "", "anything"] {
        app.post("/v1/password-resets/redeem", json!({"code": code, "password": "whatever pass"}))
            .await
            .problem(400, "invalid_code");
    }

    app.post("/v1/password-resets", json!({"login": "nobody"})).await.problem(404, "user_not_found");
    app.post("/v1/password-resets", json!({"login": ""})).await.problem(400, "invalid_request");
    app.post("/v1/password-resets", json!({"login": "quin", "send_email": true}))
        .await
        .problem(400, "mail_not_configured");
    app.post("/v1/password-resets", json!({"login": "quin", "send_email": false})).await.ok(201);
    app.post("/v1/password-resets/redeem", json!({"code": "hpc_x"})).await.problem(400, "invalid_request");
}

/// A reset code issued before `PUT /v1/users/{ref}/password` or before a new email
/// (`PATCH`) no longer sets the password; an update that changes neither keeps it.
async fn reset_codes_die_with_a_password_or_email_change(app: TestApp) {
    app.register("tove", "tove velvet kumquat").await;
    let redeem = |code: &Value| json!({"code": code, "password": "attacker chosen pass"});

    // Set password: the code issued before it is void.
    let code = app.post("/v1/password-resets", json!({"login": "tove"})).await.ok(201)["code"].clone();
    app.put("/v1/users/tove/password", json!({"password": "tove second kumquat"})).await.no_content();
    app.post("/v1/password-resets/redeem", redeem(&code)).await.problem(400, "invalid_code");
    app.login("tove", "tove second kumquat").await;

    // New email: the code issued before it (sent to the old address) is void.
    let code = app.post("/v1/password-resets", json!({"login": "tove"})).await.ok(201)["code"].clone();
    app.patch("/v1/users/tove", json!({"email": "tove@elsewhere.example"})).await.ok(200);
    app.post("/v1/password-resets/redeem", redeem(&code)).await.problem(400, "invalid_code");
    app.login("tove", "tove second kumquat").await;

    // Neither changed (new `extra`, group, the same email again): the code still works.
    let code = app.post("/v1/password-resets", json!({"login": "tove"})).await.ok(201)["code"].clone();
    app.patch("/v1/users/tove", json!({"extra": {"plan": "gold"}, "group": "staff"})).await.ok(200);
    app.patch("/v1/users/tove", json!({"email": "tove@elsewhere.example"})).await.ok(200);
    app.post("/v1/password-resets/redeem", redeem(&code)).await.ok(200);
    app.login("tove", "attacker chosen pass").await;
}

// ------------------------------------------------------------------------------ providers

async fn provider_links(app: TestApp) {
    let u = app.register("rae", "rae velvet kumquat").await;
    app.register("sam", "sam velvet kumquat").await;

    let i = app
        .put(
            "/v1/users/rae/providers/github",
            json!({"client_id": "gh-1", "access_token": "tok", "expires_in": 3600}),
        )
        .await
        .ok(200);
    assert_eq!(i["provider"], "github");
    assert_eq!(i["client_id"], "gh-1");
    assert_eq!(i["access_token"], "tok");
    let expiry = (app.now() + Duration::hours(1)).unix_timestamp();
    assert_eq!(i["access_token_expiry"], expiry);
    assert_eq!(i["access_token_expired"], false);
    assert_eq!(ts(&i["created_at"]), app.now());
    assert_eq!(
        keys(&i),
        sorted(&[
            "provider",
            "client_id",
            "access_token",
            "access_token_expiry",
            "access_token_expired",
            "refresh_token",
            "created_at",
            "updated_at"
        ])
    );

    // Login through the link carries the oauth object.
    let r = app.post("/v1/sessions", json!({"provider": "github", "client_id": "gh-1"})).await.ok(201);
    assert_eq!(r["login"]["user_id"], u["id"]);
    assert_eq!(
        r["login"]["oauth"],
        json!({"provider": "github", "client_id": "gh-1", "access_token": "tok",
               "access_token_expiry": expiry, "access_token_expired": false, "refresh_token": null})
    );

    // Time passes: the token expires.
    app.clock.advance(Duration::hours(2));
    let i = app.get("/v1/users/rae/providers/github").await.ok(200);
    assert_eq!(i["access_token_expired"], true);
    let r = app.post("/v1/sessions", json!({"provider": "github", "client_id": "gh-1"})).await.ok(201);
    assert_eq!(r["login"]["oauth"]["access_token_expired"], true);
    // Events record the provider method.
    let ev = app.get("/v1/users/rae/logins?limit=1").await.ok(200);
    assert_eq!(ev["events"][0]["method"], "provider:github");

    // PATCH: new token and an absolute expiry.
    let later = (app.now() + Duration::hours(5)).unix_timestamp();
    let i = app
        .patch(
            "/v1/users/rae/providers/github",
            json!({"access_token": "tok2", "access_token_expiry": later}),
        )
        .await
        .ok(200);
    assert_eq!(i["access_token"], "tok2");
    assert_eq!(i["access_token_expiry"], later);
    assert_eq!(i["access_token_expired"], false);
    assert_eq!(ts(&i["updated_at"]), app.now());
    assert_eq!(i["client_id"], "gh-1");
    // A backend doing the dance itself keeps the refresh token here too; null clears it.
    let i = app.patch("/v1/users/rae/providers/github", json!({"refresh_token": "r-1"})).await.ok(200);
    assert_eq!((i["refresh_token"].as_str(), i["access_token"].as_str()), (Some("r-1"), Some("tok2")));
    let i = app.patch("/v1/users/rae/providers/github", json!({"refresh_token": null})).await.ok(200);
    assert_eq!(i["refresh_token"], Value::Null);
    // PATCH clearing.
    let i = app
        .patch("/v1/users/rae/providers/github", json!({"access_token": null, "access_token_expiry": null}))
        .await
        .ok(200);
    assert_eq!(i["access_token"], Value::Null);
    assert_eq!(i["access_token_expiry"], Value::Null);
    assert_eq!(i["access_token_expired"], false);
    // Not both expiry forms; no unknown fields; no bad expiries.
    for body in [
        json!({"access_token_expiry": later, "expires_in": 10}),
        json!({"client_id": "other"}),
        json!({"access_token_expiry": -5}),
        json!({"access_token_expiry": 999_999_999_999_i64}),
        json!({"access_token_expiry": "soon"}),
        json!({"expires_in": 9_000_000_000_i64}),
    ] {
        app.patch("/v1/users/rae/providers/github", body).await.problem(400, "invalid_request");
    }
    app.put(
        "/v1/users/rae/providers/github",
        json!({"client_id": "gh-1", "access_token_expiry": later, "expires_in": 1}),
    )
    .await
    .problem(400, "invalid_request");
    app.put("/v1/users/rae/providers/github", json!({})).await.problem(400, "invalid_request");

    // Lists.
    app.put("/v1/users/rae/providers/google", json!({"client_id": "g-1"})).await.ok(200);
    let list = app.get("/v1/users/rae/providers").await.ok(200);
    let names: Vec<&str> =
        list["providers"].as_array().unwrap().iter().map(|p| p["provider"].as_str().unwrap()).collect();
    assert_eq!(names, ["github", "google"]);

    // The identity belongs to one user of the scope.
    app.put("/v1/users/sam/providers/github", json!({"client_id": "gh-1"}))
        .await
        .problem(409, "identity_taken");
    // Relinking replaces the user's own link.
    let i = app.put("/v1/users/rae/providers/github", json!({"client_id": "gh-2"})).await.ok(200);
    assert_eq!(i["client_id"], "gh-2");
    app.post("/v1/sessions", json!({"provider": "github", "client_id": "gh-1"}))
        .await
        .problem(401, "invalid_credentials");
    app.put("/v1/users/sam/providers/github", json!({"client_id": "gh-1"})).await.ok(200);

    // Unlink.
    app.delete("/v1/users/rae/providers/github").await.no_content();
    app.get("/v1/users/rae/providers/github").await.problem(404, "provider_not_linked");
    app.delete("/v1/users/rae/providers/github").await.problem(404, "provider_not_linked");
    app.patch("/v1/users/rae/providers/github", json!({"access_token": "x"}))
        .await
        .problem(404, "provider_not_linked");
    app.post("/v1/sessions", json!({"provider": "github", "client_id": "gh-2"}))
        .await
        .problem(401, "invalid_credentials");
    app.get("/v1/users/nobody/providers/github").await.problem(404, "user_not_found");
    app.put("/v1/users/nobody/providers/github", json!({"client_id": "z"}))
        .await
        .problem(404, "user_not_found");
    app.get("/v1/users/nobody/providers").await.problem(404, "user_not_found");
}

// ------------------------------------------------------------------------------ activity

async fn login_history_pages_newest_first(app: TestApp) {
    app.register("tia", "tia velvet kumquat").await;
    let ok = |login: &'static str| json!({"login": login, "password": "tia velvet kumquat", "client": {"ip": "192.0.2.7", "user_agent": "ua"}});
    app.post("/v1/sessions", ok("tia")).await.ok(201);
    app.clock.advance(Duration::minutes(1));
    app.post("/v1/sessions", json!({"login": "tia", "password": "wrong password"}))
        .await
        .problem(401, "invalid_credentials");
    app.clock.advance(Duration::minutes(1));
    let last = app.post("/v1/sessions", ok("tia@example.com")).await.ok(201);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut rb = app.req(Method::GET, "/v1/users/tia/logins").query(&[("limit", "1")]);
        if let Some(c) = &cursor {
            rb = rb.query(&[("cursor", c)]);
        }
        let page = app.send(rb).await.ok(200);
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 1);
        seen.extend(events.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(seen.len() < 10, "paging does not end");
    }
    let outcomes: Vec<&str> = seen.iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["success", "wrong_password", "success"]);
    let newest = &seen[0];
    assert_eq!(newest["session_id"], last["session"]["id"]);
    assert_eq!(newest["method"], "password");
    assert_eq!(newest["ip"], "192.0.2.7");
    assert_eq!(newest["user_agent"], "ua");
    assert_eq!(ts(&newest["at"]), app.now());
    assert_eq!(seen[1]["session_id"], Value::Null);
    assert_eq!(seen[1]["ip"], Value::Null);
    assert_eq!(keys(newest), sorted(&["id", "at", "method", "outcome", "session_id", "ip", "user_agent"]));

    let all = app.get("/v1/users/tia/logins").await.ok(200);
    assert_eq!(all["events"].as_array().unwrap().len(), 3);
    assert_eq!(all["next_cursor"], Value::Null);
    app.get("/v1/users/tia/logins?cursor=bogus").await.problem(400, "invalid_request");
    app.get("/v1/users/tia/logins?limit=0").await.problem(400, "invalid_request");
    app.get("/v1/users/tia/logins?page=2").await.problem(400, "invalid_request");
}

async fn login_statistics_by_hour_and_day(app: TestApp) {
    // the clock stands at 2030-01-01T00:00:00Z

    app.register("uma", "uma velvet kumquat").await;
    app.register("vic", "vic velvet kumquat").await;
    app.login("uma", "uma velvet kumquat").await;
    app.login("uma", "uma velvet kumquat").await;
    app.login("vic", "vic velvet kumquat").await;
    app.post("/v1/sessions", json!({"login": "vic", "password": "wrong password"}))
        .await
        .problem(401, "invalid_credentials");
    app.clock.advance(Duration::minutes(90));
    app.login("vic", "vic velvet kumquat").await;

    let q = |from: &str, to: &str, bucket: Option<&str>| {
        let mut rb = app.req(Method::GET, "/v1/stats/logins").query(&[("from", from), ("to", to)]);
        if let Some(b) = bucket {
            rb = rb.query(&[("bucket", b)]);
        }
        rb
    };
    let hours = app.send(q("2029-12-31T23:00:00Z", "2030-01-01T03:00:00Z", None)).await.ok(200);
    assert_eq!(
        hours,
        json!({"buckets": [
            {"start": "2029-12-31T23:00:00Z", "logins": 0, "users": 0},
            {"start": "2030-01-01T00:00:00Z", "logins": 3, "users": 2},
            {"start": "2030-01-01T01:00:00Z", "logins": 1, "users": 1},
            {"start": "2030-01-01T02:00:00Z", "logins": 0, "users": 0},
        ]})
    );
    let explicit = app.send(q("2029-12-31T23:00:00Z", "2030-01-01T03:00:00Z", Some("hour"))).await.ok(200);
    assert_eq!(explicit, hours);
    // Offsets other than Z are understood.
    let offset = app.send(q("2030-01-01T00:00:00+01:00", "2030-01-01T04:00:00+01:00", None)).await.ok(200);
    assert_eq!(offset["buckets"], hours["buckets"]);
    let days = app.send(q("2029-12-31T00:00:00Z", "2030-01-02T00:00:00Z", Some("day"))).await.ok(200);
    assert_eq!(
        days,
        json!({"buckets": [
            {"start": "2029-12-31T00:00:00Z", "logins": 0, "users": 0},
            {"start": "2030-01-01T00:00:00Z", "logins": 4, "users": 2},
        ]})
    );
    // Defaults: the last 24 hours by hour (`to` is now, exclusive).
    app.clock.advance(Duration::minutes(1));
    let default = app.get("/v1/stats/logins").await.ok(200);
    let buckets = default["buckets"].as_array().unwrap();
    assert!((24..=25).contains(&buckets.len()), "{}", buckets.len());
    let total: u64 = buckets.iter().map(|b| b["logins"].as_u64().unwrap()).sum();
    assert_eq!(total, 4);

    for bad in [
        "bucket=week",
        "from=yesterday",
        "to=2030-13-01T00:00:00Z",
        "from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z",
        "from=1900-01-01T00:00:00Z&to=2030-01-01T00:00:00Z",
        "to=0000-01-01T00:00:00Z",
        "from=0000-01-01T00:00:00Z&to=0000-01-01T05:00:00Z",
        "scope=other",
    ] {
        app.get(&format!("/v1/stats/logins?{bad}")).await.problem(400, "invalid_request");
    }
    // Another scope sees none of it.
    let other = app.key_for("other").await;
    let res = app
        .send(
            app.client
                .get(app.url("/v1/stats/logins"))
                .bearer_auth(&other)
                .query(&[("from", "2030-01-01T00:00:00Z"), ("to", "2030-01-01T02:00:00Z")]),
        )
        .await
        .ok(200);
    assert!(res["buckets"].as_array().unwrap().iter().all(|b| b["logins"] == 0));
}

// ------------------------------------------------------------------------------ operations

async fn probes_request_ids_and_storage_outages(app: TestApp) {
    let res = app.send(app.client.get(app.url("/healthz"))).await;
    assert_eq!(res.ok(200), json!({"status": "ok"}));
    let res = app.send(app.client.get(app.url("/readyz"))).await;
    assert_eq!(res.ok(200), json!({"status": "ok"}));

    // A request id is made when absent and kept when given.
    let res = app.send(app.client.get(app.url("/healthz")).header("x-request-id", "abc-123")).await;
    assert_eq!(res.header("x-request-id"), Some("abc-123"));
    let res = app.get("/v1/users/nobody").await;
    let id = res.header("x-request-id").unwrap();
    assert_eq!(id.len(), 36, "{id}");

    // Storage down: 503 with Retry-After, never a hang or a crash; liveness stays up.
    app.switch
        .observer()
        .fail_with(Some(hallpass_core::StoreError::Unavailable("connection refused".into())));
    let res = app.send(app.client.get(app.url("/readyz"))).await;
    res.problem(503, "storage_unavailable");
    assert_eq!(res.header("retry-after"), Some("1"));
    let res = app.get("/v1/users").await;
    res.problem(503, "storage_unavailable");
    assert_eq!(res.header("retry-after"), Some("1"));
    assert!(!res.text.contains("refused"));
    app.send(app.client.get(app.url("/healthz"))).await.ok(200);

    // A storage bug: 500 with a generic detail; the cause stays in the log.
    app.switch
        .observer()
        .fail_with(Some(hallpass_core::StoreError::Other("disk image is malformed at page 7".into())));
    let res = app.get("/v1/users").await;
    let p = res.problem(500, "internal");
    assert!(!res.text.contains("malformed") && !res.text.contains("page 7"), "{p}");
    assert!(res.header("retry-after").is_none());

    app.switch.observer().fail_with(None);
    app.get("/v1/users").await.ok(200);
    app.send(app.client.get(app.url("/readyz"))).await.ok(200);
}

async fn the_openapi_document_describes_every_route(app: TestApp) {
    let doc = app.send(app.client.get(app.url("/openapi.json"))).await.ok(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    assert_eq!(doc, serde_json::to_value(hallpass_server::http::openapi()).unwrap());
    let expected = [
        ("/v1/users", &["get", "post"][..]),
        ("/v1/users/{ref}", &["get", "patch", "delete"]),
        ("/v1/users/{ref}/password", &["put"]),
        ("/v1/sessions", &["post"]),
        ("/v1/session", &["get", "patch", "delete"]),
        ("/v1/session/freshen", &["post"]),
        ("/v1/session/others", &["delete"]),
        ("/v1/users/{ref}/sessions", &["get", "delete"]),
        ("/v1/users/{ref}/sessions/{session_id}", &["delete"]),
        ("/v1/password-resets", &["post"]),
        ("/v1/password-resets/redeem", &["post"]),
        ("/v1/users/{ref}/confirmation", &["post"]),
        ("/v1/confirmations/redeem", &["post"]),
        ("/v1/email-codes", &["post"]),
        ("/v1/users/{ref}/providers", &["get"]),
        ("/v1/users/{ref}/providers/{provider}", &["put", "patch", "get", "delete"]),
        ("/v1/oidc/{provider}/start", &["post"]),
        ("/v1/oidc/{provider}/callback", &["get"]),
        ("/v1/oidc/exchange", &["post"]),
        ("/v1/changes", &["get"]),
        ("/v1/webhooks", &["get", "post"]),
        ("/v1/webhooks/{id}", &["delete", "get", "patch"]),
        ("/v1/webhooks/{id}/rotate-secret", &["post"]),
        ("/v1/webhooks/{id}/deliveries", &["get"]),
        ("/v1/webhooks/{id}/deliveries/{delivery}/retry", &["post"]),
        ("/v1/users/{ref}/logins", &["get"]),
        ("/v1/stats/logins", &["get"]),
        ("/v1/sessions/mfa", &["post"]),
        ("/v1/users/{ref}/mfa/totp", &["post", "delete"]),
        ("/v1/users/{ref}/mfa/totp/confirm", &["post"]),
        ("/v1/users/{ref}/mfa/recovery-codes", &["post"]),
        ("/v1/users/{ref}/mfa", &["delete"]),
        ("/v1/users/{ref}/passkeys/register/start", &["post"]),
        ("/v1/users/{ref}/passkeys/register/finish", &["post"]),
        ("/v1/users/{ref}/passkeys", &["get"]),
        ("/v1/users/{ref}/passkeys/{id}", &["patch", "delete"]),
        ("/v1/passkeys/login/start", &["post"]),
        ("/v1/passkeys/login/finish", &["post"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/openapi.json", &["get"]),
        ("/metrics", &["get"]),
    ];
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), expected.len(), "{:?}", paths.keys().collect::<Vec<_>>());
    for (path, methods) in expected {
        let item = &paths.get(path).unwrap_or_else(|| panic!("{path} missing"));
        for m in methods {
            let op = &item[*m];
            assert!(op.is_object(), "{m} {path} missing");
            let responses = op["responses"].as_object().unwrap();
            if path.ends_with("/callback") {
                // The one public /v1 route: the browser comes back there from the provider.
                assert!(op.get("security").is_none(), "{m} {path}");
            } else if path.starts_with("/v1") {
                assert_eq!(op["security"], json!([{"bearer": []}]), "{m} {path}");
                for status in ["401", "500", "503"] {
                    assert!(responses.contains_key(status), "{m} {path} lacks {status}");
                }
            }
            if path.starts_with("/v1/session") && !path.starts_with("/v1/sessions") {
                let params = op["parameters"].as_array().unwrap();
                assert!(
                    params.iter().any(|p| p["name"] == "X-Session-Token" && p["in"] == "header"),
                    "{m} {path}"
                );
            }
        }
    }
    let schemes = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(schemes["type"], "http");
    assert_eq!(schemes["scheme"], "bearer");
    for schema in [
        "Problem",
        "User",
        "Session",
        "Login",
        "LoginResponse",
        "LoginRequest",
        "Identity",
        "LoginEvent",
        "StatBucket",
    ] {
        assert!(doc["components"]["schemas"].get(schema).is_some(), "schema {schema} missing");
    }
    // Problem responses are problem+json.
    let conflict = &doc["paths"]["/v1/users"]["post"]["responses"]["409"];
    assert!(conflict["content"].get("application/problem+json").is_some(), "{conflict}");
}

/// The `type` of a problem, resolved against the URL of the request that failed, is a page
/// of this server saying what the code means and what to do (issue #14).
async fn problem_types_resolve_to_pages_of_this_server(app: TestApp) {
    let problem = app.get("/v1/users/nobody").await.problem(404, "user_not_found");
    let type_ = problem["type"].as_str().unwrap();
    let resolved = reqwest::Url::parse(&app.url("/v1/users/nobody")).unwrap().join(type_).unwrap();
    let page = app.send(app.client.get(resolved.clone())).await;
    assert_eq!(page.status, 200, "{resolved}");
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.header("content-security-policy").unwrap().contains("default-src 'none'"));
    assert!(
        page.text.contains("<code>user_not_found</code>") && page.text.contains("What to do"),
        "{}",
        page.text
    );

    let json = app.send(app.client.get(resolved).header("accept", "application/json")).await.ok(200);
    assert_eq!((json["code"].as_str(), json["status"].as_u64()), (Some("user_not_found"), Some(404)));
    assert_eq!(json["title"], problem["title"]);

    let all =
        app.send(app.client.get(app.url("/problems")).header("accept", "application/json")).await.ok(200);
    let codes: Vec<&str> = all.as_array().unwrap().iter().filter_map(|p| p["code"].as_str()).collect();
    for code in ["invalid_credentials", "rate_limited", "storage_unavailable", "internal", "not_found"] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    let index = app.send(app.client.get(app.url("/problems"))).await;
    assert!(index.text.contains("href=\"/problems/weak_password\""));
    app.send(app.client.get(app.url("/problems/no_such_code"))).await.problem(404, "not_found");
    app.send(app.client.get(app.url("/problems/%3Cscript%3E"))).await.problem(404, "not_found");
}
