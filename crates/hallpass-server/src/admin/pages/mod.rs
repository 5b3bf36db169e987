//! The admin pages: one handler per route, each with its view model (plain strings and
//! numbers, formatted here so the templates stay simple). A GET renders; a POST checks
//! the CSRF token first, acts through the service, writes an audit entry, then redirects
//! (POST/redirect/GET) or re-renders the form with the error and a 4xx status.
//!
//! One file per page group (`login.rs`, `dashboard.rs`, `users.rs`, `user.rs`, `keys.rs`,
//! `outbox.rs`, `webhooks.rs`, `audit.rs`); this file holds what they share: the page frame ([`Layout`]), formatting
//! helpers and the forms and queries every page reads.

mod account;
mod audit;
mod dashboard;
mod keys;
mod login;
mod outbox;
mod user;
mod users;
mod webhooks;

pub(crate) use account::*;
pub(crate) use audit::*;
pub(crate) use dashboard::*;
pub(crate) use keys::*;
pub(crate) use login::*;
pub(crate) use outbox::*;
pub(crate) use user::*;
pub(crate) use users::*;
pub(crate) use webhooks::*;

use super::{Admin, ClientIp, NewKey, PageError, chart, outcome_words, path_id, render, scope_of};
use crate::app::AppState;
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hallpass_core::service::{Credentials, LoginRequest};
use hallpass_core::{
    ClientInfo, DeviceToken, Error, Group, JsonObject, Password, Scope, User, UserFilter, UserPatch, UserRef,
};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::macros::format_description;
use uuid::Uuid;

/// Days the dashboard chart spans.
const CHART_DAYS: u32 = 30;
/// Users per page of the user list.
const USERS_PAGE: u32 = 25;

/// What every page's frame needs.
pub(crate) struct Layout {
    /// The page title.
    pub title: String,
    /// The signed-in admin (no navigation without one).
    pub admin: Option<String>,
    /// The CSRF token for the logout form.
    pub csrf: String,
    /// Which navigation entry is current.
    pub active: &'static str,
    /// A message about the last action, if any.
    pub notice: Option<&'static str>,
}

impl Layout {
    /// A frame without navigation (login and error pages).
    pub fn bare(title: &str) -> Self {
        Self { title: title.to_owned(), admin: None, csrf: String::new(), active: "", notice: None }
    }
    /// The frame of an error page shown to a signed-in admin: navigation kept.
    pub fn error(admin: String, csrf: String) -> Self {
        Self { title: "Error".into(), admin: Some(admin), csrf, active: "", notice: None }
    }
    fn new(admin: &Admin, title: impl Into<String>, active: &'static str, notice: Option<&str>) -> Self {
        Self {
            title: title.into(),
            admin: Some(admin.username.clone()),
            csrf: admin.csrf.clone(),
            active,
            notice: notice.and_then(notice_text),
        }
    }
}

/// The sentence for a `?notice=` left by a redirect (only known codes are shown).
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "saved" => "Changes saved.",
        "activated" => "The user is active again.",
        "deactivated" => "The user is deactivated; every session of the user has ended.",
        "password" => "Password set; every session of the user has ended.",
        "session" => "The session has ended.",
        "sessions" => "Every session of the user has ended.",
        "factors" => "The user's second factors are removed; every session of the user has ended.",
        "revoked" => "The API key is revoked.",
        "retried" => "The mail is queued again; it is sent within seconds.",
        "webhook-retried" => "The delivery is queued again; it is sent within seconds.",
        "webhook-deleted" => "The webhook endpoint and its deliveries are deleted.",
        "webhook-shown" => {
            "That secret was shown once and is not shown again; if it was not copied, rotate the secret."
        }
        "signed-out" => "You are signed out.",
        "own-factors" => "Your second factors are removed; your other sessions have ended.",
        "passkey-added" => "Passkey added; your other sessions have ended.",
        "passkey-removed" => "Passkey removed; your other sessions have ended.",
        "shown" => {
            "That new key was shown once and is not shown again; if it was not copied, revoke it and create another."
        }
        _ => return None,
    })
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second]")).unwrap_or_default()
}

fn fmt_day(t: OffsetDateTime) -> String {
    t.format(format_description!("[year]-[month]-[day]")).unwrap_or_default()
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An id short enough for a table cell on a phone: its last eight hex digits. The first
/// ones of a UUIDv7 are its creation time, alike for ids made in the same minute; the last
/// ones are random. The full id is on the confirmation page and in the audit trail's link.
fn short_id(id: &str) -> String {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    format!("…{}", &hex[hex.len().saturating_sub(8)..])
}

/// A confirmation page: what a destructive form will do, and the same form again with
/// `confirm=yes`, which is the only one that acts. Without script this is the way to ask.
#[derive(Template)]
#[template(path = "admin/confirm.html")]
pub(crate) struct ConfirmPage {
    l: Layout,
    heading: String,
    consequences: Vec<String>,
    action: String,
    fields: Vec<(String, String)>,
    button: String,
    cancel: String,
}

/// Whether a destructive form came from its confirmation page.
fn confirmed(confirm: &Option<String>) -> bool {
    confirm.as_deref() == Some("yes")
}

#[allow(clippy::too_many_arguments)]
fn confirm_page(
    admin: &Admin,
    heading: String,
    consequences: Vec<String>,
    action: String,
    fields: Vec<(&str, String)>,
    button: &str,
    cancel: String,
) -> Response {
    let page = ConfirmPage {
        l: Layout::new(admin, heading.clone(), "", None),
        heading,
        consequences,
        action,
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        button: button.to_owned(),
        cancel,
    };
    render(StatusCode::OK, &page)
}

fn see_other(to: String) -> Response {
    Redirect::to(&to).into_response()
}

/// What every form posts besides its fields.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct NoticeQuery {
    notice: Option<String>,
}

pub(crate) struct ScopeRow {
    scope: String,
    users: u64,
    active_users: u64,
    live_sessions: u64,
    api_keys: u64,
    logins: u64,
    failed: u64,
}

fn user_href(u: &User) -> String {
    format!("/admin/users/{}/{}", u.scope, u.id)
}
