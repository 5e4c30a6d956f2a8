//! One claimed issue, start to finish: a fresh worktree, the verify commands on the base, the
//! agent, a commit of what it left, the verify commands again, the push and the pull request,
//! and the report. Nothing is pushed unless every verify command passed.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};

use super::child::{self, Ending, Finished};
use super::git::{self, Repo};
use super::profiles::{self, Choice, Profiles};
use super::report::{self, AgentReport};
use crate::cli::api::{Api, seg};

/// How the runner works, the same for every issue.
pub struct Settings {
    pub name: String,
    pub api_url: String,
    pub repo: Repo,
    pub base: String,
    pub agent: String,
    pub verify: Vec<String>,
    pub pr_command: Option<String>,
    pub timeout: Duration,
    pub stall: Duration,
    pub keep_failed: bool,
    /// PRs open ready for review, not as drafts.
    pub ready_pr: bool,
    /// Agents per issue, each in its own worktree; the smallest verified change is pushed.
    pub attempts: u32,
    pub profiles: Profiles,
    /// The profiles several attempts run under, in turn (else each runs the claim's profile).
    pub attempt_profiles: Vec<String>,
}

/// An issue this runner holds.
#[derive(Debug, Clone)]
pub struct Claim {
    pub issue_id: String,
    pub number: i64,
    pub title: String,
    pub session_id: String,
    pub token: String,
    pub prompt: String,
    /// How often to renew the lease.
    pub heartbeat_every: Duration,
    /// The model the server suggests for the claim, if any.
    pub model_hint: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Verified, pushed, reported done.
    Done { branch: String, pr_url: Option<String> },
    /// The attempt failed; the issue is back in `todo` for a retry.
    Failed(String),
    /// Not the agent's fault (a broken base, git trouble): released, for a person to look at.
    NeedsHuman(String),
    /// The agent's provider rate-limited it: released, not the issue's fault; the runner waits
    /// this long (when it was told) before the next claim.
    Paused(String, Option<Duration>),
    /// The runner is stopping: released.
    Stopped,
    /// The agent asked a person a question (its session ended with it): the work so far is
    /// pushed to the issue's branch, where the next run continues once it is answered.
    Asked(String),
}

/// What the issue has from earlier runs: its pull request (number and URL) and that pull
/// request's branch, and the commits reported so far.
#[derive(Debug, Default)]
pub struct Prior {
    pub pr: Option<(u64, String)>,
    pub branch: Option<String>,
    pub commits: Vec<Value>,
    /// Its pending rework includes a conflict with the base (found by the merge queue).
    pub conflict: bool,
    /// Its type and labels choose its profile; a label `attempts:N` asks for N attempts.
    pub issue_type: String,
    pub labels: Vec<String>,
}

impl Prior {
    /// The attempts the issue's `attempts:N` label asks for.
    fn attempts(&self) -> Option<u32> {
        self.labels.iter().find_map(|l| l.strip_prefix("attempts:")?.trim().parse().ok())
    }
}

impl Prior {
    /// Read from the issue; an issue that cannot be read has nothing to continue.
    async fn of(api: &Api, issue_id: &str) -> Prior {
        let Ok(body) = api.get(&format!("/api/issues/{}", seg(issue_id))).await else { return Prior::default() };
        let issue = &body["data"];
        let commits = issue["commits"].as_array().cloned().unwrap_or_default();
        let issue_type = issue["type"].as_str().unwrap_or_default().to_owned();
        let labels = issue["labels"].as_array().into_iter().flatten();
        let labels: Vec<String> = labels.filter_map(|l| l["name"].as_str().map(str::to_owned)).collect();
        // A merged pull request is finished: new work on the issue gets a new one.
        let open = issue["mergedAt"].is_null().then(|| issue["pullRequests"].as_array()?.last().cloned()).flatten();
        let Some(pr) = open else { return Prior { commits, issue_type, labels, ..Prior::default() } };
        let rework = api.get(&format!("/api/issues/{}/rework", seg(issue_id))).await.unwrap_or_default();
        let conflict = rework["data"].as_array().into_iter().flatten().any(|r| r["kind"] == "conflict");
        Prior {
            pr: pr["url"].as_str().map(|u| (pr["number"].as_u64().unwrap_or(0), u.to_owned())),
            branch: pr["branch"].as_str().map(str::to_owned),
            commits,
            conflict,
            issue_type,
            labels,
        }
    }
}

/// Worktrees are made one at a time: git locks its own files while it adds one.
static WORKTREES: Mutex<()> = Mutex::const_new(());

/// What the agent's environment does not get: the master key (it gets the claim's scoped
/// token instead) and the credentials a push could use. The runner pushes; the agent edits.
const SECRETS: [&str; 8] = [
    "LOOP_API_KEY",
    "LOOP_API_TOKEN",
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "SSH_AUTH_SOCK",
    "GIT_SSH_COMMAND",
];

/// Works `claim` and reports the outcome to the server; also says whether the agent reported
/// its cost.
pub async fn work(s: &Settings, api: &Api, claim: &Claim, stop: watch::Receiver<bool>) -> (Outcome, bool) {
    let heartbeat = tokio::spawn(keep_alive(api.clone(), claim.session_id.clone(), claim.heartbeat_every));
    let prior = Prior::of(api, &claim.issue_id).await;
    // One branch and one pull request per issue: a rework or an answered question continues
    // the branch the pull request (or the question) left.
    let branch = prior.branch.clone().unwrap_or_else(|| git::branch_name(claim.number, &claim.title));
    let attempts = prior.attempts().unwrap_or(s.attempts).clamp(1, 8);
    let issue = profiles::Issue {
        issue_type: &prior.issue_type,
        labels: &prior.labels,
        model_hint: claim.model_hint.as_deref(),
    };
    let choice = s.profiles.choose(&s.agent, &issue);
    let job = Job { s, api, claim, prior: &prior, branch: &branch, stop: stop.clone() };
    let tries = (1..=attempts).map(|k| {
        let local = if attempts == 1 { branch.clone() } else { format!("{branch}-attempt-{k}") };
        let turn = s.attempt_profiles.get((k as usize - 1) % s.attempt_profiles.len().max(1));
        let choice = match turn.and_then(|name| s.profiles.named(&s.agent, name)) {
            Some(named) if attempts > 1 => named,
            _ => choice.clone(),
        };
        try_profiles(&job, local, choice)
    });
    let mut tries = futures_util::future::join_all(tries).await;
    let chosen = smallest_verified(&tries).await;
    let summary = (attempts > 1).then(|| attempts_summary(&tries, chosen));
    // The verified attempt chosen, else the most telling ending (stopping, a question, a rate
    // limit, a person needed, a failure): its record becomes the run's.
    let rank = |t: &Try| match &t.made {
        Err(Outcome::Stopped) => 0,
        Err(Outcome::Asked(_)) => 1,
        Err(Outcome::Paused(..)) => 2,
        Err(Outcome::NeedsHuman(_)) => 3,
        _ => 4,
    };
    let i = chosen.unwrap_or_else(|| (0..tries.len()).min_by_key(|&i| rank(&tries[i])).unwrap_or(0));
    let mut record = std::mem::replace(&mut tries[i].record, Record::new(s, &branch));
    let outcome = match (&tries[i].made, &tries[i].dir) {
        (Ok(()), Some(dir)) => deliver(s, claim, &prior, &branch, dir, &mut record, stop).await,
        (Err(ended), _) => ended.clone(),
        (Ok(()), None) => Outcome::NeedsHuman("a verified attempt lost its worktree".into()),
    };
    if let Some((lines, facts)) = summary {
        record.lines.extend(lines);
        record.facts.insert("attempts".into(), facts);
    }
    for t in &tries {
        let Some(dir) = &t.dir else { continue };
        if matches!(outcome, Outcome::Done { .. }) || !s.keep_failed {
            s.repo.remove(dir).await;
        } else {
            record.line(format!("worktree kept: {}", dir.display()));
        }
    }
    heartbeat.abort();
    if let Err(e) = report(api, claim, &prior, &outcome, &record).await {
        tracing::warn!(target: "loop::agent", issue = claim.number, error = %e, "cannot report the outcome");
        eprintln!("loop agent: #{}: cannot report the outcome: {e}", claim.number);
    }
    (outcome, record.agent.cost_usd.is_some())
}

/// One attempt: its worktree, how far it got (`Ok` when verified), what ran, and the profile
/// it ran under.
struct Try {
    made: Result<(), Outcome>,
    record: Record,
    dir: Option<std::path::PathBuf>,
    start: String,
    choice: Choice,
}

/// What every attempt at one claim shares.
struct Job<'a> {
    s: &'a Settings,
    api: &'a Api,
    claim: &'a Claim,
    prior: &'a Prior,
    /// The issue's branch, pushed from the chosen attempt.
    branch: &'a str,
    stop: watch::Receiver<bool>,
}

/// One attempt under `choice`, and under its fallbacks while its agent is rate-limited.
async fn try_profiles(job: &Job<'_>, local: String, mut choice: Choice) -> Try {
    let (s, claim) = (job.s, job.claim);
    let mut tried = vec![];
    loop {
        let t = one_try(job, &local, choice.clone()).await;
        let next = s.profiles.fallback(&s.agent, &choice).filter(|n| !tried.contains(&n.profile));
        match (&t.made, next) {
            (Err(Outcome::Paused(why, _)), Some(next)) => {
                eprintln!(
                    "loop agent: #{}: profile {} is rate-limited ({}); trying {}",
                    claim.number,
                    choice.profile,
                    why.lines().last().unwrap_or(""),
                    next.profile
                );
                if let Some(dir) = &t.dir {
                    s.repo.remove(dir).await;
                }
                tried.push(choice.profile);
                choice = next;
            }
            _ => return t,
        }
    }
}

async fn one_try(job: &Job<'_>, local: &str, choice: Choice) -> Try {
    let (s, branch) = (job.s, job.branch);
    let mut record = Record::new(s, branch);
    if choice.profile != "default" {
        record.line(format!(
            "profile: {} ({}{})",
            choice.profile,
            choice.agent,
            choice.model.as_deref().map(|m| format!(", model {m}")).unwrap_or_default()
        ));
        record
            .facts
            .insert("profile".into(), json!({ "name": choice.profile, "agent": choice.agent, "model": choice.model }));
    }
    let made = {
        let _one_at_a_time = WORKTREES.lock().await;
        s.repo.worktree_as(local, branch, &s.base).await
    };
    match made {
        Err(e) => Try {
            made: Err(Outcome::NeedsHuman(format!("cannot make a worktree for {branch}: {e}"))),
            record,
            dir: None,
            start: String::new(),
            choice,
        },
        Ok((dir, start, continued)) => {
            let at = Start { dir: &dir, sha: &start, continued, branch };
            let made = make(job, at, &choice, &mut record).await;
            Try { made, record, dir: Some(dir), start, choice }
        }
    }
}

/// Of the verified attempts, the one that changes the fewest lines.
async fn smallest_verified(tries: &[Try]) -> Option<usize> {
    let mut best: Option<(u64, usize)> = None;
    for (i, t) in tries.iter().enumerate() {
        let (Ok(()), Some(dir)) = (&t.made, &t.dir) else { continue };
        let size = git::diff_size(dir, &t.start).await.unwrap_or(u64::MAX);
        if best.is_none_or(|(b, _)| size < b) {
            best = Some((size, i));
        }
    }
    best.map(|(_, i)| i)
}

/// What each of several attempts came to, for the record: lines, and the same as JSON.
fn attempts_summary(tries: &[Try], chosen: Option<usize>) -> (Vec<String>, Value) {
    let mut lines = vec![];
    let mut facts = vec![];
    for (i, t) in tries.iter().enumerate() {
        let result = match &t.made {
            Ok(()) if Some(i) == chosen => "verified; chosen (the smallest change)".to_owned(),
            Ok(()) => "verified; not chosen (a larger change)".to_owned(),
            Err(o) => attempt_result(o),
        };
        lines.push(format!("attempt {} ({}): {result}", i + 1, t.choice.profile));
        facts.push(json!({
            "attempt": i + 1, "profile": t.choice.profile, "result": result,
            "agent": t.record.facts.get("agent"), "commits": t.record.commits.len(),
        }));
    }
    (lines, json!(facts))
}

fn attempt_result(o: &Outcome) -> String {
    let first = |r: &str| r.lines().next().unwrap_or("").to_owned();
    match o {
        Outcome::Failed(r) => format!("failed: {}", first(r)),
        Outcome::NeedsHuman(r) => format!("needs a person: {}", first(r)),
        Outcome::Paused(..) => "rate-limited".into(),
        Outcome::Stopped => "stopped".into(),
        Outcome::Asked(_) => "asked a person".into(),
        Outcome::Done { .. } => "done".into(),
    }
}

/// Renews the lease until aborted.
async fn keep_alive(api: Api, session: String, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = api.post_empty(&format!("/api/sessions/{}/heartbeat", seg(&session))).await {
            eprintln!("loop agent: heartbeat for session {session} failed: {e:?}");
        }
    }
}

/// Where a run starts: its worktree, the commit it starts from, and whether that is the
/// issue's branch as an earlier run left it (else the base).
struct Start<'a> {
    dir: &'a Path,
    sha: &'a str,
    continued: bool,
    branch: &'a str,
}

/// One attempt up to a verified commit on its worktree's branch: the checks on the base, the
/// agent, the runner's commit, the checks again. `Err` with how it ended otherwise.
async fn make(job: &Job<'_>, at: Start<'_>, choice: &Choice, record: &mut Record) -> Result<(), Outcome> {
    let (s, api, claim, prior, stop) = (job.s, job.api, job.claim, job.prior, job.stop.clone());
    let (dir, base_sha, branch) = (at.dir, at.sha, at.branch);
    // 1. The base must pass the checks before the agent is blamed for failing them. A branch
    // that continues earlier work is not checked first: a red check may be what it is to fix.
    let baseline = match at.continued {
        true => {
            record.line(format!("continuing {branch} at {}", &base_sha[..base_sha.len().min(12)]));
            if prior.conflict {
                // The merge queue found a conflict with the base: bring the base in and leave
                // the conflicting files, with their markers, for the agent.
                let merged = match s.repo.fetch(&s.base).await {
                    Ok(base) => git::merge_leaving_conflicts(dir, &base).await,
                    Err(e) => Err(e),
                };
                match merged {
                    Ok(files) if files.is_empty() => record.line(format!("merged {} cleanly", s.base)),
                    Ok(files) => record.line(format!("merged {}: conflicts left in {}", s.base, files.join(", "))),
                    Err(e) => return Err(Outcome::NeedsHuman(format!("cannot merge {} into {branch}: {e}", s.base))),
                }
            }
            vec![]
        }
        false => match checks(&s.verify, s.timeout, dir, stop.clone()).await {
            Ok(runs) => runs,
            Err(stopped_or_broken) => return Err(stopped_or_broken),
        },
    };
    for (command, run) in baseline {
        if !run.succeeded() {
            return Err(Outcome::NeedsHuman(format!(
                "the base branch {} already fails `{command}` ({}), before the agent started:\n{}",
                s.base,
                ending(&run),
                run.tail(20)
            )));
        }
        record.line(format!("baseline: `{command}` passed on {}", s.base));
        record.push("baseline", json!({ "command": command, "exitCode": 0 }));
    }

    // 2. The agent, with its prompt; it edits files and nothing else.
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return Err(Outcome::NeedsHuman(format!("cannot make a temporary directory: {e}"))),
    };
    let prompt_file = scratch.path().join("prompt.md");
    if let Err(e) = std::fs::write(&prompt_file, &claim.prompt) {
        return Err(Outcome::NeedsHuman(format!("cannot write the prompt file: {e}")));
    }
    // Pushes to the remote by name go nowhere (git reads config from the environment too).
    let no_push = format!("remote.{}.pushurl", s.repo.remote);
    let env = vec![
        ("GIT_CONFIG_COUNT".to_owned(), "1".to_owned()),
        ("GIT_CONFIG_KEY_0".to_owned(), no_push),
        ("GIT_CONFIG_VALUE_0".to_owned(), "loop-agent-does-not-push:".to_owned()),
        ("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned()),
        ("LOOP_API_URL".to_owned(), s.api_url.clone()),
        ("LOOP_TOKEN".to_owned(), claim.token.clone()),
        ("LOOP_ISSUE_ID".to_owned(), claim.issue_id.clone()),
        ("LOOP_ISSUE_NUMBER".to_owned(), claim.number.to_string()),
        ("LOOP_SESSION_ID".to_owned(), claim.session_id.clone()),
        ("LOOP_WORKTREE".to_owned(), dir.to_string_lossy().into_owned()),
        ("LOOP_PROMPT_FILE".to_owned(), prompt_file.to_string_lossy().into_owned()),
    ];
    let mut env = env;
    if let Some(model) = &choice.model {
        env.push(("LOOP_MODEL".to_owned(), model.clone()));
    }
    let command = report::agent_command(&choice.agent, choice.model.as_deref());
    let run = child::run(
        child::Run {
            command: &command,
            dir,
            env,
            env_remove: &SECRETS,
            stdin: Some(claim.prompt.clone()),
            timeout: s.timeout,
            stall: Some(s.stall),
        },
        stop.clone(),
    )
    .await;
    let run = match run {
        Ok(run) => run,
        Err(e) => return Err(Outcome::Failed(format!("cannot start the agent `{command}`: {e}"))),
    };
    record.agent = report::parse(&run.stdout);
    record.line(format!(
        "agent: `{command}`: {} in {:.1} s{}",
        ending(&run),
        run.duration.as_secs_f64(),
        record.agent_usage()
    ));
    record.tail = run.tail(20);
    record.transcript = Some(run.transcript.clone());
    record.duration = Some(run.duration);
    record.facts.insert(
        "agent".into(),
        json!({
            "command": command, "result": ending(&run), "exitCode": exit_code(&run),
            "durationMs": run.duration.as_millis() as u64,
            "model": record.agent.model, "tokens": record.agent.tokens, "costUsd": record.agent.cost_usd,
        }),
    );
    match run.ending {
        Ending::Stopped => return Err(Outcome::Stopped),
        Ending::TimedOut => {
            return Err(Outcome::Failed(format!("the agent ran past the {} timeout and was stopped", secs(s.timeout))));
        }
        Ending::Stalled => {
            return Err(Outcome::Failed(format!(
                "the agent printed nothing for {} (stalled) and was stopped",
                secs(s.stall)
            )));
        }
        Ending::Exited(_) if !run.succeeded() => {
            let now = chrono::Utc::now().timestamp();
            if let Some(wait) = report::rate_limited(&run.transcript, now) {
                return Err(Outcome::Paused(run.tail(3), wait.map(Duration::from_secs)));
            }
            return Err(Outcome::Failed(format!("the agent {}", ending(&run))));
        }
        Ending::Exited(_) => {}
    }

    // 3. What it changed, committed by the runner.
    let number = format!("#{}", claim.number);
    let trailers = [("Loop-Issue", number.as_str()), ("Loop-Session", claim.session_id.as_str())];
    if let Some(question) = asked(api, claim).await {
        // The work so far waits on the issue's branch (unverified, no pull request) for the
        // run that continues once a person answers.
        let subject = format!("#{}: work in progress, waiting for an answer", claim.number);
        let kept = match git::commit_all(dir, &subject, &trailers).await {
            Ok(true) if branch != s.base => s.repo.push(dir, branch).await.map(|_| format!("pushed to {branch}")),
            Ok(_) => Ok("nothing to keep".to_owned()),
            Err(e) => Err(e),
        };
        record.line(format!("asked a person; the work so far: {}", kept.unwrap_or_else(|e| format!("not kept: {e}"))));
        return Err(Outcome::Asked(question));
    }
    let subject = format!("#{}: {}", claim.number, claim.title);
    if let Err(e) = git::commit_all(dir, &subject, &trailers).await {
        return Err(Outcome::NeedsHuman(format!("cannot commit the agent's changes: {e}")));
    }
    record.commits = match git::commits_since(dir, base_sha).await {
        Ok(c) => c,
        Err(e) => return Err(Outcome::NeedsHuman(e)),
    };
    if record.commits.is_empty() {
        return Err(Outcome::Failed("the agent changed nothing".into()));
    }

    // 4. The checks, on what it made.
    let verified = match checks(&s.verify, s.timeout, dir, stop.clone()).await {
        Ok(runs) => runs,
        Err(stopped_or_broken) => return Err(stopped_or_broken),
    };
    for (command, run) in verified {
        record.line(format!("verify: `{command}`: {}", ending(&run)));
        record.push(
            "verify",
            json!({ "command": command, "result": ending(&run), "exitCode": exit_code(&run), "tail": run.tail(20) }),
        );
        if !run.succeeded() {
            return Err(Outcome::Failed(format!(
                "`{command}` failed after the agent's changes ({}):\n{}",
                ending(&run),
                run.tail(20)
            )));
        }
    }
    Ok(())
}

/// Pushes the verified branch, and opens its pull request (or updates the one it has).
async fn deliver(
    s: &Settings,
    claim: &Claim,
    prior: &Prior,
    branch: &str,
    dir: &Path,
    record: &mut Record,
    stop: watch::Receiver<bool>,
) -> Outcome {
    if branch == s.base {
        return Outcome::NeedsHuman(format!("refusing to push to the base branch {branch}"));
    }
    if let Err(e) = s.repo.push(dir, branch).await {
        return Outcome::NeedsHuman(format!("cannot push {branch}: {e}"));
    }
    record.line(format!("pushed: {branch}"));
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return Outcome::NeedsHuman(format!("{branch} is pushed; cannot make a temporary directory: {e}")),
    };
    let pr_url = match (&prior.pr, &s.pr_command) {
        // Never a second pull request for one issue: the push updated the one it has.
        (Some((_, url)), _) => {
            record.line(format!("pull request updated: {url}"));
            Some(url.clone())
        }
        (None, None) => None,
        (None, Some(template)) => match open_pr(template, s, claim, branch, record, scratch.path(), stop).await {
            Ok(url) => {
                record.line(format!("pull request: {url}"));
                record.facts.insert("pullRequest".into(), json!(url));
                Some(url)
            }
            Err(e) => {
                return Outcome::NeedsHuman(format!("{branch} is pushed, but the pull request was not opened: {e}"));
            }
        },
    };
    Outcome::Done { branch: branch.to_owned(), pr_url }
}

/// The question the agent asked through the API, if it ended its session with one.
async fn asked(api: &Api, claim: &Claim) -> Option<String> {
    let session = api.get(&format!("/api/sessions/{}", seg(&claim.session_id))).await.ok()?;
    if session["data"]["endedAt"].is_null() {
        return None;
    }
    let path = format!("/api/questions?open=true&issueId={}", seg(&claim.issue_id));
    let open = api.get(&path).await.ok()?;
    open["data"].as_array()?.last()?["question"].as_str().map(str::to_owned)
}

/// The verify commands in the worktree, in order, up to the first that fails (one that runs past
/// the run's timeout has failed): each with how it ended. `Err` when the runner is stopping or
/// a command cannot be started at all.
pub(super) async fn checks<'a>(
    verify: &'a [String],
    timeout: Duration,
    dir: &Path,
    stop: watch::Receiver<bool>,
) -> Result<Vec<(&'a str, Finished)>, Outcome> {
    let mut runs = Vec::new();
    for command in verify {
        let run = child::Run { command, dir, env: vec![], env_remove: &SECRETS, stdin: None, timeout, stall: None };
        let run = child::run(run, stop.clone())
            .await
            .map_err(|e| Outcome::NeedsHuman(format!("cannot run `{command}`: {e}")))?;
        if run.ending == Ending::Stopped {
            return Err(Outcome::Stopped);
        }
        let passed = run.succeeded();
        runs.push((command.as_str(), run));
        if !passed {
            break;
        }
    }
    Ok(runs)
}

/// Runs `--pr-command` with its placeholders filled in; the first URL it prints is the PR.
async fn open_pr(
    template: &str,
    s: &Settings,
    claim: &Claim,
    branch: &str,
    record: &Record,
    scratch: &Path,
    stop: watch::Receiver<bool>,
) -> Result<String, String> {
    let body_file = scratch.join("pr-body.md");
    let body = format!(
        "{}\n\n{}\n\nLoop-Issue: #{}\nLoop-Session: {}\n",
        record.agent.summary.as_deref().unwrap_or("Made by `loop agent`."),
        record.lines.join("\n"),
        claim.number,
        claim.session_id
    );
    std::fs::write(&body_file, body).map_err(|e| format!("cannot write the body file: {e}"))?;
    let title = format!("#{}: {}", claim.number, claim.title);
    let command = fill(
        template,
        &[
            ("branch", branch),
            ("base", &s.base),
            ("title", &title),
            ("body_file", &body_file.to_string_lossy()),
            ("issue", &claim.number.to_string()),
        ],
    );
    // Draft by default: a person decides when the agent's work is ready for review.
    let command = command.replace("{draft}", if s.ready_pr { "" } else { "--draft" });
    let run = child::Run {
        command: &command,
        dir: &s.repo.dir,
        env: vec![],
        env_remove: &SECRETS,
        stdin: None,
        timeout: Duration::from_secs(120),
        stall: None,
    };
    let run = child::run(run, stop).await.map_err(|e| e.to_string())?;
    if !run.succeeded() {
        return Err(format!("`{template}` {}:\n{}", ending(&run), run.tail(10)));
    }
    run.stdout
        .split_whitespace()
        .find(|w| w.starts_with("https://") || w.starts_with("http://"))
        .map(str::to_owned)
        .ok_or_else(|| format!("`{template}` printed no URL"))
}

/// `{name}` placeholders replaced by shell-quoted values.
pub(super) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_owned(), |text, (name, value)| text.replace(&format!("{{{name}}}"), &quote(value)))
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs())
}

fn exit_code(run: &Finished) -> Option<i32> {
    match run.ending {
        Ending::Exited(code) => code,
        _ => None,
    }
}

fn ending(run: &Finished) -> String {
    match run.ending {
        Ending::Exited(Some(0)) => "passed (exit 0)".into(),
        Ending::Exited(Some(code)) => format!("exited with status {code}"),
        Ending::Exited(None) => "was killed by a signal".into(),
        Ending::TimedOut => "timed out".into(),
        Ending::Stalled => "stalled".into(),
        Ending::Stopped => "was stopped".into(),
    }
}

/// What ran and what came of it: the attestation kept with the session and the issue.
struct Record {
    runner: String,
    lines: Vec<String>,
    /// The same facts for a program: the session record's attestation.
    facts: serde_json::Map<String, Value>,
    agent: AgentReport,
    commits: Vec<(String, String)>,
    /// The agent's last lines, its summary when it reports none.
    tail: String,
    transcript: Option<String>,
    duration: Option<Duration>,
}

impl Record {
    fn new(s: &Settings, branch: &str) -> Self {
        let lines = vec![format!("branch: {branch} from {}", s.base)];
        let mut facts = serde_json::Map::new();
        facts.insert("runner".into(), json!(s.name));
        facts.insert("branch".into(), json!(branch));
        facts.insert("base".into(), json!(s.base));
        Record {
            runner: s.name.clone(),
            lines,
            facts,
            agent: AgentReport::default(),
            commits: vec![],
            tail: String::new(),
            transcript: None,
            duration: None,
        }
    }

    fn line(&mut self, line: String) {
        self.lines.push(line);
    }

    /// Appends `entry` to the list `key` of the attestation.
    fn push(&mut self, key: &str, entry: Value) {
        match self.facts.entry(key).or_insert_with(|| json!([])) {
            Value::Array(list) => list.push(entry),
            other => *other = json!([entry]),
        }
    }

    /// The attestation: what ran and what came of it.
    fn attestation(&self, outcome: &Outcome) -> serde_json::Map<String, Value> {
        let mut facts = self.facts.clone();
        let (result, reason) = match outcome {
            Outcome::Done { .. } => ("done", None),
            Outcome::Failed(r) => ("failed", Some(r)),
            Outcome::NeedsHuman(r) => ("needs-human", Some(r)),
            Outcome::Paused(r, _) => ("rate-limited", Some(r)),
            Outcome::Stopped => ("stopped", None),
            Outcome::Asked(q) => ("asked", Some(q)),
        };
        facts.insert("outcome".into(), json!(result));
        if let Some(r) = reason {
            facts.insert("reason".into(), json!(cap(r, 4000)));
        }
        let commits: Vec<Value> =
            self.commits.iter().map(|(sha, subject)| json!({ "sha": sha, "subject": subject })).collect();
        facts.insert("commits".into(), json!(commits));
        facts
    }

    fn agent_usage(&self) -> String {
        let a = &self.agent;
        let mut parts = vec![];
        if let Some(m) = &a.model {
            parts.push(format!("model {m}"));
        }
        if let Some(t) = a.tokens {
            parts.push(format!("{t} tokens"));
        }
        if let Some(c) = a.cost_usd {
            parts.push(format!("${c:.2}"));
        }
        if parts.is_empty() { String::new() } else { format!("; {}", parts.join(", ")) }
    }

    fn text(&self) -> String {
        let mut out = format!("Run by loop agent ({}):\n", self.runner);
        for l in &self.lines {
            out.push_str(&format!("- {l}\n"));
        }
        for (sha, subject) in &self.commits {
            out.push_str(&format!("- commit {} {subject}\n", &sha[..sha.len().min(12)]));
        }
        out
    }

    fn summary(&self) -> String {
        self.agent.summary.clone().unwrap_or_else(|| self.tail.clone())
    }
}

/// Tells the server: done (with commits, PR and summary, and the record as a comment), failed
/// (the issue returns to `todo`), or released.
async fn report(api: &Api, claim: &Claim, prior: &Prior, outcome: &Outcome, record: &Record) -> Result<(), String> {
    let session = format!("/api/sessions/{}", seg(&claim.session_id));
    let kept = json!({
        "attestation": record.attestation(outcome),
        "transcript": record.transcript,
        "tokens": record.agent.tokens,
        "costUsd": record.agent.cost_usd,
        "durationMs": record.duration.map(|d| d.as_millis() as u64),
    });
    api.put(&format!("{session}/record"), kept).await.map_err(|e| format!("{e:?}"))?;
    let issue = format!("/api/issues/{}", seg(&claim.issue_id));
    let result = match outcome {
        Outcome::Done { pr_url, branch } => {
            // The issue's commits so far, then this run's.
            let mut commits = prior.commits.clone();
            for (sha, subject) in &record.commits {
                if !commits.iter().any(|c| c["sha"] == sha.as_str()) {
                    commits.push(json!({ "sha": sha, "message": subject }));
                }
            }
            let mut patch =
                json!({ "status": "done", "agentSummary": cap(&record.summary(), 4000), "commits": commits });
            if let (Some(url), None) = (pr_url, &prior.pr) {
                let title = format!("#{}: {}", claim.number, claim.title);
                patch["pullRequests"] =
                    json!([{ "number": pr_number(url), "url": url, "title": title, "branch": branch }]);
            }
            api.patch(&issue, patch).await.map(|_| ())
        }
        // The session ended with the question; the record above is all there is to add.
        Outcome::Asked(_) => return Ok(()),
        Outcome::Failed(reason) => {
            let summary = format!("{reason}\n\n{}", record.text());
            api.post(&format!("{session}/fail"), json!({ "summary": cap(&summary, 8000) })).await.map(|_| ())
        }
        Outcome::NeedsHuman(reason) => {
            let summary = format!("needs a person: {reason}\n\n{}", record.text());
            api.post(&format!("{session}/release"), json!({ "summary": cap(&summary, 8000) })).await.map(|_| ())
        }
        Outcome::Paused(why, _) => {
            let summary = format!("released: the agent was rate-limited, not the issue's fault: {why}");
            api.post(&format!("{session}/release"), json!({ "summary": cap(&summary, 8000) })).await.map(|_| ())
        }
        Outcome::Stopped => {
            api.post(&format!("{session}/release"), json!({ "summary": "the runner was stopped" })).await.map(|_| ())
        }
    };
    result.map_err(|e| format!("{e:?}"))?;
    let comment = match outcome {
        Outcome::Done { .. } => format!("Done.\n\n{}", record.text()),
        Outcome::Failed(reason) => format!("Attempt failed: {reason}\n\n{}", record.text()),
        Outcome::NeedsHuman(reason) => format!("Needs a person: {reason}\n\n{}", record.text()),
        Outcome::Paused(..) | Outcome::Stopped | Outcome::Asked(_) => return Ok(()),
    };
    let body = json!({ "body": cap(&comment, 8000), "authorName": record.runner, "authorType": "agent" });
    api.post(&format!("{issue}/comments"), body).await.map(|_| ()).map_err(|e| format!("{e:?}"))
}

/// The number at the end of a PR URL (`…/pull/12`), else 0.
fn pr_number(url: &str) -> u64 {
    url.trim_end_matches('/').rsplit('/').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn cap(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_shell_quoted() {
        let filled = fill(
            "gh pr create --head {branch} --title {title}",
            &[("branch", "loop/1-x"), ("title", "it's $(rm -rf /)")],
        );
        assert_eq!(filled, r"gh pr create --head 'loop/1-x' --title 'it'\''s $(rm -rf /)'");
    }

    #[test]
    fn pr_numbers_come_from_the_url() {
        assert_eq!(pr_number("https://github.com/o/r/pull/123"), 123);
        assert_eq!(pr_number("https://example.test/pr/7/"), 7);
        assert_eq!(pr_number("https://example.test/pr/new"), 0);
    }
}
