//! Issues: the atomic unit of work, and the rules about their hierarchy and lifecycle.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::NewEvent;
use crate::input::{double_option, nullable_object, object_or_null, present, reference, reference_patch};
use crate::label::LabelRef;
use crate::relation::Relation;
use crate::text::{Body, Short, Title};
use crate::{Error, Result, Timestamp};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($s => Ok($name::$variant),)+
                    _ => Err(format!(
                        "unknown value {s:?}, expected one of: {}",
                        [$($s),+].join(", ")
                    )),
                }
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// What kind of work an issue is; the loop runs signal → hypothesis → plan/task → monitor.
    IssueType { Signal = "signal", Hypothesis = "hypothesis", Plan = "plan", Task = "task", Monitor = "monitor" }
);

string_enum!(
    /// Where an issue is in its lifecycle. `done` and `canceled` are terminal.
    IssueStatus {
        Triage = "triage",
        Backlog = "backlog",
        Todo = "todo",
        InProgress = "in_progress",
        Done = "done",
        Canceled = "canceled",
    }
);

impl IssueStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, IssueStatus::Done | IssueStatus::Canceled)
    }

    /// The statuses `status=open` stands for: everything not terminal.
    pub fn open() -> Vec<IssueStatus> {
        Self::ALL.iter().copied().filter(|s| !s.is_terminal()).collect()
    }
}

/// 0 none, 1 urgent, 2 high, 3 medium, 4 low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "crate::input::Integer", into = "i64")]
pub struct Priority(u8);
bounded_schema!(Priority, integer, 0, 4, "0 none, 1 urgent, 2 high, 3 medium, 4 low.");

impl Priority {
    pub const NONE: Priority = Priority(0);

    pub fn new(n: i64) -> std::result::Result<Self, String> {
        if (0..=4).contains(&n) {
            Ok(Self(n as u8))
        } else {
            Err(format!("must be an integer from 0 to 4 (0 none, 1 urgent, 2 high, 3 medium, 4 low), got {n}"))
        }
    }

    pub fn value(self) -> u8 {
        self.0
    }

    pub fn label(self) -> &'static str {
        ["none", "urgent", "high", "medium", "low"][self.0 as usize]
    }
}

impl TryFrom<i64> for Priority {
    type Error = String;
    fn try_from(n: i64) -> std::result::Result<Self, String> {
        Priority::new(n)
    }
}

crate::input::from_integer!(Priority);

impl From<Priority> for i64 {
    fn from(p: Priority) -> i64 {
        p.0 as i64
    }
}

pub use crate::hypothesis::{Confidence, Hypothesis};

/// A commit an agent reports. Unknown extra keys are kept as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Commit {
    #[cfg_attr(feature = "openapi", schema(value_type = Short))]
    pub sha: Short,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Map<String, Value>,
}

/// A pull request an agent reports. Unknown extra keys (`state`, `merged`, `mergedAt`…) are
/// kept as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PullRequest {
    #[serde(deserialize_with = "crate::input::whole")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub number: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Map<String, Value>,
}

/// An issue as stored and as sent over the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    pub id: String,
    pub number: i64,
    pub title: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub issue_type: IssueType,
    pub status: IssueStatus,
    pub priority: Priority,
    pub parent_id: Option<String>,
    pub project_id: Option<String>,
    pub signal_source: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub signal_payload: Option<Value>,
    pub hypothesis: Option<Hypothesis>,
    pub agent_session_id: Option<String>,
    pub agent_summary: Option<String>,
    pub commits: Option<Vec<Commit>>,
    pub pull_requests: Option<Vec<PullRequest>>,
    /// Not dispatched before this time (a monitor waiting for its hypothesis's observation
    /// window); null when it does not wait, or no longer.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub not_before: Option<Timestamp>,
    /// An agent asked a question a person has not answered yet: not dispatched until then
    /// (`GET /api/questions`).
    #[serde(default)]
    pub awaiting_input: bool,
    /// When its pull request was approved (the merge queue lands approved work).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub approved_at: Option<Timestamp>,
    /// When its pull request was merged.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub merged_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub completed_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
    /// Always null: deleted issues are never returned.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub deleted_at: Option<Timestamp>,
}

/// An issue with its neighbourhood, as `GET /api/issues/:id` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct IssueDetail {
    #[serde(flatten)]
    pub issue: Issue,
    pub parent: Option<Issue>,
    pub children: Vec<Issue>,
    pub labels: Vec<LabelRef>,
    /// Every relation this issue takes part in, outgoing (`issueId` = this issue) and incoming.
    pub relations: Vec<Relation>,
    /// For a signal issue: how many deliveries it stands for (repeats are folded into it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrences: Option<i64>,
    /// For a signal issue: when the last of those deliveries came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_seen_at: Option<Timestamp>,
}

impl IssueDetail {
    /// Tells every relation from this issue's side (see [`Relation::seen_from`]), as clients
    /// that print `{type} {relatedIssueId}` read them.
    pub fn relations_seen_from_itself(mut self) -> Self {
        let me = self.issue.id.clone();
        self.relations = self.relations.into_iter().map(|r| r.seen_from(&me)).collect();
        self
    }
}

/// The body of `POST /api/issues`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewIssue {
    #[cfg_attr(feature = "openapi", schema(value_type = Title))]
    pub title: Title,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Body>))]
    pub description: Option<Body>,
    #[serde(rename = "type")]
    pub issue_type: IssueType,
    #[serde(default = "default_status")]
    pub status: IssueStatus,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default, deserialize_with = "reference")]
    pub parent_id: Option<String>,
    #[serde(default, deserialize_with = "reference")]
    pub project_id: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub signal_source: Option<Short>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub signal_payload: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "object_or_null")]
    pub hypothesis: Option<Hypothesis>,
    #[serde(default)]
    pub label_ids: Vec<String>,
    /// Not dispatched before this time.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub not_before: Option<Timestamp>,
}

fn default_status() -> IssueStatus {
    IssueStatus::Triage
}

impl NewIssue {
    /// A child created without a project belongs to its parent's.
    pub fn inherit_project(&mut self, parent: &Issue) {
        if self.project_id.is_none() {
            self.project_id = parent.project_id.clone();
        }
    }
}

/// The body of `PATCH /api/issues/:id`. Absent fields are left alone; `null` clears a
/// nullable field. `labelIds` replaces the issue's label set.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssuePatch {
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false, value_type = Option<Title>))]
    pub title: Option<Title>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Body>))]
    pub description: Option<Option<Body>>,
    #[serde(default, rename = "type", deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub issue_type: Option<IssueType>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub status: Option<IssueStatus>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub priority: Option<Priority>,
    #[serde(default, deserialize_with = "reference_patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub parent_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "reference_patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub project_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub signal_source: Option<Option<Short>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub signal_payload: Option<Option<Map<String, Value>>>,
    #[serde(default, deserialize_with = "nullable_object")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Hypothesis>))]
    pub hypothesis: Option<Option<Hypothesis>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub agent_session_id: Option<Option<Short>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Body>))]
    pub agent_summary: Option<Option<Body>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Commit>>))]
    pub commits: Option<Option<Vec<Commit>>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<PullRequest>>))]
    pub pull_requests: Option<Option<Vec<PullRequest>>>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub label_ids: Option<Vec<String>>,
    /// Not dispatched before this time; null dispatches it as soon as it is ready.
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub not_before: Option<Option<Timestamp>>,
}

impl IssuePatch {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.issue_type.is_none()
            && self.status.is_none()
            && self.priority.is_none()
            && self.parent_id.is_none()
            && self.project_id.is_none()
            && self.signal_source.is_none()
            && self.signal_payload.is_none()
            && self.hypothesis.is_none()
            && self.agent_session_id.is_none()
            && self.agent_summary.is_none()
            && self.commits.is_none()
            && self.pull_requests.is_none()
            && self.label_ids.is_none()
            && self.not_before.is_none()
    }
}

/// Filters of `GET /api/issues`. Empty vectors mean "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IssueFilter {
    pub statuses: Vec<IssueStatus>,
    pub types: Vec<IssueType>,
    pub project_id: Option<String>,
    pub label_id: Option<String>,
    pub priority: Option<Priority>,
    pub parent_id: Option<String>,
    /// Case-insensitive words that must all appear in the title (or `#n` for one number).
    pub search: Option<String>,
    /// Only issues that wait for a not-before time (snoozed, or monitors before their window),
    /// or only those that do not.
    pub waiting: Option<bool>,
    pub sort: IssueSort,
}

/// The order of an issue list. The default is the API's: oldest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IssueSort {
    pub key: SortKey,
    pub descending: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    Created,
    Updated,
    Number,
    /// Urgent first, "no priority" last.
    Priority,
    Title,
}

impl SortKey {
    pub const ALL: [SortKey; 5] =
        [SortKey::Number, SortKey::Created, SortKey::Updated, SortKey::Priority, SortKey::Title];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Created => "created",
            SortKey::Updated => "updated",
            SortKey::Number => "number",
            SortKey::Priority => "priority",
            SortKey::Title => "title",
        }
    }
}

impl IssueSort {
    /// Parses `key` or `-key` (descending), e.g. `-updated`.
    pub fn parse(raw: &str) -> Result<Self> {
        let (descending, name) = match raw.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let key = SortKey::ALL.into_iter().find(|k| k.as_str() == name).ok_or_else(|| {
            Error::invalid(
                "sort",
                "unknown_value",
                format!("must be one of number, created, updated, priority, title, optionally prefixed with - for descending; got {}", crate::text::echo(raw)),
            )
        })?;
        Ok(Self { key, descending })
    }

    /// The form [`IssueSort::parse`] reads.
    pub fn to_param(self) -> String {
        format!("{}{}", if self.descending { "-" } else { "" }, self.key.as_str())
    }
}

impl IssueFilter {
    /// Parses a comma-separated `status` list; `open` stands for every non-terminal status.
    pub fn parse_statuses(raw: &str) -> Result<Vec<IssueStatus>> {
        let mut out = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "open" {
                out.extend(IssueStatus::open());
            } else {
                out.push(
                    part.parse()
                        .map_err(|m: String| Error::invalid("status", "unknown_value", format!("{m}, or open")))?,
                );
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Search text (`?q=`): each word is a condition, so the words are bounded (SQLite refuses
    /// very long patterns and very deep expressions). Blank means no search.
    pub fn parse_search(raw: &str) -> Result<Option<String>> {
        const MAX_CHARS: usize = 200;
        const MAX_WORDS: usize = 20;
        let q = raw.trim();
        if q.chars().count() > MAX_CHARS {
            return Err(Error::invalid("q", "too_long", format!("at most {MAX_CHARS} characters")));
        }
        if q.split_whitespace().count() > MAX_WORDS {
            return Err(Error::invalid("q", "too_many_words", format!("at most {MAX_WORDS} words")));
        }
        Ok((!q.is_empty()).then(|| q.to_owned()))
    }

    pub fn parse_types(raw: &str) -> Result<Vec<IssueType>> {
        let mut out = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            out.push(part.parse().map_err(|m| Error::invalid("type", "unknown_value", m))?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// Counts of live issues per status, as project details show them (only non-zero keys).
pub type StatusCounts = BTreeMap<IssueStatus, u64>;

/// The 1-level hierarchy: an issue with a parent cannot itself be a parent.
///
/// `child` is the issue being given a parent (`None` on create); `child_has_children` says
/// whether it already has children of its own; `parent` is the looked-up parent (`None` when
/// the id matched nothing live).
pub fn check_parent(
    parent_id: &str,
    parent: Option<&Issue>,
    child: Option<&Issue>,
    child_has_children: bool,
) -> Result<()> {
    if child.is_some_and(|c| c.id == parent_id) {
        return Err(Error::invalid("parentId", "self_parent", "an issue cannot be its own parent"));
    }
    let Some(parent) = parent else {
        return Err(Error::invalid("parentId", "parent_not_found", format!("parent issue {parent_id} not found")));
    };
    if parent.parent_id.is_some() {
        return Err(Error::invalid(
            "parentId",
            "hierarchy_depth",
            format!(
                "issue #{} already has a parent; issues nest one level deep only, so make this a sibling under #{}'s parent instead",
                parent.number, parent.number
            ),
        ));
    }
    if child_has_children {
        return Err(Error::invalid(
            "parentId",
            "hierarchy_depth",
            "this issue has children of its own; issues nest one level deep only",
        ));
    }
    Ok(())
}

/// `completedAt` follows the status: set when an issue becomes done, cleared when it leaves
/// done, kept otherwise.
pub fn completed_at_after(
    old: IssueStatus,
    new: IssueStatus,
    completed_at: Option<Timestamp>,
    now: Timestamp,
) -> Option<Timestamp> {
    match (old == IssueStatus::Done, new == IssueStatus::Done) {
        (false, true) => Some(now),
        (true, false) => None,
        _ => completed_at,
    }
}

impl Issue {
    /// The row a validated [`NewIssue`] becomes. References (parent, project, labels) must
    /// have been checked by the caller.
    pub fn from_new(input: &NewIssue, id: String, number: i64, now: Timestamp) -> Issue {
        Issue {
            id,
            number,
            title: input.title.to_string(),
            description: input.description.as_ref().map(|d| d.to_string()),
            issue_type: input.issue_type,
            status: input.status,
            priority: input.priority,
            parent_id: input.parent_id.clone(),
            project_id: input.project_id.clone(),
            signal_source: input.signal_source.as_ref().map(|s| s.to_string()),
            signal_payload: input.signal_payload.clone().map(Value::Object),
            hypothesis: input.hypothesis.clone().map(|h| h.with_lifecycle_of(None)),
            agent_session_id: None,
            agent_summary: None,
            commits: None,
            pull_requests: None,
            not_before: input.not_before.filter(|t| *t > now),
            awaiting_input: false,
            approved_at: None,
            merged_at: None,
            completed_at: (input.status == IssueStatus::Done).then_some(now),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        }
    }

    /// Applies a patch, returning the new row and one history event per changed field.
    /// Label changes are the store's business (they need label names).
    pub fn apply_patch(&self, patch: &IssuePatch, now: Timestamp) -> (Issue, Vec<NewEvent>) {
        let mut next = self.clone();
        let mut events = Vec::new();
        let id = self.id.as_str();

        macro_rules! set {
            ($field:ident, $name:literal, $value:expr) => {{
                let value = $value;
                if next.$field != value {
                    events.push(NewEvent::field_changed(id, $name, json(&next.$field), json(&value)));
                    next.$field = value;
                }
            }};
        }

        if let Some(t) = &patch.title {
            set!(title, "title", t.to_string());
        }
        if let Some(d) = &patch.description {
            set!(description, "description", d.as_ref().map(|d| d.to_string()));
        }
        if let Some(t) = patch.issue_type {
            set!(issue_type, "type", t);
        }
        if let Some(p) = patch.priority {
            set!(priority, "priority", p);
        }
        if let Some(p) = &patch.parent_id {
            set!(parent_id, "parentId", p.clone());
        }
        if let Some(p) = &patch.project_id {
            set!(project_id, "projectId", p.clone());
        }
        if let Some(s) = &patch.signal_source {
            set!(signal_source, "signalSource", s.as_ref().map(|s| s.to_string()));
        }
        if let Some(p) = &patch.signal_payload {
            set!(signal_payload, "signalPayload", p.clone().map(Value::Object));
        }
        if let Some(h) = &patch.hypothesis {
            set!(hypothesis, "hypothesis", h.clone().map(|h| h.with_lifecycle_of(self.hypothesis.as_ref())));
        }
        if let Some(s) = &patch.agent_session_id {
            set!(agent_session_id, "agentSessionId", s.as_ref().map(|s| s.to_string()));
        }
        if let Some(s) = &patch.agent_summary {
            set!(agent_summary, "agentSummary", s.as_ref().map(|s| s.to_string()));
        }
        if let Some(c) = &patch.commits {
            set!(commits, "commits", c.clone());
        }
        if let Some(p) = &patch.pull_requests {
            set!(pull_requests, "pullRequests", p.clone());
        }
        if let Some(t) = patch.not_before {
            set!(not_before, "notBefore", t.filter(|t| *t > now));
        }
        if let Some(status) = patch.status.filter(|s| *s != self.status) {
            events.push(NewEvent::status_changed(id, self.status.as_str(), status.as_str()));
            next.completed_at = completed_at_after(self.status, status, self.completed_at, now);
            next.status = status;
        }
        next.updated_at = now;
        (next, events)
    }
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_means_every_non_terminal_status() {
        let s = IssueFilter::parse_statuses("open").unwrap();
        assert_eq!(s, vec![IssueStatus::Triage, IssueStatus::Backlog, IssueStatus::Todo, IssueStatus::InProgress]);
        let err = IssueFilter::parse_statuses("todo,bogus").unwrap_err();
        assert!(err.to_string().starts_with("status: unknown value \"bogus\""), "{err}");
    }

    #[test]
    fn completed_at_follows_done() {
        let t0 = Timestamp::from_millis(1);
        let t1 = Timestamp::from_millis(2);
        use IssueStatus::*;
        assert_eq!(completed_at_after(Todo, Done, None, t1), Some(t1));
        assert_eq!(completed_at_after(Done, Todo, Some(t0), t1), None);
        assert_eq!(completed_at_after(Done, Done, Some(t0), t1), Some(t0));
        assert_eq!(completed_at_after(Todo, InProgress, None, t1), None);
    }

    #[test]
    fn priority_range_is_checked() {
        assert!(serde_json::from_str::<Priority>("4").is_ok());
        let e = serde_json::from_str::<Priority>("5").unwrap_err().to_string();
        assert!(e.contains("from 0 to 4"), "{e}");
    }
}
