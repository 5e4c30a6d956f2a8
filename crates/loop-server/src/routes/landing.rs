//! After the pull request: rework that sends an issue back, approval, the merge, the queue of
//! approved work and the merge slot a landing runner holds.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use loop_core::Actor;
use loop_core::issue::Issue;
use loop_core::rework::{Merge, MergeSlot, NewRework, Rework, SlotRequest};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, created, ok};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{JsonBody, OptionalJsonBody, Params, Path};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_rework, pending_rework))
        .routes(routes!(approve, withdraw_approval))
        .routes(routes!(merged))
        .routes(routes!(merge_queue))
        .routes(routes!(take_slot, free_slot))
}

/// Rework kept and the issue as it is after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reworked {
    pub rework: Rework,
    pub issue: Issue,
}

/// Send the issue's work back with feedback: a `done` issue returns to `todo`, and its next
/// claim gets the `task-rework` prompt with every pending item. Its approval is withdrawn.
/// 409 `issue_canceled` or `already_merged`.
#[utoipa::path(post, path = "/api/issues/{id}/rework", tag = "landing", params(("id" = String, Path)),
    request_body = NewRework,
    responses((status = 201, body = Data<Reworked>), (status = 404), (status = 409), (status = 422)))]
async fn add_rework(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<NewRework>,
) -> ApiResult<(StatusCode, axum::Json<Data<Reworked>>)> {
    let (rework, issue) = s.store.add_rework(&id, input, &actor).await?;
    Ok(created(Reworked { rework, issue }))
}

/// The issue's rework not yet addressed, oldest first.
#[utoipa::path(get, path = "/api/issues/{id}/rework", tag = "landing", params(("id" = String, Path)),
    responses((status = 200, body = Data<Vec<Rework>>), (status = 404)))]
async fn pending_rework(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Data<Vec<Rework>>>> {
    Ok(ok(s.store.pending_rework(&id).await?))
}

/// Approve the issue's pull request for landing (`loop agent land` takes approved, done,
/// unmerged issues). An approving GitHub review does the same.
#[utoipa::path(post, path = "/api/issues/{id}/approval", tag = "landing", params(("id" = String, Path)),
    responses((status = 200, body = Data<Issue>), (status = 404)))]
async fn approve(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Data<Issue>>> {
    Ok(ok(s.store.set_approval(&id, true, &actor).await?))
}

/// Withdraw the approval.
#[utoipa::path(delete, path = "/api/issues/{id}/approval", tag = "landing", params(("id" = String, Path)),
    responses((status = 200, body = Data<Issue>), (status = 404)))]
async fn withdraw_approval(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Data<Issue>>> {
    Ok(ok(s.store.set_approval(&id, false, &actor).await?))
}

/// Record that the issue's pull request was merged: it is done (if it was open), `mergedAt`
/// is set, and issues blocked `untilMerged` by it are freed. Idempotent. A GitHub
/// `pull_request` closed-and-merged delivery does the same.
#[utoipa::path(post, path = "/api/issues/{id}/merged", tag = "landing", params(("id" = String, Path)),
    request_body(content = Option<Merge>),
    responses((status = 200, body = Data<Issue>), (status = 404), (status = 422)))]
async fn merged(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    OptionalJsonBody(merge): OptionalJsonBody<Merge>,
) -> ApiResult<axum::Json<Data<Issue>>> {
    Ok(ok(s.store.record_merge(&id, merge, &actor).await?))
}

/// Approved, done issues whose pull request is not merged yet, oldest approval first (at most
/// 100): what `loop agent land` lands, one at a time.
#[utoipa::path(get, path = "/api/merge-queue", tag = "landing",
    params(("projectId" = Option<String>, Query)),
    responses((status = 200, body = Data<Vec<Issue>>)))]
async fn merge_queue(State(s): State<AppState>, params: Params) -> ApiResult<axum::Json<Data<Vec<Issue>>>> {
    Ok(ok(s.store.merge_queue(params.text("projectId").as_deref()).await?))
}

/// Take the merge slot of a scope (a project id, or `all`) for `seconds`, or renew it when
/// the same holder asks again. 409 `slot_held` while another holder's lease runs.
#[utoipa::path(post, path = "/api/merge-slots/{scope}", tag = "landing", params(("scope" = String, Path)),
    request_body = SlotRequest,
    responses((status = 200, body = Data<MergeSlot>), (status = 409), (status = 422)))]
async fn take_slot(
    State(s): State<AppState>,
    Path(scope): Path<String>,
    JsonBody(req): JsonBody<SlotRequest>,
) -> ApiResult<axum::Json<Data<MergeSlot>>> {
    Ok(ok(s.store.take_merge_slot(&scope, req).await?))
}

/// Free the slot if `holder` holds it (freeing a slot one does not hold changes nothing).
#[utoipa::path(delete, path = "/api/merge-slots/{scope}", tag = "landing",
    params(("scope" = String, Path), ("holder" = String, Query, description = "who took it")),
    responses((status = 204), (status = 400)))]
async fn free_slot(State(s): State<AppState>, Path(scope): Path<String>, params: Params) -> ApiResult<StatusCode> {
    let Some(holder) = params.get("holder") else {
        return Err(crate::error::ApiError::query("holder", "is required: the holder the slot was taken for"));
    };
    s.store.free_merge_slot(&scope, holder).await?;
    Ok(StatusCode::NO_CONTENT)
}
