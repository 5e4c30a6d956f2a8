//! Comments, threaded to any depth.

use async_trait::async_trait;
use loop_core::comment::{self, AuthorType, Comment, NewComment, ThreadedComment};
use loop_core::event::NewEvent;
use loop_core::store::CommentStore;
use loop_core::{Actor, Error, Result, Timestamp, id::new_id};

use crate::common::{record, require_issue};
use crate::db::{Db, DbExt};
use crate::{Backend, SqlStore, args, rows};

#[async_trait]
impl<B: Backend> CommentStore for SqlStore<B> {
    async fn list_comments(&self, issue_key: &str) -> Result<Vec<ThreadedComment>> {
        self.read(issue_key.to_owned(), move |db, key| {
            Box::pin(async move {
                let issue = require_issue(db, &key).await?;
                let sql = r#"SELECT * FROM comments WHERE issue_id = ? ORDER BY created_at, id COLLATE "C""#;
                Ok(comment::thread(db.each(sql, &args![&issue.id], rows::comment).await?))
            })
        })
        .await
    }

    async fn create_comment(&self, issue_key: &str, input: NewComment, actor: &Actor) -> Result<Comment> {
        let (key, now, actor) = (issue_key.to_owned(), self.now(), actor.clone());
        self.write((key, input, actor), move |db, (key, input, actor)| Box::pin(create(db, key, input, actor, now)))
            .await
    }
}

pub(crate) async fn create(
    db: &mut impl Db,
    key: String,
    input: NewComment,
    actor: Actor,
    now: Timestamp,
) -> Result<Comment> {
    let issue = require_issue(db, &key).await?;
    if let Some(parent) = &input.parent_id {
        let sql = "SELECT 1 AS hit FROM comments WHERE id = ? AND issue_id = ?";
        if db.one(sql, &args![parent, &issue.id]).await?.is_none() {
            return Err(Error::invalid(
                "parentId",
                "parent_comment_not_found",
                format!("comment {parent} not found on issue #{}", issue.number),
            ));
        }
    }
    let (author_name, author_type) = input.author(&actor);
    let c = Comment {
        id: new_id(),
        body: input.body.to_string(),
        issue_id: issue.id.clone(),
        author_name,
        author_type,
        parent_id: input.parent_id,
        created_at: now,
    };
    insert(db, &c).await?;
    record(db, &[NewEvent::comment_added(&issue.id, &c.id, &c.author_name)], &actor, now).await?;
    Ok(c)
}

/// A comment for something that happened to the issue (a question, an answer, rework, a
/// merge), in its thread and its history.
pub(crate) async fn note(
    db: &mut impl Db,
    issue_id: &str,
    author: (&str, AuthorType),
    body: String,
    actor: &Actor,
    now: Timestamp,
) -> Result<()> {
    let c = Comment {
        id: new_id(),
        body,
        issue_id: issue_id.to_owned(),
        author_name: author.0.to_owned(),
        author_type: author.1,
        parent_id: None,
        created_at: now,
    };
    insert(db, &c).await?;
    record(db, &[NewEvent::comment_added(issue_id, &c.id, &c.author_name)], actor, now).await
}

/// Writes a comment row.
pub(crate) async fn insert(db: &mut impl Db, c: &Comment) -> Result<()> {
    db.run(
        "INSERT INTO comments (id, body, issue_id, author_name, author_type, parent_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        &args![&c.id, &c.body, &c.issue_id, &c.author_name, c.author_type.as_str(), &c.parent_id, c.created_at.millis()],
    )
    .await
    .map(|_| ())
}
