//! Keeps the dispatch columns (`open_blockers`, `has_active_goal`, `dispatch_key`) of `todo`
//! issues true. Every write that can change them calls one of these in its own transaction.

use loop_core::dispatch::{base_score, dispatch_key};
use loop_core::issue::{IssueType, Priority};
use loop_core::{Error, Result, Timestamp};
use sqlx::{Row, SqliteConnection};

use crate::db;

/// Recomputes the dispatch columns of the live `todo` issues matching `clause` (SQL over the
/// `issues` table with one `?` bound to `bind`).
pub(crate) async fn refresh(conn: &mut SqliteConnection, clause: &str, bind: &str) -> Result<()> {
    let sql = format!(
        "UPDATE issues SET
            open_blockers = (
                SELECT count(*) FROM issue_relations r JOIN issues b ON b.id = r.edge_from
                WHERE r.edge_kind = 'block' AND r.edge_to = issues.id
                  AND b.deleted_at IS NULL AND b.status NOT IN ('done', 'canceled')),
            has_active_goal = EXISTS (
                SELECT 1 FROM projects p JOIN goals g ON (g.id = p.goal_id OR g.project_id = p.id)
                WHERE p.id = issues.project_id AND p.deleted_at IS NULL
                  AND g.deleted_at IS NULL AND g.status = 'active')
         WHERE status = 'todo' AND deleted_at IS NULL AND ({clause})
         RETURNING id, priority, type, has_active_goal, todo_since"
    );
    let rows = sqlx::query(&sql).bind(bind).fetch_all(&mut *conn).await.map_err(db)?;
    for row in rows {
        let id: String = row.try_get("id").map_err(db)?;
        let priority = Priority::new(row.try_get("priority").map_err(db)?).map_err(Error::Internal)?;
        let issue_type: IssueType = row.try_get::<String, _>("type").map_err(db)?.parse().map_err(Error::Internal)?;
        let goal: bool = row.try_get("has_active_goal").map_err(db)?;
        let since: Option<i64> = row.try_get("todo_since").map_err(db)?;
        let since = Timestamp::from_millis(since.unwrap_or(0));
        sqlx::query("UPDATE issues SET dispatch_key = ? WHERE id = ?")
            .bind(dispatch_key(base_score(priority, issue_type, goal), since))
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// The issue itself.
pub(crate) async fn refresh_issue(conn: &mut SqliteConnection, id: &str) -> Result<()> {
    refresh(conn, "id = ?", id).await
}

/// Everything `blocker_id` blocks (its status or liveness changed).
pub(crate) async fn refresh_blocked_by(conn: &mut SqliteConnection, blocker_id: &str) -> Result<()> {
    refresh(conn, "id IN (SELECT edge_to FROM issue_relations WHERE edge_kind = 'block' AND edge_from = ?)", blocker_id)
        .await
}

/// Every issue of a project (its goal situation changed).
pub(crate) async fn refresh_project(conn: &mut SqliteConnection, project_id: &str) -> Result<()> {
    refresh(conn, "project_id = ?", project_id).await
}

/// Every project a goal is linked to, either way.
pub(crate) async fn refresh_goal(conn: &mut SqliteConnection, goal_id: &str) -> Result<()> {
    refresh(
        conn,
        "project_id IN (SELECT id FROM projects WHERE goal_id = ?1 UNION SELECT project_id FROM goals WHERE id = ?1)",
        goal_id,
    )
    .await
}
