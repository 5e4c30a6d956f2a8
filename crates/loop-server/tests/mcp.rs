//! The MCP tools against a real server: each tool through `loop_mcp::tools::call` over HTTP
//! (what `loop mcp` does), and `/mcp` itself as a host reaches it (JSON-RPC over Streamable
//! HTTP, behind the API's Bearer auth). The Python SDK drives both from outside in
//! `loop-cli/tests/mcp_client.rs`.

mod common;

use common::{KEY, TestServer, get_issue, id};
use loop_mcp::api::HttpApi;
use loop_mcp::tools::{self, Output};
use loop_mcp::{Context, ToolSet};
use serde_json::{Value, json};

fn context(s: &TestServer, key: &str) -> Context {
    Context::new(Box::new(HttpApi::new(&s.url, key, "mcp-test").unwrap()), None)
}

/// Calls tool `name` with `args` (a JSON object).
async fn call(ctx: &Context, name: &str, args: Value) -> Output {
    let Value::Object(args) = args else { panic!("arguments must be an object") };
    tools::call(ctx, ToolSet::All, name, args).await
}

/// A successful call's structured content.
#[track_caller]
fn ok(out: Output) -> Value {
    assert!(!out.is_error, "tool error: {}", out.text);
    out.structured.expect("structured content")
}

#[tokio::test]
async fn claim_heartbeat_review_and_complete_unblock_the_dependant() {
    let s = common::start().await;
    let first = s.issue_with(json!({ "title": "first", "type": "task", "status": "todo", "priority": 1 })).await;
    let second = s.issue_with(json!({ "title": "second", "type": "task", "status": "todo", "priority": 2 })).await;
    let unrelated =
        s.issue_with(json!({ "title": "unrelated", "type": "task", "status": "todo", "priority": 3 })).await;
    s.client
        .post::<Value>(
            &format!("/api/issues/{}/relations", first.id),
            &json!({ "type": "blocks", "relatedIssueId": second.id }),
        )
        .await
        .unwrap();
    let ctx = context(&s, KEY);

    let claim = ok(call(&ctx, "loop_get_next_task", json!({})).await);
    assert_eq!(claim["issue"]["id"], first.id.as_str());
    assert!(claim["prompt"].as_str().is_some_and(|p| p.contains("first")), "{claim}");
    assert!(claim["token"].as_str().is_some_and(|t| t.starts_with("loopt_")), "{claim}");
    assert!(claim["meta"]["versionId"].is_string());
    let session = claim["session"]["id"].as_str().unwrap().to_owned();
    assert!(claim["session"]["leaseExpiresAt"].is_string());

    // No ids needed: the connection remembers its claim.
    let renewed = ok(call(&ctx, "loop_heartbeat", json!({})).await);
    assert_eq!(renewed["id"], session.as_str(), "{renewed}");
    let review = ok(call(
        &ctx,
        "loop_submit_review",
        json!({ "clarity": 4, "completeness": 3, "relevance": 5, "feedback": "fine" }),
    )
    .await);
    assert_eq!(
        (&review["versionId"], &review["issueId"]),
        (&claim["meta"]["versionId"], &claim["issue"]["id"]),
        "{review}"
    );
    assert_eq!(review["clarity"], 4);

    let done = ok(call(&ctx, "loop_complete_task", json!({ "issueId": first.id, "outcome": "Shipped the fix" })).await);
    assert_eq!(done["issue"]["status"], "done");
    assert_eq!(done["comment"]["body"], "Shipped the fix");
    let unblocked: Vec<&str> =
        done["unblockedIssues"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(unblocked, [second.id.as_str()], "only what this completion unblocked, not {unrelated:?}");

    // The completed issue shows its comment and its session.
    let detail = ok(call(&ctx, "loop_get_issue", json!({ "issueId": first.number.to_string() })).await);
    assert_eq!(detail["agentSummary"], "Shipped the fix");
    assert_eq!(detail["comments"][0]["body"], "Shipped the fix");
    assert_eq!(detail["sessions"][0]["id"], session.as_str());
    assert_eq!(detail["relations"].as_array().unwrap().len(), 1);

    // Release gives it back; a failure is recorded and gives it back too.
    let claim = ok(call(&ctx, "loop_get_next_task", json!({})).await);
    assert_eq!(claim["issue"]["id"], second.id.as_str());
    let released = ok(call(&ctx, "loop_release_task", json!({ "reason": "not mine" })).await);
    assert!(released["endedAt"].is_string(), "{released}");
    assert_eq!(get_issue(&s, &second.id).await["status"], "todo");
    let claim = ok(call(&ctx, "loop_get_next_task", json!({})).await);
    let session = claim["session"]["id"].as_str().unwrap().to_owned();
    let failed =
        ok(call(&ctx, "loop_fail_task", json!({ "sessionId": session, "reason": "tests would not build" })).await);
    assert_eq!(failed["outcome"], "failed", "{failed}");
    // Nothing is remembered any more: renewing needs an id.
    let out = call(&ctx, "loop_heartbeat", json!({})).await;
    assert!(out.is_error && out.text.contains("sessionId is required"), "{}", out.text);

    // An agent that needs a decision asks; the issue waits for a person's answer.
    ok(call(&ctx, "loop_get_next_task", json!({})).await);
    let asked = ok(call(&ctx, "loop_ask_question", json!({ "question": "Keep the old endpoint?" })).await);
    assert_eq!(asked["question"], "Keep the old endpoint?", "{asked}");
    let waiting = get_issue(&s, &second.id).await;
    assert_eq!((waiting["status"].as_str(), waiting["awaitingInput"].as_bool()), (Some("todo"), Some(true)));
    let out = call(&ctx, "loop_get_next_task", json!({})).await;
    assert!(!out.text.contains(&second.id), "a waiting issue is not handed out: {}", out.text);
}

#[tokio::test]
async fn an_empty_queue_is_a_sentence_not_an_error() {
    let s = common::start().await;
    let out = call(&context(&s, KEY), "loop_get_next_task", json!({})).await;
    assert!(!out.is_error && out.structured.is_none());
    assert_eq!(out.text, "No tasks available. The dispatch queue is empty.");
}

#[tokio::test]
async fn issue_and_signal_tools_map_onto_the_api() {
    let s = common::start().await;
    let ctx = context(&s, KEY);

    let created =
        ok(call(&ctx, "loop_create_issue", json!({ "title": "Add retries", "priority": 2, "description": "why" }))
            .await);
    assert_eq!(
        (created["type"].as_str(), created["status"].as_str(), created["priority"].as_i64()),
        (Some("task"), Some("triage"), Some(2))
    );
    let a = id(&created);
    let updated =
        ok(call(&ctx, "loop_update_issue", json!({ "issueId": a, "status": "todo", "title": "Add retries to fetch" }))
            .await);
    assert_eq!((updated["status"].as_str(), updated["title"].as_str()), (Some("todo"), Some("Add retries to fetch")));
    let b = id(&ok(call(&ctx, "loop_create_issue", json!({ "title": "Document retries", "type": "task" })).await));

    let page = ok(call(&ctx, "loop_list_issues", json!({ "status": "todo", "limit": 1 })).await);
    assert_eq!((page["total"].as_u64(), page["hasMore"].as_bool()), (Some(1), Some(false)), "{page}");
    assert_eq!(page["issues"][0]["id"], a.as_str());
    let page = ok(call(&ctx, "loop_list_issues", json!({ "limit": 1 })).await);
    assert_eq!((page["total"].as_u64(), page["hasMore"].as_bool()), (Some(2), Some(true)));

    let comment = ok(call(&ctx, "loop_create_comment", json!({ "issueId": a, "body": "looking" })).await);
    assert_eq!((comment["body"].as_str(), comment["authorName"].as_str()), (Some("looking"), Some("agent")));

    let relation =
        ok(call(&ctx, "loop_create_relation", json!({ "issueId": a, "type": "blocks", "relatedIssueId": b })).await);
    assert_eq!(relation["type"], "blocks");
    let why = ok(call(&ctx, "loop_explain", json!({ "issueId": b })).await);
    assert_eq!(why["blockers"][0]["id"], a.as_str(), "{why}");
    let loop_closer =
        call(&ctx, "loop_create_relation", json!({ "issueId": b, "type": "blocks", "relatedIssueId": a })).await;
    assert!(
        loop_closer.is_error && loop_closer.text.starts_with("API error (422): relatedIssueId:"),
        "{}",
        loop_closer.text
    );

    // Attaching twice records once.
    for _ in 0..2 {
        ok(call(&ctx, "loop_attach_commit", json!({ "issueId": a, "sha": "abc123", "message": "retry fetch" })).await);
    }
    let attached =
        ok(call(&ctx, "loop_attach_pr", json!({ "issueId": a, "number": 7, "url": "https://example.test/pr/7" }))
            .await);
    assert_eq!(attached["pullRequests"], json!([{ "number": 7, "url": "https://example.test/pr/7" }]));
    let issue = get_issue(&s, &a).await;
    assert_eq!(issue["commits"], json!([{ "sha": "abc123", "message": "retry fetch" }]));

    let queue = ok(call(&ctx, "loop_get_queue", json!({})).await);
    assert_eq!(queue["queue"][0]["issue"]["id"], a.as_str(), "{queue}");
    assert!(queue["queue"][0]["score"].is_number());

    let signal = ok(call(
        &ctx,
        "loop_ingest_signal",
        json!({ "source": "sentry", "type": "error", "severity": "high", "payload": { "message": "boom" } }),
    )
    .await);
    assert!(signal["signal"]["id"].is_string() && signal["issue"]["id"].is_string(), "{signal}");
    let signals = ok(call(&ctx, "loop_list_signals", json!({})).await);
    assert_eq!(signals["total"], 1, "{signals}");
    let dashboard = ok(call(&ctx, "loop_get_dashboard", json!({})).await);
    assert_eq!(dashboard["issues"]["total"], 3, "{dashboard}");
}

#[tokio::test]
async fn errors_say_what_went_wrong_and_what_to_do() {
    let s = common::start().await;
    let ctx = context(&s, KEY);

    let out = call(&ctx, "loop_get_issue", json!({ "issueId": "999" })).await;
    assert!(
        out.is_error && out.text.starts_with("Not found:") && out.text.contains("loop_list_issues"),
        "{}",
        out.text
    );
    let out = call(&ctx, "loop_create_issue", json!({ "title": "x".repeat(501) })).await;
    assert!(
        out.is_error && out.text.starts_with("API error (422): title: must be at most 500 characters"),
        "{}",
        out.text
    );
    let out = call(&ctx, "loop_complete_task", json!({ "issueId": "1" })).await;
    assert_eq!((out.is_error, out.text.as_str()), (true, "Invalid arguments: outcome is required"));
    let out = call(&ctx, "loop_submit_review", json!({ "clarity": 3, "completeness": 3, "relevance": 3 })).await;
    assert!(out.is_error && out.text.contains("versionId and issueId are required"), "{}", out.text);
    let out = call(&ctx, "loop_no_such_tool", json!({})).await;
    assert!(out.is_error && out.text.contains("Unknown tool"));
    // A tool outside the offered set is unknown too.
    let out = tools::call(&ctx, ToolSet::Core, "loop_get_queue", Default::default()).await;
    assert!(out.is_error && out.text.contains("Unknown tool"));

    let out = call(&context(&s, "loop_wrong"), "loop_list_issues", json!({})).await;
    assert_eq!((out.is_error, out.text.as_str()), (true, "Authentication failed. Check your LOOP_API_KEY."));
    // The key never appears in what an agent reads.
    assert!(!out.text.contains("loop_wrong"));
}

/// One JSON-RPC request to `/mcp` with `token` (if any): the HTTP status and the JSON body.
async fn rpc(s: &TestServer, token: Option<&str>, method: &str, params: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/mcp", s.url))
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn initialize() -> Value {
    json!({ "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "loop-test", "version": "1" } })
}

#[tokio::test]
async fn mcp_over_http_needs_the_apis_credentials() {
    let s = common::start().await;
    s.task("not to be claimed").await;
    for token in [None, Some("loop_wrong")] {
        let (status, body) =
            rpc(&s, token, "tools/call", json!({ "name": "loop_get_next_task", "arguments": {} })).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["code"], "unauthorized");
    }
    // Nothing ran: the issue is still there to claim.
    assert_eq!(get_issue(&s, "1").await["status"], "triage");

    let (status, body) = rpc(&s, Some(KEY), "initialize", initialize()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["serverInfo"]["name"], "loop-mcp");
    assert!(
        body["result"]["capabilities"]["tools"].is_object() && body["result"]["capabilities"]["prompts"].is_object()
    );
    assert!(body["result"]["instructions"].as_str().unwrap().contains("loop_get_next_task"));

    let (_, body) = rpc(&s, Some(KEY), "tools/list", json!({})).await;
    let names: Vec<&str> =
        body["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), tools::list(ToolSet::All).len());
    let complete =
        body["result"]["tools"].as_array().unwrap().iter().find(|t| t["name"] == "loop_complete_task").unwrap();
    assert_eq!(complete["inputSchema"]["required"], json!(["issueId", "outcome"]));
    assert_eq!(complete["annotations"]["idempotentHint"], true);
}

#[tokio::test]
async fn a_claims_token_acts_over_mcp_with_its_claims_rights() {
    let s = common::start().await;
    let mine = s.issue_with(json!({ "title": "mine", "type": "task", "status": "todo" })).await;
    let other = s.issue_with(json!({ "title": "other", "type": "task", "status": "backlog" })).await;

    let (_, body) = rpc(&s, Some(KEY), "tools/call", json!({ "name": "loop_get_next_task", "arguments": {} })).await;
    let claim = &body["result"]["structuredContent"];
    assert_eq!(claim["issue"]["id"], mine.id.as_str(), "{body}");
    let token = claim["token"].as_str().unwrap();
    let session = claim["session"]["id"].as_str().unwrap();

    let (_, body) =
        rpc(&s, Some(token), "tools/call", json!({ "name": "loop_heartbeat", "arguments": { "sessionId": session } }))
            .await;
    assert_eq!(body["result"]["isError"], false, "{body}");
    let (_, body) = rpc(
        &s,
        Some(token),
        "tools/call",
        json!({ "name": "loop_create_comment", "arguments": { "issueId": mine.id, "body": "on it" } }),
    )
    .await;
    assert_eq!(body["result"]["structuredContent"]["body"], "on it", "{body}");
    // Another issue is beyond the claim.
    let (_, body) = rpc(
        &s,
        Some(token),
        "tools/call",
        json!({ "name": "loop_update_issue", "arguments": { "issueId": other.id, "status": "done" } }),
    )
    .await;
    assert_eq!(body["result"]["isError"], true, "{body}");
    assert!(body["result"]["content"][0]["text"].as_str().unwrap().starts_with("API error (403)"), "{body}");
    assert_eq!(get_issue(&s, &other.id).await["status"], "backlog");
}

#[tokio::test]
async fn prompts_render_templates_and_issues_are_resources() {
    let s = common::start().await;
    let task = s.issue_with(json!({ "title": "Render me", "type": "task", "status": "todo" })).await;

    let (_, body) = rpc(&s, Some(KEY), "prompts/list", json!({})).await;
    let prompts = body["result"]["prompts"].as_array().unwrap();
    let execute = prompts.iter().find(|p| p["name"] == "task-execution").expect("task-execution is a prompt");
    assert_eq!(execute["arguments"][0]["name"], "issue");
    let (_, body) = rpc(
        &s,
        Some(KEY),
        "prompts/get",
        json!({ "name": "task-execution", "arguments": { "issue": task.number.to_string() } }),
    )
    .await;
    let text = body["result"]["messages"][0]["content"]["text"].as_str().unwrap();
    assert!(text.contains("Render me"), "{text}");
    let (_, body) =
        rpc(&s, Some(KEY), "prompts/get", json!({ "name": "no-such-template", "arguments": { "issue": "1" } })).await;
    assert!(body["error"]["message"].as_str().unwrap().contains("Not found"), "{body}");

    let (_, body) = rpc(&s, Some(KEY), "resources/list", json!({})).await;
    assert_eq!(body["result"]["resources"][0]["uri"], format!("loop://issues/{}", task.number));
    let (_, body) = rpc(&s, Some(KEY), "resources/templates/list", json!({})).await;
    assert_eq!(body["result"]["resourceTemplates"][0]["uriTemplate"], "loop://issues/{number}");
    let (_, body) =
        rpc(&s, Some(KEY), "resources/read", json!({ "uri": format!("loop://issues/{}", task.number) })).await;
    let issue: Value = serde_json::from_str(body["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(issue["title"], "Render me");
    let (_, body) = rpc(&s, Some(KEY), "resources/read", json!({ "uri": "loop://issues/999" })).await;
    assert!(body["error"].is_object(), "{body}");
}

#[tokio::test]
async fn an_agent_token_works_over_mcp_under_its_own_name() {
    let s = common::start().await;
    let task = s.issue_with(json!({ "title": "fix it", "type": "task", "status": "todo" })).await;
    let made: Value = s.client.post("/api/tokens", &json!({ "name": "fleet", "role": "agent" })).await.unwrap();
    let ctx = context(&s, made["data"]["secret"].as_str().unwrap());

    let claim = ok(call(&ctx, "loop_get_next_task", json!({})).await);
    assert_eq!(claim["issue"]["id"], task.id.as_str());
    let review = json!({ "clarity": 4, "completeness": 4, "relevance": 4, "feedback": "clear" });
    ok(call(&ctx, "loop_submit_review", review).await);
    let done = ok(call(&ctx, "loop_complete_task", json!({ "issueId": task.id, "outcome": "Fixed" })).await);
    assert_eq!(done["issue"]["status"], "done");
    let sessions: Value = s.client.get(&format!("/api/issues/{}/sessions", task.id)).await.unwrap();
    assert_eq!(sessions["data"][0]["agent"], "fleet/mcp-test", "the token's worker: {sessions}");
    assert_eq!(done["comment"]["authorName"], "fleet/mcp-test");

    // An ingest token reads nothing, over MCP as over the API.
    let made: Value = s.client.post("/api/tokens", &json!({ "name": "hook", "role": "ingest" })).await.unwrap();
    let ingest = context(&s, made["data"]["secret"].as_str().unwrap());
    let refused = call(&ingest, "loop_list_issues", json!({})).await;
    assert!(refused.is_error && refused.text.contains("ingest"), "{}", refused.text);
}
