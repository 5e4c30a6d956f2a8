//! Relations between issues; each change is recorded in the history of both issues.

use async_trait::async_trait;
use loop_core::event::NewEvent;
use loop_core::relation::{self, Edge, EdgeKind, NewRelation, Relation};
use loop_core::store::RelationStore;
use loop_core::{Actor, Error, Result, id::new_id};
use loop_store_rows::BLOCKS_ALREADY;

use crate::dispatch_index::refresh_issue;
use crate::rows::{self, find_issue, record, require_issue};
use crate::{SqliteStore, db, is_unique_violation};

#[async_trait]
impl RelationStore for SqliteStore {
    async fn create_relation(&self, issue_key: &str, mut input: NewRelation, actor: &Actor) -> Result<Relation> {
        let now = self.now();
        let mut tx = self.writer.begin().await.map_err(db)?;
        let issue = require_issue(&mut tx, issue_key).await?;
        let related = find_issue(&mut tx, &input.related_issue_id).await?;
        if let Some(r) = &related {
            input.related_issue_id = r.id.clone();
        }
        let edge = relation::check_new_relation(&issue.id, &input, related.is_some())?;
        if let (EdgeKind::Block, Some(related)) = (&edge.kind, &related) {
            let closes = sqlx::query(BLOCKS_ALREADY).bind(&edge.from).bind(&edge.to).fetch_optional(&mut *tx).await;
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
        sqlx::query(
            "INSERT INTO issue_relations (id, type, issue_id, related_issue_id, edge_kind, edge_from, edge_to, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
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
        let mut tx = self.writer.begin().await.map_err(db)?;
        let rel = rows::one(&mut tx, "SELECT * FROM issue_relations WHERE id = ?", id, rows::relation)
            .await?
            .ok_or_else(|| Error::not_found("Relation", id))?;
        sqlx::query("DELETE FROM issue_relations WHERE id = ?").bind(id).execute(&mut *tx).await.map_err(db)?;
        refresh_issue(&mut tx, &Edge::of(rel.relation_type, &rel.issue_id, &rel.related_issue_id).to).await?;
        let events =
            [NewEvent::relation(&rel.issue_id, false, &rel), NewEvent::relation(&rel.related_issue_id, false, &rel)];
        record(&mut tx, &events, actor, now).await?;
        tx.commit().await.map_err(db)
    }
}
