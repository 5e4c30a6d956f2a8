//! The dashboard's reads: counts, chains of work and prompt health.

use std::collections::BTreeMap;

use async_trait::async_trait;
use loop_core::dashboard::{
    Chain, ChainStep, DispatchCounts, GoalCounts, IssueCounts, PromptHealth, ReviewSummary, Stats, needs_attention,
};
use loop_core::event::IssueEvent;
use loop_core::label::LabelRef;
use loop_core::store::DashboardStore;
use loop_core::{Page, Paged, Result, Timestamp};
use sqlx::Row;

use crate::claiming::READY;
use crate::rows::{self, ISSUE_COLUMNS};
use crate::{SqliteStore, db};

const DAY_MS: i64 = 86_400_000;

#[async_trait]
impl DashboardStore for SqliteStore {
    async fn stats(&self) -> Result<Stats> {
        let now = self.now();
        let mut conn = self.reader.acquire().await.map_err(db)?;
        // Two index scans (issues_status, issues_type): grouping by both would read every row.
        let mut issues = IssueCounts { total: 0, by_status: BTreeMap::new(), by_type: BTreeMap::new() };
        for (column, counts) in [("status", &mut issues.by_status), ("type", &mut issues.by_type)] {
            let sql =
                format!("SELECT {column} AS k, count(*) AS n FROM issues WHERE deleted_at IS NULL GROUP BY {column}");
            for g in sqlx::query(&sql).fetch_all(&mut *conn).await.map_err(db)? {
                counts.insert(g.try_get("k").map_err(db)?, g.try_get::<i64, _>("n").map_err(db)? as u64);
            }
        }
        issues.total = issues.by_status.values().sum();
        let goals = sqlx::query(
            "SELECT count(*) AS total, coalesce(sum(status = 'active'), 0) AS active, \
             coalesce(sum(status = 'achieved'), 0) AS achieved FROM goals WHERE deleted_at IS NULL",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
        let count = |col: &str| goals.try_get::<i64, _>(col).map(|n| n as u64).map_err(db);
        let goals = GoalCounts { total: count("total")?, active: count("active")?, achieved: count("achieved")? };
        let queue_depth: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM issues INDEXED BY issues_ready WHERE {READY}"))
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
        let completed_last24h: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM issues WHERE status = 'done' AND deleted_at IS NULL AND completed_at >= ?",
        )
        .bind(now.millis() - DAY_MS)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
        let dispatch = DispatchCounts {
            queue_depth: queue_depth as u64,
            active_count: issues.by_status.get("in_progress").copied().unwrap_or(0),
            completed_last24h: completed_last24h as u64,
        };
        Ok(Stats { issues, goals, dispatch })
    }

    async fn activity(&self, page: Page) -> Result<Paged<Chain>> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        let total: i64 =
            sqlx::query_scalar("SELECT count(*) FROM issues WHERE parent_id IS NULL AND deleted_at IS NULL")
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
        // A deleted parent's children are detached, so every chain key names a live root. This
        // reads every live issue (about 0.1 s at 100k): see 0005_dashboard.sql for why no index.
        let roots = sqlx::query(
            "SELECT coalesce(parent_id, id) AS root, max(updated_at) AS latest FROM issues \
             WHERE deleted_at IS NULL GROUP BY coalesce(parent_id, id) ORDER BY latest DESC, root DESC LIMIT ? OFFSET ?",
        )
        .bind(page.limit as i64)
        .bind(page.offset as i64)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        let mut data = Vec::with_capacity(roots.len());
        for row in &roots {
            let root_id: String = row.try_get("root").map_err(db)?;
            let root = rows::require_issue(&mut conn, &root_id).await?;
            let latest_activity = Timestamp::from_millis(row.try_get("latest").map_err(db)?);
            // Named index: with statistics SQLite would rather walk issues_live in order.
            let children = sqlx::query(&format!(
                "SELECT {ISSUE_COLUMNS} FROM issues INDEXED BY issues_parent WHERE parent_id = ? AND deleted_at IS NULL \
                 ORDER BY created_at, number"
            ))
            .bind(&root.id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
            // The children's relations in one query, not one per child. `CROSS JOIN` keeps the
            // children as the outer loop: otherwise SQLite may scan every relation.
            let mut relations = sqlx::query(
                "SELECT r.* FROM issues a INDEXED BY issues_parent \
                 CROSS JOIN issue_relations r ON r.issue_id = a.id \
                 JOIN issues b ON b.id = r.related_issue_id AND b.deleted_at IS NULL \
                 WHERE a.parent_id = ? AND a.deleted_at IS NULL ORDER BY r.created_at, r.id",
            )
            .bind(&root.id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?
            .iter()
            .map(rows::relation)
            .collect::<Result<Vec<_>>>()?;
            let mut steps = Vec::with_capacity(children.len());
            for child in &children {
                let issue = rows::issue(child)?;
                let (own, rest) = relations.into_iter().partition(|r| r.issue_id == issue.id);
                relations = rest;
                steps.push(ChainStep { issue, relations: own });
            }
            data.push(Chain { root, children: steps, latest_activity });
        }
        Ok(Paged { data, total: total as u64 })
    }

    async fn prompt_health(&self) -> Result<Vec<PromptHealth>> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        let templates = sqlx::query("SELECT * FROM prompt_templates WHERE deleted_at IS NULL ORDER BY created_at, id")
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?
            .iter()
            .map(rows::template)
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(templates.len());
        for template in templates {
            let recent_versions =
                sqlx::query("SELECT * FROM prompt_versions WHERE template_id = ? ORDER BY version DESC LIMIT 5")
                    .bind(&template.id)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db)?
                    .iter()
                    .map(rows::version)
                    .collect::<Result<Vec<_>>>()?;
            // The active version wherever it is in the history (the reference looked only among
            // the five newest).
            let active_version = match &template.active_version_id {
                None => None,
                Some(id) => match recent_versions.iter().find(|v| &v.id == id) {
                    Some(v) => Some(v.clone()),
                    None => crate::templates::find_version(&mut conn, id).await?,
                },
            };
            let reviews = sqlx::query(
                "SELECT count(*) AS n, avg(r.clarity) AS clarity, avg(r.completeness) AS completeness, \
                 avg(r.relevance) AS relevance FROM prompt_reviews r JOIN prompt_versions v ON v.id = r.version_id \
                 WHERE v.template_id = ?",
            )
            .bind(&template.id)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            let review_summary = ReviewSummary {
                total_reviews: reviews.try_get::<i64, _>("n").map_err(db)? as u64,
                avg_clarity: reviews.try_get("clarity").map_err(db)?,
                avg_completeness: reviews.try_get("completeness").map_err(db)?,
                avg_relevance: reviews.try_get("relevance").map_err(db)?,
                composite_score: active_version.as_ref().and_then(|v| v.review_score),
            };
            out.push(PromptHealth {
                needs_attention: needs_attention(active_version.as_ref()),
                template,
                active_version,
                recent_versions,
                review_summary,
            });
        }
        Ok(out)
    }

    async fn labels_of_issues(&self, issue_ids: &[String]) -> Result<BTreeMap<String, Vec<LabelRef>>> {
        let mut out: BTreeMap<String, Vec<LabelRef>> = BTreeMap::new();
        if issue_ids.is_empty() {
            return Ok(out);
        }
        let mut conn = self.reader.acquire().await.map_err(db)?;
        let sql = format!(
            "SELECT il.issue_id, l.id, l.name, l.color FROM issue_labels il JOIN labels l ON l.id = il.label_id \
             WHERE il.issue_id IN ({}) AND l.deleted_at IS NULL ORDER BY l.name",
            vec!["?"; issue_ids.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in issue_ids {
            q = q.bind(id);
        }
        for r in q.fetch_all(&mut *conn).await.map_err(db)? {
            let label = LabelRef {
                id: r.try_get("id").map_err(db)?,
                name: r.try_get("name").map_err(db)?,
                color: r.try_get("color").map_err(db)?,
            };
            out.entry(r.try_get("issue_id").map_err(db)?).or_default().push(label);
        }
        Ok(out)
    }

    async fn last_event_id(&self) -> Result<i64> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM issue_events").fetch_one(&mut *conn).await.map_err(db)
    }

    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<IssueEvent>> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        let rows = sqlx::query("SELECT * FROM issue_events WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        rows.iter().map(rows::event).collect()
    }
}
