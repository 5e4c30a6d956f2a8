//! Projects group issues toward a goal.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::goal::Goal;
use crate::input::{double_option, present, reference, reference_patch};
use crate::issue::{StatusCounts, string_enum};
use crate::text::{Body, Title};

string_enum!(ProjectStatus {
    Backlog = "backlog",
    Planned = "planned",
    Active = "active",
    Paused = "paused",
    Completed = "completed",
    Canceled = "canceled",
});

string_enum!(ProjectHealth { OnTrack = "on_track", AtRisk = "at_risk", OffTrack = "off_track" });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub status: ProjectStatus,
    pub health: ProjectHealth,
    pub goal_id: Option<String>,
    /// New blocks whose waiting issue is in this project wait for the blocker's merge, not
    /// only its done (`untilMerged`), unless the relation says otherwise.
    #[serde(default)]
    pub wait_for_merge: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub deleted_at: Option<Timestamp>,
}

/// A project with its goal and how many live issues it has per status (non-zero only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProjectDetail {
    #[serde(flatten)]
    pub project: Project,
    pub goal: Option<Goal>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub issue_counts: StatusCounts,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewProject {
    #[cfg_attr(feature = "openapi", schema(value_type = Title))]
    pub name: Title,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Body>))]
    pub description: Option<Body>,
    #[serde(default = "default_status")]
    pub status: ProjectStatus,
    #[serde(default = "default_health")]
    pub health: ProjectHealth,
    #[serde(default, deserialize_with = "reference")]
    pub goal_id: Option<String>,
    #[serde(default)]
    pub wait_for_merge: bool,
}

fn default_status() -> ProjectStatus {
    ProjectStatus::Backlog
}

fn default_health() -> ProjectHealth {
    ProjectHealth::OnTrack
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectPatch {
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false, value_type = Option<Title>))]
    pub name: Option<Title>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Body>))]
    pub description: Option<Option<Body>>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub status: Option<ProjectStatus>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub health: Option<ProjectHealth>,
    #[serde(default, deserialize_with = "reference_patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub goal_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub wait_for_merge: Option<bool>,
}

impl Project {
    pub fn apply_patch(&mut self, patch: ProjectPatch, now: Timestamp) {
        if let Some(n) = patch.name {
            self.name = n.to_string();
        }
        if let Some(d) = patch.description {
            self.description = d.map(|d| d.to_string());
        }
        if let Some(s) = patch.status {
            self.status = s;
        }
        if let Some(h) = patch.health {
            self.health = h;
        }
        if let Some(g) = patch.goal_id {
            self.goal_id = g;
        }
        if let Some(w) = patch.wait_for_merge {
            self.wait_for_merge = w;
        }
        self.updated_at = now;
    }
}

impl ProjectPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.status.is_none()
            && self.health.is_none()
            && self.goal_id.is_none()
            && self.wait_for_merge.is_none()
    }
}
