//! `loop agent`: the runner. It claims ready issues, has an agent work each one in its own git
//! worktree, checks the result with the verify commands, pushes a branch, opens a pull request,
//! and reports back; or fails the attempt so the issue comes back for a retry.

mod child;
mod git;
mod report;
mod work;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;
use tokio::sync::watch;

use self::work::{Claim, Outcome, Settings};
use super::api::{Api, data, seg};
use super::{CliError, Ctx};

pub const AGENT_EXAMPLES: &str = "\
Examples:
  loop agent tick --agent claude --verify 'cargo test' \\
      --pr-command 'gh pr create --draft --head {branch} --base {base} --title {title} --body-file {body_file}'
  loop agent run --agent ./scripts/my-agent.sh --verify 'npm test' --max-concurrent 2

What a run does: claim the next ready issue; make a worktree and the branch loop/<number>-<slug>
from the remote's base; run the verify commands there first (a base that already fails them
stops the run for a person); run the agent with the prompt on stdin and in $LOOP_PROMPT_FILE,
and LOOP_API_URL, LOOP_TOKEN (the claim's scoped token, never the master key), LOOP_ISSUE_ID,
LOOP_ISSUE_NUMBER, LOOP_SESSION_ID and LOOP_WORKTREE in its environment; commit what it left
(trailers Loop-Issue and Loop-Session); run the verify commands again; push the branch (never
the base) and run --pr-command, whose first printed URL is the PR; report the issue done with
its commits, PR and summary. Any failure pushes nothing, fails the session with the reason, and
returns the issue to todo for a retry.

The agent's own report: Claude Code's final result event, or a last stdout line of JSON such as
{\"summary\": \"…\", \"model\": \"…\", \"tokens\": 1200, \"cost_usd\": 0.42}; else the last lines
of its output are the summary. Transcripts are kept up to 256 KiB (start and end).

Exit codes (tick): 0 every run went well (or nothing was ready), 1 a run failed or needs a
person, 2 bad usage.";

#[derive(Args, Debug)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub action: AgentAction,
}

#[derive(Subcommand, Debug)]
pub enum AgentAction {
    /// One pass: claim up to --max-concurrent issues, work them, report, exit.
    #[command(after_help = AGENT_EXAMPLES)]
    Tick(RunnerArgs),
    /// Keep going (claim, work, report, repeat) until SIGINT or SIGTERM; waits for work with
    /// long-polls rather than sleeping.
    #[command(after_help = AGENT_EXAMPLES)]
    Run(RunnerArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RunnerArgs {
    /// The agent: a shell command run in the issue's worktree, or a preset: claude (Claude Code
    /// in print mode, stream-json output) or codex (`codex exec`).
    #[arg(long, value_name = "CMD")]
    pub agent: String,
    /// A command that must pass in the worktree after the agent (repeatable; all must pass).
    #[arg(long, value_name = "CMD")]
    pub verify: Vec<String>,
    /// Opens the pull request after the push: {branch}, {base}, {title}, {body_file} and {issue}
    /// are replaced (shell-quoted). Without it the branch is pushed and no PR is opened.
    #[arg(long, value_name = "CMD")]
    pub pr_command: Option<String>,
    /// The agent's name (sent as X-Loop-Agent) [default: loop-agent@<host>]
    #[arg(long)]
    pub name: Option<String>,
    /// The git checkout to work from.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// The branch to start from and open PRs against [default: the remote's default branch]
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,
    /// The remote to fetch from and push to.
    #[arg(long, value_name = "NAME", default_value = "origin")]
    pub remote: String,
    /// Only issues of this project (id).
    #[arg(long, value_name = "ID")]
    pub project: Option<String>,
    /// Issues worked at once (a hard cap).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub max_concurrent: u16,
    /// Time allowed per run (the agent, and each verify command): 90s, 30m, 2h.
    #[arg(long, value_name = "DUR", default_value = "30m", value_parser = duration)]
    pub timeout: Duration,
    /// An agent that prints nothing for this long is stalled and stopped.
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = duration)]
    pub stall_timeout: Duration,
    /// `run` stops (exit 1) after this many failed runs in a row.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_consecutive_failures: u32,
    /// Keep the worktree of a failed run (its path is in the report).
    #[arg(long)]
    pub keep_failed: bool,
}

/// `90`, `90s`, `30m`, `2h`.
fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, ""), |i| s.split_at(i));
    let n: u64 = number.parse().map_err(|_| format!("{s:?} is not a duration: use 90s, 30m or 2h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?} is not a duration: use 90s, 30m or 2h")),
    };
    if secs == 0 {
        return Err("a duration must be at least 1s".into());
    }
    Ok(Duration::from_secs(secs))
}

pub async fn run(a: AgentArgs, ctx: &Ctx) -> Result<(), CliError> {
    let (args, keep_going) = match a.action {
        AgentAction::Tick(r) => (r, false),
        AgentAction::Run(r) => (r, true),
    };
    let settings = settings(&args, ctx).await?;
    let api = ctx.api.clone().with_agent(&settings.name)?;
    release_leftovers(&api, &settings.name).await?;

    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        stopped().await;
        eprintln!("loop agent: stopping: no more claims; running agents are interrupted and their issues released");
        let _ = stop_tx.send(true);
    });

    let workers = (0..args.max_concurrent).map(|_| worker(&settings, &api, &args, keep_going, stop.clone()));
    let results = futures_util::future::join_all(workers).await;
    let mut failed = 0;
    for r in results {
        failed += r?;
    }
    if failed > 0 {
        return Err(CliError::failed(format!("{failed} run(s) did not finish well: see the issues' comments")));
    }
    Ok(())
}

/// SIGINT or SIGTERM.
async fn stopped() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

async fn settings(args: &RunnerArgs, ctx: &Ctx) -> Result<Settings, CliError> {
    let repo = git::Repo::open(&args.repo, &args.remote).await.map_err(CliError::usage)?;
    let base = match &args.base {
        Some(b) => b.clone(),
        None => repo.default_branch().await,
    };
    let name = args.name.clone().unwrap_or_else(|| format!("loop-agent@{}", host()));
    Ok(Settings {
        name,
        api_url: ctx.conn.url.clone(),
        repo,
        base,
        agent: args.agent.clone(),
        verify: args.verify.clone(),
        pr_command: args.pr_command.clone(),
        timeout: args.timeout,
        stall: args.stall_timeout,
        keep_failed: args.keep_failed,
    })
}

fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Sessions of this agent still open from a runner that crashed: their issues go back.
async fn release_leftovers(api: &Api, name: &str) -> Result<(), CliError> {
    let open = api.get(&format!("/api/sessions?agent={}&open=true&limit=200", seg(name))).await?;
    for session in open["data"].as_array().into_iter().flatten() {
        let id = session["id"].as_str().unwrap_or_default();
        let body = serde_json::json!({ "summary": "released by loop agent at start: the runner that held it stopped" });
        api.post(&format!("/api/sessions/{}/release", seg(id)), body).await?;
        eprintln!("loop agent: released session {id} left open by an earlier run of {name}");
    }
    Ok(())
}

/// Claims and works issues one after another: once (`tick`), or until stopped. Returns how
/// many runs failed.
async fn worker(
    s: &Settings,
    api: &Api,
    args: &RunnerArgs,
    keep_going: bool,
    stop: watch::Receiver<bool>,
) -> Result<u32, CliError> {
    let (mut failed, mut in_a_row) = (0, 0);
    loop {
        if *stop.borrow() {
            return Ok(failed);
        }
        let wait = if keep_going { 30 } else { 0 };
        let claim = tokio::select! {
            c = claim(api, args.project.as_deref(), wait) => c?,
            _ = wait_for(stop.clone()) => return Ok(failed),
        };
        let Some(claim) = claim else {
            if keep_going {
                continue;
            }
            return Ok(failed);
        };
        eprintln!("loop agent: #{} {}: working", claim.number, claim.title);
        let outcome = work::work(s, api, &claim, stop.clone()).await;
        match &outcome {
            Outcome::Done { branch, pr_url } => {
                in_a_row = 0;
                let pr = pr_url.as_deref().map(|u| format!(", {u}")).unwrap_or_default();
                println!("#{} {}: done ({branch}{pr})", claim.number, claim.title);
            }
            Outcome::Stopped => {
                println!("#{} {}: released (stopping)", claim.number, claim.title);
                return Ok(failed);
            }
            Outcome::Failed(reason) | Outcome::NeedsHuman(reason) => {
                failed += 1;
                in_a_row += 1;
                let what = if matches!(outcome, Outcome::Failed(_)) { "failed" } else { "needs a person" };
                println!("#{} {}: {what}: {}", claim.number, claim.title, reason.lines().next().unwrap_or(""));
                if keep_going && in_a_row >= args.max_consecutive_failures {
                    return Err(CliError::failed(format!(
                        "{in_a_row} runs failed in a row (--max-consecutive-failures {}): stopping; the last: {reason}",
                        args.max_consecutive_failures
                    )));
                }
            }
        }
        if !keep_going {
            return Ok(failed);
        }
    }
}

async fn wait_for(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Claims the next ready issue (waiting up to `wait` seconds for one). A new Idempotency-Key
/// per claim: a retried request gets this claim back, never a second issue.
async fn claim(api: &Api, project: Option<&str>, wait: u64) -> Result<Option<Claim>, CliError> {
    let key = format!("loop-agent-{}", uuid_like());
    let api = api.clone().with_header("Idempotency-Key", &key)?;
    let mut path = format!("/api/dispatch/next?wait={wait}");
    if let Some(p) = project {
        path.push_str(&format!("&projectId={}", seg(p)));
    }
    let body = api.get(&path).await?;
    if body.is_null() {
        return Ok(None);
    }
    let c = data(body);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let lease = c["session"]["leaseExpiresAt"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let left = lease.map(|t| (t.timestamp_millis() - chrono::Utc::now().timestamp_millis()).max(3000) as u64);
    Ok(Some(Claim {
        issue_id: text(&c["issue"]["id"]),
        number: c["issue"]["number"].as_i64().unwrap_or_default(),
        title: text(&c["issue"]["title"]),
        session_id: text(&c["session"]["id"]),
        token: text(&c["token"]),
        prompt: text(&c["prompt"]),
        heartbeat_every: Duration::from_millis(left.unwrap_or(180_000) / 3),
    }))
}

fn uuid_like() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration("90").unwrap().as_secs(), 90);
        assert_eq!(duration("90s").unwrap().as_secs(), 90);
        assert_eq!(duration("30m").unwrap().as_secs(), 1800);
        assert_eq!(duration("2h").unwrap().as_secs(), 7200);
        assert!(duration("0s").is_err());
        assert!(duration("5 minutes").unwrap_err().contains("90s, 30m or 2h"));
    }
}
