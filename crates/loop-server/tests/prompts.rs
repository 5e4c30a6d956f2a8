//! The prompt engine through the API: selection, hydration, scoped tokens, validation, and the
//! improvement loop end to end.

mod common;

use common::{KEY, TestServer, assert_api_error, send_as as as_token, start, token_in};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Claims the next issue as `agent`; panics on 204.
async fn claim(s: &TestServer, agent: &str) -> Value {
    let resp = reqwest::Client::new()
        .get(format!("{}/api/dispatch/next", s.url))
        .bearer_auth(KEY)
        .header("X-Loop-Agent", agent)
        .header("Idempotency-Key", format!("{agent}-{}", rand_suffix()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "expected a claim");
    resp.json().await.unwrap()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[tokio::test]
async fn a_posthog_signal_dispatches_with_the_posthog_template() {
    let s = start().await;
    s.issue_with(json!({
        "title": "PostHog: signup_conversion_rate -12% (24h)", "type": "signal", "status": "todo", "priority": 2,
        "signalSource": "posthog", "signalPayload": {"metric": "signup_conversion_rate", "change": -0.12}
    }))
    .await;
    let c = claim(&s, "a").await;
    assert_eq!(c["meta"]["templateSlug"], "posthog-metric-triage");
    assert_eq!(c["meta"]["reviewUrl"], "POST /api/prompt-reviews");
    let prompt = c["prompt"].as_str().unwrap();
    assert!(prompt.contains("signup_conversion_rate"), "{prompt}");
    assert!(prompt.contains(&s.url), "loopUrl is this server");
    assert!(!prompt.contains(KEY), "the master key never appears in a prompt");
    assert_eq!(c["data"]["prompt"], c["prompt"]);
}

#[tokio::test]
async fn a_task_that_failed_once_gets_the_retry_template_with_its_previous_attempt() {
    let s = start().await;
    let t = s.issue_with(json!({"title": "Fix the flaky login test", "type": "task", "status": "todo"})).await;
    let first = claim(&s, "a").await;
    assert_eq!(first["meta"]["templateSlug"], "task-execution");
    let sid = first["session"]["id"].as_str().unwrap();
    s.client
        .post::<Value>(&format!("/api/sessions/{sid}/fail"), &json!({"summary": "the fixture DB was missing"}))
        .await
        .unwrap();
    let second = claim(&s, "b").await;
    assert_eq!(second["issue"]["id"], t.id.as_str());
    assert_eq!(second["meta"]["templateSlug"], "task-execute-retry");
    let prompt = second["prompt"].as_str().unwrap();
    assert!(prompt.contains("Previous Attempts (1)"), "{prompt}");
    assert!(prompt.contains("failed") && prompt.contains("the fixture DB was missing"), "{prompt}");
    let usage: Value = s.client.get("/api/templates/tpl_default_task_execute_retry").await.unwrap();
    assert_eq!(usage["data"]["activeVersion"]["usageCount"], 1, "usage counted at dispatch");
}

#[tokio::test]
async fn the_prompt_token_is_scoped_to_the_claim_and_dies_with_it() {
    let s = start().await;
    let mine = s.issue_with(json!({"title": "mine", "type": "task", "status": "todo", "priority": 1})).await;
    let other = s.issue_with(json!({"title": "other", "type": "task", "status": "backlog"})).await;
    let c = claim(&s, "agent-7").await;
    assert_eq!(c["issue"]["id"], mine.id.as_str());
    let token = token_in(c["prompt"].as_str().unwrap());

    let (st, _) = as_token(&s, &token, Method::GET, &format!("/api/issues/{}", other.id), None).await;
    assert_eq!(st, 200, "it can read");
    let (st, body) =
        as_token(&s, &token, Method::PATCH, &format!("/api/issues/{}", other.id), Some(json!({"title": "x"}))).await;
    assert_eq!((st, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "not another issue");
    let (st, _) = as_token(&s, &token, Method::DELETE, &format!("/api/issues/{}", mine.id), None).await;
    assert_eq!(st, 403, "no deletes");
    let (st, _) = as_token(&s, &token, Method::GET, "/api/dispatch/next", None).await;
    assert_eq!(st, 403, "no claims");
    let (st, body) = as_token(
        &s,
        &token,
        Method::POST,
        "/api/issues",
        Some(json!({"title": "follow-up", "type": "task", "parentId": mine.id})),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let (st, _) = as_token(
        &s,
        &token,
        Method::POST,
        &format!("/api/issues/{}/comments", mine.id),
        Some(json!({"body": "on it"})),
    )
    .await;
    assert_eq!(st, 201);
    let events = s.client.issue_events(&mine.id, "").await.unwrap();
    assert_eq!(events.data.last().unwrap().actor, "agent-7", "actions are attributed to the agent");

    let (st, _) = as_token(
        &s,
        &token,
        Method::PATCH,
        &format!("/api/issues/{}", mine.number),
        Some(json!({"status": "done", "agentSummary": "done"})),
    )
    .await;
    assert_eq!(st, 200);
    let (st, body) = as_token(&s, &token, Method::GET, "/api/issues", None).await;
    assert_eq!((st, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")), "the claim ended");
    let (st, _) = as_token(&s, &format!("{token}0"), Method::GET, "/api/issues", None).await;
    assert_eq!(st, 401, "a tampered token is refused");
}

#[tokio::test]
async fn preview_selects_and_renders_without_claiming() {
    let s = start().await;
    let i = s.issue_with(json!({"title": "Monitor conversion", "type": "monitor", "status": "todo"})).await;
    let p: Value = s.client.get(&format!("/api/templates/preview/{}", i.number)).await.unwrap();
    assert_eq!(p["template"]["slug"], "monitor-check");
    assert_eq!(p["data"]["template"], p["template"], "the SDK reads data");
    assert!(p["prompt"].as_str().unwrap().contains("Monitor conversion"));
    assert_eq!(s.client.issue(&i.id).await.unwrap().issue.status.as_str(), "todo", "nothing was claimed");
}

#[tokio::test]
async fn versions_are_validated_when_saved() {
    let s = start().await;
    let t = s
        .client
        .create_template(&json!({"slug": "mine", "name": "Mine", "conditions": {"type": "plan"}}))
        .await
        .unwrap();
    let path = format!("/api/templates/{}/versions", t.id);
    let body = json!({"content": "line one\n{{#if issue}}\nunclosed"}).to_string();
    let r = s.client.raw(Method::POST, &path, Some(("application/json", &body))).await.unwrap();
    assert_eq!((r.status.as_u16(), r.body["code"].as_str()), (422, Some("template_compile_error")), "{}", r.text);
    assert!(r.body["details"]["line"].is_number(), "{}", r.text);
    let ok: Value = s
        .client
        .post(&format!("/api/templates/{}/versions", t.id), &json!({"content": "{{issue.title}} {{isue.number}}"}))
        .await
        .unwrap();
    assert_eq!(ok["data"]["status"], "active");
    assert_eq!(ok["warnings"].as_array().unwrap().len(), 1, "{ok}");
    assert!(ok["warnings"][0].as_str().unwrap().contains("isue.number"));
}

#[tokio::test]
async fn the_improvement_loop_closes_end_to_end() {
    let s = start().await;
    // Three tasks are done with the default task template and get poor reviews.
    for i in 0..3 {
        s.issue_with(json!({"title": format!("task {i}"), "type": "task", "status": "todo"})).await;
    }
    for i in 0..3 {
        let c = claim(&s, &format!("worker-{i}")).await;
        assert_eq!(c["meta"]["templateSlug"], "task-execution");
        let token = token_in(c["prompt"].as_str().unwrap());
        let issue = c["issue"]["id"].as_str().unwrap();
        let (st, _) = as_token(
            &s,
            &token,
            Method::PATCH,
            &format!("/api/issues/{issue}"),
            Some(json!({"status": "done", "agentSummary": "ok"})),
        )
        .await;
        assert_eq!(st, 200);
        let review = json!({
            "versionId": c["meta"]["versionId"], "issueId": issue, "clarity": 2, "completeness": 2, "relevance": 3,
            "feedback": "Missing the branch naming convention for PRs"
        });
        // The claim is over, so the review is posted with the master key.
        s.client.create_review(&review).await.unwrap();
    }
    let improvements = s.client.list_issues("status=todo").await.unwrap();
    assert_eq!(improvements.total, 1, "exactly one improvement issue");
    let imp = &improvements.data[0];
    assert_eq!(imp.title, "Improve prompt template: task-execution (avg review 2.3/5, 3 reviews since v1)");
    assert_eq!(imp.priority.value(), 3);
    let description = imp.description.clone().unwrap();
    assert!(description.contains("\"missing branch naming convention prs\" (mentioned in 3 reviews)"), "{description}");
    let labels: Vec<String> = s.client.issue(&imp.id).await.unwrap().labels.into_iter().map(|l| l.name).collect();
    assert_eq!(labels, ["auto-generated", "meta", "prompt-improvement"], "Loop made it");
    // A fourth bad review does not open a second issue.
    let v1 = s.client.template("tpl_default_task_execution").await.unwrap().active_version.unwrap();
    assert_eq!(v1.completion_rate, Some(1.0));
    s.client
        .create_review(&json!({"versionId": v1.id, "issueId": imp.id, "clarity": 1, "completeness": 1, "relevance": 1}))
        .await
        .unwrap();
    assert_eq!(s.client.list_issues("status=todo").await.unwrap().total, 1);

    // The improvement issue dispatches with the prompt-improvement template and its context.
    let c = claim(&s, "improver").await;
    assert_eq!(c["issue"]["id"], imp.id.as_str());
    assert_eq!(c["meta"]["templateSlug"], "prompt-improvement");
    let prompt = c["prompt"].as_str().unwrap();
    assert!(prompt.contains("Name: Task Execution (task-execution)"), "{prompt}");
    assert!(prompt.contains("Current version: v1"));
    assert!(prompt.contains("You are implementing task #{{issue.number}}."), "the current content is shown raw");
    assert!(prompt.contains("Missing the branch naming convention for PRs"));
    assert!(prompt.contains("Reviews (4 since v1 became active)"), "{prompt}");

    // The agent drafts v2 with its claim token; it may not activate it.
    let token = token_in(prompt);
    let path = "/api/templates/tpl_default_task_execution/versions";
    let draft = json!({"content": "v2: implement #{{issue.number}} on a branch named loop-{{issue.number}}.", "changelog": "Name the branch", "status": "draft"});
    let (st, _) = as_token(&s, &token, Method::POST, path, Some(json!({"content": "x", "status": "active"}))).await;
    assert_eq!(st, 403);
    let (st, body) = as_token(&s, &token, Method::POST, path, Some(draft)).await;
    assert_eq!(st, 201, "{body}");
    let v2 = body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["data"]["status"], "draft");
    as_token(&s, &token, Method::PATCH, &format!("/api/issues/{}", imp.id), Some(json!({"status": "done"}))).await;

    // A human promotes it; the next task dispatch uses it.
    s.client.promote_version("tpl_default_task_execution", &v2).await.unwrap();
    s.issue_with(json!({"title": "task after", "type": "task", "status": "todo"})).await;
    let c = claim(&s, "worker-x").await;
    assert_eq!(c["meta"]["versionNumber"], 2);
    assert!(c["prompt"].as_str().unwrap().starts_with("v2: implement #"), "{}", c["prompt"]);
    assert_api_error(s.client.promote_version("tpl_default_task_execution", &v2).await, 422, "already_active");
}

#[tokio::test]
async fn a_prompt_that_fails_to_render_never_loses_the_claim() {
    let s = start().await;
    let t = s
        .client
        .create_template(
            &json!({"slug": "broken", "name": "Broken", "conditions": {"type": "plan"}, "specificity": 90}),
        )
        .await
        .unwrap();
    // It compiles, so it is saved; the json helper without an argument fails when rendered.
    let v: Value = s
        .client
        .post(&format!("/api/templates/{}/versions", t.id), &json!({"content": "Plan: {{json}}"}))
        .await
        .unwrap();
    assert_eq!(v["data"]["status"], "active");
    let plan = s.issue_with(json!({"title": "a plan", "type": "plan", "status": "todo"})).await;
    let c = claim(&s, "a").await;
    assert_eq!(c["issue"]["id"], plan.id.as_str());
    assert_eq!(c["issue"]["status"], "in_progress", "the claim stands");
    assert!(c["prompt"].is_null(), "{c}");
    assert_eq!(c["meta"]["templateSlug"], "broken", "meta says which version failed");
}

#[tokio::test]
async fn versions_can_be_retired_and_rolled_back() {
    let s = start().await;
    let t = s.client.create_template(&json!({"slug": "rb", "name": "RB"})).await.unwrap();
    let v1 = s.client.create_version(&t.id, &json!({"content": "one"})).await.unwrap();
    let v2 = s.client.create_version(&t.id, &json!({"content": "two", "status": "active"})).await.unwrap();
    let v3 = s.client.create_version(&t.id, &json!({"content": "three"})).await.unwrap();
    let path = |v: &str| format!("/api/templates/{}/versions/{v}", t.id);
    let retired: Value = s.client.patch(&path(&v3.id), &json!({"status": "retired"})).await.unwrap();
    assert_eq!(retired["data"]["status"], "retired");
    assert_api_error(
        s.client.patch::<Value>(&path(&v2.id), &json!({"status": "retired"})).await,
        422,
        "active_version",
    );
    // Roll back to v1.
    let back: Value = s.client.patch(&path(&v1.id), &json!({"status": "active"})).await.unwrap();
    assert_eq!(back["data"]["status"], "active");
    let versions = s.client.list_versions(&t.id, "").await.unwrap();
    let active: Vec<i64> = versions.data.iter().filter(|v| v.status.as_str() == "active").map(|v| v.version).collect();
    assert_eq!(active, [1], "exactly one active version");
    assert_eq!(s.client.template(&t.id).await.unwrap().template.active_version_id.as_deref(), Some(v1.id.as_str()));
}

/// The improvement thresholds are the team's settings: with a review count of 1, one good
/// review is enough to ask for a better version. Bad settings are refused with the field named;
/// a claim's token may read them, not change them.
#[tokio::test]
async fn the_improvement_thresholds_come_from_the_settings() {
    let s = start().await;
    let (status, body) =
        as_token(&s, KEY, Method::PATCH, "/api/settings", Some(json!({"improvementScoreThreshold": 7}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("improvementScoreThreshold"), "{body}");
    let (status, body) =
        as_token(&s, KEY, Method::PATCH, "/api/settings", Some(json!({"improvementReviewCount": 1}))).await;
    assert_eq!((status, body["data"]["improvementReviewCount"].as_u64()), (StatusCode::OK, Some(1)), "{body}");

    s.issue_with(json!({"title": "one task", "type": "task", "status": "todo"})).await;
    let c = claim(&s, "worker").await;
    let token = token_in(c["prompt"].as_str().unwrap());
    let (status, _) = as_token(&s, &token, Method::GET, "/api/settings", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        as_token(&s, &token, Method::PATCH, "/api/settings", Some(json!({"improvementReviewCount": 100}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let issue = c["issue"]["id"].as_str().unwrap();
    let review =
        json!({"versionId": c["meta"]["versionId"], "issueId": issue, "clarity": 5, "completeness": 5, "relevance": 5});
    s.client.create_review(&review).await.unwrap();
    let improvements = s.client.list_issues("type=task&q=Improve").await.unwrap();
    assert_eq!(improvements.total, 1, "one review reached the review count");
}
