//! What a prompt is hydrated from, and what template selection sees, for one issue.
//!
//! Each is one statement: on PostgreSQL every statement is a round trip and a wake-up of the
//! database backend, which is what bounds a claim there. Neighbouring rows come back as JSON
//! (`json_object`, `json_group_array`; see `dialect.rs` for PostgreSQL's names) and are read
//! by the same mappers as table rows.

use std::sync::LazyLock;

use loop_core::Result;
use loop_core::hydration::{ImprovementInputs, MAX_NEIGHBOURS, PromptInputs};
use loop_core::issue::Issue;
use loop_core::template::SelectionContext;
use serde_json::{Map, Value};

use crate::db::{Db, DbExt};
use crate::questions::{QUESTION_COLUMNS, QUESTION_SELECT, QUESTIONS_FROM};
use crate::rework::REWORK_COLUMNS;
use crate::rows::{self, Cols, GOAL_COLUMNS, ISSUE_COLUMNS, LABEL_COLUMNS, PROJECT_COLUMNS, SESSION_COLUMNS, json_row};
use crate::skills::SKILL_COLUMNS;
use crate::{args, improvement, templates};

/// What template conditions see beyond the issue's own columns, as two columns of a query
/// whose rows are issues named `x`: its live labels' names (a JSON array) and whether an
/// earlier session on it failed, expired or was released, and whether it has rework pending.
pub(crate) const CONTEXT_COLUMNS: &str = r#"(SELECT CAST(COALESCE(json_group_array(l.name ORDER BY l.name COLLATE "C"), '[]') AS TEXT)
       FROM issue_labels il JOIN labels l ON l.id = il.label_id WHERE il.issue_id = x.id AND l.deleted_at IS NULL) AS context_labels,
     CASE WHEN EXISTS (SELECT 1 FROM agent_sessions s WHERE s.issue_id = x.id
       AND s.outcome IN ('failed', 'expired', 'released')) THEN 1 ELSE 0 END AS context_failed,
     CASE WHEN EXISTS (SELECT 1 FROM rework w WHERE w.issue_id = x.id AND w.addressed_at IS NULL) THEN 1 ELSE 0 END
       AS context_rework"#;

/// What template conditions see for an issue read with [`CONTEXT_COLUMNS`].
pub(crate) fn context_of(row: &impl Cols, issue: &Issue) -> Result<SelectionContext> {
    Ok(SelectionContext {
        issue_type: Some(issue.issue_type),
        signal_source: issue.signal_source.clone(),
        labels: rows::json(row, "context_labels")?,
        project_id: issue.project_id.clone(),
        has_failed_sessions: rows::get::<i64>(row, "context_failed")? != 0,
        has_rework: rows::get::<i64>(row, "context_rework")? != 0,
        hypothesis_confidence: issue.hypothesis.as_ref().map(|h| h.confidence.value()),
    })
}

/// What template conditions see for an issue.
pub(crate) async fn selection_context(db: &mut impl Db, issue: &Issue) -> Result<SelectionContext> {
    let sql = format!("SELECT {CONTEXT_COLUMNS} FROM issues x WHERE x.id = ?");
    match db.one(&sql, &args![&issue.id]).await? {
        Some(row) => context_of(&row, issue),
        None => Err(loop_core::Error::not_found("Issue", &issue.id)),
    }
}

/// `?1` the issue, `?2` its parent, `?3` its project, `?4` the cap on each list (skills are
/// not capped here: the prompt caps them by size, saying what it left out).
static HYDRATION: LazyLock<String> = LazyLock::new(|| {
    let one =
        |columns: &str, from_where: &str| format!("(SELECT CAST({} AS TEXT) {from_where})", json_row("x", columns));
    let list = |columns: &str, select: &str, order: &str| {
        format!(
            "(SELECT CAST(COALESCE(json_group_array({} ORDER BY {order}), '[]') AS TEXT) FROM ({select}) x)",
            json_row("x", columns)
        )
    };
    let open_across = |this: &str, other: &str| {
        format!(
            "SELECT {ISSUE_COLUMNS} FROM issues WHERE id IN (SELECT {other} FROM issue_relations \
             WHERE edge_kind = 'block' AND {this} = ?1) AND id <> ?1 AND deleted_at IS NULL \
             AND status NOT IN ('done', 'canceled') ORDER BY number LIMIT ?4"
        )
    };
    // The index is named because, with statistics, SQLite prefers walking the `number` index
    // to avoid a sort: a scan of every issue.
    let family = format!(
        "SELECT {ISSUE_COLUMNS} FROM issues INDEXED BY issues_parent WHERE parent_id = COALESCE(?2, ?1) \
         AND id <> ?1 AND deleted_at IS NULL ORDER BY +number LIMIT ?4"
    );
    format!(
        "SELECT {parent} AS parent, {family} AS family, {blocking} AS blocking, {blocked_by} AS blocked_by, \
         {project} AS project, {goal} AS goal, {labels} AS labels, {sessions} AS previous_sessions, {skills} AS skills, \
         {questions} AS questions, {rework} AS rework, \
         CASE WHEN EXISTS (SELECT 1 FROM prompt_improvements WHERE issue_id = ?1) THEN 1 ELSE 0 END AS improves",
        parent = one(ISSUE_COLUMNS, "FROM issues x WHERE x.id = ?2 AND x.deleted_at IS NULL"),
        family = list(ISSUE_COLUMNS, &family, "x.number"),
        blocking = list(ISSUE_COLUMNS, &open_across("edge_from", "edge_to"), "x.number"),
        blocked_by = list(ISSUE_COLUMNS, &open_across("edge_to", "edge_from"), "x.number"),
        project = one(PROJECT_COLUMNS, "FROM projects x WHERE x.id = ?3 AND x.deleted_at IS NULL"),
        goal = one(
            GOAL_COLUMNS,
            "FROM goals x JOIN projects p ON p.id = ?3 AND p.deleted_at IS NULL \
             WHERE x.deleted_at IS NULL AND (x.id = p.goal_id OR x.project_id = p.id) \
             ORDER BY (x.id = p.goal_id) DESC, (x.status = 'active') DESC, x.created_at LIMIT 1"
        ),
        labels = list(
            LABEL_COLUMNS,
            "SELECT l.id, l.name, l.color FROM issue_labels il JOIN labels l ON l.id = il.label_id \
             WHERE il.issue_id = ?1 AND l.deleted_at IS NULL",
            r#"x.name COLLATE "C""#
        ),
        skills = list(
            SKILL_COLUMNS,
            &format!("SELECT {SKILL_COLUMNS} FROM project_skills WHERE project_id = ?3"),
            r#"x.name COLLATE "C""#
        ),
        questions = list(
            QUESTION_COLUMNS,
            &format!("SELECT {QUESTION_SELECT} {QUESTIONS_FROM} WHERE q.issue_id = ?1 ORDER BY q.asked_at LIMIT ?4"),
            "x.asked_at"
        ),
        rework = list(
            REWORK_COLUMNS,
            "SELECT * FROM rework WHERE issue_id = ?1 AND addressed_at IS NULL ORDER BY created_at LIMIT ?4",
            "x.created_at"
        ),
        sessions = list(
            SESSION_COLUMNS,
            r#"SELECT * FROM agent_sessions WHERE issue_id = ?1 AND ended_at IS NOT NULL
               ORDER BY claimed_at, id COLLATE "C" LIMIT ?4"#,
            r#"x.claimed_at, x.id COLLATE "C""#
        ),
    )
});

/// Everything a prompt for `issue` is hydrated from; neighbour lists are capped.
pub(crate) async fn prompt_inputs(db: &mut impl Db, issue: Issue) -> Result<PromptInputs> {
    let args = args![&issue.id, &issue.parent_id, &issue.project_id, MAX_NEIGHBOURS as i64];
    let row =
        db.one(&HYDRATION, &args).await?.ok_or_else(|| loop_core::Error::internal("hydration returned no row"))?;
    let one = |column: &str| -> Result<Option<Map<String, Value>>> { rows::opt_json(&row, column) };
    let list = |column: &str| -> Result<Vec<Map<String, Value>>> { rows::json(&row, column) };
    let issues = |column: &str| list(column)?.iter().map(rows::issue).collect::<Result<Vec<_>>>();
    let (parent, siblings, children) = match &issue.parent_id {
        Some(_) => (one("parent")?.as_ref().map(rows::issue).transpose()?, issues("family")?, Vec::new()),
        None => (None, Vec::new(), issues("family")?),
    };
    let improvement = match rows::get::<i64>(&row, "improves")? {
        0 => None,
        _ => improvement_inputs(db, &issue.id).await?,
    };
    Ok(PromptInputs {
        parent,
        siblings,
        children,
        project: one("project")?.as_ref().map(rows::project).transpose()?,
        goal: one("goal")?.as_ref().map(rows::goal).transpose()?,
        labels: list("labels")?.iter().map(rows::label_ref).collect::<Result<_>>()?,
        blocking: issues("blocking")?,
        blocked_by: issues("blocked_by")?,
        previous_sessions: list("previous_sessions")?.iter().map(rows::session).collect::<Result<_>>()?,
        improvement,
        skills: list("skills")?.iter().map(rows::skill).collect::<Result<_>>()?,
        questions: list("questions")?.iter().map(rows::question).collect::<Result<_>>()?,
        rework: list("rework")?.iter().map(rows::rework).collect::<Result<_>>()?,
        issue,
    })
}

/// What an improvement issue's prompt is hydrated from, if the issue is one: the template, the
/// version to improve and its reviews since it became active.
async fn improvement_inputs(db: &mut impl Db, issue_id: &str) -> Result<Option<ImprovementInputs>> {
    let sql = "SELECT template_id, version_id FROM prompt_improvements WHERE issue_id = ?";
    let Some(row) = db.one(sql, &args![issue_id]).await? else { return Ok(None) };
    let (template_id, version_id): (String, String) = (rows::get(&row, "template_id")?, rows::get(&row, "version_id")?);
    let template = db
        .first(
            "SELECT * FROM prompt_templates WHERE id = ? AND deleted_at IS NULL",
            &args![&template_id],
            rows::template,
        )
        .await?;
    let version = templates::find_version(db, &version_id).await?;
    let (Some(template), Some(version)) = (template, version) else { return Ok(None) };
    let reviews = improvement::reviews_since(db, &version, None).await?;
    Ok(Some(ImprovementInputs { template, version, reviews }))
}
