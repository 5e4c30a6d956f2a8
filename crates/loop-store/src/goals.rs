//! Goals, and the readings of their current value.

use async_trait::async_trait;
use loop_core::goal::{Goal, GoalPatch, GoalReading, GoalStatus, NewGoal};
use loop_core::store::GoalStore;
use loop_core::{Error, Page, Paged, Result, Timestamp, id::new_id};

use crate::common::{self, check_ref};
use crate::db::{Db, DbExt, Value};
use crate::dispatch_index::{lock_goal_projects, lock_project, refresh_goal, refresh_project};
use crate::{Backend, SqlStore, args, hypotheses, rows};

#[async_trait]
impl<B: Backend> GoalStore for SqlStore<B> {
    async fn create_goal(&self, input: NewGoal) -> Result<Goal> {
        let now = self.now();
        self.write(input, move |db, input| Box::pin(create(db, input, now))).await
    }

    async fn get_goal(&self, id: &str) -> Result<Goal> {
        self.read(id.to_owned(), move |db, id| Box::pin(async move { find(db, &id, "").await })).await
    }

    async fn list_goals(&self, status: Option<GoalStatus>, page: Page) -> Result<Paged<Goal>> {
        self.read((), move |db, ()| {
            Box::pin(async move {
                let (from, binds) = match status {
                    Some(st) => {
                        ("FROM goals WHERE deleted_at IS NULL AND status = ?", vec![Value::Text(st.as_str().into())])
                    }
                    None => ("FROM goals WHERE deleted_at IS NULL", vec![]),
                };
                let args: Vec<_> = binds.iter().map(Value::arg).collect();
                common::page_of(db, "*", from, r#"created_at, id COLLATE "C""#, &args, page, rows::goal).await
            })
        })
        .await
    }

    async fn update_goal(&self, id: &str, patch: GoalPatch) -> Result<Goal> {
        if patch.is_empty() {
            return Err(Error::empty_patch());
        }
        let (id, now) = (id.to_owned(), self.now());
        self.write((id, patch), move |db, (id, patch)| Box::pin(update(db, id, patch, now))).await
    }

    async fn delete_goal(&self, id: &str) -> Result<()> {
        let (id, now) = (id.to_owned(), self.now());
        self.write(id, move |db, id| {
            Box::pin(async move {
                // Locked: of two concurrent deletes, the second finds it gone.
                find(db, &id, "FOR UPDATE").await?;
                lock_goal_projects(db, &id, None).await?;
                db.run("UPDATE goals SET deleted_at = ? WHERE id = ?", &args![now.millis(), &id]).await?;
                refresh_goal(db, &id).await
            })
        })
        .await
    }

    async fn goal_readings(&self, id: &str, limit: u32) -> Result<Vec<GoalReading>> {
        self.read(id.to_owned(), move |db, id| {
            Box::pin(async move {
                find(db, &id, "").await?;
                let rows = db
                    .all(
                        "SELECT value, recorded_at FROM (SELECT value, recorded_at, seq FROM goal_readings \
                         WHERE goal_id = ? ORDER BY recorded_at DESC, seq DESC LIMIT ?) recent ORDER BY recorded_at, seq",
                        &args![&id, limit as i64],
                    )
                    .await?;
                rows.iter()
                    .map(|r| Ok(GoalReading { value: rows::get(r, "value")?, recorded_at: rows::ts(r, "recorded_at")? }))
                    .collect()
            })
        })
        .await
    }
}

async fn create(db: &mut impl Db, input: NewGoal, now: Timestamp) -> Result<Goal> {
    if let Some(p) = &input.project_id {
        // Locked (its goal situation changes, see `dispatch_index`) and checked under the lock,
        // so it cannot be deleted before the goal commits.
        lock_project(db, p).await?;
        check_ref(db, "projects", "projectId", "project_not_found", p).await?;
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
    save(db, &g).await?;
    if let Some(v) = g.current_value {
        record_reading(db, &g.id, v, now).await?;
    }
    refresh_goal(db, &g.id).await?;
    Ok(g)
}

async fn update(db: &mut impl Db, id: String, patch: GoalPatch, now: Timestamp) -> Result<Goal> {
    // Locked: the patch applies to the goal as it is now, and links to it wait.
    let mut g = find(db, &id, "FOR UPDATE").await?;
    let old_project = g.project_id.clone();
    let new_project = patch.project_id.as_ref().and_then(|p| p.as_deref());
    // Every project whose goal situation this may change (the old one, the new one, those
    // naming this goal), before the issues the refreshes lock (see `dispatch_index`).
    lock_goal_projects(db, &g.id, new_project).await?;
    if let Some(p) = new_project {
        check_ref(db, "projects", "projectId", "project_not_found", p).await?;
    }
    let new_reading = g.apply_patch(patch, now);
    save(db, &g).await?;
    if let Some(v) = new_reading {
        record_reading(db, &g.id, v, g.updated_at).await?;
        if let Some(metric) = &g.metric {
            // A person or script reporting the goal's value is a reading of its metric.
            hypotheses::observe(db, metric, v, &loop_core::Actor::human(), now).await?;
        }
    }
    if let Some(p) = old_project {
        refresh_project(db, &p).await?;
    }
    refresh_goal(db, &g.id).await?;
    Ok(g)
}

/// Keeps a value of the goal's current value for its trend.
pub(crate) async fn record_reading(db: &mut impl Db, goal_id: &str, value: f64, at: Timestamp) -> Result<()> {
    let sql = "INSERT INTO goal_readings (goal_id, value, recorded_at) VALUES (?, ?, ?)";
    db.run(sql, &args![goal_id, value, at.millis()]).await.map(|_| ())
}

/// A live goal, `lock`ed as for `common::find_issue_locked`.
async fn find(db: &mut impl Db, id: &str, lock: &str) -> Result<Goal> {
    let sql = format!("SELECT * FROM goals WHERE id = ? AND deleted_at IS NULL {lock}");
    db.first(&sql, &args![id], rows::goal).await?.ok_or_else(|| Error::not_found("Goal", id))
}

/// Writes a goal row, new or changed.
async fn save(db: &mut impl Db, g: &Goal) -> Result<()> {
    db.run(
        "INSERT INTO goals (id, title, description, metric, target_value, current_value, baseline_value, unit, status, \
         project_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET \
         title = excluded.title, description = excluded.description, metric = excluded.metric, \
         target_value = excluded.target_value, current_value = excluded.current_value, \
         baseline_value = excluded.baseline_value, unit = excluded.unit, \
         status = excluded.status, project_id = excluded.project_id, updated_at = excluded.updated_at",
        &args![
            &g.id,
            &g.title,
            &g.description,
            &g.metric,
            g.target_value,
            g.current_value,
            g.baseline_value,
            &g.unit,
            g.status.as_str(),
            &g.project_id,
            g.created_at.millis(),
            g.updated_at.millis(),
        ],
    )
    .await
    .map(|_| ())
}
