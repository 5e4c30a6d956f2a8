//! The append-only issue history. Every change to an issue is one event, recorded in the same
//! transaction as the change, with who made it and when.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Timestamp;
use crate::issue::string_enum;

string_enum!(
    /// What happened. `data` carries the specifics (see each constructor).
    EventKind {
        Created = "created",
        FieldChanged = "field_changed",
        StatusChanged = "status_changed",
        LabelAdded = "label_added",
        LabelRemoved = "label_removed",
        RelationAdded = "relation_added",
        RelationRemoved = "relation_removed",
        CommentAdded = "comment_added",
        Deleted = "deleted",
        Claimed = "claimed",
        SessionEnded = "session_ended",
        SignalRepeated = "signal_repeated",
        GoalUpdated = "goal_updated",
        PullRequestAttached = "pull_request_attached",
        HypothesisStatusChanged = "hypothesis_status_changed",
        WaitEnded = "wait_ended",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct IssueEvent {
    /// Position in the global log; increases with every event.
    pub id: i64,
    pub issue_id: String,
    pub kind: EventKind,
    /// The key name that acted, or `human` for the master key.
    pub actor: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// An event about to be written (the store assigns `id`, `actor` and `created_at`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub issue_id: String,
    pub kind: EventKind,
    pub data: Value,
}

impl NewEvent {
    pub fn created(issue_id: &str, number: i64, title: &str) -> Self {
        Self::new(issue_id, EventKind::Created, json!({ "number": number, "title": title }))
    }

    pub fn field_changed(issue_id: &str, field: &str, from: Value, to: Value) -> Self {
        Self::new(issue_id, EventKind::FieldChanged, json!({ "field": field, "from": from, "to": to }))
    }

    pub fn status_changed(issue_id: &str, from: &str, to: &str) -> Self {
        Self::new(issue_id, EventKind::StatusChanged, json!({ "from": from, "to": to }))
    }

    pub fn label(issue_id: &str, added: bool, label_id: &str, name: &str) -> Self {
        let kind = if added { EventKind::LabelAdded } else { EventKind::LabelRemoved };
        Self::new(issue_id, kind, json!({ "labelId": label_id, "name": name }))
    }

    pub fn relation(issue_id: &str, added: bool, relation: &crate::relation::Relation) -> Self {
        let kind = if added { EventKind::RelationAdded } else { EventKind::RelationRemoved };
        Self::new(
            issue_id,
            kind,
            json!({
                "relationId": relation.id,
                "type": relation.relation_type,
                "issueId": relation.issue_id,
                "relatedIssueId": relation.related_issue_id,
            }),
        )
    }

    pub fn comment_added(issue_id: &str, comment_id: &str, author: &str) -> Self {
        Self::new(issue_id, EventKind::CommentAdded, json!({ "commentId": comment_id, "author": author }))
    }

    pub fn deleted(issue_id: &str) -> Self {
        Self::new(issue_id, EventKind::Deleted, json!({}))
    }

    pub fn claimed(issue_id: &str, session: &crate::session::AgentSession) -> Self {
        Self::new(
            issue_id,
            EventKind::Claimed,
            json!({ "sessionId": session.id, "agent": session.agent, "leaseExpiresAt": session.lease_expires_at }),
        )
    }

    pub fn session_ended(issue_id: &str, session_id: &str, outcome: crate::session::SessionOutcome) -> Self {
        Self::new(issue_id, EventKind::SessionEnded, json!({ "sessionId": session_id, "outcome": outcome }))
    }

    pub fn signal_repeated(issue_id: &str, signal_id: &str, occurrences: i64) -> Self {
        Self::new(issue_id, EventKind::SignalRepeated, json!({ "signalId": signal_id, "occurrences": occurrences }))
    }

    pub fn goal_updated(issue_id: &str, goal_id: &str, metric: &str, from: Option<f64>, to: f64) -> Self {
        Self::new(
            issue_id,
            EventKind::GoalUpdated,
            json!({ "goalId": goal_id, "metric": metric, "from": from, "to": to }),
        )
    }

    pub fn pull_request_attached(issue_id: &str, number: u64, url: Option<&str>) -> Self {
        Self::new(issue_id, EventKind::PullRequestAttached, json!({ "number": number, "url": url }))
    }

    pub fn hypothesis_status_changed(issue_id: &str, t: &crate::hypothesis::Transition) -> Self {
        Self::new(
            issue_id,
            EventKind::HypothesisStatusChanged,
            json!({ "from": t.from, "to": t.to, "evidence": t.evidence }),
        )
    }

    /// Its not-before time came: it may be dispatched now.
    pub fn wait_ended(issue_id: &str, not_before: Timestamp) -> Self {
        Self::new(issue_id, EventKind::WaitEnded, json!({ "notBefore": not_before }))
    }

    fn new(issue_id: &str, kind: EventKind, data: Value) -> Self {
        Self { issue_id: issue_id.to_owned(), kind, data }
    }
}
