//! `/api/tokens`: named tokens for agents, people and integrations (admin only, see
//! [`crate::roles`]). A secret is shown once, in the answer that makes it.

use axum::extract::State;
use axum::http::StatusCode;
use loop_core::token::{ApiToken, IssuedToken, NewToken};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, created, ok};
use crate::error::ApiResult;
use crate::extract::{JsonBody, Path};
use crate::{AppState, named_token};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_tokens, create_token)).routes(routes!(revoke_token))
}

/// Every token, revoked and expired ones too; never a secret.
#[utoipa::path(get, path = "/api/tokens", tag = "tokens", responses((status = 200, body = Data<Vec<ApiToken>>)))]
async fn list_tokens(State(s): State<AppState>) -> ApiResult<axum::Json<Data<Vec<ApiToken>>>> {
    Ok(ok(s.store.list_tokens().await?))
}

/// Make a named token. The answer holds its secret (`loopk_…`), the only time it is shown:
/// Loop keeps only its hash.
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = Data<IssuedToken>), (status = 409), (status = 422)))]
async fn create_token(
    State(s): State<AppState>,
    JsonBody(input): JsonBody<NewToken>,
) -> ApiResult<(StatusCode, axum::Json<Data<IssuedToken>>)> {
    let (secret, hash) = named_token::issue();
    let token = s.store.create_token(input, hash).await?;
    Ok(created(IssuedToken { token, secret }))
}

/// Revoke the live token of that name: it stops working at once, on every node.
#[utoipa::path(delete, path = "/api/tokens/{name}", tag = "tokens", params(("name" = String, Path)),
    responses((status = 200, body = Data<ApiToken>), (status = 404)))]
async fn revoke_token(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<axum::Json<Data<ApiToken>>> {
    Ok(ok(s.store.revoke_token(&name).await?))
}
