//! Claims, the queue, explanations, leases.

use async_trait::async_trait;
use loop_core::dispatch::{self, Claim, ClaimRequest, Explanation, QueueEntry, ScoreBreakdown};
use loop_core::event::NewEvent;
use loop_core::hydration::{MAX_NEIGHBOURS, PromptInputs};
use loop_core::issue::{Issue, IssueStatus};
use loop_core::session::{AgentSession, SessionFilter, SessionOutcome, SessionReport};
use loop_core::store::DispatchStore;
use loop_core::template::{SelectionContext, TemplateChooser};
use loop_core::{Actor, Error, Page, Paged, Result, Timestamp, id::new_id};
use sqlx::{Row, SqliteConnection};

use crate::dispatch_index::refresh_issue;
use crate::rows::{self, ISSUE_COLUMNS, record, require_issue};
use crate::{SqliteStore, db, sessions};

/// Live children of `?1` other than `?2`. The index is named because, with statistics,
/// SQLite prefers walking the `number` index to avoid a sort: a scan of every issue.
const CHILDREN: &str = "parent_id = ?1 AND id <> ?2 AND deleted_at IS NULL ORDER BY +number LIMIT ?3";

/// The eligibility predicate, written exactly as the partial indexes' so SQLite can use them.
/// Claims name the index (`INDEXED BY`): with statistics, SQLite otherwise picks the status
/// index and sorts every todo issue on each claim.
const READY: &str = "status = 'todo' AND open_blockers = 0 AND deleted_at IS NULL";
const READY_ORDER: &str = "dispatch_key DESC, todo_since, number";

#[async_trait]
impl DispatchStore for SqliteStore {
    async fn claim_next(&self, req: &ClaimRequest, chooser: &dyn TemplateChooser) -> Result<Option<Claim>> {
        let now = self.now();
        let mut tx = self.writer.begin().await.map_err(db)?;
        if let Some(claim) = replay(&mut tx, req, now).await? {
            return Ok(Some(claim));
        }
        let sql = match req.project_id {
            Some(_) => format!(
                "SELECT {ISSUE_COLUMNS} FROM issues INDEXED BY issues_ready_project WHERE {READY} AND project_id = ? ORDER BY {READY_ORDER} LIMIT 1"
            ),
            None => format!(
                "SELECT {ISSUE_COLUMNS} FROM issues INDEXED BY issues_ready WHERE {READY} ORDER BY {READY_ORDER} LIMIT 1"
            ),
        };
        let mut q = sqlx::query(&sql);
        if let Some(p) = &req.project_id {
            q = q.bind(p);
        }
        let Some(row) = q.fetch_optional(&mut *tx).await.map_err(db)? else {
            return Ok(None);
        };
        let issue = rows::issue(&row)?;
        let claim = take(&mut tx, issue, req, chooser, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(claim))
    }

    async fn claim_issue(&self, key: &str, req: &ClaimRequest, chooser: &dyn TemplateChooser) -> Result<Claim> {
        let now = self.now();
        let mut tx = self.writer.begin().await.map_err(db)?;
        let issue = require_issue(&mut tx, key).await?;
        if let Some(earlier) = replay(&mut tx, req, now).await? {
            if earlier.issue.id == issue.id {
                return Ok(earlier);
            }
            if req.idempotency_key.is_some() {
                return Err(key_reused(&format!("issue #{}", earlier.issue.number)));
            }
        }
        let blockers = open_blockers(&mut tx, &issue.id).await?;
        let lease = sessions::open_for_issue(&mut tx, &issue.id).await?;
        let reasons = dispatch::ineligibility(&issue, &blockers, lease.as_ref());
        if !reasons.is_empty() {
            return Err(Error::conflict(
                "not_eligible",
                format!("issue #{} cannot be dispatched: {}", issue.number, reasons.join("; ")),
            ));
        }
        let claim = take(&mut tx, issue, req, chooser, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(claim)
    }

    async fn dispatch_queue(&self, project_id: Option<&str>, page: Page) -> Result<Paged<QueueEntry>> {
        let now = self.now();
        let mut conn = self.reader.acquire().await.map_err(db)?;
        let (index, filter) = match project_id {
            Some(_) => ("issues_ready_project", format!("{READY} AND project_id = ?")),
            None => ("issues_ready", READY.to_string()),
        };
        let count_sql = format!("SELECT count(*) FROM issues INDEXED BY {index} WHERE {filter}");
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
        if let Some(p) = project_id {
            count = count.bind(p);
        }
        let total = count.fetch_one(&mut *conn).await.map_err(db)? as u64;
        let sql = format!(
            "SELECT {ISSUE_COLUMNS}, todo_since, has_active_goal FROM issues INDEXED BY {index} WHERE {filter} \
             ORDER BY {READY_ORDER} LIMIT ? OFFSET ?"
        );
        let mut q = sqlx::query(&sql);
        if let Some(p) = project_id {
            q = q.bind(p);
        }
        let rows = q.bind(page.limit as i64).bind(page.offset as i64).fetch_all(&mut *conn).await.map_err(db)?;
        let data = rows
            .iter()
            .map(|row| {
                let issue = rows::issue(row)?;
                let since =
                    Timestamp::from_millis(row.try_get::<Option<i64>, _>("todo_since").map_err(db)?.unwrap_or(0));
                let goal: bool = row.try_get("has_active_goal").map_err(db)?;
                let breakdown = ScoreBreakdown::new(&issue, goal, since, now);
                Ok(QueueEntry { score: breakdown.total(), breakdown, todo_since: since, issue })
            })
            .collect::<Result<_>>()?;
        Ok(Paged { data, total })
    }

    async fn explain(&self, key: &str) -> Result<Explanation> {
        let now = self.now();
        let mut conn = self.reader.acquire().await.map_err(db)?;
        let issue = require_issue(&mut conn, key).await?;
        let blockers = open_blockers(&mut conn, &issue.id).await?;
        let lease = sessions::open_for_issue(&mut conn, &issue.id).await?;
        let reasons = dispatch::ineligibility(&issue, &blockers, lease.as_ref());
        let row = sqlx::query("SELECT todo_since, has_active_goal, dispatch_key FROM issues WHERE id = ?")
            .bind(&issue.id)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
        let since: Option<i64> = row.try_get("todo_since").map_err(db)?;
        let breakdown = match (issue.status, since) {
            (IssueStatus::Todo, Some(since)) => {
                let goal: bool = row.try_get("has_active_goal").map_err(db)?;
                Some(ScoreBreakdown::new(&issue, goal, Timestamp::from_millis(since), now))
            }
            _ => None,
        };
        let position = if reasons.is_empty() {
            let key: i64 = row.try_get("dispatch_key").map_err(db)?;
            let ahead: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM issues INDEXED BY issues_ready WHERE {READY} AND (dispatch_key > ?1 OR (dispatch_key = ?1 AND \
                 (todo_since < ?2 OR (todo_since = ?2 AND number < ?3))))"
            ))
            .bind(key)
            .bind(since)
            .bind(issue.number)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            Some(ahead as u64 + 1)
        } else {
            None
        };
        Ok(Explanation {
            eligible: reasons.is_empty(),
            reasons,
            blockers,
            lease,
            score: breakdown.map(|b| b.total()),
            breakdown,
            position,
            issue,
        })
    }

    async fn heartbeat(&self, session_id: &str, lease_ttl_ms: i64) -> Result<AgentSession> {
        let now = self.now();
        let mut tx = self.writer.begin().await.map_err(db)?;
        let s = sessions::require(&mut tx, session_id).await?;
        if let Some(outcome) = s.outcome {
            return Err(lease_lost(&s, outcome));
        }
        sqlx::query("UPDATE agent_sessions SET lease_expires_at = ? WHERE id = ?")
            .bind(now.plus_millis(lease_ttl_ms).millis())
            .bind(&s.id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let s = sessions::require(&mut tx, session_id).await?;
        tx.commit().await.map_err(db)?;
        Ok(s)
    }

    async fn end_session(
        &self,
        session_id: &str,
        outcome: SessionOutcome,
        report: SessionReport,
        actor: &Actor,
    ) -> Result<AgentSession> {
        let now = self.now();
        let mut tx = self.writer.begin().await.map_err(db)?;
        let s = sessions::require(&mut tx, session_id).await?;
        if let Some(o) = s.outcome {
            return Err(lease_lost(&s, o));
        }
        let (ended, events) = end_and_requeue(&mut tx, &s, outcome, &report, now).await?;
        record(&mut tx, &events, actor, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(ended)
    }

    async fn get_session(&self, session_id: &str) -> Result<AgentSession> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        sessions::require(&mut conn, session_id).await
    }

    async fn list_sessions(&self, filter: &SessionFilter, page: Page) -> Result<Paged<AgentSession>> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        let mut clauses = vec!["1 = 1".to_string()];
        let mut binds: Vec<String> = Vec::new();
        for (col, v) in [("issue_id", &filter.issue_id), ("agent", &filter.agent)] {
            if let Some(v) = v {
                clauses.push(format!("{col} = ?"));
                binds.push(v.clone());
            }
        }
        if let Some(o) = filter.outcome {
            clauses.push("outcome = ?".into());
            binds.push(o.to_string());
        }
        match filter.open {
            Some(true) => clauses.push("ended_at IS NULL".into()),
            Some(false) => clauses.push("ended_at IS NOT NULL".into()),
            None => {}
        }
        let from = format!("FROM agent_sessions WHERE {}", clauses.join(" AND "));
        let binds: Vec<&str> = binds.iter().map(String::as_str).collect();
        rows::page_of(&mut conn, "*", &from, "claimed_at DESC, id DESC", &binds, page, rows::session).await
    }

    async fn issue_sessions(&self, key: &str) -> Result<Vec<AgentSession>> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        let issue = require_issue(&mut conn, key).await?;
        sqlx::query("SELECT * FROM agent_sessions WHERE issue_id = ? ORDER BY claimed_at, id")
            .bind(&issue.id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?
            .iter()
            .map(rows::session)
            .collect()
    }

    async fn prompt_inputs(&self, key: &str) -> Result<PromptInputs> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        let issue = require_issue(&mut conn, key).await?;
        let parent = match &issue.parent_id {
            Some(p) => rows::find_issue(&mut conn, p).await?,
            None => None,
        };
        let cap = MAX_NEIGHBOURS as i64;
        let siblings = match &issue.parent_id {
            Some(p) => issues(&mut conn, CHILDREN, p, &issue.id, cap).await?,
            None => Vec::new(),
        };
        let children =
            if issue.parent_id.is_none() { issues(&mut conn, CHILDREN, &issue.id, "", cap).await? } else { Vec::new() };
        let open = "deleted_at IS NULL AND status NOT IN ('done', 'canceled')";
        let blocking = issues(
            &mut conn,
            &format!("id IN (SELECT edge_to FROM issue_relations WHERE edge_kind = 'block' AND edge_from = ?1) AND id <> ?2 AND {open} ORDER BY number LIMIT ?3"),
            &issue.id,
            "",
            cap,
        )
        .await?;
        let blocked_by = issues(
            &mut conn,
            &format!("id IN (SELECT edge_from FROM issue_relations WHERE edge_kind = 'block' AND edge_to = ?1) AND id <> ?2 AND {open} ORDER BY number LIMIT ?3"),
            &issue.id,
            "",
            cap,
        )
        .await?;
        let project = match &issue.project_id {
            Some(p) => {
                rows::one(&mut conn, "SELECT * FROM projects WHERE id = ? AND deleted_at IS NULL", p, rows::project)
                    .await?
            }
            None => None,
        };
        let goal = match &project {
            Some(p) => sqlx::query(
                "SELECT * FROM goals WHERE deleted_at IS NULL AND (id = ?1 OR project_id = ?2) \
                 ORDER BY (id = ?1) DESC, (status = 'active') DESC, created_at LIMIT 1",
            )
            .bind(&p.goal_id)
            .bind(&p.id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?
            .as_ref()
            .map(rows::goal)
            .transpose()?,
            None => None,
        };
        let labels = crate::issues::labels_of(&mut conn, &issue.id).await?;
        let previous_sessions = sqlx::query(
            "SELECT * FROM agent_sessions WHERE issue_id = ? AND ended_at IS NOT NULL ORDER BY claimed_at, id LIMIT ?",
        )
        .bind(&issue.id)
        .bind(cap)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(rows::session)
        .collect::<Result<_>>()?;
        let improvement = crate::improvement::inputs_for(&mut conn, &issue.id).await?;
        Ok(PromptInputs {
            improvement,
            issue,
            parent,
            siblings,
            children,
            project,
            goal,
            labels,
            blocking,
            blocked_by,
            previous_sessions,
        })
    }

    async fn selection_context(&self, key: &str) -> Result<SelectionContext> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        let issue = require_issue(&mut conn, key).await?;
        selection_context(&mut conn, &issue).await
    }

    async fn record_prompt_error(&self, session_id: &str, error: &str) -> Result<()> {
        sqlx::query("UPDATE agent_sessions SET prompt_error = ? WHERE id = ?")
            .bind(error)
            .bind(session_id)
            .execute(&self.writer)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn expire_leases(&self) -> Result<Vec<AgentSession>> {
        let now = self.now();
        let mut tx = self.writer.begin().await.map_err(db)?;
        let due = sqlx::query(
            "SELECT * FROM agent_sessions WHERE ended_at IS NULL AND lease_expires_at <= ? ORDER BY lease_expires_at",
        )
        .bind(now.millis())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        .iter()
        .map(rows::session)
        .collect::<Result<Vec<_>>>()?;
        if due.is_empty() {
            return Ok(due);
        }
        let mut expired = Vec::with_capacity(due.len());
        for s in &due {
            let (ended, events) =
                end_and_requeue(&mut tx, s, SessionOutcome::Expired, &SessionReport::default(), now).await?;
            record(&mut tx, &events, &Actor::system(), now).await?;
            expired.push(ended);
        }
        tx.commit().await.map_err(db)?;
        Ok(expired)
    }
}

fn lease_lost(s: &AgentSession, outcome: SessionOutcome) -> Error {
    Error::conflict(
        "session_ended",
        format!(
            "session {} already ended ({outcome}); its issue may have been handed to another agent, so stop working on it",
            s.id
        ),
    )
}

/// A retried request gets its earlier claim back: same `Idempotency-Key`, or (without a key)
/// the same agent holding a claim made within the retry window that it has not reported on.
async fn replay(conn: &mut SqliteConnection, req: &ClaimRequest, now: Timestamp) -> Result<Option<Claim>> {
    let row = match &req.idempotency_key {
        Some(key) => sqlx::query("SELECT * FROM agent_sessions WHERE agent = ? AND idempotency_key = ?")
            .bind(&req.agent)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?,
        None => sqlx::query(
            "SELECT * FROM agent_sessions WHERE agent = ? AND ended_at IS NULL AND claimed_at >= ? \
             ORDER BY claimed_at DESC LIMIT 1",
        )
        .bind(&req.agent)
        .bind(now.millis() - req.retry_window_ms)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?,
    };
    let Some(row) = row else { return Ok(None) };
    let session = rows::session(&row)?;
    let Some(issue) = rows::find_issue(conn, &session.issue_id).await? else {
        // The claimed issue was deleted since: never hand it out again.
        return match &req.idempotency_key {
            Some(_) => Err(key_reused("an issue that has since been deleted")),
            None => Ok(None),
        };
    };
    if req.idempotency_key.is_none() && req.project_id.is_some() && issue.project_id != req.project_id {
        // A retry asks for the same project; a claim elsewhere is not this request's.
        return Ok(None);
    }
    Ok(Some(Claim { issue, session, template: None, replayed: true }))
}

fn key_reused(what: &str) -> Error {
    Error::conflict(
        "idempotency_key_reused",
        format!("this Idempotency-Key was already used to claim {what}; send a new key for a new claim"),
    )
}

/// Moves an eligible issue to `in_progress` under a new session.
async fn take(
    conn: &mut SqliteConnection,
    mut issue: Issue,
    req: &ClaimRequest,
    chooser: &dyn TemplateChooser,
    now: Timestamp,
) -> Result<Claim> {
    let template = chooser.choose(&selection_context(conn, &issue).await?);
    if let Some(t) = &template {
        sqlx::query("UPDATE prompt_versions SET usage_count = usage_count + 1 WHERE id = ?")
            .bind(&t.version.id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    sqlx::query(
        "UPDATE issues SET status = 'in_progress', todo_since = NULL, dispatch_key = NULL, updated_at = ? WHERE id = ?",
    )
    .bind(now.millis())
    .bind(&issue.id)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    let session = AgentSession {
        id: new_id(),
        issue_id: issue.id.clone(),
        agent: req.agent.clone(),
        template_version_id: template.as_ref().map(|t| t.version.id.clone()),
        claimed_at: now,
        lease_expires_at: now.plus_millis(req.lease_ttl_ms),
        ended_at: None,
        outcome: None,
        summary: None,
        tokens: None,
        cost_usd: None,
        duration_ms: None,
    };
    sessions::insert(conn, &session, req.idempotency_key.as_deref()).await?;
    let events = [
        NewEvent::status_changed(&issue.id, issue.status.as_str(), IssueStatus::InProgress.as_str()),
        NewEvent::claimed(&issue.id, &session),
    ];
    record(conn, &events, &Actor::agent(&req.agent), now).await?;
    issue.status = IssueStatus::InProgress;
    issue.updated_at = now;
    Ok(Claim { issue, session, template, replayed: false })
}

/// Ends a session as a failed attempt and, if its issue is still in progress, returns the issue
/// to `todo`. Returns the ended session and the events to record.
async fn end_and_requeue(
    conn: &mut SqliteConnection,
    s: &AgentSession,
    outcome: SessionOutcome,
    report: &SessionReport,
    now: Timestamp,
) -> Result<(AgentSession, Vec<NewEvent>)> {
    let Some((ended, event)) = sessions::end(conn, s, outcome, report, now).await? else {
        return Err(lease_lost(s, outcome));
    };
    let mut events = vec![event];
    let requeued = sqlx::query(
        "UPDATE issues SET status = 'todo', todo_since = ?, updated_at = ? \
         WHERE id = ? AND status = 'in_progress' AND deleted_at IS NULL",
    )
    .bind(now.millis())
    .bind(now.millis())
    .bind(&s.issue_id)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if requeued.rows_affected() == 1 {
        refresh_issue(conn, &s.issue_id).await?;
        events.push(NewEvent::status_changed(&s.issue_id, "in_progress", "todo"));
    }
    Ok((ended, events))
}

/// Live, non-terminal issues that block `issue_id`.
async fn open_blockers(conn: &mut SqliteConnection, issue_id: &str) -> Result<Vec<Issue>> {
    let sql = format!(
        "SELECT {} FROM issue_relations r JOIN issues i ON i.id = r.edge_from \
         WHERE r.edge_kind = 'block' AND r.edge_to = ? AND i.deleted_at IS NULL AND i.status NOT IN ('done', 'canceled') \
         ORDER BY i.number",
        ISSUE_COLUMNS.split(", ").map(|c| format!("i.{c}")).collect::<Vec<_>>().join(", ")
    );
    sqlx::query(&sql).bind(issue_id).fetch_all(&mut *conn).await.map_err(db)?.iter().map(rows::issue).collect()
}

/// Live issues matching `clause` (with `?1`, `?2`, `?3` bound to the three values).
async fn issues(conn: &mut SqliteConnection, clause: &str, a: &str, b: &str, limit: i64) -> Result<Vec<Issue>> {
    let index = if clause.starts_with("parent_id") { "INDEXED BY issues_parent" } else { "" };
    let sql = format!("SELECT {ISSUE_COLUMNS} FROM issues {index} WHERE {clause}");
    sqlx::query(&sql)
        .bind(a)
        .bind(b)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(rows::issue)
        .collect()
}

/// What template conditions see for an issue.
async fn selection_context(conn: &mut SqliteConnection, issue: &Issue) -> Result<SelectionContext> {
    let labels = sqlx::query_scalar(
        "SELECT l.name FROM issue_labels il JOIN labels l ON l.id = il.label_id WHERE il.issue_id = ? AND l.deleted_at IS NULL",
    )
    .bind(&issue.id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let has_failed_sessions = sqlx::query(
        "SELECT 1 FROM agent_sessions WHERE issue_id = ? AND outcome IN ('failed', 'expired', 'released') LIMIT 1",
    )
    .bind(&issue.id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?
    .is_some();
    Ok(SelectionContext {
        issue_type: Some(issue.issue_type),
        signal_source: issue.signal_source.clone(),
        labels,
        project_id: issue.project_id.clone(),
        has_failed_sessions,
        hypothesis_confidence: issue.hypothesis.as_ref().map(|h| h.confidence.value()),
    })
}
