//! The lease of a claim, from a shell: `loop heartbeat`, `loop release`, `loop fail`, and
//! `loop review` of the prompt it came with (what `loop prime` tells agents to run).

use clap::Args;
use serde_json::{Value, json};

use super::api::{data, seg};
use super::output::{self, Mode, emit, s};
use super::{CliError, Ctx};

#[derive(Args, Debug)]
pub struct SessionArg {
    /// The claim's session id (printed by `loop dispatch`).
    pub session: String,
}

#[derive(Args, Debug)]
pub struct EndArgs {
    /// The claim's session id (printed by `loop dispatch`).
    pub session: String,
    /// Why (kept as the session's summary, and shown to the next agent).
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Args, Debug)]
pub struct ReviewArgs {
    /// The claim's session id (printed by `loop dispatch`): the review is of its prompt.
    pub session: String,
    /// How clear the instructions were, 1–5.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub clarity: u8,
    /// Whether the prompt said everything needed, 1–5.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub completeness: u8,
    /// How well the prompt fit the issue, 1–5.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub relevance: u8,
    /// What to change in the prompt.
    #[arg(long)]
    pub feedback: Option<String>,
}

/// Renews the lease.
pub async fn heartbeat(a: SessionArg, ctx: &Ctx) -> Result<(), CliError> {
    let session = data(ctx.api.post_empty(&format!("/api/sessions/{}/heartbeat", seg(&a.session))).await?);
    show(ctx, &session, &format!("Lease renewed until {}", s(&session, "leaseExpiresAt")));
    Ok(())
}

/// Ends the session `released` (`fail`: `failed`); the issue returns to the queue.
pub async fn end(a: EndArgs, action: &str, ctx: &Ctx) -> Result<(), CliError> {
    if action == "fail" && a.reason.is_none() {
        return Err(CliError::usage("say what went wrong: --reason \"...\""));
    }
    let body = a.reason.as_ref().map_or(json!({}), |r| json!({ "summary": r }));
    let session = data(ctx.api.post(&format!("/api/sessions/{}/{action}", seg(&a.session)), body).await?);
    show(
        ctx,
        &session,
        &format!("Session {} ended ({}); the issue is back in the queue", a.session, s(&session, "outcome")),
    );
    Ok(())
}

/// Reviews the prompt the session's claim came with.
pub async fn review(a: ReviewArgs, ctx: &Ctx) -> Result<(), CliError> {
    let session = data(ctx.api.get(&format!("/api/sessions/{}", seg(&a.session))).await?);
    let Some(version) = session["templateVersionId"].as_str() else {
        return Err(CliError::usage("this claim came without a prompt: there is nothing to review"));
    };
    let mut body = json!({
        "versionId": version, "issueId": session["issueId"],
        "clarity": a.clarity, "completeness": a.completeness, "relevance": a.relevance,
    });
    if let Some(f) = &a.feedback {
        body["feedback"] = json!(f);
    }
    let review = data(ctx.api.post("/api/prompt-reviews", body).await?);
    show(ctx, &review, "Review recorded: thank you; reviews are how the prompts improve");
    Ok(())
}

fn show(ctx: &Ctx, value: &Value, sentence: &str) {
    match ctx.out.mode {
        Mode::Json => emit(&output::json(value)),
        Mode::Plain => emit(s(value, "id")),
        Mode::Human => emit(sentence),
    }
}
