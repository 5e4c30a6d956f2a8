//! Prompt templates, their versions and the reviews of those versions. This module holds the
//! data model and CRUD inputs; selection and hydration live with the prompt engine.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::comment::AuthorType;
use crate::issue::{IssueType, string_enum};
use crate::text::{Body, RequiredBody, Text, Title, double_option};

/// Slugs are lowercase alphanumeric words separated by single hyphens, 1–200 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    pub fn new(s: String) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 200
            && s.split('-').all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        if ok {
            Ok(Self(s))
        } else {
            Err(format!(
                "must be 1–200 lowercase letters and digits in words joined by single hyphens (like task-execute), got {s:?}"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Slug::new(s)
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> String {
        s.0
    }
}

/// When a template applies. Every present key must match; `{}` matches every issue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Conditions {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<IssueType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_failed_sessions: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypothesis_confidence: Option<f64>,
}

/// Specificity 0–100: higher wins among matching templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = i32))]
#[serde(try_from = "i64", into = "i64")]
pub struct Specificity(u8);

impl Default for Specificity {
    fn default() -> Self {
        Self(10)
    }
}

impl Specificity {
    pub fn value(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Specificity {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        if (0..=100).contains(&n) {
            Ok(Self(n as u8))
        } else {
            Err(format!("must be an integer from 0 to 100, got {n}"))
        }
    }
}

impl From<Specificity> for i64 {
    fn from(s: Specificity) -> i64 {
        s.0 as i64
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PromptTemplate {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    pub conditions: Conditions,
    pub specificity: Specificity,
    pub project_id: Option<String>,
    pub active_version_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TemplateDetail {
    #[serde(flatten)]
    pub template: PromptTemplate,
    pub active_version: Option<PromptVersion>,
}

string_enum!(VersionStatus { Active = "active", Draft = "draft", Retired = "retired" });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PromptVersion {
    pub id: String,
    pub template_id: String,
    pub version: i64,
    pub content: String,
    pub changelog: Option<String>,
    pub author_type: AuthorType,
    pub author_name: String,
    pub status: VersionStatus,
    pub usage_count: i64,
    pub completion_rate: Option<f64>,
    pub avg_duration_ms: Option<f64>,
    pub review_score: Option<f64>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PromptReview {
    pub id: String,
    pub version_id: String,
    pub issue_id: String,
    pub clarity: Score,
    pub completeness: Score,
    pub relevance: Score,
    pub feedback: Option<String>,
    pub author_type: AuthorType,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// A review score: an integer from 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = i32))]
#[serde(try_from = "i64", into = "i64")]
pub struct Score(u8);

impl Score {
    pub fn value(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Score {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        if (1..=5).contains(&n) { Ok(Self(n as u8)) } else { Err(format!("must be an integer from 1 to 5, got {n}")) }
    }
}

impl From<Score> for i64 {
    fn from(s: Score) -> i64 {
        s.0 as i64
    }
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTemplate {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[a-z0-9]+(?:-[a-z0-9]+)*$"))]
    pub slug: Slug,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: Title,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Option<Body>,
    #[serde(default)]
    pub conditions: Conditions,
    #[serde(default)]
    pub specificity: Specificity,
    #[serde(default)]
    pub project_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplatePatch {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub name: Option<Title>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Option<Option<Body>>,
    #[serde(default)]
    pub conditions: Option<Conditions>,
    #[serde(default)]
    pub specificity: Option<Specificity>,
    #[serde(default, deserialize_with = "double_option")]
    pub project_id: Option<Option<String>>,
}

impl TemplatePatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.conditions.is_none()
            && self.specificity.is_none()
            && self.project_id.is_none()
    }
}

/// The body of `POST /api/templates/:id/versions`. A version is `draft` unless `status` says
/// `active` or the template has no active version yet.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewVersion {
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1))]
    pub content: RequiredBody,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub changelog: Option<Body>,
    #[serde(default)]
    pub author_type: Option<AuthorType>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub author_name: Option<Title>,
    #[serde(default)]
    pub status: Option<VersionStatus>,
}

/// The body of `POST /api/prompt-reviews`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewReview {
    pub version_id: String,
    pub issue_id: String,
    pub clarity: Score,
    pub completeness: Score,
    pub relevance: Score,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub feedback: Option<Text<0, 10_000>>,
    #[serde(default)]
    pub author_type: Option<AuthorType>,
}
