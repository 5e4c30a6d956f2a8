//! Keeping the backlog clean: folding a duplicate into the issue it repeats, and closing what
//! nobody touched for a long time (the server's stale policy, off by default). Snoozing needs
//! nothing here: it is a not-before time, which the sweeper clears when it comes.

use async_trait::async_trait;
use loop_core::issue::{Issue, IssuePatch, IssueStatus};
use loop_core::relation::{NewRelation, RelationType};
use loop_core::store::TriageStore;
use loop_core::{Actor, Error, Result, Timestamp};
use serde_json::json;

use crate::common::require_issue;
use crate::db::Db;
use crate::{Backend, SqlStore, args, comments, issues, relations, rows};

/// How many stale issues one sweep closes; the next sweep takes the rest.
const STALE_BATCH: i64 = 100;

#[async_trait]
impl<B: Backend> TriageStore for SqlStore<B> {
    async fn mark_duplicate(&self, key: &str, of: &str, actor: &Actor) -> Result<Issue> {
        let (key, of, now, actor) = (key.to_owned(), of.to_owned(), self.now(), actor.clone());
        self.write((key, of, actor), move |db, (key, of, actor)| Box::pin(fold(db, key, of, actor, now))).await
    }

    async fn close_stale(&self, untouched_days: u32) -> Result<Vec<Issue>> {
        let now = self.now();
        self.write((), move |db, ()| Box::pin(close_stale(db, untouched_days, now))).await
    }
}

/// Folds `key` into `of`: a `duplicate` relation, a comment on each, the duplicate's signal
/// occurrences counted on the original's signal, and the duplicate closed (canceled).
async fn fold(db: &mut impl Db, key: String, of: String, actor: Actor, now: Timestamp) -> Result<Issue> {
    let dup = require_issue(db, &key).await?;
    let original = require_issue(db, &of).await.map_err(|_| {
        Error::invalid("of", "issue_not_found", format!("issue {of} not found: name the issue this one repeats"))
    })?;
    if dup.id == original.id {
        return Err(Error::invalid("of", "self_duplicate", "an issue cannot be a duplicate of itself"));
    }
    if dup.status.is_terminal() {
        return Err(Error::conflict(
            "already_closed",
            format!("#{} is already {}; reopen it first to fold it into #{}", dup.number, dup.status, original.number),
        ));
    }
    let relation = NewRelation {
        relation_type: RelationType::Duplicate,
        related_issue_id: original.id.clone(),
        until_merged: None,
    };
    relations::create(db, dup.id.clone(), relation, actor.clone(), now).await?;
    let seen = db
        .one(
            "SELECT CAST(COALESCE(SUM(occurrences), 0) AS BIGINT) AS n FROM signals WHERE issue_id = ?",
            &args![&dup.id],
        )
        .await?;
    let seen: i64 = match &seen {
        Some(r) => rows::get(r, "n")?,
        None => 0,
    };
    let counted = if seen > 0 {
        let sql = r#"UPDATE signals SET occurrences = occurrences + ?, last_seen_at = ? WHERE id = (SELECT id FROM signals
             WHERE issue_id = ? ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT 1)"#;
        db.run(sql, &args![seen, now.millis(), &original.id]).await? == 1
    } else {
        false
    };
    let occurrences = if counted { format!(" ({seen} occurrences counted here)") } else { String::new() };
    let say = |body: String| serde_json::from_value(json!({ "body": body })).map_err(Error::internal);
    comments::create(
        db,
        original.id.clone(),
        say(format!("#{} was folded into this issue as a duplicate{occurrences}.", dup.number))?,
        actor.clone(),
        now,
    )
    .await?;
    comments::create(
        db,
        dup.id.clone(),
        say(format!("Duplicate of #{}: closed.", original.number))?,
        actor.clone(),
        now,
    )
    .await?;
    let close = IssuePatch { status: Some(IssueStatus::Canceled), ..IssuePatch::default() };
    issues::update(db, dup.id, close, actor, now).await
}

/// Closes triage and backlog issues untouched for `days`, each with a comment saying so.
async fn close_stale(db: &mut impl Db, days: u32, now: Timestamp) -> Result<Vec<Issue>> {
    let cutoff = now.plus_millis(-(days as i64) * loop_core::dispatch::DAY_MS);
    let sql = "SELECT id FROM issues WHERE status IN ('triage', 'backlog') AND deleted_at IS NULL AND updated_at < ? \
         AND not_before IS NULL ORDER BY updated_at LIMIT ?";
    let actor = Actor::system();
    let mut closed = Vec::new();
    for row in db.all(sql, &args![cutoff.millis(), STALE_BATCH]).await? {
        let id: String = rows::get(&row, "id")?;
        let body = format!(
            "Closed as stale: untouched for {days} days (this server closes triage and backlog issues nobody \
             touches for that long). Move it back to triage or backlog to reopen it."
        );
        let comment = serde_json::from_value(json!({ "body": body })).map_err(Error::internal)?;
        comments::create(db, id.clone(), comment, actor.clone(), now).await?;
        let close = IssuePatch { status: Some(IssueStatus::Canceled), ..IssuePatch::default() };
        closed.push(issues::update(db, id, close, actor.clone(), now).await?);
    }
    Ok(closed)
}
