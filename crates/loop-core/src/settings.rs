//! Settings a team changes while Loop runs (`GET`/`PATCH /api/settings`): when a prompt gets an
//! improvement issue, and the names of the labels Loop applies itself. The seed's defaults
//! apply until someone changes them.

use serde::{Deserialize, Serialize};

use crate::input::{double_option, present};
use crate::text::Short;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// A prompt version scoring under this (after 3 reviews) gets an improvement issue.
    pub improvement_score_threshold: ScoreThreshold,
    /// After this many reviews, a version gets an improvement issue whatever its score.
    pub improvement_review_count: ReviewCount,
    pub labels: SystemLabels,
}

/// The labels Loop applies itself; `null` turns one off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SystemLabels {
    /// On every issue an agent or an integration creates.
    pub auto_generated: Option<String>,
    /// On issues `loop agent` gives up on after repeated failures.
    pub needs_human_review: Option<String>,
    /// On issues whose pull request Loop merged itself.
    pub auto_merged: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            improvement_score_threshold: ScoreThreshold(3.5),
            improvement_review_count: ReviewCount(15),
            labels: SystemLabels {
                auto_generated: Some("auto-generated".into()),
                needs_human_review: Some("needs-human-review".into()),
                auto_merged: Some("auto-merged".into()),
            },
        }
    }
}

/// A review score from 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct ScoreThreshold(f64);
bounded_schema!(ScoreThreshold, number, 1, 5, "A review score from 1 to 5.");

impl TryFrom<f64> for ScoreThreshold {
    type Error = String;
    fn try_from(n: f64) -> Result<Self, String> {
        if (1.0..=5.0).contains(&n) { Ok(Self(n)) } else { Err(format!("must be a score from 1 to 5, got {n}")) }
    }
}

impl From<ScoreThreshold> for f64 {
    fn from(s: ScoreThreshold) -> f64 {
        s.0
    }
}

/// A number of reviews, from 1 to 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "crate::input::Integer", into = "i64")]
pub struct ReviewCount(u64);
bounded_schema!(ReviewCount, integer, 1, 1000, "A number of reviews, from 1 to 1000.");

impl TryFrom<i64> for ReviewCount {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        if (1..=1000).contains(&n) { Ok(Self(n as u64)) } else { Err(format!("must be from 1 to 1000, got {n}")) }
    }
}

crate::input::from_integer!(ReviewCount);

impl From<ReviewCount> for i64 {
    fn from(c: ReviewCount) -> i64 {
        c.0 as i64
    }
}

impl Settings {
    pub fn score_threshold(&self) -> f64 {
        self.improvement_score_threshold.0
    }

    pub fn review_count(&self) -> u64 {
        self.improvement_review_count.0
    }

    pub fn apply(&mut self, patch: SettingsPatch) {
        if let Some(s) = patch.improvement_score_threshold {
            self.improvement_score_threshold = s;
        }
        if let Some(c) = patch.improvement_review_count {
            self.improvement_review_count = c;
        }
        let name = |v: Option<Short>| v.map(|s| s.to_string());
        if let Some(l) = patch.labels {
            if let Some(v) = l.auto_generated {
                self.labels.auto_generated = name(v);
            }
            if let Some(v) = l.needs_human_review {
                self.labels.needs_human_review = name(v);
            }
            if let Some(v) = l.auto_merged {
                self.labels.auto_merged = name(v);
            }
        }
    }
}

/// The body of `PATCH /api/settings`: absent fields are left alone; a label set to `null` is
/// no longer applied.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsPatch {
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub improvement_score_threshold: Option<ScoreThreshold>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub improvement_review_count: Option<ReviewCount>,
    #[serde(default, deserialize_with = "an_object")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub labels: Option<SystemLabelsPatch>,
}

impl SettingsPatch {
    pub fn is_empty(&self) -> bool {
        self.improvement_score_threshold.is_none() && self.improvement_review_count.is_none() && self.labels.is_none()
    }
}

/// Present means an object of label names (never `null`, never a list).
fn an_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SystemLabelsPatch>, D::Error> {
    crate::input::object(d).map(Some)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SystemLabelsPatch {
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub auto_generated: Option<Option<Short>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub needs_human_review: Option<Option<Short>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub auto_merged: Option<Option<Short>>,
}
