//! `POST /api/issues/{id}/hypothesis/resolve`: a person, or the agent of the monitor that
//! watches it, resolves a hypothesis with a reason. (The data resolves it too: see the store's
//! `hypotheses` module.)

use axum::Extension;
use axum::extract::State;
use loop_core::Actor;
use loop_core::hypothesis::Resolution;
use loop_core::issue::Issue;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, ok};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{JsonBody, Path};
use crate::scope::Scope;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(resolve_hypothesis))
}

/// Resolve a hypothesis as `validated`, `invalidated` or `inconclusive`, with the reason (what
/// was observed). A claim's token may resolve only the hypothesis its monitor watches. 409 when
/// it is already resolved.
#[utoipa::path(post, path = "/api/issues/{id}/hypothesis/resolve", tag = "issues", params(("id" = String, Path)),
    request_body = Resolution,
    responses((status = 200, body = Data<Issue>), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn resolve_hypothesis(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    scope: Option<Extension<Scope>>,
    Path(id): Path<String>,
    JsonBody(resolution): JsonBody<Resolution>,
) -> ApiResult<axum::Json<Data<Issue>>> {
    if let Some(Extension(scope)) = &scope {
        let (own, target) = (s.store.get_issue(&scope.issue_id).await?, s.store.get_issue(&id).await?);
        scope.check_resolution(&own, &target)?;
    }
    Ok(ok(s.store.resolve_hypothesis(&id, resolution, &actor).await?))
}
