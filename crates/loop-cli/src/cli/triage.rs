//! Signals come in; triage decides: accept into the backlog (or straight to todo), or decline.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::Ctx;
use super::api::{data, issue_path};
use super::args::{IssueRef, Severity, parse_object};
use super::error::{About, CliError};
use super::issues::{ListArgs, issue_title, list, post_comment, print_issue_result};
use super::output::{self, Mode, emit, int, s};

pub const SIGNAL_EXAMPLES: &str = "\
Examples:
  loop signal \"Checkout errors doubled since 14:00\"
  loop signal \"p95 latency 2.3s\" --source posthog --type latency --severity high --project Web
  loop signal \"Disk 91% full\" --payload '{\"host\": \"db-1\", \"percent\": 91}'";

#[derive(Args, Debug)]
pub struct SignalArgs {
    /// What was observed (becomes payload.message and the issue title).
    pub text: String,
    /// Where it came from.
    #[arg(long, default_value = "manual")]
    pub source: String,
    /// How serious: low, medium, high, critical (sets the issue's priority).
    #[arg(long, value_enum, default_value = "medium")]
    pub severity: Severity,
    /// What kind of signal (free text, e.g. error_rate).
    #[arg(long = "type", short = 't', default_value = "manual-signal")]
    pub signal_type: String,
    /// Project (name or id).
    #[arg(long, short)]
    pub project: Option<String>,
    /// More data for the payload, a JSON object (merged with {"message": TEXT}).
    #[arg(long, value_parser = parse_object, value_name = "JSON")]
    pub payload: Option<Value>,
    /// The source's own id for this event.
    #[arg(long)]
    pub source_id: Option<String>,
}

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  loop triage                              what is waiting\n  \
                  loop triage accept 42                    into the backlog\n  \
                  loop triage accept 42 --todo             straight into the dispatch queue\n  \
                  loop triage decline 43 duplicate of #42  canceled, with the reason as a comment"
)]
pub struct TriageArgs {
    #[command(subcommand)]
    pub action: Option<TriageAction>,
    #[command(flatten)]
    pub list: TriageList,
}

/// Which part of the triage queue to show.
#[derive(Args, Debug)]
pub struct TriageList {
    /// Only issues in this project (name or id).
    #[arg(long, short)]
    pub project: Option<String>,
    /// How many to show (1–200).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub limit: u32,
    /// How many to skip.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
}

#[derive(Subcommand, Debug)]
pub enum TriageAction {
    /// Show the triage queue (the default).
    #[command(visible_alias = "ls")]
    List(TriageList),
    /// Accept an issue: into the backlog, or with --todo straight into the dispatch queue.
    Accept {
        /// Issue number (42 or #42) or id.
        issue: IssueRef,
        /// Make it todo (dispatchable now) instead of backlog.
        #[arg(long)]
        todo: bool,
    },
    /// Snooze an issue: it leaves the triage queue until the time given, then comes back.
    #[command(after_help = "Examples:\n  loop triage snooze 42 --until 3d\n  loop triage snooze 42 --until 2026-12-24")]
    Snooze {
        /// Issue number (42 or #42) or id.
        issue: IssueRef,
        /// When it comes back: a duration from now (12h, 3d, 2w), a day (2026-12-24) or an
        /// RFC 3339 time.
        #[arg(long, value_name = "WHEN")]
        until: String,
    },
    /// Fold an issue into the one it repeats: linked as a duplicate, its signal occurrences
    /// counted there, and closed.
    Duplicate {
        /// The duplicate (number or id).
        issue: IssueRef,
        /// The issue it repeats (number or id).
        #[arg(long)]
        of: IssueRef,
    },
    /// Decline an issue: it is canceled, with the reason as a comment.
    Decline {
        /// Issue number (42 or #42) or id.
        issue: IssueRef,
        /// Why (added as a comment).
        #[arg(num_args = 0..)]
        reason: Vec<String>,
    },
}

pub async fn signal(a: SignalArgs, ctx: &Ctx) -> Result<(), CliError> {
    let mut payload = a.payload.clone().unwrap_or_else(|| json!({}));
    payload["message"] = json!(a.text);
    // The typed text is the title (the server would otherwise name it "[source] type: text").
    let mut body = json!({
        "source": a.source,
        "type": a.signal_type,
        "severity": a.severity.as_str(),
        "title": a.text,
        "payload": payload,
    });
    if let Some(p) = &a.project {
        body["projectId"] = json!(ctx.api.project_id(p).await?);
    }
    if let Some(id) = &a.source_id {
        body["sourceId"] = json!(id);
    }
    let result = data(ctx.api.post("/api/signals", body).await?);
    let issue = &result["issue"];
    match ctx.out.mode {
        Mode::Json => emit(&output::json(&result)),
        Mode::Plain => {
            emit(&format!("{}\t{}\t{}", s(&result["signal"], "id"), int(issue, "number").unwrap_or(0), s(issue, "id")))
        }
        Mode::Human => {
            let n = int(issue, "number").map(|n| n.to_string()).unwrap_or_default();
            emit(&format!(
                "Signal recorded: {} ({})\n{}",
                issue_title(issue, &ctx.out),
                s(issue, "status"),
                ctx.out.note(
                    &format!(
                        "Accept it: loop triage accept {n}   (--todo to queue it now) · decline: loop triage decline {n} <reason>"
                    ),
                    2
                )
            ));
        }
    }
    Ok(())
}

pub async fn run(a: TriageArgs, ctx: &Ctx) -> Result<(), CliError> {
    match a.action {
        None => show(a.list, ctx).await,
        Some(TriageAction::List(l)) => show(l, ctx).await,
        Some(TriageAction::Accept { issue, todo }) => accept(&issue, todo, ctx).await,
        Some(TriageAction::Decline { issue, reason }) => decline(&issue, reason.join(" "), ctx).await,
        Some(TriageAction::Snooze { issue, until }) => snooze(&issue, &until, ctx).await,
        Some(TriageAction::Duplicate { issue, of }) => duplicate(&issue, &of, ctx).await,
    }
}

/// "3d", "12h", "2w" from now, a day, or an RFC 3339 time, as the API's timestamp.
fn when(raw: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String, CliError> {
    let raw = raw.trim();
    let hours = |n: &str, per: i64| n.parse::<i64>().ok().filter(|n| *n > 0).map(|n| n * per);
    let relative = match raw.char_indices().last() {
        Some((i, 'h')) => hours(&raw[..i], 1),
        Some((i, 'd')) => hours(&raw[..i], 24),
        Some((i, 'w')) => hours(&raw[..i], 24 * 7),
        _ => None,
    };
    if let Some(h) = relative {
        return Ok((now + chrono::Duration::hours(h)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    match loop_core::metrics::Period::parse_time("until", raw) {
        Ok(t) => Ok(t.to_string()),
        Err(_) => Err(CliError::Usage(format!(
            "--until {raw:?}: expected a duration from now (12h, 3d, 2w), a day (2026-12-24) or an RFC 3339 time"
        ))),
    }
}

async fn snooze(r: &IssueRef, until: &str, ctx: &Ctx) -> Result<(), CliError> {
    let until = when(until, chrono::Utc::now())?;
    let issue = data(ctx.api.patch(&issue_path(r), json!({ "notBefore": until })).await.about(r.label())?);
    let back = match issue["notBefore"].as_str() {
        Some(t) => format!("until {t}; it comes back to {} then", s(&issue, "status")),
        None => "not at all: that time has passed".to_owned(),
    };
    print_issue_result(&issue, format!("Snoozed {} {back}", issue_title(&issue, &ctx.out)), "", &ctx.out);
    Ok(())
}

async fn duplicate(r: &IssueRef, of: &IssueRef, ctx: &Ctx) -> Result<(), CliError> {
    let original = ctx.api.issue(of).await?;
    let body = json!({ "of": s(&original, "id") });
    let issue = data(ctx.api.post(&format!("{}/duplicate", issue_path(r)), body).await.about(r.label())?);
    let what = format!(
        "Folded {} into {} (canceled as a duplicate)",
        issue_title(&issue, &ctx.out),
        issue_title(&original, &ctx.out)
    );
    print_issue_result(&issue, what, "", &ctx.out);
    Ok(())
}

async fn show(l: TriageList, ctx: &Ctx) -> Result<(), CliError> {
    // Snoozed issues come back by themselves; until then they are out of the queue.
    let args = ListArgs {
        status: vec![super::args::StatusArg::Triage],
        waiting: Some(false),
        project: l.project,
        limit: l.limit,
        offset: l.offset,
        ..ListArgs::default()
    };
    list(args, ctx).await
}

async fn accept(r: &IssueRef, todo: bool, ctx: &Ctx) -> Result<(), CliError> {
    let current = ctx.api.issue(r).await?;
    let status = s(&current, "status");
    if status != "triage" {
        return Err(CliError::failed(format!(
            "{} is {status}, not in triage: change it with loop update {} --status <status>",
            r.label(),
            r.short().trim_start_matches('#')
        )));
    }
    let to = if todo { "todo" } else { "backlog" };
    let issue = data(ctx.api.patch(&issue_path(r), json!({ "status": to })).await.about(r.label())?);
    let n = int(&issue, "number").map(|n| n.to_string()).unwrap_or_default();
    let hint = if todo {
        "It is in the dispatch queue: loop next".to_owned()
    } else {
        format!("When it is ready for an agent: loop update {n} --status todo")
    };
    print_issue_result(
        &issue,
        format!("Accepted {} into {to}", issue_title(&issue, &ctx.out)),
        &ctx.out.note(&hint, 2),
        &ctx.out,
    );
    Ok(())
}

async fn decline(r: &IssueRef, reason: String, ctx: &Ctx) -> Result<(), CliError> {
    let current = ctx.api.issue(r).await?;
    let id = s(&current, "id").to_owned();
    let issue = data(ctx.api.patch(&issue_path(r), json!({ "status": "canceled" })).await.about(r.label())?);
    let reason = reason.trim();
    if !reason.is_empty() {
        post_comment(&ctx.api, &id, &format!("Declined in triage: {reason}"), None).await?;
    }
    let why = if reason.is_empty() { String::new() } else { format!(": {reason}") };
    print_issue_result(&issue, format!("Declined {} (canceled){why}", issue_title(&issue, &ctx.out)), "", &ctx.out);
    Ok(())
}
