//! Working an issue: claim it, keep the lease, report the outcome, rate the prompt.

use serde_json::{Value, json};

use super::{ApiError, Args, Claimed, Context, Output, Run, Tool, ToolSet, object, opt_text, segment, summary, text};

pub(super) fn tools() -> Vec<(Tool, Run)> {
    vec![
        (
            Tool {
                name: "loop_get_next_task",
                description: "Get the highest-priority unblocked issue with dispatch instructions. Atomically claims the \
                    issue. Returns issue details and hydrated prompt, the session holding the lease \
                    (renew it with loop_heartbeat) and a token scoped to this issue.",
                input_schema: object(
                    json!({ "projectId": { "type": "string", "description": "Filter to a specific project" } }),
                    &[],
                ),
                read_only: false,
                destructive: false,
                idempotent: false,
                set: ToolSet::Core,
            },
            |ctx, args| Box::pin(next_task(ctx, args)),
        ),
        (
            Tool {
                name: "loop_complete_task",
                description: "Mark an issue as done, record what was accomplished, and find newly unblocked issues",
                input_schema: object(
                    json!({
                        "issueId": { "type": "string", "description": "ID of the issue to complete" },
                        "outcome": { "type": "string", "description": "Summary of what was accomplished" },
                    }),
                    &["issueId", "outcome"],
                ),
                read_only: false,
                destructive: false,
                idempotent: true,
                set: ToolSet::Core,
            },
            |ctx, args| Box::pin(complete_task(ctx, args)),
        ),
        (
            Tool {
                name: "loop_heartbeat",
                description: "Renew the lease on the issue you are working on, before it expires (see leaseExpiresAt \
                    in the claim). Without a session id, renews this connection's last claim.",
                input_schema: object(json!({ "sessionId": session_id() }), &[]),
                read_only: false,
                destructive: false,
                idempotent: true,
                set: ToolSet::Core,
            },
            |ctx, args| Box::pin(end_or_renew(ctx, args, "heartbeat")),
        ),
        (
            Tool {
                name: "loop_release_task",
                description: "Give the claimed issue back untouched (it returns to the queue for another agent). Use \
                    when you cannot or should not work on it; say why in reason.",
                input_schema: object(
                    json!({ "sessionId": session_id(), "reason": { "type": "string", "description": "Why" } }),
                    &[],
                ),
                read_only: false,
                destructive: false,
                idempotent: false,
                set: ToolSet::Core,
            },
            |ctx, args| Box::pin(end_or_renew(ctx, args, "release")),
        ),
        (
            Tool {
                name: "loop_fail_task",
                description: "Report that you tried and failed (the issue returns to the queue, and the failure is \
                    recorded against the prompt). Say what went wrong in reason.",
                input_schema: object(
                    json!({
                        "sessionId": session_id(),
                        "reason": { "type": "string", "description": "What went wrong" },
                    }),
                    &["reason"],
                ),
                read_only: false,
                destructive: false,
                idempotent: false,
                set: ToolSet::Core,
            },
            |ctx, args| Box::pin(end_or_renew(ctx, args, "fail")),
        ),
        (
            Tool {
                name: "loop_ask_question",
                description: "Ask a person a question you cannot answer yourself (a product decision, missing \
                    access, an ambiguity the issue does not settle) instead of guessing. Your claim ends; the \
                    issue waits until a person answers, and the next prompt carries the question and the answer.",
                input_schema: object(
                    json!({
                        "sessionId": session_id(),
                        "question": { "type": "string", "description": "What needs deciding, and the options you see" },
                    }),
                    &["question"],
                ),
                read_only: false,
                destructive: false,
                idempotent: false,
                set: ToolSet::Core,
            },
            |ctx, args| Box::pin(ask_question(ctx, args)),
        ),
        (
            Tool {
                name: "loop_submit_review",
                description: "Rate the prompt your claim came with (1-5 each for clarity, completeness, relevance), \
                    with feedback on what to improve: reviews improve the prompts. Defaults to this \
                    connection's last claim.",
                input_schema: object(
                    json!({
                        "versionId": { "type": "string", "description": "The prompt version (meta.versionId of the claim)" },
                        "issueId": { "type": "string", "description": "The issue the prompt was for" },
                        "clarity": score("How clear the instructions were"),
                        "completeness": score("Whether it said everything needed"),
                        "relevance": score("How well it fit the issue"),
                        "feedback": { "type": "string", "description": "What to change in the prompt" },
                    }),
                    &["clarity", "completeness", "relevance"],
                ),
                read_only: false,
                destructive: false,
                idempotent: false,
                set: ToolSet::Core,
            },
            |ctx, args| Box::pin(submit_review(ctx, args)),
        ),
        (
            Tool {
                name: "loop_explain",
                description: "Why an issue is or is not dispatchable: its status, open blockers, lease, score and \
                    queue position.",
                input_schema: object(
                    json!({ "issueId": { "type": "string", "description": "Issue id or number" } }),
                    &["issueId"],
                ),
                read_only: true,
                destructive: false,
                idempotent: true,
                set: ToolSet::Standard,
            },
            |ctx, args| {
                Box::pin(async move {
                    let id = segment(text(&args, "issueId")?);
                    Ok(Output::data(ctx.data("GET", &format!("/api/dispatch/explain/{id}"), None).await?))
                })
            },
        ),
        (
            Tool {
                name: "loop_get_queue",
                description: "The ready queue in dispatch order, with each issue's score. Claims nothing.",
                input_schema: object(
                    json!({
                        "projectId": { "type": "string", "description": "Only this project's issues" },
                        "limit": { "type": "integer", "minimum": 1, "maximum": 100, "default": 20 },
                    }),
                    &[],
                ),
                read_only: true,
                destructive: false,
                idempotent: true,
                set: ToolSet::All,
            },
            |ctx, args| Box::pin(queue(ctx, args)),
        ),
    ]
}

fn session_id() -> Value {
    json!({ "type": "string", "description": "The claim's session id (default: this connection's last claim)" })
}

fn score(description: &str) -> Value {
    json!({ "type": "integer", "minimum": 1, "maximum": 5, "description": description })
}

async fn next_task(ctx: &Context, args: Args) -> Result<Output, ApiError> {
    let path = match ctx.project_for(opt_text(&args, "projectId")?) {
        Some(p) => format!("/api/dispatch/next?projectId={}", segment(&p)),
        None => "/api/dispatch/next".to_owned(),
    };
    let answer = ctx.call("GET", &path, None).await?;
    if answer.status == 204 || answer.body["issue"].is_null() {
        return Ok(Output::text("No tasks available. The dispatch queue is empty."));
    }
    let b = &answer.body;
    ctx.remember(Some(Claimed {
        issue_id: b["issue"]["id"].as_str().unwrap_or_default().to_owned(),
        session_id: b["session"]["id"].as_str().unwrap_or_default().to_owned(),
        version_id: b["meta"]["versionId"].as_str().map(str::to_owned),
        project_id: b["issue"]["projectId"].as_str().map(str::to_owned),
    }));
    Ok(Output::data(json!({
        "issue": summary(&b["issue"]),
        "prompt": b["prompt"],
        "meta": b["meta"],
        "session": { "id": b["session"]["id"], "leaseExpiresAt": b["session"]["leaseExpiresAt"] },
        "token": b["token"],
    })))
}

async fn complete_task(ctx: &Context, args: Args) -> Result<Output, ApiError> {
    let id = segment(text(&args, "issueId")?);
    let outcome = text(&args, "outcome")?;
    // What this issue blocks, before it is done: those are the issues it may unblock.
    let before = ctx.data("GET", &format!("/api/issues/{id}"), None).await?;
    let blocked: Vec<String> = before["relations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| match r["type"].as_str() {
            Some("blocks") if r["issueId"] == before["id"] => r["relatedIssueId"].as_str(),
            Some("blocked_by") if r["relatedIssueId"] == before["id"] => r["issueId"].as_str(),
            _ => None,
        })
        .map(str::to_owned)
        .collect();
    let issue = ctx
        .data("PATCH", &format!("/api/issues/{id}"), Some(json!({ "status": "done", "agentSummary": outcome })))
        .await?;
    let comment = json!({ "body": outcome, "authorName": "agent", "authorType": "agent" });
    let comment = ctx.data("POST", &format!("/api/issues/{id}/comments"), Some(comment)).await?;
    let mut unblocked = Vec::new();
    for other in blocked {
        let why = ctx.data("GET", &format!("/api/dispatch/explain/{}", segment(&other)), None).await?;
        if why["blockers"].as_array().is_some_and(Vec::is_empty) {
            unblocked.push(summary(&why["issue"]));
        }
    }
    if issue["id"].as_str() == ctx.claimed().map(|c| c.issue_id).as_deref() {
        ctx.remember(None);
    }
    Ok(Output::data(json!({ "issue": issue, "comment": comment, "unblockedIssues": unblocked })))
}

/// The session named, else this connection's last claim's.
fn session_of(ctx: &Context, args: &Args) -> Result<String, ApiError> {
    match opt_text(args, "sessionId")? {
        Some(s) => Ok(s.to_owned()),
        None => ctx.claimed().map(|c| c.session_id).ok_or_else(|| {
            ApiError::Arguments("sessionId is required: no claim was made through this connection".into())
        }),
    }
}

/// `heartbeat`, `release` or `fail` on a session: the one named, else the last claim's.
async fn end_or_renew(ctx: &Context, args: Args, action: &str) -> Result<Output, ApiError> {
    let session = session_of(ctx, &args)?;
    let body = opt_text(&args, "reason")?.map(|r| json!({ "summary": r }));
    let ended = ctx.data("POST", &format!("/api/sessions/{}/{action}", segment(&session)), body).await?;
    if action != "heartbeat" && ctx.claimed().is_some_and(|c| c.session_id == session) {
        ctx.remember(None);
    }
    Ok(Output::data(ended))
}

async fn ask_question(ctx: &Context, args: Args) -> Result<Output, ApiError> {
    let session = session_of(ctx, &args)?;
    let body = json!({ "question": text(&args, "question")? });
    let asked = ctx.data("POST", &format!("/api/sessions/{}/questions", segment(&session)), Some(body)).await?;
    if ctx.claimed().is_some_and(|c| c.session_id == session) {
        ctx.remember(None);
    }
    Ok(Output::data(asked))
}

async fn submit_review(ctx: &Context, args: Args) -> Result<Output, ApiError> {
    let mut review = json!({
        "clarity": args.get("clarity"), "completeness": args.get("completeness"), "relevance": args.get("relevance"),
        "authorType": "agent",
    });
    match (opt_text(&args, "versionId")?, opt_text(&args, "issueId")?, ctx.claimed()) {
        (Some(version), Some(issue), _) => {
            review["versionId"] = json!(version);
            review["issueId"] = json!(issue);
        }
        // The prompt this connection's claim came with.
        (None, None, Some(Claimed { issue_id, version_id: Some(version), .. })) => {
            review["versionId"] = json!(version);
            review["issueId"] = json!(issue_id);
        }
        _ => {
            return Err(ApiError::Arguments(
                "versionId and issueId are required (no claim with a prompt was made through this connection)".into(),
            ));
        }
    }
    if let Some(f) = opt_text(&args, "feedback")? {
        review["feedback"] = json!(f);
    }
    Ok(Output::data(ctx.data("POST", "/api/prompt-reviews", Some(review)).await?))
}

async fn queue(ctx: &Context, args: Args) -> Result<Output, ApiError> {
    let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(20);
    let mut path = format!("/api/dispatch/queue?limit={limit}");
    if let Some(p) = ctx.project_for(opt_text(&args, "projectId")?) {
        path.push_str(&format!("&projectId={}", segment(&p)));
    }
    let answer = ctx.call("GET", &path, None).await?;
    let entries: Vec<Value> = answer.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| json!({ "issue": summary(&e["issue"]), "score": e["score"] }))
        .collect();
    Ok(Output::data(json!({ "queue": entries, "total": answer.body["total"] })))
}
