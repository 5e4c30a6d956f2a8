//! `/api/templates` (templates and their versions) and `/api/prompt-reviews`.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use loop_core::Actor;
use loop_core::page::Paged;
use loop_core::template::{
    NewReview, NewTemplate, NewVersion, PromptReview, PromptTemplate, PromptVersion, TemplateDetail, TemplatePatch,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, created, ok};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{JsonBody, Params};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template, delete_template))
        .routes(routes!(list_versions, create_version))
        .routes(routes!(promote_version))
        .routes(routes!(list_reviews))
        .routes(routes!(create_review))
}

#[utoipa::path(get, path = "/api/templates", tag = "templates",
    params(("limit" = Option<i32>, Query), ("offset" = Option<i32>, Query)),
    responses((status = 200, body = Paged<PromptTemplate>)))]
async fn list_templates(State(s): State<AppState>, params: Params) -> ApiResult<axum::Json<Paged<PromptTemplate>>> {
    Ok(axum::Json(s.store.list_templates(params.page()?).await?))
}

/// Create a template (without versions). Slugs are unique among live templates.
#[utoipa::path(post, path = "/api/templates", tag = "templates", request_body = NewTemplate,
    responses((status = 201, body = Data<PromptTemplate>), (status = 409), (status = 422)))]
async fn create_template(
    State(s): State<AppState>,
    JsonBody(input): JsonBody<NewTemplate>,
) -> ApiResult<(StatusCode, axum::Json<Data<PromptTemplate>>)> {
    Ok(created(s.store.create_template(input).await?))
}

#[utoipa::path(get, path = "/api/templates/{id}", tag = "templates", params(("id" = String, Path)),
    responses((status = 200, body = Data<TemplateDetail>), (status = 404)))]
async fn get_template(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Data<TemplateDetail>>> {
    Ok(ok(s.store.template_detail(&id).await?))
}

#[utoipa::path(patch, path = "/api/templates/{id}", tag = "templates", params(("id" = String, Path)),
    request_body = TemplatePatch, responses((status = 200, body = Data<PromptTemplate>), (status = 404), (status = 422)))]
async fn update_template(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<TemplatePatch>,
) -> ApiResult<axum::Json<Data<PromptTemplate>>> {
    Ok(ok(s.store.update_template(&id, patch).await?))
}

#[utoipa::path(delete, path = "/api/templates/{id}", tag = "templates", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
async fn delete_template(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.store.delete_template(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Versions of a template, newest first.
#[utoipa::path(get, path = "/api/templates/{id}/versions", tag = "templates",
    params(("id" = String, Path), ("limit" = Option<i32>, Query), ("offset" = Option<i32>, Query)),
    responses((status = 200, body = Paged<PromptVersion>), (status = 404)))]
async fn list_versions(
    State(s): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<axum::Json<Paged<PromptVersion>>> {
    Ok(axum::Json(s.store.list_versions(&id, params.page()?).await?))
}

/// Add a version: active when the template has none yet or `status` is `active`, else draft.
#[utoipa::path(post, path = "/api/templates/{id}/versions", tag = "templates", params(("id" = String, Path)),
    request_body = NewVersion, responses((status = 201, body = Data<PromptVersion>), (status = 404), (status = 422)))]
async fn create_version(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<NewVersion>,
) -> ApiResult<(StatusCode, axum::Json<Data<PromptVersion>>)> {
    Ok(created(s.store.create_version(&id, input, &actor).await?))
}

/// Make a draft or retired version the active one (also how to roll back).
#[utoipa::path(post, path = "/api/templates/{id}/versions/{version_id}/promote", tag = "templates",
    params(("id" = String, Path), ("version_id" = String, Path)),
    responses((status = 200, body = Data<PromptVersion>), (status = 404), (status = 422)))]
async fn promote_version(
    State(s): State<AppState>,
    Path((id, version_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Data<PromptVersion>>> {
    Ok(ok(s.store.promote_version(&id, &version_id).await?))
}

/// Reviews across all of the template's versions, newest first.
#[utoipa::path(get, path = "/api/templates/{id}/reviews", tag = "templates",
    params(("id" = String, Path), ("limit" = Option<i32>, Query), ("offset" = Option<i32>, Query)),
    responses((status = 200, body = Paged<PromptReview>), (status = 404)))]
async fn list_reviews(
    State(s): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<axum::Json<Paged<PromptReview>>> {
    Ok(axum::Json(s.store.list_reviews(&id, params.page()?).await?))
}

/// Rate a prompt version (scores 1–5; `authorType` defaults to `agent`).
#[utoipa::path(post, path = "/api/prompt-reviews", tag = "templates", request_body = NewReview,
    responses((status = 201, body = Data<PromptReview>), (status = 404), (status = 422)))]
async fn create_review(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(input): JsonBody<NewReview>,
) -> ApiResult<(StatusCode, axum::Json<Data<PromptReview>>)> {
    Ok(created(s.store.create_review(input, &actor).await?))
}
