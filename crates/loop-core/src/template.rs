//! Prompt templates, their versions and the reviews of those versions. This module holds the
//! data model and CRUD inputs; selection and hydration live with the prompt engine.

use serde::{Deserialize, Serialize};

use crate::comment::AuthorType;
use crate::input::{double_option, object, optional_object, present, reference, reference_patch};
use crate::issue::{IssueType, string_enum};
use crate::text::{Body, RequiredBody, Text, Title};
use crate::{Actor, Timestamp};

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
                "must be 1–200 lowercase letters and digits in words joined by single hyphens (like task-execute), got {}",
                crate::text::echo(&s)
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
    /// Review, CI or the merge queue sent the issue's finished work back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_rework: Option<bool>,
    /// The least `hypothesis.confidence` (0 to 1) an issue must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypothesis_confidence: Option<crate::issue::Confidence>,
}

/// Specificity 0–100: higher wins among matching templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "crate::input::Integer", into = "i64")]
pub struct Specificity(u8);
bounded_schema!(Specificity, integer, 0, 100, "0–100: higher wins among matching templates.");

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

crate::input::from_integer!(Specificity, Score);

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
    /// When this version last became the active one.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub activated_at: Option<Timestamp>,
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
    /// Who posted it (absent on reviews from before names were kept).
    pub author_name: Option<String>,
    /// The claim whose prompt this rates, when a claim's token posted it (one review per claim).
    pub session_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

impl PromptReview {
    /// The mean of the three scores.
    pub fn composite(&self) -> f64 {
        f64::from(self.clarity.value() + self.completeness.value() + self.relevance.value()) / 3.0
    }
}

/// A review score: an integer from 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "crate::input::Integer", into = "i64")]
pub struct Score(u8);
bounded_schema!(Score, integer, 1, 5, "A review score: an integer from 1 to 5.");

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
    #[cfg_attr(feature = "openapi", schema(value_type = Title))]
    pub name: Title,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Body>))]
    pub description: Option<Body>,
    #[serde(default, deserialize_with = "object")]
    pub conditions: Conditions,
    #[serde(default)]
    pub specificity: Specificity,
    #[serde(default, deserialize_with = "reference")]
    pub project_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplatePatch {
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false, value_type = Option<Title>))]
    pub name: Option<Title>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Body>))]
    pub description: Option<Option<Body>>,
    #[serde(default, deserialize_with = "optional_object")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub conditions: Option<Conditions>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub specificity: Option<Specificity>,
    #[serde(default, deserialize_with = "reference_patch")]
    pub project_id: Option<Option<String>>,
}

impl PromptTemplate {
    pub fn apply_patch(&mut self, patch: TemplatePatch, now: Timestamp) {
        if let Some(n) = patch.name {
            self.name = n.to_string();
        }
        if let Some(d) = patch.description {
            self.description = d.map(|d| d.to_string());
        }
        if let Some(c) = patch.conditions {
            self.conditions = c;
        }
        if let Some(s) = patch.specificity {
            self.specificity = s;
        }
        if let Some(p) = patch.project_id {
            self.project_id = p;
        }
        self.updated_at = now;
    }
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
    #[cfg_attr(feature = "openapi", schema(value_type = RequiredBody))]
    pub content: RequiredBody,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Body>))]
    pub changelog: Option<Body>,
    #[serde(default)]
    pub author_type: Option<AuthorType>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Title>))]
    pub author_name: Option<Title>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^(draft|active)$"))]
    pub status: Option<VersionStatus>,
}

impl NewVersion {
    /// Whether the new version becomes the active one: when asked to, or when the template has
    /// none and no status was given (an explicit draft stays a draft).
    pub fn activates(&self, template_has_active: bool) -> bool {
        match self.status {
            Some(status) => status == VersionStatus::Active,
            None => !template_has_active,
        }
    }
}

/// A second review for one claim.
pub fn review_exists() -> crate::Error {
    crate::Error::conflict("review_exists", "this claim's prompt was already reviewed; a claim posts one review")
}

/// The body of `PATCH /api/templates/:id/versions/:vid`: `active` promotes the version,
/// `retired` retires a draft.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VersionPatch {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^(active|retired)$"))]
    pub status: VersionStatus,
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
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Text<0, 10_000>>))]
    pub feedback: Option<Text<0, 10_000>>,
    #[serde(default)]
    pub author_type: Option<AuthorType>,
    /// Set by the server when a claim's token posts the review (never read from the body).
    #[serde(skip)]
    pub session_id: Option<String>,
}

impl NewReview {
    /// The review as stored: authored by `actor` (as `authorType` says, an agent by default).
    pub fn into_review(self, issue_id: String, actor: &Actor, now: Timestamp) -> PromptReview {
        let author_type = self.author_type.unwrap_or(AuthorType::Agent);
        PromptReview {
            id: crate::id::new_id(),
            version_id: self.version_id,
            issue_id,
            clarity: self.clarity,
            completeness: self.completeness,
            relevance: self.relevance,
            feedback: self.feedback.map(|f| f.to_string()),
            author_type,
            author_name: Some(crate::comment::author_name(None, actor, author_type)),
            session_id: self.session_id,
            created_at: now,
        }
    }
}

/// What seeding did with a shipped template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    Created,
    /// Its active version was an earlier shipped text; this one is now active.
    Updated,
    Kept,
}

/// A template Loop ships, to be created once with fixed ids.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSeed {
    pub id: String,
    pub version_id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub conditions: Conditions,
    pub specificity: Specificity,
    pub content: String,
}

/// A template with its active version: what selection chooses among.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveTemplate {
    pub template: PromptTemplate,
    pub version: PromptVersion,
}

/// What template conditions are matched against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectionContext {
    pub issue_type: Option<IssueType>,
    pub signal_source: Option<String>,
    /// Names of the issue's live labels.
    pub labels: Vec<String>,
    pub project_id: Option<String>,
    /// The issue itself has an earlier failed, expired or released session.
    pub has_failed_sessions: bool,
    /// The issue has rework not yet addressed.
    pub has_rework: bool,
    pub hypothesis_confidence: Option<f64>,
}

impl Conditions {
    /// Every present key must match.
    pub fn matches(&self, ctx: &SelectionContext) -> bool {
        self.issue_type.is_none_or(|t| ctx.issue_type == Some(t))
            && self.signal_source.as_ref().is_none_or(|s| ctx.signal_source.as_ref() == Some(s))
            && self.labels.as_ref().is_none_or(|ls| ls.iter().all(|l| ctx.labels.contains(l)))
            && self.project_id.as_ref().is_none_or(|p| ctx.project_id.as_ref() == Some(p))
            && self.has_failed_sessions.is_none_or(|f| ctx.has_failed_sessions == f)
            && self.has_rework.is_none_or(|r| ctx.has_rework == r)
            && self.hypothesis_confidence.is_none_or(|min| ctx.hypothesis_confidence.is_some_and(|c| c >= min.value()))
    }
}

/// Picks the template for an issue: among templates whose conditions all match and whose
/// project scope (if any) is the issue's own project, project-scoped ones first, then higher
/// specificity, then the older template. The defaults (`{"type": …}`, specificity 10) match
/// every issue of their type, so they are the fallback without a special case.
pub fn select<'a>(candidates: &'a [ActiveTemplate], ctx: &SelectionContext) -> Option<&'a ActiveTemplate> {
    let in_scope = |t: &PromptTemplate| t.project_id.is_none() || t.project_id == ctx.project_id;
    candidates.iter().filter(|c| in_scope(&c.template) && c.template.conditions.matches(ctx)).min_by(|a, b| {
        let rank = |c: &ActiveTemplate| {
            (c.template.project_id.is_none(), std::cmp::Reverse(c.template.specificity), c.template.created_at)
        };
        rank(a).cmp(&rank(b))
    })
}

/// Chooses a prompt version for a claim, inside the claim's transaction.
pub trait TemplateChooser: Send + Sync {
    fn choose(&self, ctx: &SelectionContext) -> Option<ActiveTemplate>;
}

/// Chooses nothing: claims without prompts.
pub struct NoTemplates;

impl TemplateChooser for NoTemplates {
    fn choose(&self, _: &SelectionContext) -> Option<ActiveTemplate> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    fn active(slug: &str, conditions: serde_json::Value, specificity: i64, project: Option<&str>) -> ActiveTemplate {
        let t = PromptTemplate {
            id: slug.into(),
            slug: slug.into(),
            name: slug.into(),
            description: None,
            conditions: serde_json::from_value(conditions).unwrap(),
            specificity: specificity.try_into().unwrap(),
            project_id: project.map(Into::into),
            active_version_id: Some(format!("{slug}-v1")),
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
            deleted_at: None,
        };
        let v = PromptVersion {
            id: format!("{slug}-v1"),
            template_id: slug.into(),
            version: 1,
            content: String::new(),
            changelog: None,
            author_type: AuthorType::Human,
            author_name: "t".into(),
            status: VersionStatus::Active,
            usage_count: 0,
            completion_rate: None,
            avg_duration_ms: None,
            review_score: None,
            created_at: Timestamp::from_millis(0),
            activated_at: None,
        };
        ActiveTemplate { template: t, version: v }
    }

    fn ctx(t: IssueType) -> SelectionContext {
        SelectionContext { issue_type: Some(t), ..Default::default() }
    }

    fn chosen(all: &[ActiveTemplate], c: &SelectionContext) -> Option<String> {
        select(all, c).map(|a| a.template.slug.clone())
    }

    #[test]
    fn each_condition_key_is_checked() {
        use serde_json::json;
        let all = vec![
            active("task", json!({"type": "task"}), 10, None),
            active("retry", json!({"type": "task", "hasFailedSessions": true}), 20, None),
            active("frontend", json!({"type": "task", "labels": ["frontend", "ui"]}), 15, None),
            active("posthog", json!({"type": "signal", "signalSource": "posthog"}), 20, None),
            active("signal", json!({"type": "signal"}), 10, None),
            active("confident", json!({"type": "hypothesis", "hypothesisConfidence": 0.8}), 20, None),
            active("hypothesis", json!({"type": "hypothesis"}), 10, None),
            active("p1-only", json!({"projectId": "p1"}), 90, None),
        ];
        let mut c = ctx(IssueType::Task);
        assert_eq!(chosen(&all, &c).as_deref(), Some("task"));
        c.has_failed_sessions = true;
        assert_eq!(chosen(&all, &c).as_deref(), Some("retry"));
        c.has_failed_sessions = false;
        c.labels = vec!["frontend".into()];
        assert_eq!(chosen(&all, &c).as_deref(), Some("task"), "every listed label is required");
        c.labels.push("ui".into());
        assert_eq!(chosen(&all, &c).as_deref(), Some("frontend"));
        c.project_id = Some("p1".into());
        assert_eq!(chosen(&all, &c).as_deref(), Some("p1-only"));

        let mut s = ctx(IssueType::Signal);
        assert_eq!(chosen(&all, &s).as_deref(), Some("signal"));
        s.signal_source = Some("posthog".into());
        assert_eq!(chosen(&all, &s).as_deref(), Some("posthog"));

        let mut h = ctx(IssueType::Hypothesis);
        h.hypothesis_confidence = Some(0.5);
        assert_eq!(chosen(&all, &h).as_deref(), Some("hypothesis"));
        h.hypothesis_confidence = Some(0.8);
        assert_eq!(chosen(&all, &h).as_deref(), Some("confident"));
        assert_eq!(chosen(&all, &ctx(IssueType::Monitor)), None);
    }

    #[test]
    fn project_scoped_templates_win_in_their_project_and_never_leak() {
        use serde_json::json;
        let all = vec![
            active("general", json!({"type": "task"}), 50, None),
            active("p1-tasks", json!({"type": "task"}), 10, Some("p1")),
        ];
        let mut c = ctx(IssueType::Task);
        c.project_id = Some("p1".into());
        assert_eq!(chosen(&all, &c).as_deref(), Some("p1-tasks"), "scoped first, despite lower specificity");
        c.project_id = Some("p2".into());
        assert_eq!(chosen(&all, &c).as_deref(), Some("general"));
        c.project_id = None;
        assert_eq!(chosen(&all, &c).as_deref(), Some("general"));
    }
}
