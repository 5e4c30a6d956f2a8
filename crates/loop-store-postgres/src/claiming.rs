//! Claims and prompt hydration, inside one transaction per claim.
//!
//! Several nodes claim at once. The next issue is taken with `FOR UPDATE SKIP LOCKED`, so two
//! claims never wait on, or take, the same row; an issue named by `claim_issue` is locked and
//! then checked. Claims by one agent are serialised (a transaction-scoped advisory lock on its
//! name), so a retried request always sees the claim it is a retry of, as on SQLite's single
//! writer.

use std::sync::LazyLock;

use loop_core::dispatch::{self, Claim, ClaimRequest};
use loop_core::event::NewEvent;
use loop_core::hydration::{ImprovementInputs, MAX_NEIGHBOURS, PromptInputs};
use loop_core::issue::{Issue, IssueStatus};
use loop_core::label::LabelRef;
use loop_core::session::AgentSession;
use loop_core::template::{SelectionContext, TemplateChooser};
use loop_core::{Actor, Error, Result, Timestamp, id::new_id};
use sqlx::PgConnection;

use crate::rows::{self, ISSUE_COLUMNS, record};
use crate::sql::{pg, placeholders};
use crate::{db, is_unique_violation};

/// The eligibility predicate, written exactly as the partial indexes'.
pub(crate) const READY: &str = "status = 'todo' AND open_blockers = 0 AND deleted_at IS NULL";
pub(crate) const READY_ORDER: &str = "dispatch_key DESC, todo_since, number";

/// Live, non-terminal issues that block `?1`.
pub(crate) const OPEN_BLOCKERS: &str = "SELECT i.* FROM issue_relations r JOIN issues i ON i.id = r.edge_from \
     WHERE r.edge_kind = 'block' AND r.edge_to = ?1 AND i.deleted_at IS NULL AND i.status NOT IN ('done', 'canceled') \
     ORDER BY i.number";

/// The session holding `?1`'s lease, if any.
pub(crate) const OPEN_SESSION: &str =
    "SELECT * FROM agent_sessions WHERE issue_id = ?1 AND ended_at IS NULL ORDER BY claimed_at DESC LIMIT 1";

/// The code of the error a claim returns when a concurrent claim with the same idempotency key
/// committed first; the store runs the claim again, and it then replays that claim.
pub(crate) const RACED: &str = "claim_raced";

struct IssueSql {
    next: String,
    next_in_project: String,
    children: String,
    blocking: String,
    blocked_by: String,
}

static ISSUE_SQL: LazyLock<IssueSql> = LazyLock::new(|| {
    let select = format!("SELECT {ISSUE_COLUMNS} FROM issues");
    let open_across = |this: &str, other: &str| {
        placeholders(&format!(
            "{select} WHERE id IN (SELECT {other} FROM issue_relations WHERE edge_kind = 'block' AND {this} = ?1) \
             AND id <> ?1 AND deleted_at IS NULL AND status NOT IN ('done', 'canceled') ORDER BY number LIMIT ?2"
        ))
    };
    IssueSql {
        next: format!("{select} WHERE {READY} ORDER BY {READY_ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED"),
        next_in_project: format!(
            "{select} WHERE {READY} AND project_id = $1 ORDER BY {READY_ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED"
        ),
        children: placeholders(&format!(
            "{select} WHERE parent_id = ?1 AND id <> ?2 AND deleted_at IS NULL ORDER BY number LIMIT ?3"
        )),
        blocking: open_across("edge_from", "edge_to"),
        blocked_by: open_across("edge_to", "edge_from"),
    }
});

/// Serialises this agent's claims until the transaction ends.
async fn one_claim_at_a_time(conn: &mut PgConnection, agent: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(agent).execute(&mut *conn).await.map_err(db)?;
    Ok(())
}

pub(crate) async fn claim_next(
    conn: &mut PgConnection,
    req: &ClaimRequest,
    chooser: &dyn TemplateChooser,
    now: Timestamp,
) -> Result<Option<Claim>> {
    one_claim_at_a_time(conn, &req.agent).await?;
    if let Some(claim) = replay(conn, req, now).await? {
        return Ok(Some(claim));
    }
    let row = match &req.project_id {
        Some(p) => sqlx::query(&ISSUE_SQL.next_in_project).bind(p).fetch_optional(&mut *conn).await,
        None => sqlx::query(&ISSUE_SQL.next).fetch_optional(&mut *conn).await,
    }
    .map_err(db)?;
    match row.as_ref().map(rows::issue).transpose()? {
        Some(issue) => Ok(Some(take(conn, issue, req, chooser, now).await?)),
        None => Ok(None),
    }
}

pub(crate) async fn claim_issue(
    conn: &mut PgConnection,
    key: &str,
    req: &ClaimRequest,
    chooser: &dyn TemplateChooser,
    now: Timestamp,
) -> Result<Claim> {
    one_claim_at_a_time(conn, &req.agent).await?;
    let issue = rows::require_issue(conn, key).await?;
    sqlx::query("SELECT 1 FROM issues WHERE id = $1 FOR UPDATE")
        .bind(&issue.id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    // Read again under the lock: another node may have just claimed or changed it.
    let issue = rows::require_issue(conn, &issue.id).await?;
    if let Some(earlier) = replay(conn, req, now).await? {
        if earlier.issue.id == issue.id {
            return Ok(earlier);
        }
        if req.idempotency_key.is_some() {
            return Err(key_reused(&format!("issue #{}", earlier.issue.number)));
        }
    }
    let blockers = issues(conn, OPEN_BLOCKERS, &issue.id).await?;
    let lease = crate::sessions::open_for_issue(conn, &issue.id).await?;
    let reasons = dispatch::ineligibility(&issue, &blockers, lease.as_ref());
    if !reasons.is_empty() {
        return Err(Error::conflict(
            "not_eligible",
            format!("issue #{} cannot be dispatched: {}", issue.number, reasons.join("; ")),
        ));
    }
    take(conn, issue, req, chooser, now).await
}

/// A retried request gets its earlier claim back: same `Idempotency-Key`, or (without a key)
/// the same agent holding a claim made within the retry window that it has not reported on.
async fn replay(conn: &mut PgConnection, req: &ClaimRequest, now: Timestamp) -> Result<Option<Claim>> {
    let session = match &req.idempotency_key {
        Some(key) => {
            sqlx::query(pg("SELECT * FROM agent_sessions WHERE agent = ? AND idempotency_key = ?"))
                .bind(&req.agent)
                .bind(key)
                .fetch_optional(&mut *conn)
                .await
        }
        None => {
            sqlx::query(pg("SELECT * FROM agent_sessions WHERE agent = ? AND ended_at IS NULL AND claimed_at >= ? \
             ORDER BY claimed_at DESC LIMIT 1"))
            .bind(&req.agent)
            .bind(now.millis() - req.retry_window_ms)
            .fetch_optional(&mut *conn)
            .await
        }
    }
    .map_err(db)?;
    let Some(session) = session.as_ref().map(rows::session).transpose()? else { return Ok(None) };
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
    Ok(Some(Claim { issue, session, template: None, replayed: true, inputs: None }))
}

fn key_reused(what: &str) -> Error {
    Error::conflict(
        "idempotency_key_reused",
        format!("this Idempotency-Key was already used to claim {what}; send a new key for a new claim"),
    )
}

/// Moves an eligible, locked issue to `in_progress` under a new session, and reads what its
/// prompt is hydrated from.
async fn take(
    conn: &mut PgConnection,
    mut issue: Issue,
    req: &ClaimRequest,
    chooser: &dyn TemplateChooser,
    now: Timestamp,
) -> Result<Claim> {
    let template = chooser.choose(&selection_context(conn, &issue).await?);
    sqlx::query(pg(
        "UPDATE issues SET status = 'in_progress', todo_since = NULL, dispatch_key = NULL, updated_at = ? WHERE id = ?",
    ))
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
    sqlx::query(pg(
        "INSERT INTO agent_sessions (id, issue_id, agent, template_version_id, claimed_at, lease_expires_at, \
         idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(&session.id)
    .bind(&session.issue_id)
    .bind(&session.agent)
    .bind(&session.template_version_id)
    .bind(session.claimed_at.millis())
    .bind(session.lease_expires_at.millis())
    .bind(&req.idempotency_key)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) { Error::conflict(RACED, "a concurrent claim used this key") } else { db(e) }
    })?;
    let events = [
        NewEvent::status_changed(&issue.id, issue.status.as_str(), IssueStatus::InProgress.as_str()),
        NewEvent::claimed(&issue.id, &session),
    ];
    issue.status = IssueStatus::InProgress;
    issue.updated_at = now;
    // A claim stands even if its prompt cannot be hydrated: the caller then asks again
    // through `prompt_inputs` and records the error on the session.
    let inputs = match template {
        Some(_) => hydrate(conn, issue.clone()).await.ok().map(Box::new),
        None => None,
    };
    // Every claim with this version updates its row, and every write takes the event counter;
    // both locks are held until commit, so they come last to keep other claims' wait short.
    if let Some(t) = &template {
        sqlx::query(pg("UPDATE prompt_versions SET usage_count = usage_count + 1 WHERE id = ?"))
            .bind(&t.version.id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    record(conn, &events, &Actor::agent(&req.agent), now).await?;
    Ok(Claim { issue, session, template, replayed: false, inputs })
}

/// What template conditions see for an issue.
pub(crate) async fn selection_context(conn: &mut PgConnection, issue: &Issue) -> Result<SelectionContext> {
    let labels: Vec<String> =
        sqlx::query_scalar(pg("SELECT l.name FROM issue_labels il JOIN labels l ON l.id = il.label_id \
         WHERE il.issue_id = ? AND l.deleted_at IS NULL"))
        .bind(&issue.id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    let has_failed_sessions = sqlx::query(pg("SELECT 1 FROM agent_sessions WHERE issue_id = ? \
         AND outcome IN ('failed', 'expired', 'released') LIMIT 1"))
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

/// Everything a prompt for `issue` is hydrated from; neighbour lists are capped.
pub(crate) async fn hydrate(conn: &mut PgConnection, issue: Issue) -> Result<PromptInputs> {
    let cap = MAX_NEIGHBOURS as i64;
    let (parent, siblings, children) = match &issue.parent_id {
        Some(p) => (
            rows::find_issue(conn, p).await?,
            neighbours(conn, &ISSUE_SQL.children, p, &issue.id, cap).await?,
            Vec::new(),
        ),
        None => (None, Vec::new(), neighbours(conn, &ISSUE_SQL.children, &issue.id, "", cap).await?),
    };
    let blocking = linked(conn, &ISSUE_SQL.blocking, &issue.id, cap).await?;
    let blocked_by = linked(conn, &ISSUE_SQL.blocked_by, &issue.id, cap).await?;
    let project = match &issue.project_id {
        Some(p) => {
            rows::one(conn, "SELECT * FROM projects WHERE id = ? AND deleted_at IS NULL", p, rows::project).await?
        }
        None => None,
    };
    let goal = match &project {
        Some(p) => sqlx::query(pg("SELECT * FROM goals WHERE deleted_at IS NULL AND (id = ?1 OR project_id = ?2) \
             ORDER BY (id = ?1) DESC, (status = 'active') DESC, created_at LIMIT 1"))
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
    let labels =
        sqlx::query(pg("SELECT l.id, l.name, l.color FROM issue_labels il JOIN labels l ON l.id = il.label_id \
         WHERE il.issue_id = ? AND l.deleted_at IS NULL ORDER BY l.name"))
        .bind(&issue.id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(|r| Ok(LabelRef { id: rows::get(r, "id")?, name: rows::get(r, "name")?, color: rows::get(r, "color")? }))
        .collect::<Result<Vec<_>>>()?;
    let previous_sessions = sqlx::query(pg(
        "SELECT * FROM agent_sessions WHERE issue_id = ? AND ended_at IS NOT NULL ORDER BY claimed_at, id LIMIT ?",
    ))
    .bind(&issue.id)
    .bind(cap)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?
    .iter()
    .map(rows::session)
    .collect::<Result<Vec<_>>>()?;
    let improvement = improvement(conn, &issue.id).await?;
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

async fn issues(conn: &mut PgConnection, sql: &'static str, bind: &str) -> Result<Vec<Issue>> {
    sqlx::query(pg(sql)).bind(bind).fetch_all(&mut *conn).await.map_err(db)?.iter().map(rows::issue).collect()
}

async fn neighbours(conn: &mut PgConnection, sql: &str, parent: &str, except: &str, cap: i64) -> Result<Vec<Issue>> {
    let rows = sqlx::query(sql).bind(parent).bind(except).bind(cap).fetch_all(&mut *conn).await.map_err(db)?;
    rows.iter().map(rows::issue).collect()
}

async fn linked(conn: &mut PgConnection, sql: &str, id: &str, cap: i64) -> Result<Vec<Issue>> {
    let rows = sqlx::query(sql).bind(id).bind(cap).fetch_all(&mut *conn).await.map_err(db)?;
    rows.iter().map(rows::issue).collect()
}

/// What an improvement issue's prompt is hydrated from, if the issue is one: the template,
/// the version to improve and its reviews since it became active.
async fn improvement(conn: &mut PgConnection, issue_id: &str) -> Result<Option<ImprovementInputs>> {
    let Some(row) = sqlx::query(pg("SELECT template_id, version_id FROM prompt_improvements WHERE issue_id = ?"))
        .bind(issue_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
    else {
        return Ok(None);
    };
    let (template_id, version_id): (String, String) = (rows::get(&row, "template_id")?, rows::get(&row, "version_id")?);
    let template = rows::one(
        conn,
        "SELECT * FROM prompt_templates WHERE id = ? AND deleted_at IS NULL",
        &template_id,
        rows::template,
    )
    .await?;
    let version = rows::one(conn, "SELECT * FROM prompt_versions WHERE id = ?", &version_id, rows::version).await?;
    let (Some(template), Some(version)) = (template, version) else { return Ok(None) };
    let reviews = sqlx::query(pg(crate::improvement::REVIEWS_SINCE))
        .bind(&version.id)
        .bind(version.activated_at.map(|t| t.millis()).unwrap_or(i64::MIN))
        .bind(i64::MIN)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(|r| Ok((rows::review(r)?, rows::get::<Option<i64>>(r, "issue_number")?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(ImprovementInputs { template, version, reviews }))
}
