//! Issues: create, read, list, patch, soft delete, history.

use async_trait::async_trait;
use loop_core::event::NewEvent;
use loop_core::issue::{self, Issue, IssueDetail, IssueFilter, IssuePatch, IssueSort, IssueStatus, NewIssue, SortKey};
use loop_core::label::LabelRef;
use loop_core::session::{SessionOutcome, SessionReport};
use loop_core::store::IssueStore;
use loop_core::{Actor, Error, Page, Paged, Result, Timestamp, event::IssueEvent, id::new_id};
use sqlx::{Row, SqliteConnection};

use crate::dispatch_index::{refresh_blocked_by, refresh_issue};
use crate::rows::{self, ISSUE_COLUMNS, check_ref, find_issue, record, require_issue, to_json};
use crate::{SqliteStore, db, sessions};

#[async_trait]
impl IssueStore for SqliteStore {
    async fn create_issue(&self, input: NewIssue, actor: &Actor) -> Result<Issue> {
        let now = self.now();
        let mut tx = self.writer.begin().await.map_err(db)?;
        let issue = create_in(&mut tx, input, actor, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(issue)
    }

    async fn get_issue(&self, key: &str) -> Result<Issue> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        require_issue(&mut conn, key).await
    }

    async fn issue_detail(&self, key: &str) -> Result<IssueDetail> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        let issue = require_issue(&mut conn, key).await?;
        let parent = match &issue.parent_id {
            Some(p) => find_issue(&mut conn, p).await?,
            None => None,
        };
        let children = children_of(&mut conn, &issue.id).await?;
        let labels = labels_of(&mut conn, &issue.id).await?;
        let relations = sqlx::query(
            "SELECT r.* FROM issue_relations r \
             JOIN issues a ON a.id = r.issue_id AND a.deleted_at IS NULL \
             JOIN issues b ON b.id = r.related_issue_id AND b.deleted_at IS NULL \
             WHERE r.issue_id = ?1 OR r.related_issue_id = ?1 ORDER BY r.created_at, r.id",
        )
        .bind(&issue.id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(rows::relation)
        .collect::<Result<_>>()?;
        Ok(IssueDetail { issue, parent, children, labels, relations })
    }

    async fn list_issues(&self, filter: &IssueFilter, page: Page) -> Result<Paged<Issue>> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        let mut clauses = vec!["i.deleted_at IS NULL".to_string()];
        let mut binds: Vec<String> = Vec::new();
        let mut list = |col: &str, values: Vec<String>, clauses: &mut Vec<String>| {
            if !values.is_empty() {
                clauses.push(format!("i.{col} IN ({})", vec!["?"; values.len()].join(", ")));
                binds.extend(values);
            }
        };
        list("status", filter.statuses.iter().map(|s| s.to_string()).collect(), &mut clauses);
        list("type", filter.types.iter().map(|s| s.to_string()).collect(), &mut clauses);
        for (col, value) in [("project_id", &filter.project_id), ("parent_id", &filter.parent_id)] {
            if let Some(v) = value {
                clauses.push(format!("i.{col} = ?"));
                binds.push(v.clone());
            }
        }
        if let Some(p) = filter.priority {
            clauses.push("i.priority = ?".into());
            binds.push(p.value().to_string());
        }
        if let Some(l) = &filter.label_id {
            // Driven from the label's index: a rare label must not mean a walk over every issue.
            clauses.push(
                "i.id IN (SELECT il.issue_id FROM issue_labels il JOIN labels l ON l.id = il.label_id \
                 AND l.deleted_at IS NULL WHERE il.label_id = ?)"
                    .into(),
            );
            binds.push(l.clone());
        }
        if let Some(q) = filter.search.as_deref() {
            match q.trim().strip_prefix('#').and_then(|n| n.parse::<i64>().ok()) {
                Some(number) => {
                    clauses.push("i.number = ?".into());
                    binds.push(number.to_string());
                }
                None => {
                    for word in q.split_whitespace() {
                        clauses.push(r"i.title LIKE ? ESCAPE '\'".into());
                        binds.push(format!("%{}%", escape_like(word)));
                    }
                }
            }
        }
        let filters = clauses.join(" AND ");
        let binds: Vec<&str> = binds.iter().map(String::as_str).collect();
        let total = rows::count(&mut conn, &format!("FROM issues i WHERE {filters}"), &binds).await?;
        // A quarter of all issues or more: one scan beats looking each match up through its filter's index.
        let unindexed_order = total >= FEW_MATCHES && filter.sort.key != SortKey::Created;
        let scan =
            unindexed_order && total * 4 >= rows::count(&mut conn, "FROM issues WHERE deleted_at IS NULL", &[]).await?;
        let (from, order) = plan(&filters, filter.sort, total, scan);
        let data = rows::rows_of(&mut conn, &prefixed(ISSUE_COLUMNS), &from, &order, &binds, page, rows::issue).await?;
        Ok(Paged { data, total })
    }

    async fn update_issue(&self, key: &str, mut patch: IssuePatch, actor: &Actor) -> Result<Issue> {
        if patch.is_empty() {
            return Err(Error::empty_patch());
        }
        let now = self.now();
        let mut tx = self.writer.begin().await.map_err(db)?;
        let old = require_issue(&mut tx, key).await?;
        if let Some(p) = patch.parent_id.take() {
            if let Some(pid) = &p {
                let parent = find_issue(&mut tx, pid).await?;
                let has_children = has_children(&mut tx, &old.id).await?;
                // Compare ids, not keys: `parentId` may name the issue itself by number.
                let pid = parent.as_ref().map_or(pid.as_str(), |p| p.id.as_str());
                issue::check_parent(pid, parent.as_ref(), Some(&old), has_children)?;
                patch.parent_id = Some(parent.map(|p| p.id));
            } else {
                patch.parent_id = Some(None);
            }
        }
        if let Some(p) = patch.project_id.take() {
            if let Some(pid) = &p {
                check_ref(&mut tx, "projects", "projectId", "project_not_found", pid).await?;
            }
            patch.project_id = Some(p);
        }
        let (new, mut events) = old.apply_patch(&patch, now);
        let todo_since: Option<i64> = match (old.status == IssueStatus::Todo, new.status == IssueStatus::Todo) {
            (false, true) => Some(now.millis()),
            (true, true) => todo_since_of(&mut tx, &old.id).await?,
            _ => None,
        };
        if let Some(ids) = &patch.label_ids {
            let wanted = resolve_labels(&mut tx, ids).await?;
            let current = labels_of(&mut tx, &old.id).await?;
            for l in current.iter().filter(|c| !wanted.iter().any(|w| w.id == c.id)) {
                sqlx::query("DELETE FROM issue_labels WHERE issue_id = ? AND label_id = ?")
                    .bind(&old.id)
                    .bind(&l.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                events.push(NewEvent::label(&old.id, false, &l.id, &l.name));
            }
            for l in wanted.iter().filter(|w| !current.iter().any(|c| c.id == w.id)) {
                add_label(&mut tx, &old.id, &l.id).await?;
                events.push(NewEvent::label(&old.id, true, &l.id, &l.name));
            }
        }
        sqlx::query(
            "UPDATE issues SET title = ?, description = ?, type = ?, status = ?, priority = ?, parent_id = ?, \
             project_id = ?, signal_source = ?, signal_payload = ?, hypothesis = ?, agent_session_id = ?, \
             agent_summary = ?, commits = ?, pull_requests = ?, completed_at = ?, updated_at = ?, todo_since = ? \
             WHERE id = ?",
        )
        .bind(&new.title)
        .bind(&new.description)
        .bind(new.issue_type.as_str())
        .bind(new.status.as_str())
        .bind(new.priority.value() as i64)
        .bind(&new.parent_id)
        .bind(&new.project_id)
        .bind(&new.signal_source)
        .bind(to_json(&new.signal_payload))
        .bind(to_json(&new.hypothesis))
        .bind(&new.agent_session_id)
        .bind(&new.agent_summary)
        .bind(to_json(&new.commits))
        .bind(to_json(&new.pull_requests))
        .bind(new.completed_at.map(|t| t.millis()))
        .bind(now.millis())
        .bind(todo_since)
        .bind(&new.id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        refresh_issue(&mut tx, &new.id).await?;
        if new.status != old.status {
            refresh_blocked_by(&mut tx, &new.id).await?;
            events.extend(close_session(&mut tx, &new, now).await?);
        }
        record(&mut tx, &events, actor, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(new)
    }

    async fn delete_issue(&self, key: &str, actor: &Actor) -> Result<()> {
        let now = self.now();
        let mut tx = self.writer.begin().await.map_err(db)?;
        let issue = require_issue(&mut tx, key).await?;
        sqlx::query("UPDATE issues SET deleted_at = ?, updated_at = ? WHERE id = ?")
            .bind(now.millis())
            .bind(now.millis())
            .bind(&issue.id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let mut events = vec![NewEvent::deleted(&issue.id)];
        refresh_blocked_by(&mut tx, &issue.id).await?;
        let mut gone = issue.clone();
        gone.status = IssueStatus::Canceled;
        events.extend(close_session(&mut tx, &gone, now).await?);
        // Children are detached rather than left pointing at an issue nobody can see.
        for child in children_of(&mut tx, &issue.id).await? {
            sqlx::query("UPDATE issues SET parent_id = NULL, updated_at = ? WHERE id = ?")
                .bind(now.millis())
                .bind(&child.id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            events.push(NewEvent::field_changed(
                &child.id,
                "parentId",
                issue.id.clone().into(),
                serde_json::Value::Null,
            ));
        }
        record(&mut tx, &events, actor, now).await?;
        tx.commit().await.map_err(db)
    }

    async fn issue_events(&self, key: &str, page: Page) -> Result<Paged<IssueEvent>> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        let issue = require_issue(&mut conn, key).await?;
        rows::page_of(&mut conn, "*", "FROM issue_events WHERE issue_id = ?", "id", &[&issue.id], page, rows::event)
            .await
    }
}

/// Under this many matches, a list reads the matches first and sorts them; above it, walking an
/// index in the wanted order finds a page of matches quickly.
const FEW_MATCHES: u64 = 5_000;

/// How to read one page of an issue list, given how many issues match. SQLite cannot know how
/// selective a filter is, and a wrong guess costs a walk over every issue (hundreds of ms at
/// 100k): so few matches are read through their filter's index (or one scan) and sorted;
/// many matches are read in creation order from `issues_live`, or, for an order no index
/// holds, through their filter's index, or by one `scan` when they are a large part of the table.
fn plan(filters: &str, sort: IssueSort, total: u64, scan: bool) -> (String, String) {
    let dir = if sort.descending { "DESC" } else { "ASC" };
    let order = |first: &str, rest: &str| format!("{first} {dir}, {rest}");
    let few = total < FEW_MATCHES;
    // A unary + keeps SQLite from using an index to produce the order.
    let created = if few { "+i.created_at" } else { "i.created_at" };
    let order = match sort.key {
        SortKey::Created => order(created, &format!("i.number {dir}")),
        SortKey::Updated => order("i.updated_at", &format!("i.number {dir}")),
        SortKey::Number => format!("i.number {dir}"),
        SortKey::Priority => format!("(i.priority = 0) {dir}, i.priority {dir}, i.number"),
        SortKey::Title => order("i.title COLLATE NOCASE", "i.number"),
    };
    let from = format!("FROM issues i{} WHERE {filters}", if scan { " NOT INDEXED" } else { "" });
    (from, order)
}

/// A word searched with LIKE, its wildcards taken literally.
fn escape_like(word: &str) -> String {
    word.replace('\\', r"\\").replace('%', r"\%").replace('_', r"\_")
}

async fn todo_since_of(conn: &mut SqliteConnection, id: &str) -> Result<Option<i64>> {
    sqlx::query_scalar("SELECT todo_since FROM issues WHERE id = ?").bind(id).fetch_one(&mut *conn).await.map_err(db)
}

/// When an issue leaves `in_progress` by hand, the session holding it ends: `done` and
/// `canceled` as such (with the agent's summary), anything else as `released`.
async fn close_session(conn: &mut SqliteConnection, issue: &Issue, now: Timestamp) -> Result<Option<NewEvent>> {
    let Some(open) = sessions::open_for_issue(conn, &issue.id).await? else { return Ok(None) };
    let outcome = match issue.status {
        IssueStatus::Done => SessionOutcome::Done,
        IssueStatus::Canceled => SessionOutcome::Canceled,
        IssueStatus::InProgress => return Ok(None),
        _ => SessionOutcome::Released,
    };
    let report = SessionReport {
        summary: issue.agent_summary.as_deref().and_then(|s| loop_core::text::Body::new(s).ok()),
        ..SessionReport::default()
    };
    Ok(sessions::end(conn, &open, outcome, &report, now).await?.map(|(_, event)| event))
}

/// Creates an issue inside the caller's transaction: checks references, assigns the next
/// global number, writes labels and history.
pub(crate) async fn create_in(
    conn: &mut SqliteConnection,
    mut input: NewIssue,
    actor: &Actor,
    now: Timestamp,
) -> Result<Issue> {
    if let Some(pid) = &input.parent_id {
        let parent = find_issue(&mut *conn, pid).await?;
        issue::check_parent(pid, parent.as_ref(), None, false)?;
        input.parent_id = parent.map(|p| p.id);
    }
    if let Some(pid) = &input.project_id {
        check_ref(&mut *conn, "projects", "projectId", "project_not_found", pid).await?;
    }
    let labels = resolve_labels(&mut *conn, &input.label_ids).await?;

    let number: i64 = sqlx::query("SELECT COALESCE(MAX(number), 0) + 1 FROM issues")
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(db)?;
    let row = Issue::from_new(&input, new_id(), number, now);
    insert_issue(&mut *conn, &row).await?;
    refresh_issue(&mut *conn, &row.id).await?;
    let mut events = vec![NewEvent::created(&row.id, row.number, &row.title)];
    for l in &labels {
        add_label(&mut *conn, &row.id, &l.id).await?;
        events.push(NewEvent::label(&row.id, true, &l.id, &l.name));
    }
    record(&mut *conn, &events, actor, now).await?;
    Ok(row)
}

fn prefixed(columns: &str) -> String {
    columns.split(", ").map(|c| format!("i.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

async fn insert_issue(conn: &mut SqliteConnection, i: &Issue) -> Result<()> {
    sqlx::query(
        "INSERT INTO issues (id, number, title, description, type, status, priority, parent_id, project_id, \
         signal_source, signal_payload, hypothesis, completed_at, created_at, updated_at, todo_since) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&i.id)
    .bind(i.number)
    .bind(&i.title)
    .bind(&i.description)
    .bind(i.issue_type.as_str())
    .bind(i.status.as_str())
    .bind(i.priority.value() as i64)
    .bind(&i.parent_id)
    .bind(&i.project_id)
    .bind(&i.signal_source)
    .bind(to_json(&i.signal_payload))
    .bind(to_json(&i.hypothesis))
    .bind(i.completed_at.map(|t| t.millis()))
    .bind(i.created_at.millis())
    .bind(i.updated_at.millis())
    .bind((i.status == IssueStatus::Todo).then_some(i.created_at.millis()))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// An issue's live children, oldest first. The index is named: otherwise SQLite may walk
/// `issues_live` in the wanted order over every issue to find them.
async fn children_of(conn: &mut SqliteConnection, id: &str) -> Result<Vec<Issue>> {
    let sql = format!(
        "SELECT {ISSUE_COLUMNS} FROM issues INDEXED BY issues_parent WHERE parent_id = ? AND deleted_at IS NULL \
         ORDER BY created_at, number"
    );
    sqlx::query(&sql).bind(id).fetch_all(&mut *conn).await.map_err(db)?.iter().map(rows::issue).collect()
}

async fn has_children(conn: &mut SqliteConnection, id: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM issues WHERE parent_id = ? AND deleted_at IS NULL LIMIT 1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        .is_some())
}

/// The live labels named by `ids`, duplicates collapsed; an unknown id is a 422 naming it.
async fn resolve_labels(conn: &mut SqliteConnection, ids: &[String]) -> Result<Vec<LabelRef>> {
    let mut out: Vec<LabelRef> = Vec::new();
    for id in ids {
        if out.iter().any(|l| &l.id == id) {
            continue;
        }
        let row = sqlx::query("SELECT id, name, color FROM labels WHERE id = ? AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::invalid("labelIds", "label_not_found", format!("label {id} not found")))?;
        out.push(LabelRef {
            id: row.try_get("id").map_err(db)?,
            name: row.try_get("name").map_err(db)?,
            color: row.try_get("color").map_err(db)?,
        });
    }
    Ok(out)
}

async fn add_label(conn: &mut SqliteConnection, issue_id: &str, label_id: &str) -> Result<()> {
    sqlx::query("INSERT OR IGNORE INTO issue_labels (issue_id, label_id) VALUES (?, ?)")
        .bind(issue_id)
        .bind(label_id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

pub(crate) async fn labels_of(conn: &mut SqliteConnection, issue_id: &str) -> Result<Vec<LabelRef>> {
    sqlx::query(
        "SELECT l.id, l.name, l.color FROM issue_labels il JOIN labels l ON l.id = il.label_id \
         WHERE il.issue_id = ? AND l.deleted_at IS NULL ORDER BY l.name",
    )
    .bind(issue_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?
    .iter()
    .map(|r| {
        Ok(LabelRef {
            id: r.try_get("id").map_err(db)?,
            name: r.try_get("name").map_err(db)?,
            color: r.try_get("color").map_err(db)?,
        })
    })
    .collect()
}
