//! Comments: `GET|POST /api/issues/:id/comments`, threaded to any depth.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use loop_core::Actor;
use loop_core::actor::ActorKind;
use loop_core::comment::{AuthorType, Comment, NewComment, ThreadedComment};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, created, ok};
use crate::AppState;
use crate::caller::Caller;
use crate::error::ApiResult;
use crate::extract::{JsonBody, Path};
use crate::scope::Scope;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_comments, create_comment))
}

/// Top-level comments oldest first, each with its `replies`, recursively.
#[utoipa::path(get, path = "/api/issues/{id}/comments", tag = "comments", params(("id" = String, Path)),
    responses((status = 200, body = Data<Vec<ThreadedComment>>), (status = 404)))]
async fn list_comments(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Data<Vec<ThreadedComment>>>> {
    Ok(ok(s.store.list_comments(&id).await?))
}

/// Add a comment (`content` is accepted for `body`; `authorType` defaults to `agent`).
#[utoipa::path(post, path = "/api/issues/{id}/comments", tag = "comments", params(("id" = String, Path)),
    request_body = NewComment,
    responses((status = 201, body = Data<Comment>), (status = 404), (status = 422)))]
async fn create_comment(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Extension(caller): Extension<Caller>,
    scope: Option<Extension<Scope>>,
    Path(id): Path<String>,
    JsonBody(mut input): JsonBody<NewComment>,
) -> ApiResult<(StatusCode, axum::Json<Data<Comment>>)> {
    if let Some(Extension(scope)) = &scope {
        scope.author_comment(&mut input);
    } else if caller.is_named() {
        // A named token writes under its own name, as what it is.
        input.author_name = None;
        input.author_type = Some(if actor.kind == ActorKind::Human { AuthorType::Human } else { AuthorType::Agent });
    }
    Ok(created(s.store.create_comment(&id, input, &actor).await?))
}
