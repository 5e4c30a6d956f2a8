//! Questions an agent asks a person (table `questions`). Asking ends the session and puts the
//! issue back in `todo` with one more open question, which counts as an open blocker (see
//! `dispatch_index`); answering takes it away again.

use loop_core::comment::AuthorType;
use loop_core::question::{NewAnswer, NewQuestion, Question};
use loop_core::session::{SessionOutcome, SessionReport};
use loop_core::signal::truncate;
use loop_core::text::Body;
use loop_core::{Actor, Error, Page, Paged, Result, Timestamp, id::new_id};

use crate::common::{self, events_insert};
use crate::db::{Db, DbExt};
use crate::dispatch::end_and_requeue;
use crate::dispatch_index::refresh_issue;
use crate::{args, comments, rows, sessions};

/// The columns of a question row as [`rows::question`] reads it.
pub(crate) const QUESTION_COLUMNS: &str =
    "id, issue_id, issue_number, issue_title, session_id, body, asked_by, asked_at, answer, answered_by, answered_at";

/// A question is read as its row with its issue's number and title: `SELECT {QUESTION_SELECT}
/// {QUESTIONS_FROM} WHERE …`, the question named `q`.
pub(crate) const QUESTION_SELECT: &str = "q.id, q.issue_id, i.number AS issue_number, i.title AS issue_title, \
     q.session_id, q.body, q.asked_by, q.asked_at, q.answer, q.answered_by, q.answered_at";
pub(crate) const QUESTIONS_FROM: &str = "FROM questions q JOIN issues i ON i.id = q.issue_id";

pub(crate) async fn ask(
    db: &mut impl Db,
    session_id: String,
    input: NewQuestion,
    actor: Actor,
    now: Timestamp,
) -> Result<Question> {
    let session = sessions::require(db, &session_id).await?;
    if let Some(outcome) = session.outcome {
        return Err(Error::conflict(
            "session_ended",
            format!("session {session_id} already ended ({outcome}): a question is asked from an open claim"),
        ));
    }
    let id = new_id();
    db.run(
        "INSERT INTO questions (id, issue_id, session_id, body, asked_by, asked_at) VALUES (?, ?, ?, ?, ?, ?)",
        &args![&id, &session.issue_id, &session.id, input.question.as_str(), &session.agent, now.millis()],
    )
    .await?;
    db.run("UPDATE issues SET open_questions = open_questions + 1 WHERE id = ?", &args![&session.issue_id]).await?;
    let summary = format!("asked a person: {}", truncate(input.question.as_str(), 2000));
    let report = SessionReport { summary: Some(Body::new(summary).map_err(Error::internal)?), ..Default::default() };
    let (_, mut writes, events) = end_and_requeue(db, &session, SessionOutcome::Released, &report, now).await?;
    writes.extend(events_insert(&events, &actor, now));
    db.run_writes(&writes).await?;
    let body = format!("**Question:** {}", input.question.as_str());
    comments::note(db, &session.issue_id, (&session.agent, AuthorType::Agent), body, &actor, now).await?;
    find(db, &id).await
}

pub(crate) async fn answer(
    db: &mut impl Db,
    id: String,
    input: NewAnswer,
    actor: Actor,
    now: Timestamp,
) -> Result<Question> {
    let sql = "UPDATE questions SET answer = ?, answered_by = ?, answered_at = ? \
               WHERE id = ? AND answered_at IS NULL RETURNING issue_id";
    let Some(row) = db.one(sql, &args![input.answer.as_str(), &actor.name, now.millis(), &id]).await? else {
        let asked = find(db, &id).await?;
        return Err(Error::conflict(
            "already_answered",
            format!("question {id} was answered by {} already", asked.answered_by.unwrap_or_default()),
        ));
    };
    let issue_id: String = rows::get(&row, "issue_id")?;
    db.run(
        "UPDATE issues SET open_questions = open_questions - 1, updated_at = ? WHERE id = ? AND open_questions > 0",
        &args![now.millis(), &issue_id],
    )
    .await?;
    refresh_issue(db, &issue_id).await?;
    let body = format!("**Answer:** {}", input.answer.as_str());
    comments::note(db, &issue_id, (&actor.name, AuthorType::Human), body, &actor, now).await?;
    find(db, &id).await
}

pub(crate) async fn find(db: &mut impl Db, id: &str) -> Result<Question> {
    let sql = format!("SELECT {QUESTION_SELECT} {QUESTIONS_FROM} WHERE q.id = ?");
    db.first(&sql, &args![id], rows::question).await?.ok_or_else(|| Error::not_found("Question", id))
}

/// Questions, oldest first; only the open ones with `open_only`; only issue `issue_id`'s.
pub(crate) async fn list(
    db: &mut impl Db,
    open_only: bool,
    issue_id: Option<String>,
    page: Page,
) -> Result<Paged<Question>> {
    let mut clauses = vec!["i.deleted_at IS NULL"];
    if open_only {
        clauses.push("q.answered_at IS NULL");
    }
    if issue_id.is_some() {
        clauses.push("q.issue_id = ?");
    }
    let from = format!("{QUESTIONS_FROM} WHERE {}", clauses.join(" AND "));
    let binds = match &issue_id {
        Some(id) => args![id].to_vec(),
        None => vec![],
    };
    common::page_of(db, QUESTION_SELECT, &from, "q.asked_at, q.id", &binds, page, rows::question).await
}
