//! `POST /api/signals/github`: `X-Hub-Signature-256` (HMAC-SHA256 of the raw body).
//!
//! - `ping` → 200.
//! - `issues` labelled with the ready label (default `loop:ready`) → a `task` in `todo` linking
//!   back to the GitHub issue.
//! - `check_run` / `workflow_run` completed with conclusion `failure` → a signal naming the
//!   workflow, branch, commit and run URL (one open signal per workflow and branch); on a branch
//!   of `--ci-fix-branches`, with a fix task under it. Conclusion `success` → the open signal of
//!   that workflow and branch is closed, and its fix task canceled if nobody started it.
//! - `pull_request` closed and merged, naming Loop issues (`loop#42`, `loop-42`) in its body or
//!   branch → the PR is attached to those issues.
//! - reviews, review comments, red checks, merges, closes and comments on the pull requests
//!   Loop's runner opened → their issue (see `github_pulls`);
//! - anything else → 202, ignored.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use loop_core::comment::NewComment;
use loop_core::issue::{IssuePatch, IssueStatus, IssueType, PullRequest};
use loop_core::rework::FeedbackOutcome;
use loop_core::signal::{Delivery, FollowUp, NewSignal, Severity, fingerprint, truncate};
use serde_json::{Map, Value, json};

use super::{actor, body_digest, github_pulls, header, ignored, json_body, secret, text, verify_hmac};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::RawBody;
use crate::routes::signals::ingested;

/// Receive a GitHub webhook delivery (authenticated by `X-Hub-Signature-256`, not Bearer).
#[utoipa::path(post, path = "/api/signals/github", tag = "signals", security(()),
    request_body(content = Object, description = "A GitHub webhook payload"),
    responses((status = 201), (status = 200), (status = 202, description = "Ignored event"),
        (status = 401, description = "Bad or missing signature"), (status = 404, description = "Not configured"),
        (status = 422, description = "A handled event without what it needs (an issues.labeled without its issue)")))]
pub async fn receive(State(s): State<AppState>, headers: HeaderMap, RawBody(body): RawBody) -> ApiResult<Response> {
    if let Some(secret) = secret(&s, "GitHub", s.config.webhooks.github.as_ref(), "LOOP_GITHUB_WEBHOOK_SECRET")? {
        let sig = header(&headers, "x-hub-signature-256").and_then(|h| h.strip_prefix("sha256="));
        verify_hmac(secret, &body, sig, "X-Hub-Signature-256")?;
    }
    let payload = json_body(&headers, &body)?;
    let event = header(&headers, "x-github-event").unwrap_or("unknown").to_owned();
    // Keyed by the signed body, not by `X-GitHub-Delivery`: the header is not signed, so a captured
    // body re-sent under a new delivery id must not be processed again. Two GitHub events never
    // have the same body (each carries its ids and timestamps), and GitHub's own redeliveries
    // repeat the body.
    let delivery = Delivery { provider: "github".into(), id: body_digest(&body) };
    let action = text(&payload, &["action"]).unwrap_or_default();
    let repo = text(&payload, &["repository", "full_name"]).unwrap_or_else(|| "unknown".into());

    // Loop's own pull requests first: reviews, checks, merges and replies on them go to the
    // issue they were opened for. Anything else falls through to the signals below.
    let mut not_loops = None;
    if let Some(feedback) = github_pulls::feedback(&event, &action, &payload) {
        match s.store.pull_request_feedback(feedback, delivery.clone(), &actor("github")).await? {
            FeedbackOutcome::Duplicate => return Ok(axum::Json(json!({ "duplicate": true })).into_response()),
            FeedbackOutcome::Ignored(why) => return Ok(ignored(why)),
            FeedbackOutcome::Applied(issue) => {
                return Ok((StatusCode::OK, axum::Json(json!({ "data": { "issue": issue } }))).into_response());
            }
            FeedbackOutcome::NotLoops(why) => not_loops = Some(why),
        }
    }
    let signal = match (event.as_str(), action.as_str()) {
        ("ping", _) => return Ok(axum::Json(json!({ "ok": true, "zen": payload.get("zen") })).into_response()),
        ("issues", "labeled") => {
            let label = text(&payload, &["label", "name"]).unwrap_or_default();
            if !label.eq_ignore_ascii_case(&s.config.github_ready_label) {
                return Ok(ignored(format!("issue labelled {label:?}, not {:?}", s.config.github_ready_label)));
            }
            if !payload["issue"]["number"].is_u64() {
                let rule = "is required: an issues.labeled delivery names the GitHub issue it labels";
                return Err(loop_core::Error::invalid("issue.number", "required", rule).into());
            }
            ready_issue(&payload, &repo)
        }
        ("check_run" | "workflow_run", "completed") => {
            let run = &payload[event.as_str()];
            match text(run, &["conclusion"]).as_deref() {
                Some("failure") => {}
                Some("success") => return ci_green(&s, &event, run, &repo).await,
                _ => return Ok(ignored(format!("{event} completed without failing"))),
            }
            let mut signal = ci_failure(&event, run, &repo);
            if s.config.auto_triage {
                signal.status = IssueStatus::Todo;
            }
            let branch = signal.payload["branch"].as_str().unwrap_or_default().to_owned();
            if s.config.ci_fix_branches.contains(&branch) {
                signal.follow_up = Some(fix_task(&signal));
            }
            signal
        }
        ("pull_request", "closed") if payload["pull_request"]["merged"] == true => {
            return merged_pull_request(&s, &payload, delivery).await;
        }
        _ => {
            let why = not_loops.unwrap_or_else(|| format!("GitHub event {event}{} is not handled", suffix(&action)));
            return Ok(ignored(why));
        }
    };
    Ok(ingested(s.store.ingest_signal(signal, Some(delivery), None, &actor("github")).await?))
}

fn suffix(action: &str) -> String {
    if action.is_empty() { String::new() } else { format!(".{action}") }
}

/// A GitHub issue marked ready becomes a task in todo.
fn ready_issue(payload: &Value, repo: &str) -> NewSignal {
    let issue = &payload["issue"];
    let number = text(issue, &["number"]).unwrap_or_default();
    let url = text(issue, &["html_url"]).unwrap_or_default();
    let title = text(issue, &["title"]).unwrap_or_else(|| format!("GitHub issue {repo}#{number}"));
    let body = text(issue, &["body"]).unwrap_or_default();
    let description = format!("{body}\n\n---\nFrom GitHub issue [{repo}#{number}]({url}).").trim().to_owned();
    NewSignal {
        issue_type: IssueType::Task,
        status: IssueStatus::Todo,
        source: "github".into(),
        source_id: Some(format!("{repo}#{number}")),
        signal_type: "issue_ready".into(),
        severity: Severity::Medium,
        payload: json!({ "repository": repo, "number": issue["number"], "url": url, "title": title, "labels": issue["labels"] }),
        title: truncate(&title, 500),
        description: Some(truncate(&description, 100_000)),
        project_id: None,
        fingerprint: fingerprint("github", "issue_ready", Some(&format!("{repo}#{number}")), &title),
        follow_up: None,
    }
}

/// A failed check or workflow run becomes a signal; one open signal per workflow and branch.
fn ci_failure(event: &str, run: &Value, repo: &str) -> NewSignal {
    let workflow = text(run, &["name"]).unwrap_or_else(|| "CI".into());
    let branch = text(run, &["head_branch"]).or_else(|| text(run, &["check_suite", "head_branch"])).unwrap_or_default();
    let sha = text(run, &["head_sha"]).unwrap_or_default();
    let url = text(run, &["html_url"]).unwrap_or_default();
    let short: String = sha.chars().take(7).collect();
    let title = format!("CI failed: {workflow} on {branch} ({short}) in {repo}");
    let mut payload = Map::new();
    for (k, v) in [("repository", repo), ("workflow", &workflow), ("branch", &branch), ("commit", &sha), ("url", &url)]
    {
        payload.insert(k.into(), json!(v));
    }
    payload.insert("event".into(), json!(event));
    payload.insert("conclusion".into(), json!("failure"));
    NewSignal {
        issue_type: IssueType::Signal,
        status: IssueStatus::Triage,
        source: "github".into(),
        source_id: text(run, &["id"]),
        signal_type: "ci_failure".into(),
        severity: Severity::High,
        description: Some(format!("The **{workflow}** run failed on `{branch}` at `{sha}`.\n\nRun: {url}")),
        payload: Value::Object(payload),
        title: truncate(&title, 500),
        project_id: None,
        fingerprint: fingerprint("github", "ci_failure", Some(&format!("{repo}/{workflow}@{branch}")), &title),
        follow_up: None,
    }
}

/// The task a red run on a watched branch opens: make it green again.
fn fix_task(signal: &NewSignal) -> FollowUp {
    let p = &signal.payload;
    let field = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
    let (workflow, branch, sha, url) = (field("workflow"), field("branch"), field("commit"), field("url"));
    FollowUp {
        title: truncate(&format!("Fix CI: {workflow} fails on {branch}"), 500),
        description: format!(
            "The **{workflow}** run failed on `{branch}` at commit `{sha}` in {}.\n\nRun: {url}\n\n\
             Find why from the run's log, fix it, and make the workflow pass again. The CI signal \
             closes by itself when a run of {workflow} on {branch} is green.",
            field("repository")
        ),
    }
}

/// A green run closes the open signal its red runs opened, and cancels its fix task if nobody
/// has started it. Closing what is already closed does nothing, so a redelivery is harmless.
async fn ci_green(s: &AppState, event: &str, run: &Value, repo: &str) -> ApiResult<Response> {
    let red = ci_failure(event, run, repo);
    let Some(signal) = s.store.open_signal_issue(&red.fingerprint).await? else {
        return Ok(ignored(format!("{event} succeeded; no open CI signal for it")));
    };
    let url = text(run, &["html_url"]).unwrap_or_default();
    let who = actor("github");
    let detail = s.store.issue_detail(&signal.id).await?;
    for child in detail
        .children
        .iter()
        .filter(|c| matches!(c.status, IssueStatus::Triage | IssueStatus::Backlog | IssueStatus::Todo))
    {
        s.store
            .create_comment(
                &child.id,
                note(&format!("Canceled: CI is green again ({url}) before anyone started this.")),
                &who,
            )
            .await?;
        s.store.update_issue(&child.id, status(IssueStatus::Canceled), &who).await?;
    }
    s.store.create_comment(&signal.id, note(&format!("CI is green again: {url}")), &who).await?;
    let closed = s.store.update_issue(&signal.id, status(IssueStatus::Done), &who).await?;
    Ok((StatusCode::OK, axum::Json(json!({ "data": { "closed": closed } }))).into_response())
}

/// A comment by the GitHub integration.
fn note(body: &str) -> NewComment {
    serde_json::from_value(json!({ "body": body, "authorName": "github", "authorType": "agent" }))
        .expect("a valid comment")
}

fn status(to: IssueStatus) -> IssuePatch {
    IssuePatch { status: Some(to), ..IssuePatch::default() }
}

async fn merged_pull_request(s: &AppState, payload: &Value, delivery: Delivery) -> ApiResult<Response> {
    let pr = &payload["pull_request"];
    let text_to_scan = format!(
        "{} {} {}",
        text(pr, &["body"]).unwrap_or_default(),
        text(pr, &["title"]).unwrap_or_default(),
        text(pr, &["head", "ref"]).unwrap_or_default()
    );
    let numbers = loop_references(&text_to_scan);
    if numbers.is_empty() {
        return Ok(ignored("merged pull request names no Loop issue (loop#42 or loop-42)".into()));
    }
    let mut extra = Map::new();
    extra.insert("state".into(), json!("merged"));
    extra.insert("merged".into(), json!(true));
    extra.insert("mergedAt".into(), pr["merged_at"].clone());
    let attached = PullRequest {
        number: pr["number"].as_u64().unwrap_or_default(),
        title: text(pr, &["title"]),
        url: text(pr, &["html_url"]),
        extra,
    };
    match s.store.attach_pull_request(&numbers, attached, delivery, &actor("github")).await? {
        None => Ok(axum::Json(json!({ "duplicate": true })).into_response()),
        Some(issues) if issues.is_empty() => Ok(ignored(format!("no live Loop issue among {numbers:?}"))),
        Some(issues) => Ok((StatusCode::OK, axum::Json(json!({ "data": { "attachedTo": issues } }))).into_response()),
    }
}

/// Issue numbers written as `loop#42` or `loop-42` (any case).
pub fn loop_references(text: &str) -> Vec<i64> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    for (i, _) in lower.match_indices("loop") {
        let rest = &lower[i + 4..];
        let Some(digits) = rest.strip_prefix('#').or_else(|| rest.strip_prefix('-')) else { continue };
        let n: String = digits.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = n.parse::<i64>()
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn loop_references_are_found_in_bodies_and_branches() {
        assert_eq!(super::loop_references("Fixes loop#42 and Loop-7; see loop-42"), vec![42, 7]);
        assert!(super::loop_references("looped loops #3").is_empty());
    }
}
