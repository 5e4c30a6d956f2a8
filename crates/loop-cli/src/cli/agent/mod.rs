//! `loop agent`: the runner. It claims ready issues, has an agent work each one in its own git
//! worktree, checks the result with the verify commands, pushes a branch, opens a pull request,
//! and reports back; or fails the attempt so the issue comes back for a retry.

mod child;
mod config;
mod git;
mod land;
mod limits;
mod profiles;
mod report;
mod work;

use std::path::PathBuf;
use std::str::FromStr;
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
      --pr-command 'gh pr create {draft} --head {branch} --base {base} --title {title} --body-file {body_file}'
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

One branch and one pull request per issue: when the remote already has the issue's branch (its
pull request came back with review comments or a red check, or an agent asked a question), the
run continues that branch, skips the baseline check, pushes onto it and opens no second PR; the
prompt (task-rework) carries the feedback. An agent that needs a decision asks
(`loop --token \"$LOOP_TOKEN\" inbox ask '…'`, or POST /api/sessions/$LOOP_SESSION_ID/questions):
its claim ends, the work so far is pushed to the branch unverified and without a PR, and the
issue waits until a person answers (loop inbox, the dashboard's inbox, or a PR comment).
Approved pull requests are landed by `loop agent land` (see its --help).

The agent's own report: Claude Code's final result event, or a last stdout line of JSON such as
{\"summary\": \"…\", \"model\": \"…\", \"tokens\": 1200, \"cost_usd\": 0.42}; else the last lines
of its output are the summary. Transcripts are kept up to 256 KiB (start and end).

Limits: --max-concurrent is a hard cap; --max-runs-per-hour and --max-cost-per-day are counted
from this agent name's sessions on the server (tick stops at the limit, run waits); an issue
whose last --max-attempts attempts failed is labelled needs-human-review and moved to the backlog;
run stops after --max-consecutive-failures failures in a row. At start, claims left open by an
earlier runner of the same name are released, and kept worktrees older than --keep-failed-for
are removed. An agent stopped by its provider's rate limit or usage window (Claude Code's and
Codex's messages) releases its issue without blame; the runner pauses until the reset it was
told (else 5 minutes). The agent's environment carries no push credential, and pushes to the
remote by name go nowhere: the runner pushes.

Every flag may live in .loop/agent.toml at the top of the repository, keyed by its name; flags
win over the file:
  agent = \"claude\"
  verify = [\"cargo test\", \"cargo clippy -- -D warnings\"]
  pr-command = \"gh pr create {draft} --head {branch} --base {base} --title {title} --body-file {body_file}\"
  max-concurrent = 2
  timeout = \"45m\"
  attempts = 1
  attempt-profiles = [\"fast\", \"codex\"]   # with attempts > 1: the attempts' profiles, in turn
  [profiles.fast]              # chosen by the claim's model hint, the issue's labels or type
  agent = \"claude\"
  model = \"haiku\"
  types = [\"signal\"]
  labels = [\"small\"]
  fallback = \"codex\"           # takes the claim when this one is rate-limited
  [profiles.codex]
  agent = \"codex\"

Exit codes (tick): 0 every run went well (or nothing was ready, or a budget is spent), 1 a run
failed or needs a person, 2 bad usage.";

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
    /// long-polls rather than sleeping (or, with --cron, runs a tick on a schedule).
    #[command(after_help = AGENT_EXAMPLES)]
    Run(RunnerArgs),
    /// The merge queue: land approved pull requests one at a time (rebased, re-verified,
    /// merged with --merge-command); a conflict or a red check goes back as rework.
    #[command(after_help = land::LAND_EXAMPLES)]
    Land(land::LandArgs),
    /// Remove worktrees kept from failed runs (--keep-failed) once they are older than
    /// --keep-failed-for; tick and run do it when they start.
    Gc(GcArgs),
}

#[derive(Args, Debug, Clone)]
pub struct GcArgs {
    /// The git checkout [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// How long a failed run's worktree is kept: 12h, 7d.
    #[arg(long, value_name = "DUR", default_value = "7d", value_parser = duration)]
    pub keep_failed_for: Duration,
}

/// The flags. Every one may also be set in `.loop/agent.toml` in the repository (its keys are
/// the flags' names: `agent = "claude"`, `verify = ["cargo test"]`, `max-concurrent = 2`…);
/// a flag wins over the file.
#[derive(Args, Debug, Clone, Default)]
pub struct RunnerArgs {
    /// The agent: a shell command run in the issue's worktree, or a preset: claude (Claude Code
    /// in print mode, stream-json output) or codex (`codex exec`).
    #[arg(long, value_name = "CMD")]
    pub agent: Option<String>,
    /// A command that must pass in the worktree after the agent (repeatable; all must pass).
    #[arg(long, value_name = "CMD")]
    pub verify: Vec<String>,
    /// Opens the pull request after the push: {branch}, {base}, {title}, {body_file} and {issue}
    /// are replaced (shell-quoted), and {draft} by --draft (nothing with --ready-pr). Without it
    /// the branch is pushed and no PR is opened.
    #[arg(long, value_name = "CMD")]
    pub pr_command: Option<String>,
    /// Open pull requests ready for review instead of as drafts ({draft} becomes nothing).
    #[arg(long)]
    pub ready_pr: bool,
    /// The agent's name (sent as X-Loop-Agent) [default: loop-agent@<host>]
    #[arg(long)]
    pub name: Option<String>,
    /// The git checkout to work from [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// The branch to start from and open PRs against [default: the remote's default branch]
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,
    /// The remote to fetch from and push to [default: origin]
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Only issues of this project (id).
    #[arg(long, value_name = "ID")]
    pub project: Option<String>,
    /// Issues worked at once, a hard cap [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub max_concurrent: Option<u16>,
    /// Time allowed per run (the agent, and each verify command): 90s, 30m, 2h [default: 30m]
    #[arg(long, value_name = "DUR", value_parser = duration)]
    pub timeout: Option<Duration>,
    /// An agent that prints nothing for this long is stalled and stopped [default: 5m]
    #[arg(long, value_name = "DUR", value_parser = duration)]
    pub stall_timeout: Option<Duration>,
    /// An issue whose last N attempts failed gets the label needs-human-review (the server's
    /// settings may name another) and goes back to the backlog, where it is not claimed until a
    /// person moves it [default: 2]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: Option<u32>,
    /// `run` stops (exit 1) after this many failed runs in a row [default: 3]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_consecutive_failures: Option<u32>,
    /// Claims per hour by this agent name, counted from the server's sessions (so a restart
    /// does not reset it); at the limit, tick stops and run waits.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_runs_per_hour: Option<u32>,
    /// Dollars per 24 hours, as the agent reports its cost (counted from the server's sessions);
    /// an agent that reports no cost is refused with this set.
    #[arg(long, value_name = "USD")]
    pub max_cost_per_day: Option<f64>,
    /// Keep the worktree of a failed run (its path is in the report).
    #[arg(long)]
    pub keep_failed: bool,
    /// How long a failed run's kept worktree stays before it is removed [default: 7d]
    #[arg(long, value_name = "DUR", value_parser = duration)]
    pub keep_failed_for: Option<Duration>,
    /// Agents per issue, each in its own worktree: the smallest change that passes the
    /// verify commands is pushed, the others are recorded with their results. An issue's
    /// `attempts:N` label overrides it [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=8))]
    pub attempts: Option<u32>,
    /// Agent profiles, from `[profiles.NAME]` in .loop/agent.toml only.
    #[arg(skip)]
    pub profiles: std::collections::BTreeMap<String, profiles::Profile>,
    /// With --attempts: the profiles the attempts run under, in turn (`attempt-profiles =
    /// ["fast", "deep"]` in .loop/agent.toml only) [default: each the claim's profile]
    #[arg(skip)]
    pub attempt_profiles: Vec<String>,
    /// run only: instead of waiting for work, run a tick on this schedule (five cron fields,
    /// UTC: "*/15 * * * *" is every quarter hour).
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
}

/// `90`, `90s`, `30m`, `2h`, `7d`.
pub(super) fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, ""), |i| s.split_at(i));
    let n: u64 = number.parse().map_err(|_| format!("{s:?} is not a duration: use 90s, 30m or 2h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?} is not a duration: use 90s, 30m or 2h")),
    };
    if secs == 0 {
        return Err("a duration must be at least 1s".into());
    }
    Ok(Duration::from_secs(secs))
}

pub async fn run(a: AgentArgs, ctx: &Ctx) -> Result<(), CliError> {
    let (args, keep_going) = match a.action {
        AgentAction::Tick(r) if r.cron.is_some() => {
            return Err(CliError::usage("--cron is for loop agent run: tick is one pass"));
        }
        AgentAction::Tick(r) => (r, false),
        AgentAction::Run(r) => (r, true),
        AgentAction::Gc(g) => return gc(g).await,
        AgentAction::Land(l) => return land::land(l, ctx).await,
    };
    let dir = args.repo.clone().unwrap_or_else(|| PathBuf::from("."));
    let top = top_of(&dir)
        .await
        .ok_or_else(|| CliError::usage(format!("{} is not a git checkout: give --repo DIR", dir.display())))?;
    let args = config::merge(args, &top).map_err(CliError::usage)?;
    let settings = settings(&args, ctx).await?;
    let budgets = limits::Budgets { runs_per_hour: args.max_runs_per_hour, cost_per_day: args.max_cost_per_day };
    if budgets.cost_per_day.is_some() && settings.agent == "codex" {
        return Err(CliError::usage(
            "--max-cost-per-day needs an agent that reports its cost; codex does not: drop the budget or use an agent that does",
        ));
    }
    let schedule = match &args.cron {
        Some(expr) => Some(croner::Cron::from_str(expr).map_err(|e| CliError::usage(format!("--cron {expr:?}: {e}")))?),
        None => None,
    };
    let api = ctx.api.clone().with_agent(&settings.name)?;
    // Sessions are recorded under the name the server gives this runner (under an agent token,
    // `<token>/<name>`): budgets and leftovers are counted under it.
    let settings = Settings { name: recorded_name(&api, &settings.name).await?, ..settings };
    release_leftovers(&api, &settings.name).await?;
    // The prompts of the project's issues carry its skills as the repository has them now.
    if let Some(project) = &args.project {
        let synced = super::skills::sync_repo(&ctx.api, project, &top).await?;
        eprintln!("loop agent: {}", super::skills::describe(&synced).replace('\n', "\nloop agent: "));
    }
    for dir in
        settings.repo.gc(args.keep_failed_for.unwrap_or(Duration::from_secs(7 * 86_400))).await.unwrap_or_default()
    {
        eprintln!("loop agent: removed the kept worktree {}", dir.display());
    }

    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        stopped().await;
        eprintln!("loop agent: stopping: no more claims; running agents are interrupted and their issues released");
        let _ = stop_tx.send(true);
    });

    let Some(schedule) = schedule else {
        let runner = Runner { settings, api, args, budgets, keep_going };
        return runner.pass(stop).await;
    };
    // On a schedule: a tick at each time it names, until stopped. A tick's failures are
    // reported and the schedule goes on.
    let runner = Runner { settings, api, args, budgets, keep_going: false };
    loop {
        let now = chrono::Utc::now();
        let next = schedule.find_next_occurrence(&now, false).map_err(|e| CliError::usage(format!("--cron: {e}")))?;
        let wait = (next - now).to_std().unwrap_or_default();
        eprintln!("loop agent: next tick at {}", next.format("%Y-%m-%d %H:%M UTC"));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wait_for(stop.clone()) => return Ok(()),
        }
        if let Err(e) = runner.pass(stop.clone()).await {
            eprintln!("loop agent: tick: {}", e.render(&ctx.conn, &[]));
        }
        if *stop.borrow() {
            return Ok(());
        }
    }
}

/// The top of the git checkout `dir` is in.
pub async fn top_of(dir: &std::path::Path) -> Option<PathBuf> {
    git::git(dir, &["rev-parse", "--show-toplevel"]).await.ok().map(PathBuf::from)
}

/// `loop agent gc`.
async fn gc(g: GcArgs) -> Result<(), CliError> {
    let dir = g.repo.unwrap_or_else(|| PathBuf::from("."));
    let top = top_of(&dir)
        .await
        .ok_or_else(|| CliError::usage(format!("{} is not a git checkout: give --repo DIR", dir.display())))?;
    let repo = git::Repo { dir: top, remote: String::new() };
    let removed = repo.gc(g.keep_failed_for).await.map_err(CliError::failed)?;
    for dir in &removed {
        println!("removed {}", dir.display());
    }
    if removed.is_empty() {
        println!("No kept worktree is older than {} s.", g.keep_failed_for.as_secs());
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
    let Some(agent) = args.agent.clone() else {
        return Err(CliError::usage(format!(
            "say which agent to run: --agent CMD (or agent = \"…\" in {})",
            config::FILE
        )));
    };
    let dir = args.repo.clone().unwrap_or_else(|| PathBuf::from("."));
    let repo = git::Repo::open(&dir, args.remote.as_deref().unwrap_or("origin")).await.map_err(CliError::usage)?;
    let base = match &args.base {
        Some(b) => b.clone(),
        None => repo.default_branch().await,
    };
    let name = args.name.clone().unwrap_or_else(|| format!("loop-agent@{}", host()));
    let profiles = profiles::Profiles::new(args.profiles.clone())
        .map_err(|e| CliError::usage(format!("{}: {e}", config::FILE)))?;
    if let Some(unknown) = args.attempt_profiles.iter().find(|p| !profiles.by_name.contains_key(*p)) {
        return Err(CliError::usage(format!("{}: attempt-profiles: there is no profile {unknown:?}", config::FILE)));
    }
    Ok(Settings {
        name,
        api_url: ctx.conn.url.clone(),
        repo,
        base,
        agent,
        verify: args.verify.clone(),
        pr_command: args.pr_command.clone(),
        timeout: args.timeout.unwrap_or(Duration::from_secs(30 * 60)),
        stall: args.stall_timeout.unwrap_or(Duration::from_secs(5 * 60)),
        keep_failed: args.keep_failed,
        ready_pr: args.ready_pr,
        attempts: args.attempts.unwrap_or(1),
        profiles,
        attempt_profiles: args.attempt_profiles.clone(),
    })
}

pub(super) fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The agent name this runner's claims are recorded under; a server without `/api/me` records
/// the name it sends.
async fn recorded_name(api: &Api, name: &str) -> Result<String, CliError> {
    match api.get("/api/me").await {
        Ok(me) => Ok(me["data"]["agentName"].as_str().unwrap_or(name).to_owned()),
        Err(CliError::Api(f)) if matches!(f.err, loop_client::ClientError::Api { status: 404, .. }) => {
            Ok(name.to_owned())
        }
        Err(e) => Err(e),
    }
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

/// What every worker shares.
struct Runner {
    settings: Settings,
    api: Api,
    args: RunnerArgs,
    budgets: limits::Budgets,
    keep_going: bool,
}

impl Runner {
    /// Every worker (--max-concurrent) until each is done: one claim each (tick), or until
    /// stopped (run).
    async fn pass(&self, stop: watch::Receiver<bool>) -> Result<(), CliError> {
        let workers = (0..self.args.max_concurrent.unwrap_or(1)).map(|_| self.worker(stop.clone()));
        let mut failed = 0;
        for r in futures_util::future::join_all(workers).await {
            failed += r?;
        }
        if failed > 0 {
            return Err(CliError::failed(format!("{failed} run(s) did not finish well: see the issues' comments")));
        }
        Ok(())
    }

    /// Claims and works issues one after another: once (`tick`), or until stopped. Returns how
    /// many runs failed.
    async fn worker(&self, stop: watch::Receiver<bool>) -> Result<u32, CliError> {
        let (s, api, args) = (&self.settings, &self.api, &self.args);
        let max_in_a_row = args.max_consecutive_failures.unwrap_or(3);
        let (mut failed, mut in_a_row) = (0, 0);
        loop {
            if *stop.borrow() {
                return Ok(failed);
            }
            if let Some((why, wait)) =
                limits::over_budget(api, &s.name, self.budgets, chrono::Utc::now().timestamp_millis()).await?
            {
                eprintln!("loop agent: over budget: {why}");
                if !self.keep_going {
                    return Ok(failed);
                }
                eprintln!("loop agent: waiting {} s for the budget to free up", wait.as_secs());
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = wait_for(stop.clone()) => return Ok(failed),
                }
            }
            let wait = if self.keep_going { 30 } else { 0 };
            let claim = tokio::select! {
                c = claim(api, args.project.as_deref(), wait) => c?,
                _ = wait_for(stop.clone()) => return Ok(failed),
            };
            let Some(claim) = claim else {
                if self.keep_going {
                    continue;
                }
                return Ok(failed);
            };
            eprintln!("loop agent: #{} {}: working", claim.number, claim.title);
            let (outcome, cost_reported) = work::work(s, api, &claim, stop.clone()).await;
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
                Outcome::Asked(question) => {
                    in_a_row = 0;
                    let first = question.lines().next().unwrap_or("");
                    println!("#{} {}: waiting for a person's answer: {first}", claim.number, claim.title);
                }
                Outcome::Paused(why, wait) => {
                    // Not the issue's fault: it is released, and nothing counts against it.
                    let wait = wait.unwrap_or(Duration::from_secs(300)).min(Duration::from_secs(6 * 3600));
                    println!("#{} {}: released: the agent is rate-limited", claim.number, claim.title);
                    eprintln!(
                        "loop agent: rate-limited ({}); pausing {} s",
                        why.lines().last().unwrap_or(""),
                        wait.as_secs()
                    );
                    if !self.keep_going {
                        return Ok(failed);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = wait_for(stop.clone()) => return Ok(failed),
                    }
                }
                Outcome::Failed(reason) | Outcome::NeedsHuman(reason) => {
                    failed += 1;
                    in_a_row += 1;
                    let what = if matches!(outcome, Outcome::Failed(_)) { "failed" } else { "needs a person" };
                    println!("#{} {}: {what}: {}", claim.number, claim.title, reason.lines().next().unwrap_or(""));
                    let max_attempts = args.max_attempts.unwrap_or(2);
                    if matches!(outcome, Outcome::Failed(_))
                        && let Some(what) = limits::trip_breaker(api, &claim.issue_id, max_attempts).await?
                    {
                        println!("#{} {}: {max_attempts} attempts failed: {what}", claim.number, claim.title);
                    }
                    if self.keep_going && in_a_row >= max_in_a_row {
                        return Err(CliError::failed(format!(
                            "{in_a_row} runs failed in a row (--max-consecutive-failures {max_in_a_row}): stopping; the last: {reason}"
                        )));
                    }
                }
            }
            let ran = matches!(outcome, Outcome::Done { .. } | Outcome::Failed(_));
            if self.budgets.cost_per_day.is_some() && !cost_reported && ran {
                return Err(CliError::failed(
                    "the agent reported no cost, so --max-cost-per-day cannot be kept: make it print a last line of JSON with cost_usd (see loop agent tick --help)",
                ));
            }
            if !self.keep_going {
                return Ok(failed);
            }
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
        model_hint: c["meta"]["model"].as_str().map(str::to_owned),
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
        assert_eq!(duration("7d").unwrap().as_secs(), 7 * 86_400);
    }

    #[test]
    fn cron_takes_five_fields_and_seconds_when_given() {
        use std::str::FromStr;
        let now = chrono::Utc::now();
        let quarter = croner::Cron::from_str("*/15 * * * *").unwrap();
        let next = quarter.find_next_occurrence(&now, false).unwrap();
        assert!((next - now).num_seconds() <= 15 * 60 && next.timestamp() % 900 == 0, "{next}");
        let every_second = croner::Cron::from_str("* * * * * *").unwrap();
        assert!((every_second.find_next_occurrence(&now, false).unwrap() - now).num_milliseconds() <= 1000);
        assert!(croner::Cron::from_str("every day").is_err());
    }
}
