//! Goals.

use async_trait::async_trait;
use loop_core::goal::{Goal, GoalPatch, GoalReading, NewGoal};
use loop_core::store::GoalStore;
use loop_core::{Error, Page, Paged, Result, Timestamp, id::new_id};
use sqlx::{PgConnection, Row};

use crate::dispatch_index::{lock_goal_projects, lock_project, refresh_goal, refresh_project};
use crate::rows::{self, check_ref};
use crate::sql::pg;
use crate::{PgStore, db};

#[async_trait]
impl GoalStore for PgStore {
    async fn create_goal(&self, input: NewGoal) -> Result<Goal> {
        let now = self.now();
        let mut tx = self.pool.begin().await.map_err(db)?;
        if let Some(p) = &input.project_id {
            // Locked (its goal situation changes, see `dispatch_index`) and checked under the
            // lock, so it cannot be deleted before the goal commits.
            lock_project(&mut tx, p).await?;
            check_ref(&mut tx, "projects", "projectId", "project_not_found", p).await?;
        }
        let g = Goal {
            id: new_id(),
            title: input.title.to_string(),
            description: input.description.map(|d| d.to_string()),
            metric: input.metric.map(|m| m.to_string()),
            target_value: input.target_value,
            current_value: input.current_value,
            baseline_value: input.current_value,
            unit: input.unit.map(|u| u.to_string()),
            status: input.status,
            project_id: input.project_id,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        save(&mut tx, &g).await?;
        if let Some(v) = g.current_value {
            record_reading(&mut tx, &g.id, v, now).await?;
        }
        refresh_goal(&mut tx, &g.id).await?;
        tx.commit().await.map_err(db)?;
        Ok(g)
    }

    async fn get_goal(&self, id: &str) -> Result<Goal> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        require(&mut conn, id).await
    }

    async fn list_goals(&self, page: Page) -> Result<Paged<Goal>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        rows::page_of(
            &mut conn,
            "*",
            "FROM goals WHERE deleted_at IS NULL",
            r#"created_at, id COLLATE "C""#,
            &[],
            page,
            rows::goal,
        )
        .await
    }

    async fn update_goal(&self, id: &str, patch: GoalPatch) -> Result<Goal> {
        if patch.is_empty() {
            return Err(Error::empty_patch());
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Locked: the patch applies to the goal as it is now, and links to it wait.
        let mut g = require_locked(&mut tx, id).await?;
        let old_project = g.project_id.clone();
        let new_project = patch.project_id.as_ref().and_then(|p| p.as_deref());
        // Every project whose goal situation this may change (the old one, the new one, those
        // naming this goal), before the issues the refreshes lock (see `dispatch_index`).
        lock_goal_projects(&mut tx, &g.id, new_project).await?;
        if let Some(p) = new_project {
            check_ref(&mut tx, "projects", "projectId", "project_not_found", p).await?;
        }
        let new_reading = g.apply_patch(patch, self.now());
        save(&mut tx, &g).await?;
        if let Some(v) = new_reading {
            record_reading(&mut tx, &g.id, v, g.updated_at).await?;
        }
        if let Some(p) = old_project {
            refresh_project(&mut tx, &p).await?;
        }
        refresh_goal(&mut tx, &g.id).await?;
        tx.commit().await.map_err(db)?;
        Ok(g)
    }

    async fn delete_goal(&self, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Locked: of two concurrent deletes, the second finds it gone.
        require_locked(&mut tx, id).await?;
        lock_goal_projects(&mut tx, id, None).await?;
        sqlx::query(pg("UPDATE goals SET deleted_at = ? WHERE id = ?"))
            .bind(self.now().millis())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        refresh_goal(&mut tx, id).await?;
        tx.commit().await.map_err(db)
    }

    async fn goal_readings(&self, id: &str, limit: u32) -> Result<Vec<GoalReading>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        require(&mut conn, id).await?;
        // `seq` (insertion order) stands in for SQLite's rowid.
        let rows =
            sqlx::query(pg("SELECT value, recorded_at FROM (SELECT value, recorded_at, seq FROM goal_readings \
             WHERE goal_id = ? ORDER BY recorded_at DESC, seq DESC LIMIT ?) AS recent ORDER BY recorded_at, seq"))
            .bind(id)
            .bind(limit as i64)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(GoalReading {
                    value: r.try_get("value").map_err(db)?,
                    recorded_at: Timestamp::from_millis(r.try_get("recorded_at").map_err(db)?),
                })
            })
            .collect()
    }
}

/// Keeps a value of the goal's current value for its trend.
pub(crate) async fn record_reading(conn: &mut PgConnection, goal_id: &str, value: f64, at: Timestamp) -> Result<()> {
    sqlx::query(pg("INSERT INTO goal_readings (goal_id, value, recorded_at) VALUES (?, ?, ?)"))
        .bind(goal_id)
        .bind(value)
        .bind(at.millis())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

async fn require(conn: &mut PgConnection, id: &str) -> Result<Goal> {
    rows::one(&mut *conn, "SELECT * FROM goals WHERE id = ? AND deleted_at IS NULL", id, rows::goal)
        .await?
        .ok_or_else(|| Error::not_found("Goal", id))
}

/// `require`, with the goal's row locked until the transaction ends.
async fn require_locked(conn: &mut PgConnection, id: &str) -> Result<Goal> {
    rows::one(&mut *conn, "SELECT * FROM goals WHERE id = ? AND deleted_at IS NULL FOR UPDATE", id, rows::goal)
        .await?
        .ok_or_else(|| Error::not_found("Goal", id))
}

/// Writes a goal row, new or changed.
async fn save(conn: &mut PgConnection, g: &Goal) -> Result<()> {
    sqlx::query(pg(
        "INSERT INTO goals (id, title, description, metric, target_value, current_value, baseline_value, unit, status, \
         project_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET \
         title = excluded.title, description = excluded.description, metric = excluded.metric, \
         target_value = excluded.target_value, current_value = excluded.current_value, \
         baseline_value = excluded.baseline_value, unit = excluded.unit, \
         status = excluded.status, project_id = excluded.project_id, updated_at = excluded.updated_at",
    ))
    .bind(&g.id)
    .bind(&g.title)
    .bind(&g.description)
    .bind(&g.metric)
    .bind(g.target_value)
    .bind(g.current_value)
    .bind(g.baseline_value)
    .bind(&g.unit)
    .bind(g.status.as_str())
    .bind(&g.project_id)
    .bind(g.created_at.millis())
    .bind(g.updated_at.millis())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}
