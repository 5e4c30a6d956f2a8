//! Issues: create, read, list, patch, soft delete, history.
//!
//! Several nodes write at once: an issue is changed under its row lock (so two patches never
//! overwrite each other's fields), and what it links to is share-locked until commit (so a
//! parent cannot be deleted, or given a parent of its own, a project or label cannot be
//! deleted, before the link commits). Projects are locked before issues (see `dispatch_index`).

use async_trait::async_trait;
use loop_core::event::NewEvent;
use loop_core::issue::{self, Issue, IssueDetail, IssueFilter, IssuePatch, IssueSort, IssueStatus, NewIssue, SortKey};
use loop_core::label::LabelRef;
use loop_core::session::{SessionOutcome, SessionReport};
use loop_core::store::IssueStore;
use loop_core::{Actor, Error, Page, Paged, Result, Timestamp, event::IssueEvent, id::new_id};
use sqlx::{PgConnection, Row};

use crate::dispatch_index::{refresh_blocked_by, refresh_issue};
use crate::rows::{self, Bind, ISSUE_COLUMNS, find_issue, is_number, next_values, record, require_issue, to_json};
use crate::sql::{pg, placeholders};
use crate::{PgStore, db, sessions};

#[async_trait]
impl IssueStore for PgStore {
    async fn create_issue(&self, input: NewIssue, actor: &Actor) -> Result<Issue> {
        let now = self.now();
        let mut tx = self.pool.begin().await.map_err(db)?;
        let issue = create_in(&mut tx, input, actor, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(issue)
    }

    async fn get_issue(&self, key: &str) -> Result<Issue> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        require_issue(&mut conn, key).await
    }

    async fn issue_detail(&self, key: &str) -> Result<IssueDetail> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let issue = require_issue(&mut conn, key).await?;
        let parent = match &issue.parent_id {
            Some(p) => find_issue(&mut conn, p).await?,
            None => None,
        };
        let children = children_of(&mut conn, &issue.id).await?;
        let labels = labels_of(&mut conn, &issue.id).await?;
        let relations = sqlx::query(pg("SELECT r.* FROM issue_relations r \
             JOIN issues a ON a.id = r.issue_id AND a.deleted_at IS NULL \
             JOIN issues b ON b.id = r.related_issue_id AND b.deleted_at IS NULL \
             WHERE r.issue_id = ?1 OR r.related_issue_id = ?1 ORDER BY r.created_at, r.id COLLATE \"C\""))
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
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let mut clauses = vec!["i.deleted_at IS NULL".to_string()];
        let mut binds: Vec<Bind> = Vec::new();
        let mut list = |col: &str, values: Vec<String>, clauses: &mut Vec<String>| {
            if !values.is_empty() {
                clauses.push(format!("i.{col} IN ({})", vec!["?"; values.len()].join(", ")));
                binds.extend(values.into_iter().map(Bind::Text));
            }
        };
        list("status", filter.statuses.iter().map(|s| s.to_string()).collect(), &mut clauses);
        list("type", filter.types.iter().map(|s| s.to_string()).collect(), &mut clauses);
        for (col, value) in [("project_id", &filter.project_id), ("parent_id", &filter.parent_id)] {
            if let Some(v) = value {
                clauses.push(format!("i.{col} = ?"));
                binds.push(Bind::Text(v.clone()));
            }
        }
        if let Some(p) = filter.priority {
            clauses.push("i.priority = ?".into());
            binds.push(Bind::Int(p.value() as i64));
        }
        if let Some(l) = &filter.label_id {
            clauses.push(
                "i.id IN (SELECT il.issue_id FROM issue_labels il JOIN labels l ON l.id = il.label_id \
                 AND l.deleted_at IS NULL WHERE il.label_id = ?)"
                    .into(),
            );
            binds.push(Bind::Text(l.clone()));
        }
        if let Some(q) = filter.search.as_deref() {
            match q.trim().strip_prefix('#').and_then(|n| n.parse::<i64>().ok()) {
                Some(number) => {
                    clauses.push("i.number = ?".into());
                    binds.push(Bind::Int(number));
                }
                None => {
                    for word in q.split_whitespace() {
                        // SQLite's LIKE ignores (ASCII) case; PostgreSQL's does not.
                        clauses.push(r"i.title ILIKE ? ESCAPE '\'".into());
                        binds.push(Bind::Text(format!("%{}%", escape_like(word))));
                    }
                }
            }
        }
        let from = format!("FROM issues i WHERE {}", clauses.join(" AND "));
        rows::page_of(&mut conn, &prefixed(ISSUE_COLUMNS), &from, &order(filter.sort), &binds, page, rows::issue).await
    }

    async fn update_issue(&self, key: &str, mut patch: IssuePatch, actor: &Actor) -> Result<Issue> {
        if patch.is_empty() {
            return Err(Error::empty_patch());
        }
        let now = self.now();
        let mut tx = self.pool.begin().await.map_err(db)?;
        let found = require_issue(&mut tx, key).await?;
        let gone = || Error::not_found("Issue", key);
        // The project the issue is in after the patch is share-locked first (projects before
        // issues, see `dispatch_index`); its absence is reported after the parent's, as on SQLite.
        let project = patch.project_id.take();
        let project_live = match project.as_ref().unwrap_or(&found.project_id) {
            Some(pid) => share_lock(&mut tx, "projects", pid).await?,
            None => true,
        };
        // Read again under the lock: a patch is applied to the issue as it is now. A new parent
        // is share-locked too (it must stay live and parentless until this commits), the two
        // rows in id order, so that "a's parent is b" and "b's parent is a" at once do not
        // deadlock: one waits, then fails the depth check.
        let (old, new_parent) = match patch.parent_id.take() {
            Some(Some(pid)) => match find_issue(&mut tx, &pid).await? {
                Some(seen) if seen.id < found.id => {
                    let parent = find_locked(&mut tx, &seen.id, "FOR SHARE").await?;
                    let old = find_locked(&mut tx, &found.id, "FOR NO KEY UPDATE").await?.ok_or_else(gone)?;
                    (old, Some(Some((pid, parent))))
                }
                Some(seen) if seen.id > found.id => {
                    let old = find_locked(&mut tx, &found.id, "FOR NO KEY UPDATE").await?.ok_or_else(gone)?;
                    let parent = find_locked(&mut tx, &seen.id, "FOR SHARE").await?;
                    (old, Some(Some((pid, parent))))
                }
                // Itself, or no such issue.
                seen => {
                    let old = find_locked(&mut tx, &found.id, "FOR NO KEY UPDATE").await?.ok_or_else(gone)?;
                    let parent = seen.map(|_| old.clone());
                    (old, Some(Some((pid, parent))))
                }
            },
            Some(None) => (find_locked(&mut tx, &found.id, "FOR NO KEY UPDATE").await?.ok_or_else(gone)?, Some(None)),
            None => (find_locked(&mut tx, &found.id, "FOR NO KEY UPDATE").await?.ok_or_else(gone)?, None),
        };
        match new_parent {
            Some(Some((pid, parent))) => {
                let has_children = has_children(&mut tx, &old.id).await?;
                // Compare ids, not keys: `parentId` may name the issue itself by number.
                let pid = parent.as_ref().map_or(pid.as_str(), |p| p.id.as_str());
                issue::check_parent(pid, parent.as_ref(), Some(&old), has_children)?;
                patch.parent_id = Some(parent.map(|p| p.id));
            }
            Some(None) => patch.parent_id = Some(None),
            None => {}
        }
        if let Some(p) = project {
            if let Some(pid) = &p
                && !project_live
            {
                return Err(ref_not_found("projects", "projectId", "project_not_found", pid));
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
                sqlx::query(pg("DELETE FROM issue_labels WHERE issue_id = ? AND label_id = ?"))
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
        sqlx::query(pg(
            "UPDATE issues SET title = ?, description = ?, type = ?, status = ?, priority = ?, parent_id = ?, \
             project_id = ?, signal_source = ?, signal_payload = ?, hypothesis = ?, agent_session_id = ?, \
             agent_summary = ?, commits = ?, pull_requests = ?, completed_at = ?, updated_at = ?, todo_since = ? \
             WHERE id = ?",
        ))
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
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Locked: a concurrent delete finds it gone, a concurrent child waits and then finds
        // its parent gone.
        let issue =
            find_locked(&mut tx, key, "FOR NO KEY UPDATE").await?.ok_or_else(|| Error::not_found("Issue", key))?;
        sqlx::query(pg("UPDATE issues SET deleted_at = ?, updated_at = ? WHERE id = ?"))
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
            // Only if it is still this issue's child: a concurrent patch may have just moved it.
            let detached =
                sqlx::query(pg("UPDATE issues SET parent_id = NULL, updated_at = ? WHERE id = ? AND parent_id = ?"))
                    .bind(now.millis())
                    .bind(&child.id)
                    .bind(&issue.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            if detached.rows_affected() == 0 {
                continue;
            }
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
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let issue = require_issue(&mut conn, key).await?;
        rows::page_of(
            &mut conn,
            "*",
            "FROM issue_events WHERE issue_id = ?",
            "id",
            &[Bind::Text(issue.id)],
            page,
            rows::event,
        )
        .await
    }
}

/// The ORDER BY of an issue list: the sort key, ties broken by number (so pages never overlap).
/// "No priority" (0) sorts after urgent; titles compare as SQLite's NOCASE does (ASCII letters
/// folded, then byte order).
fn order(sort: IssueSort) -> String {
    let dir = if sort.descending { "DESC" } else { "ASC" };
    match sort.key {
        SortKey::Created => format!("i.created_at {dir}, i.number {dir}"),
        SortKey::Updated => format!("i.updated_at {dir}, i.number {dir}"),
        SortKey::Number => format!("i.number {dir}"),
        SortKey::Priority => format!("(i.priority = 0) {dir}, i.priority {dir}, i.number"),
        SortKey::Title => format!(r#"lower(i.title COLLATE "C") {dir}, i.number"#),
    }
}

/// A word searched with LIKE, its wildcards taken literally.
fn escape_like(word: &str) -> String {
    word.replace('\\', r"\\").replace('%', r"\%").replace('_', r"\_")
}

async fn todo_since_of(conn: &mut PgConnection, id: &str) -> Result<Option<i64>> {
    sqlx::query_scalar(pg("SELECT todo_since FROM issues WHERE id = ?"))
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)
}

/// When an issue leaves `in_progress` by hand, the session holding it ends: `done` and
/// `canceled` as such (with the agent's summary), anything else as `released`.
async fn close_session(conn: &mut PgConnection, issue: &Issue, now: Timestamp) -> Result<Option<NewEvent>> {
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
    conn: &mut PgConnection,
    mut input: NewIssue,
    actor: &Actor,
    now: Timestamp,
) -> Result<Issue> {
    // Share locks until commit, the project first (projects before issues, see
    // `dispatch_index`); its absence is reported after the parent's, as on SQLite.
    let project_live = match &input.project_id {
        Some(pid) => share_lock(&mut *conn, "projects", pid).await?,
        None => true,
    };
    if let Some(pid) = &input.parent_id {
        // The parent can be neither deleted (which would miss this child when detaching
        // children) nor given a parent of its own before this commits.
        let parent = find_locked(&mut *conn, pid, "FOR SHARE").await?;
        issue::check_parent(pid, parent.as_ref(), None, false)?;
        input.parent_id = parent.map(|p| p.id);
    }
    if let Some(pid) = &input.project_id
        && !project_live
    {
        return Err(ref_not_found("projects", "projectId", "project_not_found", pid));
    }
    let labels = resolve_labels(&mut *conn, &input.label_ids).await?;

    // A counter row, locked until commit, rather than max(number) + 1: concurrent creates
    // never read the same maximum.
    let number = next_values(&mut *conn, "issue_number", 1).await?;
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

async fn insert_issue(conn: &mut PgConnection, i: &Issue) -> Result<()> {
    sqlx::query(pg(
        "INSERT INTO issues (id, number, title, description, type, status, priority, parent_id, project_id, \
         signal_source, signal_payload, hypothesis, completed_at, created_at, updated_at, todo_since) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
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

/// A live issue by id, or by number when `key` is all digits, with a row lock (`FOR SHARE`,
/// `FOR NO KEY UPDATE`) held until the transaction ends. A row changed by a transaction that
/// committed while this one waited is read as it is now.
async fn find_locked(conn: &mut PgConnection, key: &str, lock: &str) -> Result<Option<Issue>> {
    let row = if is_number(key) {
        let sql =
            placeholders(&format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE number = ? AND deleted_at IS NULL {lock}"));
        let number: i64 = key.parse().map_err(Error::internal)?;
        sqlx::query(&sql).bind(number).fetch_optional(&mut *conn).await.map_err(db)?
    } else {
        let sql =
            placeholders(&format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = ? AND deleted_at IS NULL {lock}"));
        sqlx::query(&sql).bind(key).fetch_optional(&mut *conn).await.map_err(db)?
    };
    row.as_ref().map(rows::issue).transpose()
}

/// Share-locks the live row of `table` with this id until the transaction ends, so it cannot
/// be deleted (or changed) before what links to it commits; false when there is none.
pub(crate) async fn share_lock(conn: &mut PgConnection, table: &str, id: &str) -> Result<bool> {
    let sql = placeholders(&format!("SELECT 1 FROM {table} WHERE id = ? AND deleted_at IS NULL FOR SHARE"));
    Ok(sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?.is_some())
}

/// `check_ref` with the referenced row share-locked (see `share_lock`).
pub(crate) async fn check_ref_locked(
    conn: &mut PgConnection,
    table: &str,
    field: &str,
    code: &'static str,
    id: &str,
) -> Result<()> {
    if share_lock(conn, table, id).await? { Ok(()) } else { Err(ref_not_found(table, field, code, id)) }
}

/// The error `check_ref` returns for a missing reference.
fn ref_not_found(table: &str, field: &str, code: &'static str, id: &str) -> Error {
    let what = table.trim_end_matches('s');
    Error::invalid(field, code, format!("{what} {id} not found"))
}

/// An issue's live children, oldest first.
async fn children_of(conn: &mut PgConnection, id: &str) -> Result<Vec<Issue>> {
    let sql = placeholders(&format!(
        "SELECT {ISSUE_COLUMNS} FROM issues WHERE parent_id = ? AND deleted_at IS NULL ORDER BY created_at, number"
    ));
    sqlx::query(&sql).bind(id).fetch_all(&mut *conn).await.map_err(db)?.iter().map(rows::issue).collect()
}

async fn has_children(conn: &mut PgConnection, id: &str) -> Result<bool> {
    Ok(sqlx::query(pg("SELECT 1 FROM issues WHERE parent_id = ? AND deleted_at IS NULL LIMIT 1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        .is_some())
}

/// The live labels named by `ids`, duplicates collapsed; an unknown id is a 422 naming it.
/// Each is share-locked until commit, so it is not deleted before the link is written.
async fn resolve_labels(conn: &mut PgConnection, ids: &[String]) -> Result<Vec<LabelRef>> {
    let mut out: Vec<LabelRef> = Vec::new();
    for id in ids {
        if out.iter().any(|l| &l.id == id) {
            continue;
        }
        let row = sqlx::query(pg("SELECT id, name, color FROM labels WHERE id = ? AND deleted_at IS NULL FOR SHARE"))
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

async fn add_label(conn: &mut PgConnection, issue_id: &str, label_id: &str) -> Result<()> {
    sqlx::query(pg("INSERT INTO issue_labels (issue_id, label_id) VALUES (?, ?) ON CONFLICT DO NOTHING"))
        .bind(issue_id)
        .bind(label_id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

pub(crate) async fn labels_of(conn: &mut PgConnection, issue_id: &str) -> Result<Vec<LabelRef>> {
    // Names in byte order, as SQLite's default (BINARY) collation has them.
    sqlx::query(pg(r#"SELECT l.id, l.name, l.color FROM issue_labels il JOIN labels l ON l.id = il.label_id
         WHERE il.issue_id = ? AND l.deleted_at IS NULL ORDER BY l.name COLLATE "C""#))
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
