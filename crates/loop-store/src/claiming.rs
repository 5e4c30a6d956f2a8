//! Claims: the highest-scoring ready issue (or a given one) moves to `in_progress` under a new
//! session, and what its prompt is hydrated from is read in the same transaction.
//!
//! The next issue is one index seek (`issues_ready`, see `dispatch_index`). On PostgreSQL it is
//! taken `FOR UPDATE SKIP LOCKED`, so concurrent claims on any node never wait for each other
//! and never take one issue twice; on SQLite the single writer does the same.

use loop_core::dispatch::{self, Claim, ClaimRequest};
use loop_core::event::NewEvent;
use loop_core::issue::{Issue, IssueStatus};
use loop_core::session::AgentSession;
use loop_core::template::{SelectionContext, TemplateChooser};
use loop_core::{Actor, Error, Result, Timestamp, id::new_id};

use crate::common::{events_insert, find_issue, find_issue_locked};
use crate::db::{Db, DbExt, Dialect, UNIQUE, Write};
use crate::hydration::{CONTEXT_COLUMNS, context_of, prompt_inputs, selection_context};
use crate::rows::{self, ISSUE_COLUMNS};
use crate::{args, hypotheses, sessions};

/// The eligibility predicate, written exactly as the partial indexes' so SQLite can use them.
pub(crate) const READY: &str = "status = 'todo' AND open_blockers = 0 AND deleted_at IS NULL";
pub(crate) const READY_ORDER: &str = "dispatch_key DESC, todo_since, number";

/// Live issues that block `?1`: not terminal, or done but not merged where the relation waits
/// for the merge.
pub(crate) const OPEN_BLOCKERS: &str = "SELECT i.* FROM issue_relations r JOIN issues i ON i.id = r.edge_from \
     WHERE r.edge_kind = 'block' AND r.edge_to = ?1 AND i.deleted_at IS NULL AND (i.status NOT IN ('done', 'canceled') \
     OR (r.until_merged = 1 AND i.status = 'done' AND i.merged_at IS NULL)) ORDER BY i.number";

pub(crate) async fn claim_next(
    db: &mut impl Db,
    req: &ClaimRequest,
    chooser: &dyn TemplateChooser,
    now: Timestamp,
) -> Result<Option<Claim>> {
    one_claim_per_key(db, req).await?;
    if let Some(claim) = replay(db, req).await? {
        return Ok(Some(claim));
    }
    within_limit(db, req, now).await?;
    // SQLite is told the index: with statistics it would otherwise pick the status index and
    // sort every todo issue on each claim. The selection context is read for the one row
    // taken, not for every row skipped.
    let next = |index: &str, filter: &str| {
        format!(
            "SELECT x.*, {CONTEXT_COLUMNS} FROM (SELECT {ISSUE_COLUMNS} FROM issues INDEXED BY {index} \
             WHERE {READY}{filter} ORDER BY {READY_ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED) x"
        )
    };
    let row = match &req.project_id {
        Some(p) => db.one(&next("issues_ready_project", " AND project_id = ?"), &args![p]).await?,
        None => db.one(&next("issues_ready", ""), &[]).await?,
    };
    let Some(row) = row else { return Ok(None) };
    let issue = rows::issue(&row)?;
    let context = context_of(&row, &issue)?;
    Ok(Some(take(db, issue, context, req, chooser, now).await?))
}

pub(crate) async fn claim_issue(
    db: &mut impl Db,
    key: &str,
    req: &ClaimRequest,
    chooser: &dyn TemplateChooser,
    now: Timestamp,
) -> Result<Claim> {
    one_claim_per_key(db, req).await?;
    // Locked, then read again: another node may have just claimed or changed it.
    let issue = find_issue(db, key).await?.ok_or_else(|| Error::not_found("Issue", key))?;
    let issue = find_issue_locked(db, &issue.id, "FOR UPDATE").await?.ok_or_else(|| Error::not_found("Issue", key))?;
    if let Some(earlier) = replay(db, req).await? {
        if earlier.issue.id == issue.id {
            return Ok(earlier);
        }
        return Err(key_reused(&format!("issue #{}", earlier.issue.number)));
    }
    within_limit(db, req, now).await?;
    let blockers = db.each(OPEN_BLOCKERS, &args![&issue.id], rows::issue).await?;
    let lease = sessions::open_for_issue(db, &issue.id).await?;
    let reasons = dispatch::ineligibility(&issue, &blockers, lease.as_ref());
    if !reasons.is_empty() {
        return Err(Error::conflict(
            "not_eligible",
            format!("issue #{} cannot be dispatched: {}", issue.number, reasons.join("; ")),
        ));
    }
    let context = selection_context(db, &issue).await?;
    take(db, issue, context, req, chooser, now).await
}

/// On PostgreSQL, serialises the claims that carry this agent's idempotency key until the
/// transaction ends, so a retry waits for the request it repeats and then replays it. Claims
/// without a key take no lock: agents sharing a name must not wait for each other.
async fn one_claim_per_key(db: &mut impl Db, req: &ClaimRequest) -> Result<()> {
    if let (Some(key), Dialect::Postgres) = (&req.idempotency_key, db.dialect()) {
        db.run("SELECT pg_advisory_xact_lock(hashtext(?), hashtext(?))", &args![&req.agent, key]).await?;
    }
    Ok(())
}

/// A token that may hold only so many claims gets no more: on PostgreSQL its claims wait for
/// each other here (SQLite has one writer), so two at once cannot both pass the count.
async fn within_limit(db: &mut impl Db, req: &ClaimRequest, now: Timestamp) -> Result<()> {
    let Some(limit) = &req.limit else { return Ok(()) };
    if db.dialect() == Dialect::Postgres {
        db.run("SELECT pg_advisory_xact_lock(hashtext('loop claim limit'), hashtext(?))", &args![&limit.holder])
            .await?;
    }
    // The holder's own name, and its workers' (`holder/…`, which sort between `holder/` and `holder0`).
    let sql = "SELECT i.number FROM agent_sessions s JOIN issues i ON i.id = s.issue_id \
               WHERE s.ended_at IS NULL AND s.lease_expires_at > ? AND (s.agent = ? OR (s.agent > ? AND s.agent < ?)) \
               ORDER BY i.number";
    let (workers, past) = (format!("{}/", limit.holder), format!("{}0", limit.holder));
    let args = args![now.millis(), &limit.holder, &workers, &past];
    let held = db.each(sql, &args, |row| rows::get::<i64>(row, "number")).await?;
    if held.len() < limit.most as usize {
        return Ok(());
    }
    let list: Vec<String> = held.iter().map(|n| format!("#{n}")).collect();
    Err(Error::Limited {
        code: "claim_limit",
        message: format!(
            "token {} may hold {} claim(s) at once and holds {} ({}): report or release one before claiming another",
            limit.holder,
            limit.most,
            held.len(),
            list.join(", ")
        ),
    })
}

/// A retried request (the same `Idempotency-Key` from the same agent) gets its earlier claim back.
async fn replay(db: &mut impl Db, req: &ClaimRequest) -> Result<Option<Claim>> {
    let Some(key) = &req.idempotency_key else { return Ok(None) };
    let sql = "SELECT * FROM agent_sessions WHERE agent = ? AND idempotency_key = ?";
    let Some(session) = db.first(sql, &args![&req.agent, key], rows::session).await? else { return Ok(None) };
    let Some(issue) = find_issue(db, &session.issue_id).await? else {
        // The claimed issue was deleted since: never hand it out again.
        return Err(key_reused("an issue that has since been deleted"));
    };
    if let Some(outcome) = session.outcome {
        // The claim is over (reported, released or expired): handing it out again could give
        // the agent an issue that is done, or that another agent now holds.
        return Err(key_reused(&format!("#{}, whose session has since ended ({})", issue.number, outcome.as_str())));
    }
    Ok(Some(Claim { issue, session, template: None, replayed: true, inputs: None }))
}

fn key_reused(what: &str) -> Error {
    Error::conflict(
        "idempotency_key_reused",
        format!("this Idempotency-Key was already used to claim {what}; send a new key for a new claim"),
    )
}

/// Moves an eligible (and, on PostgreSQL, locked) issue to `in_progress` under a new session,
/// and reads what its prompt is hydrated from. Three statements: the claim's writes travel
/// together (one round trip on PostgreSQL), then the hydration.
async fn take(
    db: &mut impl Db,
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
    let mut writes = vec![
        Write::new(CLAIM, &args![now.millis(), &issue.id]),
        Write::new(
            "INSERT INTO agent_sessions (id, issue_id, agent, template_version_id, claimed_at, lease_expires_at, \
             idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
            &args![
                &session.id,
                &session.issue_id,
                &session.agent,
                &session.template_version_id,
                now.millis(),
                session.lease_expires_at.millis(),
                &req.idempotency_key,
            ],
        ),
    ];
    writes.extend(events_insert(&events, &Actor::agent(&req.agent), now));
    if let Some(t) = &template {
        let used = "UPDATE prompt_versions SET usage_count = usage_count + 1 WHERE id = ?";
        writes.push(Write::new(used, &args![&t.version.id]));
    }
    db.run_writes(&writes).await.map_err(|e| match e {
        // Another claim with this key committed first (only possible without the key's lock):
        // the backend runs this claim again, and it then replays that one.
        Error::Conflict { code, .. } if code == UNIQUE => Error::Busy("a concurrent claim used this key".into()),
        e => e,
    })?;
    hypotheses::child_underway(db, &issue, &Actor::agent(&req.agent), now).await?;
    issue.status = IssueStatus::InProgress;
    issue.updated_at = now;
    // A claim stands even if its prompt cannot be hydrated: the caller then asks again through
    // `prompt_inputs` and records the error on the session.
    let inputs = match template {
        Some(_) => prompt_inputs(db, issue.clone()).await.ok().map(Box::new),
        None => None,
    };
    Ok(Claim { issue, session, template, replayed: false, inputs })
}

/// An issue taken by a claim leaves the ready queue.
const CLAIM: &str =
    "UPDATE issues SET status = 'in_progress', todo_since = NULL, dispatch_key = NULL, updated_at = ? WHERE id = ?";
