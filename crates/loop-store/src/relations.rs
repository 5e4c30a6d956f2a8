//! Relations between issues; each change is recorded in the history of both issues.
//!
//! A new block must not close a loop (issues waiting on each other for ever). With one writer
//! (SQLite) the check below sees every committed block. On PostgreSQL, where blocks are added
//! at once on several nodes, a new edge `x` blocks `y` locks both ends: `y` for update, `x`
//! shared. Any other edge out of `y` or into `x` locks them the other way, so while this
//! transaction runs, nothing can add a way out of `y` or into `x`; and the statements after
//! the locks see every edge committed before them. Then:
//!
//! - when `y` blocks nothing, or nothing blocks `x` (a new issue in a chain, the common case),
//!   no path leads from `y` back to `x`, and none can appear before this commits: no loop;
//! - otherwise the edge joins two chains: such additions take one advisory lock in turn and
//!   walk the graph. Two of them cannot miss each other, and one of them cannot miss a
//!   simple one: a loop through both needs a path between them, which runs through the ends
//!   the simple one holds.
//!
//! (SERIALIZABLE isolation was tried instead: its predicate locks on the relation indexes,
//! which every new edge appends to, made concurrent creators abort each other past any retry
//! budget.)

use async_trait::async_trait;
use loop_core::event::NewEvent;
use loop_core::relation::{self, Edge, EdgeKind, NewRelation, Relation};
use loop_core::store::RelationStore;
use loop_core::{Actor, Error, Result, Timestamp, id::new_id};

use crate::common::{find_issue, record, require_issue};
use crate::db::{Db, DbExt, Dialect, unique_as};
use crate::dispatch_index::refresh_issue;
use crate::rows::BLOCKS_ALREADY;
use crate::{Backend, SqlStore, args, rows};

#[async_trait]
impl<B: Backend> RelationStore for SqlStore<B> {
    async fn create_relation(&self, issue_key: &str, input: NewRelation, actor: &Actor) -> Result<Relation> {
        let (key, now, actor) = (issue_key.to_owned(), self.now(), actor.clone());
        self.write((key, input, actor), move |db, (key, input, actor)| Box::pin(create(db, key, input, actor, now)))
            .await
    }

    async fn delete_relation(&self, id: &str, actor: &Actor) -> Result<()> {
        let (id, now, actor) = (id.to_owned(), self.now(), actor.clone());
        self.write((id, actor), move |db, (id, actor)| Box::pin(delete(db, id, actor, now))).await
    }
}

pub(crate) async fn create(
    db: &mut impl Db,
    key: String,
    mut input: NewRelation,
    actor: Actor,
    now: Timestamp,
) -> Result<Relation> {
    let issue = require_issue(db, &key).await?;
    let related = find_issue(db, &input.related_issue_id).await?;
    if let Some(r) = &related {
        input.related_issue_id = r.id.clone();
    }
    let edge = relation::check_new_relation(&issue.id, &input, related.is_some())?;
    // The blocked issue's project is share-locked before the issues (projects before issues,
    // see `dispatch_index`): its dispatch columns are recomputed below.
    let to = if edge.to == issue.id { Some(&issue) } else { related.as_ref() };
    let mut project_waits_for_merge = false;
    if let Some(pid) = to.and_then(|i| i.project_id.as_deref()) {
        let sql = "SELECT wait_for_merge FROM projects WHERE id = ? AND deleted_at IS NULL FOR SHARE";
        let row = db.one(sql, &args![pid]).await?;
        project_waits_for_merge = row.map(|r| rows::get::<i64>(&r, "wait_for_merge")).transpose()? == Some(1);
    }
    let (issue_live, related_live) = lock_ends(db, &edge, &issue.id).await?;
    if !issue_live {
        return Err(Error::not_found("Issue", &key));
    }
    if !related_live {
        relation::check_new_relation(&issue.id, &input, false)?;
    }
    if let (EdgeKind::Block, Some(related)) = (&edge.kind, &related)
        && closes_a_loop(db, &edge).await?
    {
        return Err(relation::blocking_loop(&edge, &issue, related));
    }
    let rel = Relation {
        id: new_id(),
        relation_type: input.relation_type,
        issue_id: issue.id.clone(),
        related_issue_id: input.related_issue_id.clone(),
        until_merged: edge.kind == EdgeKind::Block && input.until_merged.unwrap_or(project_waits_for_merge),
        created_at: now,
    };
    db.run(
        "INSERT INTO issue_relations (id, type, issue_id, related_issue_id, edge_kind, edge_from, edge_to, until_merged, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &args![
            &rel.id,
            rel.relation_type.as_str(),
            &rel.issue_id,
            &rel.related_issue_id,
            edge.kind.as_str(),
            &edge.from,
            &edge.to,
            i64::from(rel.until_merged),
            now.millis(),
        ],
    )
    .await
    .map_err(|e| {
        unique_as(e, || {
            Error::conflict(
                "duplicate_relation",
                "these issues already have this relation (A blocks B and B blocked_by A are the same relation)",
            )
        })
    })?;
    refresh_issue(db, &edge.to).await?;
    let events = [NewEvent::relation(&rel.issue_id, true, &rel), NewEvent::relation(&rel.related_issue_id, true, &rel)];
    record(db, &events, &actor, now).await?;
    Ok(rel)
}

async fn delete(db: &mut impl Db, id: String, actor: Actor, now: Timestamp) -> Result<()> {
    let rel = db.first("DELETE FROM issue_relations WHERE id = ? RETURNING *", &args![&id], rows::relation).await?;
    let rel = rel.ok_or_else(|| Error::not_found("Relation", &id))?;
    refresh_issue(db, &Edge::of(rel.relation_type, &rel.issue_id, &rel.related_issue_id).to).await?;
    let events =
        [NewEvent::relation(&rel.issue_id, false, &rel), NewEvent::relation(&rel.related_issue_id, false, &rel)];
    record(db, &events, &actor, now).await
}

/// Whether the new block `edge` would close a loop (see the module's comment for why this is
/// exact under concurrent writers). The caller holds both ends' locks.
async fn closes_a_loop(db: &mut impl Db, edge: &Edge) -> Result<bool> {
    let joins_chains = "SELECT 1 AS hit WHERE EXISTS (SELECT 1 FROM issue_relations WHERE edge_kind = 'block' AND edge_from = ?2) \
         AND EXISTS (SELECT 1 FROM issue_relations WHERE edge_kind = 'block' AND edge_to = ?1)";
    if db.one(joins_chains, &args![&edge.from, &edge.to]).await?.is_none() {
        return Ok(false);
    }
    if db.dialect() == Dialect::Postgres {
        db.run("SELECT pg_advisory_xact_lock(hashtext('loop: blocks joining chains'))", &[]).await?;
    }
    Ok(db.one(BLOCKS_ALREADY, &args![&edge.from, &edge.to]).await?.is_some())
}

/// Locks both ends of an edge in id order (the blocked end for update: its dispatch columns
/// change; the other shared: it must stay live), and says whether each is still live.
async fn lock_ends(db: &mut impl Db, edge: &Edge, issue_id: &str) -> Result<(bool, bool)> {
    let mut ends = [&edge.from, &edge.to];
    ends.sort();
    let (mut issue_live, mut other_live) = (false, false);
    for id in ends {
        let lock = if *id == edge.to { "FOR NO KEY UPDATE" } else { "FOR SHARE" };
        let live = crate::common::live(db, "issues", id, lock).await?;
        if id == issue_id {
            issue_live = live;
        } else {
            other_live = live;
        }
    }
    Ok((issue_live, other_live))
}
