//! `loop inbox`: the questions agents asked that wait for a person, and answering them.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::Ctx;
use super::api::{data, seg};
use super::error::{About, CliError};
use super::output::{self, Mode, Table, cell, col, emit, s};

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  loop inbox                                   what agents are waiting on\n  \
                  loop inbox answer 12 \"Serve stale rates for a day\"   answers #12's open question\n  \
                  loop inbox answer 01J…QID \"Use the v2 endpoint\"      answers that question\n  \
                  loop --token \"$LOOP_TOKEN\" inbox ask \"Keep v1 or drop it?\"   an agent under loop agent asks\n\n\
                  An answered issue is dispatched again, the question and the answer in its prompt."
)]
pub struct InboxArgs {
    #[command(subcommand)]
    pub action: Option<InboxAction>,
}

#[derive(Subcommand, Debug)]
pub enum InboxAction {
    /// The open questions, oldest first (the default).
    #[command(visible_alias = "ls")]
    List,
    /// Answer a question: its id, or an issue's number for that oldest open question.
    Answer {
        /// A question id, or an issue number (12 or #12).
        question: String,
        /// The answer (Markdown).
        answer: String,
    },
    /// Ask a person, from a claim (an agent that cannot go on without a decision): the claim
    /// ends, the issue waits for the answer, and the next prompt carries both.
    Ask {
        /// What needs deciding, and the options you see (Markdown).
        question: String,
        /// The claim's session [default: $LOOP_SESSION_ID, which loop agent sets]
        #[arg(long, env = "LOOP_SESSION_ID", value_name = "ID")]
        session: String,
    },
}

pub async fn run(a: InboxArgs, ctx: &Ctx) -> Result<(), CliError> {
    match a.action.unwrap_or(InboxAction::List) {
        InboxAction::List => list(ctx).await,
        InboxAction::Ask { question, session } => ask(ctx, question, session).await,
        InboxAction::Answer { question, answer } => {
            let id = question_id(ctx, &question).await?;
            let path = format!("/api/questions/{}/answer", seg(&id));
            let answered =
                data(ctx.api.post(&path, json!({ "answer": answer })).await.about(format!("question {id}"))?);
            match ctx.out.mode {
                Mode::Json => emit(&output::json(&answered)),
                _ => emit(&format!(
                    "Answered #{}'s question; it is dispatched again once none is open.",
                    answered["issueNumber"]
                )),
            }
            Ok(())
        }
    }
}

/// A question id as given, or the oldest open question of the issue a number names.
async fn ask(ctx: &Ctx, question: String, session: String) -> Result<(), CliError> {
    let path = format!("/api/sessions/{}/questions", seg(&session));
    let asked = data(ctx.api.post(&path, json!({ "question": question })).await.about(format!("session {session}"))?);
    match ctx.out.mode {
        Mode::Json => emit(&output::json(&asked)),
        _ => emit(&format!(
            "Asked. #{} waits for a person's answer (loop inbox); your claim has ended: stop working on it.",
            asked["issueNumber"]
        )),
    }
    Ok(())
}

async fn question_id(ctx: &Ctx, given: &str) -> Result<String, CliError> {
    let Ok(number) = given.trim_start_matches('#').parse::<i64>() else { return Ok(given.to_owned()) };
    let open = ctx.api.get(&format!("/api/questions?open=true&issueId={number}&limit=1")).await?;
    match output::arr(&open["data"]).first() {
        Some(q) => Ok(s(q, "id").to_owned()),
        None => Err(CliError::usage(format!("#{number} has no open question (see loop inbox)"))),
    }
}

async fn list(ctx: &Ctx) -> Result<(), CliError> {
    let open = ctx.api.get("/api/questions?open=true&limit=200").await?;
    let rows: Vec<&Value> = output::arr(&open["data"]).iter().collect();
    if ctx.out.mode == Mode::Json {
        emit(&output::json(&open["data"]));
        return Ok(());
    }
    if rows.is_empty() && ctx.out.human() {
        emit("No agent is waiting for an answer.");
        return Ok(());
    }
    let mut table = Table::new(vec![col("ISSUE"), col("ASKED BY"), col("ASKED"), col("QUESTION"), col("ID")]);
    for q in rows {
        table.row(vec![
            cell(format!("#{} {}", q["issueNumber"], s(q, "issueTitle")), output::BOLD),
            s(q, "askedBy").into(),
            s(q, "askedAt").get(..16).unwrap_or_default().replace('T', " ").into(),
            s(q, "question").into(),
            s(q, "id").into(),
        ]);
    }
    emit(&table.render(&ctx.out));
    if ctx.out.human() {
        emit(&ctx.out.note("Answer with: loop inbox answer <issue number or id> \"…\"", 0));
    }
    Ok(())
}
