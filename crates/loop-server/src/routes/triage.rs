//! `POST /api/issues/{id}/duplicate`: fold an issue into the one it repeats. (Snoozing is
//! `PATCH /api/issues/{id}` with `notBefore`; the stale policy runs in the sweeper.)

use axum::Extension;
use axum::extract::State;
use loop_core::Actor;
use loop_core::issue::Issue;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, ok};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{JsonBody, Path};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(mark_duplicate))
}

/// The body of `POST /api/issues/{id}/duplicate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DuplicateOf {
    /// The issue this one repeats (id or number).
    #[schema(min_length = 1)]
    pub of: String,
}

/// Mark an issue a duplicate of another: a `duplicate` relation, a comment on each, its signal
/// occurrences counted on the other's signal, and the duplicate closed (canceled). Returns the
/// closed duplicate.
#[utoipa::path(post, path = "/api/issues/{id}/duplicate", tag = "issues", params(("id" = String, Path)),
    request_body = DuplicateOf,
    responses((status = 200, body = Data<Issue>), (status = 404), (status = 409, description = "Already closed"),
        (status = 422, description = "No such issue, or itself")))]
async fn mark_duplicate(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DuplicateOf>,
) -> ApiResult<axum::Json<Data<Issue>>> {
    Ok(ok(s.store.mark_duplicate(&id, body.of.trim(), &actor).await?))
}
