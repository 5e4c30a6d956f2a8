//! The changelog: every completed change (a done issue with commits or pull requests), grouped
//! under the hypothesis and signal that caused it, told in plain words.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::issue::{Commit, Issue, PullRequest};

/// One completed change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub number: i64,
    pub title: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub completed_at: Timestamp,
    pub commits: Vec<Commit>,
    pub pull_requests: Vec<PullRequest>,
}

/// An issue of the chain, as the changelog names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Cause {
    pub number: i64,
    pub title: String,
    /// A signal's source (PostHog, Sentry…); a hypothesis's status.
    pub detail: Option<String>,
    /// A hypothesis's outcome: what the data (or a person) said.
    pub outcome: Option<String>,
}

/// The changes one chain produced, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChangeGroup {
    pub signal: Option<Cause>,
    pub hypothesis: Option<Cause>,
    pub changes: Vec<Change>,
    /// The group in one sentence.
    pub summary: String,
}

impl Change {
    /// The change an issue records, if it is done with commits or pull requests.
    pub fn of(issue: &Issue) -> Option<Change> {
        let commits = issue.commits.clone().unwrap_or_default();
        let pull_requests = issue.pull_requests.clone().unwrap_or_default();
        if commits.is_empty() && pull_requests.is_empty() {
            return None;
        }
        Some(Change {
            number: issue.number,
            title: issue.title.clone(),
            completed_at: issue.completed_at?,
            commits,
            pull_requests,
        })
    }
}

impl Cause {
    pub fn signal(issue: &Issue) -> Cause {
        Cause { number: issue.number, title: issue.title.clone(), detail: issue.signal_source.clone(), outcome: None }
    }

    pub fn hypothesis(issue: &Issue) -> Cause {
        let h = issue.hypothesis.as_ref();
        Cause {
            number: issue.number,
            title: h.map_or_else(|| issue.title.clone(), |h| h.statement.to_string()),
            detail: h.map(|h| h.status.to_string()),
            outcome: h.and_then(|h| h.outcome.clone()),
        }
    }
}

impl ChangeGroup {
    pub fn new(signal: Option<Cause>, hypothesis: Option<Cause>, changes: Vec<Change>) -> Self {
        let mut summary = changes.iter().map(|c| format!("{} (#{})", c.title, c.number)).collect::<Vec<_>>().join("; ");
        if let Some(s) = &signal {
            summary.push_str(&format!(" — because of #{} {}", s.number, s.title));
            if let Some(source) = &s.detail {
                summary.push_str(&format!(" ({source})"));
            }
        }
        if let Some(h) = &hypothesis {
            match (&h.detail, &h.outcome) {
                (Some(status), Some(outcome)) => summary.push_str(&format!("; {outcome}, {status}")),
                (Some(status), None) => summary.push_str(&format!("; hypothesis #{} {status}", h.number)),
                _ => {}
            }
        }
        ChangeGroup { signal, hypothesis, changes, summary }
    }
}

/// The changelog as Markdown: one section per chain, then the changes without one.
pub fn markdown(groups: &[ChangeGroup], since: Timestamp) -> String {
    let mut out = format!("# Changelog since {}\n", &since.to_string()[..10]);
    if groups.is_empty() {
        out.push_str("\nNo completed changes with commits or pull requests.\n");
    }
    for g in groups {
        let heading = match (&g.hypothesis, &g.signal) {
            (Some(h), _) => format!("Hypothesis #{}: {}", h.number, h.title),
            (None, Some(s)) => format!("Signal #{}: {}", s.number, s.title),
            (None, None) => "Other changes".to_owned(),
        };
        out.push_str(&format!("\n## {heading}\n\n{}\n\n", g.summary));
        for c in &g.changes {
            let prs: Vec<String> = c.pull_requests.iter().map(|p| format!("PR #{}", p.number)).collect();
            let commits: Vec<String> =
                c.commits.iter().map(|k| k.sha.to_string().chars().take(7).collect::<String>()).collect();
            let refs = prs.into_iter().chain(commits).collect::<Vec<_>>().join(", ");
            out.push_str(&format!("- #{} {} ({}; {})\n", c.number, c.title, &c.completed_at.to_string()[..10], refs));
        }
    }
    out
}
