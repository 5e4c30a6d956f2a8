//! What a claim's token can and cannot do, over HTTP: it acts as its agent, never as a person;
//! it cannot claim (not even with HEAD), activate a prompt or strand an issue; it can post its
//! review after reporting; and every call each default prompt instructs succeeds with it.

mod common;

use common::{KEY, TestServer, send_as as call, start, token_in};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Claims one given issue with the master key, as `agent`; returns the claim's body.
async fn claim_issue(s: &TestServer, agent: &str, issue: &str) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/issues/{issue}/dispatch", s.url))
        .bearer_auth(KEY)
        .header("X-Loop-Agent", agent)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "claim of {issue}");
    resp.json().await.unwrap()
}

async fn queue_total(s: &TestServer) -> u64 {
    s.client.dispatch_queue("").await.unwrap().total
}

#[tokio::test]
async fn head_never_claims_for_anyone() {
    let s = start().await;
    for i in 0..3 {
        s.issue_with(json!({"title": format!("t{i}"), "type": "task", "status": "todo"})).await;
    }
    let http = reqwest::Client::new();
    let head = |token: String| http.head(format!("{}/api/dispatch/next", s.url)).bearer_auth(token).send();
    let resp = head(KEY.into()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "GET");
    assert_eq!(queue_total(&s).await, 3, "nothing was claimed");

    let first = s.client.list_issues("status=todo").await.unwrap().data[0].id.clone();
    let token = token_in(claim_issue(&s, "a", &first).await["prompt"].as_str().unwrap());
    for _ in 0..5 {
        let status = head(token.clone()).await.unwrap().status();
        assert!(status == StatusCode::FORBIDDEN || status == StatusCode::METHOD_NOT_ALLOWED, "{status}");
    }
    assert_eq!(queue_total(&s).await, 2, "a claim token drains nothing with HEAD");
}

#[tokio::test]
async fn a_claim_token_acts_as_its_agent_never_as_a_person() {
    let s = start().await;
    let issue = s.issue_with(json!({"title": "work", "type": "task", "status": "todo"})).await;
    let c = claim_issue(&s, "agent-9", &issue.id).await;
    let token = token_in(c["prompt"].as_str().unwrap());

    let body = json!({"body": "looks fine", "authorType": "human", "authorName": "admin"});
    let (st, comment) = call(&s, &token, Method::POST, &format!("/api/issues/{}/comments", issue.id), Some(body)).await;
    assert_eq!(st, 201, "{comment}");
    assert_eq!(
        (comment["data"]["authorType"].as_str(), comment["data"]["authorName"].as_str()),
        (Some("agent"), Some("agent-9"))
    );

    // A template with no versions: the token's first version is still a draft.
    let t = s
        .client
        .create_template(&json!({"slug": "fresh", "name": "Fresh", "conditions": {"type": "plan"}}))
        .await
        .unwrap();
    let path = format!("/api/templates/{}/versions", t.id);
    let (st, v) = call(&s, &token, Method::POST, &path, Some(json!({"content": "Do {{issue.title}}"}))).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!((v["data"]["status"].as_str(), v["data"]["authorType"].as_str()), (Some("draft"), Some("agent")));
    assert_eq!(v["data"]["authorName"], "agent-9");
    assert!(s.client.template(&t.id).await.unwrap().active_version.is_none(), "nothing was activated");
    let (st, _) = call(&s, &token, Method::POST, &path, Some(json!({"content": "x", "status": "active"}))).await;
    assert_eq!(st, 403);
    // The master key's first version without a status is active, as before.
    let v = s.client.create_version(&t.id, &json!({"content": "Plan {{issue.title}}"})).await.unwrap();
    assert_eq!(v.status.as_str(), "active");

    // Its review counts once, as an agent's, whatever it claims to be.
    let review = json!({"versionId": c["meta"]["versionId"], "issueId": issue.id, "clarity": 1, "completeness": 1,
        "relevance": 1, "authorType": "human"});
    let (st, r) = call(&s, &token, Method::POST, "/api/prompt-reviews", Some(review.clone())).await;
    assert_eq!(st, 201, "{r}");
    assert_eq!(
        (r["data"]["authorType"].as_str(), r["data"]["sessionId"].as_str()),
        (Some("agent"), c["session"]["id"].as_str())
    );
    assert_eq!(r["data"]["authorName"], "agent-9");
    let (st, r) = call(&s, &token, Method::POST, "/api/prompt-reviews", Some(review)).await;
    assert_eq!((st, r["code"].as_str()), (StatusCode::CONFLICT, Some("review_exists")));
}

#[tokio::test]
async fn a_claim_token_cannot_strand_an_issue_and_children_join_the_parent_project() {
    let s = start().await;
    let p = s.client.create_project(&json!({"name": "Checkout"})).await.unwrap();
    let issue = s.issue_with(json!({"title": "work", "type": "task", "status": "todo", "projectId": p.id})).await;
    let token = token_in(claim_issue(&s, "a", &issue.id).await["prompt"].as_str().unwrap());
    for status in ["in_progress", "done", "canceled"] {
        let body = json!({"title": "x", "type": "task", "status": status, "parentId": issue.id});
        let (st, e) = call(&s, &token, Method::POST, "/api/issues", Some(body)).await;
        assert_eq!(st, 403, "{status}: {e}");
        assert!(e["error"].as_str().unwrap().contains("status"), "{e}");
    }
    let before = s.issue_count().await;
    for status in ["todo", "backlog", "triage"] {
        let body = json!({"title": format!("child {status}"), "type": "task", "status": status, "parentId": issue.id});
        let (st, child) = call(&s, &token, Method::POST, "/api/issues", Some(body)).await;
        assert_eq!(st, 201, "{child}");
        assert_eq!(child["data"]["projectId"], p.id.as_str(), "a child joins its parent's project");
    }
    assert_eq!(s.issue_count().await, before + 3);
}

#[tokio::test]
async fn after_reporting_a_token_may_post_its_review_and_nothing_else() {
    let s = start().await;
    let issue = s.issue_with(json!({"title": "work", "type": "task", "status": "todo"})).await;
    let other = s.issue_with(json!({"title": "other", "type": "task", "status": "backlog"})).await;
    let c = claim_issue(&s, "a", &issue.id).await;
    let token = token_in(c["prompt"].as_str().unwrap());
    let (st, _) =
        call(&s, &token, Method::PATCH, &format!("/api/issues/{}", issue.id), Some(json!({"status": "done"}))).await;
    assert_eq!(st, 200);

    let (st, _) = call(&s, &token, Method::GET, "/api/issues", None).await;
    assert_eq!(st, 401, "the claim is over");
    let (st, _) =
        call(&s, &token, Method::POST, &format!("/api/issues/{}/comments", issue.id), Some(json!({"body": "x"}))).await;
    assert_eq!(st, 401);
    let review = |version: &Value, issue: &str| json!({"versionId": version, "issueId": issue, "clarity": 4, "completeness": 4, "relevance": 5});
    let other_version = s.client.template("tpl_default_plan_decomposition").await.unwrap().active_version.unwrap().id;
    let (st, _) =
        call(&s, &token, Method::POST, "/api/prompt-reviews", Some(review(&json!(other_version), &issue.id))).await;
    assert_eq!(st, 403, "only the prompt it was given");
    let (st, _) =
        call(&s, &token, Method::POST, "/api/prompt-reviews", Some(review(&c["meta"]["versionId"], &other.id))).await;
    assert_eq!(st, 403, "only on its own issue");
    let (st, r) =
        call(&s, &token, Method::POST, "/api/prompt-reviews", Some(review(&c["meta"]["versionId"], &issue.id))).await;
    assert_eq!(st, 201, "{r}");
    let (st, _) =
        call(&s, &token, Method::POST, "/api/prompt-reviews", Some(review(&c["meta"]["versionId"], &issue.id))).await;
    assert_eq!(st, 409, "one review per claim");
}

/// One `curl` call a prompt instructs.
#[derive(Debug, Clone)]
struct Instructed {
    method: Method,
    path: String,
    body: Option<String>,
}

/// Every curl call in a prompt's code blocks, with its continuation lines joined.
fn instructed_calls(prompt: &str, base: &str) -> Vec<Instructed> {
    let mut calls = Vec::new();
    let mut in_block = false;
    let mut command = String::new();
    for line in prompt.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        command.push_str(line.trim_end().trim_end_matches('\\'));
        command.push(' ');
        if line.trim_end().ends_with('\\') {
            continue;
        }
        // The ids of "issue A" and "issue B" become one word each, filled in when run.
        let text = std::mem::take(&mut command).replace("<A id>", "{A}").replace("<B id>", "{B}");
        let Some(curl) = text.trim().strip_prefix("curl ") else { continue };
        let method = curl.split("-X ").nth(1).and_then(|m| m.split_whitespace().next()).unwrap_or("GET");
        let url = curl.split_whitespace().find(|w| w.starts_with(base)).expect("a URL on this server");
        let body = curl.split_once("-d '").map(|(_, rest)| rest[..rest.rfind('\'').unwrap()].to_owned());
        calls.push(Instructed { method: method.parse().unwrap(), path: url[base.len()..].to_owned(), body });
    }
    calls
}

/// Fills the prompt's placeholders that must be real values.
fn fill(text: &str, a: &str, b: &str) -> String {
    text.replace("{A}", a).replace("{B}", b).replace("<1-5>", "4")
}

/// Runs one instructed call with the token; it must succeed.
async fn run(s: &TestServer, token: &str, slug: &str, c: &Instructed, ids: (&str, &str)) -> Value {
    let path = fill(&c.path, ids.0, ids.1);
    let body = c.body.as_ref().map(|b| {
        let filled = fill(b, ids.0, ids.1).replace("<new template content>", "Improved: {{issue.title}}");
        serde_json::from_str::<Value>(&filled)
            .unwrap_or_else(|e| panic!("{slug}: the body of {path} is not JSON ({e}): {filled}"))
    });
    let (status, answer) = call(s, token, c.method.clone(), &path, body).await;
    assert!(status.is_success(), "{slug}: {} {path} answered {status}: {answer}", c.method);
    answer
}

/// Makes a live issue that dispatch gives template `slug`.
async fn issue_for(s: &TestServer, slug: &str) -> String {
    let signal = |source: Option<&str>| {
        json!({"title": format!("signal for {slug}"), "type": "signal", "status": "todo", "signalSource": source,
            "signalPayload": {"metric": "conversion", "change": -0.1}})
    };
    let body = match slug {
        "signal-triage" => signal(None),
        "posthog-metric-triage" => signal(Some("posthog")),
        "sentry-error-triage" => signal(Some("sentry")),
        "github-event-triage" => signal(Some("github")),
        "hypothesis-planning" => {
            json!({"title": "Faster checkout converts better", "type": "hypothesis", "status": "todo",
            "hypothesis": {"statement": "The slow page loses buyers", "confidence": 0.7, "evidence": ["p95 4 s"],
            "validationCriteria": "conversion back to 3.4%", "prediction": "conversion +10%"}})
        }
        "monitor-check" => {
            // In a project with a goal, so the prompt also asks to read the goal.
            let goal = s.client.create_goal(&json!({"title": "Conversion", "metric": "conversion"})).await.unwrap();
            let project = s.client.create_project(&json!({"name": "Checkout", "goalId": goal.id})).await.unwrap();
            let h = s
                .issue_with(
                    json!({"title": "Hypothesis", "type": "hypothesis", "status": "done", "projectId": project.id,
                "hypothesis": {"statement": "The slow page loses buyers", "confidence": 0.7,
                    "criteria": {"metric": "conversion", "comparison": "gte", "threshold": 3.4, "windowHours": 48}}}),
                )
                .await;
            json!({"title": "Check conversion", "type": "monitor", "status": "todo", "parentId": h.id, "projectId": project.id})
        }
        "plan-decomposition" => json!({"title": "Plan the rewrite", "type": "plan", "status": "todo"}),
        "task-execution" => json!({"title": "Fix the login", "type": "task", "status": "todo"}),
        "task-rework" => {
            let t = s.issue_with(json!({"title": "Cache the rates", "type": "task", "status": "done"})).await;
            let item = json!({"kind": "review", "body": "Cache for a day"});
            s.client.post::<Value>(&format!("/api/issues/{}/rework", t.id), &item).await.unwrap();
            return t.id;
        }
        "task-execute-retry" => {
            let t = s.issue_with(json!({"title": "Fix the flaky test", "type": "task", "status": "todo"})).await;
            let first = claim_issue(s, "earlier", &t.id).await;
            let sid = first["session"]["id"].as_str().unwrap();
            s.client.post::<Value>(&format!("/api/sessions/{sid}/fail"), &json!({"summary": "no DB"})).await.unwrap();
            return t.id;
        }
        "prompt-improvement" => {
            // Three poor reviews of the plan template open its improvement issue.
            for i in 0..3 {
                let p = s.issue_with(json!({"title": format!("plan {i}"), "type": "plan", "status": "todo"})).await;
                let c = claim_issue(s, "planner", &p.id).await;
                let token = token_in(c["prompt"].as_str().unwrap());
                call(s, &token, Method::PATCH, &format!("/api/issues/{}", p.id), Some(json!({"status": "done"}))).await;
                let review = json!({"versionId": c["meta"]["versionId"], "issueId": p.id, "clarity": 1, "completeness": 2, "relevance": 2});
                let (st, r) = call(s, &token, Method::POST, "/api/prompt-reviews", Some(review)).await;
                assert_eq!(st, 201, "{r}");
            }
            let open = s.client.list_issues("status=todo&type=task").await.unwrap();
            let imp =
                open.data.iter().find(|i| i.title.starts_with("Improve prompt template")).expect("improvement issue");
            return imp.id.clone();
        }
        other => panic!("no fixture for {other}"),
    };
    s.issue_with(body).await.id
}

/// Every default template is rendered for a real claim, and every call it instructs is run
/// with that claim's token: the work calls in order, then the report, then the review (after
/// the claim ended, as the prompt puts it); the `fail` alternative on a second claim.
#[tokio::test]
async fn every_call_a_default_prompt_instructs_succeeds_with_its_token() {
    let s = start().await;
    for t in loop_prompts::defaults::TEMPLATES {
        let issue = issue_for(&s, t.slug).await;
        let c = claim_issue(&s, "worker", &issue).await;
        assert_eq!(c["meta"]["templateSlug"], t.slug, "fixture for {}", t.slug);
        let prompt = c["prompt"].as_str().expect("a rendered prompt");
        let token = token_in(prompt);
        let calls = instructed_calls(prompt, &s.url);
        assert!(calls.len() >= 6, "{}: {} calls found", t.slug, calls.len());
        if t.slug == "monitor-check" {
            let asks = |end: &str| calls.iter().any(|c| c.path.contains(end));
            assert!(asks("/api/goals/") && asks("/hypothesis/resolve"), "the monitor reads its goal and resolves");
        }
        let is_report = |c: &Instructed| c.method == Method::PATCH && c.path.ends_with(&issue);
        let is_fail = |c: &Instructed| c.path.ends_with("/fail");
        let is_question = |c: &Instructed| c.path.ends_with("/questions");
        let is_review = |c: &Instructed| c.path == "/api/prompt-reviews";

        let mut created = Vec::new();
        for c in calls.iter().filter(|c| !is_report(c) && !is_fail(c) && !is_question(c) && !is_review(c)) {
            if c.path.contains("{A}") {
                // "make issue A wait for issue B": two issues of the prompt's own making.
                while created.len() < 2 {
                    let create = calls.iter().find(|c| c.path == "/api/issues").expect("a create call");
                    created.push(
                        run(&s, &token, t.slug, create, ("", "")).await["data"]["id"].as_str().unwrap().to_owned(),
                    );
                }
            }
            let answer =
                run(&s, &token, t.slug, c, (created.first().map_or("", |s| s), created.get(1).map_or("", |s| s))).await;
            if c.path == "/api/issues" {
                created.push(answer["data"]["id"].as_str().unwrap().to_owned());
            }
        }
        for c in calls.iter().filter(|c| is_report(c)).chain(calls.iter().filter(|c| is_review(c))) {
            run(&s, &token, t.slug, c, ("", "")).await;
        }

        // The alternative ending: give the claim back.
        s.client.update_issue(&issue, &json!({"status": "todo"})).await.unwrap();
        let again = claim_issue(&s, "worker", &issue).await;
        let token = token_in(again["prompt"].as_str().unwrap());
        let fail = instructed_calls(again["prompt"].as_str().unwrap(), &s.url);
        let fail = fail.iter().find(|c| is_fail(c)).unwrap_or_else(|| panic!("{}: no fail call", t.slug));
        run(&s, &token, t.slug, fail, ("", "")).await;
        // Or ask a person instead of guessing.
        let again = claim_issue(&s, "worker", &issue).await;
        let token = token_in(again["prompt"].as_str().unwrap());
        let ask = instructed_calls(again["prompt"].as_str().unwrap(), &s.url);
        let ask = ask.iter().find(|c| is_question(c)).unwrap_or_else(|| panic!("{}: no question call", t.slug));
        let asked = run(&s, &token, t.slug, ask, ("", "")).await;
        assert_eq!(asked["data"]["issueId"], issue.as_str(), "{}", t.slug);
    }
}

/// A session's record is the runner's word, written with the key: a claim's token cannot write
/// its own attestation.
#[tokio::test]
async fn session_records_are_written_with_the_key_and_checked() {
    let s = common::start().await;
    let issue = s.issue_with(json!({ "title": "recorded", "type": "task", "status": "todo" })).await;
    let claim = claim_issue(&s, "runner-1", &issue.id).await;
    let (session, token) =
        (claim["session"]["id"].as_str().unwrap().to_owned(), claim["token"].as_str().unwrap().to_owned());
    let http = reqwest::Client::new();
    let url = format!("{}/api/sessions/{session}/record", s.url);
    let get = |key: String| http.get(&url).bearer_auth(key).send();
    assert_eq!(get(KEY.into()).await.unwrap().status(), StatusCode::NOT_FOUND, "nothing recorded yet");

    let body = json!({ "attestation": { "outcome": "done" }, "transcript": "ran\n", "costUsd": 0.1 });
    let by_token = http.put(&url).bearer_auth(&token).json(&body).send().await.unwrap();
    assert_eq!(by_token.status(), StatusCode::FORBIDDEN);
    let bad = http.put(&url).bearer_auth(KEY).json(&json!({ "attestation": "done" })).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["details"]["field"], "attestation", "{bad}");

    let kept = http.put(&url).bearer_auth(KEY).json(&body).send().await.unwrap();
    assert_eq!(kept.status(), StatusCode::OK);
    let read: Value = get(KEY.into()).await.unwrap().json().await.unwrap();
    assert_eq!(
        (read["data"]["attestation"]["outcome"].as_str(), read["data"]["transcript"].as_str()),
        (Some("done"), Some("ran\n"))
    );
    // The token may read it (it reads anything while its claim runs).
    assert_eq!(get(token).await.unwrap().status(), StatusCode::OK);
    let session: Value = s.client.get(&format!("/api/sessions/{session}")).await.unwrap();
    assert_eq!(session["data"]["costUsd"], 0.1);
}
