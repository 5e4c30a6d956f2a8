//! What the reference's own clients (CLI, SDK, MCP server) read, and read right: the goal
//! status filter, whole-day scores, relations told from the viewed issue's side, and a
//! repeated signal's count on the signal issue itself.

mod common;

use common::{assert_api_error, get_issue, start};
use serde_json::{Value, json};

#[tokio::test]
async fn goals_are_filtered_by_status() {
    let s = start().await;
    let active = s.client.create_goal(&json!({"title": "conversion", "targetValue": 5})).await.unwrap();
    let done = s.client.create_goal(&json!({"title": "latency", "targetValue": 1})).await.unwrap();
    s.client.update_goal(&done.id, &json!({"status": "achieved"})).await.unwrap();
    let ids = |q: &'static str| {
        let c = s.client.clone();
        async move { c.list_goals(q).await.unwrap().data.into_iter().map(|g| g.id).collect::<Vec<_>>() }
    };
    assert_eq!(ids("status=achieved").await, vec![done.id.clone()]);
    assert_eq!(ids("status=active").await, vec![active.id.clone()]);
    assert_eq!(ids("").await, [active.id, done.id]);
    let e = assert_api_error(s.client.list_goals("status=finished").await, 400, "invalid_query");
    assert!(e.starts_with("status:"), "{e}");
}

#[tokio::test]
async fn queue_scores_are_whole_days() {
    let s = start().await;
    s.issue_with(json!({"title": "t", "type": "task", "status": "todo", "priority": 2})).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    for path in ["/api/dispatch/queue", "/api/dispatch/explain/1"] {
        let body: Value = s.client.get(path).await.unwrap();
        let entry = if path.ends_with("queue") { &body["data"][0] } else { &body["data"] };
        assert_eq!(entry["breakdown"]["ageBonus"], json!(0), "{path}: {entry}");
        assert_eq!(entry["score"], json!(95), "{path}: a whole number, not 95.0000002");
    }
}

#[tokio::test]
async fn relations_read_from_the_viewed_issue() {
    let s = start().await;
    let a = s.issue_with(json!({"title": "blocker", "type": "task"})).await;
    let b = s.issue_with(json!({"title": "blocked", "type": "task"})).await;
    s.client.create_relation(&b.id, &json!({"type": "blocked_by", "relatedIssueId": a.id})).await.unwrap();
    let seen = |v: &Value| {
        let r = &v["relations"][0];
        (
            r["issueId"].as_str().unwrap().to_owned(),
            r["type"].as_str().unwrap().to_owned(),
            r["relatedIssueId"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(seen(&get_issue(&s, &a.id).await), (a.id.clone(), "blocks".into(), b.id.clone()));
    assert_eq!(seen(&get_issue(&s, &b.id).await), (b.id.clone(), "blocked_by".into(), a.id.clone()));
}

#[tokio::test]
async fn a_repeated_signal_shows_its_count_on_its_issue() {
    let s = start().await;
    let signal = json!({"source": "posthog", "sourceId": "drop-1", "type": "metric-change", "severity": "high",
        "payload": {"metric": "signup_rate", "message": "Sign-ups fell 12%"}});
    let first: Value = s.client.post("/api/signals", &signal).await.unwrap();
    let issue = first["data"]["issue"]["id"].as_str().expect("the signal's issue").to_owned();
    assert_eq!(get_issue(&s, &issue).await["occurrences"], 1);
    s.client.post::<Value>("/api/signals", &signal).await.unwrap();
    let detail = get_issue(&s, &issue).await;
    assert_eq!(detail["occurrences"], 2, "{detail}");
    assert!(detail["lastSeenAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{detail}");
    let task = s.task("not a signal").await;
    assert!(get_issue(&s, &task.id).await.get("occurrences").is_none());
}
