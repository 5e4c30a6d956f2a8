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
//! | `skills`, `skillsOmitted` | the project's skill files `{name, content, version}` that fit the cap, and the names left out |
//! | `questions` | questions agents asked about the issue: `{question, askedBy, askedAt, answer, answeredBy, answeredAt}` |
//! | `rework` | feedback that sent its work back, pending: `{kind, author, body, path, line, url, createdAt}` |
//! | `meta.*` | `templateId`, `templateSlug`, `versionId`, `versionNumber`, `sessionId`, `leaseExpiresAt`, `reviewUrl` |
//!
//! An issue that asks for a template to be improved also gets `template`, `currentVersion`
//! (with `completionRatePercent`), `reviews` (`{issueNumber, authorType, clarity, completeness,
//! relevance, feedback}`), and `avgClarity`, `avgCompleteness`, `avgRelevance`.

use loop_core::hydration::{ImprovementInputs, PromptInputs};
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
    /// The model the server suggests for this kind of claim (`--model-hint`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
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
    "skills",
    "skillsOmitted",
    "questions",
    "rework",
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
    let mut ctx = json!({
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
    });
    let (skills, omitted) = capped_skills(&inputs.skills);
    ctx["skills"] = json!(skills);
    ctx["skillsOmitted"] = json!(omitted);
    ctx["questions"] = json!(inputs.questions);
    ctx["rework"] = json!(inputs.rework);
    if let Some(imp) = &inputs.improvement {
        add_improvement(&mut ctx, imp);
    }
    js_numbers(&mut ctx);
    ctx
}

/// The most skill text a prompt carries: what does not fit is named, not silently dropped.
pub const MAX_SKILL_CHARS: usize = 24_000;

/// The project's skills that fit in [`MAX_SKILL_CHARS`], in name order, as `{name, content}`;
/// and the names of those left out.
fn capped_skills(skills: &[loop_core::skill::Skill]) -> (Vec<Value>, Vec<String>) {
    let (mut kept, mut omitted, mut used) = (Vec::new(), Vec::new(), 0);
    for s in skills {
        let size = s.content.chars().count();
        if used + size <= MAX_SKILL_CHARS {
            used += size;
            kept.push(json!({ "name": s.name, "content": s.content, "version": s.version }));
        } else {
            omitted.push(s.name.clone());
        }
    }
    (kept, omitted)
}

/// Whole floats print as integers, as in Handlebars.js (`4`, not `4.0`).
fn js_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15) {
                *v = json!(f as i64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(js_numbers),
        Value::Object(o) => o.values_mut().for_each(js_numbers),
        _ => {}
    }
}

fn add_improvement(ctx: &mut Value, imp: &ImprovementInputs) {
    let n = imp.reviews.len().max(1) as f64;
    let avg = |f: fn(&loop_core::template::PromptReview) -> u8| {
        let mean = imp.reviews.iter().map(|(r, _)| f(r) as f64).sum::<f64>() / n;
        (mean * 10.0).round() / 10.0
    };
    let mut version = serde_json::to_value(&imp.version).unwrap_or(Value::Null);
    version["completionRatePercent"] =
        json!(imp.version.completion_rate.map(|r| (r * 1000.0).round() / 10.0).unwrap_or(0.0));
    ctx["template"] = serde_json::to_value(&imp.template).unwrap_or(Value::Null);
    ctx["currentVersion"] = version;
    ctx["reviews"] = imp
        .reviews
        .iter()
        .map(|(r, number)| {
            json!({
                "issueNumber": number,
                "authorType": r.author_type,
                "clarity": r.clarity,
                "completeness": r.completeness,
                "relevance": r.relevance,
                "feedback": r.feedback,
            })
        })
        .collect();
    ctx["avgClarity"] = json!(avg(|r| r.clarity.value()));
    ctx["avgCompleteness"] = json!(avg(|r| r.completeness.value()));
    ctx["avgRelevance"] = json!(avg(|r| r.relevance.value()));
}

fn issue(i: &Issue) -> Value {
    let mut v = serde_json::to_value(i).unwrap_or(Value::Null);
    v["priority_label"] = json!(i.priority.label());
    v
}
