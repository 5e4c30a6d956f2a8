//! Loop metrics and the changelog: the rows of a period, read through indexes on time
//! (`hypothesis_outcomes_resolved`, `issues_done`) and the agents' day tallies
//! (`agent_days`), so their cost follows the period, not the size of the history.

use std::collections::BTreeMap;

use async_trait::async_trait;
use loop_core::changelog::{Cause, Change, ChangeGroup};
use loop_core::dispatch::DAY_MS;
use loop_core::issue::{Issue, IssueType};
use loop_core::metrics::{LoopMetrics, OutcomeRow, Period};
use loop_core::store::MetricsStore;
use loop_core::{Result, Timestamp};

use crate::common::find_issue;
use crate::db::{Db, DbExt};
use crate::rows::{self, ISSUE_COLUMNS};
use crate::{Backend, SqlStore, agent_days, args, hypotheses};

#[async_trait]
impl<B: Backend> MetricsStore for SqlStore<B> {
    async fn loop_metrics(&self, since: Option<Timestamp>, until: Option<Timestamp>) -> Result<LoopMetrics> {
        let period = Period::resolve(since, until, self.now());
        self.read((), move |db, ()| Box::pin(metrics(db, period))).await
    }

    async fn changelog(&self, since: Option<Timestamp>) -> Result<Vec<ChangeGroup>> {
        let since = Period::resolve(since, None, self.now()).since;
        self.read((), move |db, ()| Box::pin(changelog(db, since))).await
    }
}

async fn metrics(db: &mut impl Db, p: Period) -> Result<LoopMetrics> {
    let (since, until) = (p.since.millis(), p.until.millis());
    let sql = "SELECT o.*, t.name AS template_name, v.version AS template_version FROM hypothesis_outcomes o \
         LEFT JOIN prompt_versions v ON v.id = o.template_version_id \
         LEFT JOIN prompt_templates t ON t.id = v.template_id \
         WHERE o.resolved_at >= ? AND o.resolved_at < ? ORDER BY o.resolved_at";
    let mut outcomes = Vec::new();
    for row in db.all(sql, &args![since, until]).await? {
        let template = match (
            rows::get::<Option<String>>(&row, "template_name")?,
            rows::get::<Option<i64>>(&row, "template_version")?,
        ) {
            (Some(name), Some(v)) => Some(format!("{name} v{v}")),
            _ => None,
        };
        outcomes.push(OutcomeRow {
            status: rows::parse(&row, "status")?,
            resolved_at: rows::get(&row, "resolved_at")?,
            signal_source: rows::get(&row, "signal_source")?,
            template_version: template,
            signal_at: rows::get(&row, "signal_at")?,
            triaged_at: rows::get(&row, "triaged_at")?,
            hypothesis_at: rows::get(&row, "hypothesis_at")?,
            testing_at: rows::get(&row, "testing_at")?,
            shipped_at: rows::get(&row, "shipped_at")?,
        });
    }
    let (first_day, last_day) = p.days();
    let agents = agent_days::tallies(db, first_day, last_day).await?;
    let sql = format!(
        "SELECT completed_at / {DAY_MS} AS day, count(*) AS n FROM issues WHERE status = 'done' \
         AND deleted_at IS NULL AND completed_at >= ? AND completed_at < ? GROUP BY completed_at / {DAY_MS} ORDER BY day"
    );
    let mut per_day = Vec::new();
    for row in db.all(&sql, &args![since, until]).await? {
        per_day.push((rows::get::<i64>(&row, "day")?, rows::get::<i64>(&row, "n")? as u64));
    }
    Ok(LoopMetrics::compute(p, &outcomes, agents, &per_day))
}

async fn changelog(db: &mut impl Db, since: Timestamp) -> Result<Vec<ChangeGroup>> {
    let sql = format!(
        "SELECT {ISSUE_COLUMNS} FROM issues WHERE status = 'done' AND deleted_at IS NULL AND completed_at >= ? \
         AND (commits IS NOT NULL OR pull_requests IS NOT NULL) ORDER BY completed_at, number"
    );
    let done = db.each(&sql, &args![since.millis()], rows::issue).await?;
    // Chains by their root (the hypothesis, or the signal when there is none), in the order of
    // their first change; changes without a chain go last.
    let mut chains: Vec<(String, ChangeGroup)> = Vec::new();
    let mut alone = Vec::new();
    let mut parents: BTreeMap<String, Option<Issue>> = BTreeMap::new();
    for issue in &done {
        let Some(change) = Change::of(issue) else { continue };
        let parent = match &issue.parent_id {
            Some(p) => cached(db, &mut parents, p).await?,
            None => None,
        };
        let (signal, hypothesis) = match parent {
            Some(h) if h.issue_type == IssueType::Hypothesis => {
                let signal = match &h.parent_id {
                    Some(s) => cached(db, &mut parents, s).await?.filter(|s| s.issue_type == IssueType::Signal),
                    None => None,
                };
                (signal, Some(h))
            }
            // Seed 000's flat chain: the task's hypothesis is its sibling under the signal.
            Some(s) if s.issue_type == IssueType::Signal => (Some(s), hypotheses::hypothesis_of(db, issue, "").await?),
            _ => (None, None),
        };
        let Some(root) = hypothesis.as_ref().or(signal.as_ref()).map(|i| i.id.clone()) else {
            alone.push(change);
            continue;
        };
        match chains.iter_mut().find(|(r, _)| *r == root) {
            Some((_, group)) => group.changes.push(change),
            None => chains.push((
                root,
                ChangeGroup::new(
                    signal.as_ref().map(Cause::signal),
                    hypothesis.as_ref().map(Cause::hypothesis),
                    vec![change],
                ),
            )),
        }
    }
    // Summaries are told once each group holds all its changes.
    let mut groups: Vec<ChangeGroup> =
        chains.into_iter().map(|(_, g)| ChangeGroup::new(g.signal, g.hypothesis, g.changes)).collect();
    groups.extend(alone.into_iter().map(|c| ChangeGroup::new(None, None, vec![c])));
    Ok(groups)
}

async fn cached(db: &mut impl Db, seen: &mut BTreeMap<String, Option<Issue>>, id: &str) -> Result<Option<Issue>> {
    if let Some(hit) = seen.get(id) {
        return Ok(hit.clone());
    }
    let found = find_issue(db, id).await?;
    seen.insert(id.to_owned(), found.clone());
    Ok(found)
}
