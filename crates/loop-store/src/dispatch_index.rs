//! Keeps the dispatch columns (`open_blockers`, `has_active_goal`, `dispatch_key`) of `todo`
//! issues true. A not-before time counts as one more open blocker until the sweeper clears it,
//! and so does each open question; a done blocker of an `until_merged` relation stays open
//! until its pull request is merged. Every write that can change them calls one of these in
//! its own transaction.
//!
//! On PostgreSQL several nodes write at once (READ COMMITTED), so the columns are only
//! computed under locks:
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
//! other in a circle. On SQLite (one writer) the lock statements are skipped.

use loop_core::dispatch::{base_score, dispatch_key};
use loop_core::issue::Priority;
use loop_core::{Error, Result, Timestamp};

use crate::db::{Arg, Db, Dialect};
use crate::{args, rows};

/// Runs a statement that only takes row locks, on PostgreSQL.
async fn lock(db: &mut impl Db, sql: &str, args: &[Arg<'_>]) -> Result<()> {
    if db.dialect() == Dialect::Postgres {
        db.run(sql, args).await?;
    }
    Ok(())
}

/// Recomputes the dispatch columns of the live `todo` issues matching `clause` (SQL over the
/// `issues` table with one `?` bound to `bind`).
async fn refresh(db: &mut impl Db, clause: &str, bind: &str) -> Result<()> {
    // Lock first (in id order, so two refreshes of overlapping sets cannot deadlock), compute
    // after: the UPDATE below then reads relations and statuses committed by whoever held
    // these rows before.
    let locks = format!(
        "SELECT id FROM issues WHERE status = 'todo' AND deleted_at IS NULL AND ({clause}) ORDER BY id FOR NO KEY UPDATE"
    );
    lock(db, &locks, &args![bind]).await?;
    let sql = format!(
        "UPDATE issues SET
            open_blockers = (
                SELECT count(*) FROM issue_relations r JOIN issues b ON b.id = r.edge_from
                WHERE r.edge_kind = 'block' AND r.edge_to = issues.id
                  AND b.deleted_at IS NULL AND (b.status NOT IN ('done', 'canceled')
                      OR (r.until_merged = 1 AND b.status = 'done' AND b.merged_at IS NULL)))
                + CASE WHEN not_before IS NULL THEN 0 ELSE 1 END
                + open_questions,
            has_active_goal = CASE WHEN EXISTS (
                SELECT 1 FROM projects p JOIN goals g ON (g.id = p.goal_id OR g.project_id = p.id)
                WHERE p.id = issues.project_id AND p.deleted_at IS NULL
                  AND g.deleted_at IS NULL AND g.status = 'active') THEN 1 ELSE 0 END
         WHERE status = 'todo' AND deleted_at IS NULL AND ({clause})
         RETURNING id, priority, type, has_active_goal, todo_since"
    );
    for row in db.all(&sql, &args![bind]).await? {
        let id: String = rows::get(&row, "id")?;
        let priority = Priority::new(rows::get(&row, "priority")?).map_err(Error::Internal)?;
        let goal = rows::get::<i64>(&row, "has_active_goal")? != 0;
        let since = Timestamp::from_millis(rows::get::<Option<i64>>(&row, "todo_since")?.unwrap_or(0));
        let key = dispatch_key(base_score(priority, rows::parse(&row, "type")?, goal), since);
        db.run("UPDATE issues SET dispatch_key = ? WHERE id = ?", &args![key, &id]).await?;
    }
    Ok(())
}

/// The issue itself.
pub(crate) async fn refresh_issue(db: &mut impl Db, id: &str) -> Result<()> {
    // The issue may have just entered its project's todo set (created, moved, back to todo),
    // which a concurrent change of the project's goal situation cannot see: hold the project
    // still while computing.
    let project = "SELECT id FROM projects WHERE id = (SELECT project_id FROM issues \
         WHERE id = ? AND status = 'todo' AND deleted_at IS NULL) FOR SHARE";
    lock(db, project, &args![id]).await?;
    refresh(db, "id = ?", id).await
}

/// Everything `blocker_id` blocks (its status or liveness changed).
pub(crate) async fn refresh_blocked_by(db: &mut impl Db, blocker_id: &str) -> Result<()> {
    refresh(db, "id IN (SELECT edge_to FROM issue_relations WHERE edge_kind = 'block' AND edge_from = ?)", blocker_id)
        .await
}

/// Every issue of a project (its goal situation changed).
pub(crate) async fn refresh_project(db: &mut impl Db, project_id: &str) -> Result<()> {
    lock_project(db, project_id).await?;
    refresh(db, "project_id = ?", project_id).await
}

/// Every project a goal is linked to, either way.
pub(crate) async fn refresh_goal(db: &mut impl Db, goal_id: &str) -> Result<()> {
    lock_goal_projects(db, goal_id, None).await?;
    refresh(db, &format!("project_id IN ({GOAL_PROJECTS})"), goal_id).await
}

/// The projects goal `?1` is linked to, either way.
const GOAL_PROJECTS: &str =
    "SELECT id FROM projects WHERE goal_id = ?1 UNION SELECT project_id FROM goals WHERE id = ?1";

/// Before changing a project's goal situation: locks the project until the transaction ends.
pub(crate) async fn lock_project(db: &mut impl Db, project_id: &str) -> Result<()> {
    lock(db, "SELECT id FROM projects WHERE id = ? FOR NO KEY UPDATE", &args![project_id]).await
}

/// Before changing a goal (already locked): locks every project it is linked to (and `also`, a
/// project it is about to be linked to), in id order.
pub(crate) async fn lock_goal_projects(db: &mut impl Db, goal_id: &str, also: Option<&str>) -> Result<()> {
    let set = match also {
        Some(_) => format!("{GOAL_PROJECTS} UNION SELECT CAST(?2 AS TEXT)"),
        None => GOAL_PROJECTS.to_string(),
    };
    let sql = format!("SELECT id FROM projects WHERE id IN ({set}) ORDER BY id FOR NO KEY UPDATE");
    match also {
        Some(p) => lock(db, &sql, &args![goal_id, p]).await,
        None => lock(db, &sql, &args![goal_id]).await,
    }
}
