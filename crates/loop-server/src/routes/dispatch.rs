//! `/api/dispatch`: claim the next issue (optionally waiting for one), the queue, and why an
//! issue is or is not dispatchable.

use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loop_core::Actor;
use loop_core::dispatch::{Claim, ClaimRequest, Explanation, QueueEntry};
use loop_core::issue::Issue;
use loop_core::page::Paged;
use loop_core::session::AgentSession;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, ok};
use crate::caller::{Caller, header_text};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Params, Path};
use crate::{AppState, prompting};

/// The longest a `?wait=` may hold a request.
pub const MAX_WAIT_SECS: u64 = 60;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(next))
        .routes(routes!(claim_issue))
        .routes(routes!(queue))
        .routes(routes!(explain))
}

/// What a claim returns: the bare keys the MCP client and raw HTTP callers read, plus a `data`
/// copy for the SDK and CLI.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DispatchBody {
    pub issue: Issue,
    /// The hydrated prompt; null when no template applies or rendering failed.
    pub prompt: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub meta: Option<serde_json::Value>,
    /// The session this claim opened: renew it with a heartbeat before `leaseExpiresAt`.
    pub session: AgentSession,
    /// A key scoped to this claim (its issue, its session, its review), for the agent doing
    /// the work: it stops working when the session ends.
    pub token: String,
}

/// The wire shape, for the OpenAPI document: `Dispatched` writes it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DispatchResponse {
    #[serde(flatten)]
    pub body: DispatchBody,
    pub data: DispatchBody,
}

/// A claim's response: the body serialised once and written twice, as the bare keys and as
/// `data` (the prompt is most of the bytes).
pub struct Dispatched(DispatchBody);

impl IntoResponse for Dispatched {
    fn into_response(self) -> Response {
        let body = match serde_json::to_vec(&self.0) {
            Ok(body) => body,
            Err(e) => return ApiError::from(loop_core::Error::internal(e)).into_response(),
        };
        // `body` is one JSON object: reopen it to append `"data": body`.
        let mut out = Vec::with_capacity(2 * body.len() + 10);
        out.extend_from_slice(&body[..body.len() - 1]);
        out.extend_from_slice(b",\"data\":");
        out.extend_from_slice(&body);
        out.push(b'}');
        ([(axum::http::header::CONTENT_TYPE, "application/json")], out).into_response()
    }
}

async fn respond(state: &AppState, mut claim: Claim) -> Dispatched {
    let (prompt, meta) = prompting::for_claim(state, &mut claim).await;
    let meta = meta.map(|m| serde_json::to_value(m).unwrap_or_default());
    let token = crate::token::for_session(&state.config.api_key, &claim.session.id);
    Dispatched(DispatchBody { issue: claim.issue, prompt, meta, session: claim.session, token })
}

/// Who is claiming: the caller's name; under the master key, an `X-Loop-Agent` header names
/// the agent (a named token's workers are already in its actor's name).
fn claim_request(
    state: &AppState,
    caller: &Caller,
    actor: &Actor,
    headers: &HeaderMap,
    project_id: Option<String>,
) -> ApiResult<ClaimRequest> {
    Ok(ClaimRequest {
        agent: caller.claim_agent(actor, headers)?,
        project_id,
        idempotency_key: header_text(headers, "Idempotency-Key")?,
        lease_ttl_ms: state.config.lease_ttl.as_millis() as i64,
        limit: caller.claim_limit(),
    })
}

/// Claim the highest-scoring eligible issue: it becomes `in_progress` under a new session. 204
/// when nothing is eligible; with `?wait=N` (≤ 60 s) the request waits for something to become
/// eligible first. Every call claims another issue, except a retry with the same
/// `Idempotency-Key`, which gets the same claim back while its session is open.
#[utoipa::path(get, path = "/api/dispatch/next", tag = "dispatch",
    params(
        ("projectId" = Option<String>, Query, description = "Only issues of this project (alias: project)"),
        ("wait" = Option<u64>, Query, description = "Seconds to wait for work when the queue is empty (max 60)"),
        ("X-Loop-Agent" = Option<String>, Header, description = "Under the master key, the agent's name; under an agent token, a worker (recorded as token/worker)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key get the same claim"),
    ),
    responses((status = 200, body = DispatchResponse), (status = 204, description = "Nothing eligible"),
        (status = 409, description = "This Idempotency-Key claimed before, and that claim has ended")))]
async fn next(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Extension(caller): Extension<Caller>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> ApiResult<Response> {
    if method == Method::HEAD {
        // axum answers HEAD with the GET handler, and this GET claims.
        return Err(head_would_claim());
    }
    let project = params.text("projectId").or_else(|| params.text("project"));
    let wait = match params.int("wait")? {
        None => 0,
        Some(w) if (0..=MAX_WAIT_SECS as i64).contains(&w) => w as u64,
        Some(w) => return Err(ApiError::query("wait", format!("must be 0 to {MAX_WAIT_SECS} seconds, got {w}"))),
    };
    let req = claim_request(&s, &caller, &actor, &headers, project)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut changes = s.changes.subscribe();
    loop {
        changes.borrow_and_update();
        let chooser = prompting::chooser(&s).await;
        if let Some(claim) = s.store.claim_next(&req, chooser).await? {
            return Ok(respond(&s, claim).await.into_response());
        }
        // Wait for any change (or the deadline, or a shutdown), then look again.
        tokio::select! {
            changed = tokio::time::timeout_at(deadline, changes.changed()) => match changed {
                Ok(Ok(())) => continue,
                _ => return Ok(StatusCode::NO_CONTENT.into_response()),
            },
            _ = s.config.closing.closed() => return Ok(StatusCode::NO_CONTENT.into_response()),
        }
    }
}

/// A HEAD must change nothing, and a GET here claims: 405, naming the method to use.
fn head_would_claim() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "HEAD /api/dispatch/next is refused: a GET here claims an issue; send GET to claim",
    )
    .with_header(header::ALLOW, "GET")
}

/// Claim one given issue (by id or number) if it is eligible; 409 with the reasons otherwise.
#[utoipa::path(post, path = "/api/issues/{id}/dispatch", tag = "dispatch", params(("id" = String, Path)),
    responses((status = 200, body = DispatchResponse), (status = 404), (status = 409)))]
async fn claim_issue(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Dispatched> {
    let req = claim_request(&s, &caller, &actor, &headers, None)?;
    let chooser = prompting::chooser(&s).await;
    let claim = s.store.claim_issue(&id, &req, chooser).await?;
    Ok(respond(&s, claim).await)
}

/// The eligible issues in score order (the order `next` hands them out), with the breakdown.
#[utoipa::path(get, path = "/api/dispatch/queue", tag = "dispatch",
    params(("projectId" = Option<String>, Query), ("limit" = Option<i32>, Query), ("offset" = Option<i32>, Query)),
    responses((status = 200, body = Paged<QueueEntry>)))]
async fn queue(State(s): State<AppState>, params: Params) -> ApiResult<axum::Json<Paged<QueueEntry>>> {
    let project = params.text("projectId").or_else(|| params.text("project"));
    Ok(axum::Json(s.store.dispatch_queue(project.as_deref(), params.page()?).await?))
}

/// Whether an issue is eligible, why not (status, each open blocker, the lease holder), and its
/// score breakdown and queue position.
#[utoipa::path(get, path = "/api/dispatch/explain/{id}", tag = "dispatch", params(("id" = String, Path)),
    responses((status = 200, body = Data<Explanation>), (status = 404)))]
async fn explain(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Data<Explanation>>> {
    Ok(ok(s.store.explain(&id).await?))
}
