//! Issues: create, read, list, patch, soft delete, history.
//!
//! On PostgreSQL several nodes write at once: an issue is changed under its row lock (so two
//! patches never overwrite each other's fields), and what it links to is share-locked until
//! commit (so a parent cannot be deleted, or given a parent of its own, and a project or label
//! cannot be deleted, before the link commits). Projects are locked before issues (see
//! `dispatch_index`). On SQLite, with one writer, the lock clauses fall away.

use async_trait::async_trait;
use loop_core::actor::ActorKind;
use loop_core::event::{IssueEvent, NewEvent};
use loop_core::issue::{
    self, Issue, IssueDetail, IssueFilter, IssuePatch, IssueSort, IssueStatus, IssueType, NewIssue, SortKey,
};
use loop_core::label::LabelRef;
use loop_core::session::{SessionOutcome, SessionReport};
use loop_core::store::IssueStore;
use loop_core::{Actor, Error, Page, Paged, Result, Timestamp, id::new_id};

use crate::common::{self, events_insert, find_issue, find_issue_locked, ref_not_found, require_issue};
use crate::db::{Db, DbExt, Dialect, Value, Write};
use crate::dispatch_index::{refresh_blocked_by, refresh_issue};
use crate::rows::{self, ISSUE_COLUMNS, to_json};
use crate::{Backend, SqlStore, args, hypotheses, labels, sessions, settings};

#[async_trait]
impl<B: Backend> IssueStore for SqlStore<B> {
    async fn create_issue(&self, input: NewIssue, actor: &Actor) -> Result<Issue> {
        let (now, actor) = (self.now(), actor.clone());
        self.write((input, actor), move |db, (input, actor)| Box::pin(create(db, input, actor, now))).await
    }

    async fn get_issue(&self, key: &str) -> Result<Issue> {
        self.read(key.to_owned(), move |db, key| Box::pin(async move { require_issue(db, &key).await })).await
    }

    async fn issue_detail(&self, key: &str) -> Result<IssueDetail> {
        self.read(key.to_owned(), move |db, key| Box::pin(detail(db, key))).await
    }

    async fn list_issues(&self, filter: &IssueFilter, page: Page) -> Result<Paged<Issue>> {
        self.read(filter.clone(), move |db, filter| Box::pin(list(db, filter, page))).await
    }

    async fn update_issue(&self, key: &str, patch: IssuePatch, actor: &Actor) -> Result<Issue> {
        if patch.is_empty() {
            return Err(Error::empty_patch());
        }
        let (key, now, actor) = (key.to_owned(), self.now(), actor.clone());
        self.write((key, patch, actor), move |db, (key, patch, actor)| Box::pin(update(db, key, patch, actor, now)))
            .await
    }

    async fn delete_issue(&self, key: &str, actor: &Actor) -> Result<()> {
        let (key, now, actor) = (key.to_owned(), self.now(), actor.clone());
        self.write((key, actor), move |db, (key, actor)| Box::pin(delete(db, key, actor, now))).await
    }

    async fn issue_events(&self, key: &str, page: Page) -> Result<Paged<IssueEvent>> {
        self.read(key.to_owned(), move |db, key| {
            Box::pin(async move {
                let issue = require_issue(db, &key).await?;
                let from = "FROM issue_events WHERE issue_id = ?";
                common::page_of(db, "*", from, "id", &args![&issue.id], page, rows::event).await
            })
        })
        .await
    }
}

/// Creates an issue inside the caller's transaction: checks references, assigns the next
/// number, writes labels and history.
pub(crate) async fn create(db: &mut impl Db, mut input: NewIssue, actor: Actor, now: Timestamp) -> Result<Issue> {
    // The project first (projects before issues, see `dispatch_index`); its absence is
    // reported after the parent's.
    let project_live = match &input.project_id {
        Some(pid) => common::live(db, "projects", pid, "FOR SHARE").await?,
        None => true,
    };
    if let Some(pid) = &input.parent_id {
        // The parent can be neither deleted (which would miss this child when detaching
        // children) nor given a parent of its own before this commits.
        let parent = find_issue_locked(db, pid, "FOR SHARE").await?;
        issue::check_parent(pid, parent.as_ref(), None, false)?;
        input.parent_id = parent.map(|p| p.id);
    }
    if let Some(pid) = &input.project_id
        && !project_live
    {
        return Err(ref_not_found("projects", "projectId", "project_not_found", pid));
    }
    let mut labels = resolve_labels(db, &input.label_ids).await?;
    if actor.kind == ActorKind::Agent
        && let Some(name) = settings::load(db).await?.labels.auto_generated
        && !labels.iter().any(|l| l.name == name)
    {
        // Made by the loop (an agent, an integration, Loop itself), not by a person.
        let id = labels::ensure(db, &name, AUTO_GENERATED_COLOR, now).await?;
        labels.extend(db.first("SELECT id, name, color FROM labels WHERE id = ?", &args![&id], rows::label_ref).await?);
    }
    let mut row = Issue::from_new(&input, new_id(), 0, now);
    if row.issue_type == IssueType::Monitor && row.not_before.is_none() {
        row.not_before = hypotheses::monitor_wait(db, &row, now).await?;
    }
    row.number = insert(db, &row).await?;
    if row.status == IssueStatus::Todo {
        refresh_issue(db, &row.id).await?;
    }
    let mut events = vec![NewEvent::created(&row.id, row.number, &row.title)];
    let mut writes = Vec::new();
    for l in &labels {
        writes.push(Write::new(ADD_LABEL, &args![&row.id, &l.id]));
        events.push(NewEvent::label(&row.id, true, &l.id, &l.name));
    }
    writes.extend(events_insert(&events, &actor, now));
    db.run_writes(&writes).await?;
    Ok(row)
}

/// Inserts a new issue; returns the number it was given: the next after the highest on
/// SQLite (one writer), the next of a sequence on PostgreSQL (gaps are fine; a counter row
/// would make every create wait for the one before to commit).
async fn insert(db: &mut impl Db, i: &Issue) -> Result<i64> {
    let number = match db.dialect() {
        Dialect::Sqlite => "(SELECT COALESCE(MAX(number), 0) + 1 FROM issues)",
        Dialect::Postgres => "nextval('issue_numbers')",
    };
    let sql = format!(
        "INSERT INTO issues (id, number, title, description, type, status, priority, parent_id, project_id, \
         signal_source, signal_payload, hypothesis, not_before, completed_at, created_at, updated_at, todo_since) \
         VALUES (?, {number}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING number"
    );
    let (payload, hypothesis) = (to_json(&i.signal_payload), to_json(&i.hypothesis));
    let todo_since = (i.status == IssueStatus::Todo).then_some(i.created_at.millis());
    let args = args![
        &i.id,
        i.title.as_str(),
        &i.description,
        i.issue_type.as_str(),
        i.status.as_str(),
        i.priority.value() as i64,
        &i.parent_id,
        &i.project_id,
        &i.signal_source,
        &payload,
        &hypothesis,
        i.not_before.map(|t| t.millis()),
        i.completed_at.map(|t| t.millis()),
        i.created_at.millis(),
        i.updated_at.millis(),
        todo_since,
    ];
    db.int(&sql, &args, "number").await
}

async fn detail(db: &mut impl Db, key: String) -> Result<IssueDetail> {
    let issue = require_issue(db, &key).await?;
    let parent = match &issue.parent_id {
        Some(p) => find_issue(db, p).await?,
        None => None,
    };
    let children = children_of(db, &issue.id).await?;
    let labels = labels_of(db, &issue.id).await?;
    let relations = db
        .each(
            r#"SELECT r.* FROM issue_relations r
             JOIN issues a ON a.id = r.issue_id AND a.deleted_at IS NULL
             JOIN issues b ON b.id = r.related_issue_id AND b.deleted_at IS NULL
             WHERE r.issue_id = ?1 OR r.related_issue_id = ?1 ORDER BY r.created_at, r.id COLLATE "C""#,
            &args![&issue.id],
            rows::relation,
        )
        .await?;
    let signal = db
        .one(
            "SELECT CAST(SUM(occurrences) AS BIGINT) AS occurrences, MAX(last_seen_at) AS last_seen_at FROM signals WHERE issue_id = ?",
            &args![&issue.id],
        )
        .await?;
    let (occurrences, last_seen_at) = match &signal {
        Some(row) => (rows::get::<Option<i64>>(row, "occurrences")?, rows::opt_ts(row, "last_seen_at")?),
        None => (None, None),
    };
    Ok(IssueDetail { issue, parent, children, labels, relations, occurrences, last_seen_at })
}

/// Under this many matches, a list reads the matches first and sorts them; above it, walking an
/// index in the wanted order finds a page of matches quickly.
const FEW_MATCHES: u64 = 5_000;

async fn list(db: &mut impl Db, filter: IssueFilter, page: Page) -> Result<Paged<Issue>> {
    let mut clauses = vec!["i.deleted_at IS NULL".to_string()];
    let mut binds: Vec<Value> = Vec::new();
    let mut list = |col: &str, values: Vec<String>, clauses: &mut Vec<String>| {
        if !values.is_empty() {
            clauses.push(format!("i.{col} IN ({})", vec!["?"; values.len()].join(", ")));
            binds.extend(values.into_iter().map(Value::Text));
        }
    };
    list("status", filter.statuses.iter().map(|s| s.to_string()).collect(), &mut clauses);
    list("type", filter.types.iter().map(|s| s.to_string()).collect(), &mut clauses);
    for (col, value) in [("project_id", &filter.project_id), ("parent_id", &filter.parent_id)] {
        if let Some(v) = value {
            clauses.push(format!("i.{col} = ?"));
            binds.push(Value::Text(v.clone()));
        }
    }
    if let Some(p) = filter.priority {
        clauses.push("i.priority = ?".into());
        binds.push(Value::Int(p.value() as i64));
    }
    match filter.waiting {
        Some(true) => clauses.push("i.not_before IS NOT NULL".into()),
        Some(false) => clauses.push("i.not_before IS NULL".into()),
        None => {}
    }
    if let Some(l) = &filter.label_id {
        // Driven from the label's index: a rare label must not mean a walk over every issue.
        clauses.push(
            "i.id IN (SELECT il.issue_id FROM issue_labels il JOIN labels l ON l.id = il.label_id \
             AND l.deleted_at IS NULL WHERE il.label_id = ?)"
                .into(),
        );
        binds.push(Value::Text(l.clone()));
    }
    if let Some(q) = filter.search.as_deref() {
        match q.trim().strip_prefix('#').and_then(|n| n.parse::<i64>().ok()) {
            Some(number) => {
                clauses.push("i.number = ?".into());
                binds.push(Value::Int(number));
            }
            None => {
                for word in q.split_whitespace() {
                    // ILIKE: SQLite's LIKE ignores ASCII case, PostgreSQL's does not.
                    clauses.push(r"i.title ILIKE ? ESCAPE '\'".into());
                    binds.push(Value::Text(format!("%{}%", escape_like(word))));
                }
            }
        }
    }
    let args: Vec<_> = binds.iter().map(Value::arg).collect();
    let filters = clauses.join(" AND ");
    let total = common::count(db, &format!("FROM issues i WHERE {filters}"), &args).await?;
    // SQLite cannot know how selective a filter is, and a wrong guess costs a walk over every
    // issue: a quarter of all issues or more is read by one scan rather than through the
    // filter's index (PostgreSQL's planner knows).
    let scan = db.dialect() == Dialect::Sqlite
        && total >= FEW_MATCHES
        && filter.sort.key != SortKey::Created
        && total * 4 >= common::count(db, "FROM issues WHERE deleted_at IS NULL", &[]).await?;
    let from = format!("FROM issues i{} WHERE {filters}", if scan { " NOT INDEXED" } else { "" });
    let data =
        common::rows_of(db, &prefixed(ISSUE_COLUMNS), &from, &order(filter.sort, total), &args, page, rows::issue)
            .await?;
    Ok(Paged { data, total })
}

/// The ORDER BY of an issue list: the sort key, ties broken by number (so pages never overlap).
/// "No priority" (0) sorts after urgent; titles compare with ASCII letters folded, then by
/// bytes. Few matches are sorted after they are read (a unary `+` keeps an index from being
/// used for the order); many are read in creation order from `issues_live`.
fn order(sort: IssueSort, total: u64) -> String {
    let dir = if sort.descending { "DESC" } else { "ASC" };
    let created = if total < FEW_MATCHES { "+i.created_at" } else { "i.created_at" };
    match sort.key {
        SortKey::Created => format!("{created} {dir}, i.number {dir}"),
        SortKey::Updated => format!("i.updated_at {dir}, i.number {dir}"),
        SortKey::Number => format!("i.number {dir}"),
        SortKey::Priority => format!("(i.priority = 0) {dir}, i.priority {dir}, i.number"),
        SortKey::Title => format!(r#"lower(i.title COLLATE "C") {dir}, i.number"#),
    }
}

fn prefixed(columns: &str) -> String {
    columns.split(", ").map(|c| format!("i.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

/// A word searched with LIKE, its wildcards taken literally.
fn escape_like(word: &str) -> String {
    word.replace('\\', r"\\").replace('%', r"\%").replace('_', r"\_")
}

pub(crate) async fn update(
    db: &mut impl Db,
    key: String,
    mut patch: IssuePatch,
    actor: Actor,
    now: Timestamp,
) -> Result<Issue> {
    let gone = || Error::not_found("Issue", &key);
    // An issue leaving the ready queue (reported done, put in review…) in place: only its own
    // row is locked, at once. Anything else may put it into a project's todo set, so takes the
    // locks in order below.
    let leaves_queue = patch.status.is_some_and(|s| s != IssueStatus::Todo);
    let old = if leaves_queue && patch.parent_id.is_none() && patch.project_id.is_none() {
        find_issue_locked(db, &key, "FOR NO KEY UPDATE").await?.ok_or_else(gone)?
    } else {
        lock_for_update(db, &key, &mut patch).await?
    };
    let (new, mut events) = old.apply_patch(&patch, now);
    let todo_since: Option<i64> = match (old.status == IssueStatus::Todo, new.status == IssueStatus::Todo) {
        (false, true) => Some(now.millis()),
        (true, true) => match db.one("SELECT todo_since FROM issues WHERE id = ?", &args![&old.id]).await? {
            Some(row) => rows::get(&row, "todo_since")?,
            None => None,
        },
        _ => None,
    };
    if let Some(ids) = &patch.label_ids {
        let wanted = resolve_labels(db, ids).await?;
        let current = labels_of(db, &old.id).await?;
        for l in current.iter().filter(|c| !wanted.iter().any(|w| w.id == c.id)) {
            db.run("DELETE FROM issue_labels WHERE issue_id = ? AND label_id = ?", &args![&old.id, &l.id]).await?;
            events.push(NewEvent::label(&old.id, false, &l.id, &l.name));
        }
        for l in wanted.iter().filter(|w| !current.iter().any(|c| c.id == w.id)) {
            add_label(db, &old.id, &l.id).await?;
            events.push(NewEvent::label(&old.id, true, &l.id, &l.name));
        }
    }
    let (payload, hypothesis) = (to_json(&new.signal_payload), to_json(&new.hypothesis));
    let (commits, prs) = (to_json(&new.commits), to_json(&new.pull_requests));
    db.run(
        "UPDATE issues SET title = ?, description = ?, type = ?, status = ?, priority = ?, parent_id = ?, \
         project_id = ?, signal_source = ?, signal_payload = ?, hypothesis = ?, agent_session_id = ?, \
         agent_summary = ?, commits = ?, pull_requests = ?, not_before = ?, completed_at = ?, updated_at = ?, \
         todo_since = ? WHERE id = ?",
        &args![
            new.title.as_str(),
            &new.description,
            new.issue_type.as_str(),
            new.status.as_str(),
            new.priority.value() as i64,
            &new.parent_id,
            &new.project_id,
            &new.signal_source,
            &payload,
            &hypothesis,
            &new.agent_session_id,
            &new.agent_summary,
            &commits,
            &prs,
            new.not_before.map(|t| t.millis()),
            new.completed_at.map(|t| t.millis()),
            now.millis(),
            todo_since,
            &new.id,
        ],
    )
    .await?;
    if new.status == IssueStatus::Todo {
        refresh_issue(db, &new.id).await?;
    }
    if new.status.is_terminal() != old.status.is_terminal() {
        refresh_blocked_by(db, &new.id).await?;
    }
    if new.status == IssueStatus::Done && old.status != IssueStatus::Done {
        crate::rework::address(db, &new.id, now).await?;
    }
    if patch.hypothesis.is_some() {
        hypotheses::watch(db, &new.id, new.hypothesis.as_ref()).await?;
    }
    let underway = |s: IssueStatus| matches!(s, IssueStatus::InProgress | IssueStatus::Done);
    if underway(new.status) && !underway(old.status) {
        hypotheses::child_underway(db, &new, &actor, now).await?;
    }
    let mut writes = Vec::new();
    if old.status == IssueStatus::InProgress && new.status != old.status {
        writes = close_session(db, &new, now, &mut events).await?;
    }
    writes.extend(events_insert(&events, &actor, now));
    db.run_writes(&writes).await?;
    Ok(new)
}

/// Locks what a patch touches, in the order every writer takes them (see `dispatch_index`):
/// the project the issue is in after the patch (shared), then the issue, and a new parent
/// (shared) beside it in id order, so that "a's parent is b" and "b's parent is a" at once do
/// not deadlock: one waits, then fails the depth check. Returns the issue as it is now, and
/// resolves the patch's parent and project to checked ids.
async fn lock_for_update(db: &mut impl Db, key: &str, patch: &mut IssuePatch) -> Result<Issue> {
    let found = require_issue(db, key).await?;
    let gone = || Error::not_found("Issue", key);
    // The project's absence is reported after the parent's.
    let project = patch.project_id.take();
    let project_live = match project.as_ref().unwrap_or(&found.project_id) {
        Some(pid) => common::live(db, "projects", pid, "FOR SHARE").await?,
        None => true,
    };
    let (share, update) = ("FOR SHARE", "FOR NO KEY UPDATE");
    let (old, new_parent) = match patch.parent_id.take() {
        Some(Some(pid)) => match find_issue(db, &pid).await? {
            Some(seen) if seen.id < found.id => {
                let parent = find_issue_locked(db, &seen.id, share).await?;
                let old = find_issue_locked(db, &found.id, update).await?.ok_or_else(gone)?;
                (old, Some(Some((pid, parent))))
            }
            Some(seen) if seen.id > found.id => {
                let old = find_issue_locked(db, &found.id, update).await?.ok_or_else(gone)?;
                let parent = find_issue_locked(db, &seen.id, share).await?;
                (old, Some(Some((pid, parent))))
            }
            // Itself, or no such issue.
            seen => {
                let old = find_issue_locked(db, &found.id, update).await?.ok_or_else(gone)?;
                let parent = seen.map(|_| old.clone());
                (old, Some(Some((pid, parent))))
            }
        },
        Some(None) => (find_issue_locked(db, &found.id, update).await?.ok_or_else(gone)?, Some(None)),
        None => (find_issue_locked(db, &found.id, update).await?.ok_or_else(gone)?, None),
    };
    match new_parent {
        Some(Some((pid, parent))) => {
            let has_children = has_children(db, &old.id).await?;
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
    Ok(old)
}

async fn delete(db: &mut impl Db, key: String, actor: Actor, now: Timestamp) -> Result<()> {
    // Locked: a concurrent delete finds it gone, a concurrent child waits and then finds its
    // parent gone.
    let issue =
        find_issue_locked(db, &key, "FOR NO KEY UPDATE").await?.ok_or_else(|| Error::not_found("Issue", &key))?;
    db.run(
        "UPDATE issues SET deleted_at = ?, updated_at = ? WHERE id = ?",
        &args![now.millis(), now.millis(), &issue.id],
    )
    .await?;
    let mut events = vec![NewEvent::deleted(&issue.id)];
    refresh_blocked_by(db, &issue.id).await?;
    let mut gone = issue.clone();
    gone.status = IssueStatus::Canceled;
    let mut writes = close_session(db, &gone, now, &mut events).await?;
    // Children are detached rather than left pointing at an issue nobody can see.
    for child in children_of(db, &issue.id).await? {
        // Only if it is still this issue's child: a concurrent patch may have just moved it.
        let detached = db
            .run(
                "UPDATE issues SET parent_id = NULL, updated_at = ? WHERE id = ? AND parent_id = ?",
                &args![now.millis(), &child.id, &issue.id],
            )
            .await?;
        if detached == 1 {
            let from = serde_json::Value::from(issue.id.clone());
            events.push(NewEvent::field_changed(&child.id, "parentId", from, serde_json::Value::Null));
        }
    }
    writes.extend(events_insert(&events, &actor, now));
    db.run_writes(&writes).await
}

/// When an issue leaves `in_progress` by hand, the session holding it ends: `done` and
/// `canceled` as such (with the agent's summary), anything else as `released`. Adds the
/// session's event to `events`; returns the writes left to do.
async fn close_session(
    db: &mut impl Db,
    issue: &Issue,
    now: Timestamp,
    events: &mut Vec<NewEvent>,
) -> Result<Vec<Write>> {
    let outcome = match issue.status {
        IssueStatus::Done => SessionOutcome::Done,
        IssueStatus::Canceled => SessionOutcome::Canceled,
        IssueStatus::InProgress => return Ok(Vec::new()),
        _ => SessionOutcome::Released,
    };
    let report = SessionReport {
        summary: issue.agent_summary.as_deref().and_then(|s| loop_core::text::Body::new(s).ok()),
        ..SessionReport::default()
    };
    match sessions::end(db, "issue_id", &issue.id, outcome, &report, now).await? {
        Some(ended) => {
            events.push(ended.event);
            Ok(ended.writes)
        }
        None => Ok(Vec::new()),
    }
}

/// An issue's live children, oldest first.
pub(crate) async fn children_of(db: &mut impl Db, id: &str) -> Result<Vec<Issue>> {
    let sql = format!(
        "SELECT {ISSUE_COLUMNS} FROM issues WHERE parent_id = ? AND deleted_at IS NULL ORDER BY created_at, number"
    );
    db.each(&sql, &args![id], rows::issue).await
}

async fn has_children(db: &mut impl Db, id: &str) -> Result<bool> {
    let sql = "SELECT 1 AS hit FROM issues WHERE parent_id = ? AND deleted_at IS NULL LIMIT 1";
    Ok(db.one(sql, &args![id]).await?.is_some())
}

/// The live labels named by `ids`, duplicates collapsed; an unknown id is a 422 naming it.
/// Each is share-locked until commit, so it is not deleted before the link is written.
async fn resolve_labels(db: &mut impl Db, ids: &[String]) -> Result<Vec<LabelRef>> {
    let mut out: Vec<LabelRef> = Vec::new();
    for id in ids {
        if out.iter().any(|l| &l.id == id) {
            continue;
        }
        let sql = "SELECT id, name, color FROM labels WHERE id = ? AND deleted_at IS NULL FOR SHARE";
        let label = db.first(sql, &args![id], rows::label_ref).await?;
        out.push(label.ok_or_else(|| Error::invalid("labelIds", "label_not_found", format!("label {id} not found")))?);
    }
    Ok(out)
}

/// The colour the `auto-generated` label is made with, when Loop makes it.
const AUTO_GENERATED_COLOR: &str = "#868e96";

const ADD_LABEL: &str = "INSERT INTO issue_labels (issue_id, label_id) VALUES (?, ?) ON CONFLICT DO NOTHING";

async fn add_label(db: &mut impl Db, issue_id: &str, label_id: &str) -> Result<()> {
    db.run(ADD_LABEL, &args![issue_id, label_id]).await.map(|_| ())
}

/// An issue's live labels, by name (in byte order).
pub(crate) async fn labels_of(db: &mut impl Db, issue_id: &str) -> Result<Vec<LabelRef>> {
    let sql = r#"SELECT l.id, l.name, l.color FROM issue_labels il JOIN labels l ON l.id = il.label_id
         WHERE il.issue_id = ? AND l.deleted_at IS NULL ORDER BY l.name COLLATE "C""#;
    db.each(sql, &args![issue_id], rows::label_ref).await
}
