//! Row → domain mapping. Both databases lay out their tables alike (instants as integer
//! milliseconds, JSON as text), so each entity has one mapping, whatever the driver.

use loop_core::comment::Comment;
use loop_core::event::IssueEvent;
use loop_core::goal::Goal;
use loop_core::issue::Issue;
use loop_core::label::Label;
use loop_core::project::Project;
use loop_core::relation::Relation;
use loop_core::template::{PromptReview, PromptTemplate, PromptVersion};
use loop_core::{Error, Result, Timestamp};
use serde::de::DeserializeOwned;

/// The columns an issue is read from, in the order the stores select them.
pub const ISSUE_COLUMNS: &str = "id, number, title, description, type, status, priority, parent_id, project_id, \
     signal_source, signal_payload, hypothesis, agent_session_id, agent_summary, commits, pull_requests, \
     not_before, completed_at, created_at, updated_at, deleted_at, open_questions, approved_at, merged_at";

/// The columns of the other rows a prompt is hydrated from (see `hydration.rs`).
pub const PROJECT_COLUMNS: &str =
    "id, name, description, status, health, goal_id, wait_for_merge, created_at, updated_at, deleted_at";
pub const GOAL_COLUMNS: &str = "id, title, description, metric, target_value, current_value, baseline_value, unit, \
     status, project_id, created_at, updated_at, deleted_at";
pub const LABEL_COLUMNS: &str = "id, name, color";
pub const SESSION_COLUMNS: &str = "id, issue_id, agent, template_version_id, claimed_at, lease_expires_at, ended_at, \
     outcome, summary, tokens, cost_usd, duration_ms";

/// `json_object('a', x.a, 'b', x.b, …)`: the row `alias` as a JSON object of `columns`, which
/// the mappers below read as they read a table row.
pub fn json_row(alias: &str, columns: &str) -> String {
    let pairs: Vec<String> = columns.split(',').map(str::trim).map(|c| format!("'{c}', {alias}.{c}")).collect();
    format!("json_object({})", pairs.join(", "))
}

/// One row if issue `?2` already blocks `?1`, directly or through other issues: a new edge
/// `?1` blocks `?2` would close a loop in which every issue waits for ever.
pub const BLOCKS_ALREADY: &str = "WITH RECURSIVE waiting(id) AS (SELECT CAST(?2 AS TEXT) UNION \
     SELECT r.edge_to FROM issue_relations r JOIN waiting w ON r.edge_from = w.id WHERE r.edge_kind = 'block') \
     SELECT 1 FROM waiting WHERE id = ?1 LIMIT 1";

/// A result row: the three column types Loop's tables use, each possibly NULL.
pub trait Cols {
    fn text(&self, name: &str) -> Result<Option<String>>;
    fn int(&self, name: &str) -> Result<Option<i64>>;
    fn real(&self, name: &str) -> Result<Option<f64>>;
}

/// A row read back from JSON (see [`json_row`]).
impl Cols for serde_json::Map<String, serde_json::Value> {
    fn text(&self, name: &str) -> Result<Option<String>> {
        match self.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(Error::Internal(format!("column {name}: expected text, got {other}"))),
        }
    }

    fn int(&self, name: &str) -> Result<Option<i64>> {
        match self.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| Error::Internal(format!("column {name}: expected an integer, got {v}"))),
        }
    }

    fn real(&self, name: &str) -> Result<Option<f64>> {
        match self.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| Error::Internal(format!("column {name}: expected a number, got {v}"))),
        }
    }
}

/// A Rust type a column is read as.
pub trait Col: Sized {
    fn read(row: &impl Cols, name: &str) -> Result<Self>;
}

fn not_null<T>(v: Option<T>, name: &str) -> Result<T> {
    v.ok_or_else(|| Error::Internal(format!("column {name} is null")))
}

/// `T` and `Option<T>` read through one of [`Cols`]' accessors.
macro_rules! col {
    ($t:ty, $accessor:ident) => {
        impl Col for Option<$t> {
            fn read(row: &impl Cols, name: &str) -> Result<Self> {
                row.$accessor(name)
            }
        }
        impl Col for $t {
            fn read(row: &impl Cols, name: &str) -> Result<Self> {
                not_null(row.$accessor(name)?, name)
            }
        }
    };
}
col!(String, text);
col!(i64, int);
col!(f64, real);

/// Serialises an optional value for a JSON text column.
pub fn to_json<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(|v| serde_json::to_string(v).expect("domain values serialise"))
}

pub fn get<T: Col>(row: &impl Cols, col: &str) -> Result<T> {
    T::read(row, col)
}

pub fn ts(row: &impl Cols, col: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_millis(get::<i64>(row, col)?))
}

pub fn opt_ts(row: &impl Cols, col: &str) -> Result<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, col)?.map(Timestamp::from_millis))
}

pub fn parse<T: std::str::FromStr<Err = String>>(row: &impl Cols, col: &str) -> Result<T> {
    get::<String>(row, col)?.parse().map_err(|e| Error::Internal(format!("column {col}: {e}")))
}

pub fn opt_json<T: DeserializeOwned>(row: &impl Cols, col: &str) -> Result<Option<T>> {
    match get::<Option<String>>(row, col)? {
        None => Ok(None),
        Some(s) => serde_json::from_str(&s).map(Some).map_err(|e| Error::Internal(format!("column {col}: {e}"))),
    }
}

pub fn json<T: DeserializeOwned>(row: &impl Cols, col: &str) -> Result<T> {
    opt_json(row, col)?.ok_or_else(|| Error::Internal(format!("column {col} is null")))
}

pub fn issue(row: &impl Cols) -> Result<Issue> {
    Ok(Issue {
        id: get(row, "id")?,
        number: get(row, "number")?,
        title: get(row, "title")?,
        description: get(row, "description")?,
        issue_type: parse(row, "type")?,
        status: parse(row, "status")?,
        priority: loop_core::issue::Priority::new(get(row, "priority")?).map_err(Error::Internal)?,
        parent_id: get(row, "parent_id")?,
        project_id: get(row, "project_id")?,
        signal_source: get(row, "signal_source")?,
        signal_payload: opt_json(row, "signal_payload")?,
        hypothesis: opt_json(row, "hypothesis")?,
        agent_session_id: get(row, "agent_session_id")?,
        agent_summary: get(row, "agent_summary")?,
        commits: opt_json(row, "commits")?,
        pull_requests: opt_json(row, "pull_requests")?,
        not_before: opt_ts(row, "not_before")?,
        awaiting_input: get::<i64>(row, "open_questions")? > 0,
        approved_at: opt_ts(row, "approved_at")?,
        merged_at: opt_ts(row, "merged_at")?,
        completed_at: opt_ts(row, "completed_at")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

pub fn relation(row: &impl Cols) -> Result<Relation> {
    Ok(Relation {
        id: get(row, "id")?,
        relation_type: parse(row, "type")?,
        issue_id: get(row, "issue_id")?,
        related_issue_id: get(row, "related_issue_id")?,
        until_merged: get::<i64>(row, "until_merged")? != 0,
        created_at: ts(row, "created_at")?,
    })
}

pub fn comment(row: &impl Cols) -> Result<Comment> {
    Ok(Comment {
        id: get(row, "id")?,
        body: get(row, "body")?,
        issue_id: get(row, "issue_id")?,
        author_name: get(row, "author_name")?,
        author_type: parse(row, "author_type")?,
        parent_id: get(row, "parent_id")?,
        created_at: ts(row, "created_at")?,
    })
}

pub fn event(row: &impl Cols) -> Result<IssueEvent> {
    Ok(IssueEvent {
        id: get(row, "id")?,
        issue_id: get(row, "issue_id")?,
        kind: parse(row, "kind")?,
        actor: get(row, "actor")?,
        data: json(row, "data")?,
        created_at: ts(row, "created_at")?,
    })
}

pub fn project(row: &impl Cols) -> Result<Project> {
    Ok(Project {
        id: get(row, "id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        status: parse(row, "status")?,
        health: parse(row, "health")?,
        goal_id: get(row, "goal_id")?,
        wait_for_merge: get::<i64>(row, "wait_for_merge")? != 0,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

pub fn goal(row: &impl Cols) -> Result<Goal> {
    Ok(Goal {
        id: get(row, "id")?,
        title: get(row, "title")?,
        description: get(row, "description")?,
        metric: get(row, "metric")?,
        target_value: get(row, "target_value")?,
        current_value: get(row, "current_value")?,
        baseline_value: get(row, "baseline_value")?,
        unit: get(row, "unit")?,
        status: parse(row, "status")?,
        project_id: get(row, "project_id")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

pub fn label(row: &impl Cols) -> Result<Label> {
    Ok(Label {
        id: get(row, "id")?,
        name: get(row, "name")?,
        color: get(row, "color")?,
        created_at: ts(row, "created_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

pub fn template(row: &impl Cols) -> Result<PromptTemplate> {
    Ok(PromptTemplate {
        id: get(row, "id")?,
        slug: get(row, "slug")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        conditions: json(row, "conditions")?,
        specificity: get::<i64>(row, "specificity")?.try_into().map_err(Error::Internal)?,
        project_id: get(row, "project_id")?,
        active_version_id: get(row, "active_version_id")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

pub fn version(row: &impl Cols) -> Result<PromptVersion> {
    Ok(PromptVersion {
        id: get(row, "id")?,
        template_id: get(row, "template_id")?,
        version: get(row, "version")?,
        content: get(row, "content")?,
        changelog: get(row, "changelog")?,
        author_type: parse(row, "author_type")?,
        author_name: get(row, "author_name")?,
        status: parse(row, "status")?,
        usage_count: get(row, "usage_count")?,
        completion_rate: get(row, "completion_rate")?,
        avg_duration_ms: get(row, "avg_duration_ms")?,
        review_score: get(row, "review_score")?,
        created_at: ts(row, "created_at")?,
        activated_at: opt_ts(row, "activated_at")?,
    })
}

pub fn review(row: &impl Cols) -> Result<PromptReview> {
    let score = |col| get::<i64>(row, col)?.try_into().map_err(Error::Internal);
    Ok(PromptReview {
        id: get(row, "id")?,
        version_id: get(row, "version_id")?,
        issue_id: get(row, "issue_id")?,
        clarity: score("clarity")?,
        completeness: score("completeness")?,
        relevance: score("relevance")?,
        feedback: get(row, "feedback")?,
        author_type: parse(row, "author_type")?,
        author_name: get(row, "author_name")?,
        session_id: get(row, "session_id")?,
        created_at: ts(row, "created_at")?,
    })
}

pub fn session(row: &impl Cols) -> Result<loop_core::session::AgentSession> {
    Ok(loop_core::session::AgentSession {
        id: get(row, "id")?,
        issue_id: get(row, "issue_id")?,
        agent: get(row, "agent")?,
        template_version_id: get(row, "template_version_id")?,
        claimed_at: ts(row, "claimed_at")?,
        lease_expires_at: ts(row, "lease_expires_at")?,
        ended_at: opt_ts(row, "ended_at")?,
        outcome: get::<Option<String>>(row, "outcome")?
            .map(|o| o.parse())
            .transpose()
            .map_err(|e: String| Error::Internal(format!("column outcome: {e}")))?,
        summary: get(row, "summary")?,
        tokens: get(row, "tokens")?,
        cost_usd: get(row, "cost_usd")?,
        duration_ms: get(row, "duration_ms")?,
    })
}

pub fn label_ref(row: &impl Cols) -> Result<loop_core::label::LabelRef> {
    Ok(loop_core::label::LabelRef { id: get(row, "id")?, name: get(row, "name")?, color: get(row, "color")? })
}

pub fn signal(row: &impl Cols) -> Result<loop_core::signal::Signal> {
    Ok(loop_core::signal::Signal {
        id: get(row, "id")?,
        source: get(row, "source")?,
        source_id: get(row, "source_id")?,
        signal_type: get(row, "type")?,
        severity: parse(row, "severity")?,
        payload: json(row, "payload")?,
        issue_id: get(row, "issue_id")?,
        fingerprint: get(row, "fingerprint")?,
        occurrences: get(row, "occurrences")?,
        created_at: ts(row, "created_at")?,
        last_seen_at: ts(row, "last_seen_at")?,
    })
}

pub fn session_record(row: &impl Cols) -> Result<loop_core::session::SessionRecord> {
    Ok(loop_core::session::SessionRecord {
        session_id: get(row, "session_id")?,
        attestation: json(row, "attestation")?,
        transcript: get(row, "transcript")?,
        recorded_at: ts(row, "recorded_at")?,
    })
}

pub fn skill(row: &impl Cols) -> Result<loop_core::skill::Skill> {
    Ok(loop_core::skill::Skill {
        name: get(row, "name")?,
        content: get(row, "content")?,
        version: get(row, "version")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub fn question(row: &impl Cols) -> Result<loop_core::question::Question> {
    Ok(loop_core::question::Question {
        id: get(row, "id")?,
        issue_id: get(row, "issue_id")?,
        issue_number: get(row, "issue_number")?,
        issue_title: get(row, "issue_title")?,
        session_id: get(row, "session_id")?,
        question: get(row, "body")?,
        asked_by: get(row, "asked_by")?,
        asked_at: ts(row, "asked_at")?,
        answer: get(row, "answer")?,
        answered_by: get(row, "answered_by")?,
        answered_at: opt_ts(row, "answered_at")?,
    })
}

pub fn rework(row: &impl Cols) -> Result<loop_core::rework::Rework> {
    Ok(loop_core::rework::Rework {
        id: get(row, "id")?,
        issue_id: get(row, "issue_id")?,
        kind: parse(row, "kind")?,
        author: get(row, "author")?,
        body: get(row, "body")?,
        path: get(row, "path")?,
        line: get(row, "line")?,
        url: get(row, "url")?,
        created_at: ts(row, "created_at")?,
        addressed_at: opt_ts(row, "addressed_at")?,
    })
}

pub fn merge_slot(row: &impl Cols) -> Result<loop_core::rework::MergeSlot> {
    Ok(loop_core::rework::MergeSlot {
        scope: get(row, "scope")?,
        holder: get(row, "holder")?,
        expires_at: ts(row, "expires_at")?,
    })
}
