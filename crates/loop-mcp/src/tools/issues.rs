//! Issues: create, update, list, read, comment, relate, and record commits and pull requests.

use serde_json::{Map, Value, json};

use super::{
    ApiError, Args, Context, Output, Run, STATUSES, TYPES, Tool, ToolSet, object, opt_text, segment, summary, text,
};

pub(super) fn tools() -> Vec<(Tool, Run)> {
    vec![
        (
            Tool {
                name: "loop_create_issue",
                description: "Create a new issue in Loop. Issues are the atomic unit of work — signals, hypotheses, \
                    plans, tasks, and monitors are all issue types.",
                input_schema: object(
                    json!({
                        "title": { "type": "string", "minLength": 1, "maxLength": 500, "description": "Issue title" },
                        "type": { "type": "string", "enum": TYPES, "description": "Issue type (default: task)" },
                        "priority": priority("0=none, 1=urgent, 2=high, 3=medium, 4=low (default: 0)"),
                        "projectId": { "type": "string", "description": "Project to assign the issue to" },
                        "description": { "type": "string" },
                        "parentId": { "type": "string", "description": "Parent issue ID for hierarchy" },
                    }),
                    &["title"],
                ),
                read_only: false,
                destructive: false,
                idempotent: false,
                set: ToolSet::Standard,
            },
            |ctx, args| Box::pin(create_issue(ctx, args)),
        ),
        (
            Tool {
                name: "loop_update_issue",
                description: "Update an existing issue in Loop (status, priority, type, title, or description)",
                input_schema: object(
                    json!({
                        "issueId": { "type": "string", "description": "ID of the issue to update" },
                        "status": { "type": "string", "enum": STATUSES, "description": "New status for the issue" },
                        "priority": priority("Priority level (0=none, 1=urgent, 2=high, 3=medium, 4=low)"),
                        "type": { "type": "string", "enum": TYPES, "description": "Issue type" },
                        "title": { "type": "string", "minLength": 1, "maxLength": 500, "description": "New title for the issue" },
                        "description": { "type": "string", "description": "New description for the issue" },
                    }),
                    &["issueId"],
                ),
                read_only: false,
                destructive: false,
                idempotent: true,
                set: ToolSet::Standard,
            },
            |ctx, args| Box::pin(update_issue(ctx, args)),
        ),
        (
            Tool {
                name: "loop_list_issues",
                description: "List issues from Loop with optional filters for status, type, and project. Returns \
                    paginated results.",
                input_schema: object(
                    json!({
                        "status": { "type": "string", "enum": STATUSES, "description": "Filter by issue status" },
                        "type": { "type": "string", "enum": TYPES, "description": "Filter by issue type" },
                        "projectId": { "type": "string", "description": "Filter by project ID" },
                        "limit": { "type": "integer", "minimum": 1, "maximum": 100,
                                   "description": "Maximum number of issues to return (1-100, default 20)" },
                        "offset": { "type": "integer", "minimum": 0, "description": "Number of issues to skip for pagination" },
                    }),
                    &[],
                ),
                read_only: true,
                destructive: false,
                idempotent: true,
                set: ToolSet::Standard,
            },
            |ctx, args| Box::pin(list_issues(ctx, args)),
        ),
        (
            Tool {
                name: "loop_get_issue",
                description: "Get full details of a single issue by ID, including labels, comments, and relations.",
                input_schema: object(
                    json!({ "issueId": { "type": "string", "description": "ID of the issue to retrieve" } }),
                    &["issueId"],
                ),
                read_only: true,
                destructive: false,
                idempotent: true,
                set: ToolSet::Core,
            },
            |ctx, args| Box::pin(get_issue(ctx, args)),
        ),
        (
            Tool {
                name: "loop_create_comment",
                description: "Post a comment on an issue as the agent",
                input_schema: object(
                    json!({
                        "issueId": { "type": "string", "description": "ID of the issue to comment on" },
                        "body": { "type": "string", "minLength": 1, "description": "Comment text" },
                    }),
                    &["issueId", "body"],
                ),
                read_only: false,
                destructive: false,
                idempotent: false,
                set: ToolSet::Core,
            },
            |ctx, args| Box::pin(create_comment(ctx, args)),
        ),
        (
            Tool {
                name: "loop_create_relation",
                description: "Relate two issues: blocks / blocked_by (the blocked issue is not dispatched until the \
                    other is done), related, or duplicate. A block that would close a loop is refused.",
                input_schema: object(
                    json!({
                        "issueId": { "type": "string", "description": "The issue the relation is stated from" },
                        "type": { "type": "string", "enum": ["blocks", "blocked_by", "related", "duplicate"] },
                        "relatedIssueId": { "type": "string", "description": "The other issue" },
                    }),
                    &["issueId", "type", "relatedIssueId"],
                ),
                read_only: false,
                destructive: false,
                idempotent: false,
                set: ToolSet::Standard,
            },
            |ctx, args| {
                Box::pin(async move {
                    let id = segment(text(&args, "issueId")?);
                    let body =
                        json!({ "type": text(&args, "type")?, "relatedIssueId": text(&args, "relatedIssueId")? });
                    Ok(Output::data(ctx.data("POST", &format!("/api/issues/{id}/relations"), Some(body)).await?))
                })
            },
        ),
        (
            Tool {
                name: "loop_attach_commit",
                description: "Record a commit on an issue (its SHA, and optionally message and URL), so the issue \
                    shows what changed.",
                input_schema: object(
                    json!({
                        "issueId": { "type": "string" },
                        "sha": { "type": "string", "minLength": 1, "maxLength": 200 },
                        "message": { "type": "string" },
                        "url": { "type": "string" },
                    }),
                    &["issueId", "sha"],
                ),
                read_only: false,
                destructive: false,
                idempotent: true,
                set: ToolSet::Standard,
            },
            |ctx, args| Box::pin(attach(ctx, args, "commits", "sha")),
        ),
        (
            Tool {
                name: "loop_attach_pr",
                description: "Record a pull request on an issue (its number, and optionally URL and title).",
                input_schema: object(
                    json!({
                        "issueId": { "type": "string" },
                        "number": { "type": "integer", "minimum": 0 },
                        "url": { "type": "string" },
                        "title": { "type": "string" },
                    }),
                    &["issueId", "number"],
                ),
                read_only: false,
                destructive: false,
                idempotent: true,
                set: ToolSet::Standard,
            },
            |ctx, args| Box::pin(attach(ctx, args, "pullRequests", "number")),
        ),
    ]
}

fn priority(description: &str) -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": 4, "description": description })
}

/// `names` of `args` that are present, as a JSON object.
fn pick(args: &Args, names: &[&str]) -> Map<String, Value> {
    names.iter().filter_map(|n| args.get(*n).filter(|v| !v.is_null()).map(|v| ((*n).to_owned(), v.clone()))).collect()
}

async fn create_issue(ctx: &Context, args: Args) -> Result<Output, ApiError> {
    let mut body = pick(&args, &["title", "type", "priority", "description", "parentId"]);
    body.entry("type").or_insert(json!("task"));
    body.entry("priority").or_insert(json!(0));
    if let Some(p) = ctx.project_for(opt_text(&args, "projectId")?) {
        body.insert("projectId".into(), json!(p));
    }
    let issue = ctx.data("POST", "/api/issues", Some(Value::Object(body))).await?;
    Ok(Output::data(summary(&issue)))
}

async fn update_issue(ctx: &Context, args: Args) -> Result<Output, ApiError> {
    let id = segment(text(&args, "issueId")?);
    let body = pick(&args, &["status", "priority", "type", "title", "description"]);
    if body.is_empty() {
        return Err(ApiError::Arguments("give at least one of status, priority, type, title, description".into()));
    }
    let issue = ctx.data("PATCH", &format!("/api/issues/{id}"), Some(Value::Object(body))).await?;
    Ok(Output::data(summary(&issue)))
}

async fn list_issues(ctx: &Context, args: Args) -> Result<Output, ApiError> {
    let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(20);
    let offset = args.get("offset").and_then(Value::as_u64).unwrap_or(0);
    let mut path = format!("/api/issues?limit={limit}&offset={offset}");
    for name in ["status", "type", "projectId"] {
        if let Some(v) = opt_text(&args, name)? {
            path.push_str(&format!("&{name}={}", segment(v)));
        }
    }
    let answer = ctx.call("GET", &path, None).await?;
    let issues: Vec<Value> = answer.body["data"].as_array().into_iter().flatten().map(summary).collect();
    let total = answer.body["total"].as_u64().unwrap_or(0);
    Ok(Output::data(json!({ "issues": issues, "total": total, "hasMore": offset + limit < total })))
}

/// The issue with its relations, labels, comments and sessions, as the description promises.
async fn get_issue(ctx: &Context, args: Args) -> Result<Output, ApiError> {
    let id = segment(text(&args, "issueId")?);
    let mut issue = ctx.data("GET", &format!("/api/issues/{id}"), None).await?;
    let id = segment(issue["id"].as_str().unwrap_or_default());
    issue["comments"] = ctx.data("GET", &format!("/api/issues/{id}/comments"), None).await?;
    issue["sessions"] = ctx.data("GET", &format!("/api/issues/{id}/sessions"), None).await?;
    Ok(Output::data(issue))
}

async fn create_comment(ctx: &Context, args: Args) -> Result<Output, ApiError> {
    let id = segment(text(&args, "issueId")?);
    let body = json!({ "body": text(&args, "body")?, "authorName": "agent", "authorType": "agent" });
    let c = ctx.data("POST", &format!("/api/issues/{id}/comments"), Some(body)).await?;
    Ok(Output::data(
        json!({ "id": c["id"], "body": c["body"], "authorName": c["authorName"], "createdAt": c["createdAt"] }),
    ))
}

/// Appends a commit (`commits`, keyed by `sha`) or a pull request (`pullRequests`, keyed by
/// `number`) to the issue's list; one with the same key is replaced, so a retry adds nothing.
async fn attach(ctx: &Context, args: Args, list: &str, key: &str) -> Result<Output, ApiError> {
    let id = segment(text(&args, "issueId")?);
    let entry = Value::Object(pick(&args, &["sha", "number", "message", "url", "title"]));
    if entry[key].is_null() {
        return Err(ApiError::Arguments(format!("{key} is required")));
    }
    let issue = ctx.data("GET", &format!("/api/issues/{id}"), None).await?;
    let mut items: Vec<Value> = issue[list].as_array().cloned().unwrap_or_default();
    items.retain(|item| item[key] != entry[key]);
    items.push(entry);
    let patched = ctx.data("PATCH", &format!("/api/issues/{id}"), Some(json!({ list: items }))).await?;
    Ok(Output::data(json!({ "issue": summary(&patched), list: patched[list] })))
}
