//! Bulk seeding of a realistic backlog, for benchmarks and demos. Writes rows directly in one
//! transaction (an HTTP create per issue would dominate a million-issue run), computing the
//! dispatch columns with the same domain functions the store uses.

use loop_core::dispatch::{base_score, dispatch_key};
use loop_core::id::new_id;
use loop_core::issue::{IssueType, Priority};
use loop_core::{Error, Result, Timestamp};

use crate::{SqliteStore, db};

#[derive(Debug, Clone)]
pub struct BacklogSpec {
    pub issues: u64,
    /// Deterministic: the same seed gives the same backlog.
    pub seed: u64,
    pub projects: u64,
    /// How many of the projects have an active goal.
    pub projects_with_goal: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BacklogReport {
    pub todo: u64,
    /// Todo issues blocked by an open issue.
    pub blocked: u64,
    pub eligible: u64,
}

impl SqliteStore {
    /// Seeds an empty database: 60% todo, 30% done, 10% backlog; uniform priorities and types;
    /// 20% of todo issues blocked by an open backlog issue; todo entry times spread over 90 days.
    pub async fn seed_backlog(&self, spec: &BacklogSpec) -> Result<BacklogReport> {
        let now = self.now();
        let mut rng = spec.seed.max(1);
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut tx = self.writer.begin().await.map_err(db)?;
        let mut projects = Vec::new();
        for p in 0..spec.projects {
            let id = new_id();
            let goal = if p < spec.projects_with_goal { Some(new_id()) } else { None };
            sqlx::query("INSERT INTO projects (id, name, status, health, goal_id, created_at, updated_at) VALUES (?, ?, 'active', 'on_track', ?, ?, ?)")
                .bind(&id).bind(format!("Project {p}")).bind(&goal).bind(now.millis()).bind(now.millis())
                .execute(&mut *tx).await.map_err(db)?;
            if let Some(g) = &goal {
                sqlx::query("INSERT INTO goals (id, title, status, project_id, created_at, updated_at) VALUES (?, ?, 'active', ?, ?, ?)")
                    .bind(g).bind(format!("Goal {p}")).bind(&id).bind(now.millis()).bind(now.millis())
                    .execute(&mut *tx).await.map_err(db)?;
            }
            projects.push((id, goal.is_some()));
        }
        let types = IssueType::ALL;
        let mut report = BacklogReport::default();
        let mut open_blockers: Vec<String> = Vec::new();
        let day = loop_core::dispatch::DAY_MS;
        for n in 1..=spec.issues {
            let id = new_id();
            let r = next();
            let status = match r % 10 {
                0..=5 => "todo",
                6..=8 => "done",
                _ => "backlog",
            };
            let priority = Priority::new((next() % 5) as i64).map_err(Error::Internal)?;
            let issue_type = types[(next() % types.len() as u64) as usize];
            let project =
                (!projects.is_empty() && next() % 10 < 7).then(|| &projects[(next() % projects.len() as u64) as usize]);
            let created = now.plus_millis(-((next() % (90 * day as u64)) as i64));
            let blocked = status == "todo" && !open_blockers.is_empty() && next() % 5 == 0;
            let (todo_since, key) = if status == "todo" {
                let base = base_score(priority, issue_type, project.is_some_and(|p| p.1));
                (Some(created.millis()), Some(dispatch_key(base, Timestamp::from_millis(created.millis()))))
            } else {
                (None, None)
            };
            sqlx::query(
                "INSERT INTO issues (id, number, title, type, status, priority, project_id, created_at, updated_at, \
                 completed_at, todo_since, open_blockers, has_active_goal, dispatch_key) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(n as i64)
            .bind(format!("Seeded issue {n}"))
            .bind(issue_type.as_str())
            .bind(status)
            .bind(priority.value() as i64)
            .bind(project.map(|p| &p.0))
            .bind(created.millis())
            .bind(created.millis())
            .bind((status == "done").then_some(created.millis()))
            .bind(todo_since)
            .bind(blocked as i64)
            .bind(project.is_some_and(|p| p.1))
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            if blocked {
                let blocker = &open_blockers[(next() % open_blockers.len() as u64) as usize];
                sqlx::query(
                    "INSERT INTO issue_relations (id, type, issue_id, related_issue_id, edge_kind, edge_from, edge_to, created_at) \
                     VALUES (?, 'blocked_by', ?, ?, 'block', ?, ?, ?)",
                )
                .bind(new_id()).bind(&id).bind(blocker).bind(blocker).bind(&id).bind(now.millis())
                .execute(&mut *tx).await.map_err(db)?;
                report.blocked += 1;
            }
            if status == "backlog" && open_blockers.len() < 1000 {
                open_blockers.push(id);
            }
            if status == "todo" {
                report.todo += 1;
            }
        }
        tx.commit().await.map_err(db)?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *self.writer.acquire().await.map_err(db)?)
            .await
            .map_err(db)?;
        // Statistics, as a long-lived database would have, but only the per-index ones: this
        // SQLite is built with STAT4, under which statements are re-prepared whenever a bound
        // value could change their plan, which is every claim.
        sqlx::query("ANALYZE").execute(&mut *self.writer.acquire().await.map_err(db)?).await.map_err(db)?;
        sqlx::query("DELETE FROM sqlite_stat4")
            .execute(&mut *self.writer.acquire().await.map_err(db)?)
            .await
            .map_err(db)?;
        report.eligible = report.todo - report.blocked;
        Ok(report)
    }
}
