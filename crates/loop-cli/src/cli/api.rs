//! The CLI's view of the server: `loop-client` requests returning the API's JSON as it is (so
//! `--json` prints exactly what the server sent and the CLI shows whatever fields a server has),
//! plus lookups of projects, labels, goals and templates by name.

use std::time::Duration;

use loop_client::{ClientError, LoopClient, path_segment};
use reqwest::Method;
use serde_json::Value;

use super::args::IssueRef;
use super::config::Resolved;
use super::error::{About, ApiFailure, CliError};
use super::output::{arr, s};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Api {
    client: LoopClient,
}

/// `/api/issues/{id}` with the id encoded.
pub fn issue_path(r: &IssueRef) -> String {
    format!("/api/issues/{}", path_segment(r.key()))
}

pub fn seg(s: &str) -> String {
    path_segment(s)
}

/// The `data` of an envelope; a bare object (dispatch, preview) as it is.
pub fn data(mut v: Value) -> Value {
    match v.get_mut("data") {
        Some(d) => d.take(),
        None => v,
    }
}

impl Api {
    pub fn new(conn: &Resolved) -> Self {
        Self::with_timeout(conn, REQUEST_TIMEOUT)
    }

    pub fn with_timeout(conn: &Resolved, total: Duration) -> Self {
        let client = LoopClient::new(&conn.url, conn.token.clone()).with_timeouts(CONNECT_TIMEOUT, total);
        Self { client }
    }

    /// Sends `X-Loop-Agent: name` with every request (the claiming agent's identity).
    pub fn with_agent(self, name: &str) -> Result<Self, CliError> {
        self.with_header("X-Loop-Agent", name)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, CliError> {
        self.client = self.client.with_header(name, value).map_err(CliError::usage)?;
        Ok(self)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, CliError> {
        let request = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let r = match (method.clone(), body) {
            (Method::GET, _) => self.client.get::<Value>(path).await,
            (Method::POST, b) => self.client.post::<Value>(path, &b.unwrap_or(Value::Null)).await,
            (Method::PATCH, b) => self.client.patch::<Value>(path, &b.unwrap_or(Value::Null)).await,
            (Method::PUT, b) => self.client.put::<Value>(path, &b.unwrap_or(Value::Null)).await,
            (Method::DELETE, _) => self.client.delete(path).await.map(|_| Value::Null),
            (m, _) => unreachable!("the CLI does not send {m}"),
        };
        let r = r.and_then(|v| {
            // Every body of Loop's API is a `{data: …}` envelope (bare keys come as well).
            if v.is_null() || v.get("data").is_some() {
                Ok(v)
            } else {
                Err(ClientError::Decode {
                    url: format!("{}{path}", self.client.base_url()),
                    message: "the body has no \"data\"".into(),
                })
            }
        });
        r.map_err(|err| CliError::Api(Box::new(ApiFailure { err, request, subject: None })))
    }

    /// The whole response body (`{data, total}` for lists); `null` for 204.
    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, CliError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// POST without a body (promote).
    pub async fn post_empty(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::POST, path, None).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Result<Value, CliError> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Result<Value, CliError> {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<(), CliError> {
        self.call(Method::DELETE, path, None).await.map(|_| ())
    }

    /// Every row of a paginated list, 200 at a time.
    pub async fn all(&self, path: &str) -> Result<Vec<Value>, CliError> {
        let mut out = Vec::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        loop {
            let page = self.get(&format!("{path}{sep}limit=200&offset={}", out.len())).await?;
            let rows = arr(&page["data"]).to_vec();
            let total = page["total"].as_u64().unwrap_or(0) as usize;
            let got = rows.len();
            out.extend(rows);
            if got == 0 || out.len() >= total || out.len() >= 10_000 {
                return Ok(out);
            }
        }
    }

    /// An issue's detail (`parent`, `children`, `labels`, `relations`), by number or id.
    pub async fn issue(&self, r: &IssueRef) -> Result<Value, CliError> {
        self.get(&issue_path(r)).await.map(data).about(r.label())
    }

    /// Project by id or name (case-insensitive).
    pub async fn project(&self, key: &str) -> Result<Value, CliError> {
        let all = self.all("/api/projects").await?;
        pick(all, key, "project", &["name"], "loop projects")
    }

    pub async fn project_id(&self, key: &str) -> Result<String, CliError> {
        self.project(key).await.map(|p| s(&p, "id").to_owned())
    }

    /// Label by id or name (case-insensitive).
    pub async fn label(&self, key: &str) -> Result<Value, CliError> {
        let all = self.all("/api/labels").await?;
        pick(all, key, "label", &["name"], "loop labels")
    }

    /// Goal by id or title (case-insensitive).
    pub async fn goal(&self, key: &str) -> Result<Value, CliError> {
        let all = self.all("/api/goals").await?;
        pick(all, key, "goal", &["title"], "loop goals")
    }

    /// Template by slug or id.
    pub async fn template(&self, key: &str) -> Result<Value, CliError> {
        let all = self.all("/api/templates").await?;
        pick(all, key, "template", &["slug"], "loop templates")
    }
}

/// The row whose id is `key`, else the one whose `fields` equal it ignoring case.
fn pick(rows: Vec<Value>, key: &str, what: &str, fields: &[&str], list_cmd: &str) -> Result<Value, CliError> {
    let key = key.trim();
    if let Some(row) = rows.iter().find(|r| s(r, "id") == key) {
        return Ok(row.clone());
    }
    let matches: Vec<&Value> =
        rows.iter().filter(|r| fields.iter().any(|f| s(r, f).trim().eq_ignore_ascii_case(key))).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(CliError::failed(format!("{what} {key:?} not found (by id or {}); see: {list_cmd}", fields[0]))),
        many => Err(CliError::failed(format!(
            "{} {what}s are named {key:?}; use an id: {}",
            many.len(),
            many.iter().map(|r| s(r, "id")).collect::<Vec<_>>().join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookups_take_ids_or_names() {
        let rows = vec![json!({"id": "p1", "name": "Web"}), json!({"id": "p2", "name": "API"})];
        assert_eq!(pick(rows.clone(), "p2", "project", &["name"], "x").unwrap()["name"], "API");
        assert_eq!(pick(rows.clone(), "web", "project", &["name"], "x").unwrap()["id"], "p1");
        assert!(pick(rows, "nope", "project", &["name"], "x").is_err());
    }

    #[test]
    fn envelopes_unwrap() {
        assert_eq!(data(json!({"data": {"a": 1}})), json!({"a": 1}));
        assert_eq!(data(json!({"issue": 1})), json!({"issue": 1}));
    }
}
