//! Dispatch: claims (see `claiming.rs`), the queue, explanations, leases and sessions.

use std::sync::Arc;

use async_trait::async_trait;
use loop_core::dispatch::{self, Claim, ClaimRequest, Explanation, QueueEntry, ScoreBreakdown};
use loop_core::event::NewEvent;
use loop_core::hydration::PromptInputs;
use loop_core::issue::IssueStatus;
use loop_core::session::{AgentSession, NewSessionRecord, SessionFilter, SessionOutcome, SessionRecord, SessionReport};
use loop_core::store::DispatchStore;
use loop_core::template::{SelectionContext, TemplateChooser};
use loop_core::{Actor, Error, Page, Paged, Result, Timestamp};

use crate::claiming::{self, OPEN_BLOCKERS, READY, READY_ORDER};
use crate::common::{self, events_insert, require_issue};
use crate::db::{Db, DbExt, Value, Write};
use crate::dispatch_index::refresh_issue;
use crate::rows::{self, ISSUE_COLUMNS};
use crate::{Backend, SqlStore, args, hydration, sessions};

#[async_trait]
impl<B: Backend> DispatchStore for SqlStore<B> {
    async fn claim_next(&self, req: &ClaimRequest, chooser: Arc<dyn TemplateChooser>) -> Result<Option<Claim>> {
        let (req, now) = (req.clone(), self.now());
        self.write((req, chooser), move |db, (req, chooser)| {
            Box::pin(async move { claiming::claim_next(db, &req, chooser.as_ref(), now).await })
        })
        .await
    }

    async fn claim_issue(&self, key: &str, req: &ClaimRequest, chooser: Arc<dyn TemplateChooser>) -> Result<Claim> {
        let (key, req, now) = (key.to_owned(), req.clone(), self.now());
        self.write((key, req, chooser), move |db, (key, req, chooser)| {
            Box::pin(async move { claiming::claim_issue(db, &key, &req, chooser.as_ref(), now).await })
        })
        .await
    }

    async fn prompt_inputs(&self, key: &str) -> Result<PromptInputs> {
        self.read(key.to_owned(), move |db, key| {
            Box::pin(async move {
                let issue = require_issue(db, &key).await?;
                hydration::prompt_inputs(db, issue).await
            })
        })
        .await
    }

    async fn selection_context(&self, key: &str) -> Result<SelectionContext> {
        self.read(key.to_owned(), move |db, key| {
            Box::pin(async move {
                let issue = require_issue(db, &key).await?;
                hydration::selection_context(db, &issue).await
            })
        })
        .await
    }

    async fn record_prompt_error(&self, session_id: &str, error: &str) -> Result<()> {
        let (id, error) = (session_id.to_owned(), error.to_owned());
        self.write((id, error), move |db, (id, error)| {
            Box::pin(async move {
                db.run("UPDATE agent_sessions SET prompt_error = ? WHERE id = ?", &args![&error, &id]).await.map(|_| ())
            })
        })
        .await
    }

    async fn dispatch_queue(&self, project_id: Option<&str>, page: Page) -> Result<Paged<QueueEntry>> {
        let (project, now) = (project_id.map(str::to_owned), self.now());
        self.read(project, move |db, project| Box::pin(queue(db, project, page, now))).await
    }

    async fn explain(&self, key: &str) -> Result<Explanation> {
        let (key, now) = (key.to_owned(), self.now());
        self.read(key, move |db, key| Box::pin(explain(db, key, now))).await
    }

    async fn heartbeat(&self, session_id: &str, lease_ttl_ms: i64) -> Result<AgentSession> {
        let (id, now) = (session_id.to_owned(), self.now());
        self.write(id, move |db, id| {
            Box::pin(async move {
                let s = sessions::require(db, &id).await?;
                if let Some(outcome) = s.outcome {
                    return Err(lease_lost(&s, outcome));
                }
                let renewed = db
                    .first(
                        "UPDATE agent_sessions SET lease_expires_at = ? WHERE id = ? AND ended_at IS NULL RETURNING *",
                        &args![now.plus_millis(lease_ttl_ms).millis(), &s.id],
                        rows::session,
                    )
                    .await?;
                renewed.ok_or_else(|| lease_lost(&s, SessionOutcome::Expired))
            })
        })
        .await
    }

    async fn end_session(
        &self,
        session_id: &str,
        outcome: SessionOutcome,
        report: SessionReport,
        actor: &Actor,
    ) -> Result<AgentSession> {
        let (id, now, actor) = (session_id.to_owned(), self.now(), actor.clone());
        self.write((id, report, actor), move |db, (id, report, actor)| {
            Box::pin(async move {
                let s = sessions::require(db, &id).await?;
                if let Some(o) = s.outcome {
                    return Err(lease_lost(&s, o));
                }
                let (ended, mut writes, events) = end_and_requeue(db, &s, outcome, &report, now).await?;
                writes.extend(events_insert(&events, &actor, now));
                db.run_writes(&writes).await?;
                Ok(ended)
            })
        })
        .await
    }

    async fn get_session(&self, session_id: &str) -> Result<AgentSession> {
        self.read(session_id.to_owned(), move |db, id| Box::pin(async move { sessions::require(db, &id).await })).await
    }

    async fn record_session(&self, session_id: &str, record: NewSessionRecord) -> Result<SessionRecord> {
        record.validate()?;
        let (id, now) = (session_id.to_owned(), self.now());
        self.write((id, record), move |db, (id, record)| Box::pin(sessions::record(db, id, record, now))).await
    }

    async fn session_record(&self, session_id: &str) -> Result<Option<SessionRecord>> {
        self.read(session_id.to_owned(), move |db, id| {
            Box::pin(async move {
                sessions::require(db, &id).await?;
                db.first("SELECT * FROM session_records WHERE session_id = ?", &args![&id], rows::session_record).await
            })
        })
        .await
    }

    async fn list_sessions(&self, filter: &SessionFilter, page: Page) -> Result<Paged<AgentSession>> {
        self.read(filter.clone(), move |db, filter| {
            Box::pin(async move {
                let mut clauses = vec!["1 = 1".to_string()];
                let mut binds = Vec::new();
                for (col, v) in [("issue_id", &filter.issue_id), ("agent", &filter.agent)] {
                    if let Some(v) = v {
                        clauses.push(format!("{col} = ?"));
                        binds.push(Value::Text(v.clone()));
                    }
                }
                if let Some(o) = filter.outcome {
                    clauses.push("outcome = ?".into());
                    binds.push(Value::Text(o.to_string()));
                }
                match filter.open {
                    Some(true) => clauses.push("ended_at IS NULL".into()),
                    Some(false) => clauses.push("ended_at IS NOT NULL".into()),
                    None => {}
                }
                let from = format!("FROM agent_sessions WHERE {}", clauses.join(" AND "));
                let args: Vec<_> = binds.iter().map(Value::arg).collect();
                let order = r#"claimed_at DESC, id COLLATE "C" DESC"#;
                common::page_of(db, "*", &from, order, &args, page, rows::session).await
            })
        })
        .await
    }

    async fn issue_sessions(&self, key: &str) -> Result<Vec<AgentSession>> {
        self.read(key.to_owned(), move |db, key| {
            Box::pin(async move {
                let issue = require_issue(db, &key).await?;
                let sql = r#"SELECT * FROM agent_sessions WHERE issue_id = ? ORDER BY claimed_at, id COLLATE "C""#;
                db.each(sql, &args![&issue.id], rows::session).await
            })
        })
        .await
    }

    async fn expire_leases(&self) -> Result<Vec<AgentSession>> {
        let now = self.now();
        let due = "SELECT id FROM agent_sessions WHERE ended_at IS NULL AND lease_expires_at <= ? LIMIT 1";
        // Looked for first without a write transaction: this runs every second on every node.
        let any_due = self
            .read((), move |db, ()| Box::pin(async move { Ok(db.one(due, &args![now.millis()]).await?.is_some()) }));
        if !any_due.await? {
            return Ok(Vec::new());
        }
        self.write((), move |db, ()| Box::pin(expire(db, now))).await
    }
}

async fn queue(db: &mut impl Db, project: Option<String>, page: Page, now: Timestamp) -> Result<Paged<QueueEntry>> {
    let (index, filter) = match &project {
        Some(_) => ("issues_ready_project", format!("{READY} AND project_id = ?")),
        None => ("issues_ready", READY.to_string()),
    };
    let binds: Vec<Value> = project.iter().map(|p| Value::Text(p.clone())).collect();
    let args: Vec<_> = binds.iter().map(Value::arg).collect();
    let total = common::count(db, &format!("FROM issues INDEXED BY {index} WHERE {filter}"), &args).await?;
    let columns = format!("{ISSUE_COLUMNS}, todo_since, has_active_goal");
    let from = format!("FROM issues INDEXED BY {index} WHERE {filter}");
    let rows = common::rows_of(db, &columns, &from, READY_ORDER, &args, page, |row| {
        Ok((rows::issue(row)?, rows::get::<Option<i64>>(row, "todo_since")?, rows::get::<i64>(row, "has_active_goal")?))
    })
    .await?;
    let data = rows
        .into_iter()
        .map(|(issue, since, goal)| {
            let since = Timestamp::from_millis(since.unwrap_or(0));
            let breakdown = ScoreBreakdown::new(&issue, goal != 0, since, now);
            QueueEntry { score: breakdown.total(), breakdown, todo_since: since, issue }
        })
        .collect();
    Ok(Paged { data, total })
}

async fn explain(db: &mut impl Db, key: String, now: Timestamp) -> Result<Explanation> {
    let issue = require_issue(db, &key).await?;
    let blockers = db.each(OPEN_BLOCKERS, &args![&issue.id], rows::issue).await?;
    let lease = sessions::open_for_issue(db, &issue.id).await?;
    let reasons = dispatch::ineligibility(&issue, &blockers, lease.as_ref());
    let row =
        db.one("SELECT todo_since, has_active_goal, dispatch_key FROM issues WHERE id = ?", &args![&issue.id]).await?;
    let row = row.ok_or_else(|| Error::not_found("Issue", &key))?;
    let since: Option<i64> = rows::get(&row, "todo_since")?;
    let breakdown = match (issue.status, since) {
        (IssueStatus::Todo, Some(since)) => {
            let goal = rows::get::<i64>(&row, "has_active_goal")? != 0;
            Some(ScoreBreakdown::new(&issue, goal, Timestamp::from_millis(since), now))
        }
        _ => None,
    };
    let position = if reasons.is_empty() {
        let key: i64 = rows::get(&row, "dispatch_key")?;
        let ahead = format!(
            "SELECT count(*) AS n FROM issues INDEXED BY issues_ready WHERE {READY} AND (dispatch_key > ?1 OR \
             (dispatch_key = ?1 AND (todo_since < ?2 OR (todo_since = ?2 AND number < ?3))))"
        );
        Some(db.int(&ahead, &args![key, since, issue.number], "n").await? as u64 + 1)
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

/// Ends every session whose lease ran out. On PostgreSQL rows another node is expiring right
/// now are skipped: each lease expires once.
async fn expire(db: &mut impl Db, now: Timestamp) -> Result<Vec<AgentSession>> {
    let sql = "SELECT * FROM agent_sessions WHERE ended_at IS NULL AND lease_expires_at <= ? \
         ORDER BY lease_expires_at FOR UPDATE SKIP LOCKED";
    let due = db.each(sql, &args![now.millis()], rows::session).await?;
    let mut expired = Vec::with_capacity(due.len());
    for s in &due {
        let (ended, mut writes, events) =
            end_and_requeue(db, s, SessionOutcome::Expired, &SessionReport::default(), now).await?;
        writes.extend(events_insert(&events, &Actor::system(), now));
        db.run_writes(&writes).await?;
        expired.push(ended);
    }
    Ok(expired)
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
/// to `todo`. Returns the ended session, the writes left to do and the events to record.
pub(crate) async fn end_and_requeue(
    db: &mut impl Db,
    s: &AgentSession,
    outcome: SessionOutcome,
    report: &SessionReport,
    now: Timestamp,
) -> Result<(AgentSession, Vec<Write>, Vec<NewEvent>)> {
    let Some(ended) = sessions::end(db, "id", &s.id, outcome, report, now).await? else {
        return Err(lease_lost(s, outcome));
    };
    let mut events = vec![ended.event];
    let requeued = db
        .run(
            "UPDATE issues SET status = 'todo', todo_since = ?, updated_at = ? \
             WHERE id = ? AND status = 'in_progress' AND deleted_at IS NULL",
            &args![now.millis(), now.millis(), &s.issue_id],
        )
        .await?;
    if requeued == 1 {
        refresh_issue(db, &s.issue_id).await?;
        events.push(NewEvent::status_changed(&s.issue_id, "in_progress", "todo"));
    }
    Ok((ended.session, ended.writes, events))
}
