//! The lease of a claim, from a shell: `loop heartbeat`, `loop release`, `loop fail`, and
//! `loop review` of the prompt it came with (what `loop prime` tells agents to run); and
//! `loop sessions show`, what ran in a session.

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

#[derive(Args, Debug)]
pub struct SessionsArgs {
    #[command(subcommand)]
    pub action: SessionsAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum SessionsAction {
    /// A session: its claim, outcome and report, and what its runner recorded (the agent and
    /// its exit, verify commands, branch, commits, PR, model, tokens, cost).
    Show(ShowSessionArgs),
}

#[derive(Args, Debug)]
pub struct ShowSessionArgs {
    /// The session id (in `loop show <issue>` and `loop dispatch`).
    pub session: String,
    /// Print the agent's transcript instead (as `loop agent` kept it).
    #[arg(long)]
    pub transcript: bool,
}

/// `loop sessions show`.
pub async fn sessions(a: SessionsArgs, ctx: &Ctx) -> Result<(), CliError> {
    let SessionsAction::Show(a) = a.action;
    let path = format!("/api/sessions/{}", seg(&a.session));
    let session = data(ctx.api.get(&path).await?);
    let record = match ctx.api.get(&format!("{path}/record")).await {
        Ok(r) => data(r),
        Err(CliError::Api(f)) if f.err.status() == Some(404) => Value::Null,
        Err(e) => return Err(e),
    };
    if a.transcript {
        return match record["transcript"].as_str() {
            Some(t) if ctx.out.mode != Mode::Json => {
                print!("{t}");
                Ok(())
            }
            Some(_) => {
                emit(&output::json(&json!({ "transcript": record["transcript"] })));
                Ok(())
            }
            None => Err(CliError::failed(format!("session {} has no transcript: no runner recorded one", a.session))),
        };
    }
    match ctx.out.mode {
        Mode::Json => emit(&output::json(&json!({ "session": session, "record": record }))),
        Mode::Plain => emit(&format!("{}\t{}\t{}", s(&session, "id"), s(&session, "agent"), s(&session, "outcome"))),
        Mode::Human => emit(&describe(&session, &record, &ctx.out)),
    }
    Ok(())
}

fn describe(session: &Value, record: &Value, out: &output::Out) -> String {
    let mut f = output::Fields::new();
    f.add("session", s(session, "id"));
    f.add("agent", s(session, "agent"));
    f.add("claimed", s(session, "claimedAt"));
    f.add("outcome", if session["outcome"].is_null() { "open".to_owned() } else { s(session, "outcome").to_owned() });
    for (key, label) in [("tokens", "tokens"), ("costUsd", "cost (USD)"), ("durationMs", "duration (ms)")] {
        if !session[key].is_null() {
            f.add(label, session[key].to_string());
        }
    }
    if let Some(summary) = session["summary"].as_str() {
        f.add("summary", summary.lines().next().unwrap_or_default());
    }
    let a = &record["attestation"];
    if a.is_object() {
        if let Some(agent) = a["agent"].as_object() {
            let model = agent.get("model").and_then(Value::as_str).map(|m| format!(", model {m}")).unwrap_or_default();
            f.add(
                "ran",
                format!(
                    "`{}`: {}{model}",
                    agent["command"].as_str().unwrap_or(""),
                    agent["result"].as_str().unwrap_or("")
                ),
            );
        }
        for check in a["verify"].as_array().into_iter().flatten() {
            f.add(
                "verify",
                format!("`{}`: {}", check["command"].as_str().unwrap_or(""), check["result"].as_str().unwrap_or("")),
            );
        }
        if let Some(branch) = a["branch"].as_str() {
            f.add("branch", branch);
        }
        for c in a["commits"].as_array().into_iter().flatten() {
            let sha = c["sha"].as_str().unwrap_or("");
            f.add("commit", format!("{} {}", &sha[..sha.len().min(12)], c["subject"].as_str().unwrap_or("")));
        }
        if let Some(pr) = a["pullRequest"].as_str() {
            f.add("pull request", pr);
        }
        if record["transcript"].is_string() {
            f.add("transcript", format!("loop sessions show {} --transcript", s(session, "id")));
        }
    }
    f.render(out)
}
