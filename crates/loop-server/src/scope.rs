//! What a claim's token (`loopt_…`, see [`crate::token`]) may do. The token is handed to an
//! agent we do not control, inside its prompt: it may do what the prompt asks and nothing that
//! lets it pose as a person or reach beyond its claim.
//!
//! - While the lease runs: read anything; create issues (in `triage`, `backlog` or `todo`),
//!   comments and relations; update its own issue; add draft template versions; renew or end
//!   its own session; post one review of the prompt it was given; resolve the hypothesis its
//!   monitor watches. It always acts as its agent.
//! - For [`REVIEW_WINDOW`] after the claim ended: post that one review, and nothing else (the
//!   prompt asks for the review after the report, which ends the claim).

use axum::http::{Method, StatusCode};
use loop_core::comment::{AuthorType, NewComment};
use loop_core::issue::{Issue, IssuePatch, IssueStatus, IssueType, NewIssue};
use loop_core::session::AgentSession;
use loop_core::template::{NewReview, NewVersion, VersionStatus};
use loop_core::{Timestamp, dispatch};

use crate::error::ApiError;

/// How long after its claim ended a token may still post its review.
pub const REVIEW_WINDOW_MS: i64 = dispatch::DAY_MS;

/// The claim a token belongs to.
#[derive(Debug, Clone)]
pub struct Scope {
    pub session_id: String,
    pub issue_id: String,
    pub issue_number: i64,
    /// The agent that claimed: everything the token does is done as it.
    pub agent: String,
    /// The prompt version the claim was given (what its review rates).
    pub template_version_id: Option<String>,
    /// The claim has ended: only its review may still be posted.
    pub ended: bool,
}

impl Scope {
    /// The scope of `session` (on `issue_number`) at `now`: `None` once the token is dead.
    pub fn of(session: &AgentSession, issue_number: i64, now: Timestamp) -> Option<Self> {
        let ended_at = match session.ended_at {
            Some(at) => Some(at),
            None if session.lease_expires_at <= now => Some(session.lease_expires_at),
            None => None,
        };
        if ended_at.is_some_and(|at| now.millis() >= at.millis() + REVIEW_WINDOW_MS) {
            return None;
        }
        Some(Self {
            session_id: session.id.clone(),
            issue_id: session.issue_id.clone(),
            issue_number,
            agent: session.agent.clone(),
            template_version_id: session.template_version_id.clone(),
            ended: ended_at.is_some(),
        })
    }

    /// Whether the token may send `method` to `path` at all. HEAD is judged as the GET it is
    /// routed to, so no spelling of a request reaches more than GET does.
    pub fn allows(&self, method: &Method, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let method = if method == Method::HEAD { "GET" } else { method.as_str() };
        if self.ended {
            return matches!((method, parts.as_slice()), ("POST", ["api", "prompt-reviews"]));
        }
        let own_issue = |s: &str| s == self.issue_id || s == self.issue_number.to_string();
        match (method, parts.as_slice()) {
            // Reading is free, except that claiming is a GET.
            ("GET", ["api", "dispatch", "next"]) => false,
            ("GET", _) => true,
            ("POST", ["api", "issues"]) => true,
            ("POST", ["api", "issues", _, "comments" | "relations"]) => true,
            ("PATCH", ["api", "issues", id]) => own_issue(id),
            ("POST", ["api", "issues", _, "hypothesis", "resolve"]) => true,
            ("POST", ["api", "prompt-reviews"]) => true,
            ("POST", ["api", "templates", _, "versions"]) => true,
            ("POST", ["api", "sessions", id, "heartbeat" | "release" | "fail" | "questions"]) => *id == self.session_id,
            _ => false,
        }
    }

    /// A new issue goes where its prompt intends (`triage`, `backlog` or `todo`): an issue
    /// created `in_progress` has no claim and would never be dispatched, and one created
    /// `done` or `canceled` records work nobody did.
    pub fn check_new_issue(&self, input: &NewIssue) -> Result<(), ApiError> {
        match input.status {
            IssueStatus::Triage | IssueStatus::Backlog | IssueStatus::Todo => Ok(()),
            other => {
                Err(self
                    .refuse(format!("status: a claim's token creates issues in triage, backlog or todo, not {other}")))
            }
        }
    }

    /// A patch of its own issue leaves where it sits alone: an agent that could move its issue
    /// under another parent, or change its type, could reach what that issue's claim may not
    /// (a monitor's agent resolves only its own hypothesis).
    pub fn check_patch(&self, patch: &IssuePatch) -> Result<(), ApiError> {
        if patch.parent_id.is_some() || patch.issue_type.is_some() {
            return Err(self.refuse("parentId, type: a claim's token does not move or retype its issue".into()));
        }
        Ok(())
    }

    /// The agent of a monitor resolves the hypothesis it watches (its parent, or its sibling
    /// in the chain under a signal), no other.
    pub fn check_resolution(&self, own: &Issue, target: &Issue) -> Result<(), ApiError> {
        let watched = own.parent_id.is_some()
            && (own.parent_id.as_deref() == Some(target.id.as_str()) || own.parent_id == target.parent_id);
        if own.issue_type == IssueType::Monitor && watched {
            return Ok(());
        }
        Err(self.refuse(format!(
            "a claim's token resolves only the hypothesis its monitor watches, not #{}",
            target.number
        )))
    }

    /// Comments are the agent's, whatever the body says.
    pub fn author_comment(&self, input: &mut NewComment) {
        input.author_type = Some(AuthorType::Agent);
        input.author_name = None;
    }

    /// Versions are drafts by the agent: a person promotes them.
    pub fn author_version(&self, input: &mut NewVersion) -> Result<(), ApiError> {
        if input.status == Some(VersionStatus::Active) {
            return Err(self.refuse("status: a claim's token only adds draft versions; a person promotes them".into()));
        }
        input.status = Some(VersionStatus::Draft);
        input.author_type = Some(AuthorType::Agent);
        input.author_name = None;
        Ok(())
    }

    /// The review rates the prompt this claim was given, on this claim's issue, once.
    pub fn author_review(&self, input: &mut NewReview) -> Result<(), ApiError> {
        match &self.template_version_id {
            Some(v) if *v == input.version_id => {}
            Some(v) => {
                return Err(self.refuse(format!(
                    "versionId: a claim's token reviews the prompt its claim was given (version {v})"
                )));
            }
            None => return Err(self.refuse("versionId: this claim was given no prompt to review".into())),
        }
        if input.issue_id != self.issue_id && input.issue_id != self.issue_number.to_string() {
            return Err(self.refuse(format!("issueId: a claim's token reviews its own issue (#{})", self.issue_number)));
        }
        input.author_type = Some(AuthorType::Agent);
        input.session_id = Some(self.session_id.clone());
        Ok(())
    }

    fn refuse(&self, message: String) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token is scoped to the claim of issue #{}: {message}", self.issue_number),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(ended: Option<i64>, lease: i64) -> AgentSession {
        AgentSession {
            id: "s1".into(),
            issue_id: "i1".into(),
            agent: "a".into(),
            template_version_id: Some("v1".into()),
            claimed_at: Timestamp::from_millis(0),
            lease_expires_at: Timestamp::from_millis(lease),
            ended_at: ended.map(Timestamp::from_millis),
            outcome: None,
            summary: None,
            tokens: None,
            cost_usd: None,
            duration_ms: None,
        }
    }

    #[test]
    fn a_scoped_token_reaches_only_its_own_claim() {
        let s = Scope::of(&session(None, 1000), 7, Timestamp::from_millis(10)).unwrap();
        let ok = |m: Method, p: &str| s.allows(&m, p);
        assert!(ok(Method::GET, "/api/issues/anything"));
        assert!(!ok(Method::GET, "/api/dispatch/next"));
        assert!(!ok(Method::HEAD, "/api/dispatch/next") && !ok(Method::HEAD, "//api//dispatch/next/"));
        assert!(ok(Method::PATCH, "/api/issues/i1") && ok(Method::PATCH, "/api/issues/7"));
        assert!(!ok(Method::PATCH, "/api/issues/i2"));
        assert!(ok(Method::POST, "/api/issues") && ok(Method::POST, "/api/issues/i9/comments"));
        assert!(ok(Method::POST, "/api/sessions/s1/heartbeat") && !ok(Method::POST, "/api/sessions/s2/heartbeat"));
        assert!(!ok(Method::DELETE, "/api/issues/i1"));
        assert!(!ok(Method::POST, "/api/templates/t/versions/v/promote"));
        assert!(!ok(Method::POST, "/api/labels"));
    }

    #[test]
    fn after_its_claim_a_token_may_only_post_its_review_and_only_for_a_day() {
        for ended in [session(Some(500), 1000), session(None, 500)] {
            let s = Scope::of(&ended, 7, Timestamp::from_millis(600)).expect("within the window");
            assert!(s.ended);
            assert!(s.allows(&Method::POST, "/api/prompt-reviews"));
            assert!(!s.allows(&Method::GET, "/api/issues/i1"));
            assert!(!s.allows(&Method::PATCH, "/api/issues/i1"));
            assert!(Scope::of(&ended, 7, Timestamp::from_millis(500 + REVIEW_WINDOW_MS)).is_none());
        }
    }
}
