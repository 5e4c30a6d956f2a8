//! Agent sessions: opening one per claim, ending them, and the queries over them.

use loop_core::event::NewEvent;
use loop_core::session::{AgentSession, SessionOutcome, SessionReport};
use loop_core::{Error, Result, Timestamp};
use sqlx::PgConnection;

use crate::sql::pg;
use crate::{db, rows};

pub(crate) async fn find(conn: &mut PgConnection, id: &str) -> Result<Option<AgentSession>> {
    rows::one(&mut *conn, "SELECT * FROM agent_sessions WHERE id = ?", id, rows::session).await
}

pub(crate) async fn require(conn: &mut PgConnection, id: &str) -> Result<AgentSession> {
    find(conn, id).await?.ok_or_else(|| Error::not_found("Session", id))
}

/// The session currently holding an issue's lease, if any.
pub(crate) async fn open_for_issue(conn: &mut PgConnection, issue_id: &str) -> Result<Option<AgentSession>> {
    rows::one(&mut *conn, crate::claiming::OPEN_SESSION, issue_id, rows::session).await
}

/// Ends a session that is still open; returns it, ended, with the event to record. Ending is
/// conditional on `ended_at IS NULL`, so a session ends exactly once, whichever node asks.
pub(crate) async fn end(
    conn: &mut PgConnection,
    session: &AgentSession,
    outcome: SessionOutcome,
    report: &SessionReport,
    now: Timestamp,
) -> Result<Option<(AgentSession, NewEvent)>> {
    let summary = report.summary.as_ref().map(|s| s.to_string());
    let done = sqlx::query(pg("UPDATE agent_sessions SET ended_at = ?, outcome = ?, summary = COALESCE(?, summary), \
         tokens = COALESCE(?, tokens), cost_usd = COALESCE(?, cost_usd), duration_ms = COALESCE(?, duration_ms) \
         WHERE id = ? AND ended_at IS NULL"))
    .bind(now.millis())
    .bind(outcome.as_str())
    .bind(&summary)
    .bind(report.tokens.map(|t| t as i64))
    .bind(report.cost_usd)
    .bind(report.duration_ms.map(|d| d as i64))
    .bind(&session.id)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let ended = require(conn, &session.id).await?;
    if let Some(v) = &ended.template_version_id {
        crate::improvement::refresh_version_metrics(conn, v).await?;
    }
    let event = NewEvent::session_ended(&session.issue_id, &session.id, outcome);
    Ok(Some((ended, event)))
}
