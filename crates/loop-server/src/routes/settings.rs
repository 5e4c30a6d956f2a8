//! `GET`/`PATCH /api/settings`: the team's settings (improvement thresholds, system labels).

use axum::extract::State;
use loop_core::settings::{Settings, SettingsPatch};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, ok};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::JsonBody;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, update_settings))
}

/// The settings: when a prompt version gets an improvement issue, and the names of the labels
/// Loop applies itself (`null`: not applied).
#[utoipa::path(get, path = "/api/settings", tag = "system", responses((status = 200, body = Data<Settings>)))]
async fn get_settings(State(s): State<AppState>) -> ApiResult<axum::Json<Data<Settings>>> {
    Ok(ok(s.store.settings().await?))
}

/// Change settings; absent fields are left alone. Takes effect at once, on every node.
#[utoipa::path(patch, path = "/api/settings", tag = "system", request_body = SettingsPatch,
    responses((status = 200, body = Data<Settings>), (status = 422)))]
async fn update_settings(
    State(s): State<AppState>,
    JsonBody(patch): JsonBody<SettingsPatch>,
) -> ApiResult<axum::Json<Data<Settings>>> {
    Ok(ok(s.store.update_settings(patch).await?))
}
