//! What a prompt is hydrated from: the claimed issue and its neighbourhood.

use crate::goal::Goal;
use crate::issue::Issue;
use crate::label::LabelRef;
use crate::project::Project;
use crate::session::AgentSession;
use crate::template::{PromptReview, PromptTemplate, PromptVersion};

/// Lists of neighbours are capped so a prompt stays bounded whatever the backlog.
pub const MAX_NEIGHBOURS: usize = 50;

#[derive(Debug, Clone, PartialEq)]
pub struct PromptInputs {
    pub issue: Issue,
    pub parent: Option<Issue>,
    /// Other live children of the same parent.
    pub siblings: Vec<Issue>,
    /// Live children (for a root issue).
    pub children: Vec<Issue>,
    pub project: Option<Project>,
    /// The project's goal (its `goalId`, else a live goal linked to the project).
    pub goal: Option<Goal>,
    pub labels: Vec<LabelRef>,
    /// Open issues this one blocks.
    pub blocking: Vec<Issue>,
    /// Open issues blocking this one.
    pub blocked_by: Vec<Issue>,
    /// Ended sessions of this issue, oldest first.
    pub previous_sessions: Vec<AgentSession>,
    /// When the issue asks for a template to be improved: what to improve.
    pub improvement: Option<ImprovementInputs>,
    /// The skills of the issue's project, by name.
    pub skills: Vec<crate::skill::Skill>,
    /// The questions its agents asked, with the answers, oldest first.
    pub questions: Vec<crate::question::Question>,
    /// The feedback that sent its finished work back, not yet addressed, oldest first.
    pub rework: Vec<crate::rework::Rework>,
}

/// The template version an improvement issue is about, with its reviews.
#[derive(Debug, Clone, PartialEq)]
pub struct ImprovementInputs {
    pub template: PromptTemplate,
    pub version: PromptVersion,
    /// Reviews of the version since it became active, oldest first, with the reviewed issue's
    /// number.
    pub reviews: Vec<(PromptReview, Option<i64>)>,
}
