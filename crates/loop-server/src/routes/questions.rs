//! Questions to a person: an agent asks from its claim (the issue waits), a person answers
//! (the issue is dispatched again, the answer in its next prompt).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use loop_core::Actor;
use loop_core::page::Paged;
use loop_core::question::{NewAnswer, NewQuestion, Question};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, created, ok};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{JsonBody, Params, Path};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ask)).routes(routes!(list_questions)).routes(routes!(answer))
}

/// Ask a person: the session ends (`released`, the question as its summary) and its issue
/// returns to `todo` but is not dispatched (`awaitingInput`) until the question is answered.
/// 409 `session_ended` when the claim has already ended.
#[utoipa::path(post, path = "/api/sessions/{id}/questions", tag = "questions", params(("id" = String, Path)),
    request_body = NewQuestion,
    responses((status = 201, body = Data<Question>), (status = 404), (status = 409), (status = 422)))]
async fn ask(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<NewQuestion>,
) -> ApiResult<(StatusCode, axum::Json<Data<Question>>)> {
    Ok(created(s.store.ask_question(&id, input, &actor).await?))
}

/// Questions, oldest first: `open=true` for the inbox of those waiting for an answer.
#[utoipa::path(get, path = "/api/questions", tag = "questions",
    params(
        ("open" = Option<bool>, Query, description = "true: only questions not answered yet"),
        ("issueId" = Option<String>, Query, description = "only this issue's (id or number)"),
        ("limit" = Option<i32>, Query), ("offset" = Option<i32>, Query),
    ),
    responses((status = 200, body = Paged<Question>), (status = 400), (status = 404)))]
async fn list_questions(State(s): State<AppState>, params: Params) -> ApiResult<axum::Json<Paged<Question>>> {
    let open = params.bool("open")?.unwrap_or(false);
    let issue = params.text("issueId");
    Ok(axum::Json(s.store.list_questions(open, issue.as_deref(), params.page()?).await?))
}

/// Answer a question: once none of its questions is open, the issue is dispatched again, with
/// the question and the answer in its prompt. 409 `already_answered`.
#[utoipa::path(post, path = "/api/questions/{id}/answer", tag = "questions", params(("id" = String, Path)),
    request_body = NewAnswer,
    responses((status = 200, body = Data<Question>), (status = 404), (status = 409), (status = 422)))]
async fn answer(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<NewAnswer>,
) -> ApiResult<axum::Json<Data<Question>>> {
    Ok(ok(s.store.answer_question(&id, input, &actor).await?))
}
