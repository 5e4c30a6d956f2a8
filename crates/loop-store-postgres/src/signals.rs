//! Signals: ingestion with deduplication, delivery-once webhooks, goal readings, and merged
//! pull requests attached to the issues they name.
//!
//! Several nodes ingest at once. A delivery is recorded once by its primary key (`ON CONFLICT
//! DO NOTHING`: a concurrent duplicate waits for the first and then inserts nothing). Signals
//! with one fingerprint are ingested one at a time under a transaction-scoped advisory lock on
//! the fingerprint, so two first occurrences cannot both open an issue and two repeats cannot
//! both count the same occurrence.

use async_trait::async_trait;
use loop_core::event::NewEvent;
use loop_core::issue::{Issue, IssuePatch, PullRequest};
use loop_core::signal::{Delivery, Ingested, MetricReading, NewSignal, Signal};
use loop_core::store::SignalStore;
use loop_core::{Actor, Error, Page, Paged, Result, Timestamp, id::new_id};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::dispatch_index::refresh_issue;
use crate::rows::{self, find_issue, record};
use crate::sql::pg;
use crate::{PgStore, db, issues};

/// The first key of the advisory locks taken on fingerprints (the second is the fingerprint's
/// hash), so they cannot collide with other users of advisory locks ("Loop" in ASCII).
const FINGERPRINT_LOCKS: i32 = 0x4C6F_6F70;

#[async_trait]
impl SignalStore for PgStore {
    async fn ingest_signal(
        &self,
        signal: NewSignal,
        delivery: Option<Delivery>,
        reading: Option<MetricReading>,
        actor: &Actor,
    ) -> Result<Ingested> {
        let now = self.now();
        let mut tx = self.pool.begin().await.map_err(db)?;
        if let Some(d) = &delivery
            && !first_delivery(&mut tx, d, now).await?
        {
            return Ok(Ingested::DuplicateDelivery);
        }
        // Checked before deduplication, so a repeat is refused exactly like a first delivery.
        if let Some(p) = &signal.project_id {
            rows::check_ref(&mut tx, "projects", "projectId", "project_not_found", p).await?;
        }
        // One transaction per fingerprint at a time; the query below then sees what the
        // previous one committed.
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(FINGERPRINT_LOCKS)
            .bind(fingerprint_key(&signal.fingerprint))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // The signal and its issue are locked: an issue closed meanwhile by another node fails
        // the status test when rechecked, and the signal opens a new issue instead.
        let open = sqlx::query(pg("SELECT s.* FROM signals s JOIN issues i ON i.id = s.issue_id \
             WHERE s.fingerprint = ? AND i.deleted_at IS NULL AND i.status NOT IN ('done', 'canceled') \
             ORDER BY s.created_at DESC, s.id COLLATE \"C\" DESC LIMIT 1 FOR UPDATE OF s, i"))
        .bind(&signal.fingerprint)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .as_ref()
        .map(signal_row)
        .transpose()?;
        let result = match open {
            Some(existing) => repeat(&mut tx, existing, &signal, actor, now).await?,
            None => create(&mut tx, &signal, actor, now).await?,
        };
        if let (Some(r), Ingested::Created { issue, .. } | Ingested::Repeated { issue, .. }) = (&reading, &result) {
            update_goals(&mut tx, r, &issue.id, actor, now).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(result)
    }

    async fn list_signals(&self, page: Page) -> Result<Paged<Signal>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let order = "created_at DESC, id COLLATE \"C\" DESC";
        rows::page_of(&mut conn, "*", "FROM signals", order, &[], page, signal_row).await
    }

    async fn attach_pull_request(
        &self,
        issue_numbers: &[i64],
        pr: PullRequest,
        delivery: Delivery,
        actor: &Actor,
    ) -> Result<Option<Vec<Issue>>> {
        let now = self.now();
        let mut tx = self.pool.begin().await.map_err(db)?;
        if !first_delivery(&mut tx, &delivery, now).await? {
            return Ok(None);
        }
        // Each issue's pull requests are read, changed and written back: lock the named issues
        // first (in number order, so two deliveries naming the same issues cannot deadlock).
        sqlx::query(pg(
            "SELECT id FROM issues WHERE number = ANY(?) AND deleted_at IS NULL ORDER BY number FOR UPDATE",
        ))
        .bind(issue_numbers)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut attached = Vec::new();
        for n in issue_numbers {
            let Some(issue) = find_issue(&mut tx, &n.to_string()).await? else { continue };
            let mut prs = issue.pull_requests.clone().unwrap_or_default();
            prs.retain(|p| p.number != pr.number);
            prs.push(pr.clone());
            let patch = IssuePatch { pull_requests: Some(Some(prs)), ..IssuePatch::default() };
            let (updated, _) = issue.apply_patch(&patch, now);
            sqlx::query(pg("UPDATE issues SET pull_requests = ?, updated_at = ? WHERE id = ?"))
                .bind(rows::to_json(&updated.pull_requests))
                .bind(now.millis())
                .bind(&issue.id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            record(&mut tx, &[NewEvent::pull_request_attached(&issue.id, pr.number, pr.url.as_deref())], actor, now)
                .await?;
            attached.push(updated);
        }
        tx.commit().await.map_err(db)?;
        Ok(Some(attached))
    }
}

/// True the first time a delivery is seen (and records it). A concurrent transaction with the
/// same delivery waits on the primary key for this one: if it commits, the other inserts
/// nothing and returns false.
async fn first_delivery(conn: &mut PgConnection, d: &Delivery, now: Timestamp) -> Result<bool> {
    let done = sqlx::query(pg(
        "INSERT INTO webhook_deliveries (provider, delivery_id, received_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    ))
    .bind(&d.provider)
    .bind(&d.id)
    .bind(now.millis())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

/// A stable 32-bit hash of a fingerprint (FNV-1a), the same on every node.
fn fingerprint_key(fingerprint: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in fingerprint.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h as i32
}

async fn create(conn: &mut PgConnection, s: &NewSignal, actor: &Actor, now: Timestamp) -> Result<Ingested> {
    let issue = issues::create_in(conn, s.new_issue()?, actor, now).await?;
    let signal = s.first_occurrence(&issue.id, now);
    sqlx::query(pg(
        "INSERT INTO signals (id, source, source_id, type, severity, payload, issue_id, fingerprint, occurrences, \
         created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
    ))
    .bind(&signal.id)
    .bind(&signal.source)
    .bind(&signal.source_id)
    .bind(&signal.signal_type)
    .bind(signal.severity.as_str())
    .bind(signal.payload.to_string())
    .bind(&signal.issue_id)
    .bind(&signal.fingerprint)
    .bind(now.millis())
    .bind(now.millis())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(Ingested::Created { signal, issue })
}

/// One more occurrence of an open signal: count it, comment the new data on its issue, and
/// raise the issue's priority if this occurrence is more severe. The caller holds the locks on
/// the signal and its issue.
async fn repeat(
    conn: &mut PgConnection,
    mut existing: Signal,
    s: &NewSignal,
    actor: &Actor,
    now: Timestamp,
) -> Result<Ingested> {
    let mut issue =
        find_issue(conn, &existing.issue_id).await?.ok_or_else(|| Error::not_found("Issue", &existing.issue_id))?;
    let raise_to = existing.repeat(s, issue.priority, now);
    sqlx::query(pg("UPDATE signals SET occurrences = ?, last_seen_at = ?, severity = ? WHERE id = ?"))
        .bind(existing.occurrences)
        .bind(now.millis())
        .bind(existing.severity.as_str())
        .bind(&existing.id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let mut events = vec![NewEvent::signal_repeated(&issue.id, &existing.id, existing.occurrences)];
    if let Some(wanted) = raise_to {
        let patch = IssuePatch { priority: Some(wanted), ..IssuePatch::default() };
        let (updated, changes) = issue.apply_patch(&patch, now);
        sqlx::query(pg("UPDATE issues SET priority = ?, updated_at = ? WHERE id = ?"))
            .bind(updated.priority.value() as i64)
            .bind(now.millis())
            .bind(&issue.id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        refresh_issue(conn, &issue.id).await?;
        events.extend(changes);
        issue = updated;
    }
    let comment_id = new_id();
    sqlx::query(pg(
        "INSERT INTO comments (id, body, issue_id, author_name, author_type, parent_id, created_at) VALUES (?, ?, ?, ?, 'agent', NULL, ?)",
    ))
    .bind(&comment_id)
    .bind(s.repeat_comment(existing.occurrences))
    .bind(&issue.id)
    .bind(&actor.name)
    .bind(now.millis())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    events.push(NewEvent::comment_added(&issue.id, &comment_id, &actor.name));
    record(conn, &events, actor, now).await?;
    Ok(Ingested::Repeated { signal: existing, issue })
}

/// Goals tracking the reading's metric take its value as their current value. Their rows are
/// locked (in a fixed order) so that each event's `from` is the value this reading replaced.
async fn update_goals(
    conn: &mut PgConnection,
    r: &MetricReading,
    issue_id: &str,
    actor: &Actor,
    now: Timestamp,
) -> Result<()> {
    let goals = sqlx::query(pg(
        "SELECT id, current_value FROM goals WHERE metric = ? AND deleted_at IS NULL ORDER BY created_at, id FOR UPDATE",
    ))
    .bind(&r.metric)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut events = Vec::new();
    for g in goals {
        let id: String = g.try_get("id").map_err(db)?;
        let from: Option<f64> = g.try_get("current_value").map_err(db)?;
        sqlx::query(pg("UPDATE goals SET current_value = ?1, baseline_value = coalesce(baseline_value, ?1), updated_at = ?2 WHERE id = ?3"))
            .bind(r.value)
            .bind(now.millis())
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        crate::goals::record_reading(conn, &id, r.value, now).await?;
        events.push(NewEvent::goal_updated(issue_id, &id, &r.metric, from, r.value));
    }
    record(conn, &events, actor, now).await
}

fn signal_row(row: &PgRow) -> Result<Signal> {
    let get_s = |c: &str| row.try_get::<String, _>(c).map_err(db);
    Ok(Signal {
        id: get_s("id")?,
        source: get_s("source")?,
        source_id: row.try_get("source_id").map_err(db)?,
        signal_type: get_s("type")?,
        severity: get_s("severity")?.parse().map_err(Error::Internal)?,
        payload: serde_json::from_str(&get_s("payload")?).map_err(Error::internal)?,
        issue_id: get_s("issue_id")?,
        fingerprint: get_s("fingerprint")?,
        occurrences: row.try_get("occurrences").map_err(db)?,
        created_at: Timestamp::from_millis(row.try_get("created_at").map_err(db)?),
        last_seen_at: Timestamp::from_millis(row.try_get("last_seen_at").map_err(db)?),
    })
}
