//! Dispatch: claims (see `claiming.rs`), the queue, explanations, leases and sessions.

use std::sync::Arc;

use async_trait::async_trait;
use loop_core::dispatch::{self, Claim, ClaimRequest, Explanation, QueueEntry, ScoreBreakdown};
use loop_core::event::NewEvent;
use loop_core::hydration::PromptInputs;
use loop_core::issue::{Issue, IssueStatus};
use loop_core::session::{AgentSession, SessionFilter, SessionOutcome, SessionReport};
use loop_core::store::DispatchStore;
use loop_core::template::{SelectionContext, TemplateChooser};
use loop_core::{Actor, Error, Page, Paged, Result, Timestamp};
use sqlx::{PgConnection, Row};

use crate::claiming::{self, OPEN_BLOCKERS, READY, READY_ORDER};
use crate::dispatch_index::refresh_issue;
use crate::rows::{self, Bind, ISSUE_COLUMNS, record, require_issue};
use crate::sql::{pg, placeholders};
use crate::{PgStore, db, sessions};

#[async_trait]
impl DispatchStore for PgStore {
    async fn claim_next(&self, req: &ClaimRequest, chooser: Arc<dyn TemplateChooser>) -> Result<Option<Claim>> {
        let now = self.now();
        let mut attempt = 0;
        loop {
            let mut tx = self.pool.begin().await.map_err(db)?;
            match claiming::claim_next(&mut tx, req, chooser.as_ref(), now).await {
                Ok(claim) => {
                    tx.commit().await.map_err(db)?;
                    return Ok(claim);
                }
                // The transaction rolls back on drop; the next attempt replays the winner.
                Err(e) if worth_retrying(&e) && attempt < RETRIES => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    async fn claim_issue(&self, key: &str, req: &ClaimRequest, chooser: Arc<dyn TemplateChooser>) -> Result<Claim> {
        let now = self.now();
        let mut attempt = 0;
        loop {
            let mut tx = self.pool.begin().await.map_err(db)?;
            match claiming::claim_issue(&mut tx, key, req, chooser.as_ref(), now).await {
                Ok(claim) => {
                    tx.commit().await.map_err(db)?;
                    return Ok(claim);
                }
                Err(e) if worth_retrying(&e) && attempt < RETRIES => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    async fn dispatch_queue(&self, project_id: Option<&str>, page: Page) -> Result<Paged<QueueEntry>> {
        let now = self.now();
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let filter = match project_id {
            Some(_) => format!("{READY} AND project_id = ?"),
            None => READY.to_string(),
        };
        let binds: Vec<Bind> = project_id.map(|p| Bind::Text(p.to_owned())).into_iter().collect();
        let total = rows::count(&mut conn, &format!("FROM issues WHERE {filter}"), &binds).await?;
        let sql = placeholders(&format!(
            "SELECT {ISSUE_COLUMNS}, todo_since, has_active_goal FROM issues WHERE {filter} \
             ORDER BY {READY_ORDER} LIMIT ? OFFSET ?"
        ));
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
                let goal = row.try_get::<i64, _>("has_active_goal").map_err(db)? != 0;
                let breakdown = ScoreBreakdown::new(&issue, goal, since, now);
                Ok(QueueEntry { score: breakdown.total(), breakdown, todo_since: since, issue })
            })
            .collect::<Result<_>>()?;
        Ok(Paged { data, total })
    }

    async fn explain(&self, key: &str) -> Result<Explanation> {
        let now = self.now();
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let issue = require_issue(&mut conn, key).await?;
        let blockers = open_blockers(&mut conn, &issue.id).await?;
        let lease = sessions::open_for_issue(&mut conn, &issue.id).await?;
        let reasons = dispatch::ineligibility(&issue, &blockers, lease.as_ref());
        let row = sqlx::query(pg("SELECT todo_since, has_active_goal, dispatch_key FROM issues WHERE id = ?"))
            .bind(&issue.id)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
        let since: Option<i64> = row.try_get("todo_since").map_err(db)?;
        let breakdown = match (issue.status, since) {
            (IssueStatus::Todo, Some(since)) => {
                let goal = row.try_get::<i64, _>("has_active_goal").map_err(db)? != 0;
                Some(ScoreBreakdown::new(&issue, goal, Timestamp::from_millis(since), now))
            }
            _ => None,
        };
        let position = if reasons.is_empty() {
            let key: i64 = row.try_get("dispatch_key").map_err(db)?;
            let ahead: i64 = sqlx::query_scalar(&placeholders(&format!(
                "SELECT count(*) FROM issues WHERE {READY} AND (dispatch_key > ?1 OR (dispatch_key = ?1 AND \
                 (todo_since < ?2 OR (todo_since = ?2 AND number < ?3))))"
            )))
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
        let mut tx = self.pool.begin().await.map_err(db)?;
        let s = sessions::require(&mut tx, session_id).await?;
        if let Some(outcome) = s.outcome {
            return Err(lease_lost(&s, outcome));
        }
        sqlx::query(pg("UPDATE agent_sessions SET lease_expires_at = ? WHERE id = ? AND ended_at IS NULL"))
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
        let mut tx = self.pool.begin().await.map_err(db)?;
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
        let mut conn = self.pool.acquire().await.map_err(db)?;
        sessions::require(&mut conn, session_id).await
    }

    async fn list_sessions(&self, filter: &SessionFilter, page: Page) -> Result<Paged<AgentSession>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let mut clauses = vec!["1 = 1".to_string()];
        let mut binds: Vec<Bind> = Vec::new();
        for (col, v) in [("issue_id", &filter.issue_id), ("agent", &filter.agent)] {
            if let Some(v) = v {
                clauses.push(format!("{col} = ?"));
                binds.push(Bind::Text(v.clone()));
            }
        }
        if let Some(o) = filter.outcome {
            clauses.push("outcome = ?".into());
            binds.push(Bind::Text(o.to_string()));
        }
        match filter.open {
            Some(true) => clauses.push("ended_at IS NULL".into()),
            Some(false) => clauses.push("ended_at IS NOT NULL".into()),
            None => {}
        }
        let from = format!("FROM agent_sessions WHERE {}", clauses.join(" AND "));
        rows::page_of(&mut conn, "*", &from, "claimed_at DESC, id DESC", &binds, page, rows::session).await
    }

    async fn issue_sessions(&self, key: &str) -> Result<Vec<AgentSession>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let issue = require_issue(&mut conn, key).await?;
        sqlx::query(pg("SELECT * FROM agent_sessions WHERE issue_id = ? ORDER BY claimed_at, id"))
            .bind(&issue.id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?
            .iter()
            .map(rows::session)
            .collect()
    }

    async fn prompt_inputs(&self, key: &str) -> Result<PromptInputs> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let issue = require_issue(&mut conn, key).await?;
        claiming::hydrate(&mut conn, issue).await
    }

    async fn selection_context(&self, key: &str) -> Result<SelectionContext> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let issue = require_issue(&mut conn, key).await?;
        claiming::selection_context(&mut conn, &issue).await
    }

    async fn record_prompt_error(&self, session_id: &str, error: &str) -> Result<()> {
        sqlx::query(pg("UPDATE agent_sessions SET prompt_error = ? WHERE id = ?"))
            .bind(error)
            .bind(session_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn expire_leases(&self) -> Result<Vec<AgentSession>> {
        let now = self.now();
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Rows another node is expiring right now are skipped: each lease expires once.
        let due = sqlx::query(pg("SELECT * FROM agent_sessions WHERE ended_at IS NULL AND lease_expires_at <= ? \
             ORDER BY lease_expires_at FOR UPDATE SKIP LOCKED"))
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

/// Ends a session as a failed attempt and, if its issue is still in progress, returns the issue
/// to `todo`. Returns the ended session and the events to record.
async fn end_and_requeue(
    conn: &mut PgConnection,
    s: &AgentSession,
    outcome: SessionOutcome,
    report: &SessionReport,
    now: Timestamp,
) -> Result<(AgentSession, Vec<NewEvent>)> {
    let Some((ended, event)) = sessions::end(conn, s, outcome, report, now).await? else {
        return Err(lease_lost(s, outcome));
    };
    let mut events = vec![event];
    let requeued = sqlx::query(pg("UPDATE issues SET status = 'todo', todo_since = ?, updated_at = ? \
         WHERE id = ? AND status = 'in_progress' AND deleted_at IS NULL"))
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
async fn open_blockers(conn: &mut PgConnection, issue_id: &str) -> Result<Vec<Issue>> {
    sqlx::query(pg(OPEN_BLOCKERS))
        .bind(issue_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(rows::issue)
        .collect()
}

/// How often a claim runs again after losing a race on its idempotency key.
const RETRIES: u32 = 3;

/// A claim that lost an idempotency-key race (the retry replays the winner), or that
/// PostgreSQL aborted to break a deadlock: nothing was written, and running it again is safe.
fn worth_retrying(e: &Error) -> bool {
    matches!(e, Error::Conflict { code, .. } if *code == claiming::RACED) || matches!(e, Error::Busy(_))
}
