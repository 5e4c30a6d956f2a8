//! The hydration context: the variables a template can use.
//!
//! | variable | what it is |
//! |---|---|
//! | `issue.*` | every issue field, plus `priority_label` |
//! | `parent`, `siblings`, `children` | the 1-level hierarchy around the issue |
//! | `project`, `goal` | the issue's project and its goal |
//! | `labels` | `[{id, name, color}]` |
//! | `blocking`, `blockedBy` | open issues this one blocks / that block it |
//! | `hypothesis` | the nearest hypothesis: the parent if it is one, else a sibling hypothesis |
//! | `previousSessions` | earlier attempts: `{status, outcome, agentSummary, summary, agent, claimedAt, endedAt}` |
//! | `loopUrl`, `loopToken` | where to call back, with a token scoped to this claim (never the master key) |
//! | `meta.*` | `templateId`, `templateSlug`, `versionId`, `versionNumber`, `sessionId`, `leaseExpiresAt`, `reviewUrl` |

use loop_core::hydration::PromptInputs;
use loop_core::issue::{Issue, IssueType};
use serde::Serialize;
use serde_json::{Value, json};

/// Which version rendered the prompt and for which claim.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptMeta {
    pub template_id: String,
    pub template_slug: String,
    pub version_id: String,
    pub version_number: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<String>,
    pub review_url: &'static str,
}

/// The names a context provides at the top level (for validation warnings).
pub const ROOTS: &[&str] = &[
    "issue",
    "parent",
    "siblings",
    "children",
    "project",
    "goal",
    "labels",
    "blocking",
    "blockedBy",
    "hypothesis",
    "previousSessions",
    "loopUrl",
    "loopToken",
    "meta",
    // prompt-improvement
    "template",
    "currentVersion",
    "reviews",
    "avgClarity",
    "avgCompleteness",
    "avgRelevance",
];

pub fn hydrate(inputs: &PromptInputs, meta: &PromptMeta, loop_url: &str, loop_token: &str) -> Value {
    let hypothesis = inputs
        .parent
        .iter()
        .chain(inputs.siblings.iter())
        .find(|i| i.issue_type == IssueType::Hypothesis && i.hypothesis.is_some());
    let previous: Vec<Value> = inputs
        .previous_sessions
        .iter()
        .map(|s| {
            json!({
                "status": s.outcome,
                "outcome": s.outcome,
                "agentSummary": s.summary,
                "summary": s.summary,
                "agent": s.agent,
                "claimedAt": s.claimed_at,
                "endedAt": s.ended_at,
            })
        })
        .collect();
    json!({
        "issue": issue(&inputs.issue),
        "parent": inputs.parent.as_ref().map(issue),
        "siblings": inputs.siblings.iter().map(issue).collect::<Vec<_>>(),
        "children": inputs.children.iter().map(issue).collect::<Vec<_>>(),
        "project": inputs.project,
        "goal": inputs.goal,
        "labels": inputs.labels,
        "blocking": inputs.blocking.iter().map(issue).collect::<Vec<_>>(),
        "blockedBy": inputs.blocked_by.iter().map(issue).collect::<Vec<_>>(),
        "hypothesis": hypothesis.map(issue),
        "previousSessions": previous,
        "loopUrl": loop_url,
        "loopToken": loop_token,
        "meta": meta,
    })
}

fn issue(i: &Issue) -> Value {
    let mut v = serde_json::to_value(i).unwrap_or(Value::Null);
    v["priority_label"] = json!(i.priority.label());
    v
}
