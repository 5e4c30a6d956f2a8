//! `/api/issues`: list, create, detail, patch, soft delete, history.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use loop_core::Actor;
use loop_core::event::IssueEvent;
use loop_core::issue::{Issue, IssueDetail, IssueFilter, IssuePatch, IssueSort, NewIssue, Priority};
use loop_core::page::Paged;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, created, ok};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params, Path};
use crate::scope::Scope;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_issues, create_issue))
        .routes(routes!(get_issue, update_issue, delete_issue))
        .routes(routes!(issue_events))
}

/// List live issues, oldest first.
#[utoipa::path(get, path = "/api/issues", tag = "issues",
    params(
        ("status" = Option<String>, Query, description = "Comma-separated statuses; `open` = every non-terminal status"),
        ("type" = Option<String>, Query, description = "Comma-separated types"),
        ("projectId" = Option<String>, Query), ("labelId" = Option<String>, Query),
        ("priority" = Option<i32>, Query, description = "0–4"), ("parentId" = Option<String>, Query),
        ("q" = Option<String>, Query, description = "Words that must all appear in the title, or `#n` for one number"),
        ("waiting" = Option<bool>, Query, description = "true: only issues waiting for their notBefore time (snoozed, monitors before their window); false: only the others"),
        ("sort" = Option<String>, Query, description = "number, created (default), updated, priority or title; `-` prefix for descending"),
        ("limit" = Option<i32>, Query, description = "1–200, default 50"), ("offset" = Option<i32>, Query),
    ),
    responses((status = 200, body = Paged<Issue>), (status = 400, description = "Bad query parameter")))]
async fn list_issues(State(s): State<AppState>, params: Params) -> ApiResult<axum::Json<Paged<Issue>>> {
    let page = params.page()?;
    let filter = issue_filter(&params, IssueSort::default())?;
    Ok(axum::Json(s.store.list_issues(&filter, page).await?))
}

/// The filters of an issue list, shared by the API and the dashboard (which sorts newest first
/// by default).
pub(crate) fn issue_filter(params: &Params, default_sort: IssueSort) -> Result<IssueFilter, ApiError> {
    Ok(IssueFilter {
        statuses: params
            .get("status")
            .map(IssueFilter::parse_statuses)
            .transpose()
            .map_err(ApiError::from_query)?
            .unwrap_or_default(),
        types: params
            .get("type")
            .map(IssueFilter::parse_types)
            .transpose()
            .map_err(ApiError::from_query)?
            .unwrap_or_default(),
        project_id: params.text("projectId"),
        label_id: params.text("labelId"),
        priority: match params.text("priority") {
            Some(_) => {
                params.int("priority")?.map(Priority::new).transpose().map_err(|m| ApiError::query("priority", m))?
            }
            None => None,
        },
        parent_id: params.text("parentId"),
        waiting: params.bool("waiting")?,
        search: params.get("q").map(IssueFilter::parse_search).transpose().map_err(ApiError::from_query)?.flatten(),
        sort: params
            .text("sort")
            .map(|s| IssueSort::parse(&s))
            .transpose()
            .map_err(ApiError::from_query)?
            .unwrap_or(default_sort),
    })
}

/// Create an issue. `parentId` must name a live root issue (1-level hierarchy); a child
/// without `projectId` joins its parent's project.
#[utoipa::path(post, path = "/api/issues", tag = "issues", request_body = NewIssue,
    responses((status = 201, body = Data<Issue>), (status = 422, description = "Invalid field")))]
async fn create_issue(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    scope: Option<Extension<Scope>>,
    JsonBody(mut input): JsonBody<NewIssue>,
) -> ApiResult<(StatusCode, axum::Json<Data<Issue>>)> {
    if let Some(Extension(scope)) = &scope {
        scope.check_new_issue(&input)?;
    }
    if let Some(parent) = &input.parent_id
        && input.project_id.is_none()
    {
        // A missing parent is the store's to report, with the field's name.
        if let Ok(parent) = s.store.get_issue(parent).await {
            input.inherit_project(&parent);
        }
    }
    Ok(created(s.store.create_issue(input, &actor).await?))
}

/// An issue with its parent, children, labels and relations (each told from this issue's side:
/// `issueId` is this issue, except for an incoming `duplicate`). `id` may also be the number.
#[utoipa::path(get, path = "/api/issues/{id}", tag = "issues", params(("id" = String, Path)),
    responses((status = 200, body = Data<IssueDetail>), (status = 404)))]
async fn get_issue(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Data<IssueDetail>>> {
    Ok(ok(s.store.issue_detail(&id).await?.relations_seen_from_itself()))
}

/// Change an issue. `completedAt` follows the status; `labelIds` replaces the labels.
#[utoipa::path(patch, path = "/api/issues/{id}", tag = "issues", params(("id" = String, Path)), request_body = IssuePatch,
    responses((status = 200, body = Data<Issue>), (status = 404), (status = 422)))]
async fn update_issue(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    scope: Option<Extension<Scope>>,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<IssuePatch>,
) -> ApiResult<axum::Json<Data<Issue>>> {
    if let Some(Extension(scope)) = &scope {
        scope.check_patch(&patch)?;
    }
    Ok(ok(s.store.update_issue(&id, patch, &actor).await?))
}

/// Soft-delete an issue: it disappears from every read.
#[utoipa::path(delete, path = "/api/issues/{id}", tag = "issues", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
async fn delete_issue(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_issue(&id, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The issue's history, oldest first: every change, with who made it and when.
#[utoipa::path(get, path = "/api/issues/{id}/events", tag = "issues",
    params(("id" = String, Path), ("limit" = Option<i32>, Query), ("offset" = Option<i32>, Query)),
    responses((status = 200, body = Paged<IssueEvent>), (status = 404)))]
async fn issue_events(
    State(s): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<axum::Json<Paged<IssueEvent>>> {
    Ok(axum::Json(s.store.issue_events(&id, params.page()?).await?))
}
