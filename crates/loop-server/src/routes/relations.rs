//! Relations: `POST /api/issues/:id/relations`, `DELETE /api/relations/:id`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use loop_core::Actor;
use loop_core::relation::{NewRelation, Relation};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, created};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{JsonBody, Path};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_relation)).routes(routes!(delete_relation))
}

/// Relate two issues. `A blocks B` and `B blocked_by A` are the same relation; duplicates → 409.
#[utoipa::path(post, path = "/api/issues/{id}/relations", tag = "relations", params(("id" = String, Path)),
    request_body = NewRelation,
    responses((status = 201, body = Data<Relation>), (status = 404), (status = 409), (status = 422)))]
async fn create_relation(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<NewRelation>,
) -> ApiResult<(StatusCode, axum::Json<Data<Relation>>)> {
    Ok(created(s.store.create_relation(&id, input, &actor).await?))
}

#[utoipa::path(delete, path = "/api/relations/{id}", tag = "relations", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
async fn delete_relation(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_relation(&id, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
