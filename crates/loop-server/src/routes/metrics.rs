//! `GET /api/metrics` (loop velocity, hit rate, agent efficiency, throughput) and
//! `GET /api/changelog` (completed changes and why they were made).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use loop_core::Timestamp;
use loop_core::changelog::{self, ChangeGroup};
use loop_core::metrics::{LoopMetrics, Period};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, ok};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(loop_metrics)).routes(routes!(changelog))
}

/// Loop metrics over `[since, until)` (default: the last 30 days): velocity from signal to
/// validated outcome and per stage, hypothesis hit rate (overall, per signal source, per
/// template version), agent efficiency per agent name, and done issues per day.
#[utoipa::path(get, path = "/api/metrics", tag = "dashboard",
    params(("since" = Option<String>, Query, format = Date, description = "A day (2026-11-01) or an RFC 3339 time"),
        ("until" = Option<String>, Query, format = Date, description = "A day or an RFC 3339 time; default now")),
    responses((status = 200, body = Data<LoopMetrics>), (status = 400, description = "Bad time")))]
async fn loop_metrics(State(s): State<AppState>, params: Params) -> ApiResult<Json<Data<LoopMetrics>>> {
    let (since, until) = (time(&params, "since")?, time(&params, "until")?);
    Ok(ok(s.store.loop_metrics(since, until).await.map_err(ApiError::from_query)?))
}

/// Every change completed since `since` (default: 30 days ago; done issues with commits or
/// pull requests), grouped under the hypothesis and signal that caused it, each group told in
/// one sentence (`summary`). `format=md` answers Markdown.
#[utoipa::path(get, path = "/api/changelog", tag = "dashboard",
    params(("since" = Option<String>, Query, format = Date, description = "A day (2026-11-01) or an RFC 3339 time"),
        ("format" = Option<ChangelogFormat>, Query, description = "json (default) or md")),
    responses((status = 200, body = Data<Vec<ChangeGroup>>), (status = 400, description = "Bad time or format")))]
async fn changelog(State(s): State<AppState>, params: Params) -> ApiResult<Response> {
    let since = time(&params, "since")?;
    let markdown = match params.get("format") {
        None | Some("json") => false,
        Some("md") => true,
        Some(_) => return Err(ApiError::query("format", "must be json or md")),
    };
    let groups = s.store.changelog(since).await.map_err(ApiError::from_query)?;
    if markdown {
        let since =
            since.unwrap_or_else(|| groups.first().map_or(Timestamp::from_millis(0), |g| g.changes[0].completed_at));
        let headers = [(axum::http::header::CONTENT_TYPE, "text/markdown; charset=utf-8")];
        return Ok((headers, changelog::markdown(&groups, since)).into_response());
    }
    Ok(ok(groups).into_response())
}

/// The changelog's formats, for the document (the handler reads the parameter as text).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
enum ChangelogFormat {
    Json,
    Md,
}

/// A time parameter; given but empty is an error, as any other bad value.
fn time(params: &Params, field: &str) -> Result<Option<Timestamp>, ApiError> {
    params.get(field).map(|raw| Period::parse_time(field, raw)).transpose().map_err(ApiError::from_query)
}
