//! Projects, with their goal and live issue counts.

use async_trait::async_trait;
use loop_core::issue::StatusCounts;
use loop_core::project::{NewProject, Project, ProjectDetail, ProjectPatch};
use loop_core::store::ProjectStore;
use loop_core::{Error, Page, Paged, Result, Timestamp, id::new_id};

use crate::common::{self, check_ref};
use crate::db::{Db, DbExt};
use crate::dispatch_index::refresh_project;
use crate::skills;
use crate::{Backend, SqlStore, args, rows};
use loop_core::skill::{Skill, SkillSync, SkillSyncResult};

#[async_trait]
impl<B: Backend> ProjectStore for SqlStore<B> {
    async fn create_project(&self, input: NewProject) -> Result<Project> {
        let now = self.now();
        self.write(input, move |db, input| {
            Box::pin(async move {
                if let Some(g) = &input.goal_id {
                    check_ref(db, "goals", "goalId", "goal_not_found", g).await?;
                }
                let p = Project {
                    id: new_id(),
                    name: input.name.to_string(),
                    description: input.description.map(|d| d.to_string()),
                    status: input.status,
                    health: input.health,
                    goal_id: input.goal_id,
                    wait_for_merge: input.wait_for_merge,
                    created_at: now,
                    updated_at: now,
                    deleted_at: None,
                };
                save(db, &p).await?;
                Ok(p)
            })
        })
        .await
    }

    async fn project_detail(&self, id: &str) -> Result<ProjectDetail> {
        self.read(id.to_owned(), move |db, id| Box::pin(detail(db, id))).await
    }

    async fn sync_skills(&self, project_id: &str, sync: SkillSync) -> Result<SkillSyncResult> {
        sync.validate()?;
        let (project, now) = (project_id.to_owned(), self.now());
        self.write((project, sync), move |db, (project, sync)| Box::pin(skills::sync(db, project, sync, now))).await
    }

    async fn project_skills(&self, project_id: &str) -> Result<Vec<Skill>> {
        self.read(project_id.to_owned(), move |db, project| Box::pin(skills::current(db, project))).await
    }

    async fn list_projects(&self, page: Page) -> Result<Paged<Project>> {
        self.read((), move |db, ()| {
            Box::pin(async move {
                let from = "FROM projects WHERE deleted_at IS NULL";
                common::page_of(db, "*", from, r#"created_at, id COLLATE "C""#, &[], page, rows::project).await
            })
        })
        .await
    }

    async fn update_project(&self, id: &str, patch: ProjectPatch) -> Result<Project> {
        if patch.is_empty() {
            return Err(Error::empty_patch());
        }
        let (id, now) = (id.to_owned(), self.now());
        self.write((id, patch), move |db, (id, patch)| Box::pin(update(db, id, patch, now))).await
    }

    async fn delete_project(&self, id: &str) -> Result<()> {
        let (id, now) = (id.to_owned(), self.now());
        self.write(id, move |db, id| {
            Box::pin(async move {
                // Locked: of two concurrent deletes, the second finds it gone.
                find(db, &id, "FOR UPDATE").await?;
                db.run("UPDATE projects SET deleted_at = ? WHERE id = ?", &args![now.millis(), &id]).await?;
                refresh_project(db, &id).await
            })
        })
        .await
    }
}

async fn detail(db: &mut impl Db, id: String) -> Result<ProjectDetail> {
    let project = find(db, &id, "").await?;
    let goal = db
        .first(
            "SELECT * FROM goals WHERE deleted_at IS NULL AND (id = ?1 OR project_id = ?2) \
             ORDER BY (id = ?1) DESC, created_at LIMIT 1",
            &args![&project.goal_id, &project.id],
            rows::goal,
        )
        .await?;
    let mut issue_counts = StatusCounts::new();
    let sql = "SELECT status, count(*) AS n FROM issues WHERE project_id = ? AND deleted_at IS NULL GROUP BY status";
    for row in db.all(sql, &args![&project.id]).await? {
        issue_counts.insert(rows::parse(&row, "status")?, rows::get::<i64>(&row, "n")? as u64);
    }
    Ok(ProjectDetail { project, goal, issue_counts })
}

async fn update(db: &mut impl Db, id: String, patch: ProjectPatch, now: Timestamp) -> Result<Project> {
    find(db, &id, "").await?;
    if let Some(Some(g)) = &patch.goal_id {
        // Shared: the goal cannot change (or be deleted) before the link commits, and a change
        // to it waits for the link, so its refresh sees this project.
        check_ref(db, "goals", "goalId", "goal_not_found", g).await?;
    }
    // Goal, then project (see `dispatch_index`): read again under the lock, so the patch applies
    // to the project as it is now.
    let mut p = find(db, &id, "FOR UPDATE").await?;
    p.apply_patch(patch, now);
    save(db, &p).await?;
    refresh_project(db, &p.id).await?;
    Ok(p)
}

/// A live project, `lock`ed as for `common::find_issue_locked`.
async fn find(db: &mut impl Db, id: &str, lock: &str) -> Result<Project> {
    let sql = format!("SELECT * FROM projects WHERE id = ? AND deleted_at IS NULL {lock}");
    db.first(&sql, &args![id], rows::project).await?.ok_or_else(|| Error::not_found("Project", id))
}

/// Writes a project row, new or changed.
async fn save(db: &mut impl Db, p: &Project) -> Result<()> {
    db.run(
        "INSERT INTO projects (id, name, description, status, health, goal_id, wait_for_merge, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
         description = excluded.description, status = excluded.status, health = excluded.health, \
         goal_id = excluded.goal_id, wait_for_merge = excluded.wait_for_merge, updated_at = excluded.updated_at",
        &args![
            &p.id,
            &p.name,
            &p.description,
            p.status.as_str(),
            p.health.as_str(),
            &p.goal_id,
            i64::from(p.wait_for_merge),
            p.created_at.millis(),
            p.updated_at.millis(),
        ],
    )
    .await
    .map(|_| ())
}
