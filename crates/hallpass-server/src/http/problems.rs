//! The problem types: what each `code` of a problem document means and what to do about
//! it, served at `GET /problems/{code}` (the `type` of every problem, RFC 9457 §3.1.1) and
//! listed at `GET /problems`.
//!
//! A problem's `type` is the relative reference `/problems/<code>`: resolved against the
//! URL of the request that failed, it names a page of the very server that answered,
//! wherever it is deployed and whatever name it is reached by (an absolute URL would need
//! the server to know its public name, and would point to a domain nobody owns when it
//! does not). The pages are HTML for people and JSON for programs (`Accept:
//! application/json`).
//!
//! [`CATALOG`] is the list of every code the API answers; a test in [`crate::http::error`]
//! checks that each problem it can make is here with the same status and title.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::html::escape;
use crate::http::error::ApiError;

/// One problem type.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProblemType {
    /// The stable `code`.
    pub code: &'static str,
    /// The HTTP status it answers with.
    pub status: u16,
    /// Its `title`.
    pub title: &'static str,
    /// What it means.
    pub meaning: &'static str,
    /// What the client (or the operator) should do.
    pub remedy: &'static str,
}

const fn p(
    code: &'static str,
    status: u16,
    title: &'static str,
    meaning: &'static str,
    remedy: &'static str,
) -> ProblemType {
    ProblemType { code, status, title, meaning, remedy }
}

/// Every problem type of the API, by status then code.
pub const CATALOG: &[ProblemType] = &[
    p(
        "invalid_request",
        400,
        "Invalid request",
        "The request could not be read or one of its values breaks a rule: a missing or malformed field, \
         a username or email that is not valid, a limit out of range. `detail` says what; `field` names \
         the field when there is one.",
        "Fix the named field and send the request again. Sending it again unchanged gives the same answer.",
    ),
    p(
        "invalid_code",
        400,
        "Invalid code",
        "The reset or confirmation code is unknown, was used already, or has expired. Codes are single use.",
        "Ask for a new code (`POST /v1/password-resets`) and use that one.",
    ),
    p(
        "invalid_challenge",
        400,
        "Invalid challenge",
        "The MFA challenge of `POST /v1/sessions/mfa` is unknown, was answered already, expired (a \
         challenge lives 5 minutes) or was ended by too many wrong answers. No session was made.",
        "Log in again from the first factor: it answers a new challenge.",
    ),
    p(
        "invalid_state",
        400,
        "Invalid state",
        "The identity provider sent the browser back with a `state` hallpass does not know: it was used \
         already, it expired (a sign-in lives 10 minutes), or it was altered. Nothing was signed in.",
        "Start the sign-in again (`POST /v1/oidc/{provider}/start`).",
    ),
    p(
        "invalid_return_to",
        400,
        "Invalid return_to",
        "The `return_to` of a sign-in is not one of the URLs listed in the provider's `return_to` \
         configuration (compared exactly, query ignored).",
        "Send one of the configured URLs, or ask the operator to add yours to \
         `[scopes.NAME.oidc.PROVIDER] return_to`.",
    ),
    p(
        "mail_not_configured",
        400,
        "Mail not configured",
        "The operation sends mail and this server has no mail server configured.",
        "Operators: set `HALLPASS_SMTP_URL`. Applications: use the variant that returns the code to you \
         (`POST /v1/password-resets` without `send_email`) and deliver it yourself.",
    ),
    p(
        "secret_key_not_configured",
        400,
        "Server key not configured",
        "Second factors are stored sealed by the server secret key, and this server has none \
         (PostgreSQL and MariaDB need `HALLPASS_SECRET_KEY` or `secret_key_file`).",
        "The operator sets the server secret key and restarts hallpass.",
    ),
    p(
        "passkeys_not_configured",
        400,
        "Passkeys not configured",
        "The scope has no WebAuthn relying party, so it has no passkeys.",
        "The operator adds `[scopes.NAME.webauthn]` with `rp_id`, `rp_name` and `origins` and restarts \
         hallpass.",
    ),
    p(
        "invalid_flow",
        400,
        "Invalid passkey ceremony",
        "The `flow` of a passkey registration or sign-in is unknown, was finished already (each works \
         once, so a replayed answer lands here), expired (a ceremony lives 5 minutes), or belongs to \
         another user.",
        "Start the ceremony again (`.../start`) and answer its new options.",
    ),
    p(
        "passkey_registration_failed",
        400,
        "Passkey registration refused",
        "The authenticator's answer to a registration did not verify: another origin or relying party id \
         than the scope's, another challenge than the flow's, no user verification, or a malformed \
         credential.",
        "Start the registration again from the page of a configured origin.",
    ),
    p(
        "weak_password",
        400,
        "Weak password",
        "The new password is too short, too long, or too easy to guess for the scope's password policy. \
         `detail` says which, with a suggestion.",
        "Ask the user for another password; a few unrelated words make a strong one.",
    ),
    p(
        "unauthorized",
        401,
        "Unauthorized",
        "The request carried no API key, or one that is unknown or revoked.",
        "Send `Authorization: Bearer <key>` with a key of your scope (`hallpass keys create --scope NAME`).",
    ),
    p(
        "invalid_credentials",
        401,
        "Invalid credentials",
        "The login and password do not match a user. On purpose, the answer does not say which half was \
         wrong, and takes the same time either way.",
        "Let the user try again. Repeated failures are throttled (`rate_limited`); a password reset helps \
         a user who forgot.",
    ),
    p(
        "invalid_factor",
        401,
        "Invalid second factor",
        "The TOTP code or recovery code answering an MFA challenge is wrong, or was used already (a TOTP \
         code works once; a recovery code once). The attempt is recorded with outcome `wrong_factor`; a \
         few wrong answers end the challenge.",
        "Ask the user for a new code and answer the same challenge again.",
    ),
    p(
        "invalid_passkey",
        401,
        "Invalid passkey",
        "A passkey assertion did not verify: another origin, relying party or challenge, a bad \
         signature, a credential the scope does not know (or another user's), or a signature counter \
         that went back (a cloned authenticator). The attempt is recorded with outcome \
         `invalid_passkey` or `passkey_cloned`.",
        "Start the sign-in again and let the user pick a passkey registered here; a `passkey_cloned` \
         event deserves a look (remove that passkey).",
    ),
    p(
        "mfa_required",
        401,
        "Second factor required",
        "The first factor was right, and the user has a second factor. Logins answer this as a 200 \
         challenge, not as this problem; it appears only where a call cannot take a challenge.",
        "Answer the challenge at `POST /v1/sessions/mfa`.",
    ),
    p(
        "session_invalid",
        401,
        "Session invalid",
        "The session token is missing, unknown, expired (idle or absolute) or ended.",
        "Treat the user as signed out: drop the token and ask them to log in again.",
    ),
    p(
        "identity_unknown",
        403,
        "Identity unknown",
        "The provider identity is linked to no user of the scope, and the provider is configured with \
         `new_users = \"refuse\"`.",
        "Link the identity to an existing user first (a `start` with the user's `X-Session-Token`), or \
         ask the operator to allow new users.",
    ),
    p(
        "user_inactive",
        403,
        "User inactive",
        "The password was right but the user is deactivated. `login` holds the login object of the user, \
         so the application can say why.",
        "An operator or the application reactivates the user (`PATCH /v1/users/{ref}` with `active: true`).",
    ),
    p(
        "passkey_not_found",
        404,
        "Passkey not found",
        "The user has no passkey with that id (it was removed, or belongs to another user).",
        "List the user's passkeys (`GET /v1/users/{ref}/passkeys`) for their ids.",
    ),
    p(
        "provider_unknown",
        404,
        "Provider unknown",
        "No identity provider of that name is configured for the API key's scope.",
        "Use a provider name from `[scopes.NAME.oidc.PROVIDER]` in the server's configuration.",
    ),
    p(
        "not_found",
        404,
        "Not found",
        "No route has this path.",
        "Check the path against `GET /openapi.json`.",
    ),
    p(
        "user_not_found",
        404,
        "User not found",
        "No user of the key's scope has this id, username or email.",
        "Check the reference; users of other scopes are never visible.",
    ),
    p(
        "session_not_found",
        404,
        "Session not found",
        "The user has no session with this id.",
        "List the user's sessions (`GET /v1/users/{ref}/sessions`) for the ids that exist.",
    ),
    p(
        "provider_not_linked",
        404,
        "Provider not linked",
        "The user is not linked to this provider.",
        "Link it first (`PUT /v1/users/{ref}/providers/{provider}`).",
    ),
    p(
        "key_not_found",
        404,
        "API key not found",
        "No API key has this id.",
        "List the keys (`hallpass keys list`) for the ids that exist.",
    ),
    p(
        "webhook_not_found",
        404,
        "Webhook not found",
        "The scope has no webhook endpoint with this id.",
        "List the scope's endpoints (`GET /v1/webhooks`) for the ids that exist.",
    ),
    p(
        "delivery_not_found",
        404,
        "Delivery not found",
        "The webhook endpoint has no delivery with this id.",
        "List the endpoint's deliveries (`GET /v1/webhooks/{id}/deliveries`) for the ids that exist.",
    ),
    p(
        "method_not_allowed",
        405,
        "Method not allowed",
        "The path exists but not with this method. The `Allow` header lists the methods it has.",
        "Use one of the methods in `Allow`.",
    ),
    p(
        "last_login_method",
        409,
        "Last login method",
        "Removing this provider link or passkey would leave the user with no way to log in: no password, \
         no other linked identity and no other passkey.",
        "Set a password, link another provider or register another passkey first.",
    ),
    p(
        "mfa_already_enabled",
        409,
        "Second factor already enabled",
        "The user already has a confirmed TOTP; enrolling another would silently replace it.",
        "Remove it first (`DELETE /v1/users/{ref}/mfa/totp`), then enrol again.",
    ),
    p(
        "mfa_not_enabled",
        409,
        "No second factor",
        "The user has no confirmed second factor (for recovery codes), or no pending TOTP (for a \
         confirmation).",
        "Enrol a TOTP (`POST /v1/users/{ref}/mfa/totp`) and confirm it first.",
    ),
    p(
        "passkey_already_registered",
        409,
        "Passkey already registered",
        "That credential is registered in the scope already.",
        "Nothing to do: the passkey works already. To register another, use another authenticator.",
    ),
    p(
        "username_taken",
        409,
        "Username taken",
        "Another user of the scope has this username (compared after normalisation: case and Unicode \
         forms do not make a new name).",
        "Ask the user for another username.",
    ),
    p(
        "email_taken",
        409,
        "Email taken",
        "Another user of the scope has this email (compared after normalisation).",
        "Offer a login or a password reset instead of a new account.",
    ),
    p(
        "identity_taken",
        409,
        "Identity taken",
        "This provider identity is linked to another user of the scope.",
        "Sign the user in with that identity, or unlink it from the other user first.",
    ),
    p(
        "payload_too_large",
        413,
        "Payload too large",
        "The request body is over the server's limit, or one JSON field (`field`: `data` or `extra`) would \
         be over its cap. Nothing was changed.",
        "Send less. Operators set the limits: `HALLPASS_BODY_LIMIT`, `HALLPASS_MAX_SESSION_DATA_BYTES`, \
         `HALLPASS_MAX_USER_EXTRA_BYTES`.",
    ),
    p(
        "unsupported_media_type",
        415,
        "Unsupported media type",
        "The request has a body but not `Content-Type: application/json`.",
        "Send JSON with `Content-Type: application/json`.",
    ),
    p(
        "rate_limited",
        429,
        "Rate limited",
        "Too many attempts: failed logins of an account or from an address, reset codes for one login, or \
         the API key's budget of costly calls. Nothing was checked or changed.",
        "Wait the seconds of the `Retry-After` header, then try again. A user's own device (the `device` \
         token of an earlier login) keeps its attempts while others are throttled.",
    ),
    p(
        "internal",
        500,
        "Internal error",
        "The server failed to answer. The cause is in the server's log, never in the answer.",
        "Retry later; operators find the cause in the log by the answer's `X-Request-Id`.",
    ),
    p(
        "provider_failed",
        502,
        "Provider failed",
        "The identity provider could not be used: its discovery document or keys could not be fetched.",
        "Retry later; operators: check the provider's `issuer` and the server's network access to it \
         (the log says what failed).",
    ),
    p(
        "overloaded",
        503,
        "Overloaded",
        "Too many password hashes wait already (logins, registrations, password changes); this one was \
         refused before any work was done.",
        "Retry after `Retry-After` (1 s). Operators: more CPUs, or `HALLPASS_HASH_QUEUE_LIMIT`.",
    ),
    p(
        "storage_unavailable",
        503,
        "Storage unavailable",
        "The database could not be reached or answered too slowly. Nothing was changed by this request.",
        "Retry after `Retry-After`. Operators: see `GET /readyz` and the server's log.",
    ),
];

/// The problem type of `code`.
pub fn find(code: &str) -> Option<&'static ProblemType> {
    CATALOG.iter().find(|p| p.code == code)
}

/// Whether the client asked for JSON rather than a page.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// `code` spans of backticks as `<code>`.
fn prose(s: &str) -> String {
    escape(s)
        .split('`')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { format!("<code>{part}</code>") } else { part.to_owned() })
        .collect()
}

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · hallpass</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:42rem;\
         margin:2rem auto;padding:0 1rem;color:#1a1a1a}}code{{background:#f1f1f1;padding:0 .2em;\
         border-radius:3px;overflow-wrap:anywhere}}dt{{font-weight:600;margin-top:1rem}}</style></head>\
         <body>{body}</body></html>\n",
        escape(title)
    );
    let mut res = axum::response::Html(html).into_response();
    res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    res
}

/// `GET /problems`: every problem type.
pub async fn index(headers: HeaderMap) -> Response {
    if wants_json(&headers) {
        return axum::Json(CATALOG).into_response();
    }
    let mut body = String::from(
        "<h1>Problem types</h1><p>Every error of the hallpass API is a problem document \
         (<code>application/problem+json</code>) with a stable <code>code</code>; its <code>type</code> \
         links to the page of that code.</p><ul>",
    );
    for p in CATALOG {
        body.push_str(&format!(
            "<li><a href=\"/problems/{0}\"><code>{0}</code></a> ({1}): {2}</li>",
            p.code,
            p.status,
            escape(p.title)
        ));
    }
    body.push_str("</ul>");
    page("Problem types", &body)
}

/// `GET /problems/{code}`: one problem type; 404 `not_found` for a code that is none.
pub async fn show(Path(code): Path<String>, headers: HeaderMap) -> Response {
    let Some(p) = find(&code) else { return ApiError::not_found().into_response() };
    if wants_json(&headers) {
        return axum::Json(p).into_response();
    }
    let body = format!(
        "<p><a href=\"/problems\">Problem types</a></p><h1>{title}</h1>\
         <dl><dt>code</dt><dd><code>{code}</code></dd><dt>status</dt><dd>{status}</dd>\
         <dt>What it means</dt><dd>{meaning}</dd><dt>What to do</dt><dd>{remedy}</dd></dl>",
        title = escape(p.title),
        code = p.code,
        status = p.status,
        meaning = prose(p.meaning),
        remedy = prose(p.remedy),
    );
    page(p.title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_sorted_by_status() {
        let mut seen = std::collections::BTreeSet::new();
        for p in CATALOG {
            assert!(seen.insert(p.code), "{} twice", p.code);
            assert!(p.code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", p.code);
        }
        assert!(CATALOG.windows(2).all(|w| w[0].status <= w[1].status));
    }

    #[test]
    fn prose_escapes_and_marks_code() {
        assert_eq!(prose("a `<b>` & c"), "a <code>&lt;b&gt;</code> &amp; c");
    }
}
