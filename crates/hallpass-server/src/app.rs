//! The application as one value: [`AppState`], what every handler of the API, the admin
//! page and `GET /metrics` shares, and [`build_app`], which assembles the API's routes
//! ([`crate::http`]), the admin page ([`crate::admin`]) and the outer layers (body limit,
//! the edge layer of request ids, logs and metrics) into the [`axum::Router`] that
//! `axum::serve` runs; tests start exactly that on port 0.
//!
//! It lives apart from `http` so that `http`, `admin` and `metrics` each depend on the
//! state here rather than on one another.

use crate::metrics::Metrics;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use hallpass_core::Hallpass;
use std::sync::Arc;

/// Default largest request body, in bytes.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The account and session service.
    pub service: Arc<Hallpass>,
    /// Largest accepted request body in bytes (default [`DEFAULT_BODY_LIMIT`]).
    pub body_limit: usize,
    /// What `GET /metrics` renders; one per app (`Default::default()` makes a fresh one).
    /// For storage metrics, the service's store is wrapped with
    /// [`StoreMetrics`](crate::metrics::StoreMetrics) on this same value (see `serve.rs`).
    pub metrics: Arc<Metrics>,
    /// How the admin web page sets its cookie and checks `Origin`.
    pub admin: crate::admin::AdminOptions,
    /// The identity providers of every scope (`Default::default()`: none).
    pub oidc: Arc<crate::oidc::Oidc>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("body_limit", &self.body_limit).finish_non_exhaustive()
    }
}

/// The whole application: every route and layer, ready for `axum::serve`.
pub fn build_app(state: AppState) -> Router {
    // One `layer` call for the three outer layers: axum wraps every route in a boxed,
    // cloned-per-request service for each call, so three calls cost three allocations and
    // three boxed futures on every request (see bench/README.md "Profile").
    let outer = tower::ServiceBuilder::new()
        // Outermost: it counts and logs the status the client gets, and answers a
        // panicking handler with a 500 problem.
        .layer(crate::http::edge::EdgeLayer::new(state.metrics.clone(), crate::http::on_panic))
        .layer(DefaultBodyLimit::max(state.body_limit))
        // Every error answer a framework layer makes becomes a problem document (the
        // admin pages' own HTML error pages pass through).
        .layer(tower::util::MapResponseLayer::new(crate::http::problem_safety_net as fn(_) -> _));
    crate::http::api_router()
        .merge(crate::admin::router(&state))
        // The pages behind mail links: HTML, and a GET never uses a code.
        .merge(crate::pages::router())
        .layer(outer)
        .with_state(state)
}
