//! Rework: what sends finished work back to an agent. A review that asks for changes, a
//! review comment, a red check on the pull request's branch, or the merge queue finding a
//! conflict or a red verification becomes a rework item on the issue; the issue goes back to
//! `todo`, and the next claim's prompt (the `task-rework` template) carries the items. They
//! are addressed when the issue is done again.

use serde::{Deserialize, Serialize};

use crate::issue::string_enum;
use crate::text::{RequiredBody, Short};
use crate::{Error, Result, Timestamp};

string_enum!(
    /// Where the feedback came from.
    ReworkKind {
        Review = "review",
        Comment = "comment",
        Check = "check",
        Conflict = "conflict",
        Verify = "verify",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Rework {
    pub id: String,
    pub issue_id: String,
    pub kind: ReworkKind,
    /// The reviewer, the check's name, or the runner that found the conflict.
    pub author: Option<String>,
    /// The comment, the review's text, or the failing check's log tail.
    pub body: String,
    /// The file and line a review comment is about.
    pub path: Option<String>,
    pub line: Option<i64>,
    pub url: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When the issue was done again after it; null while it is pending.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub addressed_at: Option<Timestamp>,
}

/// The body of `POST /api/issues/:id/rework`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRework {
    pub kind: ReworkKind,
    #[cfg_attr(feature = "openapi", schema(value_type = RequiredBody))]
    pub body: RequiredBody,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub author: Option<Short>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub path: Option<Short>,
    #[serde(default, deserialize_with = "crate::input::count")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub line: Option<u64>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub url: Option<Short>,
}

impl NewRework {
    pub fn validate(&self) -> Result<()> {
        if self.line.is_some_and(|l| l < 1 || l > i64::MAX as u64) {
            return Err(Error::invalid("line", "out_of_range", "must be a line number, 1 or more"));
        }
        Ok(())
    }
}

/// The body of `POST /api/issues/:id/merged`: the merge the runner or a person made.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Merge {
    /// The merge commit.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub sha: Option<Short>,
    /// The merged pull request's URL.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub url: Option<Short>,
}

/// The slot one runner holds while it lands a project's pull requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MergeSlot {
    /// A project id, or `all`.
    pub scope: String,
    pub holder: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
}

/// The body of `POST /api/merge-slots/:scope`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlotRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = Short))]
    pub holder: Short,
    /// How long the slot is held unless renewed (the same holder asking again), 10 to 3600.
    #[serde(default = "default_slot_seconds", deserialize_with = "crate::input::whole")]
    #[cfg_attr(feature = "openapi", schema(minimum = 10, maximum = 3600))]
    pub seconds: u64,
}

fn default_slot_seconds() -> u64 {
    600
}

impl SlotRequest {
    pub fn validate(&self) -> Result<()> {
        if !(10..=3600).contains(&self.seconds) {
            return Err(Error::invalid("seconds", "out_of_range", "must be from 10 to 3600"));
        }
        Ok(())
    }
}

/// A webhook delivery about a pull request Loop opened (its branch `loop/<number>-…`), as the
/// store applies it.
#[derive(Debug, Clone)]
pub struct PullRequestFeedback {
    /// The Loop issue the branch or the body names.
    pub issue_number: i64,
    /// The pull request, or 0 when the delivery names only its branch.
    pub pr_number: u64,
    pub branch: Option<String>,
    pub event: PullRequestEvent,
}

#[derive(Debug, Clone)]
pub enum PullRequestEvent {
    /// Changes asked for, a review comment, a red check.
    Rework(NewRework),
    /// An approving review.
    Approved,
    Merged(Merge),
    /// Closed without being merged: back to triage, for a person to decide.
    Closed {
        url: Option<String>,
    },
    /// A comment on the pull request: the answer to the issue's open question, if it has one.
    Reply {
        author: String,
        body: String,
    },
}

/// What came of a [`PullRequestFeedback`].
#[derive(Debug, Clone)]
pub enum FeedbackOutcome {
    /// This delivery was applied before.
    Duplicate,
    /// Not a pull request of the issue it names (nothing recorded, not even the delivery), and why.
    NotLoops(String),
    /// Nothing to do, and why (merged already, no open question…).
    Ignored(String),
    /// Applied; the issue as it is now.
    Applied(Box<crate::issue::Issue>),
}
