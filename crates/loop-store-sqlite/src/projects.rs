//! Projects, with their goal and live issue counts.

use async_trait::async_trait;
use loop_core::issue::StatusCounts;
use loop_core::project::{NewProject, Project, ProjectDetail, ProjectPatch};
use loop_core::store::ProjectStore;
use loop_core::{Error, Page, Paged, Result, id::new_id};
use sqlx::{Row, SqliteConnection};

use crate::dispatch_index::refresh_project;
use crate::rows::{self, check_ref};
use crate::{SqliteStore, db};

#[async_trait]
impl ProjectStore for SqliteStore {
    async fn create_project(&self, input: NewProject) -> Result<Project> {
        let now = self.now();
        let mut tx = self.writer.begin().await.map_err(db)?;
        if let Some(g) = &input.goal_id {
            check_ref(&mut tx, "goals", "goalId", "goal_not_found", g).await?;
        }
        let p = Project {
            id: new_id(),
            name: input.name.to_string(),
            description: input.description.map(|d| d.to_string()),
            status: input.status,
            health: input.health,
            goal_id: input.goal_id,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        save(&mut tx, &p).await?;
        tx.commit().await.map_err(db)?;
        Ok(p)
    }

    async fn project_detail(&self, id: &str) -> Result<ProjectDetail> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        let project = require(&mut conn, id).await?;
        let goal = sqlx::query(
            "SELECT * FROM goals WHERE deleted_at IS NULL AND (id = ? OR project_id = ?) \
             ORDER BY (id = ?) DESC, created_at LIMIT 1",
        )
        .bind(&project.goal_id)
        .bind(&project.id)
        .bind(&project.goal_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        .as_ref()
        .map(rows::goal)
        .transpose()?;
        let mut issue_counts = StatusCounts::new();
        for row in sqlx::query(
            "SELECT status, count(*) AS n FROM issues WHERE project_id = ? AND deleted_at IS NULL GROUP BY status",
        )
        .bind(&project.id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        {
            let status: String = row.try_get("status").map_err(db)?;
            let n: i64 = row.try_get("n").map_err(db)?;
            issue_counts.insert(status.parse().map_err(Error::Internal)?, n as u64);
        }
        Ok(ProjectDetail { project, goal, issue_counts })
    }

    async fn list_projects(&self, page: Page) -> Result<Paged<Project>> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        rows::page_of(
            &mut conn,
            "*",
            "FROM projects WHERE deleted_at IS NULL",
            "created_at, id",
            &[],
            page,
            rows::project,
        )
        .await
    }

    async fn update_project(&self, id: &str, patch: ProjectPatch) -> Result<Project> {
        if patch.is_empty() {
            return Err(Error::empty_patch());
        }
        let mut tx = self.writer.begin().await.map_err(db)?;
        let mut p = require(&mut tx, id).await?;
        if let Some(Some(g)) = &patch.goal_id {
            check_ref(&mut tx, "goals", "goalId", "goal_not_found", g).await?;
        }
        p.apply_patch(patch, self.now());
        save(&mut tx, &p).await?;
        refresh_project(&mut tx, &p.id).await?;
        tx.commit().await.map_err(db)?;
        Ok(p)
    }

    async fn delete_project(&self, id: &str) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db)?;
        require(&mut tx, id).await?;
        sqlx::query("UPDATE projects SET deleted_at = ? WHERE id = ?")
            .bind(self.now().millis())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        refresh_project(&mut tx, id).await?;
        tx.commit().await.map_err(db)
    }
}

async fn require(conn: &mut SqliteConnection, id: &str) -> Result<Project> {
    rows::one(&mut *conn, "SELECT * FROM projects WHERE id = ? AND deleted_at IS NULL", id, rows::project)
        .await?
        .ok_or_else(|| Error::not_found("Project", id))
}

/// Writes a project row, new or changed.
async fn save(conn: &mut SqliteConnection, p: &Project) -> Result<()> {
    sqlx::query(
        "INSERT INTO projects (id, name, description, status, health, goal_id, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
         description = excluded.description, status = excluded.status, health = excluded.health, \
         goal_id = excluded.goal_id, updated_at = excluded.updated_at",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.description)
    .bind(p.status.as_str())
    .bind(p.health.as_str())
    .bind(&p.goal_id)
    .bind(p.created_at.millis())
    .bind(p.updated_at.millis())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}
