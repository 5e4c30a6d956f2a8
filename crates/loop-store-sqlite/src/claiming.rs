//! Claims and prompt hydration, run by the claim engine on its own connection inside a write
//! transaction (see `engine.rs`): every statement is prepared once and reused.

use std::sync::LazyLock;

use loop_core::dispatch::{self, Claim, ClaimRequest};
use loop_core::event::NewEvent;
use loop_core::hydration::{ImprovementInputs, MAX_NEIGHBOURS, PromptInputs};
use loop_core::issue::{Issue, IssueStatus};
use loop_core::label::LabelRef;
use loop_core::session::AgentSession;
use loop_core::template::{SelectionContext, TemplateChooser};
use loop_core::{Actor, Error, Result, Timestamp, id::new_id};
use rusqlite::{Connection, Params, Row, params};

use crate::engine::sqlite;
use crate::rows::{self, ISSUE_COLUMNS};

/// The eligibility predicate, written exactly as the partial indexes' so SQLite can use them.
/// Claims name the index (`INDEXED BY`): with statistics, SQLite otherwise picks the status
/// index and sorts every todo issue on each claim.
pub(crate) const READY: &str = "status = 'todo' AND open_blockers = 0 AND deleted_at IS NULL";
pub(crate) const READY_ORDER: &str = "dispatch_key DESC, todo_since, number";

/// Live, non-terminal issues that block `?1`.
pub(crate) const OPEN_BLOCKERS: &str = "SELECT i.* FROM issue_relations r JOIN issues i ON i.id = r.edge_from \
     WHERE r.edge_kind = 'block' AND r.edge_to = ?1 AND i.deleted_at IS NULL AND i.status NOT IN ('done', 'canceled') \
     ORDER BY i.number";

/// The session holding `?1`'s lease, if any.
pub(crate) const OPEN_SESSION: &str =
    "SELECT * FROM agent_sessions WHERE issue_id = ?1 AND ended_at IS NULL ORDER BY claimed_at DESC LIMIT 1";

/// The statements that read whole issues, built once (they list every issue column) rather
/// than formatted on each claim.
struct IssueSql {
    next: String,
    next_in_project: String,
    /// Live children of `?1` other than `?2`, at most `?3`. The index is named because, with
    /// statistics, SQLite prefers walking the `number` index to avoid a sort: a scan of every issue.
    children: String,
    /// Open issues `?1` blocks, at most `?2`.
    blocking: String,
    /// Open issues blocking `?1`, at most `?2`.
    blocked_by: String,
    by_id: String,
    by_number: String,
}

static ISSUE_SQL: LazyLock<IssueSql> = LazyLock::new(|| {
    let select = format!("SELECT {ISSUE_COLUMNS} FROM issues");
    let open_across = |this: &str, other: &str| {
        format!(
            "{select} WHERE id IN (SELECT {other} FROM issue_relations WHERE edge_kind = 'block' AND {this} = ?1) \
             AND id <> ?1 AND deleted_at IS NULL AND status NOT IN ('done', 'canceled') ORDER BY number LIMIT ?2"
        )
    };
    IssueSql {
        next: format!("{select} INDEXED BY issues_ready WHERE {READY} ORDER BY {READY_ORDER} LIMIT 1"),
        next_in_project: format!(
            "{select} INDEXED BY issues_ready_project WHERE {READY} AND project_id = ?1 ORDER BY {READY_ORDER} LIMIT 1"
        ),
        children: format!(
            "{select} INDEXED BY issues_parent WHERE parent_id = ?1 AND id <> ?2 AND deleted_at IS NULL \
             ORDER BY +number LIMIT ?3"
        ),
        blocking: open_across("edge_from", "edge_to"),
        blocked_by: open_across("edge_to", "edge_from"),
        by_id: format!("{select} WHERE id = ?1 AND deleted_at IS NULL"),
        by_number: format!("{select} WHERE number = ?1 AND deleted_at IS NULL"),
    }
});

pub(crate) fn claim_next(
    conn: &Connection,
    req: &ClaimRequest,
    chooser: &dyn TemplateChooser,
    now: Timestamp,
) -> Result<Option<Claim>> {
    if let Some(claim) = replay(conn, req, now)? {
        return Ok(Some(claim));
    }
    let next = match &req.project_id {
        Some(p) => one(conn, &ISSUE_SQL.next_in_project, [p], |r| rows::issue(r))?,
        None => one(conn, &ISSUE_SQL.next, [], |r| rows::issue(r))?,
    };
    next.map(|issue| take(conn, issue, req, chooser, now)).transpose()
}

pub(crate) fn claim_issue(
    conn: &Connection,
    key: &str,
    req: &ClaimRequest,
    chooser: &dyn TemplateChooser,
    now: Timestamp,
) -> Result<Claim> {
    let issue = find_issue(conn, key)?.ok_or_else(|| Error::not_found("Issue", key))?;
    if let Some(earlier) = replay(conn, req, now)? {
        if earlier.issue.id == issue.id {
            return Ok(earlier);
        }
        if req.idempotency_key.is_some() {
            return Err(key_reused(&format!("issue #{}", earlier.issue.number)));
        }
    }
    let blockers = all(conn, OPEN_BLOCKERS, [&issue.id], |r| rows::issue(r))?;
    let lease = one(conn, OPEN_SESSION, [&issue.id], |r| rows::session(r))?;
    let reasons = dispatch::ineligibility(&issue, &blockers, lease.as_ref());
    if !reasons.is_empty() {
        return Err(Error::conflict(
            "not_eligible",
            format!("issue #{} cannot be dispatched: {}", issue.number, reasons.join("; ")),
        ));
    }
    take(conn, issue, req, chooser, now)
}

/// A retried request gets its earlier claim back: same `Idempotency-Key`, or (without a key)
/// the same agent holding a claim made within the retry window that it has not reported on.
fn replay(conn: &Connection, req: &ClaimRequest, now: Timestamp) -> Result<Option<Claim>> {
    let session = match &req.idempotency_key {
        Some(key) => one(
            conn,
            "SELECT * FROM agent_sessions WHERE agent = ?1 AND idempotency_key = ?2",
            params![req.agent, key],
            |r| rows::session(r),
        )?,
        None => one(
            conn,
            "SELECT * FROM agent_sessions WHERE agent = ?1 AND ended_at IS NULL AND claimed_at >= ?2 \
             ORDER BY claimed_at DESC LIMIT 1",
            params![req.agent, now.millis() - req.retry_window_ms],
            |r| rows::session(r),
        )?,
    };
    let Some(session) = session else { return Ok(None) };
    let Some(issue) = find_issue(conn, &session.issue_id)? else {
        // The claimed issue was deleted since: never hand it out again.
        return match &req.idempotency_key {
            Some(_) => Err(key_reused("an issue that has since been deleted")),
            None => Ok(None),
        };
    };
    if let (Some(_), Some(outcome)) = (&req.idempotency_key, session.outcome) {
        // The claim is over (reported, released or expired): handing it out again could give
        // the agent an issue that is done, or that another agent now holds.
        return Err(key_reused(&format!("#{}, whose session has since ended ({})", issue.number, outcome.as_str())));
    }
    if req.idempotency_key.is_none() && req.project_id.is_some() && issue.project_id != req.project_id {
        // A retry asks for the same project; a claim elsewhere is not this request's.
        return Ok(None);
    }
    Ok(Some(Claim { issue, session, template: None, replayed: true, inputs: None }))
}

fn key_reused(what: &str) -> Error {
    Error::conflict(
        "idempotency_key_reused",
        format!("this Idempotency-Key was already used to claim {what}; send a new key for a new claim"),
    )
}

/// Moves an eligible issue to `in_progress` under a new session, and reads what its prompt
/// is hydrated from.
fn take(
    conn: &Connection,
    mut issue: Issue,
    req: &ClaimRequest,
    chooser: &dyn TemplateChooser,
    now: Timestamp,
) -> Result<Claim> {
    let template = chooser.choose(&selection_context(conn, &issue)?);
    if let Some(t) = &template {
        exec(conn, "UPDATE prompt_versions SET usage_count = usage_count + 1 WHERE id = ?1", [&t.version.id])?;
    }
    exec(
        conn,
        "UPDATE issues SET status = 'in_progress', todo_since = NULL, dispatch_key = NULL, updated_at = ?1 WHERE id = ?2",
        params![now.millis(), issue.id],
    )?;
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
    exec(
        conn,
        "INSERT INTO agent_sessions (id, issue_id, agent, template_version_id, claimed_at, lease_expires_at, \
         idempotency_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            session.id,
            session.issue_id,
            session.agent,
            session.template_version_id,
            session.claimed_at.millis(),
            session.lease_expires_at.millis(),
            req.idempotency_key,
        ],
    )?;
    let actor = Actor::agent(&req.agent);
    for e in [
        NewEvent::status_changed(&issue.id, issue.status.as_str(), IssueStatus::InProgress.as_str()),
        NewEvent::claimed(&issue.id, &session),
    ] {
        exec(
            conn,
            "INSERT INTO issue_events (issue_id, kind, actor, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![e.issue_id, e.kind.as_str(), actor.name, e.data.to_string(), now.millis()],
        )?;
    }
    issue.status = IssueStatus::InProgress;
    issue.updated_at = now;
    // A claim stands even if its prompt cannot be hydrated: the caller then asks again
    // through `prompt_inputs` and records the error on the session.
    let inputs = match template {
        Some(_) => hydrate(conn, issue.clone()).ok().map(Box::new),
        None => None,
    };
    Ok(Claim { issue, session, template, replayed: false, inputs })
}

/// What template conditions see for an issue.
pub(crate) fn selection_context(conn: &Connection, issue: &Issue) -> Result<SelectionContext> {
    let labels = all(
        conn,
        "SELECT l.name FROM issue_labels il JOIN labels l ON l.id = il.label_id \
         WHERE il.issue_id = ?1 AND l.deleted_at IS NULL",
        [&issue.id],
        |r| rows::get(r, "name"),
    )?;
    let has_failed_sessions = one(
        conn,
        "SELECT 1 AS hit FROM agent_sessions WHERE issue_id = ?1 AND outcome IN ('failed', 'expired', 'released') LIMIT 1",
        [&issue.id],
        |r| rows::get::<i64>(r, "hit"),
    )?
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

/// Everything a prompt for `issue` is hydrated from; neighbour lists are capped.
pub(crate) fn hydrate(conn: &Connection, issue: Issue) -> Result<PromptInputs> {
    let cap = MAX_NEIGHBOURS as i64;
    let issues = |sql: &str, params: &[&dyn rusqlite::ToSql]| all(conn, sql, params, |r| rows::issue(r));
    let (parent, siblings, children) = match &issue.parent_id {
        Some(p) => (find_issue(conn, p)?, issues(&ISSUE_SQL.children, params![p, issue.id, cap])?, Vec::new()),
        None => (None, Vec::new(), issues(&ISSUE_SQL.children, params![issue.id, "", cap])?),
    };
    let blocking = issues(&ISSUE_SQL.blocking, params![issue.id, cap])?;
    let blocked_by = issues(&ISSUE_SQL.blocked_by, params![issue.id, cap])?;
    let project = match &issue.project_id {
        Some(p) => one(conn, "SELECT * FROM projects WHERE id = ?1 AND deleted_at IS NULL", [p], |r| rows::project(r))?,
        None => None,
    };
    let goal = match &project {
        Some(p) => one(
            conn,
            "SELECT * FROM goals WHERE deleted_at IS NULL AND (id = ?1 OR project_id = ?2) \
             ORDER BY (id = ?1) DESC, (status = 'active') DESC, created_at LIMIT 1",
            params![p.goal_id, p.id],
            |r| rows::goal(r),
        )?,
        None => None,
    };
    let labels = all(
        conn,
        "SELECT l.id, l.name, l.color FROM issue_labels il JOIN labels l ON l.id = il.label_id \
         WHERE il.issue_id = ?1 AND l.deleted_at IS NULL ORDER BY l.name",
        [&issue.id],
        |r| Ok(LabelRef { id: rows::get(r, "id")?, name: rows::get(r, "name")?, color: rows::get(r, "color")? }),
    )?;
    let previous_sessions = all(
        conn,
        "SELECT * FROM agent_sessions WHERE issue_id = ?1 AND ended_at IS NOT NULL ORDER BY claimed_at, id LIMIT ?2",
        params![issue.id, cap],
        |r| rows::session(r),
    )?;
    let improvement = improvement(conn, &issue.id)?;
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

/// What an improvement issue's prompt is hydrated from, if the issue is one: the template,
/// the version to improve and its reviews since it became active.
fn improvement(conn: &Connection, issue_id: &str) -> Result<Option<ImprovementInputs>> {
    let Some((template_id, version_id)) =
        one(conn, "SELECT template_id, version_id FROM prompt_improvements WHERE issue_id = ?1", [issue_id], |r| {
            Ok((rows::get::<String>(r, "template_id")?, rows::get::<String>(r, "version_id")?))
        })?
    else {
        return Ok(None);
    };
    let template =
        one(conn, "SELECT * FROM prompt_templates WHERE id = ?1 AND deleted_at IS NULL", [&template_id], |r| {
            rows::template(r)
        })?;
    let version = one(conn, "SELECT * FROM prompt_versions WHERE id = ?1", [&version_id], |r| rows::version(r))?;
    let (Some(template), Some(version)) = (template, version) else { return Ok(None) };
    let reviews = all(
        conn,
        crate::improvement::REVIEWS_SINCE,
        params![version.id, version.activated_at.map(|t| t.millis()).unwrap_or(i64::MIN), i64::MIN],
        |r| Ok((rows::review(r)?, rows::get::<Option<i64>>(r, "issue_number")?)),
    )?;
    Ok(Some(ImprovementInputs { template, version, reviews }))
}

/// A live issue by id, or by number when `key` is all digits.
pub(crate) fn find_issue(conn: &Connection, key: &str) -> Result<Option<Issue>> {
    let sql = if rows::is_number(key) { &ISSUE_SQL.by_number } else { &ISSUE_SQL.by_id };
    one(conn, sql, [key], |r| rows::issue(r))
}

fn one<T>(conn: &Connection, sql: &str, params: impl Params, map: impl Fn(&Row) -> Result<T>) -> Result<Option<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(sqlite)?;
    let mut rows = stmt.query(params).map_err(sqlite)?;
    rows.next().map_err(sqlite)?.map(map).transpose()
}

fn all<T>(conn: &Connection, sql: &str, params: impl Params, map: impl Fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(sqlite)?;
    let mut rows = stmt.query(params).map_err(sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sqlite)? {
        out.push(map(row)?);
    }
    Ok(out)
}

fn exec(conn: &Connection, sql: &str, params: impl Params) -> Result<usize> {
    conn.prepare_cached(sql).and_then(|mut s| s.execute(params)).map_err(sqlite)
}
