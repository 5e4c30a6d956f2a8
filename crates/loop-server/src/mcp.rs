//! `/mcp`: Loop's MCP server over Streamable HTTP (stateless), behind the same Bearer
//! credentials as `/api/*`. Each tool calls this server's own API in process, with the MCP
//! request's `Authorization` and `X-Loop-Agent` headers, so it can do exactly what those
//! credentials may do over HTTP: the master key anything, a claim's token its claim.

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use loop_mcp::api::{Answer, Api};
use loop_mcp::{Context, ToolSet};
use serde_json::Value;
use tower::ServiceExt;

use crate::AppState;

/// The largest API answer a tool reads (a page of 200 issues is far below it).
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// `/mcp`, serving `api` (the rest of the application) to the tools.
pub fn router(state: AppState, api: Router) -> Router {
    let service = loop_mcp::http_service(ToolSet::All, move |parts| {
        let header = |name| parts.headers.get(name).cloned();
        let caller = InProcess {
            api: api.clone(),
            authorization: header(header::AUTHORIZATION.as_str()),
            agent: header("x-loop-agent"),
        };
        Context::new(Box::new(caller), None)
    });
    Router::new()
        .route_service("/mcp", service)
        .route_layer(axum::middleware::from_fn_with_state(state, crate::auth::require_credentials))
}

/// The API, called without a network hop, as the MCP caller.
struct InProcess {
    api: Router,
    authorization: Option<HeaderValue>,
    agent: Option<HeaderValue>,
}

#[async_trait]
impl Api for InProcess {
    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, String> {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in [("authorization", &self.authorization), ("x-loop-agent", &self.agent)] {
            if let Some(v) = value {
                request = request.header(name, v);
            }
        }
        let request = match body {
            Some(b) => request.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
            None => request.body(Body::empty()),
        }
        .map_err(|e| e.to_string())?;
        let response = self.api.clone().oneshot(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES).await.map_err(|e| e.to_string())?;
        Ok(Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) })
    }
}
