//! Bulk seeding of a realistic backlog, for benchmarks and demos. Writes rows directly in one
//! transaction (an HTTP create per issue would dominate a million-issue run), computing the
//! dispatch columns with the same domain functions the store uses.

use loop_core::dispatch::{base_score, dispatch_key};
use loop_core::id::new_id;
use loop_core::issue::{IssueType, Priority};
use loop_core::{Error, Result, Timestamp};

use rusqlite::{Connection, params};

use super::SqliteStore;
use super::faults::sqlite;

#[derive(Debug, Clone)]
pub struct BacklogSpec {
    pub issues: u64,
    /// Deterministic: the same seed gives the same backlog.
    pub seed: u64,
    pub projects: u64,
    /// How many of the projects have an active goal.
    pub projects_with_goal: u64,
    /// Finished work already in the database: this many ended sessions, each with three
    /// events and a comment, on issues that are not todo (so claims see the same queue).
    pub history: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BacklogReport {
    pub todo: u64,
    /// Todo issues blocked by an open issue.
    pub blocked: u64,
    pub eligible: u64,
}

impl SqliteStore {
    /// Seeds an empty database: 60% todo, 30% done, 10% backlog; uniform priorities and types;
    /// 20% of todo issues blocked by an open backlog issue; todo entry times spread over 90 days.
    pub async fn seed_backlog(&self, spec: &BacklogSpec) -> Result<BacklogReport> {
        let now = self.now();
        let mut rng = spec.seed.max(1);
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let path = self.backend().path().to_owned();
        let mut report = BacklogReport::default();
        tokio::task::block_in_place(|| -> Result<()> {
            let conn = Connection::open(&path).map_err(sqlite)?;
            conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sqlite)?;
            conn.execute_batch("BEGIN IMMEDIATE").map_err(sqlite)?;
            let mut projects = Vec::new();
            for p in 0..spec.projects {
                let id = new_id();
                let goal = if p < spec.projects_with_goal { Some(new_id()) } else { None };
                conn.execute(
                    "INSERT INTO projects (id, name, status, health, goal_id, created_at, updated_at) \
                     VALUES (?1, ?2, 'active', 'on_track', ?3, ?4, ?4)",
                    params![id, format!("Project {p}"), goal, now.millis()],
                )
                .map_err(sqlite)?;
                if let Some(g) = &goal {
                    conn.execute(
                        "INSERT INTO goals (id, title, status, project_id, created_at, updated_at) \
                         VALUES (?1, ?2, 'active', ?3, ?4, ?4)",
                        params![g, format!("Goal {p}"), id, now.millis()],
                    )
                    .map_err(sqlite)?;
                }
                projects.push((id, goal.is_some()));
            }
            let types = IssueType::ALL;
            let mut open_blockers: Vec<String> = Vec::new();
            let day = loop_core::dispatch::DAY_MS;
            let mut issue = conn
                .prepare(
                    "INSERT INTO issues (id, number, title, type, status, priority, project_id, created_at, updated_at, \
                     completed_at, todo_since, open_blockers, has_active_goal, dispatch_key) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .map_err(sqlite)?;
            let mut relation = conn
                .prepare(
                    "INSERT INTO issue_relations (id, type, issue_id, related_issue_id, edge_kind, edge_from, edge_to, created_at) \
                     VALUES (?1, 'blocked_by', ?2, ?3, 'block', ?3, ?2, ?4)",
                )
                .map_err(sqlite)?;
            let mut finished = Vec::new();
            for n in 1..=spec.issues {
                let id = new_id();
                let r = next();
                let status = match r % 10 {
                    0..=5 => "todo",
                    6..=8 => "done",
                    _ => "backlog",
                };
                let priority = Priority::new((next() % 5) as i64).map_err(Error::Internal)?;
                let issue_type = types[(next() % types.len() as u64) as usize];
                let project = (!projects.is_empty() && next() % 10 < 7)
                    .then(|| &projects[(next() % projects.len() as u64) as usize]);
                let created = now.plus_millis(-((next() % (90 * day as u64)) as i64));
                let blocked = status == "todo" && !open_blockers.is_empty() && next() % 5 == 0;
                let (todo_since, key) = if status == "todo" {
                    let base = base_score(priority, issue_type, project.is_some_and(|p| p.1));
                    (Some(created.millis()), Some(dispatch_key(base, Timestamp::from_millis(created.millis()))))
                } else {
                    (None, None)
                };
                issue
                    .execute(params![
                        id,
                        n as i64,
                        format!("Seeded issue {n}"),
                        issue_type.as_str(),
                        status,
                        priority.value() as i64,
                        project.map(|p| &p.0),
                        created.millis(),
                        (status == "done").then_some(created.millis()),
                        todo_since,
                        blocked as i64,
                        project.is_some_and(|p| p.1) as i64,
                        key,
                    ])
                    .map_err(sqlite)?;
                if blocked {
                    let blocker = &open_blockers[(next() % open_blockers.len() as u64) as usize];
                    relation.execute(params![new_id(), id, blocker, now.millis()]).map_err(sqlite)?;
                    report.blocked += 1;
                }
                if status != "todo" {
                    finished.push(id.clone());
                }
                if status == "backlog" && open_blockers.len() < 1000 {
                    open_blockers.push(id);
                }
                if status == "todo" {
                    report.todo += 1;
                }
            }
            drop((issue, relation));
            seed_history(&conn, spec.history, &finished, now, &mut next)?;
            conn.execute_batch("COMMIT").map_err(sqlite)?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(sqlite)?;
            // Statistics, as a long-lived database would have, but only the per-index ones:
            // this SQLite is built with STAT4, under which statements are re-prepared whenever
            // a bound value could change their plan, which is every claim.
            conn.execute_batch("ANALYZE; DELETE FROM sqlite_stat4;").map_err(sqlite)?;
            Ok(())
        })?;
        report.eligible = report.todo - report.blocked;
        Ok(report)
    }
}

/// `sessions` ended sessions, spread over `issues` and over the active template versions,
/// each with its claim, end and comment events and a comment; the versions' running totals
/// and the agents' day tallies are then brought up to date, as the store keeps them.
fn seed_history(
    conn: &Connection,
    sessions: u64,
    issues: &[String],
    now: Timestamp,
    next: &mut impl FnMut() -> u64,
) -> Result<()> {
    if sessions == 0 || issues.is_empty() {
        return Ok(());
    }
    let versions: Vec<String> = conn
        .prepare("SELECT id FROM prompt_versions WHERE status = 'active' ORDER BY id")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(sqlite)?;
    let mut session = conn
        .prepare(
            "INSERT INTO agent_sessions (id, issue_id, agent, template_version_id, claimed_at, lease_expires_at, \
             ended_at, outcome, summary, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'Seeded work.', ?9)",
        )
        .map_err(sqlite)?;
    let mut event = conn
        .prepare("INSERT INTO issue_events (issue_id, kind, actor, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
        .map_err(sqlite)?;
    let mut comment = conn
        .prepare(
            "INSERT INTO comments (id, body, issue_id, author_name, author_type, created_at) \
             VALUES (?1, 'Seeded progress note.', ?2, ?3, 'agent', ?4)",
        )
        .map_err(sqlite)?;
    let year = 365 * loop_core::dispatch::DAY_MS as u64;
    for n in 0..sessions {
        let issue = &issues[(next() % issues.len() as u64) as usize];
        let version = (!versions.is_empty()).then(|| &versions[(n % versions.len() as u64) as usize]);
        let agent = format!("seed-agent-{}", n % 64);
        let claimed = now.millis() - (next() % year) as i64;
        let took = 60_000 + (next() % 3_600_000) as i64;
        let outcome = if next().is_multiple_of(5) { "failed" } else { "done" };
        let id = new_id();
        session
            .execute(params![id, issue, agent, version, claimed, claimed + 900_000, claimed + took, outcome, took])
            .map_err(sqlite)?;
        for (kind, data, at) in [
            ("claimed", format!(r#"{{"sessionId":"{id}"}}"#), claimed),
            ("comment_added", "{}".to_owned(), claimed + took / 2),
            ("session_ended", format!(r#"{{"sessionId":"{id}","outcome":"{outcome}"}}"#), claimed + took),
        ] {
            event.execute(params![issue, kind, agent, data, at]).map_err(sqlite)?;
        }
        comment.execute(params![new_id(), issue, agent, claimed + took / 2]).map_err(sqlite)?;
    }
    // The agents' day tallies, filled from the sessions as the migration that made them does.
    let migration = include_str!("../../migrations/sqlite/0014_agent_days.sql");
    let fill = migration.find("INSERT INTO agent_days").expect("the migration fills agent_days");
    conn.execute_batch(&migration[fill..]).map_err(sqlite)?;
    conn.execute_batch(
        "UPDATE prompt_versions SET \
           usage_count = usage_count + (SELECT count(*) FROM agent_sessions s WHERE s.template_version_id = prompt_versions.id), \
           sessions_ended = (SELECT count(*) FROM agent_sessions s WHERE s.template_version_id = prompt_versions.id AND s.ended_at IS NOT NULL), \
           sessions_done = (SELECT count(*) FROM agent_sessions s WHERE s.template_version_id = prompt_versions.id AND s.outcome = 'done'), \
           done_duration_ms = (SELECT COALESCE(SUM(s.duration_ms), 0) FROM agent_sessions s \
             WHERE s.template_version_id = prompt_versions.id AND s.outcome = 'done'); \
         UPDATE prompt_versions SET \
           completion_rate = CASE WHEN sessions_ended > 0 THEN CAST(sessions_done AS REAL) / sessions_ended END, \
           avg_duration_ms = CASE WHEN sessions_done > 0 THEN CAST(done_duration_ms AS REAL) / sessions_done END",
    )
    .map_err(sqlite)
}
