//! Agent sessions: ending them, and the queries over them.

use loop_core::event::NewEvent;
use loop_core::session::{AgentSession, NewSessionRecord, SessionOutcome, SessionRecord, SessionReport};
use loop_core::{Error, Result, Timestamp};

use crate::db::{Db, DbExt, Write};
use crate::{agent_days, args, improvement, rows};

/// The session holding an issue's lease, if any.
pub(crate) const OPEN_SESSION: &str =
    "SELECT * FROM agent_sessions WHERE issue_id = ?1 AND ended_at IS NULL ORDER BY claimed_at DESC LIMIT 1";

pub(crate) async fn find(db: &mut impl Db, id: &str) -> Result<Option<AgentSession>> {
    db.first("SELECT * FROM agent_sessions WHERE id = ?", &args![id], rows::session).await
}

pub(crate) async fn require(db: &mut impl Db, id: &str) -> Result<AgentSession> {
    find(db, id).await?.ok_or_else(|| Error::not_found("Session", id))
}

pub(crate) async fn open_for_issue(db: &mut impl Db, issue_id: &str) -> Result<Option<AgentSession>> {
    db.first(OPEN_SESSION, &args![issue_id], rows::session).await
}

/// A session that ended, with what is left to write: its version's running totals and its
/// event (see [`end`]).
pub(crate) struct Ended {
    pub session: AgentSession,
    pub event: NewEvent,
    pub writes: Vec<Write>,
}

/// Ends the open session `column = key` names (`id`, or `issue_id`: an issue has at most one
/// open session); returns it, ended, or `None` when there is none. Ending is conditional on
/// `ended_at IS NULL`, so a session ends exactly once, whichever node asks. The version its
/// prompt came from and its agent's day count the outcome, in [`Ended::writes`], for the
/// caller's last batch.
pub(crate) async fn end(
    db: &mut impl Db,
    column: &str,
    key: &str,
    outcome: SessionOutcome,
    report: &SessionReport,
    now: Timestamp,
) -> Result<Option<Ended>> {
    let summary = report.summary.as_ref().map(|s| s.to_string());
    let sql = format!(
        "UPDATE agent_sessions SET ended_at = ?, outcome = ?, summary = COALESCE(?, summary), \
         tokens = COALESCE(?, tokens), cost_usd = COALESCE(?, cost_usd), duration_ms = COALESCE(?, duration_ms) \
         WHERE {column} = ? AND ended_at IS NULL RETURNING *"
    );
    let args = args![
        now.millis(),
        outcome.as_str(),
        &summary,
        report.tokens.map(|t| t as i64),
        report.cost_usd,
        report.duration_ms.map(|d| d as i64),
        key,
    ];
    let Some(session) = db.first(&sql, &args, rows::session).await? else { return Ok(None) };
    let version = session.template_version_id.as_deref().map(|v| improvement::session_ended(v, &session));
    let writes = version.into_iter().chain(agent_days::count(&session, 1)).collect();
    let event = NewEvent::session_ended(&session.issue_id, &session.id, outcome);
    Ok(Some(Ended { writes, event, session }))
}

/// Keeps `record` for session `id` (replacing an earlier one) and puts its tokens, cost and
/// duration on the session, where budgets count them; an ended session moves in its agent's
/// day tally.
pub(crate) async fn record(
    db: &mut impl Db,
    id: String,
    record: NewSessionRecord,
    now: Timestamp,
) -> Result<SessionRecord> {
    // Locks the row before reading it, so what is taken out of the tally is what was counted,
    // even when the session ends at the same moment on another node.
    let locked = "UPDATE agent_sessions SET id = id WHERE id = ? RETURNING *";
    let before = db.first(locked, &args![&id], rows::session).await?.ok_or_else(|| Error::not_found("Session", &id))?;
    let attestation = serde_json::to_string(&record.attestation).map_err(Error::internal)?;
    let after = db
        .first(
            "UPDATE agent_sessions SET tokens = COALESCE(?, tokens), cost_usd = COALESCE(?, cost_usd), \
             duration_ms = COALESCE(?, duration_ms) WHERE id = ? RETURNING *",
            &args![record.tokens.map(|t| t as i64), record.cost_usd, record.duration_ms.map(|d| d as i64), &id],
            rows::session,
        )
        .await?
        .ok_or_else(|| Error::not_found("Session", &id))?;
    // One at a time: on PostgreSQL a batch is one statement, which may touch a row only once.
    for moved in agent_days::count(&before, -1).into_iter().chain(agent_days::count(&after, 1)) {
        db.run_writes(&[moved]).await?;
    }
    let sql = "INSERT INTO session_records (session_id, attestation, transcript, recorded_at) VALUES (?, ?, ?, ?) \
               ON CONFLICT (session_id) DO UPDATE SET attestation = excluded.attestation, \
               transcript = excluded.transcript, recorded_at = excluded.recorded_at RETURNING *";
    let kept = db.first(sql, &args![&id, &attestation, &record.transcript, now.millis()], rows::session_record).await?;
    kept.ok_or_else(|| Error::internal("the session record was not returned"))
}
