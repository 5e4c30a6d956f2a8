//! `/api/dispatch` and `/api/sessions` over HTTP: exclusive claims under concurrency, the wire
//! shape, long-polling, retries, leases.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{KEY, TestServer, assert_api_error, start, start_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A raw `GET /api/dispatch/next` as an agent would send it.
async fn next(s: &TestServer, agent: &str, key: Option<&str>, query: &str) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .get(format!("{}/api/dispatch/next{query}", s.url))
        .bearer_auth(KEY)
        .header("X-Loop-Agent", agent);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    if status == StatusCode::NO_CONTENT {
        assert!(text.is_empty(), "204 must have an empty body, got {text:?}");
        return (status, Value::Null);
    }
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
}

async fn todo(s: &TestServer, title: &str, priority: i64) -> loop_core::issue::Issue {
    s.issue_with(json!({"title": title, "type": "task", "status": "todo", "priority": priority})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_claimers_take_each_eligible_issue_exactly_once() {
    thirty_two_claimers(true).await;
}

/// What every existing client does: the one master key, no `X-Loop-Agent`, no `Idempotency-Key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_claimers_sharing_the_key_with_no_headers_take_each_issue_exactly_once() {
    thirty_two_claimers(false).await;
}

/// 32 concurrent claimers over 2,000 issues, each with its own agent name and keys (`named`),
/// or all sharing the master key with no headers at all.
async fn thirty_two_claimers(named: bool) {
    let s = start().await;
    // 2,000 todo issues; every fifth is blocked by an open backlog issue, every seventh by a
    // done one (which no longer blocks).
    let open_blocker = s.issue_with(json!({"title": "open blocker", "type": "task", "status": "backlog"})).await;
    let done_blocker = s.issue_with(json!({"title": "done blocker", "type": "task", "status": "done"})).await;
    let mut creates = tokio::task::JoinSet::new();
    for chunk in 0..8 {
        let c = s.client.clone();
        let (open, done) = (open_blocker.id.clone(), done_blocker.id.clone());
        creates.spawn(async move {
            let mut blocked = Vec::new();
            for n in 0..250 {
                let i = chunk * 250 + n;
                let issue: loop_core::issue::Issue = c
                    .create_issue(
                        &json!({"title": format!("t{i}"), "type": "task", "status": "todo", "priority": i % 5}),
                    )
                    .await
                    .unwrap();
                if i % 5 == 0 {
                    c.create_relation(&issue.id, &json!({"type": "blocked_by", "relatedIssueId": open})).await.unwrap();
                    blocked.push(issue.id);
                } else if i % 7 == 0 {
                    c.create_relation(&done, &json!({"type": "blocks", "relatedIssueId": issue.id})).await.unwrap();
                }
            }
            blocked
        });
    }
    let blocked: HashSet<String> = creates.join_all().await.into_iter().flatten().collect();
    assert_eq!(blocked.len(), 400);

    let mut claimers = tokio::task::JoinSet::new();
    for w in 0..32 {
        let url = s.url.clone();
        claimers.spawn(async move {
            let http = reqwest::Client::new();
            let mut got = Vec::new();
            for n in 0.. {
                let mut req = http.get(format!("{url}/api/dispatch/next")).bearer_auth(KEY);
                if named {
                    req =
                        req.header("X-Loop-Agent", format!("agent-{w}")).header("Idempotency-Key", format!("{w}-{n}"));
                }
                let resp = req.send().await.unwrap();
                match resp.status() {
                    StatusCode::OK => {
                        let body: Value = resp.json().await.unwrap();
                        assert_eq!(body["issue"]["status"], "in_progress");
                        got.push(body["issue"]["id"].as_str().unwrap().to_owned());
                    }
                    StatusCode::NO_CONTENT => return got,
                    other => panic!("unexpected {other}"),
                }
            }
            got
        });
    }
    let claimed: Vec<String> = claimers.join_all().await.into_iter().flatten().collect();
    let unique: HashSet<&String> = claimed.iter().collect();
    assert_eq!(claimed.len(), unique.len(), "an issue was handed out twice");
    assert_eq!(claimed.len(), 1600, "every unblocked issue is claimed");
    assert!(claimed.iter().all(|id| !blocked.contains(id)), "a blocked issue was claimed");
    assert_eq!(s.client.list_issues("status=in_progress&limit=1").await.unwrap().total, 1600);
}

#[tokio::test]
async fn a_claim_has_the_bare_shape_and_a_data_copy_and_an_empty_queue_is_204() {
    let s = start().await;
    assert_eq!(next(&s, "a", None, "").await.0, StatusCode::NO_CONTENT);
    let low = todo(&s, "low", 4).await;
    let urgent = todo(&s, "urgent", 1).await;
    let (status, body) = next(&s, "a", None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["issue"]["id"], urgent.id.as_str());
    for key in ["id", "number", "title", "type", "priority", "status"] {
        assert!(body["issue"].get(key).is_some(), "issue.{key}");
    }
    assert!(body.get("prompt").is_some() && body.get("meta").is_some());
    assert_eq!(body["data"]["issue"], body["issue"], "the SDK reads data");
    assert_eq!(body["session"]["agent"], "a");
    assert_eq!(body["session"]["issueId"], urgent.id.as_str());
    // The queue now holds only the low one.
    let q: Value = s.client.get("/api/dispatch/queue").await.unwrap();
    assert_eq!(q["total"], 1);
    assert_eq!(q["data"][0]["issue"]["id"], low.id.as_str());
    assert_eq!(q["data"][0]["breakdown"]["priorityWeight"], 25);
}

#[tokio::test]
async fn project_filter_and_its_alias() {
    let s = start().await;
    let p = s.client.create_project(&json!({"name": "P"})).await.unwrap();
    todo(&s, "elsewhere", 1).await;
    let mine = s.issue_with(json!({"title": "mine", "type": "task", "status": "todo", "projectId": p.id})).await;
    let (_, body) = next(&s, "a", None, &format!("?project={}", p.id)).await;
    assert_eq!(body["issue"]["id"], mine.id.as_str());
    assert_eq!(next(&s, "b", None, &format!("?projectId={}", p.id)).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn retried_requests_get_the_same_claim_back() {
    let s = start().await;
    for i in 0..3 {
        todo(&s, &format!("t{i}"), 2).await;
    }
    let (_, first) = next(&s, "a", Some("k1"), "").await;
    let (_, again) = next(&s, "a", Some("k1"), "").await;
    assert_eq!(first["issue"]["id"], again["issue"]["id"]);
    assert_eq!(first["session"]["id"], again["session"]["id"]);
    // Without a key, the same agent asking again at once gets another issue: agents that share
    // a name cannot be told apart, and must never be sent to one issue.
    let (_, b1) = next(&s, "b", None, "").await;
    let (_, b2) = next(&s, "b", None, "").await;
    assert_ne!(b1["issue"]["id"], b2["issue"]["id"]);
    assert_ne!(b1["issue"]["id"], first["issue"]["id"]);
    assert_eq!(next(&s, "b", None, "").await.0, StatusCode::NO_CONTENT, "three issues, three claims");
    let id = b1["issue"]["id"].as_str().unwrap();
    s.client.update_issue(id, &json!({"status": "done", "agentSummary": "ok"})).await.unwrap();
    let sessions: Value = s.client.get(&format!("/api/issues/{id}/sessions")).await.unwrap();
    assert_eq!(sessions["data"][0]["outcome"], "done");
    assert_eq!(sessions["data"][0]["summary"], "ok");
}

/// Two calls with the master key and no headers at all, one after the other: two issues.
#[tokio::test]
async fn two_calls_sharing_the_key_get_two_issues() {
    let s = start().await;
    todo(&s, "one", 2).await;
    todo(&s, "two", 2).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let resp = reqwest::Client::new().get(format!("{}/api/dispatch/next", s.url)).bearer_auth(KEY).send().await;
        let body: Value = resp.unwrap().json().await.unwrap();
        ids.push(body["issue"]["id"].as_str().expect("a claim").to_owned());
    }
    assert_ne!(ids[0], ids[1], "the second call was sent to the first call's issue");
}

#[tokio::test]
async fn a_long_poll_is_answered_as_soon_as_work_appears() {
    let s = start().await;
    let waiter = {
        let url = s.url.clone();
        tokio::spawn(async move {
            let resp = reqwest::Client::new()
                .get(format!("{url}/api/dispatch/next?wait=30"))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap();
            (resp.status(), resp.json::<Value>().await.ok(), Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "the request waits while the queue is empty");
    let created = todo(&s, "fresh", 3).await;
    let created_at = Instant::now();
    let (status, body, answered_at) = waiter.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.unwrap()["issue"]["id"], created.id.as_str());
    assert!(answered_at.duration_since(created_at) < Duration::from_secs(1));
}

#[tokio::test]
async fn a_long_poll_is_woken_by_an_unblock_and_times_out_with_204() {
    let s = start().await;
    let blocker = todo(&s, "blocker", 0).await;
    let blocked = todo(&s, "blocked", 1).await;
    s.client.create_relation(&blocker.id, &json!({"type": "blocks", "relatedIssueId": blocked.id})).await.unwrap();
    s.client.update_issue(&blocker.id, &json!({"status": "backlog"})).await.unwrap();

    let started = Instant::now();
    assert_eq!(next(&s, "a", None, "?wait=1").await.0, StatusCode::NO_CONTENT);
    assert!(started.elapsed() >= Duration::from_millis(900));

    let url = s.url.clone();
    let waiter = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .get(format!("{url}/api/dispatch/next?wait=30"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        resp.json::<Value>().await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.client.update_issue(&blocker.id, &json!({"status": "done"})).await.unwrap();
    let body = tokio::time::timeout(Duration::from_secs(2), waiter).await.expect("woken").unwrap();
    assert_eq!(body["issue"]["id"], blocked.id.as_str());
}

#[tokio::test]
async fn a_shutdown_ends_a_long_poll_at_once_with_204() {
    let s = start().await;
    let url = s.url.clone();
    let waiter = tokio::spawn(async move {
        reqwest::Client::new().get(format!("{url}/api/dispatch/next?wait=30")).bearer_auth(KEY).send().await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "the request waits while the queue is empty");
    s.closing.close();
    let resp = tokio::time::timeout(Duration::from_secs(2), waiter).await.expect("ended by the shutdown").unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn wait_is_bounded() {
    let s = start().await;
    let (status, body) = next(&s, "a", None, "?wait=61").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_query");
}

#[tokio::test]
async fn an_expired_lease_returns_the_issue_and_wakes_a_waiting_agent() {
    let s = start_with(|c| loop_server::ServerConfig {
        lease_ttl: Duration::from_millis(1500),
        sweep_interval: Duration::from_millis(100),
        ..c
    })
    .await;
    let issue = todo(&s, "work", 2).await;
    let (_, first) = next(&s, "crashing-agent", None, "").await;
    let session = first["session"]["id"].as_str().unwrap().to_owned();
    let (status, body) = next(&s, "patient-agent", None, "?wait=10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["issue"]["id"], issue.id.as_str());

    let old: Value = s.client.get(&format!("/api/sessions/{session}")).await.unwrap();
    assert_eq!(old["data"]["outcome"], "expired");
    let r = s.client.post::<Value>(&format!("/api/sessions/{session}/heartbeat"), &json!({})).await;
    assert_api_error(r, 409, "session_ended");
    let events = s.client.issue_events(&issue.id, "").await.unwrap();
    let kinds: Vec<String> = events.data.iter().map(|e| e.kind.to_string()).collect();
    assert_eq!(
        kinds,
        ["created", "status_changed", "claimed", "session_ended", "status_changed", "status_changed", "claimed"]
    );
    assert_eq!(events.data[4].actor, "loop");
}

#[tokio::test]
async fn heartbeat_release_and_fail() {
    let s = start().await;
    let issue = todo(&s, "work", 2).await;
    let (_, c) = next(&s, "a", None, "").await;
    let sid = c["session"]["id"].as_str().unwrap().to_owned();
    let before = c["session"]["leaseExpiresAt"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let hb: Value = s.client.post(&format!("/api/sessions/{sid}/heartbeat"), &json!({})).await.unwrap();
    assert!(hb["data"]["leaseExpiresAt"].as_str().unwrap() > before.as_str());

    // Reports are stored in signed 64-bit columns: what would wrap is refused, and nothing ends.
    for (field, body) in [
        ("tokens", json!({"tokens": 9_223_372_036_854_775_808u64})),
        ("durationMs", json!({"durationMs": u64::MAX})),
        ("costUsd", json!({"costUsd": -1})),
    ] {
        let m = assert_api_error(
            s.client.post::<Value>(&format!("/api/sessions/{sid}/fail"), &body).await,
            422,
            "validation_failed",
        );
        assert!(m.starts_with(&format!("{field}: must be")), "{m}");
    }

    let failed: Value = s
        .client
        .post(&format!("/api/sessions/{sid}/fail"), &json!({"summary": "tests broke", "tokens": 1200, "costUsd": 0.4}))
        .await
        .unwrap();
    assert_eq!(failed["data"]["outcome"], "failed");
    assert_eq!(failed["data"]["tokens"], 1200);
    assert_eq!(s.client.issue(&issue.id).await.unwrap().issue.status.as_str(), "todo");
    assert_api_error(
        s.client.post::<Value>(&format!("/api/sessions/{sid}/fail"), &json!({})).await,
        409,
        "session_ended",
    );

    // Release with no body at all.
    let (_, c2) = next(&s, "b", None, "").await;
    let sid2 = c2["session"]["id"].as_str().unwrap();
    let raw = s.client.raw(reqwest::Method::POST, &format!("/api/sessions/{sid2}/release"), None).await.unwrap();
    assert_eq!(raw.status, 200, "{}", raw.text);
    assert_eq!(raw.body["data"]["outcome"], "released");

    let listed: Value = s.client.get(&format!("/api/sessions?issueId={}&outcome=failed", issue.id)).await.unwrap();
    assert_eq!(listed["total"], 1);
    let all: Value = s.client.get(&format!("/api/issues/{}/sessions", issue.number)).await.unwrap();
    assert_eq!(all["total"], 2);
}

#[tokio::test]
async fn claim_a_given_issue_and_explain_why_not() {
    let s = start().await;
    let blocker = s.issue_with(json!({"title": "blocker", "type": "task", "status": "backlog"})).await;
    let blocked = todo(&s, "blocked", 1).await;
    let free = todo(&s, "free", 3).await;
    s.client.create_relation(&blocked.id, &json!({"type": "blocked_by", "relatedIssueId": blocker.id})).await.unwrap();

    let e: Value = s.client.get(&format!("/api/dispatch/explain/{}", blocked.number)).await.unwrap();
    assert_eq!(e["data"]["eligible"], false);
    assert!(e["data"]["reasons"][0].as_str().unwrap().contains(&format!("#{}", blocker.number)));
    let e: Value = s.client.get(&format!("/api/dispatch/explain/{}", free.id)).await.unwrap();
    assert_eq!((e["data"]["eligible"].clone(), e["data"]["position"].clone()), (json!(true), json!(1)));

    let r = s.client.post::<Value>(&format!("/api/issues/{}/dispatch", blocked.id), &json!({})).await;
    let m = assert_api_error(r, 409, "not_eligible");
    assert!(m.contains("blocked by"), "{m}");
    let claimed: Value = s.client.post(&format!("/api/issues/{}/dispatch", free.number), &json!({})).await.unwrap();
    assert_eq!(claimed["data"]["issue"]["id"], free.id.as_str());
    let e: Value = s.client.get(&format!("/api/dispatch/explain/{}", free.id)).await.unwrap();
    assert_eq!(e["data"]["lease"]["agent"], "human");
}
