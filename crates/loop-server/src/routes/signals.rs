//! `POST /api/signals` (ingest) and `GET /api/signals` (with occurrence counts).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use loop_core::Actor;
use loop_core::page::Paged;
use loop_core::signal::{Ingested, MetricReading, Signal, SignalInput};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::caller::{Caller, signal_project};
use crate::error::ApiResult;
use crate::extract::{JsonBody, Params};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_signals, create_signal))
}

/// Record a signal: 201 with a new `signal` issue (in `triage`, or `todo` with auto-triage;
/// priority from severity), or 200 with `deduplicated: true` when an open signal issue has the
/// same fingerprint and this counts as one more occurrence of it. A payload with a `metric` and
/// a numeric `value` (or `current`) is a reading: goals tracking the metric take the value, and
/// hypotheses tested against it see it.
#[utoipa::path(post, path = "/api/signals", tag = "signals", request_body = SignalInput,
    responses((status = 201, body = Object), (status = 200, body = Object), (status = 422)))]
async fn create_signal(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Extension(caller): Extension<Caller>,
    JsonBody(input): JsonBody<SignalInput>,
) -> ApiResult<Response> {
    let mut signal = input.into_new();
    signal.project_id = signal_project(caller.project(), signal.project_id.take())?;
    if s.config.auto_triage {
        signal.status = loop_core::issue::IssueStatus::Todo;
    }
    let reading = MetricReading::in_payload(&signal.payload);
    Ok(ingested(s.store.ingest_signal(signal, None, reading, &actor).await?))
}

/// The response for an ingested signal, shared with the webhooks.
pub fn ingested(result: Ingested) -> Response {
    match result {
        Ingested::Created { signal, issue } => {
            (StatusCode::CREATED, axum::Json(serde_json::json!({ "data": { "signal": signal, "issue": issue } })))
                .into_response()
        }
        Ingested::Repeated { signal, issue } => axum::Json(serde_json::json!({
            "data": { "signal": signal, "issue": issue },
            "deduplicated": true,
        }))
        .into_response(),
        Ingested::DuplicateDelivery => axum::Json(serde_json::json!({ "duplicate": true })).into_response(),
    }
}

/// Signals, newest first; `occurrences` counts the deliveries folded into each.
#[utoipa::path(get, path = "/api/signals", tag = "signals",
    params(("limit" = Option<i32>, Query), ("offset" = Option<i32>, Query)),
    responses((status = 200, body = Paged<Signal>)))]
async fn list_signals(State(s): State<AppState>, params: Params) -> ApiResult<axum::Json<Paged<Signal>>> {
    Ok(axum::Json(s.store.list_signals(params.page()?).await?))
}
