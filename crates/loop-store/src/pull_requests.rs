//! Deliveries about pull requests Loop opened: each applied once, and only to the issue that
//! has the pull request (by number, or by the branch its runner recorded), so a delivery naming
//! `loop/12-…` on someone else's pull request changes nothing.

use loop_core::actor::ActorKind;
use loop_core::comment::AuthorType;
use loop_core::issue::{Issue, IssuePatch, IssueStatus};
use loop_core::question::NewAnswer;
use loop_core::rework::{FeedbackOutcome, PullRequestEvent, PullRequestFeedback};
use loop_core::signal::Delivery;
use loop_core::text::RequiredBody;
use loop_core::{Actor, Result, Timestamp};

use crate::common::find_issue;
use crate::db::Db;
use crate::{args, comments, issues, questions, rework, rows, signals};

pub(crate) async fn apply(
    db: &mut impl Db,
    f: PullRequestFeedback,
    delivery: Delivery,
    actor: Actor,
    now: Timestamp,
) -> Result<FeedbackOutcome> {
    let not_loops = |why: String| Ok(FeedbackOutcome::NotLoops(why));
    let Some(issue) = find_issue(db, &f.issue_number.to_string()).await? else {
        return not_loops(format!("no Loop issue #{}", f.issue_number));
    };
    if !has_pull_request(&issue, &f) {
        return not_loops(format!("#{} has no pull request #{} (branch {:?})", issue.number, f.pr_number, f.branch));
    }
    if !signals::first_delivery(db, &delivery, now).await? {
        return Ok(FeedbackOutcome::Duplicate);
    }
    let ignored = |why: String| Ok(FeedbackOutcome::Ignored(why));
    let key = issue.id.clone();
    let issue = match f.event {
        PullRequestEvent::Rework(_) | PullRequestEvent::Approved if issue.merged_at.is_some() => {
            return ignored(format!("#{}'s pull request is merged already", issue.number));
        }
        PullRequestEvent::Rework(_) if issue.status == IssueStatus::Canceled => {
            return ignored(format!("#{} is canceled", issue.number));
        }
        PullRequestEvent::Rework(input) => rework::add(db, key, input, actor, now).await?.1,
        PullRequestEvent::Approved => rework::approval(db, key, true, actor, now).await?,
        PullRequestEvent::Merged(merge) => rework::merge(db, key, merge, actor, now).await?,
        PullRequestEvent::Closed { .. } if issue.merged_at.is_some() || issue.status == IssueStatus::Canceled => {
            return ignored(format!("#{} is merged or canceled already", issue.number));
        }
        PullRequestEvent::Closed { url } => {
            let body = format!(
                "**The pull request was closed without merging**{}. Back to triage: decide whether to retry, \
                 change the issue, or cancel it.",
                url.map(|u| format!(" ({u})")).unwrap_or_default()
            );
            comments::note(db, &key, (&actor.name, AuthorType::Agent), body, &actor, now).await?;
            let patch = IssuePatch { status: Some(IssueStatus::Triage), ..IssuePatch::default() };
            issues::update(db, key, patch, actor, now).await?
        }
        PullRequestEvent::Reply { author, body } => {
            let sql = "SELECT id FROM questions WHERE issue_id = ? AND answered_at IS NULL ORDER BY asked_at LIMIT 1";
            let Some(row) = db.one(sql, &args![&key]).await? else {
                return ignored(format!("#{} has no open question to answer", issue.number));
            };
            let Ok(answer) = RequiredBody::new(body) else { return ignored("an empty comment".into()) };
            let id: String = rows::get(&row, "id")?;
            let person = Actor { name: author, kind: ActorKind::Human };
            questions::answer(db, id, NewAnswer { answer }, person, now).await?;
            crate::common::require_issue(db, &key).await?
        }
    };
    Ok(FeedbackOutcome::Applied(Box::new(issue)))
}

fn has_pull_request(issue: &Issue, f: &PullRequestFeedback) -> bool {
    issue.pull_requests.iter().flatten().any(|pr| {
        (f.pr_number != 0 && pr.number == f.pr_number)
            || f.branch.as_deref().is_some_and(|b| pr.extra.get("branch").and_then(|v| v.as_str()) == Some(b))
    })
}
