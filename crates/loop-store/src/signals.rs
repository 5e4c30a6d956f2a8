//! Signals: ingestion with deduplication, delivery-once webhooks, goal readings, and merged
//! pull requests attached to the issues they name.
//!
//! On PostgreSQL several nodes ingest at once. A delivery is recorded once by its primary key
//! (`ON CONFLICT DO NOTHING`: a concurrent duplicate waits for the first and then inserts
//! nothing). Signals with one fingerprint are ingested one at a time under a
//! transaction-scoped advisory lock on the fingerprint, so two first occurrences cannot both
//! open an issue and two repeats cannot both count the same occurrence.

use async_trait::async_trait;
use loop_core::comment::{AuthorType, Comment};
use loop_core::event::NewEvent;
use loop_core::issue::{Issue, IssuePatch, PullRequest};
use loop_core::signal::{Delivery, Ingested, MetricReading, NewSignal, Signal};
use loop_core::store::SignalStore;
use loop_core::{Actor, Error, Page, Paged, Result, Timestamp, id::new_id};

use crate::common::{self, check_ref, find_issue, record};
use crate::db::{Db, DbExt, Dialect, Value};
use crate::dispatch_index::refresh_issue;
use crate::{Backend, SqlStore, args, comments, goals, hypotheses, issues, rows};

/// The first key of the advisory locks taken on fingerprints (the second is the fingerprint's
/// hash), so they cannot collide with other users of advisory locks ("Loop" in ASCII).
const FINGERPRINT_LOCKS: i64 = 0x4C6F_6F70;

#[async_trait]
impl<B: Backend> SignalStore for SqlStore<B> {
    async fn ingest_signal(
        &self,
        signal: NewSignal,
        delivery: Option<Delivery>,
        reading: Option<MetricReading>,
        actor: &Actor,
    ) -> Result<Ingested> {
        let (now, actor) = (self.now(), actor.clone());
        self.write((signal, delivery, reading, actor), move |db, (signal, delivery, reading, actor)| {
            Box::pin(ingest(db, signal, delivery, reading, actor, now))
        })
        .await
    }

    async fn list_signals(&self, page: Page) -> Result<Paged<Signal>> {
        self.read((), move |db, ()| {
            Box::pin(async move {
                let order = r#"created_at DESC, id COLLATE "C" DESC"#;
                common::page_of(db, "*", "FROM signals", order, &[], page, rows::signal).await
            })
        })
        .await
    }

    async fn open_signal_issue(&self, fingerprint: &str) -> Result<Option<Issue>> {
        self.read(fingerprint.to_owned(), move |db, fingerprint| {
            Box::pin(async move {
                let sql = r#"SELECT s.issue_id FROM signals s JOIN issues i ON i.id = s.issue_id
                    WHERE s.fingerprint = ? AND i.deleted_at IS NULL AND i.status NOT IN ('done', 'canceled')
                    ORDER BY s.created_at DESC, s.id COLLATE "C" DESC LIMIT 1"#;
                let Some(row) = db.all(sql, &args![&fingerprint]).await?.into_iter().next() else { return Ok(None) };
                let id: String = rows::get(&row, "issue_id")?;
                find_issue(db, &id).await
            })
        })
        .await
    }

    async fn attach_pull_request(
        &self,
        issue_numbers: &[i64],
        pr: PullRequest,
        delivery: Delivery,
        actor: &Actor,
    ) -> Result<Option<Vec<Issue>>> {
        let (numbers, now, actor) = (issue_numbers.to_vec(), self.now(), actor.clone());
        self.write((numbers, pr, delivery, actor), move |db, (numbers, pr, delivery, actor)| {
            Box::pin(attach(db, numbers, pr, delivery, actor, now))
        })
        .await
    }
}

async fn ingest(
    db: &mut impl Db,
    signal: NewSignal,
    delivery: Option<Delivery>,
    reading: Option<MetricReading>,
    actor: Actor,
    now: Timestamp,
) -> Result<Ingested> {
    if let Some(d) = &delivery
        && !first_delivery(db, d, now).await?
    {
        return Ok(Ingested::DuplicateDelivery);
    }
    // Checked before deduplication, so a repeat is refused exactly like a first delivery.
    if let Some(p) = &signal.project_id {
        check_ref(db, "projects", "projectId", "project_not_found", p).await?;
    }
    if db.dialect() == Dialect::Postgres {
        // One transaction per fingerprint at a time; the query below then sees what the
        // previous one committed.
        let lock = "SELECT pg_advisory_xact_lock(CAST(? AS INTEGER), CAST(? AS INTEGER))";
        db.run(lock, &args![FINGERPRINT_LOCKS, fingerprint_key(&signal.fingerprint)]).await?;
    }
    // The signal and its issue are locked: an issue closed meanwhile by another node fails the
    // status test when rechecked, and the signal opens a new issue instead.
    let open = db
        .first(
            r#"SELECT s.* FROM signals s JOIN issues i ON i.id = s.issue_id
             WHERE s.fingerprint = ? AND i.deleted_at IS NULL AND i.status NOT IN ('done', 'canceled')
             ORDER BY s.created_at DESC, s.id COLLATE "C" DESC LIMIT 1 FOR UPDATE OF s, i"#,
            &args![&signal.fingerprint],
            rows::signal,
        )
        .await?;
    let result = match open {
        Some(existing) => repeat(db, existing, &signal, &actor, now).await?,
        None => create(db, &signal, &actor, now).await?,
    };
    if let (Some(r), Ingested::Created { issue, .. } | Ingested::Repeated { issue, .. }) = (&reading, &result) {
        update_goals(db, r, &issue.id, &actor, now).await?;
        hypotheses::observe(db, &r.metric, r.value, &actor, now).await?;
    }
    Ok(result)
}

/// True the first time a delivery is seen (and records it).
pub(crate) async fn first_delivery(db: &mut impl Db, d: &Delivery, now: Timestamp) -> Result<bool> {
    let sql =
        "INSERT INTO webhook_deliveries (provider, delivery_id, received_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING";
    Ok(db.run(sql, &args![&d.provider, &d.id, now.millis()]).await? == 1)
}

/// A stable 32-bit hash of a fingerprint (FNV-1a), the same on every node.
fn fingerprint_key(fingerprint: &str) -> i64 {
    let mut h: u32 = 0x811c_9dc5;
    for b in fingerprint.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h as i32 as i64
}

async fn create(db: &mut impl Db, s: &NewSignal, actor: &Actor, now: Timestamp) -> Result<Ingested> {
    let issue = issues::create(db, s.new_issue()?, actor.clone(), now).await?;
    let signal = s.first_occurrence(&issue.id, now);
    let payload = signal.payload.to_string();
    db.run(
        "INSERT INTO signals (id, source, source_id, type, severity, payload, issue_id, fingerprint, occurrences, \
         created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        &args![
            &signal.id,
            &signal.source,
            &signal.source_id,
            &signal.signal_type,
            signal.severity.as_str(),
            payload.as_str(),
            &signal.issue_id,
            &signal.fingerprint,
            now.millis(),
            now.millis(),
        ],
    )
    .await?;
    if let Some(task) = s.follow_up_issue(&issue.id)? {
        issues::create(db, task, actor.clone(), now).await?;
    }
    Ok(Ingested::Created { signal, issue })
}

/// One more occurrence of an open signal: count it, comment the new data on its issue, and
/// raise the issue's priority if this occurrence is more severe. The caller holds the locks on
/// the signal and its issue.
async fn repeat(
    db: &mut impl Db,
    mut existing: Signal,
    s: &NewSignal,
    actor: &Actor,
    now: Timestamp,
) -> Result<Ingested> {
    let issue = find_issue(db, &existing.issue_id).await?;
    let mut issue = issue.ok_or_else(|| Error::not_found("Issue", &existing.issue_id))?;
    let raise_to = existing.repeat(s, issue.priority, now);
    db.run(
        "UPDATE signals SET occurrences = ?, last_seen_at = ?, severity = ? WHERE id = ?",
        &args![existing.occurrences, now.millis(), existing.severity.as_str(), &existing.id],
    )
    .await?;
    let mut events = vec![NewEvent::signal_repeated(&issue.id, &existing.id, existing.occurrences)];
    if let Some(wanted) = raise_to {
        let patch = IssuePatch { priority: Some(wanted), ..IssuePatch::default() };
        let (updated, changes) = issue.apply_patch(&patch, now);
        let sql = "UPDATE issues SET priority = ?, updated_at = ? WHERE id = ?";
        db.run(sql, &args![updated.priority.value() as i64, now.millis(), &issue.id]).await?;
        refresh_issue(db, &issue.id).await?;
        events.extend(changes);
        issue = updated;
    }
    let comment = Comment {
        id: new_id(),
        body: s.repeat_comment(existing.occurrences),
        issue_id: issue.id.clone(),
        author_name: actor.name.clone(),
        author_type: AuthorType::Agent,
        parent_id: None,
        created_at: now,
    };
    comments::insert(db, &comment).await?;
    events.push(NewEvent::comment_added(&issue.id, &comment.id, &actor.name));
    record(db, &events, actor, now).await?;
    Ok(Ingested::Repeated { signal: existing, issue })
}

/// Goals tracking the reading's metric take its value as their current value. Their rows are
/// locked (in a fixed order) so that each event's `from` is the value this reading replaced.
async fn update_goals(
    db: &mut impl Db,
    r: &MetricReading,
    issue_id: &str,
    actor: &Actor,
    now: Timestamp,
) -> Result<()> {
    let sql = "SELECT id, current_value FROM goals WHERE metric = ? AND deleted_at IS NULL ORDER BY created_at, id FOR UPDATE";
    let mut events = Vec::new();
    for g in db.all(sql, &args![&r.metric]).await? {
        let id: String = rows::get(&g, "id")?;
        let from: Option<f64> = rows::get(&g, "current_value")?;
        db.run(
            "UPDATE goals SET current_value = ?1, baseline_value = COALESCE(baseline_value, ?1), updated_at = ?2 WHERE id = ?3",
            &args![r.value, now.millis(), &id],
        )
        .await?;
        goals::record_reading(db, &id, r.value, now).await?;
        events.push(NewEvent::goal_updated(issue_id, &id, &r.metric, from, r.value));
    }
    record(db, &events, actor, now).await
}

/// Attaches a merged pull request to the issues it names, once per delivery.
async fn attach(
    db: &mut impl Db,
    numbers: Vec<i64>,
    pr: PullRequest,
    delivery: Delivery,
    actor: Actor,
    now: Timestamp,
) -> Result<Option<Vec<Issue>>> {
    if !first_delivery(db, &delivery, now).await? {
        return Ok(None);
    }
    if !numbers.is_empty() {
        // Each issue's pull requests are read, changed and written back: lock the named issues
        // first (in number order, so two deliveries naming the same issues cannot deadlock).
        let list = vec!["?"; numbers.len()].join(", ");
        let sql =
            format!("SELECT id FROM issues WHERE number IN ({list}) AND deleted_at IS NULL ORDER BY number FOR UPDATE");
        let binds: Vec<Value> = numbers.iter().map(|n| Value::Int(*n)).collect();
        db.all(&sql, &binds.iter().map(Value::arg).collect::<Vec<_>>()).await?;
    }
    let mut attached = Vec::new();
    for n in &numbers {
        let Some(issue) = find_issue(db, &n.to_string()).await? else { continue };
        let mut prs = issue.pull_requests.clone().unwrap_or_default();
        prs.retain(|p| p.number != pr.number);
        prs.push(pr.clone());
        let patch = IssuePatch { pull_requests: Some(Some(prs)), ..IssuePatch::default() };
        let (updated, _) = issue.apply_patch(&patch, now);
        let prs = rows::to_json(&updated.pull_requests);
        db.run(
            "UPDATE issues SET pull_requests = ?, updated_at = ? WHERE id = ?",
            &args![&prs, now.millis(), &issue.id],
        )
        .await?;
        record(db, &[NewEvent::pull_request_attached(&issue.id, pr.number, pr.url.as_deref())], &actor, now).await?;
        attached.push(updated);
    }
    Ok(Some(attached))
}
