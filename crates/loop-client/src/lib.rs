//! A typed HTTP client for the Loop API. Responses decode into `loop-core`'s types, so client
//! and server share one definition of every wire shape. Request bodies are anything
//! serialisable (usually a `serde_json::json!` value), so callers can send exactly what a
//! person or script asked for — including invalid input, which the server must reject.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use loop_core::comment::{Comment, ThreadedComment};
use loop_core::dispatch::{Explanation, QueueEntry};
use loop_core::event::IssueEvent;
use loop_core::goal::Goal;
use loop_core::issue::{Issue, IssueDetail};
use loop_core::label::Label;
use loop_core::page::Paged;
use loop_core::project::{Project, ProjectDetail};
use loop_core::relation::Relation;
use loop_core::session::AgentSession;
use loop_core::template::{PromptReview, PromptTemplate, PromptVersion, TemplateDetail};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached at all.
    #[error("cannot reach the Loop server at {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    /// The server answered with an error status; `code` and `message` come from its body.
    #[error("{message} (HTTP {status})")]
    Api { status: u16, code: String, message: String, body: Value },
    /// The server answered 2xx with a body this client cannot read.
    #[error("unexpected response from {url}: {message}")]
    Decode { url: String, message: String },
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The request field a validation error names (`details.field` of the error body).
    pub fn field(&self) -> Option<&str> {
        match self {
            ClientError::Api { body, .. } => body["details"]["field"].as_str(),
            _ => None,
        }
    }

    /// True when the server has no such route at all (as opposed to a missing entity): the
    /// server is older than the caller, or the URL does not point at a Loop server.
    pub fn is_unknown_route(&self) -> bool {
        match self {
            ClientError::Api { status: 404, code, body, .. } => {
                code == "route_not_found" || (code.is_empty() && body.is_null())
            }
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A raw response, for callers that need the status and body as they are.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub body: Value,
    pub text: String,
}

#[derive(Debug, serde::Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Clone)]
pub struct LoopClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    headers: HeaderMap,
}

impl LoopClient {
    /// `base` is the server origin, e.g. `http://127.0.0.1:5667` (a trailing slash is fine).
    pub fn new(base: impl Into<String>, token: Option<String>) -> Self {
        let base = base.into().trim_end_matches('/').to_owned();
        Self { base, token, http: http_client(None, None), headers: HeaderMap::new() }
    }

    /// Gives up connecting after `connect` and on any request after `total` (none by default).
    pub fn with_timeouts(mut self, connect: Duration, total: Duration) -> Self {
        self.http = http_client(Some(connect), Some(total));
        self
    }

    /// Sends `name: value` with every request, e.g. `X-Loop-Agent` (the claiming agent's name).
    /// An invalid header name or value is an error, not a panic.
    pub fn with_header(mut self, name: &str, value: &str) -> std::result::Result<Self, String> {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header name {name:?}: {e}"))?;
        let v = HeaderValue::from_str(value).map_err(|e| format!("header {name} value {value:?}: {e}"))?;
        self.headers.insert(n, v);
        Ok(self)
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends any request and returns the status and body without interpreting them.
    pub async fn raw(&self, method: Method, path: &str, body: Option<(&str, &str)>) -> Result<RawResponse> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url).headers(self.headers.clone());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some((content_type, text)) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, content_type).body(text.to_owned());
        }
        let resp = req.send().await.map_err(|source| ClientError::Unreachable { url: url.clone(), source })?;
        let status = resp.status();
        let content_type =
            resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = resp.text().await.map_err(|source| ClientError::Unreachable { url: url.clone(), source })?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(RawResponse { status, content_type, body, text })
    }

    async fn send<T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<Value>) -> Result<T> {
        let text = body.map(|b| b.to_string());
        let raw = self.raw(method, path, text.as_deref().map(|t| ("application/json", t))).await?;
        if !raw.status.is_success() {
            let message = raw.body["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| if raw.text.is_empty() { raw.status.to_string() } else { raw.text.clone() });
            return Err(ClientError::Api {
                status: raw.status.as_u16(),
                code: raw.body["code"].as_str().unwrap_or("").to_owned(),
                message,
                body: raw.body,
            });
        }
        let decode = |message: String| ClientError::Decode { url: format!("{}{}", self.base, path), message };
        if raw.body.is_null() && !matches!(raw.text.trim(), "" | "null") {
            // A login page from a proxy, say: not something to read as "nothing".
            let start: String = raw.text.trim().chars().take(60).collect();
            return Err(decode(format!("the body is not JSON: {start:?}")));
        }
        serde_json::from_value(raw.body).map_err(|e| decode(e.to_string()))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.send(Method::POST, path, Some(to_value(body))).await
    }

    pub async fn patch<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.send(Method::PATCH, path, Some(to_value(body))).await
    }

    pub async fn put<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.send(Method::PUT, path, Some(to_value(body))).await
    }

    pub async fn delete(&self, path: &str) -> Result<()> {
        self.send::<Value>(Method::DELETE, path, None).await.map(|_| ())
    }

    async fn data<T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<Value>) -> Result<T> {
        self.send::<Envelope<T>>(method, path, body).await.map(|e| e.data)
    }

    // Issues

    /// `query` is a raw query string such as `status=todo,done&limit=10` (may be empty).
    pub async fn list_issues(&self, query: &str) -> Result<Paged<Issue>> {
        self.get(&with_query("/api/issues", query)).await
    }

    pub async fn create_issue(&self, body: &impl Serialize) -> Result<Issue> {
        self.data(Method::POST, "/api/issues", Some(to_value(body))).await
    }

    pub async fn issue(&self, id: &str) -> Result<IssueDetail> {
        self.data(Method::GET, &format!("/api/issues/{}", seg(id)), None).await
    }

    pub async fn update_issue(&self, id: &str, body: &impl Serialize) -> Result<Issue> {
        self.data(Method::PATCH, &format!("/api/issues/{}", seg(id)), Some(to_value(body))).await
    }

    pub async fn delete_issue(&self, id: &str) -> Result<()> {
        self.delete(&format!("/api/issues/{}", seg(id))).await
    }

    pub async fn issue_events(&self, id: &str, query: &str) -> Result<Paged<IssueEvent>> {
        self.get(&with_query(&format!("/api/issues/{}/events", seg(id)), query)).await
    }

    // Relations and comments

    pub async fn create_relation(&self, issue_id: &str, body: &impl Serialize) -> Result<Relation> {
        self.data(Method::POST, &format!("/api/issues/{}/relations", seg(issue_id)), Some(to_value(body))).await
    }

    pub async fn delete_relation(&self, id: &str) -> Result<()> {
        self.delete(&format!("/api/relations/{}", seg(id))).await
    }

    pub async fn comments(&self, issue_id: &str) -> Result<Vec<ThreadedComment>> {
        self.data(Method::GET, &format!("/api/issues/{}/comments", seg(issue_id)), None).await
    }

    pub async fn create_comment(&self, issue_id: &str, body: &impl Serialize) -> Result<Comment> {
        self.data(Method::POST, &format!("/api/issues/{}/comments", seg(issue_id)), Some(to_value(body))).await
    }

    // Projects, goals, labels

    pub async fn list_projects(&self, query: &str) -> Result<Paged<Project>> {
        self.get(&with_query("/api/projects", query)).await
    }

    pub async fn create_project(&self, body: &impl Serialize) -> Result<Project> {
        self.data(Method::POST, "/api/projects", Some(to_value(body))).await
    }

    pub async fn project(&self, id: &str) -> Result<ProjectDetail> {
        self.data(Method::GET, &format!("/api/projects/{}", seg(id)), None).await
    }

    pub async fn update_project(&self, id: &str, body: &impl Serialize) -> Result<Project> {
        self.data(Method::PATCH, &format!("/api/projects/{}", seg(id)), Some(to_value(body))).await
    }

    pub async fn delete_project(&self, id: &str) -> Result<()> {
        self.delete(&format!("/api/projects/{}", seg(id))).await
    }

    pub async fn list_goals(&self, query: &str) -> Result<Paged<Goal>> {
        self.get(&with_query("/api/goals", query)).await
    }

    pub async fn create_goal(&self, body: &impl Serialize) -> Result<Goal> {
        self.data(Method::POST, "/api/goals", Some(to_value(body))).await
    }

    pub async fn goal(&self, id: &str) -> Result<Goal> {
        self.data(Method::GET, &format!("/api/goals/{}", seg(id)), None).await
    }

    pub async fn update_goal(&self, id: &str, body: &impl Serialize) -> Result<Goal> {
        self.data(Method::PATCH, &format!("/api/goals/{}", seg(id)), Some(to_value(body))).await
    }

    pub async fn delete_goal(&self, id: &str) -> Result<()> {
        self.delete(&format!("/api/goals/{}", seg(id))).await
    }

    pub async fn list_labels(&self, query: &str) -> Result<Paged<Label>> {
        self.get(&with_query("/api/labels", query)).await
    }

    pub async fn create_label(&self, body: &impl Serialize) -> Result<Label> {
        self.data(Method::POST, "/api/labels", Some(to_value(body))).await
    }

    pub async fn label(&self, id: &str) -> Result<Label> {
        self.data(Method::GET, &format!("/api/labels/{}", seg(id)), None).await
    }

    pub async fn update_label(&self, id: &str, body: &impl Serialize) -> Result<Label> {
        self.data(Method::PATCH, &format!("/api/labels/{}", seg(id)), Some(to_value(body))).await
    }

    pub async fn delete_label(&self, id: &str) -> Result<()> {
        self.delete(&format!("/api/labels/{}", seg(id))).await
    }

    // Templates, versions, reviews

    pub async fn list_templates(&self, query: &str) -> Result<Paged<PromptTemplate>> {
        self.get(&with_query("/api/templates", query)).await
    }

    pub async fn create_template(&self, body: &impl Serialize) -> Result<PromptTemplate> {
        self.data(Method::POST, "/api/templates", Some(to_value(body))).await
    }

    pub async fn template(&self, id: &str) -> Result<TemplateDetail> {
        self.data(Method::GET, &format!("/api/templates/{}", seg(id)), None).await
    }

    pub async fn update_template(&self, id: &str, body: &impl Serialize) -> Result<PromptTemplate> {
        self.data(Method::PATCH, &format!("/api/templates/{}", seg(id)), Some(to_value(body))).await
    }

    pub async fn delete_template(&self, id: &str) -> Result<()> {
        self.delete(&format!("/api/templates/{}", seg(id))).await
    }

    pub async fn list_versions(&self, template_id: &str, query: &str) -> Result<Paged<PromptVersion>> {
        self.get(&with_query(&format!("/api/templates/{}/versions", seg(template_id)), query)).await
    }

    pub async fn create_version(&self, template_id: &str, body: &impl Serialize) -> Result<PromptVersion> {
        self.data(Method::POST, &format!("/api/templates/{}/versions", seg(template_id)), Some(to_value(body))).await
    }

    pub async fn promote_version(&self, template_id: &str, version_id: &str) -> Result<PromptVersion> {
        let path = format!("/api/templates/{}/versions/{}/promote", seg(template_id), seg(version_id));
        self.data(Method::POST, &path, None).await
    }

    pub async fn create_review(&self, body: &impl Serialize) -> Result<PromptReview> {
        self.data(Method::POST, "/api/prompt-reviews", Some(to_value(body))).await
    }

    pub async fn list_reviews(&self, template_id: &str, query: &str) -> Result<Paged<PromptReview>> {
        self.get(&with_query(&format!("/api/templates/{}/reviews", seg(template_id)), query)).await
    }

    // Dispatch and sessions

    /// The eligible issues in dispatch order, with score breakdowns; claims nothing.
    pub async fn dispatch_queue(&self, query: &str) -> Result<Paged<QueueEntry>> {
        self.get(&with_query("/api/dispatch/queue", query)).await
    }

    /// Whether an issue (id or number) is dispatchable, and why not.
    pub async fn explain(&self, id: &str) -> Result<Explanation> {
        self.data(Method::GET, &format!("/api/dispatch/explain/{}", seg(id)), None).await
    }

    /// `query` such as `open=true` or `issueId=…&outcome=failed`.
    pub async fn list_sessions(&self, query: &str) -> Result<Paged<AgentSession>> {
        self.get(&with_query("/api/sessions", query)).await
    }

    pub async fn issue_sessions(&self, id: &str) -> Result<Paged<AgentSession>> {
        self.get(&format!("/api/issues/{}/sessions", seg(id))).await
    }
}

fn http_client(connect: Option<Duration>, total: Option<Duration>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().user_agent(concat!("loop-client/", env!("CARGO_PKG_VERSION")));
    if let Some(c) = connect {
        builder = builder.connect_timeout(c);
    }
    if let Some(t) = total {
        builder = builder.timeout(t);
    }
    builder.build().expect("an HTTP client with default TLS builds")
}

/// Percent-encodes one path segment, for callers that build their own paths.
pub fn path_segment(s: &str) -> String {
    seg(s)
}

fn to_value(body: &impl Serialize) -> Value {
    serde_json::to_value(body).expect("request bodies serialise")
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") }
}

/// Percent-encodes one path segment (ids are opaque strings).
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
