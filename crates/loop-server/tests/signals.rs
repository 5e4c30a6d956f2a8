//! `POST /api/signals` (Bearer) and `GET /api/signals`.
//!
//! Both input shapes (the contract's `{source, sourceId?, type, severity, payload, projectId?}`
//! and the agent skill's `{source, title, data}`) open a `signal` issue in `triage` (or `todo`
//! with auto-triage) whose priority follows the severity. A repeat with the same fingerprint
//! counts as one more occurrence of the open signal issue: one issue, a comment with the new
//! data, the priority raised when the repeat is more severe. Bad input is a JSON 4xx and writes
//! nothing.

mod common;

use common::{TestServer, comments, get_issue, id, start, start_with};
use reqwest::Method;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers

#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
    text: String,
}

impl Reply {
    /// `(signal, issue)` of a 201 or a deduplicated 200.
    #[track_caller]
    fn parts(&self) -> (&Value, &Value) {
        let signal = &self.body["data"]["signal"];
        let issue = &self.body["data"]["issue"];
        assert!(signal.is_object() && issue.is_object(), "no data.signal / data.issue: {}", self.text);
        (signal, issue)
    }

    #[track_caller]
    fn expect_created(&self) -> (&Value, &Value) {
        assert_eq!(self.status, 201, "{}", self.text);
        assert!(self.body.get("deduplicated").is_none_or(|d| d == false), "{}", self.text);
        self.parts()
    }

    #[track_caller]
    fn expect_deduplicated(&self) -> (&Value, &Value) {
        assert_eq!(self.status, 200, "{}", self.text);
        assert_eq!(self.body["deduplicated"], true, "{}", self.text);
        self.parts()
    }

    /// A JSON 4xx with the error shape every route uses.
    #[track_caller]
    fn expect_error(&self, status: u16, code: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(self.body["error"].as_str().is_some_and(|e| !e.is_empty()), "no JSON error: {}", self.text);
        assert_eq!(self.body["message"], self.body["error"], "{}", self.text);
        if let Some(code) = code {
            assert_eq!(self.body["code"], code, "{}", self.text);
        }
    }
}

async fn post(s: &TestServer, body: &Value) -> Reply {
    post_text(s, "application/json", &body.to_string()).await
}

async fn post_text(s: &TestServer, content_type: &str, text: &str) -> Reply {
    let r = s.client.raw(Method::POST, "/api/signals", Some((content_type, text))).await.expect("POST /api/signals");
    Reply { status: r.status.as_u16(), body: r.body, text: r.text }
}

async fn event_kinds(s: &TestServer, issue_id: &str) -> Vec<String> {
    s.client
        .issue_events(issue_id, "limit=200")
        .await
        .expect("events")
        .data
        .into_iter()
        .map(|e| e.kind.as_str().to_owned())
        .collect()
}

fn contract(source_id: &str, severity: &str) -> Value {
    json!({
        "source": "posthog",
        "sourceId": source_id,
        "type": "metric-change",
        "severity": severity,
        "payload": { "metric": "signup_rate", "message": "Sign-ups fell 12%", "value": 0.88 }
    })
}

// ---------------------------------------------------------------------------------------------
// Creating

#[tokio::test]
async fn the_contract_shape_opens_a_signal_issue_in_triage() {
    let s = start().await;
    let r = post(&s, &contract("ph-alert-77", "high")).await;
    let (signal, issue) = r.expect_created();

    assert_eq!(signal["source"], "posthog");
    assert_eq!(signal["sourceId"], "ph-alert-77");
    assert_eq!(signal["type"], "metric-change");
    assert_eq!(signal["severity"], "high");
    assert_eq!(signal["payload"]["metric"], "signup_rate");
    assert_eq!(signal["occurrences"], 1);
    assert_eq!(signal["issueId"], issue["id"]);
    assert!(signal["fingerprint"].as_str().is_some_and(|f| !f.is_empty()));

    assert_eq!(issue["type"], "signal");
    assert_eq!(issue["status"], "triage");
    assert_eq!(issue["priority"], 2, "high → 2");
    assert_eq!(issue["title"], "[posthog] metric-change: Sign-ups fell 12%");
    assert_eq!(issue["signalSource"], "posthog");
    assert_eq!(issue["signalPayload"]["message"], "Sign-ups fell 12%");

    // What the response says is what was stored.
    let stored = get_issue(&s, &id(issue)).await;
    assert_eq!(
        (&stored["type"], &stored["status"], &stored["priority"]),
        (&json!("signal"), &json!("triage"), &json!(2))
    );
    assert_eq!(s.issue_count().await, 1);
    let (signals, total) = s.signals("").await;
    assert_eq!(total, 1);
    assert_eq!(signals[0]["id"], signal["id"]);
    assert!(event_kinds(&s, &id(issue)).await.contains(&"created".to_owned()));
}

#[tokio::test]
async fn the_agent_skill_shape_keeps_its_title_and_data() {
    let s = start().await;
    let body = json!({
        "source": "agent",
        "title": "Checkout is slow on mobile",
        "data": { "p95Ms": 4200, "page": "/checkout" }
    });
    let r = post(&s, &body).await;
    let (signal, issue) = r.expect_created();
    assert_eq!(issue["title"], "Checkout is slow on mobile");
    assert_eq!(issue["type"], "signal");
    assert_eq!(issue["status"], "triage");
    assert_eq!(signal["type"], "signal", "no type given");
    assert_eq!(signal["severity"], "medium", "no severity given");
    assert_eq!(issue["priority"], 3, "medium → 3");
    assert_eq!(signal["payload"], json!({ "p95Ms": 4200, "page": "/checkout" }));
    assert_eq!(issue["signalPayload"]["page"], "/checkout");
}

#[tokio::test]
async fn the_default_title_is_source_type_and_message_or_title_or_type() {
    let s = start().await;
    let cases = [
        (json!({ "message": "Disk 91% full", "title": "ignored" }), "[grafana] disk: Disk 91% full"),
        (json!({ "title": "Replica lag" }), "[grafana] disk: Replica lag"),
        (json!({ "message": 42, "other": "x" }), "[grafana] disk: disk"),
        (json!({}), "[grafana] disk: disk"),
    ];
    for (n, (payload, title)) in cases.into_iter().enumerate() {
        let body = json!({ "source": "grafana", "sourceId": format!("alert-{n}"), "type": "disk", "payload": payload });
        let r = post(&s, &body).await;
        assert_eq!(r.expect_created().1["title"], title, "{body}");
    }
    // The skill shape without a title: the same default.
    let r = post(&s, &json!({ "source": "agent", "data": { "message": "Flaky login test" } })).await;
    assert_eq!(r.expect_created().1["title"], "[agent] signal: Flaky login test");
}

#[tokio::test]
async fn a_very_long_message_is_cut_to_a_valid_title() {
    let s = start().await;
    let long = "x".repeat(800);
    let r = post(&s, &json!({ "source": "sentry", "type": "error", "payload": { "message": long } })).await;
    let (_, issue) = r.expect_created();
    let title = issue["title"].as_str().unwrap();
    assert!(title.starts_with("[sentry] error: xxx"), "{title}");
    assert!(title.chars().count() <= 500, "{} characters", title.chars().count());
}

#[tokio::test]
async fn severity_sets_the_priority() {
    let s = start().await;
    for (severity, priority) in [("critical", 1), ("high", 2), ("medium", 3), ("low", 4)] {
        let r = post(&s, &contract(&format!("sev-{severity}"), severity)).await;
        let (signal, issue) = r.expect_created();
        assert_eq!(signal["severity"], severity);
        assert_eq!(issue["priority"], priority, "{severity}");
    }
    assert_eq!(s.issue_count().await, 4);
}

#[tokio::test]
async fn auto_triage_puts_new_signal_issues_in_todo() {
    let s = start_with(|c| loop_server::ServerConfig { auto_triage: true, ..c }).await;
    let r = post(&s, &contract("auto-1", "critical")).await;
    let (_, issue) = r.expect_created();
    assert_eq!(issue["status"], "todo");
    assert_eq!(issue["priority"], 1);
    assert_eq!(get_issue(&s, &id(issue)).await["status"], "todo");
}

#[tokio::test]
async fn a_project_id_puts_the_signal_issue_in_that_project() {
    let s = start().await;
    let project = s.client.create_project(&json!({ "name": "Growth" })).await.unwrap();
    let mut body = contract("proj-1", "low");
    body["projectId"] = json!(project.id);
    let r = post(&s, &body).await;
    assert_eq!(r.expect_created().1["projectId"], json!(project.id));
}

// ---------------------------------------------------------------------------------------------
// Deduplication

#[tokio::test]
async fn an_identical_repeat_is_one_more_occurrence_of_the_same_issue() {
    let s = start().await;
    let body = contract("ph-alert-9", "high");
    let first = post(&s, &body).await;
    let (signal, issue) = first.expect_created();
    let (signal_id, issue_id) = (id(signal), id(issue));

    let again = post(&s, &body).await;
    let (signal2, issue2) = again.expect_deduplicated();
    assert_eq!(id(signal2), signal_id);
    assert_eq!(id(issue2), issue_id);
    assert_eq!(signal2["occurrences"], 2);
    assert_eq!(s.issue_count().await, 1);
    assert_eq!(s.signal_count().await, 1);

    // The new occurrence's data is on the issue as a comment, and in its history.
    let mut newer = body.clone();
    newer["payload"]["value"] = json!(0.8123);
    let third = post(&s, &newer).await;
    assert_eq!(third.expect_deduplicated().0["occurrences"], 3);
    let bodies = comments(&s, &issue_id).await;
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(bodies[0].contains("0.88"), "{}", bodies[0]);
    assert!(bodies[1].contains("0.8123"), "{}", bodies[1]);
    let kinds = event_kinds(&s, &issue_id).await;
    assert_eq!(kinds.iter().filter(|k| *k == "signal_repeated").count(), 2, "{kinds:?}");

    let (signals, total) = s.signals("").await;
    assert_eq!(total, 1);
    assert_eq!(signals[0]["occurrences"], 3);
    assert_eq!(s.issue_count().await, 1);
}

#[tokio::test]
async fn a_more_severe_repeat_raises_the_priority_and_a_milder_one_does_not() {
    let s = start().await;
    let r = post(&s, &contract("ph-sev", "low")).await;
    let issue_id = id(r.expect_created().1);
    assert_eq!(get_issue(&s, &issue_id).await["priority"], 4);

    let r = post(&s, &contract("ph-sev", "critical")).await;
    let (signal, issue_now) = r.expect_deduplicated();
    assert_eq!(issue_now["priority"], 1, "critical repeat → urgent");
    assert_eq!(signal["severity"], "critical");
    assert_eq!(get_issue(&s, &issue_id).await["priority"], 1);

    let r = post(&s, &contract("ph-sev", "low")).await;
    let (signal, issue_now) = r.expect_deduplicated();
    assert_eq!(issue_now["priority"], 1, "a milder repeat never lowers the priority");
    assert_eq!(signal["severity"], "critical");
    assert_eq!(signal["occurrences"], 3);
    assert_eq!(get_issue(&s, &issue_id).await["priority"], 1);
    assert_eq!(s.issue_count().await, 1);
}

#[tokio::test]
async fn titles_that_differ_only_in_numbers_and_case_are_the_same_signal() {
    let s = start().await;
    let a = post(&s, &json!({ "source": "ci", "title": "Timeout after 31s in job 8812", "data": {} })).await;
    let issue_id = id(a.expect_created().1);
    let b = post(&s, &json!({ "source": "ci", "title": "timeout after 30s in job 9120", "data": {} })).await;
    assert_eq!(id(b.expect_deduplicated().1), issue_id);
    let c = post(&s, &json!({ "source": "ci", "title": "Connection refused in job 9120", "data": {} })).await;
    assert_ne!(id(c.expect_created().1), issue_id);
    assert_eq!(s.issue_count().await, 2);
}

#[tokio::test]
async fn different_keys_sources_or_types_are_different_signals() {
    let s = start().await;
    let bodies = [
        contract("k-1", "high"),
        contract("k-2", "high"),
        json!({ "source": "sentry", "sourceId": "k-1", "type": "metric-change", "severity": "high" }),
        json!({ "source": "posthog", "sourceId": "k-1", "type": "alert", "severity": "high" }),
    ];
    let mut issues = Vec::new();
    for b in &bodies {
        let r = post(&s, b).await;
        issues.push(id(r.expect_created().1));
    }
    issues.dedup();
    assert_eq!(issues.len(), 4);
    assert_eq!(s.signal_count().await, 4);
}

#[tokio::test]
async fn a_repeat_after_the_issue_is_closed_opens_a_new_issue() {
    let s = start().await;
    let first = id(post(&s, &contract("closed-1", "high")).await.expect_created().1);
    s.client.update_issue(&first, &json!({ "status": "done" })).await.expect("close");
    let r = post(&s, &contract("closed-1", "high")).await;
    let (signal, issue) = r.expect_created();
    assert_ne!(id(issue), first);
    assert_eq!(signal["occurrences"], 1);
    assert_eq!(s.issue_count().await, 2);
    assert_eq!(s.signal_count().await, 2);
    // The closed issue got no comment from the new occurrence.
    assert!(comments(&s, &first).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_signals_fold_into_one_issue() {
    let s = start().await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let client = s.client.clone();
        set.spawn(async move {
            let body = contract("concurrent-1", "medium").to_string();
            let r = client.raw(Method::POST, "/api/signals", Some(("application/json", &body))).await.unwrap();
            r.status.as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = set.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 19, "{statuses:?}");
    assert_eq!(s.issue_count().await, 1);
    let (signals, total) = s.signals("").await;
    assert_eq!((total, &signals[0]["occurrences"]), (1, &json!(20)));
    assert_eq!(comments(&s, signals[0]["issueId"].as_str().unwrap()).await.len(), 19);
}

// ---------------------------------------------------------------------------------------------
// Listing

#[tokio::test]
async fn signals_are_listed_newest_first_with_their_occurrence_counts() {
    let s = start().await;
    let a = id(post(&s, &contract("list-a", "low")).await.expect_created().0);
    let b = id(post(&s, &contract("list-b", "medium")).await.expect_created().0);
    let c = id(post(&s, &contract("list-c", "high")).await.expect_created().0);
    for _ in 0..2 {
        post(&s, &contract("list-a", "low")).await.expect_deduplicated();
    }

    let (signals, total) = s.signals("").await;
    assert_eq!(total, 3);
    let ids: Vec<String> = signals.iter().map(id).collect();
    assert_eq!(ids, [c.clone(), b.clone(), a.clone()], "newest first");
    let occurrences: Vec<i64> = signals.iter().map(|s| s["occurrences"].as_i64().unwrap()).collect();
    assert_eq!(occurrences, [1, 1, 3]);
    for sig in &signals {
        assert!(sig["createdAt"].is_string() && sig["lastSeenAt"].is_string(), "{sig}");
    }

    let (page, total) = s.signals("limit=1&offset=1").await;
    assert_eq!((total, page.len()), (3, 1));
    assert_eq!(id(&page[0]), b);
}

#[tokio::test]
async fn signals_need_the_bearer_key() {
    let s = start().await;
    let r = s.anon.raw(Method::GET, "/api/signals", None).await.unwrap();
    assert_eq!(r.status, 401, "{}", r.text);
    let r =
        s.anon.raw(Method::POST, "/api/signals", Some(("application/json", &contract("x", "low").to_string()))).await;
    assert_eq!(r.unwrap().status, 401);
    assert_eq!(s.issue_count().await, 0);
    assert_eq!(s.signal_count().await, 0);
}

// ---------------------------------------------------------------------------------------------
// Bad input

/// Each is refused with a JSON error of the given status.
fn bad_bodies() -> Vec<(&'static str, String, u16)> {
    let j = |v: Value| v.to_string();
    let json = "application/json";
    vec![
        (json, j(json!({ "source": "x", "type": "t", "severity": "severe" })), 422),
        (json, j(json!({ "source": "x", "type": "t", "severity": 1 })), 422),
        (json, j(json!({ "type": "t", "severity": "low", "payload": {} })), 422),
        (json, j(json!({ "title": "no source", "data": {} })), 422),
        (json, j(json!({ "source": "", "type": "t" })), 422),
        (json, j(json!({ "source": "   ", "type": "t" })), 422),
        (json, j(json!({ "source": "x", "type": "t", "sevrity": "low" })), 422),
        (json, j(json!({ "source": "x", "type": "t", "issueId": "abc" })), 422),
        (json, j(json!({ "source": "x", "type": "t", "payload": "not an object" })), 422),
        (json, j(json!({ "source": "x", "type": "t", "payload": [1, 2] })), 422),
        (json, j(json!({ "source": "x", "type": "t", "payload": 3 })), 422),
        (json, j(json!({ "source": "x", "data": "not an object" })), 422),
        (json, j(json!({ "source": "x", "type": 7 })), 422),
        (json, j(json!({ "source": "x", "title": "" })), 422),
        (json, j(json!({ "source": "x", "title": "t".repeat(501) })), 422),
        (json, j(json!({ "source": "x".repeat(201), "type": "t" })), 422),
        (json, j(json!([{ "source": "x", "type": "t" }])), 422),
        (json, "null".into(), 422),
        (json, r#"{"source": "x", "type": "t""#.into(), 400),
        (json, r#"{"source": "x"} trailing"#.into(), 400),
        (json, String::new(), 400),
        ("application/x-www-form-urlencoded", "source=x&type=t".into(), 415),
        ("text/plain", j(json!({ "source": "x", "type": "t" })), 415),
        (json, j(json!({ "source": "x", "type": "t", "payload": { "blob": "x".repeat(1024 * 1024 + 1) } })), 413),
    ]
}

async fn sweep_bad_input(s: &TestServer) {
    let mut failures = Vec::new();
    for (content_type, body, status) in bad_bodies() {
        let r = post_text(s, content_type, &body).await;
        let shaped = r.body["error"].as_str().is_some_and(|e| !e.is_empty()) && r.body["code"].is_string();
        let status_ok = r.status == status;
        if !status_ok || !shaped {
            let shown: String = body.chars().take(120).collect();
            failures.push(format!(
                "[{content_type}] {shown} → {} {}",
                r.status,
                r.text.chars().take(200).collect::<String>()
            ));
        }
    }
    assert!(failures.is_empty(), "bad input not refused as expected:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn bad_input_is_a_json_4xx_and_writes_nothing() {
    let s = start().await;
    sweep_bad_input(&s).await;
    assert_eq!(s.issue_count().await, 0);
    assert_eq!(s.signal_count().await, 0);
}

#[tokio::test]
async fn bad_input_never_counts_as_an_occurrence() {
    let s = start().await;
    // Every bad body above uses source "x" and type "t": make that signal exist first.
    let r = post(&s, &json!({ "source": "x", "type": "t", "severity": "low" })).await;
    let issue_id = id(r.expect_created().1);
    sweep_bad_input(&s).await;
    let (signals, total) = s.signals("").await;
    assert_eq!(total, 1);
    assert_eq!(signals[0]["occurrences"], 1);
    assert_eq!(s.issue_count().await, 1);
    assert!(comments(&s, &issue_id).await.is_empty());
    assert_eq!(get_issue(&s, &issue_id).await["priority"], 4);
}

#[tokio::test]
async fn an_unknown_project_is_refused_by_name() {
    let s = start().await;
    let mut body = contract("p-404", "high");
    body["projectId"] = json!("no-such-project");
    let r = post(&s, &body).await;
    r.expect_error(422, Some("project_not_found"));
    assert!(r.text.contains("projectId"), "{}", r.text);
    assert_eq!(s.issue_count().await, 0);
    assert_eq!(s.signal_count().await, 0);
}

#[tokio::test]
async fn an_unknown_project_is_refused_even_when_the_signal_repeats() {
    let s = start().await;
    let first = post(&s, &contract("p-repeat", "high")).await;
    let issue_id = id(first.expect_created().1);
    let mut body = contract("p-repeat", "high");
    body["projectId"] = json!("no-such-project");
    let r = post(&s, &body).await;
    r.expect_error(422, Some("project_not_found"));
    assert_eq!(s.signals("").await.0[0]["occurrences"], 1);
    assert!(comments(&s, &issue_id).await.is_empty());
}

#[tokio::test]
async fn bad_list_parameters_are_a_json_400() {
    let s = start().await;
    for query in ["limit=0", "limit=201", "limit=abc", "offset=-1"] {
        let r = s.client.raw(Method::GET, &format!("/api/signals?{query}"), None).await.unwrap();
        let reply = Reply { status: r.status.as_u16(), body: r.body, text: r.text };
        assert!((400..500).contains(&reply.status), "{query}: {}", reply.text);
        assert!(reply.body["code"].is_string(), "{query}: {}", reply.text);
    }
}
