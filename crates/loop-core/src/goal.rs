//! Goals: measurable success indicators.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::input::{double_option, present, reference, reference_patch};
use crate::issue::string_enum;
use crate::text::{Body, Short, Title};

string_enum!(GoalStatus { Active = "active", Achieved = "achieved", Abandoned = "abandoned" });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Goal {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub metric: Option<String>,
    pub target_value: Option<f64>,
    pub current_value: Option<f64>,
    /// The first value `current_value` took: where progress is measured from.
    pub baseline_value: Option<f64>,
    pub unit: Option<String>,
    pub status: GoalStatus,
    pub project_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub deleted_at: Option<Timestamp>,
}

/// One value a goal's metric took, kept so the dashboard can show its trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GoalReading {
    pub value: f64,
    pub recorded_at: Timestamp,
}

/// Which way a goal moved between its last two readings, judged against its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    Toward,
    Away,
    Flat,
}

/// See [`Goal::progress`]; for clients that hold a goal's values but not a `Goal`.
pub fn progress(current: Option<f64>, target: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    let (current, target) = (current?, target?);
    let start = baseline.filter(|b| *b != target).unwrap_or(0.0);
    (target != start).then(|| ((current - start) / (target - start)).clamp(0.0, 1.0))
}

impl Goal {
    /// Progress toward the target in 0..=1. Measured from the baseline (the first value) when
    /// there is one, so a goal to bring a value down fills up as it falls; otherwise from 0.
    pub fn progress(&self) -> Option<f64> {
        progress(self.current_value, self.target_value, self.baseline_value)
    }

    /// The direction of the last change (oldest reading first in `readings`). Without a
    /// target, any rise counts as toward.
    pub fn trend(&self, readings: &[GoalReading]) -> Option<Trend> {
        let [.., before, last] = readings else { return None };
        let distance = |v: f64| match self.target_value {
            Some(t) => (t - v).abs(),
            None => -v,
        };
        let (a, b) = (distance(before.value), distance(last.value));
        Some(if b < a {
            Trend::Toward
        } else if b > a {
            Trend::Away
        } else {
            Trend::Flat
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewGoal {
    #[cfg_attr(feature = "openapi", schema(value_type = Title))]
    pub title: Title,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Body>))]
    pub description: Option<Body>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub metric: Option<Short>,
    #[serde(default)]
    pub target_value: Option<f64>,
    #[serde(default)]
    pub current_value: Option<f64>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub unit: Option<Short>,
    #[serde(default = "default_status")]
    pub status: GoalStatus,
    #[serde(default, deserialize_with = "reference")]
    pub project_id: Option<String>,
}

fn default_status() -> GoalStatus {
    GoalStatus::Active
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GoalPatch {
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false, value_type = Option<Title>))]
    pub title: Option<Title>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Body>))]
    pub description: Option<Option<Body>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub metric: Option<Option<Short>>,
    #[serde(default, deserialize_with = "double_option")]
    pub target_value: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub current_value: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub unit: Option<Option<Short>>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub status: Option<GoalStatus>,
    #[serde(default, deserialize_with = "reference_patch")]
    pub project_id: Option<Option<String>>,
}

impl Goal {
    /// Applies `patch`; returns the new current value when it changed (a new reading).
    pub fn apply_patch(&mut self, patch: GoalPatch, now: Timestamp) -> Option<f64> {
        let reading = patch.current_value.flatten().filter(|v| self.current_value != Some(*v));
        if let Some(t) = patch.title {
            self.title = t.to_string();
        }
        if let Some(d) = patch.description {
            self.description = d.map(|d| d.to_string());
        }
        if let Some(m) = patch.metric {
            self.metric = m.map(|m| m.to_string());
        }
        if let Some(v) = patch.target_value {
            self.target_value = v;
        }
        if let Some(v) = patch.current_value {
            self.current_value = v;
            self.baseline_value = self.baseline_value.or(v);
        }
        if let Some(u) = patch.unit {
            self.unit = u.map(|u| u.to_string());
        }
        if let Some(s) = patch.status {
            self.status = s;
        }
        if let Some(p) = patch.project_id {
            self.project_id = p;
        }
        self.updated_at = now;
        reading
    }
}

impl GoalPatch {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.metric.is_none()
            && self.target_value.is_none()
            && self.current_value.is_none()
            && self.unit.is_none()
            && self.status.is_none()
            && self.project_id.is_none()
    }
}
