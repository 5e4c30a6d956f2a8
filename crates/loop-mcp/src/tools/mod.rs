//! The tools: what each does, its input schema and annotations, and how it maps onto the
//! Loop API. The reference's nine keep their names, input schemas and output shapes, so an
//! agent prompt written for the reference works unchanged; the rest are named in their style.
//!
//! Every tool answers with text (pretty JSON, or a sentence) and, when it returns data, the
//! same object as `structuredContent`. An API error is a tool error (`isError`) whose text
//! carries the server's message and the field it names.

mod issues;
mod signals;
mod work;

use std::sync::Mutex;

use serde_json::{Map, Value, json};

use crate::api::{Answer, Api};

/// Which tools a host is offered: every description costs the agent context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ToolSet {
    /// Claim, work, report: what an agent working an issue needs.
    Core,
    /// Core, the reference's nine, relations, commits and pull requests, explanations.
    Standard,
    /// Everything, with the queue and the signal list.
    All,
}

impl std::str::FromStr for ToolSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "core" => Ok(ToolSet::Core),
            "standard" => Ok(ToolSet::Standard),
            "all" => Ok(ToolSet::All),
            other => Err(format!("unknown tool set {other:?}: expected core, standard or all")),
        }
    }
}

/// A tool as a host sees it.
pub struct Tool {
    pub name: &'static str,
    pub description: &'static str,
    /// The JSON Schema of its arguments (an object schema).
    pub input_schema: Value,
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    /// The smallest set it belongs to.
    pub set: ToolSet,
}

/// A tool's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub text: String,
    pub structured: Option<Value>,
    pub is_error: bool,
}

impl Output {
    /// Data: as pretty JSON text and as structured content.
    pub fn data(value: Value) -> Self {
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        Output { text, structured: Some(value), is_error: false }
    }

    pub fn text(text: impl Into<String>) -> Self {
        Output { text: text.into(), structured: None, is_error: false }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Output { text: text.into(), structured: None, is_error: true }
    }
}

/// What the tools share for one connection: the API, the project this agent works in, and
/// the claim it holds (so `loop_heartbeat` and friends need no ids over stdio).
pub struct Context {
    pub api: Box<dyn Api>,
    /// Issues are claimed from and created in this project unless a call names another.
    pub project: Option<String>,
    claim: Mutex<Option<Claimed>>,
}

/// The last claim made through this connection.
#[derive(Debug, Clone, Default)]
struct Claimed {
    issue_id: String,
    session_id: String,
    version_id: Option<String>,
    project_id: Option<String>,
}

impl Context {
    pub fn new(api: Box<dyn Api>, project: Option<String>) -> Self {
        Self { api, project, claim: Mutex::new(None) }
    }

    fn claimed(&self) -> Option<Claimed> {
        self.claim.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn remember(&self, claimed: Option<Claimed>) {
        *self.claim.lock().unwrap_or_else(|e| e.into_inner()) = claimed;
    }

    /// The project to work in: the call's, else the claim's, else the configured one.
    fn project_for(&self, given: Option<&str>) -> Option<String> {
        given.map(str::to_owned).or_else(|| self.claimed().and_then(|c| c.project_id)).or_else(|| self.project.clone())
    }

    /// Sends a request; a non-2xx answer is an [`ApiError`].
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Answer, ApiError> {
        let answer = self.api.send(method, path, body.as_ref()).await.map_err(ApiError::Unreachable)?;
        match answer.status {
            200..=299 => Ok(answer),
            status => Err(ApiError::Status { status, body: answer.body }),
        }
    }

    /// The `data` of a 2xx answer.
    pub(crate) async fn data(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, ApiError> {
        let answer = self.call(method, path, body).await?;
        Ok(match answer.body {
            Value::Object(mut o) if o.contains_key("data") => o.remove("data").unwrap_or(Value::Null),
            other => other,
        })
    }
}

/// Why a call to the API failed.
#[derive(Debug)]
pub enum ApiError {
    Unreachable(String),
    Status {
        status: u16,
        body: Value,
    },
    /// The arguments were wrong before any request was sent.
    Arguments(String),
}

impl ApiError {
    /// The tool error an agent reads: what went wrong and what to do.
    pub(crate) fn into_output(self) -> Output {
        match self {
            ApiError::Unreachable(e) => Output::error(format!("Cannot reach the Loop server: {e}")),
            ApiError::Arguments(e) => Output::error(format!("Invalid arguments: {e}")),
            ApiError::Status { status, body } => {
                let message = body["error"].as_str().or(body["message"].as_str()).unwrap_or("no message").to_owned();
                // The message names the field already when the server says which one.
                let field = body["details"]["field"]
                    .as_str()
                    .filter(|f| !message.starts_with(f))
                    .map(|f| format!(" (field: {f})"))
                    .unwrap_or_default();
                Output::error(match status {
                    404 => format!("Not found: {message}. Use loop_list_issues to find valid IDs."),
                    401 => "Authentication failed. Check your LOOP_API_KEY.".to_owned(),
                    _ => format!("API error ({status}): {message}{field}"),
                })
            }
        }
    }
}

type Args = Map<String, Value>;
type Run = for<'a> fn(&'a Context, Args) -> futures_util::future::BoxFuture<'a, Result<Output, ApiError>>;

/// Every tool, with the function that runs it.
fn catalogue() -> Vec<(Tool, Run)> {
    let mut all = work::tools();
    all.extend(issues::tools());
    all.extend(signals::tools());
    all
}

/// The tools of `set`, in a stable order.
pub fn list(set: ToolSet) -> Vec<Tool> {
    catalogue().into_iter().map(|(tool, _)| tool).filter(|t| t.set <= set).collect()
}

/// Runs the tool `name` of `set` with `args`.
pub async fn call(ctx: &Context, set: ToolSet, name: &str, args: Args) -> Output {
    let Some((_, run)) = catalogue().into_iter().find(|(t, _)| t.name == name && t.set <= set) else {
        return Output::error(format!("Unknown tool {name:?}: list the tools to see what this server offers."));
    };
    run(ctx, args).await.unwrap_or_else(ApiError::into_output)
}

/// An object schema: `properties` and the names `required`.
fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}

/// The issue statuses and types, as the reference's enums list them.
const STATUSES: [&str; 6] = ["triage", "backlog", "todo", "in_progress", "done", "canceled"];
const TYPES: [&str; 5] = ["signal", "hypothesis", "plan", "task", "monitor"];

/// A required string argument.
fn text<'a>(args: &'a Args, name: &str) -> Result<&'a str, ApiError> {
    match args.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(ApiError::Arguments(format!("{name} must not be empty"))),
        Some(_) => Err(ApiError::Arguments(format!("{name} must be a string"))),
        None => Err(ApiError::Arguments(format!("{name} is required"))),
    }
}

/// An optional string argument.
fn opt_text<'a>(args: &'a Args, name: &str) -> Result<Option<&'a str>, ApiError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => text(args, name).map(Some),
    }
}

/// `{id, number, title, type, status, priority}`: how the reference's tools show an issue.
fn summary(issue: &Value) -> Value {
    json!({
        "id": issue["id"], "number": issue["number"], "title": issue["title"],
        "type": issue["type"], "status": issue["status"], "priority": issue["priority"],
    })
}

/// `s` as one path segment.
pub(crate) fn segment(s: &str) -> String {
    loop_client::path_segment(s)
}

#[cfg(test)]
mod tests;
