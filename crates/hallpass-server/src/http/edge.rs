//! The edge of every request: its id, its span and log line, and its metrics, in one
//! layer.
//!
//! One layer instead of four (tower-http's `SetRequestId`, `Trace` and `PropagateRequestId`
//! plus a `from_fn` metrics middleware): axum clones a route's whole layer stack for each
//! request, and each of those layers cost a clone, a boxed future or a system call for a
//! random request id. On get-session, the hot path, they were about a third of the
//! server's own instructions (callgrind, see bench/README.md "Profile").
//!
//! What it does, in order:
//! - keeps the client's `X-Request-Id`, or makes one: a random per-process prefix and a
//!   counter, shaped as a UUID (unique, not secret, no system call);
//! - opens the `request` span (method, route template, request id; `scope` and `key_id`
//!   are filled in by the API-key extractor) and polls the handler inside it;
//! - on the answer: counts it in [`Metrics`] by route template, method and status, logs
//!   `finished processing request` at INFO (5xx: `response failed` at ERROR), and sets
//!   the request id on the answer.

use crate::metrics::{Metrics, UNMATCHED};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::response::Response;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

/// The request id header.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A fresh request id: 36 characters shaped as a UUID (version 4 bits set), unique within
/// the process by its counter and across processes by its random prefix.
fn new_request_id() -> HeaderValue {
    static PREFIX: std::sync::OnceLock<[u8; 8]> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or([0; 8]));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(prefix);
    bytes[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = id.hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The layer; see the module docs.
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    metrics: Arc<Metrics>,
}

impl EdgeLayer {
    /// Counts into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge { inner, metrics: Arc::clone(&self.metrics) }
    }
}

/// The service of [`EdgeLayer`].
#[derive(Debug, Clone)]
pub struct Edge<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> tower::Service<Request> for Edge<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let start = Instant::now();
        let id = match req.headers().get(X_REQUEST_ID) {
            Some(given) => given.clone(),
            None => {
                let made = new_request_id();
                req.headers_mut().insert(X_REQUEST_ID, made.clone());
                made
            }
        };
        let method = req.method().clone();
        let route = req.extensions().get::<MatchedPath>().cloned();
        let span = tracing::info_span!(
            "request",
            method = %method,
            path = %route.as_ref().map_or("<unmatched>", MatchedPath::as_str),
            request_id = %id.to_str().unwrap_or(""),
            scope = tracing::field::Empty,
            key_id = tracing::field::Empty,
        );
        let inner = span.in_scope(|| self.inner.call(req));
        EdgeFuture {
            inner,
            done: Some(Done { span, start, method, route, id, metrics: Arc::clone(&self.metrics) }),
        }
    }
}

/// What the answer needs from the request.
struct Done {
    span: tracing::Span,
    start: Instant,
    method: Method,
    route: Option<MatchedPath>,
    id: HeaderValue,
    metrics: Arc<Metrics>,
}

impl Done {
    fn finish(self, mut res: Response) -> Response {
        let latency = self.start.elapsed();
        let status = res.status();
        let route = self.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
        self.metrics.request(&self.method, route, status, latency);
        self.span.in_scope(|| {
            let latency_ms = latency.as_secs_f64() * 1000.0;
            if status.is_server_error() {
                tracing::error!(latency_ms, status = status.as_u16(), "response failed");
            } else {
                tracing::info!(latency_ms, status = status.as_u16(), "finished processing request");
            }
        });
        if !res.headers().contains_key(X_REQUEST_ID) {
            res.headers_mut().insert(X_REQUEST_ID, self.id);
        }
        res
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Edge`].
    pub struct EdgeFuture<F> {
        #[pin]
        inner: F,
        done: Option<Done>,
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = match this.done {
            Some(done) => done.span.in_scope(|| this.inner.poll(cx)),
            None => this.inner.poll(cx),
        };
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(res)) => Poll::Ready(Ok(match this.done.take() {
                Some(done) => done.finish(res),
                None => res,
            })),
            Poll::Ready(Err(never)) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_shaped_and_unique() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        for id in [a, b] {
            let text = id.to_str().unwrap();
            let parsed = uuid::Uuid::parse_str(text).unwrap();
            assert_eq!(parsed.get_version_num(), 4, "{text}");
        }
    }
}
