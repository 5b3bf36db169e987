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
//! - marks `Authorization` and `X-Session-Token` sensitive, so no `Debug` of the request
//!   ever prints them;
//! - keeps the client's `X-Request-Id` when it is a short id of safe characters
//!   ([`is_acceptable_request_id`]), else makes one: a random per-process prefix and a
//!   counter, shaped as a UUID (unique, not secret, no system call). A refused id is
//!   neither echoed nor logged (it could be 300 KB long on an unauthenticated route, or
//!   forge fields in a text log line with spaces and `=`);
//! - opens the `request` span (method, route template, request id; `scope` and `key_id`
//!   are filled in by the API-key extractor; at DEBUG for a routine read, so that at the
//!   default level it costs nothing) and polls the handler inside it, catching a
//!   panic of the handler into the answer of [`EdgeLayer::new`]'s `on_panic` (a 500
//!   problem; the process and the connection live on);
//! - on the answer: counts it in [`Metrics`] by route template, method and status, logs
//!   `finished processing request` at INFO (a successful read or freshen at DEBUG, see
//!   `is_routine`; 5xx: `response failed` at ERROR), and sets the request id on the
//!   answer.

use crate::metrics::{Metrics, UNMATCHED};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::response::Response;
use std::convert::Infallible;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

/// The request id header.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id a client may set, in bytes: room for a UUID (36), a ULID (26), a W3C
/// `traceparent` (55) or 32 bytes in hex (64), small enough for every log line to carry.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// Whether a client's `X-Request-Id` is kept: 1 to [`MAX_REQUEST_ID_LEN`] characters of
/// `A-Z a-z 0-9 . _ : -`. No space, quote, `=`, `,` or control character, so the id cannot
/// split or forge a field of a text log line (`request_id=...`), nor need escaping in one.
pub fn is_acceptable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=MAX_REQUEST_ID_LEN).contains(&bytes.len())
        && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

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

/// Makes the answer to a request whose handler panicked.
pub type OnPanic = fn(Box<dyn std::any::Any + Send + 'static>) -> Response;

/// The headers whose values are secrets.
const SENSITIVE: [HeaderName; 2] =
    [axum::http::header::AUTHORIZATION, HeaderName::from_static(crate::http::extract::SESSION_TOKEN_HEADER)];

/// The layer; see the module docs.
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    metrics: Arc<Metrics>,
    on_panic: OnPanic,
}

impl EdgeLayer {
    /// Counts into `metrics`; a panicking handler is answered by `on_panic`.
    pub fn new(metrics: Arc<Metrics>, on_panic: OnPanic) -> Self {
        Self { metrics, on_panic }
    }
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge { inner, metrics: Arc::clone(&self.metrics), on_panic: self.on_panic }
    }
}

/// The service of [`EdgeLayer`].
#[derive(Debug, Clone)]
pub struct Edge<S> {
    inner: S,
    metrics: Arc<Metrics>,
    on_panic: OnPanic,
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
        for name in SENSITIVE {
            if let axum::http::header::Entry::Occupied(mut entry) = req.headers_mut().entry(name) {
                entry.iter_mut().for_each(|v| v.set_sensitive(true));
            }
        }
        let id = match req.headers().get(X_REQUEST_ID) {
            Some(given) if is_acceptable_request_id(given) => given.clone(),
            // Absent or refused: the handler, the log and the answer see a fresh one.
            _ => {
                let made = new_request_id();
                req.headers_mut().insert(X_REQUEST_ID, made.clone());
                made
            }
        };
        let method = req.method().clone();
        let route = req.extensions().get::<MatchedPath>().cloned();
        let path = route.as_ref().map_or("<unmatched>", MatchedPath::as_str);
        // A routine request's span is at DEBUG: at the default level it is never built
        // (formatting its fields on every session check cost more than the check's own
        // store read); the line of a routine request that fails names it itself.
        let span = if is_routine(&method, path) {
            tracing::debug_span!(
                "request",
                method = %method,
                path = %path,
                request_id = %id.to_str().unwrap_or(""),
                scope = tracing::field::Empty,
                key_id = tracing::field::Empty,
            )
        } else {
            tracing::info_span!(
                "request",
                method = %method,
                path = %path,
                request_id = %id.to_str().unwrap_or(""),
                scope = tracing::field::Empty,
                key_id = tracing::field::Empty,
            )
        };
        let called = span.in_scope(|| catch_unwind(AssertUnwindSafe(|| self.inner.call(req))));
        let (inner, panicked) = match called {
            Ok(future) => (Some(future), None),
            Err(cause) => (None, Some((self.on_panic)(cause))),
        };
        EdgeFuture {
            inner,
            panicked,
            on_panic: self.on_panic,
            done: Some(Done { span, start, method, route, id, metrics: Arc::clone(&self.metrics) }),
        }
    }
}

/// Whether a *successful* answer to this request is logged at DEBUG instead of INFO: reads
/// (GET, HEAD) and freshening a session. These are the calls a backend makes on every
/// request of its own; at tens of thousands a second a line each would cost more than the
/// answer (and fill the disk) while telling an operator nothing `/metrics` does not count
/// exactly, per route and status. Not sampled: a sampled line cannot be found when needed,
/// a count can. Every change, every refusal (4xx) and every failure (5xx) stays at INFO or
/// above; `RUST_LOG=hallpass_server=debug` shows the reads too.
fn is_routine(method: &Method, route: &str) -> bool {
    matches!(*method, Method::GET | Method::HEAD) || route == "/v1/session/freshen"
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
        let latency_ms = latency.as_secs_f64() * 1000.0;
        let status_code = status.as_u16();
        if self.span.is_disabled() {
            // A routine request (its span off at this level): only a refusal or a failure
            // is logged, and the line says which request it was.
            let request_id = self.id.to_str().unwrap_or("");
            let method = self.method.as_str();
            if status.is_server_error() {
                tracing::error!(%method, path = %route, %request_id, latency_ms, status = status_code, "response failed");
            } else if !status.is_success() {
                tracing::info!(
                    %method,
                    path = %route,
                    %request_id,
                    latency_ms,
                    status = status_code,
                    "finished processing request"
                );
            }
        } else {
            self.span.in_scope(|| {
                if status.is_server_error() {
                    tracing::error!(latency_ms, status = status_code, "response failed");
                } else if status.is_success() && is_routine(&self.method, route) {
                    tracing::debug!(latency_ms, status = status_code, "finished processing request");
                } else {
                    tracing::info!(latency_ms, status = status_code, "finished processing request");
                }
            });
        }
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
        inner: Option<F>,
        panicked: Option<Response>,
        on_panic: OnPanic,
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
        let res = match (this.inner.as_pin_mut(), this.panicked.take()) {
            (_, Some(answer)) => answer,
            (None, None) => (this.on_panic)(Box::new("polled after completion")),
            (Some(inner), None) => {
                let on_panic = *this.on_panic;
                let poll = || match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(Ok(res))) => Poll::Ready(res),
                    Ok(Poll::Ready(Err(never))) => match never {},
                    Err(cause) => Poll::Ready(on_panic(cause)),
                };
                let polled = match this.done {
                    Some(done) => done.span.in_scope(poll),
                    None => poll(),
                };
                match polled {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(res) => res,
                }
            }
        };
        Poll::Ready(Ok(match this.done.take() {
            Some(done) => done.finish(res),
            None => res,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::response::IntoResponse as _;
    use axum::routing::get;
    use tower::ServiceExt as _;

    fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, "caught").into_response()
    }

    async fn call(
        app: &Router,
        req: axum::http::Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let res = app.clone().oneshot(req).await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn panics_become_answers_secrets_are_marked_and_ids_are_kept_or_made() {
        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        async fn sensitive(req: Request) -> String {
            let h = req.headers();
            format!("{} {}", h["authorization"].is_sensitive(), h["x-session-token"].is_sensitive())
        }
        let app = Router::new()
            .route("/boom", get(boom))
            .route("/sensitive", get(sensitive))
            .layer(EdgeLayer::new(Arc::new(Metrics::new()), on_panic));

        let (status, headers, body) =
            call(&app, axum::http::Request::get("/boom").body(Body::empty()).unwrap()).await;
        assert_eq!((status, body.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "caught"));
        assert_eq!(headers[X_REQUEST_ID].len(), 36);

        let req = axum::http::Request::get("/sensitive")
            .header("authorization", "Bearer k")
            .header("x-session-token", "t")
            .header("x-request-id", "mine-1")
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = call(&app, req).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "true true"));
        assert_eq!(headers[X_REQUEST_ID], "mine-1");
    }

    #[tokio::test]
    async fn only_short_ids_of_safe_characters_are_kept() {
        async fn seen(req: Request) -> String {
            req.headers()[X_REQUEST_ID].to_str().unwrap().to_owned()
        }
        let app =
            Router::new().route("/", get(seen)).layer(EdgeLayer::new(Arc::new(Metrics::new()), on_panic));
        let longest = "a".repeat(MAX_REQUEST_ID_LEN);
        let kept = [
            "0190a0e0-0000-7000-8000-000000000000",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "svc.edge:req_77",
            longest.as_str(),
        ];
        for id in kept {
            let req = axum::http::Request::get("/").header("x-request-id", id).body(Body::empty()).unwrap();
            let (_, headers, body) = call(&app, req).await;
            assert_eq!((headers[X_REQUEST_ID].to_str().unwrap(), body.as_str()), (id, id));
        }
        let too_long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        let huge = "x".repeat(300 * 1024);
        let refused = [
            too_long.as_str(),
            huge.as_str(),
            "",
            "a b",
            "req-1 level=ERROR message=forged",
            "a=b",
            "a\"b",
            "a,b",
            "a/b",
            "a\tb",
        ];
        for id in refused {
            let req = axum::http::Request::get("/")
                .header("x-request-id", HeaderValue::from_str(id).unwrap())
                .body(Body::empty())
                .unwrap();
            let (_, headers, body) = call(&app, req).await;
            let answered = headers[X_REQUEST_ID].to_str().unwrap();
            assert_ne!(answered, id);
            assert!(uuid::Uuid::parse_str(answered).is_ok(), "a fresh id for {id:.40}: {answered}");
            assert_eq!(body, answered, "the handler sees the fresh id too");
        }
        // Bytes that are not even text are refused as well.
        let req = axum::http::Request::get("/")
            .header("x-request-id", HeaderValue::from_bytes(b"id-\xff").unwrap())
            .body(Body::empty())
            .unwrap();
        let (_, headers, _) = call(&app, req).await;
        assert_eq!(headers[X_REQUEST_ID].len(), 36);
    }

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
