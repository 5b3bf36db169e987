//! A small axum app whose users sign in through hallpass: `POST /login {login, password}`
//! sets the `sid` cookie, `GET /me` answers who is signed in (from the cache while the
//! change stream vouches for it), `POST /logout` ends the session.
//!
//! ```sh
//! HALLPASS_URL=http://127.0.0.1:8080 HALLPASS_API_KEY=hp_... \
//!   cargo run -p hallpass-client --features axum --example axum_app
//! curl -c jar -d '{"login":"ada","password":"..."}' -H 'content-type: application/json' localhost:3000/login
//! curl -b jar localhost:3000/me
//! ```
//! `APP_LISTEN` sets the address (default `127.0.0.1:3000`; the bound one is printed).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hallpass_client::{Authenticated, CacheConfig, Client, LoginRequest, Sessions};

#[derive(serde::Deserialize)]
struct Credentials {
    login: String,
    password: String,
}

async fn login(State(sessions): State<Sessions>, Json(c): Json<Credentials>) -> Response {
    match sessions.client().login(&LoginRequest::password(c.login, c.password)).await {
        Ok(outcome) => match outcome.session() {
            Some(s) => (
                [(header::SET_COOKIE, format!("sid={}; HttpOnly; SameSite=Lax; Path=/", s.token))],
                Json(serde_json::json!({ "user_id": s.login.user_id })),
            )
                .into_response(),
            None => (StatusCode::FORBIDDEN, "this example does not do second factors").into_response(),
        },
        Err(e) if e.status() == Some(401) => {
            (StatusCode::UNAUTHORIZED, "wrong login or password").into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn me(who: Authenticated) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "user_id": who.user.id,
        "username": who.user.username,
        "session_id": who.session.id,
    }))
}

async fn logout(State(sessions): State<Sessions>, headers: axum::http::HeaderMap) -> StatusCode {
    if let Some(token) = hallpass_client::token_from(&headers, sessions.cookie()) {
        let _ = sessions.end(&token).await;
    }
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("HALLPASS_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("HALLPASS_API_KEY")?;
    let config = CacheConfig { cookie: Some("sid".into()), ..CacheConfig::default() };
    let sessions = Sessions::start(Client::new(&url, &key)?, config);
    let app = Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .with_state(sessions);
    let listen = std::env::var("APP_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
