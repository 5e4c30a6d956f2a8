//! Errors that say what to do: the URL tried and how to start a server, how to set the key,
//! which issue was not found, which flag holds the invalid value.

use loop_client::ClientError;

use super::config::{Resolved, Source};

/// Exit 2: the command line itself is wrong (clap's own usage errors also exit 2).
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug)]
pub enum CliError {
    /// A mistake in the command line that clap could not catch.
    Usage(String),
    /// Anything else that went wrong, already phrased for a person.
    Failed(String),
    /// The server could not be reached or refused the request.
    Api(Box<ApiFailure>),
}

#[derive(Debug)]
pub struct ApiFailure {
    pub err: ClientError,
    /// `GET /api/issues/42`, for messages about routes the server lacks.
    pub request: String,
    /// What was asked for, e.g. `issue #42`: a 404 becomes "issue #42 not found".
    pub subject: Option<String>,
}

impl CliError {
    pub fn usage(m: impl Into<String>) -> Self {
        CliError::Usage(m.into())
    }

    pub fn failed(m: impl Into<String>) -> Self {
        CliError::Failed(m.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            _ => 1,
        }
    }

    /// Names what was asked for, so a 404 says "issue #42 not found".
    pub fn about(mut self, subject: impl Into<String>) -> Self {
        if let CliError::Api(f) = &mut self {
            f.subject.get_or_insert_with(|| subject.into());
        }
        self
    }

    /// The message printed after `error: `; hints follow on indented lines.
    /// The message for the user; `spellings` are the running command's `--flags` and
    /// positional `NAMES`, which hints name.
    pub fn render(&self, conn: &Resolved, spellings: &[String]) -> String {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => m.clone(),
            CliError::Api(f) => render_api(f, conn, spellings),
        }
    }
}

pub trait About<T> {
    /// See [`CliError::about`].
    fn about(self, subject: impl Into<String>) -> Result<T, CliError>;
}

impl<T> About<T> for Result<T, CliError> {
    fn about(self, subject: impl Into<String>) -> Result<T, CliError> {
        self.map_err(|e| e.about(subject))
    }
}

const START_HINT: &str = "Start a server with:        loop serve\n  \
     Or point the CLI at yours: loop config set url <url>   (or LOOP_API_URL=<url>, --api-url <url>)";

const TOKEN_HINT: &str = "Set the key `loop serve` printed on its first start:\n    \
     loop config set token <key>     (or LOOP_API_KEY=<key>, --token <key>)";

fn render_api(f: &ApiFailure, conn: &Resolved, spellings: &[String]) -> String {
    match &f.err {
        ClientError::Unreachable { source, .. } => {
            let cause = if source.is_timeout() { "the request timed out".to_owned() } else { root_cause(source) };
            format!("cannot reach the Loop server at {} ({cause}).\n  {START_HINT}", conn.url)
        }
        ClientError::Decode { message, .. } => format!(
            "the server at {} answered {} with something that is not Loop's JSON ({message}).\n  \
             Is {} a Loop server? Check with: loop config list",
            conn.url, f.request, conn.url
        ),
        ClientError::Api { status: 401, message, .. } => {
            if conn.token_source == Source::Unset {
                format!("no API key is configured, and the server at {} requires one.\n  {TOKEN_HINT}", conn.url)
            } else {
                format!(
                    "the server at {} rejected the API key from {} ({message}).\n  {TOKEN_HINT}",
                    conn.url, conn.token_source
                )
            }
        }
        ClientError::Api { status: 403, message, .. } => {
            format!("not allowed: {message}.\n  This needs the master API key, not an agent's token.")
        }
        err @ ClientError::Api { status: 404, message, .. } => {
            if err.is_unknown_route() {
                format!(
                    "the server at {} does not know {} (HTTP 404): it may be an older Loop, or not a Loop server.",
                    conn.url, f.request
                )
            } else {
                match &f.subject {
                    Some(s) => format!("{s} not found"),
                    None => message.clone(),
                }
            }
        }
        err @ ClientError::Api { status: 400 | 422, message, .. } => {
            let hint = err
                .field()
                .and_then(|f| flag_for(f, spellings))
                .map(|flag| format!(" (see {flag})"))
                .unwrap_or_default();
            format!("{message}{hint}")
        }
        ClientError::Api { status: 409, code, message, .. } => match code.as_str() {
            "not_eligible" => match &f.subject {
                Some(s) => format!(
                    "{message}.\n  See why with: loop explain {}",
                    s.trim_start_matches("issue ").trim_start_matches('#')
                ),
                None => message.clone(),
            },
            _ => message.clone(),
        },
        ClientError::Api { status, message, .. } if *status >= 500 => format!(
            "the server failed to handle {} (HTTP {status}: {message}).\n  Its log has the details; try again.",
            f.request
        ),
        ClientError::Api { status, message, .. } => format!("{message} (HTTP {status})"),
    }
}

/// The innermost cause, e.g. "Connection refused (os error 111)".
fn root_cause(e: &reqwest::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let s = cur.to_string();
    if s.is_empty() { e.to_string() } else { s }
}

/// The CLI flag that sets an API field, for validation messages.
/// How the running command spells the argument that sends API field `field`: the first of
/// the usual spellings that `spellings` (the command's `--flags` and positional `NAMES`) has.
fn flag_for(field: &str, spellings: &[String]) -> Option<String> {
    let top = field.split(['.', '[']).next().unwrap_or(field);
    let candidates: &[&str] = match top {
        "title" => &["--title", "TITLE", "TEXT"],
        "description" => &["--description"],
        "type" => &["--type"],
        "status" => &["--status"],
        "priority" => &["--priority"],
        "parentId" => &["--parent", "--reply-to"],
        "projectId" => &["--project"],
        "labelIds" | "labelId" => &["--label"],
        "signalSource" => &["--signal-source"],
        "signalPayload" => &["--signal-payload", "--payload"],
        "hypothesis" => &["--hypothesis"],
        "agentSummary" => &["--summary"],
        "body" => &["BODY"],
        "relatedIssueId" => &["BLOCKED"],
        "name" => &["NAME", "--name"],
        "color" => &["--color"],
        "goalId" => &["--goal"],
        "metric" => &["--metric"],
        "targetValue" => &["--target"],
        "currentValue" => &["--current"],
        "unit" => &["--unit"],
        "health" => &["--health"],
        "content" => &["--file"],
        "changelog" => &["--changelog"],
        "source" => &["--source"],
        "severity" => &["--severity"],
        "limit" => &["--limit"],
        "offset" => &["--offset"],
        "slug" => &["SLUG"],
        "conditions" => &["--conditions"],
        "specificity" => &["--specificity"],
        _ => &[],
    };
    candidates.iter().find(|c| spellings.iter().any(|s| s == *c)).map(|c| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_map_to_the_commands_own_flags() {
        let update: Vec<String> = ["--title", "--hypothesis", "--label", "--parent"].map(String::from).to_vec();
        assert_eq!(flag_for("title", &update).as_deref(), Some("--title"));
        assert_eq!(flag_for("hypothesis.confidence", &update).as_deref(), Some("--hypothesis"));
        assert_eq!(flag_for("labelIds[0]", &update).as_deref(), Some("--label"));
        assert_eq!(flag_for("unknown", &update), None);
        let signal: Vec<String> = ["TEXT", "--source"].map(String::from).to_vec();
        assert_eq!(flag_for("title", &signal).as_deref(), Some("TEXT"));
        let comment: Vec<String> = ["ISSUE", "BODY", "--reply-to"].map(String::from).to_vec();
        assert_eq!(flag_for("parentId", &comment).as_deref(), Some("--reply-to"));
        assert_eq!(flag_for("color", &comment), None, "no hint rather than a flag the command lacks");
    }
}
