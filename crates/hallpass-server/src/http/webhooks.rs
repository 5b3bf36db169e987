//! Handlers of `/v1/webhooks`: a scope's endpoints (create, list, read, change, delete,
//! rotate the secret), an endpoint's delivery log and the manual retry of a delivery,
//! with their request and answer shapes (kept here: only these handlers use them). Each
//! handler parses, calls the service once and maps the answer.

use crate::app::AppState;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hallpass_core::service::{Delivery, WebhookInput};
use hallpass_core::{Error, OutboxState, WebhookEndpoint};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Reads a field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /v1/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where deliveries go: an `http` or `https` URL.
    pub url: String,
    /// The events it receives (at least one): `user.created`, `user.updated`,
    /// `user.deleted`, `user.deactivated`, `user.reactivated`, `login.succeeded`,
    /// `login.failed`, `session.ended`, `password.changed`, `password.reset`,
    /// `email.confirmed`, `identity.linked`, `identity.unlinked`, `mfa.enabled`,
    /// `mfa.disabled`, `passkey.added`, `passkey.removed`.
    pub events: Vec<String>,
    /// A note for people (at most 500 characters).
    pub description: Option<String>,
}

/// `PATCH /v1/webhooks/{id}`: only the fields present change; `description: null`
/// removes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    /// New URL.
    pub url: Option<String>,
    /// New events (replace the old list).
    pub events: Option<Vec<String>>,
    /// New description, or `null` to remove it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// An endpoint (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDto {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// The events it receives.
    pub events: Vec<String>,
    /// The note, if any.
    pub description: Option<String>,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Until when the secret before the latest rotation signs too (both signatures are
    /// sent meanwhile); absent when only one secret signs.
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub previous_secret_until: Option<OffsetDateTime>,
}

impl WebhookDto {
    fn from_endpoint(w: &WebhookEndpoint, now: OffsetDateTime) -> Self {
        Self {
            id: w.id,
            url: w.url.clone(),
            events: w.events.iter().map(|e| e.as_str().to_owned()).collect(),
            description: w.description.clone(),
            created_at: w.created_at,
            updated_at: w.updated_at,
            previous_secret_until: w.previous_until.filter(|u| *u > now && w.previous_secret.is_some()),
        }
    }
}

/// An endpoint with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub webhook: WebhookDto,
    /// The signing secret, `whsec_` + base64: keep it, it is not shown again.
    pub secret: String,
}

/// The scope's endpoints, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// The endpoints.
    pub webhooks: Vec<WebhookDto>,
}

/// `GET /v1/webhooks/{id}/deliveries` query string.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Only deliveries in this state: `queued` (waiting for its next attempt), `sending`,
    /// `in_doubt`, `sent` or `failed`.
    pub status: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One delivery of an event to the endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDto {
    /// Its id: the `webhook-id` header of every attempt.
    pub id: Uuid,
    /// The event's type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// `queued`, `sending`, `in_doubt`, `sent` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When the next attempt is due (queued deliveries only).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The HTTP status of the latest attempt, when the receiver answered.
    pub last_status_code: Option<u16>,
    /// Why the latest attempt failed.
    pub last_error: Option<String>,
    /// How long the latest attempt took, in milliseconds.
    pub response_ms: Option<u64>,
    /// When the event happened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was delivered.
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
}

impl DeliveryDto {
    fn from_delivery(d: &Delivery) -> Self {
        let m = &d.message;
        Self {
            id: m.id,
            event_type: d.event_type.clone(),
            status: m.state.as_str().to_owned(),
            attempts: m.attempts,
            next_attempt_at: (m.state == OutboxState::Queued).then_some(m.next_attempt_at),
            last_status_code: d.last_status,
            last_error: m.last_error.clone(),
            response_ms: d.last_response_ms,
            created_at: m.created_at,
            delivered_at: m.sent_at,
        }
    }
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// The deliveries.
    pub deliveries: Vec<DeliveryDto>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

fn endpoint_id(s: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(s).map_err(|_| Error::WebhookNotFound)
}

fn input(
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<Option<String>>,
) -> WebhookInput {
    WebhookInput { url, events, description }
}

/// Registers an endpoint; answers its secret, once.
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    operation_id = "create_webhook",
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "The endpoint and its secret (shown once)", body = WebhookWithSecret),
        (status = 400, description = "`invalid_request` (the detail names the field) or `secret_key_not_configured`",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateWebhookRequest>,
) -> Result<Response, ApiError> {
    let i = input(Some(req.url), Some(req.events), Some(req.description));
    let (w, secret) = state.service.create_webhook(caller.scope(), i).await?;
    let body = WebhookWithSecret { webhook: WebhookDto::from_endpoint(&w, state.service.now()), secret };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Lists the scope's endpoints, oldest first.
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    operation_id = "list_webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoints", body = WebhookList),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<WebhookList>, ApiError> {
    let now = state.service.now();
    let all = state.service.list_webhooks(caller.scope()).await?;
    Ok(Json(WebhookList { webhooks: all.iter().map(|w| WebhookDto::from_endpoint(w, now)).collect() }))
}

/// Reads one endpoint.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}",
    operation_id = "get_webhook",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookDto),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, description = "`webhook_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookDto>, ApiError> {
    let w = state.service.get_webhook(caller.scope(), endpoint_id(&id)?).await?;
    Ok(Json(WebhookDto::from_endpoint(&w, state.service.now())))
}

/// Changes an endpoint's URL, events or description.
#[utoipa::path(
    patch,
    path = "/v1/webhooks/{id}",
    operation_id = "update_webhook",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = UpdateWebhookRequest,
    responses(
        (status = 200, description = "The changed endpoint", body = WebhookDto),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, description = "`webhook_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::http::doc::PayloadTooLarge),
        (status = 415, response = crate::http::doc::UnsupportedMediaType),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateWebhookRequest>,
) -> Result<Json<WebhookDto>, ApiError> {
    let i = input(req.url, req.events, req.description);
    let w = state.service.update_webhook(caller.scope(), endpoint_id(&id)?, i).await?;
    Ok(Json(WebhookDto::from_endpoint(&w, state.service.now())))
}

/// Deletes an endpoint and its deliveries (those not sent yet are never sent).
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    operation_id = "delete_webhook",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "The endpoint is gone"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, description = "`webhook_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_webhook(caller.scope(), endpoint_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new secret for the endpoint, shown once. The previous one keeps signing too for
/// `webhook_secret_overlap` (24 h by default): every delivery carries both signatures
/// meanwhile.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/rotate-secret",
    operation_id = "rotate_webhook_secret",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint and its new secret (shown once)", body = WebhookWithSecret),
        (status = 400, description = "`secret_key_not_configured`", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, description = "`webhook_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    let (w, secret) = state.service.rotate_webhook_secret(caller.scope(), endpoint_id(&id)?).await?;
    Ok(Json(WebhookWithSecret { webhook: WebhookDto::from_endpoint(&w, state.service.now()), secret }))
}

/// The endpoint's deliveries, newest first: state, attempts, next attempt, last status
/// code, error and response time.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries",
    operation_id = "list_webhook_deliveries",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id"), DeliveriesQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryList),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, description = "`webhook_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<DeliveryList>, ApiError> {
    let status =
        match q.status.as_deref() {
            None | Some("") => None,
            Some(s) => Some(OutboxState::from_stored(s).ok_or_else(|| {
                Error::invalid("status", "must be queued, sending, in_doubt, sent or failed")
            })?),
        };
    let page = state
        .service
        .webhook_deliveries(caller.scope(), endpoint_id(&id)?, status, q.limit, q.cursor.as_deref())
        .await?;
    Ok(Json(DeliveryList {
        deliveries: page.items.iter().map(DeliveryDto::from_delivery).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Sends a delivery that was not delivered (waiting, failed or in doubt) again now, its
/// attempts counted from zero. The receiver may see it twice: it deduplicates by
/// `webhook-id`.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/deliveries/{delivery}/retry",
    operation_id = "retry_webhook_delivery",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The endpoint's id"),
        ("delivery" = String, Path, description = "The delivery's id"),
    ),
    responses(
        (status = 200, description = "The delivery, queued", body = DeliveryDto),
        (status = 400, description = "`invalid_request`: the delivery was delivered already or is being sent",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, description = "`webhook_not_found` or `delivery_not_found`",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, delivery)): ApiPath<(String, String)>,
) -> Result<Json<DeliveryDto>, ApiError> {
    let delivery = Uuid::parse_str(&delivery).map_err(|_| Error::DeliveryNotFound)?;
    let d = state.service.retry_webhook_delivery(caller.scope(), endpoint_id(&id)?, delivery).await?;
    Ok(Json(DeliveryDto::from_delivery(&d)))
}
