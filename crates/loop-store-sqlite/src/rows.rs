//! Row ↔ domain mapping, and the small SQL helpers every resource file shares.

use loop_core::comment::Comment;
use loop_core::event::{IssueEvent, NewEvent};
use loop_core::goal::Goal;
use loop_core::issue::Issue;
use loop_core::label::Label;
use loop_core::project::Project;
use loop_core::relation::Relation;
use loop_core::template::{PromptReview, PromptTemplate, PromptVersion};
use loop_core::{Actor, Error, Result, Timestamp};
use serde::de::DeserializeOwned;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use crate::db;

pub(crate) const ISSUE_COLUMNS: &str = "id, number, title, description, type, status, priority, parent_id, project_id, \
     signal_source, signal_payload, hypothesis, agent_session_id, agent_summary, commits, pull_requests, \
     completed_at, created_at, updated_at, deleted_at";

/// A result row of either driver: sqlx for most queries, rusqlite on the claim engine's
/// connection. The mappers below read both.
pub(crate) trait Cols {
    fn col<T: Col>(&self, name: &str) -> Result<T>;
}

/// A column type both drivers decode.
pub(crate) trait Col:
    for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + rusqlite::types::FromSql
{
}

impl<T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + rusqlite::types::FromSql> Col for T {}

impl Cols for SqliteRow {
    fn col<T: Col>(&self, name: &str) -> Result<T> {
        self.try_get(name).map_err(db)
    }
}

impl Cols for rusqlite::Row<'_> {
    fn col<T: Col>(&self, name: &str) -> Result<T> {
        self.get(name).map_err(crate::engine::sqlite)
    }
}

fn get<T: Col>(row: &impl Cols, col: &str) -> Result<T> {
    row.col(col)
}

fn ts(row: &impl Cols, col: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_millis(get::<i64>(row, col)?))
}

fn opt_ts(row: &impl Cols, col: &str) -> Result<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, col)?.map(Timestamp::from_millis))
}

fn parse<T: std::str::FromStr<Err = String>>(row: &impl Cols, col: &str) -> Result<T> {
    get::<String>(row, col)?.parse().map_err(|e| Error::Internal(format!("column {col}: {e}")))
}

fn opt_json<T: DeserializeOwned>(row: &impl Cols, col: &str) -> Result<Option<T>> {
    match get::<Option<String>>(row, col)? {
        None => Ok(None),
        Some(s) => serde_json::from_str(&s).map(Some).map_err(|e| Error::Internal(format!("column {col}: {e}"))),
    }
}

fn json<T: DeserializeOwned>(row: &impl Cols, col: &str) -> Result<T> {
    opt_json(row, col)?.ok_or_else(|| Error::Internal(format!("column {col} is null")))
}

/// Serialises an optional value for a JSON text column.
pub(crate) fn to_json<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(|v| serde_json::to_string(v).expect("domain values serialise"))
}

pub(crate) fn issue(row: &impl Cols) -> Result<Issue> {
    Ok(Issue {
        id: get(row, "id")?,
        number: get(row, "number")?,
        title: get(row, "title")?,
        description: get(row, "description")?,
        issue_type: parse(row, "type")?,
        status: parse(row, "status")?,
        priority: loop_core::issue::Priority::new(get(row, "priority")?).map_err(Error::Internal)?,
        parent_id: get(row, "parent_id")?,
        project_id: get(row, "project_id")?,
        signal_source: get(row, "signal_source")?,
        signal_payload: opt_json(row, "signal_payload")?,
        hypothesis: opt_json(row, "hypothesis")?,
        agent_session_id: get(row, "agent_session_id")?,
        agent_summary: get(row, "agent_summary")?,
        commits: opt_json(row, "commits")?,
        pull_requests: opt_json(row, "pull_requests")?,
        completed_at: opt_ts(row, "completed_at")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

pub(crate) fn relation(row: &impl Cols) -> Result<Relation> {
    Ok(Relation {
        id: get(row, "id")?,
        relation_type: parse(row, "type")?,
        issue_id: get(row, "issue_id")?,
        related_issue_id: get(row, "related_issue_id")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn comment(row: &impl Cols) -> Result<Comment> {
    Ok(Comment {
        id: get(row, "id")?,
        body: get(row, "body")?,
        issue_id: get(row, "issue_id")?,
        author_name: get(row, "author_name")?,
        author_type: parse(row, "author_type")?,
        parent_id: get(row, "parent_id")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn event(row: &impl Cols) -> Result<IssueEvent> {
    Ok(IssueEvent {
        id: get(row, "id")?,
        issue_id: get(row, "issue_id")?,
        kind: parse(row, "kind")?,
        actor: get(row, "actor")?,
        data: json(row, "data")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn project(row: &impl Cols) -> Result<Project> {
    Ok(Project {
        id: get(row, "id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        status: parse(row, "status")?,
        health: parse(row, "health")?,
        goal_id: get(row, "goal_id")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

pub(crate) fn goal(row: &impl Cols) -> Result<Goal> {
    Ok(Goal {
        id: get(row, "id")?,
        title: get(row, "title")?,
        description: get(row, "description")?,
        metric: get(row, "metric")?,
        target_value: get(row, "target_value")?,
        current_value: get(row, "current_value")?,
        unit: get(row, "unit")?,
        status: parse(row, "status")?,
        project_id: get(row, "project_id")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

pub(crate) fn label(row: &impl Cols) -> Result<Label> {
    Ok(Label {
        id: get(row, "id")?,
        name: get(row, "name")?,
        color: get(row, "color")?,
        created_at: ts(row, "created_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

pub(crate) fn template(row: &impl Cols) -> Result<PromptTemplate> {
    Ok(PromptTemplate {
        id: get(row, "id")?,
        slug: get(row, "slug")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        conditions: json(row, "conditions")?,
        specificity: get::<i64>(row, "specificity")?.try_into().map_err(Error::Internal)?,
        project_id: get(row, "project_id")?,
        active_version_id: get(row, "active_version_id")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

pub(crate) fn version(row: &impl Cols) -> Result<PromptVersion> {
    Ok(PromptVersion {
        id: get(row, "id")?,
        template_id: get(row, "template_id")?,
        version: get(row, "version")?,
        content: get(row, "content")?,
        changelog: get(row, "changelog")?,
        author_type: parse(row, "author_type")?,
        author_name: get(row, "author_name")?,
        status: parse(row, "status")?,
        usage_count: get(row, "usage_count")?,
        completion_rate: get(row, "completion_rate")?,
        avg_duration_ms: get(row, "avg_duration_ms")?,
        review_score: get(row, "review_score")?,
        created_at: ts(row, "created_at")?,
        activated_at: opt_ts(row, "activated_at")?,
    })
}

pub(crate) fn review(row: &impl Cols) -> Result<PromptReview> {
    let score = |col| get::<i64>(row, col)?.try_into().map_err(Error::Internal);
    Ok(PromptReview {
        id: get(row, "id")?,
        version_id: get(row, "version_id")?,
        issue_id: get(row, "issue_id")?,
        clarity: score("clarity")?,
        completeness: score("completeness")?,
        relevance: score("relevance")?,
        feedback: get(row, "feedback")?,
        author_type: parse(row, "author_type")?,
        created_at: ts(row, "created_at")?,
    })
}

/// Appends history events inside the caller's transaction.
pub(crate) async fn record(
    conn: &mut SqliteConnection,
    events: &[NewEvent],
    actor: &Actor,
    now: Timestamp,
) -> Result<()> {
    for e in events {
        sqlx::query("INSERT INTO issue_events (issue_id, kind, actor, data, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&e.issue_id)
            .bind(e.kind.as_str())
            .bind(&actor.name)
            .bind(e.data.to_string())
            .bind(now.millis())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// Looks up a live issue by id, or by number when `key` is all digits.
pub(crate) async fn find_issue(conn: &mut SqliteConnection, key: &str) -> Result<Option<Issue>> {
    let sql = if is_number(key) {
        format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE number = ? AND deleted_at IS NULL")
    } else {
        format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = ? AND deleted_at IS NULL")
    };
    let row = sqlx::query(&sql).bind(key).fetch_optional(&mut *conn).await.map_err(db)?;
    row.as_ref().map(issue).transpose()
}

pub(crate) async fn require_issue(conn: &mut SqliteConnection, key: &str) -> Result<Issue> {
    find_issue(conn, key).await?.ok_or_else(|| Error::not_found("Issue", key))
}

pub(crate) fn is_number(key: &str) -> bool {
    !key.is_empty() && key.len() <= 18 && key.bytes().all(|b| b.is_ascii_digit())
}

/// True when a live row with this id exists in `table`.
pub(crate) async fn live(conn: &mut SqliteConnection, table: &str, id: &str) -> Result<bool> {
    let sql = format!("SELECT 1 FROM {table} WHERE id = ? AND deleted_at IS NULL");
    Ok(sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?.is_some())
}

/// The row `sql` (with one `?` bound to `bind`) returns, if any, mapped by `map`.
pub(crate) async fn one<T>(
    conn: &mut SqliteConnection,
    sql: &str,
    bind: &str,
    map: fn(&SqliteRow) -> Result<T>,
) -> Result<Option<T>> {
    sqlx::query(sql).bind(bind).fetch_optional(&mut *conn).await.map_err(db)?.as_ref().map(map).transpose()
}

/// One page of `SELECT {columns} {from} ORDER BY {order}` with the count of every matching row;
/// `from` is the `FROM … WHERE …` part, with `?` placeholders for `binds`.
pub(crate) async fn page_of<T>(
    conn: &mut SqliteConnection,
    columns: &str,
    from: &str,
    order: &str,
    binds: &[&str],
    page: loop_core::Page,
    map: fn(&SqliteRow) -> Result<T>,
) -> Result<loop_core::Paged<T>> {
    let total = count(conn, from, binds).await?;
    let data = rows_of(conn, columns, from, order, binds, page, map).await?;
    Ok(loop_core::Paged { data, total })
}

/// `SELECT count(*) {from}`.
pub(crate) async fn count(conn: &mut SqliteConnection, from: &str, binds: &[&str]) -> Result<u64> {
    let count_sql = format!("SELECT count(*) {from}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
    for b in binds {
        count = count.bind(*b);
    }
    Ok(count.fetch_one(&mut *conn).await.map_err(db)? as u64)
}

/// One page of `SELECT {columns} {from} ORDER BY {order}`.
pub(crate) async fn rows_of<T>(
    conn: &mut SqliteConnection,
    columns: &str,
    from: &str,
    order: &str,
    binds: &[&str],
    page: loop_core::Page,
    map: fn(&SqliteRow) -> Result<T>,
) -> Result<Vec<T>> {
    let sql = format!("SELECT {columns} {from} ORDER BY {order} LIMIT ? OFFSET ?");
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = q.bind(*b);
    }
    let rows = q.bind(page.limit as i64).bind(page.offset as i64).fetch_all(&mut *conn).await.map_err(db)?;
    rows.iter().map(map).collect()
}

/// Checks that a referenced row is live; otherwise a 422 naming the field.
pub(crate) async fn check_ref(
    conn: &mut SqliteConnection,
    table: &str,
    field: &str,
    code: &'static str,
    id: &str,
) -> Result<()> {
    if live(conn, table, id).await? {
        Ok(())
    } else {
        let what = table.trim_end_matches('s');
        Err(Error::invalid(field, code, format!("{what} {id} not found")))
    }
}

pub(crate) fn session(row: &impl Cols) -> Result<loop_core::session::AgentSession> {
    Ok(loop_core::session::AgentSession {
        id: get(row, "id")?,
        issue_id: get(row, "issue_id")?,
        agent: get(row, "agent")?,
        template_version_id: get(row, "template_version_id")?,
        claimed_at: ts(row, "claimed_at")?,
        lease_expires_at: ts(row, "lease_expires_at")?,
        ended_at: opt_ts(row, "ended_at")?,
        outcome: get::<Option<String>>(row, "outcome")?
            .map(|o| o.parse())
            .transpose()
            .map_err(|e: String| Error::Internal(format!("column outcome: {e}")))?,
        summary: get(row, "summary")?,
        tokens: get(row, "tokens")?,
        cost_usd: get(row, "cost_usd")?,
        duration_ms: get(row, "duration_ms")?,
    })
}
