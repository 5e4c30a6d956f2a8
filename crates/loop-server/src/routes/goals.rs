//! `/api/goals`.

use axum::extract::State;
use axum::http::StatusCode;
use loop_core::goal::{Goal, GoalPatch, GoalStatus, NewGoal};
use loop_core::page::Paged;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, created, ok};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params, Path};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_goals, create_goal)).routes(routes!(get_goal, update_goal, delete_goal))
}

/// Live goals, oldest first; `status` keeps one status.
#[utoipa::path(get, path = "/api/goals", tag = "goals",
    params(("status" = Option<String>, Query, description = "active, achieved or abandoned"),
        ("limit" = Option<i32>, Query), ("offset" = Option<i32>, Query)),
    responses((status = 200, body = Paged<Goal>), (status = 400)))]
async fn list_goals(State(s): State<AppState>, params: Params) -> ApiResult<axum::Json<Paged<Goal>>> {
    let status = params
        .text("status")
        .map(|v| v.trim().parse::<GoalStatus>())
        .transpose()
        .map_err(|m| ApiError::query("status", m))?;
    Ok(axum::Json(s.store.list_goals(status, params.page()?).await?))
}

#[utoipa::path(post, path = "/api/goals", tag = "goals", request_body = NewGoal,
    responses((status = 201, body = Data<Goal>), (status = 422)))]
async fn create_goal(
    State(s): State<AppState>,
    JsonBody(input): JsonBody<NewGoal>,
) -> ApiResult<(StatusCode, axum::Json<Data<Goal>>)> {
    Ok(created(s.store.create_goal(input).await?))
}

/// One goal.
#[utoipa::path(get, path = "/api/goals/{id}", tag = "goals", params(("id" = String, Path)),
    responses((status = 200, body = Data<Goal>), (status = 404)))]
async fn get_goal(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Data<Goal>>> {
    Ok(ok(s.store.get_goal(&id).await?))
}

#[utoipa::path(patch, path = "/api/goals/{id}", tag = "goals", params(("id" = String, Path)),
    request_body = GoalPatch, responses((status = 200, body = Data<Goal>), (status = 404), (status = 422)))]
async fn update_goal(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<GoalPatch>,
) -> ApiResult<axum::Json<Data<Goal>>> {
    Ok(ok(s.store.update_goal(&id, patch).await?))
}

#[utoipa::path(delete, path = "/api/goals/{id}", tag = "goals", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
async fn delete_goal(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.store.delete_goal(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
