//! Starts a real Loop server on 127.0.0.1 (a free port) over a fresh SQLite file.

#![allow(dead_code)]

use std::sync::Arc;

use loop_client::LoopClient;
use loop_core::SystemClock;
use loop_server::{ApiKey, ServerConfig};
use loop_store::sqlite::{SqliteConfig, SqliteStore};
use serde_json::{Value, json};

pub const KEY: &str = "loop_0000000000000000000000000000000000000000000000000000000000000001";

pub struct TestServer {
    pub url: String,
    /// Authenticated with the master key.
    pub client: LoopClient,
    /// No credentials.
    pub anon: LoopClient,
    /// Closing it is what a shutdown does first.
    pub closing: loop_server::Closing,
    _dir: tempfile::TempDir,
}

pub async fn start() -> TestServer {
    start_with(|c| c).await
}

/// Starts a server whose configuration `adjust` may change (lease TTL, sweep interval…).
pub async fn start_with(adjust: impl FnOnce(ServerConfig) -> ServerConfig) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("loop.db");
    let store =
        SqliteStore::open(SqliteConfig::new(db.to_string_lossy()), Arc::new(SystemClock)).await.expect("open store");
    serve_store(Arc::new(store), dir, adjust).await
}

/// Serves `store` (whose files live in `dir`, kept as long as the server) on 127.0.0.1.
pub async fn serve_store(
    store: Arc<dyn loop_core::Store>,
    dir: tempfile::TempDir,
    adjust: impl FnOnce(ServerConfig) -> ServerConfig,
) -> TestServer {
    loop_server::seed_default_templates(store.as_ref()).await.expect("seed templates");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = adjust(ServerConfig { public_url: url.clone(), ..ServerConfig::new(ApiKey::new(KEY)) });
    let app = loop_server::app(store, config.clone());
    let closing = config.closing.clone();
    tokio::spawn(async move { loop_server::serve(listener, app, &config, std::future::pending()).await });
    TestServer {
        closing,
        client: LoopClient::new(&url, Some(KEY.to_owned())),
        anon: LoopClient::new(&url, None),
        url,
        _dir: dir,
    }
}

impl TestServer {
    pub async fn task(&self, title: &str) -> loop_core::issue::Issue {
        self.client.create_issue(&json!({ "title": title, "type": "task" })).await.expect("create task")
    }

    pub async fn issue_with(&self, body: Value) -> loop_core::issue::Issue {
        self.client.create_issue(&body).await.expect("create issue")
    }

    pub async fn issue_count(&self) -> u64 {
        self.client.list_issues("limit=1").await.expect("list").total
    }

    /// `GET /api/signals` with `query` (e.g. `limit=200`): `(signals, total)`.
    pub async fn signals(&self, query: &str) -> (Vec<Value>, u64) {
        let path = if query.is_empty() { "/api/signals".to_owned() } else { format!("/api/signals?{query}") };
        let page: Value = self.client.get(&path).await.expect("list signals");
        (page["data"].as_array().cloned().unwrap_or_default(), page["total"].as_u64().expect("total"))
    }

    pub async fn signal_count(&self) -> u64 {
        self.signals("limit=1").await.1
    }
}

/// Asserts a client error's HTTP status and stable code.
#[track_caller]
pub fn assert_api_error<T: std::fmt::Debug>(r: loop_client::Result<T>, status: u16, code: &str) -> String {
    match r {
        Err(loop_client::ClientError::Api { status: s, code: c, message, .. }) => {
            assert_eq!((s, c.as_str()), (status, code), "message: {message}");
            message
        }
        other => panic!("expected HTTP {status} {code}, got {other:?}"),
    }
}

/// The `id` field of a JSON entity.
pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

/// `GET /api/issues/{key}`'s `data`.
pub async fn get_issue(s: &TestServer, key: &str) -> Value {
    s.client.get::<Value>(&format!("/api/issues/{key}")).await.expect("get issue")["data"].clone()
}

/// The bodies of an issue's top-level comments, oldest first.
pub async fn comments(s: &TestServer, issue_id: &str) -> Vec<String> {
    s.client
        .comments(issue_id)
        .await
        .expect("comments")
        .into_iter()
        .map(|c| serde_json::to_value(c).unwrap()["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Sends a request with `token` as its Bearer credential: the status and the JSON body (`Null`
/// when there is none).
pub async fn send_as(
    s: &TestServer,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (reqwest::StatusCode, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", s.url)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The claim's scoped token a prompt carries.
pub fn token_in(prompt: &str) -> String {
    let start = prompt.find("loopt_").expect("the prompt carries a scoped token");
    prompt[start..].split(|c: char| c.is_whitespace() || c == '"' || c == '`').next().unwrap().to_owned()
}
