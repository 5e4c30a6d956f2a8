//! Keeps the dispatch columns (`open_blockers`, `has_active_goal`, `dispatch_key`) of `todo`
//! issues true. Every write that can change them calls one of these in its own transaction.
//!
//! Several nodes write at once (READ COMMITTED), so the columns are only computed under locks:
//!
//! - an issue's columns are recomputed while holding its row lock, by a statement that starts
//!   after the lock is taken, so it sees everything earlier holders of the lock committed (an
//!   UPDATE that waits for a row re-reads only that row, not what its subqueries read);
//! - a project's row stands for its "goal situation" (the project and its goals): writes that
//!   change it lock the project (`refresh_project`, `refresh_goal`, `lock_project`,
//!   `lock_goal_projects`) before they recompute its todo issues; an issue that may be entering
//!   a project's todo set (created, moved, back to todo), which such a recomputation cannot see
//!   yet, share-locks the project before computing (`refresh_issue`).
//!
//! Locks are taken goals first, then projects, then issues, so that writers never wait on each
//! other in a circle: issue writes share-lock the project before locking the issue where they
//! can (see `issues.rs`, `relations.rs`).

use loop_core::dispatch::{base_score, dispatch_key};
use loop_core::issue::{IssueType, Priority};
use loop_core::{Error, Result, Timestamp};
use sqlx::{PgConnection, Row};

use crate::db;
use crate::sql::{pg, placeholders};

/// Recomputes the dispatch columns of the live `todo` issues matching `clause` (SQL over the
/// `issues` table with one `?` bound to `bind`).
pub(crate) async fn refresh(conn: &mut PgConnection, clause: &str, bind: &str) -> Result<()> {
    // Lock first (in id order, so two refreshes of overlapping sets cannot deadlock), compute
    // after: the UPDATE below then reads relations and statuses committed by whoever held
    // these rows before.
    let lock = placeholders(&format!(
        "SELECT id FROM issues WHERE status = 'todo' AND deleted_at IS NULL AND ({clause}) \
         ORDER BY id FOR NO KEY UPDATE"
    ));
    sqlx::query(&lock).bind(bind).execute(&mut *conn).await.map_err(db)?;
    let sql = placeholders(&format!(
        "UPDATE issues SET
            open_blockers = (
                SELECT count(*) FROM issue_relations r JOIN issues b ON b.id = r.edge_from
                WHERE r.edge_kind = 'block' AND r.edge_to = issues.id
                  AND b.deleted_at IS NULL AND b.status NOT IN ('done', 'canceled')),
            has_active_goal = CASE WHEN EXISTS (
                SELECT 1 FROM projects p JOIN goals g ON (g.id = p.goal_id OR g.project_id = p.id)
                WHERE p.id = issues.project_id AND p.deleted_at IS NULL
                  AND g.deleted_at IS NULL AND g.status = 'active') THEN 1 ELSE 0 END
         WHERE status = 'todo' AND deleted_at IS NULL AND ({clause})
         RETURNING id, priority, type, has_active_goal, todo_since"
    ));
    let rows = sqlx::query(&sql).bind(bind).fetch_all(&mut *conn).await.map_err(db)?;
    for row in rows {
        let id: String = row.try_get("id").map_err(db)?;
        let priority = Priority::new(row.try_get::<i64, _>("priority").map_err(db)?).map_err(Error::Internal)?;
        let issue_type: IssueType = row.try_get::<String, _>("type").map_err(db)?.parse().map_err(Error::Internal)?;
        let goal = row.try_get::<i64, _>("has_active_goal").map_err(db)? != 0;
        let since: Option<i64> = row.try_get("todo_since").map_err(db)?;
        let since = Timestamp::from_millis(since.unwrap_or(0));
        sqlx::query(pg("UPDATE issues SET dispatch_key = ? WHERE id = ?"))
            .bind(dispatch_key(base_score(priority, issue_type, goal), since))
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// The issue itself.
pub(crate) async fn refresh_issue(conn: &mut PgConnection, id: &str) -> Result<()> {
    // The issue may have just entered its project's todo set (created, moved, back to todo),
    // which a concurrent change of the project's goal situation cannot see: hold the project
    // still while computing.
    sqlx::query(pg("SELECT id FROM projects WHERE id = (SELECT project_id FROM issues \
         WHERE id = ? AND status = 'todo' AND deleted_at IS NULL) FOR SHARE"))
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    refresh(conn, "id = ?", id).await
}

/// Everything `blocker_id` blocks (its status or liveness changed).
pub(crate) async fn refresh_blocked_by(conn: &mut PgConnection, blocker_id: &str) -> Result<()> {
    refresh(conn, "id IN (SELECT edge_to FROM issue_relations WHERE edge_kind = 'block' AND edge_from = ?)", blocker_id)
        .await
}

/// Every issue of a project (its goal situation changed).
pub(crate) async fn refresh_project(conn: &mut PgConnection, project_id: &str) -> Result<()> {
    lock_project(conn, project_id).await?;
    refresh(conn, "project_id = ?", project_id).await
}

/// Every project a goal is linked to, either way.
pub(crate) async fn refresh_goal(conn: &mut PgConnection, goal_id: &str) -> Result<()> {
    lock_goal_projects(conn, goal_id, None).await?;
    refresh(conn, &format!("project_id IN ({GOAL_PROJECTS})"), goal_id).await
}

/// The projects goal `?1` is linked to, either way.
const GOAL_PROJECTS: &str =
    "SELECT id FROM projects WHERE goal_id = ?1 UNION SELECT project_id FROM goals WHERE id = ?1";

/// Before changing a project's goal situation: locks the project until the transaction ends.
pub(crate) async fn lock_project(conn: &mut PgConnection, project_id: &str) -> Result<()> {
    sqlx::query(pg("SELECT id FROM projects WHERE id = ? FOR NO KEY UPDATE"))
        .bind(project_id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Before changing a goal (already locked): locks every project it is linked to (and `also`, a
/// project it is about to be linked to), in id order.
pub(crate) async fn lock_goal_projects(conn: &mut PgConnection, goal_id: &str, also: Option<&str>) -> Result<()> {
    let set = match also {
        Some(_) => format!("{GOAL_PROJECTS} UNION SELECT ?2::TEXT"),
        None => GOAL_PROJECTS.to_string(),
    };
    let sql = placeholders(&format!("SELECT id FROM projects WHERE id IN ({set}) ORDER BY id FOR NO KEY UPDATE"));
    let mut q = sqlx::query(&sql).bind(goal_id);
    if let Some(p) = also {
        q = q.bind(p);
    }
    q.execute(&mut *conn).await.map_err(db)?;
    Ok(())
}
