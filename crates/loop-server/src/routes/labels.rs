//! `/api/labels`. A deleted label's name can be reused.

use axum::extract::State;
use axum::http::StatusCode;
use loop_core::label::{Label, LabelPatch, NewLabel};
use loop_core::page::Paged;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, created, ok};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{JsonBody, Params, Path};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_labels, create_label)).routes(routes!(
        get_label,
        update_label,
        delete_label
    ))
}

#[utoipa::path(get, path = "/api/labels", tag = "labels",
    params(("limit" = Option<i32>, Query), ("offset" = Option<i32>, Query)),
    responses((status = 200, body = Paged<Label>)))]
async fn list_labels(State(s): State<AppState>, params: Params) -> ApiResult<axum::Json<Paged<Label>>> {
    Ok(axum::Json(s.store.list_labels(params.page()?).await?))
}

#[utoipa::path(post, path = "/api/labels", tag = "labels", request_body = NewLabel,
    responses((status = 201, body = Data<Label>), (status = 409, description = "The name is taken"), (status = 422)))]
async fn create_label(
    State(s): State<AppState>,
    JsonBody(input): JsonBody<NewLabel>,
) -> ApiResult<(StatusCode, axum::Json<Data<Label>>)> {
    Ok(created(s.store.create_label(input).await?))
}

/// One label.
#[utoipa::path(get, path = "/api/labels/{id}", tag = "labels", params(("id" = String, Path)),
    responses((status = 200, body = Data<Label>), (status = 404)))]
async fn get_label(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Data<Label>>> {
    Ok(ok(s.store.get_label(&id).await?))
}

#[utoipa::path(patch, path = "/api/labels/{id}", tag = "labels", params(("id" = String, Path)),
    request_body = LabelPatch, responses((status = 200, body = Data<Label>), (status = 404),
        (status = 409, description = "The name is taken"), (status = 422)))]
async fn update_label(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<LabelPatch>,
) -> ApiResult<axum::Json<Data<Label>>> {
    Ok(ok(s.store.update_label(&id, patch).await?))
}

#[utoipa::path(delete, path = "/api/labels/{id}", tag = "labels", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
async fn delete_label(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.store.delete_label(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
