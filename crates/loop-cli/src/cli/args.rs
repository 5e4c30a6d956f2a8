//! Argument types shared by the commands: issue references, statuses, types, priorities, and
//! text read from a file or stdin.

use std::io::Read;
use std::str::FromStr;

use clap::ValueEnum;

use super::error::CliError;

/// An issue as a person types it (`42`, `#42`) or a script passes it (its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRef(String);

impl FromStr for IssueRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let key = s.trim().trim_start_matches('#').trim();
        if key.is_empty() {
            return Err("give an issue number (42 or #42) or id".into());
        }
        Ok(IssueRef(key.to_owned()))
    }
}

impl IssueRef {
    pub fn key(&self) -> &str {
        &self.0
    }

    pub fn is_number(&self) -> bool {
        self.0.bytes().all(|b| b.is_ascii_digit())
    }

    /// `#42` or the id.
    pub fn short(&self) -> String {
        if self.is_number() { format!("#{}", self.0) } else { self.0.clone() }
    }

    /// `issue #42`, as in "issue #42 not found".
    pub fn label(&self) -> String {
        format!("issue {}", self.short())
    }
}

impl std::fmt::Display for IssueRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.short())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// New, not yet accepted (signals land here).
    Triage,
    /// Accepted, not yet ready.
    Backlog,
    /// Ready: dispatch hands these out.
    Todo,
    /// Being worked on.
    #[value(name = "in_progress", alias = "in-progress")]
    InProgress,
    Done,
    #[value(alias = "cancelled")]
    Canceled,
    /// Every status but done and canceled.
    Open,
    /// Every status.
    All,
}

impl StatusArg {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusArg::Triage => "triage",
            StatusArg::Backlog => "backlog",
            StatusArg::Todo => "todo",
            StatusArg::InProgress => "in_progress",
            StatusArg::Done => "done",
            StatusArg::Canceled => "canceled",
            StatusArg::Open => "open",
            StatusArg::All => "all",
        }
    }
}

/// An issue status that can be set (not `open`/`all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SetStatus {
    Triage,
    Backlog,
    Todo,
    #[value(name = "in_progress", alias = "in-progress")]
    InProgress,
    Done,
    #[value(alias = "cancelled")]
    Canceled,
}

impl SetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SetStatus::Triage => "triage",
            SetStatus::Backlog => "backlog",
            SetStatus::Todo => "todo",
            SetStatus::InProgress => "in_progress",
            SetStatus::Done => "done",
            SetStatus::Canceled => "canceled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TypeArg {
    Signal,
    Hypothesis,
    Plan,
    Task,
    Monitor,
}

impl TypeArg {
    pub fn as_str(self) -> &'static str {
        match self {
            TypeArg::Signal => "signal",
            TypeArg::Hypothesis => "hypothesis",
            TypeArg::Plan => "plan",
            TypeArg::Task => "task",
            TypeArg::Monitor => "monitor",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

pub const PRIORITY_HELP: &str = "urgent, high, medium, low, none (or 1, 2, 3, 4, 0)";

/// `urgent|high|medium|low|none` or `0`–`4` (0 none, 1 urgent … 4 low).
pub fn parse_priority(s: &str) -> Result<i64, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "none" | "0" => Ok(0),
        "urgent" | "1" => Ok(1),
        "high" | "2" => Ok(2),
        "medium" | "3" => Ok(3),
        "low" | "4" => Ok(4),
        other => Err(format!("{other:?} is not a priority: use {PRIORITY_HELP}")),
    }
}

/// A JSON object given on the command line.
pub fn parse_object(s: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err("must be a JSON object, like '{\"key\": \"value\"}'".into()),
        Err(e) => Err(format!("not valid JSON: {e}")),
    }
}

/// The contents of `path`, or of stdin for `-`.
pub fn read_text(path: &str, what: &str) -> Result<String, CliError> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::failed(format!("cannot read the {what} from stdin: {e}")))?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).map_err(|e| CliError::failed(format!("cannot read the {what} from {path}: {e}")))
    }
}

/// Who a comment written from this CLI is by: the login name, else `loop-cli`.
pub fn author_name() -> String {
    ["LOOP_AUTHOR", "USER", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "loop-cli".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_refs_take_numbers_and_ids() {
        let r: IssueRef = "#42".parse().unwrap();
        assert_eq!(r.key(), "42");
        assert_eq!(r.label(), "issue #42");
        let r: IssueRef = "01a1ffd7-af82".parse().unwrap();
        assert!(!r.is_number());
        assert_eq!(r.label(), "issue 01a1ffd7-af82");
        assert!("#".parse::<IssueRef>().is_err());
    }

    #[test]
    fn priorities_take_names_and_numbers() {
        assert_eq!(parse_priority("High"), Ok(2));
        assert_eq!(parse_priority("0"), Ok(0));
        assert!(parse_priority("5").is_err());
    }
}
