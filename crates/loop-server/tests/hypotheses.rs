//! Seed 000's walkthrough through the real HTTP API, with a controlled clock: a PostHog metric
//! drop becomes a signal, the signal a hypothesis with criteria and a 48 h window, the
//! hypothesis tasks and a monitor; the monitor waits for the window; a reading recovers the
//! metric and the data validates the hypothesis; metrics and the changelog tell the story. A
//! second hypothesis whose metric never recovers ends invalidated.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{KEY, TestServer, get_issue, id, send_as, serve_store, token_in};
use loop_core::{Clock, ManualClock, SystemClock};
use loop_server::{Secret, ServerConfig, WebhookSecrets};
use loop_store::sqlite::{SqliteConfig, SqliteStore};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const POSTHOG_SECRET: &str = "posthog-walkthrough-secret";
const HOUR: i64 = 3_600_000;

async fn server(clock: Arc<ManualClock>) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("loop.db");
    let store = SqliteStore::open(SqliteConfig::new(db.to_string_lossy()), clock).await.unwrap();
    let secrets = WebhookSecrets { posthog: Some(Secret::new(POSTHOG_SECRET)), ..WebhookSecrets::default() };
    serve_store(Arc::new(store), dir, |c| ServerConfig {
        sweep_interval: Duration::from_millis(50),
        webhooks: secrets,
        ..c
    })
    .await
}

async fn posthog(s: &TestServer, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/signals/posthog", s.url))
        .header("x-posthog-secret", POSTHOG_SECRET)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "posthog delivery: {}", resp.status());
    resp.json().await.unwrap()
}

/// Claims the next issue as `agent`: the claim's body, or `None` when nothing is ready.
async fn next(s: &TestServer, agent: &str) -> Option<Value> {
    let resp = reqwest::Client::new()
        .get(format!("{}/api/dispatch/next", s.url))
        .bearer_auth(KEY)
        .header("X-Loop-Agent", agent)
        .send()
        .await
        .unwrap();
    match resp.status() {
        StatusCode::NO_CONTENT => None,
        StatusCode::OK => Some(resp.json().await.unwrap()),
        other => panic!("claim answered {other}"),
    }
}

/// What an agent does with its claim's token: `(status, body)`.
async fn act(s: &TestServer, token: &str, method: Method, path: &str, body: Value) -> Value {
    let (status, body) = send_as(s, token, method.clone(), path, Some(body)).await;
    assert!(status.is_success(), "{method} {path} with the claim's token: {status} {body}");
    body["data"].clone()
}

fn hypothesis_status(issue: &Value) -> String {
    issue["hypothesis"]["status"].as_str().unwrap_or_default().to_owned()
}

/// Waits (on the real clock) for the sweeper to move `issue`'s hypothesis out of `testing`.
async fn resolved(s: &TestServer, issue: &str) -> Value {
    for _ in 0..200 {
        let i = get_issue(s, issue).await;
        if hypothesis_status(&i) != "testing" {
            return i;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("hypothesis {issue} was never decided");
}

/// One chain, flat under the signal as seed 000 has it: the signal is triaged, a triage agent
/// makes the hypothesis, a planning agent its task and a monitor blocked by it, an executor
/// does the task with a commit. Returns the `(hypothesis, monitor)` ids.
async fn chain(s: &TestServer, signal: &str, metric: &str, threshold: f64, window_hours: f64) -> (String, String) {
    s.client.update_issue(signal, &json!({"status": "todo"})).await.unwrap();
    let triage = next(s, "triager").await.expect("the signal is dispatched");
    assert_eq!(triage["issue"]["id"], signal);
    let token = token_in(triage["prompt"].as_str().unwrap());
    let hypothesis = act(s, &token, Method::POST, "/api/issues", json!({
        "title": format!("Restore {metric}"), "type": "hypothesis", "status": "todo", "parentId": signal,
        "hypothesis": {"statement": format!("The recent deploy broke {metric}"), "confidence": 0.8,
            "evidence": ["the drop began with the deploy"], "prediction": format!("{metric} recovers"),
            "criteria": {"metric": metric, "comparison": "gte", "threshold": threshold, "windowHours": window_hours}},
    }))
    .await;
    assert_eq!(hypothesis_status(&hypothesis), "proposed");
    act(s, &token, Method::PATCH, &format!("/api/issues/{signal}"), json!({"status": "done"})).await;

    let plan = next(s, "planner").await.expect("the hypothesis is dispatched");
    assert_eq!(plan["issue"]["id"], hypothesis["id"]);
    let token = token_in(plan["prompt"].as_str().unwrap());
    let h = id(&hypothesis);
    let task = act(
        s,
        &token,
        Method::POST,
        "/api/issues",
        json!({
        "title": format!("Fix the {metric} regression"), "type": "task", "status": "todo", "parentId": signal}),
    )
    .await;
    let monitor = act(
        s,
        &token,
        Method::POST,
        "/api/issues",
        json!({
        "title": format!("Check {metric} after the fix"), "type": "monitor", "status": "todo", "parentId": signal}),
    )
    .await;
    act(
        s,
        &token,
        Method::POST,
        &format!("/api/issues/{}/relations", id(&task)),
        json!({"type": "blocks", "relatedIssueId": id(&monitor)}),
    )
    .await;
    act(s, &token, Method::PATCH, &format!("/api/issues/{h}"), json!({"status": "done"})).await;

    let work = next(s, "executor").await.expect("the task is dispatched");
    assert_eq!(work["issue"]["id"], task["id"]);
    let testing = get_issue(s, &h).await;
    assert_eq!(hypothesis_status(&testing), "testing", "its task is underway");
    let token = token_in(work["prompt"].as_str().unwrap());
    act(
        s,
        &token,
        Method::PATCH,
        &format!("/api/issues/{}", id(&task)),
        json!({
        "status": "done", "agentSummary": "Reverted the bad redirect", "commits": [{"sha": "a1b2c3d4e5f6"}]}),
    )
    .await;
    (h, id(&monitor))
}

#[tokio::test]
async fn the_seed_walkthrough_ends_in_a_hypothesis_validated_by_data_and_one_invalidated() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let start = clock.now();
    let s = server(clock.clone()).await;
    let goal = s
        .client
        .create_goal(
            &json!({"title": "Conversion", "metric": "conversion_rate", "currentValue": 3.4, "targetValue": 3.4}),
        )
        .await
        .unwrap();

    // The drop arrives from PostHog and opens a signal in triage.
    let drop = posthog(&s, json!({"metric": "conversion_rate", "current": 3.0, "previous": 3.4})).await;
    let signal = drop["data"]["issue"]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.client.goal(&goal.id).await.unwrap().current_value, Some(3.0));

    let (h, monitor) = chain(&s, &signal, "conversion_rate", 3.3, 48.0).await;
    let m = get_issue(&s, &monitor).await;
    let until = get_issue(&s, &h).await["hypothesis"]["observeUntil"].clone();
    assert_eq!(m["notBefore"], until, "the monitor waits for the observation window");
    assert!(next(&s, "monitor").await.is_none(), "nothing is ready: the monitor waits");
    let why: Value = s.client.get(&format!("/api/dispatch/explain/{monitor}")).await.unwrap();
    assert!(why.to_string().contains("waits until"), "explain says why: {why}");

    // A reading during the window is kept but does not decide.
    clock.advance_millis(47 * HOUR);
    let reading =
        json!({"source": "posthog", "type": "metric_change", "payload": {"metric": "conversion_rate", "value": 3.4}});
    let (status, body) = send_as(&s, KEY, Method::POST, "/api/signals", Some(reading)).await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(
        body["data"]["signal"]["fingerprint"], drop["data"]["signal"]["fingerprint"],
        "both routes: one metric, one signal"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hypothesis_status(&get_issue(&s, &h).await), "testing", "the window still runs");
    assert_eq!(s.client.goal(&goal.id).await.unwrap().current_value, Some(3.4), "metric signals move goals");

    // The window passes: the sweeper lets the monitor go and the data decide.
    clock.advance_millis(2 * HOUR);
    let done = resolved(&s, &h).await;
    assert_eq!(hypothesis_status(&done), "validated", "{done}");
    assert!(done["hypothesis"]["outcome"].as_str().unwrap().contains("conversion_rate is 3.4"), "{done}");
    let events: Value = s.client.get(&format!("/api/issues/{h}/events?limit=200")).await.unwrap();
    let transitions: Vec<&Value> =
        events["data"].as_array().unwrap().iter().filter(|e| e["kind"] == "hypothesis_status_changed").collect();
    assert_eq!(transitions.len(), 2, "proposed → testing → validated: {transitions:?}");
    assert_eq!(transitions[1]["data"]["evidence"]["value"], 3.4);

    let claim = loop {
        if let Some(c) = next(&s, "monitor").await {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(claim["issue"]["id"], monitor.as_str());
    assert!(claim["issue"]["notBefore"].is_null());
    let token = token_in(claim["prompt"].as_str().unwrap());
    // Its token may read the goal, and may not resolve it twice.
    act(&s, &token, Method::GET, &format!("/api/goals/{}", goal.id), Value::Null).await;
    let again = json!({"status": "invalidated", "reason": "second thoughts"});
    let (status, body) =
        send_as(&s, &token, Method::POST, &format!("/api/issues/{h}/hypothesis/resolve"), Some(again)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("already_resolved")), "{body}");

    // A second hypothesis whose metric never recovers.
    let second = posthog(&s, json!({"metric": "signup_rate", "current": 2.0, "previous": 5.0})).await;
    let signal2 = second["data"]["issue"]["id"].as_str().unwrap().to_owned();
    let (h2, monitor2) = chain(&s, &signal2, "signup_rate", 5.0, 24.0).await;
    // The first monitor's token cannot resolve this one, nor move its monitor to reach it.
    let (status, _) = send_as(
        &s,
        &token,
        Method::POST,
        &format!("/api/issues/{h2}/hypothesis/resolve"),
        Some(json!({"status": "validated", "reason": "not mine"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) =
        send_as(&s, &token, Method::PATCH, &format!("/api/issues/{monitor}"), Some(json!({"parentId": signal2}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    act(&s, &token, Method::PATCH, &format!("/api/issues/{monitor}"), json!({"status": "done"})).await;
    posthog(&s, json!({"metric": "signup_rate", "current": 2.5, "previous": 2.0})).await;
    clock.advance_millis(25 * HOUR);
    let failed = resolved(&s, &h2).await;
    assert_eq!(hypothesis_status(&failed), "invalidated", "{failed}");
    assert!(get_issue(&s, &monitor2).await["notBefore"].is_null(), "its window passed");

    // The metrics and the changelog tell the story.
    let since = &start.to_string()[..10];
    let metrics: Value = s.client.get(&format!("/api/metrics?since={since}")).await.unwrap();
    let m = &metrics["data"];
    assert_eq!(m["hitRate"]["overall"]["validated"], 1, "{m}");
    assert_eq!(m["hitRate"]["overall"]["invalidated"], 1, "{m}");
    assert_eq!(m["hitRate"]["overall"]["rate"], 0.5, "{m}");
    assert_eq!(m["hitRate"]["bySignalSource"][0]["key"], "posthog");
    let velocity = &m["velocity"]["signalToValidated"];
    assert_eq!(velocity["count"], 1);
    assert!(velocity["medianMs"].as_i64().unwrap() >= 49 * HOUR, "{velocity}");
    assert_eq!(m["velocity"]["stages"]["execution"]["count"], 2);
    let agents: Vec<&str> = m["agents"].as_array().unwrap().iter().map(|a| a["agent"].as_str().unwrap()).collect();
    assert_eq!(agents, ["executor", "monitor", "planner", "triager"]);
    assert_eq!(m["throughput"].as_array().unwrap().iter().map(|d| d["done"].as_u64().unwrap()).sum::<u64>(), 7);

    let log: Value = s.client.get(&format!("/api/changelog?since={since}")).await.unwrap();
    let groups = log["data"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{log}");
    let first = groups[0]["summary"].as_str().unwrap();
    assert!(first.starts_with("Fix the conversion_rate regression"), "{first}");
    assert!(first.contains("(posthog)") && first.ends_with("validated"), "{first}");
    assert!(groups[1]["summary"].as_str().unwrap().ends_with("invalidated"));
    let md = reqwest::Client::new()
        .get(format!("{}/api/changelog?since={since}&format=md", s.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(md.contains("## Hypothesis #") && md.contains("a1b2c3d"), "{md}");

    // And so does the dashboard's metrics page.
    let page = dashboard_page(&s, &format!("/metrics?since={since}")).await;
    for part in ["Loop velocity", "50% (1 of 2)", "executor", "Fix the conversion_rate regression"] {
        assert!(page.contains(part), "{part} missing from the metrics page: {page}");
    }
}

/// A dashboard page, signed in with the key.
async fn dashboard_page(s: &TestServer, path: &str) -> String {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = http
        .post(format!("{}/login", s.url))
        .header("origin", &s.url)
        .form(&[("key", KEY), ("next", "/issues")])
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = http.get(format!("{}{path}", s.url)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "GET {path}");
    page.text().await.unwrap()
}

#[tokio::test]
async fn a_person_resolves_with_a_reason_and_bad_resolutions_say_what_to_fix() {
    let s = server(Arc::new(ManualClock::new(SystemClock.now()))).await;
    let h = s
        .issue_with(json!({"title": "h", "type": "hypothesis",
            "hypothesis": {"statement": "s", "confidence": 0.5, "status": "validated"}}))
        .await;
    assert_eq!(h.hypothesis.as_ref().unwrap().status.as_str(), "proposed", "clients do not set the lifecycle");
    let path = format!("/api/issues/{}/hypothesis/resolve", h.id);
    let (status, body) = send_as(&s, KEY, Method::POST, &path, Some(json!({"status": "testing", "reason": "x"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("status:"), "{body}");
    let (status, body) = send_as(
        &s,
        KEY,
        Method::POST,
        &path,
        Some(json!({"status": "inconclusive", "reason": "the experiment was stopped"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["hypothesis"]["outcome"], "the experiment was stopped");
    let task = s.task("plain").await;
    let (status, body) = send_as(
        &s,
        KEY,
        Method::POST,
        &format!("/api/issues/{}/hypothesis/resolve", task.id),
        Some(json!({"status": "validated", "reason": "r"})),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("hypothesis_not_found")));
    let bad = json!({"title": "h", "type": "hypothesis", "hypothesis": {"statement": "s", "confidence": 0.5,
        "criteria": {"metric": "m", "comparison": "about", "threshold": 1, "windowHours": 1}}});
    let (status, body) = send_as(&s, KEY, Method::POST, "/api/issues", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["message"].as_str().unwrap().contains("comparison"), "{body}");
}
