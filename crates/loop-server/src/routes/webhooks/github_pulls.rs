//! GitHub deliveries about the pull requests Loop's runner opened (branch `loop/<number>-…`,
//! body trailer `Loop-Issue: #<number>`), read into what they ask of the issue:
//!
//! - `pull_request_review` submitted: `changes_requested` → rework (the review's text);
//!   `approved` → approved for the merge queue;
//! - `pull_request_review_comment` created → rework (file, line, text);
//! - `check_run` / `workflow_run` completed with `failure` on the branch → rework (the check's
//!   name and the tail of its output);
//! - `pull_request` closed: merged → the merge is recorded (done); not merged → back to triage;
//! - `issue_comment` created on the pull request by a person → the answer to the issue's open
//!   question.

use loop_core::rework::{Merge, NewRework, PullRequestEvent, PullRequestFeedback, ReworkKind};
use loop_core::signal::truncate;
use loop_core::text::{RequiredBody, Short};
use serde_json::Value;

use super::text;

/// What the delivery asks of a Loop issue, if it is about one of Loop's pull requests.
pub fn feedback(event: &str, action: &str, payload: &Value) -> Option<PullRequestFeedback> {
    let pr = &payload["pull_request"];
    match (event, action) {
        ("pull_request_review", "submitted") => {
            let review = &payload["review"];
            let event = match text(review, &["state"])?.to_ascii_lowercase().as_str() {
                "changes_requested" => PullRequestEvent::Rework(rework(
                    ReworkKind::Review,
                    text(review, &["body"]).filter(|b| !b.trim().is_empty()).unwrap_or("Changes requested.".into()),
                    text(review, &["user", "login"]),
                    text(review, &["html_url"]),
                )),
                "approved" => PullRequestEvent::Approved,
                _ => return None,
            };
            of_pull_request(pr, event)
        }
        ("pull_request_review_comment", "created") => {
            let c = &payload["comment"];
            let mut item =
                rework(ReworkKind::Comment, text(c, &["body"])?, text(c, &["user", "login"]), text(c, &["html_url"]));
            item.path = text(c, &["path"]).and_then(|p| Short::new(p).ok());
            item.line = c["line"].as_u64().or(c["original_line"].as_u64()).filter(|_| item.path.is_some());
            of_pull_request(pr, PullRequestEvent::Rework(item))
        }
        ("check_run" | "workflow_run", "completed") => {
            let run = &payload[event];
            if text(run, &["conclusion"]).as_deref() != Some("failure") {
                return None;
            }
            let branch = text(run, &["head_branch"]).or_else(|| text(run, &["check_suite", "head_branch"]))?;
            let name = text(run, &["name"]).unwrap_or_else(|| "CI".into());
            let item = rework(ReworkKind::Check, check_log(&name, run), Some(name), text(run, &["html_url"]));
            Some(PullRequestFeedback {
                issue_number: issue_of_branch(&branch)?,
                pr_number: run["pull_requests"][0]["number"].as_u64().unwrap_or(0),
                branch: Some(branch),
                event: PullRequestEvent::Rework(item),
            })
        }
        ("pull_request", "closed") => {
            let url = text(pr, &["html_url"]);
            let event = if pr["merged"] == true {
                let sha = text(pr, &["merge_commit_sha"]).and_then(|s| Short::new(s).ok());
                PullRequestEvent::Merged(Merge { sha, url: url.and_then(|u| Short::new(u).ok()) })
            } else {
                PullRequestEvent::Closed { url }
            };
            of_pull_request(pr, event)
        }
        ("issue_comment", "created") if payload["issue"]["pull_request"].is_object() => {
            let (issue, c) = (&payload["issue"], &payload["comment"]);
            if text(c, &["user", "type"]).as_deref() == Some("Bot") {
                return None;
            }
            let number = trailer(&text(issue, &["body"]).unwrap_or_default())
                .or_else(|| title_number(&text(issue, &["title"]).unwrap_or_default()))?;
            Some(PullRequestFeedback {
                issue_number: number,
                pr_number: issue["number"].as_u64()?,
                branch: None,
                event: PullRequestEvent::Reply {
                    author: text(c, &["user", "login"]).unwrap_or_else(|| "github".into()),
                    body: text(c, &["body"])?,
                },
            })
        }
        _ => None,
    }
}

/// The feedback for the Loop issue a pull request's branch (or body) names.
fn of_pull_request(pr: &Value, event: PullRequestEvent) -> Option<PullRequestFeedback> {
    let branch = text(pr, &["head", "ref"]);
    let number = branch.as_deref().and_then(issue_of_branch).or_else(|| trailer(&text(pr, &["body"])?))?;
    Some(PullRequestFeedback { issue_number: number, pr_number: pr["number"].as_u64().unwrap_or(0), branch, event })
}

fn rework(kind: ReworkKind, body: String, author: Option<String>, url: Option<String>) -> NewRework {
    let short = |s: Option<String>| s.and_then(|s| Short::new(s).ok());
    NewRework {
        kind,
        body: RequiredBody::new(truncate(&body, 100_000)).unwrap_or_else(|_| RequiredBody::new("(no text)").unwrap()),
        author: short(author),
        path: None,
        line: None,
        url: short(url),
    }
}

/// A failed check's name and what it reported: its title, summary and the last 40 lines of its
/// text (GitHub puts the log excerpt there; the full log needs the API).
fn check_log(name: &str, run: &Value) -> String {
    let out = &run["output"];
    let mut body = format!("**{name}** failed");
    if let Some(title) = text(out, &["title"]) {
        body.push_str(&format!(": {title}"));
    }
    if let Some(summary) = text(out, &["summary"]) {
        body.push_str(&format!("\n\n{summary}"));
    }
    if let Some(log) = text(out, &["text"]) {
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        body.push_str(&format!("\n\n```\n{tail}\n```"));
    }
    body
}

/// `loop/42-fix-the-login` or `loop/42` → 42.
pub fn issue_of_branch(branch: &str) -> Option<i64> {
    let rest = branch.strip_prefix("loop/")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = &rest[digits.len()..];
    (after.is_empty() || after.starts_with('-')).then(|| digits.parse().ok()).flatten()
}

/// The `Loop-Issue: #42` trailer the runner writes in its pull requests' bodies.
fn trailer(body: &str) -> Option<i64> {
    body.lines().find_map(|l| l.trim().strip_prefix("Loop-Issue: #")?.trim().parse().ok())
}

/// `#42: title`, the runner's pull request titles.
fn title_number(title: &str) -> Option<i64> {
    title.strip_prefix('#')?.split(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loop_branches_name_their_issue() {
        assert_eq!(issue_of_branch("loop/42-fix-the-login"), Some(42));
        assert_eq!(issue_of_branch("loop/7"), Some(7));
        assert_eq!(issue_of_branch("loop/7x"), None);
        assert_eq!(issue_of_branch("feature/loop/7"), None);
        assert_eq!(trailer("Did it.\n\nLoop-Issue: #12\nLoop-Session: s"), Some(12));
        assert_eq!(title_number("#12: Fix it"), Some(12));
    }

    #[test]
    fn a_review_comment_keeps_its_file_and_line() {
        let payload = json!({
            "pull_request": {"number": 5, "head": {"ref": "loop/3-x"}},
            "comment": {"body": "Use the config", "path": "src/a.rs", "line": 9, "user": {"login": "dana"}},
        });
        let f = feedback("pull_request_review_comment", "created", &payload).unwrap();
        assert_eq!((f.issue_number, f.pr_number), (3, 5));
        let PullRequestEvent::Rework(r) = f.event else { panic!("not rework") };
        assert_eq!((r.path.unwrap().as_str(), r.line, r.author.unwrap().as_str()), ("src/a.rs", Some(9), "dana"));
        // A branch that is not Loop's is not Loop's business.
        let other = json!({"pull_request": {"number": 5, "head": {"ref": "main"}}, "comment": {"body": "x"}});
        assert!(feedback("pull_request_review_comment", "created", &other).is_none());
    }
}
