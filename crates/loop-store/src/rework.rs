//! Rework (table `rework`): feedback that sends an issue's finished work back, kept until the
//! issue is done again; and what the merge queue reads: approvals and merges on the issue.

use loop_core::actor::ActorKind;
use loop_core::comment::AuthorType;
use loop_core::issue::{Issue, IssuePatch, IssueStatus};
use loop_core::rework::{Merge, NewRework, Rework};
use loop_core::{Actor, Error, Result, Timestamp, id::new_id};

use crate::common::{find_issue_locked, require_issue};
use crate::db::{Db, DbExt};
use crate::dispatch_index::refresh_blocked_by;
use crate::rows::{self, ISSUE_COLUMNS};
use crate::{args, comments, issues};

/// The columns of a rework row.
pub(crate) const REWORK_COLUMNS: &str = "id, issue_id, kind, author, body, path, line, url, created_at, addressed_at";

/// Keeps the feedback and sends a done issue back to `todo`; its approval no longer holds.
pub(crate) async fn add(
    db: &mut impl Db,
    key: String,
    input: NewRework,
    actor: Actor,
    now: Timestamp,
) -> Result<(Rework, Issue)> {
    input.validate()?;
    let issue = locked(db, &key).await?;
    if issue.status == IssueStatus::Canceled {
        return Err(Error::conflict("issue_canceled", format!("#{} is canceled: reopen it first", issue.number)));
    }
    if issue.merged_at.is_some() {
        return Err(Error::conflict(
            "already_merged",
            format!("#{}'s pull request is merged: open a new issue for more changes", issue.number),
        ));
    }
    let item = Rework {
        id: new_id(),
        issue_id: issue.id.clone(),
        kind: input.kind,
        author: input.author.map(|a| a.to_string()),
        body: input.body.to_string(),
        path: input.path.map(|p| p.to_string()),
        line: input.line.map(|l| l as i64),
        url: input.url.map(|u| u.to_string()),
        created_at: now,
        addressed_at: None,
    };
    db.run(
        &format!("INSERT INTO rework ({REWORK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"),
        &args![
            &item.id,
            &item.issue_id,
            item.kind.as_str(),
            &item.author,
            &item.body,
            &item.path,
            item.line,
            &item.url,
            now.millis()
        ],
    )
    .await?;
    db.run("UPDATE issues SET approved_at = NULL WHERE id = ?", &args![&issue.id]).await?;
    let mut where_ = item.path.clone().unwrap_or_default();
    if let Some(line) = item.line {
        where_.push_str(&format!(":{line}"));
    }
    let about = if where_.is_empty() { String::new() } else { format!(" on `{where_}`") };
    let from = item.author.as_deref().map(|a| format!(" from {a}")).unwrap_or_default();
    let body = format!("**Rework** ({}{from}){about}:\n\n{}", item.kind, item.body);
    note(db, &issue.id, &actor, body, now).await?;
    let issue = if issue.status == IssueStatus::Done {
        let patch = IssuePatch { status: Some(IssueStatus::Todo), ..IssuePatch::default() };
        issues::update(db, issue.id.clone(), patch, actor, now).await?
    } else {
        require_issue(db, &issue.id).await?
    };
    Ok((item, issue))
}

/// Pending rework of an issue, oldest first.
pub(crate) async fn pending(db: &mut impl Db, key: String) -> Result<Vec<Rework>> {
    let issue = require_issue(db, &key).await?;
    let sql = "SELECT * FROM rework WHERE issue_id = ? AND addressed_at IS NULL ORDER BY created_at, id";
    db.each(sql, &args![&issue.id], rows::rework).await
}

/// The issue is done again: the rework it had before its last claim is addressed (feedback
/// that came while that claim ran is still pending).
pub(crate) async fn address(db: &mut impl Db, issue_id: &str, now: Timestamp) -> Result<()> {
    db.run(
        "UPDATE rework SET addressed_at = ?1 WHERE issue_id = ?2 AND addressed_at IS NULL AND created_at <= \
         COALESCE((SELECT max(claimed_at) FROM agent_sessions WHERE issue_id = ?2), ?1)",
        &args![now.millis(), issue_id],
    )
    .await
    .map(|_| ())
}

pub(crate) async fn approval(
    db: &mut impl Db,
    key: String,
    approved: bool,
    actor: Actor,
    now: Timestamp,
) -> Result<Issue> {
    let issue = locked(db, &key).await?;
    let at = approved.then_some(now.millis());
    db.run("UPDATE issues SET approved_at = ?, updated_at = ? WHERE id = ?", &args![at, now.millis(), &issue.id])
        .await?;
    let body = if approved { "Approved for landing." } else { "Approval withdrawn." };
    note(db, &issue.id, &actor, body.to_owned(), now).await?;
    require_issue(db, &issue.id).await
}

/// Records a merge once: done if the issue was open, `mergedAt` set, its rework addressed, and
/// what waited for the merge freed.
pub(crate) async fn merge(db: &mut impl Db, key: String, merge: Merge, actor: Actor, now: Timestamp) -> Result<Issue> {
    let issue = locked(db, &key).await?;
    if issue.merged_at.is_some() {
        return Ok(issue);
    }
    if !issue.status.is_terminal() {
        let patch = IssuePatch { status: Some(IssueStatus::Done), ..IssuePatch::default() };
        issues::update(db, issue.id.clone(), patch, actor.clone(), now).await?;
    }
    db.run(
        "UPDATE issues SET merged_at = ?, updated_at = ? WHERE id = ?",
        &args![now.millis(), now.millis(), &issue.id],
    )
    .await?;
    db.run(
        "UPDATE rework SET addressed_at = ? WHERE issue_id = ? AND addressed_at IS NULL",
        &args![now.millis(), &issue.id],
    )
    .await?;
    refresh_blocked_by(db, &issue.id).await?;
    let mut body = "**Merged**".to_owned();
    if let Some(sha) = &merge.sha {
        body.push_str(&format!(" as `{}`", sha.as_str()));
    }
    if let Some(url) = &merge.url {
        body.push_str(&format!(": {}", url.as_str()));
    }
    note(db, &issue.id, &actor, body, now).await?;
    require_issue(db, &issue.id).await
}

/// Done issues approved and not merged, oldest approval first.
pub(crate) async fn queue(db: &mut impl Db, project_id: Option<String>) -> Result<Vec<Issue>> {
    let base = format!(
        "SELECT {ISSUE_COLUMNS} FROM issues WHERE status = 'done' AND approved_at IS NOT NULL \
         AND merged_at IS NULL AND deleted_at IS NULL"
    );
    match project_id {
        Some(p) => {
            db.each(
                &format!("{base} AND project_id = ? ORDER BY approved_at, number LIMIT 100"),
                &args![&p],
                rows::issue,
            )
            .await
        }
        None => db.each(&format!("{base} ORDER BY approved_at, number LIMIT 100"), &[], rows::issue).await,
    }
}

async fn locked(db: &mut impl Db, key: &str) -> Result<Issue> {
    find_issue_locked(db, key, "FOR NO KEY UPDATE").await?.ok_or_else(|| Error::not_found("Issue", key))
}

/// What happened goes in the issue's thread too, under the caller's name.
async fn note(db: &mut impl Db, issue_id: &str, actor: &Actor, body: String, now: Timestamp) -> Result<()> {
    let kind = if actor.kind == ActorKind::Agent { AuthorType::Agent } else { AuthorType::Human };
    comments::note(db, issue_id, (&actor.name, kind), body, actor, now).await
}
