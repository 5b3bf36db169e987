//! Handlers of login activity: a user's login history (successes and failures, newest
//! first, paged by cursor) and the scope's login statistics per hour or day.

use crate::app::AppState;
use crate::http::dto::{EventDto, EventList, LoginStats, PageQuery, StatBucketDto, StatsQuery};
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, ApiQuery, Caller};
use crate::http::user_ref;
use axum::Json;
use axum::extract::State;

/// A user's login attempts, newest first: successes and failures with their `outcome`.
#[utoipa::path(
    get,
    path = "/v1/users/{ref}/logins",
    tag = "activity",
    security(("bearer" = [])),
    params(("ref" = String, Path, description = "The user's id, username or email"), PageQuery),
    responses(
        (status = 200, description = "A page of events", body = EventList),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 404, response = crate::http::doc::UserNotFound),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(r): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<EventList>, ApiError> {
    let r = user_ref(&r)?;
    let page = state.service.login_history(caller.scope(), &r, q.limit, q.cursor.as_deref()).await?;
    Ok(Json(EventList {
        events: page.items.iter().map(EventDto::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Successful logins and distinct users per bucket over `[from, to)`, every bucket present
/// (zeros included), at most 5000 buckets.
#[utoipa::path(
    get,
    path = "/v1/stats/logins",
    tag = "activity",
    security(("bearer" = [])),
    params(StatsQuery),
    responses(
        (status = 200, description = "The buckets", body = LoginStats),
        (status = 400, response = crate::http::doc::InvalidRequest),
        (status = 401, response = crate::http::doc::Unauthorized),
        (status = 500, response = crate::http::doc::Internal),
        (status = 503, response = crate::http::doc::StorageUnavailable),
    )
)]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Json<LoginStats>, ApiError> {
    let (from, to, bucket) = q.into_domain()?;
    let buckets = state.service.login_stats(caller.scope(), from, to, bucket).await?;
    Ok(Json(LoginStats { buckets: buckets.iter().map(StatBucketDto::from).collect() }))
}
