//! How the tools reach Loop: one HTTP request at a time, with the caller's credentials. Over
//! stdio that is a real HTTP client ([`HttpApi`]); inside `loop serve` it is the server's own
//! router, called in process with the MCP request's `Authorization` header, so a tool can do
//! exactly what that token may do over HTTP.

use async_trait::async_trait;
use serde_json::Value;

/// An answer from the Loop API: its status and JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

#[async_trait]
pub trait Api: Send + Sync {
    /// Sends one request. `Err` only when no answer came (the server is unreachable); any
    /// HTTP status is an [`Answer`].
    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, String>;
}

/// The Loop API over HTTP, with a key or token and the agent's name.
pub struct HttpApi {
    client: loop_client::LoopClient,
}

impl HttpApi {
    pub fn new(url: &str, key: &str, agent: &str) -> Result<Self, String> {
        let client = loop_client::LoopClient::new(url, Some(key.to_owned())).with_header("X-Loop-Agent", agent)?;
        Ok(Self { client })
    }
}

#[async_trait]
impl Api for HttpApi {
    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let text = body.map(Value::to_string);
        let raw = self
            .client
            .raw(method, path, text.as_deref().map(|t| ("application/json", t)))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Answer { status: raw.status.as_u16(), body: raw.body })
    }
}
