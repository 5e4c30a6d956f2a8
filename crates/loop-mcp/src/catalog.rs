//! What the MCP prompts and resources are made of: the active prompt templates (each renders
//! for an issue as preview renders it) and the issues.

use serde_json::Value;

use crate::tools::{ApiError, Context, segment};

/// An active prompt template, offered as an MCP prompt named by its slug.
pub struct PromptTemplate {
    pub name: String,
    pub description: String,
}

fn message(e: ApiError) -> String {
    e.into_output().text
}

/// The templates that have an active version.
pub async fn prompts(ctx: &Context) -> Result<Vec<PromptTemplate>, String> {
    let page = ctx.call("GET", "/api/templates?limit=200", None).await.map_err(message)?;
    Ok(page.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| !t["activeVersionId"].is_null())
        .map(|t| PromptTemplate {
            name: t["slug"].as_str().unwrap_or_default().to_owned(),
            description: t["description"].as_str().or(t["name"].as_str()).unwrap_or_default().to_owned(),
        })
        .collect())
}

/// Template `slug` rendered for `issue` (an id or number), as `GET
/// /api/templates/preview/{issue}?template=` renders it.
pub async fn render(ctx: &Context, slug: &str, issue: &str) -> Result<String, String> {
    let path = format!("/api/templates/preview/{}?template={}", segment(issue), segment(slug));
    let preview = ctx.data("GET", &path, None).await.map_err(message)?;
    match (&preview["prompt"], &preview["error"]) {
        (Value::String(p), _) => Ok(p.clone()),
        (_, Value::String(e)) => Err(format!("template {slug} does not render for issue {issue}: {e}")),
        _ => Err(format!("template {slug} has no active version")),
    }
}

/// The most recently created open issues: `(number, title)`.
pub async fn recent_issues(ctx: &Context) -> Result<Vec<(u64, String)>, String> {
    let page = ctx.call("GET", "/api/issues?limit=100&sort=-created", None).await.map_err(message)?;
    Ok(page.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| Some((i["number"].as_u64()?, i["title"].as_str()?.to_owned())))
        .collect())
}

/// Issue `number` with its relations and labels.
pub async fn issue(ctx: &Context, number: &str) -> Result<Value, String> {
    ctx.data("GET", &format!("/api/issues/{number}"), None).await.map_err(message)
}
