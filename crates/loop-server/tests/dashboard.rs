//! `/api/dashboard/{stats,activity,prompts}` over HTTP: the contract's wire shapes (§6), minus
//! the reference's bugs (unvalidated `limit`, ignored `offset`, `total` = page size, averages as
//! strings, the active version looked up among the five newest only).

mod common;

use common::{assert_api_error, id, start};
use serde_json::{Value, json};

#[tokio::test]
async fn stats_counts_what_exists() {
    let s = start().await;
    s.issue_with(json!({ "title": "a", "type": "task", "status": "todo" })).await;
    s.issue_with(json!({ "title": "b", "type": "signal" })).await;
    s.client.post::<Value>("/api/goals", &json!({ "title": "Checkout p95 < 300 ms" })).await.unwrap();

    let body: Value = s.client.get("/api/dashboard/stats").await.unwrap();
    assert_eq!(
        body,
        json!({ "data": {
            "issues": { "total": 2, "byStatus": { "todo": 1, "triage": 1 }, "byType": { "signal": 1, "task": 1 } },
            "goals": { "total": 1, "active": 1, "achieved": 0 },
            "dispatch": { "queueDepth": 1, "activeCount": 0, "completedLast24h": 0 },
        }})
    );
    assert_api_error(s.anon.get::<Value>("/api/dashboard/stats").await, 401, "unauthorized");
}

#[tokio::test]
async fn activity_pages_through_every_chain() {
    let s = start().await;
    let root = s.issue_with(json!({ "title": "hypothesis", "type": "hypothesis" })).await;
    let child = s.issue_with(json!({ "title": "task", "type": "task", "parentId": root.id })).await;
    for n in 0..24 {
        s.task(&format!("root {n}")).await;
    }
    // A change to the child makes its chain the most recently active.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    s.client.patch::<Value>(&format!("/api/issues/{}", child.id), &json!({ "priority": 1 })).await.unwrap();

    let first: Value = s.client.get("/api/dashboard/activity").await.unwrap();
    assert_eq!(first["total"], 25, "total counts every chain, not the page");
    let chains = first["data"].as_array().unwrap();
    assert_eq!(chains.len(), 20, "20 chains by default");
    assert_eq!(chains[0]["root"]["id"], root.id.as_str());
    assert_eq!(chains[0]["children"][0]["issue"]["id"], child.id.as_str());
    assert!(chains[0]["children"][0]["relations"].is_array());
    assert!(chains[0]["latestActivity"].as_str().unwrap().ends_with('Z'));

    let rest: Value = s.client.get("/api/dashboard/activity?limit=20&offset=20").await.unwrap();
    let rest = rest["data"].as_array().unwrap();
    assert_eq!(rest.len(), 5, "the offset is honoured");
    let mut seen: Vec<String> = chains.iter().chain(rest).map(|c| id(&c["root"])).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 25, "the two pages hold every chain once");

    for bad in ["limit=abc", "limit=0", "limit=201", "offset=-1"] {
        let msg = assert_api_error(
            s.client.get::<Value>(&format!("/api/dashboard/activity?{bad}")).await,
            400,
            "invalid_query",
        );
        assert!(msg.starts_with(bad.split('=').next().unwrap()), "{bad}: {msg}");
    }
}

#[tokio::test]
async fn prompts_report_health_with_numeric_averages() {
    let s = start().await;
    let issue = s.task("reviewed").await;
    let body: Value = s.client.get("/api/dashboard/prompts").await.unwrap();
    let templates = body["data"].as_array().unwrap();
    assert_eq!(templates.len(), 11, "the eleven default templates");
    let execute = templates.iter().find(|t| t["template"]["slug"] == "task-execution").expect("task-execution");
    assert_eq!(execute["activeVersion"]["version"], 1);
    assert_eq!(execute["recentVersions"].as_array().unwrap().len(), 1);
    assert_eq!(execute["reviewSummary"]["totalReviews"], 0);
    assert_eq!(execute["reviewSummary"]["avgClarity"], Value::Null);
    assert_eq!(execute["needsAttention"], false);

    let version = execute["activeVersion"]["id"].as_str().unwrap();
    for score in [1, 2] {
        let review = json!({ "versionId": version, "issueId": issue.id, "clarity": score, "completeness": score, "relevance": 5 });
        s.client.post::<Value>("/api/prompt-reviews", &review).await.unwrap();
    }
    let body: Value = s.client.get("/api/dashboard/prompts").await.unwrap();
    let execute = body["data"].as_array().unwrap().iter().find(|t| t["template"]["slug"] == "task-execution").unwrap();
    let summary = &execute["reviewSummary"];
    assert_eq!((summary["totalReviews"].as_u64(), summary["avgClarity"].as_f64()), (Some(2), Some(1.5)));
    assert_eq!(summary["avgRelevance"].as_f64(), Some(5.0), "averages are JSON numbers");
    assert!(summary["compositeScore"].as_f64().is_some_and(|c| c < 3.5), "{summary}");
    assert_eq!(execute["needsAttention"], true);
}
