//! `loop export` / `loop import`: a SQLite database with a bit of everything moves to
//! PostgreSQL, and the API answers the same there, event ids and all; numbering continues
//! after the imported issues; a database that already holds data is refused.

mod common;

use std::process::Command;

use common::{BIN, KEY, Server};
use serde_json::{Value, json};

struct Api {
    url: String,
    http: reqwest::Client,
}

impl Api {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.header("X-Loop-Agent", "mover").send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }

    async fn get(&self, path: &str) -> Value {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    /// What a client can read of the whole database.
    async fn snapshot(&self) -> Value {
        let issues = self.get("/api/issues?limit=200").await;
        let mut per_issue = Vec::new();
        for i in issues["data"].as_array().unwrap() {
            let id = i["id"].as_str().unwrap();
            per_issue.push(json!({
                "detail": self.get(&format!("/api/issues/{id}")).await,
                "events": self.get(&format!("/api/issues/{id}/events?limit=200")).await,
                "comments": self.get(&format!("/api/issues/{id}/comments")).await,
                "sessions": self.get(&format!("/api/issues/{id}/sessions")).await,
            }));
        }
        let templates = self.get("/api/templates?limit=200").await;
        let mut versions = Vec::new();
        for t in templates["data"].as_array().unwrap() {
            let id = t["id"].as_str().unwrap();
            versions.push(self.get(&format!("/api/templates/{id}/versions?limit=200")).await);
            versions.push(self.get(&format!("/api/templates/{id}/reviews?limit=200")).await);
        }
        json!({
            "issues": issues, "perIssue": per_issue, "templates": templates, "versions": versions,
            "labels": self.get("/api/labels?limit=200").await,
            "projects": self.get("/api/projects?limit=200").await,
            "goals": self.get("/api/goals?limit=200").await,
            "signals": self.get("/api/signals?limit=200").await,
            // The queue's order (its scores grow with the time spent waiting).
            "queue": self.get("/api/dispatch/queue?limit=200").await["data"].as_array().unwrap().iter()
                .map(|e| json!([e["issue"]["id"], e["todoSince"]])).collect::<Vec<_>>(),
            "sessions": self.get("/api/sessions?limit=200").await,
        })
    }
}

fn loop_cmd(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).env_clear().output().expect("run loop")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_moves_to_postgres_with_nothing_lost() {
    let mut sqlite = Server::start();
    let api = Api { url: sqlite.url.clone(), http: reqwest::Client::new() };

    let project = api.post("/api/projects", json!({ "name": "Onboarding", "status": "active" })).await;
    let project_id = project["data"]["id"].as_str().unwrap().to_owned();
    let goal = api
        .post(
            "/api/goals",
            json!({ "title": "Conversion", "targetValue": 4.0, "currentValue": 2.5, "projectId": project_id }),
        )
        .await;
    api.patch(&format!("/api/goals/{}", goal["data"]["id"].as_str().unwrap()), json!({ "currentValue": 3.25 })).await;
    let bug = api.post("/api/labels", json!({ "name": "bug", "color": "#e03131" })).await;
    let signal = api
        .post(
            "/api/signals",
            json!({ "source": "posthog", "title": "Conversion dropped", "payload": { "delta": -0.12 } }),
        )
        .await;
    let root = signal["data"]["issue"]["id"].as_str().unwrap().to_owned();
    let task = api
        .post(
            "/api/issues",
            json!({ "title": "Fix the button", "type": "task", "status": "todo", "parentId": root,
                                     "projectId": project_id, "labelIds": [bug["data"]["id"]], "priority": 2,
                                     "description": "Ünïcode, \"quotes\", a\ttab, a back\\slash, a literal \\N and\r\nlines survive" }),
        )
        .await;
    let task_id = task["data"]["id"].as_str().unwrap().to_owned();
    let later = api.post("/api/issues", json!({ "title": "Later", "type": "task", "status": "todo" })).await;
    api.post(
        &format!("/api/issues/{}/relations", later["data"]["id"].as_str().unwrap()),
        json!({ "type": "blocked_by", "relatedIssueId": task_id }),
    )
    .await;
    let comment = api.post(&format!("/api/issues/{task_id}/comments"), json!({ "body": "first" })).await;
    api.post(&format!("/api/issues/{task_id}/comments"), json!({ "body": "reply", "parentId": comment["data"]["id"] }))
        .await;
    let claim = api.get("/api/dispatch/next").await;
    assert_eq!(claim["issue"]["id"], json!(task_id));
    api.post(
        "/api/prompt-reviews",
        json!({ "versionId": claim["meta"]["versionId"], "issueId": task_id,
        "clarity": 4, "completeness": 3, "relevance": 5, "feedback": "fine" }),
    )
    .await;
    api.patch(&format!("/api/issues/{task_id}"), json!({ "status": "done", "agentSummary": "Done." })).await;
    let before = api.snapshot().await;
    sqlite.stop();
    let data = sqlite.data_dir();

    let dump = tempfile::NamedTempFile::new().unwrap();
    let dump_path = dump.path().to_str().unwrap();
    let nowhere = loop_cmd(&["export", "--data-dir", "/nonexistent/loop", "-o", dump_path]);
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("no database"), "export never creates a database");
    let out = loop_cmd(&["export", "--data-dir", data.to_str().unwrap(), "-o", dump_path]);
    assert!(out.status.success(), "export: {}", String::from_utf8_lossy(&out.stderr));
    let database = loop_store::postgres::testing::database().await;
    let out = loop_cmd(&["import", "--database-url", &database.url, dump_path]);
    assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("imported"));

    let pg = Server::start_with(&["--database-url", &database.url]);
    let api = Api { url: pg.url.clone(), http: reqwest::Client::new() };
    assert_eq!(api.snapshot().await, before, "PostgreSQL answers exactly as SQLite did");

    let max = before["issues"]["data"].as_array().unwrap().iter().map(|i| i["number"].as_i64().unwrap()).max().unwrap();
    let next = api.post("/api/issues", json!({ "title": "after the move", "type": "task" })).await;
    assert_eq!(next["data"]["number"].as_i64(), Some(max + 1), "numbering continues");

    let again = loop_cmd(&["import", "--database-url", &database.url, dump_path]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("empty database"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), "hello\n").unwrap();
    let bad = loop_cmd(&["import", "--database-url", &database.url, garbage.path().to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a Loop export"));

    // Rows are read as they are loaded: a bad line near the end still leaves nothing behind.
    let text = std::fs::read_to_string(dump.path()).unwrap();
    let broken = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(broken.path(), format!("{text}{{\"table\": \"issues\"\n")).unwrap();
    let bad_line = text.lines().count() + 1;
    let target = tempfile::tempdir().unwrap();
    let target_dir = target.path().to_str().unwrap();
    let failed = loop_cmd(&["import", "--data-dir", target_dir, broken.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success() && stderr.contains(&format!("line {bad_line}")), "{stderr}");
    // A row the target cannot take is named by its line too.
    let mut lines: Vec<&str> = text.lines().collect();
    lines[4] = r#"{"table":"issues","row":{"bogus":1}}"#;
    std::fs::write(broken.path(), lines.join("\n")).unwrap();
    let failed = loop_cmd(&["import", "--data-dir", target_dir, broken.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains(r#"line 5: row: table issues has no column "bogus""#), "{stderr}");
    let out = loop_cmd(&["import", "--data-dir", target_dir, dump_path]);
    assert!(out.status.success(), "the failed import loaded nothing: {}", String::from_utf8_lossy(&out.stderr));
    let restored = Server::start_with(&["--database-url", &format!("sqlite://{target_dir}/loop.db")]);
    let api = Api { url: restored.url.clone(), http: reqwest::Client::new() };
    assert_eq!(api.snapshot().await, before, "back in SQLite, it answers as before");
}
