//! The signed-in admin's own account: second factors for the admin's sign-in. An
//! authenticator app (TOTP: the secret shown once as a QR code and text, confirmed by a
//! first code, then ten recovery codes shown once), new recovery codes, passkeys (added
//! through `passkey.js`, listed, removed) and removing every factor. Every change is
//! audited, ends the admin's other sessions and keeps this one (as the API does for a
//! user's own session).
//!
//! Secrets (the TOTP secret, recovery codes) appear only in the answer to the POST that
//! made them, never in a URL or a page a GET shows; the answers are `no-store`.

use super::*;
use hallpass_core::FlowHandle;

pub(crate) struct PasskeyRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
    synced: bool,
}

#[derive(Template)]
#[template(path = "admin/account.html")]
pub(crate) struct AccountPage {
    l: Layout,
    /// `on`, `pending` or `off`.
    totp: &'static str,
    recovery_codes: u32,
    passkeys: Vec<PasskeyRow>,
    /// Passkeys work at this address.
    passkeys_here: bool,
    /// Passkeys are configured at all (a relying party for the admin scope).
    passkeys_configured: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/totp.html")]
pub(crate) struct TotpPage {
    l: Layout,
    secret: String,
    uri: String,
    /// The QR code of `uri`, an SVG `data:` URL.
    qr: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/codes.html")]
pub(crate) struct CodesPage {
    l: Layout,
    heading: &'static str,
    codes: Vec<String>,
}

fn me(admin: &Admin) -> UserRef {
    UserRef::Id(admin.user_id)
}

/// The QR code of an `otpauth://` URI as an SVG `data:` URL (the CSP allows `data:`
/// images and nothing else foreign).
fn qr_svg(uri: &str) -> String {
    use base64::Engine as _;
    let Ok(code) = qrcode::QrCode::new(uri.as_bytes()) else { return String::new() };
    let svg =
        code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build();
    format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg))
}

async fn account_page(
    state: &AppState,
    admin: &Admin,
    headers: &HeaderMap,
    notice: Option<&str>,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let admin_scope = Scope::admin();
    let mfa = state.service.mfa_state(&admin_scope, &me(admin)).await?;
    let passkeys = state
        .service
        .list_passkeys(&admin_scope, &me(admin))
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            id: p.id.to_string(),
            name: p.name,
            created: fmt_time(p.created_at),
            last_used: p.last_used_at.map(fmt_time).unwrap_or_else(|| "never".into()),
            synced: p.backup_state,
        })
        .collect();
    let totp = match &mfa.totp {
        Some(t) if t.confirmed => "on",
        Some(_) => "pending",
        None => "off",
    };
    let here = passkeys_here(state, headers);
    let page = AccountPage {
        l: Layout::new(admin, "Your account", "account", notice),
        totp,
        recovery_codes: mfa.recovery_codes,
        passkeys,
        passkeys_here: here,
        passkeys_configured: state.service.scope_settings(&admin_scope).webauthn.is_some(),
        error,
    };
    let res = render(status, &page);
    Ok(crate::admin::with_passkey_script(res, here))
}

pub(crate) async fn account(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    account_page(&state, &admin, &headers, q.notice.as_deref(), StatusCode::OK, None).await
}

/// Starts enrolling an authenticator app: a new pending secret, shown once with its QR
/// code and the form for the first code. An earlier pending secret is replaced.
pub(crate) async fn totp_start(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let enrolment = state.service.enrol_totp(&Scope::admin(), &me(&admin)).await?;
    let page = TotpPage {
        l: Layout::new(&admin, "Set up an authenticator app", "account", None),
        qr: qr_svg(&enrolment.otpauth_uri),
        secret: enrolment.secret.clone(),
        uri: enrolment.otpauth_uri.clone(),
        error: None,
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub(crate) struct TotpConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    /// The pending secret and its URI, as the enrolment page showed them: drawn again
    /// when the first code was wrong (the admin's own browser sent them; nothing stored
    /// is read from them).
    #[serde(default)]
    secret: String,
    #[serde(default)]
    uri: String,
}

/// Confirms the authenticator app with its first code: the app is on, the admin's other
/// sessions end, and the ten recovery codes are shown, once.
pub(crate) async fn totp_confirm(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<TotpConfirmForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let code: String = form.code.split_whitespace().collect();
    match state.service.confirm_totp(&Scope::admin(), &me(&admin), &code, Some(admin.session_id)).await {
        Ok(codes) => {
            state.service.audit(&admin.username, "admin_totp_enrol", None, None, JsonObject::new()).await?;
            let page = CodesPage {
                l: Layout::new(&admin, "Authenticator app on", "account", None),
                heading: "Your authenticator app is on",
                codes,
            };
            Ok(render(StatusCode::OK, &page))
        }
        Err(Error::InvalidCode | Error::InvalidFactor | Error::Invalid(_)) => {
            let uri = form.uri.chars().take(512).collect::<String>();
            let page = TotpPage {
                l: Layout::new(&admin, "Set up an authenticator app", "account", None),
                qr: if uri.starts_with("otpauth://") { qr_svg(&uri) } else { String::new() },
                secret: form.secret.chars().take(128).collect(),
                uri,
                error: Some(
                    "That code did not match. Check the device's clock and enter the current code.".into(),
                ),
            };
            Ok(render(StatusCode::BAD_REQUEST, &page))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    confirm: Option<String>,
}

/// New recovery codes (after a confirmation page): the old set stops working.
pub(crate) async fn new_recovery_codes(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    if !confirmed(&form.confirm) {
        return Ok(confirm_page(
            &admin,
            "Make new recovery codes?".into(),
            vec![
                "Ten new recovery codes are shown once.".into(),
                "Every recovery code you have now stops working.".into(),
            ],
            "/admin/account/recovery-codes".into(),
            vec![],
            "Make new codes",
            "/admin/account".into(),
        ));
    }
    let codes = state.service.regenerate_recovery_codes(&Scope::admin(), &me(&admin)).await?;
    state.service.audit(&admin.username, "admin_recovery_codes", None, None, JsonObject::new()).await?;
    let page = CodesPage {
        l: Layout::new(&admin, "New recovery codes", "account", None),
        heading: "New recovery codes",
        codes,
    };
    Ok(render(StatusCode::OK, &page))
}

/// Removes every second factor of the admin's own account (after a confirmation page);
/// the other sessions end, this one stays.
pub(crate) async fn remove_own_factors(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    if !confirmed(&form.confirm) {
        return Ok(confirm_page(
            &admin,
            "Remove your second factors?".into(),
            vec![
                "Your authenticator app, recovery codes and passkeys are removed.".into(),
                "You sign in with your password alone until you add one again.".into(),
                "Your other sessions end; this one stays.".into(),
            ],
            "/admin/account/factors/remove".into(),
            vec![],
            "Remove second factors",
            "/admin/account".into(),
        ));
    }
    let removed = state.service.remove_mfa(&Scope::admin(), &me(&admin), Some(admin.session_id)).await?;
    let detail = json!({"removed": removed}).as_object().cloned().unwrap_or_default();
    state.service.audit(&admin.username, "admin_mfa_remove", None, None, detail).await?;
    Ok(see_other("/admin/account?notice=own-factors".into()))
}

/// Starts adding a passkey: `{flow, options}` for `navigator.credentials.create`. Called
/// by `passkey.js` with the form's CSRF token.
pub(crate) async fn passkey_register_start(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let ceremony = state.service.start_passkey_registration(&Scope::admin(), &me(&admin)).await?;
    Ok(axum::Json(json!({"flow": ceremony.flow.expose(), "options": ceremony.options})).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasskeyRegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    flow: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    name: String,
}

/// Finishes adding a passkey with the authenticator's answer.
pub(crate) async fn passkey_register(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Form(form): Form<PasskeyRegisterForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let refused = |words: &str| {
        account_page(&state, &admin, &headers, None, StatusCode::BAD_REQUEST, Some(words.to_owned()))
    };
    let Ok(credential) = serde_json::from_str(&form.credential) else {
        return refused("The authenticator's answer did not arrive; try again.").await;
    };
    let name = form.name.trim();
    let name = (!name.is_empty()).then_some(name);
    let flow = FlowHandle::from_presented(&form.flow);
    let added = state
        .service
        .finish_passkey_registration(
            &Scope::admin(),
            &me(&admin),
            &flow,
            credential,
            name,
            Some(admin.session_id),
        )
        .await;
    match added {
        Ok(passkey) => {
            let detail = json!({"passkey_id": passkey.id, "name": passkey.name})
                .as_object()
                .cloned()
                .unwrap_or_default();
            state.service.audit(&admin.username, "admin_passkey_add", None, None, detail).await?;
            Ok(see_other("/admin/account?notice=passkey-added".into()))
        }
        Err(Error::InvalidChallenge) => refused("Adding the passkey took too long; try again.").await,
        Err(Error::InvalidPasskey) => {
            refused("The authenticator's answer did not verify; nothing was added.").await
        }
        Err(Error::Invalid(i)) => refused(&i.to_string()).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasskeyDeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    confirm: Option<String>,
}

/// Removes one of the admin's passkeys (after a confirmation page).
pub(crate) async fn passkey_delete(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<PasskeyDeleteForm>,
) -> Result<Response, PageError> {
    admin.check_csrf(&form.csrf)?;
    let id = Uuid::parse_str(&form.id)
        .map_err(|_| PageError::Status(StatusCode::NOT_FOUND, "No such passkey.".into()))?;
    let passkeys = state.service.list_passkeys(&Scope::admin(), &me(&admin)).await?;
    let Some(passkey) = passkeys.iter().find(|p| p.id == id) else {
        return Err(PageError::Status(StatusCode::NOT_FOUND, "No such passkey.".into()));
    };
    if !confirmed(&form.confirm) {
        return Ok(confirm_page(
            &admin,
            format!("Remove the passkey “{}”?", passkey.name),
            vec![
                "It no longer signs you in here (the authenticator may still list it; remove it there too)."
                    .into(),
                "Your other sessions end; this one stays.".into(),
            ],
            "/admin/account/passkeys/delete".into(),
            vec![("id", id.to_string())],
            "Remove passkey",
            "/admin/account".into(),
        ));
    }
    state.service.delete_passkey(&Scope::admin(), &me(&admin), id, Some(admin.session_id)).await?;
    let detail = json!({"passkey_id": id, "name": passkey.name}).as_object().cloned().unwrap_or_default();
    state.service.audit(&admin.username, "admin_passkey_remove", None, None, detail).await?;
    Ok(see_other("/admin/account?notice=passkey-removed".into()))
}
