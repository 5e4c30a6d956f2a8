//! Goals.

use async_trait::async_trait;
use loop_core::goal::{Goal, GoalPatch, GoalReading, NewGoal};
use loop_core::store::GoalStore;
use loop_core::{Error, Page, Paged, Result, Timestamp, id::new_id};
use sqlx::{Row, SqliteConnection};

use crate::dispatch_index::{refresh_goal, refresh_project};
use crate::rows::{self, check_ref};
use crate::{SqliteStore, db};

#[async_trait]
impl GoalStore for SqliteStore {
    async fn create_goal(&self, input: NewGoal) -> Result<Goal> {
        let now = self.now();
        let mut tx = self.writer.begin().await.map_err(db)?;
        if let Some(p) = &input.project_id {
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
        let mut conn = self.reader.acquire().await.map_err(db)?;
        require(&mut conn, id).await
    }

    async fn list_goals(&self, page: Page) -> Result<Paged<Goal>> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        rows::page_of(&mut conn, "*", "FROM goals WHERE deleted_at IS NULL", "created_at, id", &[], page, rows::goal)
            .await
    }

    async fn update_goal(&self, id: &str, patch: GoalPatch) -> Result<Goal> {
        if patch.is_empty() {
            return Err(Error::empty_patch());
        }
        let mut tx = self.writer.begin().await.map_err(db)?;
        let mut g = require(&mut tx, id).await?;
        let old_project = g.project_id.clone();
        if let Some(Some(p)) = &patch.project_id {
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
        let mut tx = self.writer.begin().await.map_err(db)?;
        require(&mut tx, id).await?;
        sqlx::query("UPDATE goals SET deleted_at = ? WHERE id = ?")
            .bind(self.now().millis())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        refresh_goal(&mut tx, id).await?;
        tx.commit().await.map_err(db)
    }

    async fn goal_readings(&self, id: &str, limit: u32) -> Result<Vec<GoalReading>> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        require(&mut conn, id).await?;
        let rows = sqlx::query(
            "SELECT value, recorded_at FROM (SELECT value, recorded_at, rowid FROM goal_readings WHERE goal_id = ? \
             ORDER BY recorded_at DESC, rowid DESC LIMIT ?) ORDER BY recorded_at, rowid",
        )
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
pub(crate) async fn record_reading(
    conn: &mut SqliteConnection,
    goal_id: &str,
    value: f64,
    at: Timestamp,
) -> Result<()> {
    sqlx::query("INSERT INTO goal_readings (goal_id, value, recorded_at) VALUES (?, ?, ?)")
        .bind(goal_id)
        .bind(value)
        .bind(at.millis())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

async fn require(conn: &mut SqliteConnection, id: &str) -> Result<Goal> {
    rows::one(&mut *conn, "SELECT * FROM goals WHERE id = ? AND deleted_at IS NULL", id, rows::goal)
        .await?
        .ok_or_else(|| Error::not_found("Goal", id))
}

/// Writes a goal row, new or changed.
async fn save(conn: &mut SqliteConnection, g: &Goal) -> Result<()> {
    sqlx::query(
        "INSERT INTO goals (id, title, description, metric, target_value, current_value, baseline_value, unit, status, \
         project_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET \
         title = excluded.title, description = excluded.description, metric = excluded.metric, \
         target_value = excluded.target_value, current_value = excluded.current_value, \
         baseline_value = excluded.baseline_value, unit = excluded.unit, \
         status = excluded.status, project_id = excluded.project_id, updated_at = excluded.updated_at",
    )
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
