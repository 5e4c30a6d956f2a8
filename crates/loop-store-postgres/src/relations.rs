//! Relations between issues; each change is recorded in the history of both issues.

use async_trait::async_trait;
use loop_core::event::NewEvent;
use loop_core::relation::{self, Edge, EdgeKind, NewRelation, Relation};
use loop_core::store::RelationStore;
use loop_core::{Actor, Error, Result, id::new_id};
use loop_store_rows::BLOCKS_ALREADY;
use sqlx::PgConnection;

use crate::dispatch_index::refresh_issue;
use crate::issues::share_lock;
use crate::rows::{self, find_issue, record, require_issue};
use crate::sql::pg;
use crate::{PgStore, db, is_unique_violation};

/// The first key of the advisory lock that orders new blocks (see `create_relation`): "Loop"
/// plus one, beside the signals' fingerprint locks ("Loop").
const NEW_BLOCKS: i32 = 0x4C6F_6F71;

#[async_trait]
impl RelationStore for PgStore {
    async fn create_relation(&self, issue_key: &str, mut input: NewRelation, actor: &Actor) -> Result<Relation> {
        let now = self.now();
        let mut tx = self.pool.begin().await.map_err(db)?;
        let issue = require_issue(&mut tx, issue_key).await?;
        let related = find_issue(&mut tx, &input.related_issue_id).await?;
        if let Some(r) = &related {
            input.related_issue_id = r.id.clone();
        }
        let edge = relation::check_new_relation(&issue.id, &input, related.is_some())?;
        if edge.kind == EdgeKind::Block {
            // New blocks are added one at a time, so each loop check sees the blocks added
            // before it: two blocks that share no issue are not ordered by the row locks below,
            // and four of them at once could otherwise close a ring. Taken before any row lock,
            // so waiting here holds nothing another transaction needs.
            sqlx::query("SELECT pg_advisory_xact_lock($1, 0)").bind(NEW_BLOCKS).execute(&mut *tx).await.map_err(db)?;
        }
        // `refresh_issue` share-locks the project of the `to` end; taken now, before the issue
        // locks (projects before issues, see `dispatch_index`).
        let to = if edge.to == issue.id { Some(&issue) } else { related.as_ref() };
        if let Some(pid) = to.and_then(|i| i.project_id.as_deref()) {
            share_lock(&mut tx, "projects", pid).await?;
        }
        // Both ends must still be live once locked: a blocker deleted or closed meanwhile would
        // otherwise be counted in `open_blockers` by a computation its own refresh never saw.
        let (issue_live, related_live) = lock_ends(&mut tx, &edge, &issue.id).await?;
        if !issue_live {
            return Err(Error::not_found("Issue", issue_key));
        }
        if !related_live {
            relation::check_new_relation(&issue.id, &input, false)?;
        }
        if let (EdgeKind::Block, Some(related)) = (&edge.kind, &related) {
            let closes = sqlx::query(pg(BLOCKS_ALREADY)).bind(&edge.from).bind(&edge.to).fetch_optional(&mut *tx).await;
            if closes.map_err(db)?.is_some() {
                return Err(relation::blocking_loop(&edge, &issue, related));
            }
        }
        let rel = Relation {
            id: new_id(),
            relation_type: input.relation_type,
            issue_id: issue.id.clone(),
            related_issue_id: input.related_issue_id.clone(),
            created_at: now,
        };
        // The unique index on the edge decides between concurrent duplicates too.
        sqlx::query(pg("INSERT INTO issue_relations (id, type, issue_id, related_issue_id, edge_kind, edge_from, edge_to, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)"))
        .bind(&rel.id)
        .bind(rel.relation_type.as_str())
        .bind(&rel.issue_id)
        .bind(&rel.related_issue_id)
        .bind(edge.kind.as_str())
        .bind(&edge.from)
        .bind(&edge.to)
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict("duplicate_relation", "these issues already have this relation (A blocks B and B blocked_by A are the same relation)")
            } else {
                db(e)
            }
        })?;
        refresh_issue(&mut tx, &edge.to).await?;
        let events =
            [NewEvent::relation(&rel.issue_id, true, &rel), NewEvent::relation(&rel.related_issue_id, true, &rel)];
        record(&mut tx, &events, actor, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(rel)
    }

    async fn delete_relation(&self, id: &str, actor: &Actor) -> Result<()> {
        let now = self.now();
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Read and delete in one statement: of two concurrent deletes, one finds nothing.
        let rel = rows::one(&mut tx, "DELETE FROM issue_relations WHERE id = ? RETURNING *", id, rows::relation)
            .await?
            .ok_or_else(|| Error::not_found("Relation", id))?;
        refresh_issue(&mut tx, &Edge::of(rel.relation_type, &rel.issue_id, &rel.related_issue_id).to).await?;
        let events =
            [NewEvent::relation(&rel.issue_id, false, &rel), NewEvent::relation(&rel.related_issue_id, false, &rel)];
        record(&mut tx, &events, actor, now).await?;
        tx.commit().await.map_err(db)
    }
}

/// Locks both ends of an edge, in id order (so two relations between the same issues cannot
/// deadlock): the `to` end for update (its dispatch columns are recomputed), the `from` end
/// shared (it cannot be closed or deleted before the relation commits). Returns whether the
/// issue `issue_id` and the other end are still live.
async fn lock_ends(conn: &mut PgConnection, edge: &Edge, issue_id: &str) -> Result<(bool, bool)> {
    let mut ends = [&edge.from, &edge.to];
    ends.sort();
    let (mut issue_live, mut other_live) = (false, false);
    for id in ends {
        let sql = if *id == edge.to {
            "SELECT 1 FROM issues WHERE id = ? AND deleted_at IS NULL FOR NO KEY UPDATE"
        } else {
            "SELECT 1 FROM issues WHERE id = ? AND deleted_at IS NULL FOR SHARE"
        };
        let live = sqlx::query(pg(sql)).bind(id).fetch_optional(&mut *conn).await.map_err(db)?.is_some();
        if id == issue_id {
            issue_live = live;
        } else {
            other_live = live;
        }
    }
    Ok((issue_live, other_live))
}
