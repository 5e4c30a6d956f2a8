//! `/api/templates` (templates and their versions) and `/api/prompt-reviews`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use loop_core::Actor;
use loop_core::page::Paged;
use loop_core::template::{
    NewReview, NewTemplate, NewVersion, PromptReview, PromptTemplate, PromptVersion, TemplateDetail, TemplatePatch,
    VersionPatch, VersionStatus, select,
};
use loop_prompts::{PromptMeta, hydrate};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, created, ok};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params, Path};
use crate::scope::Scope;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template, delete_template))
        .routes(routes!(list_versions, create_version))
        .routes(routes!(promote_version))
        .routes(routes!(update_version))
        .routes(routes!(list_reviews))
        .routes(routes!(preview))
        .routes(routes!(create_review))
}

/// Checks a version's content before it is saved: it compiles and names only known variables
/// (unknown ones are warnings).
pub(crate) fn validate(content: &str) -> Result<loop_prompts::Validation, ApiError> {
    loop_prompts::validate(content).map_err(|e| {
        let at = match (e.line, e.column) {
            (Some(l), Some(c)) => format!("line {l}, column {c}: "),
            _ => String::new(),
        };
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "template_compile_error", format!("content: {at}{}", e.message))
            .with_details(json!({ "field": "content", "line": e.line, "column": e.column }))
    })
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

/// A created version, with warnings about variables no context provides.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedVersion {
    pub data: PromptVersion,
    pub warnings: Vec<String>,
}

/// Add a version: active when `status` is `active`, or when the template has none yet and no
/// `status` is given; otherwise a draft. A claim's token only adds drafts.
/// The content must compile (422 with the line and column otherwise).
#[utoipa::path(post, path = "/api/templates/{id}/versions", tag = "templates", params(("id" = String, Path)),
    request_body = NewVersion, responses((status = 201, body = CreatedVersion), (status = 404), (status = 422)))]
async fn create_version(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    scope: Option<Extension<Scope>>,
    Path(id): Path<String>,
    JsonBody(mut input): JsonBody<NewVersion>,
) -> ApiResult<(StatusCode, axum::Json<CreatedVersion>)> {
    if let Some(Extension(scope)) = &scope {
        scope.author_version(&mut input)?;
    }
    let checked = validate(&input.content)?;
    let data = s.store.create_version(&id, input, &actor).await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedVersion { data, warnings: checked.warnings })))
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

/// Change a version's status: `active` promotes it (rolling back is promoting an older one);
/// `retired` retires a draft.
#[utoipa::path(patch, path = "/api/templates/{id}/versions/{version_id}", tag = "templates",
    params(("id" = String, Path), ("version_id" = String, Path)), request_body = VersionPatch,
    responses((status = 200, body = Data<PromptVersion>), (status = 404), (status = 422)))]
async fn update_version(
    State(s): State<AppState>,
    Path((id, version_id)): Path<(String, String)>,
    JsonBody(patch): JsonBody<VersionPatch>,
) -> ApiResult<axum::Json<Data<PromptVersion>>> {
    let version = match patch.status {
        VersionStatus::Active => s.store.promote_version(&id, &version_id).await?,
        VersionStatus::Retired => s.store.retire_version(&id, &version_id).await?,
        VersionStatus::Draft => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_status",
                "status: a version can be promoted (active) or retired, not made a draft again",
            ));
        }
    };
    Ok(ok(version))
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

/// Rate a prompt version (scores 1–5; `authorType` defaults to `agent`). A claim's token rates
/// the prompt its claim was given, once, also up to a day after the claim ended.
#[utoipa::path(post, path = "/api/prompt-reviews", tag = "templates", request_body = NewReview,
    responses((status = 201, body = Data<PromptReview>), (status = 404),
        (status = 409, description = "This claim's review was already posted"), (status = 422)))]
async fn create_review(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    scope: Option<Extension<Scope>>,
    JsonBody(mut input): JsonBody<NewReview>,
) -> ApiResult<(StatusCode, axum::Json<Data<PromptReview>>)> {
    if let Some(Extension(scope)) = &scope {
        scope.author_review(&mut input)?;
    } else if actor.kind == loop_core::actor::ActorKind::Agent {
        // An agent token reviews as the agent it is.
        input.author_type = Some(loop_core::comment::AuthorType::Agent);
    }
    Ok(created(s.store.create_review(input, &actor).await?))
}

/// What dispatch would hand out for an issue, without claiming it: the selected template and
/// the rendered prompt (with a placeholder instead of a token). `?template=` (an id or slug)
/// renders that template's active version instead. Bare keys plus a `data` copy.
#[utoipa::path(get, path = "/api/templates/preview/{issue_id}", tag = "templates",
    params(("issue_id" = String, Path),
           ("template" = Option<String>, Query, description = "Render this template (id or slug) instead of the one dispatch would select")),
    responses((status = 200, body = Object), (status = 404)))]
async fn preview(
    State(s): State<AppState>,
    Path(issue_id): Path<String>,
    params: Params,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let ctx = s.store.selection_context(&issue_id).await?;
    let inputs = s.store.prompt_inputs(&issue_id).await?;
    let templates = s.templates.get(s.store.as_ref()).await?;
    let issue = json!(inputs.issue);
    let chosen = match params.text("template") {
        None => select(&templates, &ctx),
        Some(t) => Some(
            templates
                .iter()
                .find(|a| a.template.id == t || a.template.slug == t)
                .ok_or_else(|| ApiError::not_found(&format!("Template {t} (with an active version)")))?,
        ),
    };
    let body = match chosen {
        None => {
            json!({ "issue": issue, "template": null, "version": null, "prompt": null, "message": "No matching template found" })
        }
        Some(active) => {
            let meta = PromptMeta {
                template_id: active.template.id.clone(),
                template_slug: active.template.slug.clone(),
                version_id: active.version.id.clone(),
                version_number: active.version.version,
                session_id: None,
                lease_expires_at: None,
                review_url: "POST /api/prompt-reviews",
                model: None,
            };
            let ctx = hydrate(&inputs, &meta, &s.config.public_url, "<token issued at dispatch>");
            let (prompt, error) = match s.prompts.render(&active.version.id, &active.version.content, ctx) {
                Ok(p) => (Some(p), None),
                Err(e) => (None, Some(e)),
            };
            json!({
                "issue": issue,
                "template": active.template,
                "version": active.version,
                "prompt": prompt,
                "meta": meta,
                "error": error,
            })
        }
    };
    let mut out = body.clone();
    out["data"] = body;
    Ok(axum::Json(out))
}
