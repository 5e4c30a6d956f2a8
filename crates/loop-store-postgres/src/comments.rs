//! Comments on issues, threaded to any depth.

use async_trait::async_trait;
use loop_core::comment::{self, Comment, NewComment, ThreadedComment};
use loop_core::event::NewEvent;
use loop_core::store::CommentStore;
use loop_core::{Actor, Error, Result, id::new_id};

use crate::rows::{self, record, require_issue};
use crate::sql::pg;
use crate::{PgStore, db};

#[async_trait]
impl CommentStore for PgStore {
    async fn list_comments(&self, issue_key: &str) -> Result<Vec<ThreadedComment>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let issue = require_issue(&mut conn, issue_key).await?;
        // No rowid: ties in time go by id (UUIDv7, which one process hands out in order), in
        // byte order as SQLite compares text.
        let flat = sqlx::query(pg("SELECT * FROM comments WHERE issue_id = ? ORDER BY created_at, id COLLATE \"C\""))
            .bind(&issue.id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?
            .iter()
            .map(rows::comment)
            .collect::<Result<Vec<_>>>()?;
        Ok(comment::thread(flat))
    }

    async fn create_comment(&self, issue_key: &str, input: NewComment, actor: &Actor) -> Result<Comment> {
        let now = self.now();
        let mut tx = self.pool.begin().await.map_err(db)?;
        let issue = require_issue(&mut tx, issue_key).await?;
        if let Some(parent) = &input.parent_id {
            // Comments are never deleted or moved, so what is read here stays true.
            let same_issue = sqlx::query(pg("SELECT 1 FROM comments WHERE id = ? AND issue_id = ?"))
                .bind(parent)
                .bind(&issue.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?
                .is_some();
            if !same_issue {
                return Err(Error::invalid(
                    "parentId",
                    "parent_comment_not_found",
                    format!("comment {parent} not found on issue #{}", issue.number),
                ));
            }
        }
        let (author_name, author_type) = input.author(actor);
        let c = Comment {
            id: new_id(),
            body: input.body.to_string(),
            issue_id: issue.id.clone(),
            author_name,
            author_type,
            parent_id: input.parent_id,
            created_at: now,
        };
        sqlx::query(pg(
            "INSERT INTO comments (id, body, issue_id, author_name, author_type, parent_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&c.id)
        .bind(&c.body)
        .bind(&c.issue_id)
        .bind(&c.author_name)
        .bind(c.author_type.as_str())
        .bind(&c.parent_id)
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        record(&mut tx, &[NewEvent::comment_added(&issue.id, &c.id, &c.author_name)], actor, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(c)
    }
}
