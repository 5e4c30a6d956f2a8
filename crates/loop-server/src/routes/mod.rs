//! One file per resource. Each exposes an `OpenApiRouter`; `api` joins them behind auth.

pub mod comments;
pub mod dashboard;
pub mod dispatch;
pub mod goals;
pub mod hypotheses;
pub mod issues;
pub mod labels;
pub mod landing;
pub mod me;
pub mod metrics;
pub mod projects;
pub mod questions;
pub mod relations;
pub mod sessions;
pub mod settings;
pub mod signals;
pub mod system;
pub mod templates;
pub mod tokens;
pub mod triage;
pub mod webhooks;

use axum::Json;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use serde::Serialize;
use utoipa::OpenApi;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::openapi::ApiDoc;

/// Every authenticated route under `/api`.
pub fn api(state: AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(issues::router())
        .merge(hypotheses::router())
        .merge(triage::router())
        .merge(relations::router())
        .merge(comments::router())
        .merge(projects::router())
        .merge(goals::router())
        .merge(labels::router())
        .merge(templates::router())
        .merge(dispatch::router())
        .merge(sessions::router())
        .merge(signals::router())
        .merge(dashboard::router())
        .merge(metrics::router())
        .merge(settings::router())
        .merge(tokens::router())
        .merge(questions::router())
        .merge(landing::router())
        .merge(me::router())
        .route_layer(from_fn_with_state(state, crate::auth::require_bearer))
        // Webhooks are authenticated by their provider's signature, never by Bearer.
        .merge(webhooks::router())
}

/// The `{"data": …}` envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

pub fn ok<T>(data: T) -> Json<Data<T>> {
    Json(Data { data })
}

pub fn created<T>(data: T) -> (StatusCode, Json<Data<T>>) {
    (StatusCode::CREATED, Json(Data { data }))
}
