//! `GET /api/me`: who the request's credentials are, and the name a claim made with them (and
//! its `X-Loop-Agent`) is recorded under, so a runner counts its own sessions.

use axum::Extension;
use axum::http::HeaderMap;
use loop_core::Actor;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Data, ok};
use crate::AppState;
use crate::caller::Caller;
use crate::error::ApiResult;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// The name actions are recorded under.
    pub name: String,
    /// `master` (the master key), `claim` (a claim's token), or a named token's role.
    pub role: String,
    /// The name a claim sent with these credentials and headers is recorded under.
    pub agent_name: String,
}

/// Who is asking: the name its actions are recorded under, its role, and the agent name its
/// claims get (under the master key, `X-Loop-Agent`; under an agent token, `token/worker`).
#[utoipa::path(get, path = "/api/me", tag = "system",
    params(("X-Loop-Agent" = Option<String>, Header, description = "The worker or agent name a claim would send")),
    responses((status = 200, body = Data<Me>)))]
async fn me(
    Extension(actor): Extension<Actor>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Data<Me>>> {
    let role = match &caller {
        Caller::Master => "master",
        Caller::Claim(_) => "claim",
        Caller::Named(t) => t.role.as_str(),
    };
    let agent_name = caller.claim_agent(&actor, &headers)?;
    Ok(ok(Me { name: actor.name, role: role.to_owned(), agent_name }))
}
