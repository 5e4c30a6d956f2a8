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
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::rows::{self, ISSUE_COLUMNS, record};
use crate::sql::pg;
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

/// What template conditions see beyond the issue's own columns (see [`SelectionContext`]),
/// as two columns of a query over `issues`.
const CONTEXT_COLUMNS: &str = "ARRAY(SELECT l.name FROM issue_labels il JOIN labels l ON l.id = il.label_id \
       WHERE il.issue_id = issues.id AND l.deleted_at IS NULL) AS context_labels, \
     EXISTS (SELECT 1 FROM agent_sessions s WHERE s.issue_id = issues.id \
       AND s.outcome IN ('failed', 'expired', 'released')) AS context_failed";

/// The next ready issue with its selection context, for update, skipping rows other claims
/// hold.
struct NextSql {
    any: String,
    in_project: String,
}

static NEXT_SQL: LazyLock<NextSql> = LazyLock::new(|| {
    // The context is computed outside the locking query, for the one row it returns, not for
    // every row it skips.
    let next = |filter: &str| {
        format!(
            "SELECT *, {CONTEXT_COLUMNS} FROM (SELECT {ISSUE_COLUMNS} FROM issues WHERE {READY}{filter} \
             ORDER BY {READY_ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED) issues"
        )
    };
    NextSql { any: next(""), in_project: next(" AND project_id = $1") }
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
        Some(p) => sqlx::query(&NEXT_SQL.in_project).bind(p).fetch_optional(&mut *conn).await,
        None => sqlx::query(&NEXT_SQL.any).fetch_optional(&mut *conn).await,
    }
    .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    let issue = rows::issue(&row)?;
    let context = context_of(&row, &issue)?;
    Ok(Some(take(conn, issue, context, req, chooser, now).await?))
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
    let context = selection_context(conn, &issue).await?;
    take(conn, issue, context, req, chooser, now).await
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

/// Moves an eligible, locked issue to `in_progress` under a new session, and reads what its
/// prompt is hydrated from. Each statement is a round trip and a wake-up of the database
/// backend, which is what bounds claims on PostgreSQL, so the claim's writes are two: the
/// issue, its session and the version's usage in one, then the events.
async fn take(
    conn: &mut PgConnection,
    mut issue: Issue,
    context: SelectionContext,
    req: &ClaimRequest,
    chooser: &dyn TemplateChooser,
    now: Timestamp,
) -> Result<Claim> {
    let template = chooser.choose(&context);
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
    let events = [
        NewEvent::status_changed(&issue.id, issue.status.as_str(), IssueStatus::InProgress.as_str()),
        NewEvent::claimed(&issue.id, &session),
    ];
    issue.status = IssueStatus::InProgress;
    issue.updated_at = now;
    // Read before writing: hydration looks at the neighbours, not at what the claim changes.
    // A claim stands even if its prompt cannot be hydrated: the caller then asks again
    // through `prompt_inputs` and records the error on the session.
    let inputs = match template {
        Some(_) => hydrate(conn, issue.clone()).await.ok().map(Box::new),
        None => None,
    };
    // Every claim with this version updates its row, and every write takes the event counter;
    // both locks are held until commit, so they come last, the version's first as everywhere.
    sqlx::query(
        "WITH claimed AS (UPDATE issues SET status = 'in_progress', todo_since = NULL, dispatch_key = NULL, \
           updated_at = $1 WHERE id = $2), \
         used AS (UPDATE prompt_versions SET usage_count = usage_count + 1 WHERE id = $4) \
         INSERT INTO agent_sessions (id, issue_id, agent, template_version_id, claimed_at, lease_expires_at, \
           idempotency_key) VALUES ($5, $2, $3, $4, $1, $6, $7)",
    )
    .bind(now.millis())
    .bind(&issue.id)
    .bind(&session.agent)
    .bind(&session.template_version_id)
    .bind(&session.id)
    .bind(session.lease_expires_at.millis())
    .bind(&req.idempotency_key)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) { Error::conflict(RACED, "a concurrent claim used this key") } else { db(e) }
    })?;
    record(conn, &events, &Actor::agent(&req.agent), now).await?;
    Ok(Claim { issue, session, template, replayed: false, inputs })
}

/// What template conditions see for an issue, in one statement.
pub(crate) async fn selection_context(conn: &mut PgConnection, issue: &Issue) -> Result<SelectionContext> {
    let row = sqlx::query(&format!("SELECT {CONTEXT_COLUMNS} FROM issues WHERE id = $1"))
        .bind(&issue.id)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    context_of(&row, issue)
}

/// The selection context of `issue` from a row with [`CONTEXT_COLUMNS`].
fn context_of(row: &PgRow, issue: &Issue) -> Result<SelectionContext> {
    Ok(SelectionContext {
        issue_type: Some(issue.issue_type),
        signal_source: issue.signal_source.clone(),
        labels: row.try_get("context_labels").map_err(db)?,
        project_id: issue.project_id.clone(),
        has_failed_sessions: row.try_get("context_failed").map_err(db)?,
        hypothesis_confidence: issue.hypothesis.as_ref().map(|h| h.confidence.value()),
    })
}

/// Everything a prompt is hydrated from, in one statement: each neighbour list is a JSON
/// array of rows, read by the same mappers as table rows. Every statement is a round trip and
/// a wake-up of the database backend, which is what bounds claims on PostgreSQL. `$1` the
/// issue, `$2` its parent, `$3` its project, `$4` the cap on each list.
static HYDRATION: LazyLock<String> = LazyLock::new(|| {
    let rows = |sql: &str, order: &str| {
        format!("(SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY {order}), '[]') FROM ({sql}) x)")
    };
    let open_across = |this: &str, other: &str| {
        format!(
            "SELECT {ISSUE_COLUMNS} FROM issues WHERE id IN \
             (SELECT {other} FROM issue_relations WHERE edge_kind = 'block' AND {this} = $1) \
             AND id <> $1 AND deleted_at IS NULL AND status NOT IN ('done', 'canceled') ORDER BY number LIMIT $4"
        )
    };
    format!(
        "SELECT \
         (SELECT to_jsonb(x) FROM (SELECT {ISSUE_COLUMNS} FROM issues WHERE id = $2 AND deleted_at IS NULL) x) AS parent, \
         {family} AS family, {blocking} AS blocking, {blocked_by} AS blocked_by, \
         (SELECT to_jsonb(x) FROM (SELECT * FROM projects WHERE id = $3 AND deleted_at IS NULL) x) AS project, \
         (SELECT to_jsonb(x) FROM (SELECT g.* FROM goals g JOIN projects p ON p.id = $3 AND p.deleted_at IS NULL \
            WHERE g.deleted_at IS NULL AND (g.id = p.goal_id OR g.project_id = p.id) \
            ORDER BY (g.id = p.goal_id) DESC, (g.status = 'active') DESC, g.created_at LIMIT 1) x) AS goal, \
         {labels} AS labels, {sessions} AS previous_sessions, \
         EXISTS (SELECT 1 FROM prompt_improvements WHERE issue_id = $1) AS improves",
        // The parent's other children, or the issue's own children.
        family = rows(
            &format!(
                "SELECT {ISSUE_COLUMNS} FROM issues WHERE parent_id = coalesce($2, $1) AND id <> $1 \
                 AND deleted_at IS NULL ORDER BY number LIMIT $4"
            ),
            "x.number"
        ),
        blocking = rows(&open_across("edge_from", "edge_to"), "x.number"),
        blocked_by = rows(&open_across("edge_to", "edge_from"), "x.number"),
        labels = rows(
            "SELECT l.id, l.name, l.color FROM issue_labels il JOIN labels l ON l.id = il.label_id \
             WHERE il.issue_id = $1 AND l.deleted_at IS NULL",
            "x.name"
        ),
        sessions = rows(
            "SELECT * FROM agent_sessions WHERE issue_id = $1 AND ended_at IS NOT NULL ORDER BY claimed_at, id LIMIT $4",
            "x.claimed_at, x.id"
        ),
    )
});

/// Everything a prompt for `issue` is hydrated from; neighbour lists are capped.
pub(crate) async fn hydrate(conn: &mut PgConnection, issue: Issue) -> Result<PromptInputs> {
    use serde_json::{Map, Value};
    let row = sqlx::query(&HYDRATION)
        .bind(&issue.id)
        .bind(&issue.parent_id)
        .bind(&issue.project_id)
        .bind(MAX_NEIGHBOURS as i64)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    let one = |name: &str| -> Result<Option<Map<String, Value>>> {
        match row.try_get::<Option<Value>, _>(name).map_err(db)? {
            Some(Value::Object(map)) => Ok(Some(map)),
            _ => Ok(None),
        }
    };
    let all = |name: &str| -> Result<Vec<Map<String, Value>>> {
        match row.try_get::<Value, _>(name).map_err(db)? {
            Value::Array(items) => {
                Ok(items.into_iter().filter_map(|v| if let Value::Object(m) = v { Some(m) } else { None }).collect())
            }
            _ => Ok(Vec::new()),
        }
    };
    let issues = |name: &str| all(name)?.iter().map(rows::issue).collect::<Result<Vec<_>>>();
    let family = issues("family")?;
    let (parent, siblings, children) = match &issue.parent_id {
        Some(_) => (one("parent")?.as_ref().map(rows::issue).transpose()?, family, Vec::new()),
        None => (None, Vec::new(), family),
    };
    let labels = all("labels")?
        .iter()
        .map(|r| Ok(LabelRef { id: rows::get(r, "id")?, name: rows::get(r, "name")?, color: rows::get(r, "color")? }))
        .collect::<Result<Vec<_>>>()?;
    let improves: bool = row.try_get("improves").map_err(db)?;
    Ok(PromptInputs {
        improvement: if improves { improvement(conn, &issue.id).await? } else { None },
        parent,
        siblings,
        children,
        project: one("project")?.as_ref().map(rows::project).transpose()?,
        goal: one("goal")?.as_ref().map(rows::goal).transpose()?,
        labels,
        blocking: issues("blocking")?,
        blocked_by: issues("blocked_by")?,
        previous_sessions: all("previous_sessions")?.iter().map(rows::session).collect::<Result<Vec<_>>>()?,
        issue,
    })
}

async fn issues(conn: &mut PgConnection, sql: &'static str, bind: &str) -> Result<Vec<Issue>> {
    sqlx::query(pg(sql)).bind(bind).fetch_all(&mut *conn).await.map_err(db)?.iter().map(rows::issue).collect()
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
