//! Unauthenticated routes: health, identity, the OpenAPI document, and the JSON 404.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;

pub fn router(openapi_json: Arc<String>) -> Router<AppState> {
    Router::new().route("/health", get(health)).route("/", get(root)).route(
        "/api/openapi.json",
        get(move || {
            let doc = openapi_json.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], doc.as_str().to_owned()) }
        }),
    )
}

/// 200 when the database answers and takes writes; 503 otherwise, with the reason (see
/// `health.rs`: while writes fail, a real write is tried at most every few seconds).
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let timestamp = loop_core::SystemClock.now_string();
    let unhealthy = |database: &str, reason: &str| {
        let body = json!({ "ok": false, "service": "loop-api", "timestamp": timestamp, "database": database, "reason": reason });
        (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], Json(body)).into_response()
    };
    if let Some(fault) = state.health.check(state.store.as_ref()).await {
        return unhealthy("degraded", crate::health::reason(&fault));
    }
    match state.store.ping().await {
        Ok(()) => {
            Json(json!({ "ok": true, "service": "loop-api", "timestamp": timestamp, "database": "ok" })).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            unhealthy("unreachable", "the database does not answer")
        }
    }
}

/// Clients get `{name, version}`; a browser is sent to the dashboard.
async fn root(headers: axum::http::HeaderMap) -> axum::response::Response {
    let wants_html = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if wants_html {
        return axum::response::Redirect::to("/issues").into_response();
    }
    Json(json!({ "name": "Loop API", "version": env!("CARGO_PKG_VERSION") })).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "No such route; see GET /api/openapi.json")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This route does not take that method; see GET /api/openapi.json",
    )
}
