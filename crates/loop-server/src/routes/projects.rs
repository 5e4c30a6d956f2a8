//! `/api/projects`.

use axum::extract::State;
use axum::http::StatusCode;
use loop_core::page::Paged;
use loop_core::project::{NewProject, Project, ProjectDetail, ProjectPatch};
use loop_core::skill::{Skill, SkillSync, SkillSyncResult};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, created, ok};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{JsonBody, Params, Path};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, update_project, delete_project))
        .routes(routes!(sync_skills, list_skills))
}

/// Make the project's skills (its repository's AGENTS.md, CLAUDE.md, .loop/skills/*.md) the
/// given files: new and changed ones get a new version, missing ones are retired. Every prompt
/// for the project's issues carries the current ones (`skills`), up to a size cap.
#[utoipa::path(put, path = "/api/projects/{id}/skills", tag = "projects", params(("id" = String, Path)),
    request_body = SkillSync,
    responses((status = 200, body = Data<SkillSyncResult>), (status = 404)))]
async fn sync_skills(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(sync): JsonBody<SkillSync>,
) -> ApiResult<axum::Json<Data<SkillSyncResult>>> {
    Ok(ok(s.store.sync_skills(&id, sync).await?))
}

/// The project's current skills, by name.
#[utoipa::path(get, path = "/api/projects/{id}/skills", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = Paged<Skill>), (status = 404)))]
async fn list_skills(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Paged<Skill>>> {
    let data = s.store.project_skills(&id).await?;
    Ok(axum::Json(Paged { total: data.len() as u64, data }))
}

#[utoipa::path(get, path = "/api/projects", tag = "projects",
    params(("limit" = Option<i32>, Query), ("offset" = Option<i32>, Query)),
    responses((status = 200, body = Paged<Project>)))]
async fn list_projects(State(s): State<AppState>, params: Params) -> ApiResult<axum::Json<Paged<Project>>> {
    Ok(axum::Json(s.store.list_projects(params.page()?).await?))
}

#[utoipa::path(post, path = "/api/projects", tag = "projects", request_body = NewProject,
    responses((status = 201, body = Data<Project>), (status = 422)))]
async fn create_project(
    State(s): State<AppState>,
    JsonBody(input): JsonBody<NewProject>,
) -> ApiResult<(StatusCode, axum::Json<Data<Project>>)> {
    Ok(created(s.store.create_project(input).await?))
}

/// A project with its goal and its live issue counts per status.
#[utoipa::path(get, path = "/api/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = Data<ProjectDetail>), (status = 404)))]
async fn get_project(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Data<ProjectDetail>>> {
    Ok(ok(s.store.project_detail(&id).await?))
}

#[utoipa::path(patch, path = "/api/projects/{id}", tag = "projects", params(("id" = String, Path)),
    request_body = ProjectPatch, responses((status = 200, body = Data<Project>), (status = 404), (status = 422)))]
async fn update_project(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<ProjectPatch>,
) -> ApiResult<axum::Json<Data<Project>>> {
    Ok(ok(s.store.update_project(&id, patch).await?))
}

#[utoipa::path(delete, path = "/api/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
async fn delete_project(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.store.delete_project(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
