//! What the dashboard shows: counts across the loop, the loop's chains of work, and the
//! health of each prompt template.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::Timestamp;
use crate::issue::Issue;
use crate::relation::Relation;
use crate::template::{PromptTemplate, PromptVersion};

/// A completion rate under this marks a template as needing attention.
pub const COMPLETION_THRESHOLD: f64 = 0.5;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub issues: IssueCounts,
    pub goals: GoalCounts,
    pub dispatch: DispatchCounts,
}

/// Live issues; the maps hold only the statuses and types that occur.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct IssueCounts {
    pub total: u64,
    pub by_status: BTreeMap<String, u64>,
    pub by_type: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GoalCounts {
    pub total: u64,
    pub active: u64,
    pub achieved: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DispatchCounts {
    /// Issues a claim could hand out now: `todo`, with no open blocker (what the queue lists).
    pub queue_depth: u64,
    /// Issues in progress.
    pub active_count: u64,
    /// Issues done in the last 24 hours.
    pub completed_last24h: u64,
}

/// One chain of the loop: a root issue (a signal, a hypothesis, a plan…) and the work under it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Chain {
    pub root: Issue,
    /// The root's live children, oldest first, each with its relations.
    pub children: Vec<ChainStep>,
    /// The latest change to any issue of the chain.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub latest_activity: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChainStep {
    pub issue: Issue,
    /// Relations where this issue is the subject.
    pub relations: Vec<Relation>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PromptHealth {
    pub template: PromptTemplate,
    pub active_version: Option<PromptVersion>,
    /// Up to five versions, newest first.
    pub recent_versions: Vec<PromptVersion>,
    pub review_summary: ReviewSummary,
    pub needs_attention: bool,
}

/// Reviews of every version of a template, averaged per dimension (1–5).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReviewSummary {
    pub total_reviews: u64,
    pub avg_clarity: Option<f64>,
    pub avg_completeness: Option<f64>,
    pub avg_relevance: Option<f64>,
    /// The active version's review score (its moving average).
    pub composite_score: Option<f64>,
}

/// A template needs attention when its active version scores under the threshold that opens an
/// improvement issue, or completes under half of its sessions.
pub fn needs_attention(active: Option<&PromptVersion>, score_threshold: f64) -> bool {
    active.is_some_and(|v| {
        v.review_score.is_some_and(|s| s < score_threshold)
            || v.completion_rate.is_some_and(|r| r < COMPLETION_THRESHOLD)
    })
}
