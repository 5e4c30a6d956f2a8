//! The dashboard's reads: counts, chains of work, prompt health and the event feed.
//!
//! Reads that take several queries run on one snapshot (see [`Backend::snapshot`]): on
//! PostgreSQL other nodes keep writing meanwhile (a root deleted between the chain query and
//! the root's lookup would otherwise fail the read).

use std::collections::BTreeMap;

use async_trait::async_trait;
use loop_core::dashboard::{
    Chain, ChainStep, DispatchCounts, GoalCounts, IssueCounts, PromptHealth, ReviewSummary, Stats, needs_attention,
};
use loop_core::dispatch::DAY_MS;
use loop_core::event::IssueEvent;
use loop_core::label::LabelRef;
use loop_core::store::DashboardStore;
use loop_core::{Page, Paged, Result, Timestamp};

use crate::claiming::READY;
use crate::common::require_issue;
use crate::db::{Db, DbExt, Dialect};
use crate::rows::{self, ISSUE_COLUMNS};
use crate::{Backend, SqlStore, args, templates};

#[async_trait]
impl<B: Backend> DashboardStore for SqlStore<B> {
    async fn stats(&self) -> Result<Stats> {
        let now = self.now();
        self.snapshot((), move |db, ()| Box::pin(stats(db, now))).await
    }

    async fn activity(&self, page: Page) -> Result<Paged<Chain>> {
        self.snapshot((), move |db, ()| Box::pin(activity(db, page))).await
    }

    async fn prompt_health(&self) -> Result<Vec<PromptHealth>> {
        self.snapshot((), |db, ()| Box::pin(prompt_health(db))).await
    }

    async fn labels_of_issues(&self, issue_ids: &[String]) -> Result<BTreeMap<String, Vec<LabelRef>>> {
        if issue_ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.read(issue_ids.to_vec(), move |db, ids| {
            Box::pin(async move {
                let list = vec!["?"; ids.len()].join(", ");
                let sql = format!(
                    r#"SELECT il.issue_id, l.id, l.name, l.color FROM issue_labels il JOIN labels l ON l.id = il.label_id
                     WHERE il.issue_id IN ({list}) AND l.deleted_at IS NULL ORDER BY l.name COLLATE "C""#
                );
                let args: Vec<_> = ids.iter().map(crate::Arg::from).collect();
                let mut out: BTreeMap<String, Vec<LabelRef>> = BTreeMap::new();
                for row in db.all(&sql, &args).await? {
                    out.entry(rows::get(&row, "issue_id")?).or_default().push(rows::label_ref(&row)?);
                }
                Ok(out)
            })
        })
        .await
    }

    async fn last_event_id(&self) -> Result<i64> {
        self.read((), |db, ()| {
            Box::pin(async move {
                let sql = match db.dialect() {
                    Dialect::Sqlite => "SELECT COALESCE(MAX(id), 0) AS id FROM issue_events",
                    Dialect::Postgres => FEED_END,
                };
                db.int(sql, &[], "id").await
            })
        })
        .await
    }

    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<IssueEvent>> {
        self.read((), move |db, ()| {
            Box::pin(async move {
                let sql = match db.dialect() {
                    Dialect::Sqlite => "SELECT * FROM issue_events WHERE id > ?1 ORDER BY id LIMIT ?2",
                    Dialect::Postgres => FEED_AFTER,
                };
                db.each(sql, &args![after, limit as i64], rows::event).await
            })
        })
        .await
    }
}

/// The event feed on PostgreSQL, where events commit out of id order (ids come from a sequence,
/// and a transaction may take an id early and commit late). Readers follow the log in
/// (transaction, id) order and take only events of transactions older than every transaction
/// still running (`pg_snapshot_xmin`): every event not yet visible then belongs after the
/// cursor, so none is ever skipped, and no writer waits for another to commit.
const FEED_AFTER: &str = "SELECT id, issue_id, kind, actor, data, created_at FROM issue_events \
     WHERE (tx, id) > (COALESCE((SELECT tx FROM issue_events WHERE id = ?1), '0'::xid8), ?1) \
     AND tx < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY tx, id LIMIT ?2";

/// The feed's last position on PostgreSQL (see [`FEED_AFTER`]).
const FEED_END: &str = "SELECT COALESCE((SELECT id FROM issue_events WHERE tx < pg_snapshot_xmin(pg_current_snapshot()) \
     ORDER BY tx DESC, id DESC LIMIT 1), 0) AS id";

async fn stats(db: &mut impl Db, now: Timestamp) -> Result<Stats> {
    // Two index scans (issues_status, issues_type): grouping by both would read every row.
    let mut issues = IssueCounts { total: 0, by_status: BTreeMap::new(), by_type: BTreeMap::new() };
    for (column, counts) in [("status", &mut issues.by_status), ("type", &mut issues.by_type)] {
        let sql = format!("SELECT {column} AS k, count(*) AS n FROM issues WHERE deleted_at IS NULL GROUP BY {column}");
        for g in db.all(&sql, &[]).await? {
            counts.insert(rows::get(&g, "k")?, rows::get::<i64>(&g, "n")? as u64);
        }
    }
    issues.total = issues.by_status.values().sum();
    let goals = db
        .one(
            "SELECT count(*) AS total, count(*) FILTER (WHERE status = 'active') AS active, \
             count(*) FILTER (WHERE status = 'achieved') AS achieved FROM goals WHERE deleted_at IS NULL",
            &[],
        )
        .await?;
    let goals = match goals {
        Some(g) => {
            let count = |col| rows::get::<i64>(&g, col).map(|n| n as u64);
            GoalCounts { total: count("total")?, active: count("active")?, achieved: count("achieved")? }
        }
        None => GoalCounts { total: 0, active: 0, achieved: 0 },
    };
    let queue_depth =
        db.int(&format!("SELECT count(*) AS n FROM issues INDEXED BY issues_ready WHERE {READY}"), &[], "n").await?;
    let done = "SELECT count(*) AS n FROM issues WHERE status = 'done' AND deleted_at IS NULL AND completed_at >= ?";
    let completed_last24h = db.int(done, &args![now.millis() - DAY_MS], "n").await?;
    let dispatch = DispatchCounts {
        queue_depth: queue_depth as u64,
        active_count: issues.by_status.get("in_progress").copied().unwrap_or(0),
        completed_last24h: completed_last24h as u64,
    };
    Ok(Stats { issues, goals, dispatch })
}

async fn activity(db: &mut impl Db, page: Page) -> Result<Paged<Chain>> {
    let total =
        db.int("SELECT count(*) AS n FROM issues WHERE parent_id IS NULL AND deleted_at IS NULL", &[], "n").await?;
    // A deleted parent's children are detached, so every chain key names a live root. Ties on
    // the latest change are broken by the root's id in byte order.
    let roots = db
        .all(
            r#"SELECT COALESCE(parent_id, id) AS root, MAX(updated_at) AS latest FROM issues
             WHERE deleted_at IS NULL GROUP BY COALESCE(parent_id, id)
             ORDER BY latest DESC, COALESCE(parent_id, id) COLLATE "C" DESC LIMIT ? OFFSET ?"#,
            &args![page.limit as i64, page.offset as i64],
        )
        .await?;
    let children_sql = format!(
        "SELECT {ISSUE_COLUMNS} FROM issues WHERE parent_id = ? AND deleted_at IS NULL ORDER BY created_at, number"
    );
    let mut data = Vec::with_capacity(roots.len());
    for row in &roots {
        let root = require_issue(db, &rows::get::<String>(row, "root")?).await?;
        let latest_activity = rows::ts(row, "latest")?;
        let children = db.each(&children_sql, &args![&root.id], rows::issue).await?;
        // The children's relations in one query, not one per child.
        let mut relations = db
            .each(
                r#"SELECT r.* FROM issues a
                 JOIN issue_relations r ON r.issue_id = a.id
                 JOIN issues b ON b.id = r.related_issue_id AND b.deleted_at IS NULL
                 WHERE a.parent_id = ? AND a.deleted_at IS NULL ORDER BY r.created_at, r.id COLLATE "C""#,
                &args![&root.id],
                rows::relation,
            )
            .await?;
        let mut steps = Vec::with_capacity(children.len());
        for issue in children {
            let (own, rest) = relations.into_iter().partition(|r| r.issue_id == issue.id);
            relations = rest;
            steps.push(ChainStep { issue, relations: own });
        }
        data.push(Chain { root, children: steps, latest_activity });
    }
    Ok(Paged { data, total: total as u64 })
}

async fn prompt_health(db: &mut impl Db) -> Result<Vec<PromptHealth>> {
    let sql = r#"SELECT * FROM prompt_templates WHERE deleted_at IS NULL ORDER BY created_at, id COLLATE "C""#;
    let templates = db.each(sql, &[], rows::template).await?;
    let threshold = crate::settings::load(db).await?.score_threshold();
    let mut out = Vec::with_capacity(templates.len());
    for template in templates {
        let recent = "SELECT * FROM prompt_versions WHERE template_id = ? ORDER BY version DESC LIMIT 5";
        let recent_versions = db.each(recent, &args![&template.id], rows::version).await?;
        // The active version wherever it is in the history (the reference looked only among the
        // five newest).
        let active_version = match &template.active_version_id {
            None => None,
            Some(id) => match recent_versions.iter().find(|v| &v.id == id) {
                Some(v) => Some(v.clone()),
                None => templates::find_version(db, id).await?,
            },
        };
        let reviews = db
            .one(
                "SELECT count(*) AS n, CAST(AVG(r.clarity) AS DOUBLE PRECISION) AS clarity, \
                 CAST(AVG(r.completeness) AS DOUBLE PRECISION) AS completeness, \
                 CAST(AVG(r.relevance) AS DOUBLE PRECISION) AS relevance \
                 FROM prompt_reviews r JOIN prompt_versions v ON v.id = r.version_id WHERE v.template_id = ?",
                &args![&template.id],
            )
            .await?;
        let review_summary = match &reviews {
            Some(r) => ReviewSummary {
                total_reviews: rows::get::<i64>(r, "n")? as u64,
                avg_clarity: rows::get(r, "clarity")?,
                avg_completeness: rows::get(r, "completeness")?,
                avg_relevance: rows::get(r, "relevance")?,
                composite_score: active_version.as_ref().and_then(|v| v.review_score),
            },
            None => ReviewSummary {
                total_reviews: 0,
                avg_clarity: None,
                avg_completeness: None,
                avg_relevance: None,
                composite_score: None,
            },
        };
        out.push(PromptHealth {
            needs_attention: needs_attention(active_version.as_ref(), threshold),
            template,
            active_version,
            recent_versions,
            review_summary,
        });
    }
    Ok(out)
}
