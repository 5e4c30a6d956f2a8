//! Agent sessions: list them, renew a lease, release or fail a claim, keep what ran in one.

use axum::Extension;
use axum::extract::State;
use loop_core::Actor;
use loop_core::page::Paged;
use loop_core::session::{AgentSession, NewSessionRecord, SessionFilter, SessionOutcome, SessionRecord, SessionReport};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, ok};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, OptionalJsonBody, Params, Path};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue_sessions))
        .routes(routes!(list_sessions))
        .routes(routes!(get_session))
        .routes(routes!(heartbeat))
        .routes(routes!(release))
        .routes(routes!(fail))
        .routes(routes!(put_record, get_record))
}

/// An issue's sessions, oldest first.
#[utoipa::path(get, path = "/api/issues/{id}/sessions", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = Paged<AgentSession>), (status = 404)))]
async fn issue_sessions(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Paged<AgentSession>>> {
    let data = s.store.issue_sessions(&id).await?;
    Ok(axum::Json(Paged { total: data.len() as u64, data }))
}

/// Sessions, newest first.
#[utoipa::path(get, path = "/api/sessions", tag = "sessions",
    params(
        ("issueId" = Option<String>, Query), ("agent" = Option<String>, Query),
        ("outcome" = Option<String>, Query, description = "done, canceled, failed, expired or released"),
        ("open" = Option<bool>, Query, description = "true: only sessions holding a lease"),
        ("limit" = Option<i32>, Query), ("offset" = Option<i32>, Query),
    ),
    responses((status = 200, body = Paged<AgentSession>), (status = 400)))]
async fn list_sessions(State(s): State<AppState>, params: Params) -> ApiResult<axum::Json<Paged<AgentSession>>> {
    let filter = SessionFilter {
        issue_id: params.text("issueId"),
        agent: params.text("agent"),
        outcome: params
            .text("outcome")
            .map(|o| o.trim().parse::<SessionOutcome>())
            .transpose()
            .map_err(|m| ApiError::query("outcome", m))?,
        open: params.bool("open")?,
    };
    Ok(axum::Json(s.store.list_sessions(&filter, params.page()?).await?))
}

#[utoipa::path(get, path = "/api/sessions/{id}", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = Data<AgentSession>), (status = 404)))]
async fn get_session(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Data<AgentSession>>> {
    Ok(ok(s.store.get_session(&id).await?))
}

/// Renew the lease for another lease period. 409 `session_ended` once the session has ended
/// (for example, its lease expired and the issue may be someone else's now).
#[utoipa::path(post, path = "/api/sessions/{id}/heartbeat", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = Data<AgentSession>), (status = 404), (status = 409)))]
async fn heartbeat(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Data<AgentSession>>> {
    let ttl = s.config.lease_ttl.as_millis() as i64;
    Ok(ok(s.store.heartbeat(&id, ttl).await?))
}

/// Give the issue back without finishing it: the session ends `released`, the issue returns to
/// `todo`. The body (optional) reports `summary`, `tokens`, `costUsd`, `durationMs`.
#[utoipa::path(post, path = "/api/sessions/{id}/release", tag = "sessions", params(("id" = String, Path)),
    request_body(content = Option<SessionReport>),
    responses((status = 200, body = Data<AgentSession>), (status = 404), (status = 409)))]
async fn release(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    OptionalJsonBody(report): OptionalJsonBody<SessionReport>,
) -> ApiResult<axum::Json<Data<AgentSession>>> {
    Ok(ok(s.store.end_session(&id, SessionOutcome::Released, report, &actor).await?))
}

/// Report a failed attempt: the session ends `failed`, the issue returns to `todo`, and the
/// next claim of it sees this attempt in `previousSessions`.
#[utoipa::path(post, path = "/api/sessions/{id}/fail", tag = "sessions", params(("id" = String, Path)),
    request_body(content = Option<SessionReport>),
    responses((status = 200, body = Data<AgentSession>), (status = 404), (status = 409)))]
async fn fail(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    OptionalJsonBody(report): OptionalJsonBody<SessionReport>,
) -> ApiResult<axum::Json<Data<AgentSession>>> {
    Ok(ok(s.store.end_session(&id, SessionOutcome::Failed, report, &actor).await?))
}

/// Keep what ran in the session (open or ended): an attestation object (the agent command and
/// its exit, verify commands, branch, commits, PR, model…), the agent's transcript, and the
/// tokens, cost and duration, which also go on the session. Replaces an earlier record.
#[utoipa::path(put, path = "/api/sessions/{id}/record", tag = "sessions", params(("id" = String, Path)),
    request_body = NewSessionRecord,
    responses((status = 200, body = Data<SessionRecord>), (status = 404)))]
async fn put_record(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(record): JsonBody<NewSessionRecord>,
) -> ApiResult<axum::Json<Data<SessionRecord>>> {
    Ok(ok(s.store.record_session(&id, record).await?))
}

/// What ran in the session, as its runner recorded it; 404 when it recorded nothing.
#[utoipa::path(get, path = "/api/sessions/{id}/record", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = Data<SessionRecord>), (status = 404)))]
async fn get_record(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Data<SessionRecord>>> {
    match s.store.session_record(&id).await? {
        Some(record) => Ok(ok(record)),
        None => Err(loop_core::Error::not_found("Session record", id).into()),
    }
}
