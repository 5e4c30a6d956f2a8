//! The dashboard's reads: counts, chains of work and prompt health.
//!
//! Reads that take several queries run in one read-only REPEATABLE READ transaction: other
//! nodes keep writing meanwhile, and every query of the answer then sees the same snapshot (a
//! root deleted between the chain query and the root's lookup would otherwise fail the read).

use std::collections::BTreeMap;

use async_trait::async_trait;
use loop_core::dashboard::{
    Chain, ChainStep, DispatchCounts, GoalCounts, IssueCounts, PromptHealth, ReviewSummary, Stats, needs_attention,
};
use loop_core::event::IssueEvent;
use loop_core::label::LabelRef;
use loop_core::store::DashboardStore;
use loop_core::{Page, Paged, Result, Timestamp};
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::claiming::READY;
use crate::rows::{self, ISSUE_COLUMNS};
use crate::sql::{pg, placeholders};
use crate::{PgStore, db};

const DAY_MS: i64 = 86_400_000;

/// A read-only transaction on one snapshot.
async fn snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await.map_err(db)?;
    Ok(tx)
}

#[async_trait]
impl DashboardStore for PgStore {
    async fn stats(&self) -> Result<Stats> {
        let now = self.now();
        let mut tx = snapshot(&self.pool).await?;
        let mut issues = IssueCounts { total: 0, by_status: BTreeMap::new(), by_type: BTreeMap::new() };
        for (column, counts) in [("status", &mut issues.by_status), ("type", &mut issues.by_type)] {
            let sql =
                format!("SELECT {column} AS k, count(*) AS n FROM issues WHERE deleted_at IS NULL GROUP BY {column}");
            for g in sqlx::query(&sql).fetch_all(&mut *tx).await.map_err(db)? {
                counts.insert(g.try_get("k").map_err(db)?, g.try_get::<i64, _>("n").map_err(db)? as u64);
            }
        }
        issues.total = issues.by_status.values().sum();
        // Booleans cannot be summed here: counted with filters instead.
        let goals = sqlx::query(
            "SELECT count(*) AS total, count(*) FILTER (WHERE status = 'active') AS active, \
             count(*) FILTER (WHERE status = 'achieved') AS achieved FROM goals WHERE deleted_at IS NULL",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let count = |col: &str| goals.try_get::<i64, _>(col).map(|n| n as u64).map_err(db);
        let goals = GoalCounts { total: count("total")?, active: count("active")?, achieved: count("achieved")? };
        let queue_depth: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM issues WHERE {READY}"))
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let completed_last24h: i64 = sqlx::query_scalar(pg(
            "SELECT count(*) FROM issues WHERE status = 'done' AND deleted_at IS NULL AND completed_at >= ?",
        ))
        .bind(now.millis() - DAY_MS)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let dispatch = DispatchCounts {
            queue_depth: queue_depth as u64,
            active_count: issues.by_status.get("in_progress").copied().unwrap_or(0),
            completed_last24h: completed_last24h as u64,
        };
        Ok(Stats { issues, goals, dispatch })
    }

    async fn activity(&self, page: Page) -> Result<Paged<Chain>> {
        let mut tx = snapshot(&self.pool).await?;
        let total: i64 =
            sqlx::query_scalar("SELECT count(*) FROM issues WHERE parent_id IS NULL AND deleted_at IS NULL")
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        // A deleted parent's children are detached, so every chain key names a live root. Ties
        // on the latest change are broken by the root's id in byte order, as SQLite compares
        // text.
        let roots = sqlx::query(pg("SELECT coalesce(parent_id, id) AS root, max(updated_at) AS latest FROM issues \
             WHERE deleted_at IS NULL GROUP BY coalesce(parent_id, id) \
             ORDER BY latest DESC, coalesce(parent_id, id) COLLATE \"C\" DESC LIMIT ? OFFSET ?"))
        .bind(page.limit as i64)
        .bind(page.offset as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut data = Vec::with_capacity(roots.len());
        for row in &roots {
            let root_id: String = row.try_get("root").map_err(db)?;
            let root = rows::require_issue(&mut tx, &root_id).await?;
            let latest_activity = Timestamp::from_millis(row.try_get("latest").map_err(db)?);
            let children = sqlx::query(&placeholders(&format!(
                "SELECT {ISSUE_COLUMNS} FROM issues WHERE parent_id = ? AND deleted_at IS NULL ORDER BY created_at, number"
            )))
            .bind(&root.id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            // The children's relations in one query, not one per child.
            let mut relations = sqlx::query(pg("SELECT r.* FROM issues a \
                 JOIN issue_relations r ON r.issue_id = a.id \
                 JOIN issues b ON b.id = r.related_issue_id AND b.deleted_at IS NULL \
                 WHERE a.parent_id = ? AND a.deleted_at IS NULL ORDER BY r.created_at, r.id COLLATE \"C\""))
            .bind(&root.id)
            .fetch_all(&mut *tx)
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
        tx.commit().await.map_err(db)?;
        Ok(Paged { data, total: total as u64 })
    }

    async fn prompt_health(&self) -> Result<Vec<PromptHealth>> {
        let mut tx = snapshot(&self.pool).await?;
        let templates = sqlx::query(
            "SELECT * FROM prompt_templates WHERE deleted_at IS NULL ORDER BY created_at, id COLLATE \"C\"",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        .iter()
        .map(rows::template)
        .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(templates.len());
        for template in templates {
            let recent_versions =
                sqlx::query(pg("SELECT * FROM prompt_versions WHERE template_id = ? ORDER BY version DESC LIMIT 5"))
                    .bind(&template.id)
                    .fetch_all(&mut *tx)
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
                    None => crate::templates::find_version(&mut tx, id).await?,
                },
            };
            // `avg` of integers is NUMERIC here (REAL in SQLite): read as double precision.
            let reviews = sqlx::query(pg("SELECT count(*) AS n, avg(r.clarity)::DOUBLE PRECISION AS clarity, \
                 avg(r.completeness)::DOUBLE PRECISION AS completeness, \
                 avg(r.relevance)::DOUBLE PRECISION AS relevance \
                 FROM prompt_reviews r JOIN prompt_versions v ON v.id = r.version_id WHERE v.template_id = ?"))
            .bind(&template.id)
            .fetch_one(&mut *tx)
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
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn labels_of_issues(&self, issue_ids: &[String]) -> Result<BTreeMap<String, Vec<LabelRef>>> {
        let mut out: BTreeMap<String, Vec<LabelRef>> = BTreeMap::new();
        if issue_ids.is_empty() {
            return Ok(out);
        }
        let mut conn = self.pool.acquire().await.map_err(db)?;
        // One array parameter instead of SQLite's `IN (?, ?, …)`; names in byte order, as
        // SQLite sorts text.
        let rows = sqlx::query(pg(
            "SELECT il.issue_id, l.id, l.name, l.color FROM issue_labels il JOIN labels l ON l.id = il.label_id \
             WHERE il.issue_id = ANY(?) AND l.deleted_at IS NULL ORDER BY l.name COLLATE \"C\"",
        ))
        .bind(issue_ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        for r in rows {
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
        sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM issue_events").fetch_one(&self.pool).await.map_err(db)
    }

    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<IssueEvent>> {
        let rows = sqlx::query(pg("SELECT * FROM issue_events WHERE id > ? ORDER BY id LIMIT ?"))
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(rows::event).collect()
    }
}
