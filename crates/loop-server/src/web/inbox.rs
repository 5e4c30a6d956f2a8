//! `/inbox`: the questions agents asked that wait for a person, each with a form to answer it.
//! An answered issue is dispatched again, the question and the answer in its next prompt.

use axum::Router;
use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::routing::get;
use loop_core::page::Page;
use loop_core::question::{NewAnswer, Question};
use loop_core::{Clock, SystemClock, Timestamp};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::layout::{self, Section};
use super::session::Viewer;
use super::{WebResult, back_to, check_form, input};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/inbox", get(page).post(answer))
}

async fn page(State(s): State<AppState>, viewer: Viewer) -> WebResult<Markup> {
    let page = Page { limit: 200, offset: 0 };
    let (open, cursor) = tokio::join!(s.store.list_questions(true, None, page), s.store.last_event_id());
    let (open, cursor) = (open?, cursor?);
    let body = html! {
        h1 { "Inbox" }
        @if open.data.is_empty() {
            section.card { p.muted { "No agent is waiting for an answer." } }
        }
        @for q in &open.data { (question(&viewer, q, SystemClock.now())) }
    };
    Ok(layout::page(&viewer, Section::Inbox, "Inbox", cursor, body))
}

fn question(viewer: &Viewer, q: &Question, now: Timestamp) -> Markup {
    html! {
        section.card.question {
            h2 { a href={ "/issues/" (q.issue_number) } { "#" (q.issue_number) " " (q.issue_title) } }
            p.muted { (q.asked_by) " asked, " (layout::ago(q.asked_at, now)) ":" }
            blockquote { (super::markdown::render(&q.question)) }
            form method="post" action="/inbox" {
                (layout::csrf(viewer))
                input type="hidden" name="question" value=(q.id);
                label for={ "answer-" (q.id) } { "Your answer" }
                textarea id={ "answer-" (q.id) } name="answer" rows="3" required {}
                button.primary type="submit" { "Answer" }
            }
        }
    }
}

#[derive(Deserialize)]
struct AnswerForm {
    #[serde(rename = "_csrf")]
    csrf: String,
    question: String,
    answer: String,
}

async fn answer(State(s): State<AppState>, viewer: Viewer, headers: HeaderMap, Form(f): Form<AnswerForm>) -> WebResult {
    check_form(&viewer, &headers, &f.csrf)?;
    let answer: NewAnswer = input(json!({ "answer": f.answer }))?;
    s.store.answer_question(&f.question, answer, &viewer.actor).await?;
    Ok(back_to("/inbox"))
}
