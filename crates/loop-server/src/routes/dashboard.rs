//! `/api/dashboard`: counts across the loop, its chains of work, and prompt health.

use axum::Json;
use axum::extract::State;
use loop_core::dashboard::{Chain, PromptHealth, Stats};
use loop_core::page::Paged;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, ok};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::Params;

/// Chains per page when `limit` is not given (the reference's default).
const ACTIVITY_LIMIT: u32 = 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stats)).routes(routes!(activity)).routes(routes!(prompts))
}

/// Issues by status and type, goals, and dispatch: `queueDepth` is the number of issues a claim
/// could hand out now (todo, unblocked), `activeCount` those in progress, `completedLast24h`
/// those done in the last day.
#[utoipa::path(get, path = "/api/dashboard/stats", tag = "dashboard", responses((status = 200, body = Data<Stats>)))]
async fn stats(State(s): State<AppState>) -> ApiResult<Json<Data<Stats>>> {
    Ok(ok(s.store.stats().await?))
}

/// The loop's chains: each root issue (signal, hypothesis, plan…) with its children and their
/// relations, most recently active first. `total` counts every chain; `offset` pages.
#[utoipa::path(get, path = "/api/dashboard/activity", tag = "dashboard",
    params(("limit" = Option<i32>, Query, description = "1–200, default 20"), ("offset" = Option<i32>, Query)),
    responses((status = 200, body = Paged<Chain>)))]
async fn activity(State(s): State<AppState>, params: Params) -> ApiResult<Json<Paged<Chain>>> {
    Ok(Json(s.store.activity(params.page_or(ACTIVITY_LIMIT)?).await?))
}

/// Every template's health: active version, recent versions, review averages (numbers), the
/// active version's score, and `needsAttention` (score under 3.5 or completion under 50%).
#[utoipa::path(get, path = "/api/dashboard/prompts", tag = "dashboard",
    responses((status = 200, body = Data<Vec<PromptHealth>>)))]
async fn prompts(State(s): State<AppState>) -> ApiResult<Json<Data<Vec<PromptHealth>>>> {
    Ok(ok(s.store.prompt_health().await?))
}
