//! hallpass's own pages behind the links of confirmation and reset mails
//! (`{public_url}/pages/confirm?scope=NAME&code=...`, `/pages/reset?...`), for scopes
//! that configure no page of their own.
//!
//! Mail scanners (Microsoft Safe Links and the like) open every link of a mail before the
//! person does, so **a GET never uses a code**: it only shows a form (a button, or a new
//! password) carrying the code; only the form's POST redeems it. The POST needs the code
//! itself, so another site cannot forge one (nothing to steal from a cookie: these pages
//! use none). Plain HTML, no script (CSP `default-src 'none'`), the scope's name as title,
//! `Referrer-Policy: no-referrer` so the code in the URL goes nowhere else, `no-store`.

use crate::app::AppState;
use crate::html::escape;
use axum::Form;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hallpass_core::{Code, Error, Password, Scope};
use serde::Deserialize;

/// The page routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pages/confirm", get(confirm_form).post(confirm_submit))
        .route("/pages/reset", get(reset_form).post(reset_submit))
}

/// What a link or a form carries.
#[derive(Debug, Deserialize)]
pub struct CodeParams {
    scope: Option<String>,
    code: Option<String>,
}

/// The reset form's fields.
#[derive(Debug, Deserialize)]
pub struct ResetParams {
    scope: Option<String>,
    code: Option<String>,
    password: Option<String>,
}

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'";
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;\
                     line-height:1.5}input,button{font:inherit;padding:.4rem .6rem}label{display:block;margin:.8rem 0}";

fn page(status: StatusCode, scope: &str, heading: &str, body: &str) -> Response {
    let title = if scope.is_empty() { "hallpass".to_owned() } else { escape(scope) };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\n<body><h1>{title}</h1>\n<h2>{}</h2>\n{body}\n</body></html>\n",
        escape(heading)
    );
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

fn bad_link() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "",
        "This link is not complete",
        "<p>Open the link from the mail as it is, or enter the code where you asked for it.</p>",
    )
}

fn parse(scope: Option<&str>, code: Option<&str>) -> Option<(Scope, String)> {
    let scope = Scope::parse(scope?).ok()?;
    let code = code?.trim();
    (!code.is_empty() && code.len() <= 128).then(|| (scope, code.to_owned()))
}

fn hidden(scope: &Scope, code: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"scope\" value=\"{}\"><input type=\"hidden\" name=\"code\" value=\"{}\">",
        escape(scope.as_str()),
        escape(code)
    )
}

fn failure(scope: &Scope, e: &Error) -> Response {
    match e {
        Error::InvalidCode => page(
            StatusCode::BAD_REQUEST,
            scope.as_str(),
            "This link has expired or was used",
            "<p>Ask for a new mail and use its link.</p>",
        ),
        Error::StorageUnavailable(_) | Error::Overloaded => page(
            StatusCode::SERVICE_UNAVAILABLE,
            scope.as_str(),
            "Try again in a moment",
            "<p>The service is busy. Your link still works: go back and press the button again.</p>",
        ),
        other => {
            tracing::warn!(error = %other, "page: redeeming a code failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                scope.as_str(),
                "Something went wrong",
                "<p>Try again later.</p>",
            )
        }
    }
}

/// GET: a button that confirms; nothing is used yet.
async fn confirm_form(Query(q): Query<CodeParams>) -> Response {
    let Some((scope, code)) = parse(q.scope.as_deref(), q.code.as_deref()) else { return bad_link() };
    let body = format!(
        "<p>Press the button to confirm your email address.</p>\n<form method=\"post\" action=\"/pages/confirm\">{}\
         <button type=\"submit\">Confirm my email</button></form>",
        hidden(&scope, &code)
    );
    page(StatusCode::OK, scope.as_str(), "Confirm your email", &body)
}

/// POST: redeems the confirmation code.
async fn confirm_submit(State(state): State<AppState>, Form(f): Form<CodeParams>) -> Response {
    let Some((scope, code)) = parse(f.scope.as_deref(), f.code.as_deref()) else { return bad_link() };
    match state.service.redeem_confirmation(&scope, &Code::from_presented(&code)).await {
        Ok(_) => {
            page(StatusCode::OK, scope.as_str(), "Your email is confirmed", "<p>You can close this page.</p>")
        }
        Err(e) => failure(&scope, &e),
    }
}

fn reset_body(scope: &Scope, code: &str, problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p role=\"alert\"><strong>{}</strong></p>\n", escape(p)))
        .unwrap_or_default();
    format!(
        "{problem}<form method=\"post\" action=\"/pages/reset\">{}\
         <label>New password <input type=\"password\" name=\"password\" autocomplete=\"new-password\" \
         minlength=\"8\" maxlength=\"256\" required></label>\
         <button type=\"submit\">Set the new password</button></form>",
        hidden(scope, code)
    )
}

/// GET: the new-password form; nothing is used yet.
async fn reset_form(Query(q): Query<CodeParams>) -> Response {
    let Some((scope, code)) = parse(q.scope.as_deref(), q.code.as_deref()) else { return bad_link() };
    page(StatusCode::OK, scope.as_str(), "Choose a new password", &reset_body(&scope, &code, None))
}

/// POST: redeems the reset code with the new password (which ends every session).
async fn reset_submit(State(state): State<AppState>, Form(f): Form<ResetParams>) -> Response {
    let Some((scope, code)) = parse(f.scope.as_deref(), f.code.as_deref()) else { return bad_link() };
    let password = match Password::new(f.password.as_deref().unwrap_or_default()) {
        Ok(p) => p,
        Err(e) => {
            let body = reset_body(&scope, &code, Some(&e.to_string()));
            return page(StatusCode::BAD_REQUEST, scope.as_str(), "Choose a new password", &body);
        }
    };
    match state.service.redeem_reset_code(&scope, &Code::from_presented(&code), password).await {
        Ok(_) => page(
            StatusCode::OK,
            scope.as_str(),
            "Your password was changed",
            "<p>Sign in with your new password. Every earlier sign-in has ended.</p>",
        ),
        Err(Error::WeakPassword(why)) => {
            let body = reset_body(&scope, &code, Some(&why));
            page(StatusCode::BAD_REQUEST, scope.as_str(), "Choose a new password", &body)
        }
        Err(e) => failure(&scope, &e),
    }
}
