//! Dispatch scoring and eligibility.
//!
//! score = priority weight + goal bonus + age bonus + type bonus, where the age bonus is one
//! point per day (continuous) since the issue last entered `todo`. Because every issue ages at
//! the same rate, `score × DAY_MS = key + now` with the time-independent
//! `key = (weight + goal + type) × DAY_MS − todo_since`. Ordering by `key` is therefore exactly
//! ordering by score at any instant, and stores can keep `key` in an index: a claim is an index
//! seek, whatever the backlog size. Ties break by older `todo` entry, then lower number.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::issue::{Issue, IssueStatus, IssueType, Priority};
use crate::session::AgentSession;

pub const DAY_MS: i64 = 86_400_000;
pub const GOAL_BONUS: i64 = 20;

pub fn priority_weight(p: Priority) -> i64 {
    match p.value() {
        1 => 100,
        2 => 75,
        3 => 50,
        4 => 25,
        _ => 10,
    }
}

pub fn type_bonus(t: IssueType) -> i64 {
    match t {
        IssueType::Signal => 50,
        IssueType::Hypothesis => 40,
        IssueType::Plan => 30,
        IssueType::Task => 20,
        IssueType::Monitor => 10,
    }
}

/// The part of the score that does not change with time.
pub fn base_score(priority: Priority, issue_type: IssueType, has_active_goal: bool) -> i64 {
    priority_weight(priority) + type_bonus(issue_type) + if has_active_goal { GOAL_BONUS } else { 0 }
}

/// The index key: larger is dispatched first.
pub fn dispatch_key(base: i64, todo_since: Timestamp) -> i64 {
    base * DAY_MS - todo_since.millis()
}

/// How a score is made up, as `/api/dispatch/queue` and `/explain` show it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ScoreBreakdown {
    pub priority_weight: i64,
    pub goal_bonus: i64,
    /// Whole days since the issue entered `todo` (the order itself counts every millisecond:
    /// see the module documentation).
    pub age_bonus: i64,
    pub type_bonus: i64,
}

impl ScoreBreakdown {
    pub fn new(issue: &Issue, has_active_goal: bool, todo_since: Timestamp, now: Timestamp) -> Self {
        Self {
            priority_weight: priority_weight(issue.priority),
            goal_bonus: if has_active_goal { GOAL_BONUS } else { 0 },
            age_bonus: (now.millis() - todo_since.millis()).max(0) / DAY_MS,
            type_bonus: type_bonus(issue.issue_type),
        }
    }

    /// The score in whole points. Floored days are monotone in the exact score, so scores
    /// shown down the queue never rise.
    pub fn total(&self) -> i64 {
        self.priority_weight + self.goal_bonus + self.type_bonus + self.age_bonus
    }
}

/// One row of the dispatch queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct QueueEntry {
    pub issue: Issue,
    pub score: i64,
    pub breakdown: ScoreBreakdown,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub todo_since: Timestamp,
}

/// Why an issue is or is not dispatchable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub issue: Issue,
    pub eligible: bool,
    /// Human-readable reasons it is not eligible (empty when it is).
    pub reasons: Vec<String>,
    /// Open issues blocking this one.
    pub blockers: Vec<Issue>,
    /// The session holding it, when it is claimed.
    pub lease: Option<AgentSession>,
    /// Score now, when it is in `todo`.
    pub score: Option<i64>,
    pub breakdown: Option<ScoreBreakdown>,
    /// 1-based position in the queue, when eligible.
    pub position: Option<u64>,
}

/// Reasons an issue cannot be dispatched; empty means eligible.
pub fn ineligibility(issue: &Issue, open_blockers: &[Issue], lease: Option<&AgentSession>) -> Vec<String> {
    let mut reasons = Vec::new();
    if issue.status != IssueStatus::Todo {
        reasons.push(match issue.status {
            IssueStatus::InProgress => match lease {
                Some(s) => format!("in progress: claimed by {} until {}", s.agent, s.lease_expires_at),
                None => "in progress (set without a claim)".to_string(),
            },
            s => format!("status is {s}; only todo issues are dispatched"),
        });
    }
    for b in open_blockers {
        let waiting =
            if b.status == IssueStatus::Done { "done, its pull request not merged yet" } else { b.status.as_str() };
        reasons.push(format!("blocked by #{} ({waiting}): {}", b.number, b.title));
    }
    if issue.awaiting_input {
        reasons.push("awaits a person's answer to an agent's question (GET /api/questions?open=true)".to_string());
    }
    if let Some(t) = issue.not_before {
        reasons.push(format!("waits until {t} (its not-before time, e.g. its hypothesis's observation window)"));
    }
    reasons
}

/// What a claimer asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequest {
    /// Who is claiming (token name, refined by `X-Loop-Agent`).
    pub agent: String,
    pub project_id: Option<String>,
    /// Identifies the logical request: a retry with the same key gets the same claim. Only a
    /// key replays a claim: many agents share one API key and name, so "the same agent asking
    /// again" cannot be told from a second agent; a lost response is covered by the lease.
    pub idempotency_key: Option<String>,
    pub lease_ttl_ms: i64,
    /// The claims the caller's token may hold at once, when it is limited.
    pub limit: Option<ClaimLimit>,
}

/// A token that may hold only `most` claims at once: those of its agent `holder` and of the
/// workers under it (`holder/…`, named by `X-Loop-Agent`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimLimit {
    pub holder: String,
    pub most: u32,
}

/// The result of a successful claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub issue: Issue,
    pub session: AgentSession,
    /// The template and version chosen for the prompt (counted in `usageCount`).
    pub template: Option<crate::template::ActiveTemplate>,
    /// True when this is an earlier claim handed back to a retried request.
    pub replayed: bool,
    /// What the prompt is hydrated from, when the store read it in the claim's transaction
    /// (stores may leave it to a later `prompt_inputs`).
    pub inputs: Option<Box<crate::hydration::PromptInputs>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_orders_exactly_like_the_score() {
        // A high-priority issue that entered todo just now versus a medium one waiting 30 days.
        let now = Timestamp::from_millis(100 * DAY_MS);
        let fresh = (base_score(Priority::new(1).unwrap(), IssueType::Task, false), now);
        let old = (base_score(Priority::new(3).unwrap(), IssueType::Task, false), now.plus_millis(-30 * DAY_MS));
        let score = |(b, t): (i64, Timestamp)| b as f64 + (now.millis() - t.millis()) as f64 / DAY_MS as f64;
        assert_eq!(score(fresh), 120.0);
        assert_eq!(score(old), 100.0);
        assert!(dispatch_key(fresh.0, fresh.1) > dispatch_key(old.0, old.1));
        // 21 more days later the old one has caught up... and by 51 days it leads.
        let older = (old.0, now.plus_millis(-51 * DAY_MS));
        assert!(dispatch_key(older.0, older.1) > dispatch_key(fresh.0, fresh.1));
    }

    #[test]
    fn weights_match_the_design() {
        assert_eq!(base_score(Priority::new(0).unwrap(), IssueType::Monitor, false), 20);
        assert_eq!(base_score(Priority::new(1).unwrap(), IssueType::Signal, true), 170);
    }
}
