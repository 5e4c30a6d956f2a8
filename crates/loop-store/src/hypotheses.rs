//! The hypothesis lifecycle in the store: testing starts when a hypothesis's tasks get
//! underway (its monitors then wait for the observation window), readings of its metric are
//! kept, and the data (or a person, or its monitor's agent) resolves it. Each resolution leaves
//! a row in `hypothesis_outcomes`, which loop metrics read.
//!
//! The issue's `hypothesis` is the truth; `hypothesis_watch` only indexes the hypotheses being
//! tested against criteria by metric and by the end of their window.

use async_trait::async_trait;
use loop_core::event::NewEvent;
use loop_core::hypothesis::{Hypothesis, HypothesisStatus, Resolution};
use loop_core::issue::{Issue, IssueType};
use loop_core::store::{HypothesisStore, Swept};
use loop_core::{Actor, Error, Result, Timestamp};
use serde_json::json;

use crate::common::{find_issue_locked, record};
use crate::db::Db;
use crate::db::DbExt;
use crate::dispatch_index::refresh_issue;
use crate::rows::{self, ISSUE_COLUMNS, to_json};
use crate::{Backend, SqlStore, args};

/// How many waits and due hypotheses one sweep handles; the next sweep takes the rest.
const SWEEP_BATCH: i64 = 200;

#[async_trait]
impl<B: Backend> HypothesisStore for SqlStore<B> {
    async fn resolve_hypothesis(&self, key: &str, resolution: Resolution, actor: &Actor) -> Result<Issue> {
        let (key, now, actor) = (key.to_owned(), self.now(), actor.clone());
        self.write((key, resolution, actor), move |db, (key, r, actor)| {
            Box::pin(async move {
                let issue = find_issue_locked(db, &key, "FOR NO KEY UPDATE")
                    .await?
                    .ok_or_else(|| Error::not_found("Issue", &key))?;
                let Some(mut h) = issue.hypothesis.clone() else {
                    return Err(Error::invalid(
                        "id",
                        "hypothesis_not_found",
                        format!("issue #{} has no hypothesis to resolve", issue.number),
                    ));
                };
                let evidence = json!({ "reason": r.reason.to_string(), "by": actor.name });
                let t = h.resolve(r.status, r.reason.to_string(), evidence, now)?;
                resolved(db, &issue, h, t, &actor, now).await
            })
        })
        .await
    }

    async fn sweep_due(&self) -> Result<Swept> {
        let now = self.now();
        self.write((), move |db, ()| Box::pin(sweep(db, now))).await
    }
}

/// The hypothesis an issue serves. The chain of seed 000 is flat (issues nest one level): the
/// hypothesis, its tasks and its monitor are siblings under the signal, so it is the issue's
/// parent when that is a hypothesis, else the newest unresolved hypothesis among its siblings
/// (the newest of any, when all are resolved).
pub(crate) async fn hypothesis_of(db: &mut impl Db, issue: &Issue, lock: &str) -> Result<Option<Issue>> {
    let Some(parent_id) = &issue.parent_id else { return Ok(None) };
    let sql = format!(
        "SELECT {ISSUE_COLUMNS} FROM issues WHERE (id = ?1 OR parent_id = ?1) AND type = 'hypothesis' \
         AND hypothesis IS NOT NULL AND deleted_at IS NULL ORDER BY CASE WHEN id = ?1 THEN 0 ELSE 1 END, created_at DESC, number DESC"
    );
    let found = db.each(&sql, &args![parent_id], rows::issue).await?;
    let open = |h: &&Issue| h.id == *parent_id || h.hypothesis.as_ref().is_some_and(|x| !x.status.is_resolved());
    match found.iter().find(open).or(found.first()) {
        Some(h) => find_issue_locked(db, &h.id, lock).await,
        None => Ok(None),
    }
}

/// The parent the issues of a hypothesis's chain share: its signal, or itself when it has none.
fn chain_parent(hypothesis: &Issue) -> &str {
    hypothesis.parent_id.as_deref().unwrap_or(&hypothesis.id)
}

/// A task or plan of a hypothesis went underway (claimed, started or done): the hypothesis is
/// testing from now, and the monitors of its chain wait for its observation window.
pub(crate) async fn child_underway(db: &mut impl Db, child: &Issue, actor: &Actor, now: Timestamp) -> Result<()> {
    if !matches!(child.issue_type, IssueType::Task | IssueType::Plan) || child.parent_id.is_none() {
        return Ok(());
    }
    let Some(hypothesis) = hypothesis_of(db, child, "FOR NO KEY UPDATE").await? else { return Ok(()) };
    let Some(mut h) = hypothesis.hypothesis.clone() else { return Ok(()) };
    let Some(t) = h.start_testing(now) else { return Ok(()) };
    save(db, &hypothesis.id, &h, now).await?;
    watch(db, &hypothesis.id, Some(&h)).await?;
    let mut events = vec![NewEvent::hypothesis_status_changed(&hypothesis.id, &t)];
    if let Some(until) = h.observe_until {
        let sql = "UPDATE issues SET not_before = ?, updated_at = ? WHERE parent_id = ? AND type = 'monitor' \
             AND deleted_at IS NULL AND status NOT IN ('done', 'canceled') AND not_before IS NULL RETURNING id";
        for row in db.all(sql, &args![until.millis(), now.millis(), chain_parent(&hypothesis)]).await? {
            let id: String = rows::get(&row, "id")?;
            refresh_issue(db, &id).await?;
            events.push(NewEvent::field_changed(&id, "notBefore", serde_json::Value::Null, json!(until)));
        }
    }
    record(db, &events, actor, now).await
}

/// When a new monitor may first be dispatched: the end of its hypothesis's observation window,
/// while that is being tested.
pub(crate) async fn monitor_wait(db: &mut impl Db, monitor: &Issue, now: Timestamp) -> Result<Option<Timestamp>> {
    let Some(hypothesis) = hypothesis_of(db, monitor, "").await? else { return Ok(None) };
    let Some(h) = hypothesis.hypothesis else { return Ok(None) };
    Ok(h.observe_until.filter(|t| h.status == HypothesisStatus::Testing && *t > now))
}

/// Keeps `hypothesis_watch` true for a hypothesis as it now is: watched while testing against
/// criteria, not otherwise.
pub(crate) async fn watch(db: &mut impl Db, issue_id: &str, h: Option<&Hypothesis>) -> Result<()> {
    match h
        .and_then(|h| Some((h.criteria.as_ref()?, h.observe_until?)).filter(|_| h.status == HypothesisStatus::Testing))
    {
        Some((c, until)) => {
            let sql = "INSERT INTO hypothesis_watch (issue_id, metric, observe_until) VALUES (?, ?, ?) \
                 ON CONFLICT (issue_id) DO UPDATE SET metric = excluded.metric, observe_until = excluded.observe_until";
            db.run(sql, &args![issue_id, c.metric.as_str(), until.millis()]).await?;
        }
        None => watch_none(db, issue_id).await?,
    }
    Ok(())
}

/// A reading of `metric` (from PostHog, a metric signal or a goal update): every hypothesis
/// tested against it keeps it, and those whose window has passed are decided by it.
pub(crate) async fn observe(db: &mut impl Db, metric: &str, value: f64, actor: &Actor, now: Timestamp) -> Result<()> {
    let sql = r#"SELECT issue_id, observe_until FROM hypothesis_watch WHERE metric = ? ORDER BY issue_id COLLATE "C" FOR UPDATE"#;
    for row in db.all(sql, &args![metric]).await? {
        let id: String = rows::get(&row, "issue_id")?;
        let sql = "UPDATE hypothesis_watch SET last_value = ?, last_read_at = ? WHERE issue_id = ?";
        db.run(sql, &args![value, now.millis(), &id]).await?;
        if rows::ts(&row, "observe_until")? <= now {
            decide(db, &id, Some((value, now)), actor, now).await?;
        }
    }
    Ok(())
}

/// Lets the data decide a watched hypothesis whose window has passed.
async fn decide(
    db: &mut impl Db,
    issue_id: &str,
    last: Option<(f64, Timestamp)>,
    actor: &Actor,
    now: Timestamp,
) -> Result<()> {
    let Some(issue) = find_issue_locked(db, issue_id, "FOR NO KEY UPDATE").await? else {
        // Deleted while tested: nothing is left to decide.
        db.run("DELETE FROM hypothesis_watch WHERE issue_id = ?", &args![issue_id]).await?;
        return Ok(());
    };
    let Some(mut h) = issue.hypothesis.clone() else { return watch_none(db, issue_id).await };
    let Some((status, outcome)) = h.judge(last, now) else { return Ok(()) };
    let evidence = match (&h.criteria, last) {
        (Some(c), Some((value, at))) => json!({ "metric": c.metric.as_str(), "value": value, "readAt": at,
            "comparison": c.comparison, "threshold": c.threshold }),
        (Some(c), None) => json!({ "metric": c.metric.as_str(), "value": null }),
        _ => json!({}),
    };
    let t = h.resolve(status, outcome, evidence, now)?;
    resolved(db, &issue, h, t, actor, now).await.map(|_| ())
}

async fn watch_none(db: &mut impl Db, issue_id: &str) -> Result<()> {
    db.run("DELETE FROM hypothesis_watch WHERE issue_id = ?", &args![issue_id]).await.map(|_| ())
}

/// Writes a resolved hypothesis, its event and its outcome row.
async fn resolved(
    db: &mut impl Db,
    issue: &Issue,
    h: Hypothesis,
    t: loop_core::hypothesis::Transition,
    actor: &Actor,
    now: Timestamp,
) -> Result<Issue> {
    save(db, &issue.id, &h, now).await?;
    watch_none(db, &issue.id).await?;
    write_outcome(db, issue, &h, now).await?;
    record(db, &[NewEvent::hypothesis_status_changed(&issue.id, &t)], actor, now).await?;
    let mut issue = issue.clone();
    issue.hypothesis = Some(h);
    issue.updated_at = now;
    Ok(issue)
}

async fn save(db: &mut impl Db, issue_id: &str, h: &Hypothesis, now: Timestamp) -> Result<()> {
    let sql = "UPDATE issues SET hypothesis = ?, updated_at = ? WHERE id = ?";
    db.run(sql, &args![&to_json(&Some(h)), now.millis(), issue_id]).await.map(|_| ())
}

/// The times of the chain that led to this resolution, for loop metrics: the signal that
/// caused it (its parent, when that is a signal), when that signal left triage, when the
/// hypothesis was made, when its tasks got underway and when the last was done.
async fn write_outcome(db: &mut impl Db, issue: &Issue, h: &Hypothesis, now: Timestamp) -> Result<()> {
    let signal = match &issue.parent_id {
        Some(p) => find_issue_locked(db, p, "").await?.filter(|p| p.issue_type == IssueType::Signal),
        None => None,
    };
    let chain = chain_parent(issue);
    let triaged_at = match &signal {
        Some(s) => {
            let sql =
                "SELECT created_at, data FROM issue_events WHERE issue_id = ? AND kind = 'status_changed' ORDER BY id";
            let mut at = None;
            for row in db.all(sql, &args![&s.id]).await? {
                let data: serde_json::Value =
                    serde_json::from_str(&rows::get::<String>(&row, "data")?).unwrap_or_default();
                if data["from"] == "triage" {
                    at = Some(rows::get::<i64>(&row, "created_at")?);
                    break;
                }
            }
            at
        }
        None => None,
    };
    let shipped = db
        .one(
            "SELECT MAX(completed_at) AS at FROM issues WHERE parent_id = ? AND type IN ('task', 'plan') \
             AND status = 'done' AND deleted_at IS NULL",
            &args![chain],
        )
        .await?;
    let shipped_at: Option<i64> = match &shipped {
        Some(r) => rows::get(r, "at")?,
        None => None,
    };
    let version = db
        .one(
            "SELECT template_version_id FROM agent_sessions WHERE issue_id = ? ORDER BY claimed_at DESC LIMIT 1",
            &args![&issue.id],
        )
        .await?;
    let version: Option<String> = match &version {
        Some(r) => rows::get(r, "template_version_id")?,
        None => None,
    };
    let source = signal.as_ref().and_then(|s| s.signal_source.clone()).or_else(|| issue.signal_source.clone());
    db.run(
        "INSERT INTO hypothesis_outcomes (issue_id, status, resolved_at, signal_source, template_version_id, signal_at, \
         triaged_at, hypothesis_at, testing_at, shipped_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (issue_id) DO UPDATE SET status = excluded.status, resolved_at = excluded.resolved_at",
        &args![
            &issue.id,
            h.status.as_str(),
            now.millis(),
            &source,
            &version,
            signal.as_ref().map(|s| s.created_at.millis()),
            triaged_at,
            issue.created_at.millis(),
            h.testing_since.map(|t| t.millis()),
            shipped_at,
        ],
    )
    .await
    .map(|_| ())
}

/// Ends the waits whose time came and lets the data decide the hypotheses whose window
/// passed.
async fn sweep(db: &mut impl Db, now: Timestamp) -> Result<Swept> {
    let actor = Actor::system();
    let sql = "SELECT id, not_before FROM issues WHERE not_before IS NOT NULL AND not_before <= ? \
         AND deleted_at IS NULL ORDER BY not_before LIMIT ?";
    let due = db.all(sql, &args![now.millis(), SWEEP_BATCH]).await?;
    let mut swept = Swept::default();
    let mut events = Vec::new();
    for row in &due {
        let id: String = rows::get(row, "id")?;
        // Only if still waiting for that time: a concurrent patch may have moved it.
        let at: i64 = rows::get(row, "not_before")?;
        let sql = "UPDATE issues SET not_before = NULL WHERE id = ? AND not_before = ?";
        if db.run(sql, &args![&id, at]).await? == 1 {
            refresh_issue(db, &id).await?;
            events.push(NewEvent::wait_ended(&id, Timestamp::from_millis(at)));
            swept.released += 1;
        }
    }
    record(db, &events, &actor, now).await?;
    let sql = r#"SELECT issue_id, last_value, last_read_at FROM hypothesis_watch WHERE observe_until <= ?
         ORDER BY observe_until, issue_id COLLATE "C" LIMIT ?"#;
    for row in db.all(sql, &args![now.millis(), SWEEP_BATCH]).await? {
        let id: String = rows::get(&row, "issue_id")?;
        let last = match (rows::get::<Option<f64>>(&row, "last_value")?, rows::opt_ts(&row, "last_read_at")?) {
            (Some(v), Some(at)) => Some((v, at)),
            _ => None,
        };
        decide(db, &id, last, &actor, now).await?;
        swept.resolved += 1;
    }
    Ok(swept)
}
