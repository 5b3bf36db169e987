//! The frame of the OpenAPI 3.1 document: title, tags, the bearer security scheme, the
//! problem schema and the error responses every `/v1` operation shares.
//!
//! Operations themselves are described where they are handled (`#[utoipa::path]` on each
//! handler) and collected by the router in `http::api_routes`, so the document and the
//! routes cannot drift apart.

use crate::http::error::Problem;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};

/// The name of the security scheme of API keys.
pub const BEARER: &str = "bearer";

/// The static part of the document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "hallpass",
        description = "User accounts and login sessions for applications.\n\n\
            Every `/v1` call authenticates with an API key (`Authorization: Bearer <key>`); the \
            key's scope is the only scope the call can see. Errors are \
            `application/problem+json` (RFC 9457) with a stable `code`. Request bodies must be \
            JSON (`Content-Type: application/json`, else 415), at most the configured limit \
            (default 64 KiB, else 413), and may not carry unknown fields (400). Unknown query \
            parameters are refused the same way. A user is named in paths by `{ref}`: its id, \
            its username or its email. Timestamps are RFC 3339 in UTC; a provider's \
            `access_token_expiry` is Unix seconds.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&SecurityAddon),
    components(
        schemas(Problem),
        responses(
            InvalidRequest,
            Unauthorized,
            PayloadTooLarge,
            UnsupportedMediaType,
            UserNotFound,
            SessionInvalid,
            Internal,
            RateLimited,
            StorageUnavailable
        )
    ),
    tags(
        (name = "users", description = "Registering, reading, changing and deleting users"),
        (name = "sessions", description = "Logging in, checking, freshening and ending sessions"),
        (name = "password-resets", description = "Reset codes and their redemption"),
        (name = "mail", description = "Email confirmation and sign-in by emailed code (needs `HALLPASS_SMTP_URL`)"),
        (name = "providers", description = "Links of users to OAuth/OIDC provider identities"),
        (name = "oidc", description = "Sign-in through an identity provider, hallpass doing the redirect dance"),
        (name = "mfa", description = "Second factors: TOTP and recovery codes"),
        (name = "passkeys", description = "Passkeys (WebAuthn): registration, list, rename, removal, passwordless sign-in"),
        (name = "activity", description = "Login history and statistics"),
        (name = "webhooks", description = "Signed, retried deliveries of account events to the scope's endpoints (Standard Webhooks)"),
        (name = "operations", description = "Probes and this document; no API key needed")
    )
)]
pub struct ApiDoc;

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key made by `hallpass keys create`; it reaches one scope."))
                    .build(),
            ),
        );
    }
}

/// Every call made with an API key may answer 429 `rate_limited` (the key's request
/// budget), so each operation that takes one lists it. Applied by `http::openapi` once
/// the routes' paths are merged in.
pub(crate) struct RateLimitAddon;

impl Modify for RateLimitAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Ref, RefOr};
        for item in openapi.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    op.responses
                        .responses
                        .entry("429".to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name("RateLimited")));
                }
            }
        }
    }
}

/// `invalid_request`: a malformed body, path or query; the detail names the field.
#[derive(ToResponse)]
#[response(
    description = "`invalid_request`: a malformed or unknown field, path or query parameter; the detail names it",
    content_type = "application/problem+json"
)]
pub struct InvalidRequest(pub Problem);

/// `unauthorized`: no API key or a wrong one.
#[derive(ToResponse)]
#[response(
    description = "`unauthorized`: no API key, or a wrong or revoked one",
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "`Bearer`"))
)]
pub struct Unauthorized(pub Problem);

/// `payload_too_large`.
#[derive(ToResponse)]
#[response(
    description = "`payload_too_large`: the body is over the limit (default 64 KiB), or a JSON field \
                   would be over its cap (session `data` 16 KiB, a user's `extra` 64 KiB by default, \
                   in bytes of compact JSON; `field` names it). Nothing was changed.",
    content_type = "application/problem+json"
)]
pub struct PayloadTooLarge(pub Problem);

/// `unsupported_media_type`.
#[derive(ToResponse)]
#[response(
    description = "`unsupported_media_type`: the body was not sent as JSON",
    content_type = "application/problem+json"
)]
pub struct UnsupportedMediaType(pub Problem);

/// `user_not_found`.
#[derive(ToResponse)]
#[response(
    description = "`user_not_found`: no user of the scope has that id, username or email",
    content_type = "application/problem+json"
)]
pub struct UserNotFound(pub Problem);

/// `session_invalid`.
#[derive(ToResponse)]
#[response(
    description = "`session_invalid`: the token is missing, unknown, expired or ended, or its user was deactivated",
    content_type = "application/problem+json"
)]
pub struct SessionInvalid(pub Problem);

/// `internal`.
#[derive(ToResponse)]
#[response(
    description = "`internal`: a bug; the cause is logged, never sent",
    content_type = "application/problem+json"
)]
pub struct Internal(pub Problem);

/// `rate_limited`.
#[derive(ToResponse)]
#[response(
    description = "`rate_limited`: too many failed attempts (for the account, the client IP or the API key); \
                   retry after `Retry-After` seconds",
    content_type = "application/problem+json",
    headers(("Retry-After" = String, description = "Seconds to wait before the next attempt can succeed"))
)]
pub struct RateLimited(pub Problem);

/// `storage_unavailable`.
#[derive(ToResponse)]
#[response(
    description = "`storage_unavailable`: the database cannot be reached; or `overloaded`: too many password hashes wait already (logins, registrations, password changes); retry",
    content_type = "application/problem+json",
    headers(("Retry-After" = String, description = "Seconds to wait: `1`"))
)]
pub struct StorageUnavailable(pub Problem);
