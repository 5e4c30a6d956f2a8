//! `loop agent land`: the merge queue. Takes the approved, done, unmerged issues of a project
//! one at a time, under a merge slot held in Loop (so two runners never land at once): brings
//! each pull request's branch up to date with the base (a rebase, else a merge), runs the verify
//! commands again, pushes the branch and merges it with --merge-command, then records the merge.
//! A conflict or a red verification sends the issue back as rework instead, with the
//! conflicting files or the failing command's output, for the next `loop agent` run to fix on
//! the same branch.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use super::child::{self, Run};
use super::git::{self, Repo};
use super::work::{Outcome, checks};
use super::{config, duration, host, top_of};
use crate::cli::api::{Api, seg};
use crate::cli::{CliError, Ctx};

pub const LAND_EXAMPLES: &str = "\
Examples:
  loop agent land --merge-command 'gh pr merge {pr} --rebase --delete-branch' --verify 'cargo test'
  loop agent land --project <project id> --max 1    one pull request of one project

What it lands: issues that are done, approved (an approving GitHub review, or
POST /api/issues/:id/approval) and not merged, oldest approval first. Landing is off until a
merge command is given (here or as merge-command in .loop/agent.toml): people decide what is
approved; this only lands it. {pr} (the pull request's URL), {number}, {branch}, {base} and
{issue} are replaced, shell-quoted.

Exit codes: 0 every approved issue landed (or none was waiting, or another runner holds the
slot), 1 one was sent back as rework or could not be merged, 2 bad usage.";

#[derive(Args, Debug, Clone, Default)]
pub struct LandArgs {
    /// Merges a pull request once its branch is up to date, verified and pushed:
    /// {pr}, {number}, {branch}, {base} and {issue} are replaced (shell-quoted).
    #[arg(long, value_name = "CMD")]
    pub merge_command: Option<String>,
    /// A command that must pass on the updated branch before it is merged (repeatable).
    #[arg(long, value_name = "CMD")]
    pub verify: Vec<String>,
    /// Only this project's issues (id); its own merge slot.
    #[arg(long, value_name = "ID")]
    pub project: Option<String>,
    /// Land at most this many, then stop [default: every approved one]
    #[arg(long, value_name = "N")]
    pub max: Option<u32>,
    /// The git checkout [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// The branch to land on [default: the remote's default branch]
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,
    /// The remote [default: origin]
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Who holds the merge slot [default: loop-agent@<host>]
    #[arg(long)]
    pub name: Option<String>,
    /// Time allowed per verify command and for the merge command: 90s, 30m [default: 30m]
    #[arg(long, value_name = "DUR", value_parser = duration)]
    pub timeout: Option<Duration>,
}

/// How long the slot is held without a renewal; renewed before each pull request.
const SLOT_SECONDS: u64 = 900;

pub async fn land(args: LandArgs, ctx: &Ctx) -> Result<(), CliError> {
    let dir = args.repo.clone().unwrap_or_else(|| PathBuf::from("."));
    let top = top_of(&dir)
        .await
        .ok_or_else(|| CliError::usage(format!("{} is not a git checkout: give --repo DIR", dir.display())))?;
    let args = config::merge_land(args, &top).map_err(CliError::usage)?;
    let Some(command) = args.merge_command.clone() else {
        return Err(CliError::usage(format!(
            "landing is off until you say how to merge: --merge-command 'gh pr merge {{pr}} --rebase' \
             (or merge-command = \"…\" in {})",
            config::FILE
        )));
    };
    let repo = Repo::open(&top, args.remote.as_deref().unwrap_or("origin")).await.map_err(CliError::usage)?;
    let base = match &args.base {
        Some(b) => b.clone(),
        None => repo.default_branch().await,
    };
    let name = args.name.clone().unwrap_or_else(|| format!("loop-agent@{}", host()));
    let api = ctx.api.clone().with_agent(&name)?;
    let scope = args.project.clone().unwrap_or_else(|| "all".into());
    let lander = Lander {
        api,
        repo,
        base,
        command,
        verify: args.verify.clone(),
        timeout: args.timeout.unwrap_or(Duration::from_secs(30 * 60)),
        name,
        scope,
    };
    if let Some(holder) = lander.take_slot().await? {
        println!("{holder}: nothing landed now");
        return Ok(());
    }
    let result = lander.land_queue(args.project.as_deref(), args.max).await;
    let free = format!("/api/merge-slots/{}?holder={}", seg(&lander.scope), seg(&lander.name));
    if let Err(e) = lander.api.delete(&free).await {
        eprintln!("loop agent land: could not free the merge slot (it expires by itself): {e:?}");
    }
    result
}

struct Lander {
    api: Api,
    repo: Repo,
    base: String,
    command: String,
    verify: Vec<String>,
    timeout: Duration,
    name: String,
    scope: String,
}

/// How landing one issue ended.
enum Landed {
    Merged(String),
    /// Sent back to the agent as rework: why.
    SentBack(String),
    /// Left alone (no branch to land): why.
    Skipped(String),
    /// Could not be merged; a person looks: why.
    Failed(String),
}

impl Lander {
    /// Takes (or renews) the slot; `Some(message)` when another runner holds it.
    async fn take_slot(&self) -> Result<Option<String>, CliError> {
        let body = json!({ "holder": self.name, "seconds": SLOT_SECONDS });
        match self.api.post(&format!("/api/merge-slots/{}", seg(&self.scope)), body).await {
            Ok(_) => Ok(None),
            Err(CliError::Api(f)) if matches!(&f.err, loop_client::ClientError::Api { status: 409, .. }) => {
                Ok(Some(f.err.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    async fn land_queue(&self, project: Option<&str>, max: Option<u32>) -> Result<(), CliError> {
        let mut path = "/api/merge-queue".to_owned();
        if let Some(p) = project {
            path.push_str(&format!("?projectId={}", seg(p)));
        }
        let queue = self.api.get(&path).await?;
        let issues: Vec<Value> = queue["data"].as_array().cloned().unwrap_or_default();
        if issues.is_empty() {
            println!("Nothing approved is waiting to land.");
            return Ok(());
        }
        let mut not_landed = 0;
        for issue in issues.iter().take(max.map_or(usize::MAX, |m| m as usize)) {
            if let Some(holder) = self.take_slot().await? {
                return Err(CliError::failed(format!("lost the merge slot: {holder}")));
            }
            let label = format!("#{} {}", issue["number"], issue["title"].as_str().unwrap_or_default());
            match self.land_one(issue).await {
                Landed::Merged(sha) => println!("{label}: landed ({})", &sha[..sha.len().min(12)]),
                Landed::Skipped(why) => println!("{label}: skipped: {why}"),
                Landed::SentBack(why) => {
                    not_landed += 1;
                    println!("{label}: sent back for rework: {}", why.lines().next().unwrap_or(""));
                }
                Landed::Failed(why) => {
                    not_landed += 1;
                    println!("{label}: not merged: {why}");
                }
            }
        }
        match not_landed {
            0 => Ok(()),
            n => Err(CliError::failed(format!("{n} approved issue(s) did not land: see their comments"))),
        }
    }

    async fn land_one(&self, issue: &Value) -> Landed {
        let id = issue["id"].as_str().unwrap_or_default();
        let Some(pr) = issue["pullRequests"].as_array().and_then(|prs| prs.last()) else {
            return Landed::Skipped("it has no pull request".into());
        };
        let Some(branch) = pr["branch"].as_str() else {
            return Landed::Skipped("its pull request has no branch recorded (not opened by loop agent)".into());
        };
        let (dir, was, on_remote) = match self.repo.worktree(branch, &self.base).await {
            Ok(made) => made,
            Err(e) => return Landed::Failed(format!("cannot make a worktree for {branch}: {e}")),
        };
        let landed = if on_remote {
            self.update_verify_merge(id, issue, pr, branch, &dir, &was).await
        } else {
            Landed::Skipped(format!("the remote has no branch {branch}"))
        };
        self.repo.remove(&dir).await;
        landed
    }

    async fn update_verify_merge(
        &self,
        id: &str,
        issue: &Value,
        pr: &Value,
        branch: &str,
        dir: &Path,
        was: &str,
    ) -> Landed {
        let base_sha = match self.repo.fetch(&self.base).await {
            Ok(sha) => sha,
            Err(e) => return Landed::Failed(e),
        };
        if let Err(files) = git::update_onto(dir, &base_sha).await {
            let body = format!(
                "Resolve the conflict with {}: `{branch}` no longer applies to it. Conflicting files:\n{}",
                self.base,
                files.iter().map(|f| format!("- `{f}`")).collect::<Vec<_>>().join("\n")
            );
            return self.send_back(id, "conflict", body).await;
        }
        // As in a run: the project's checks get no push credential; the merge command does.
        let runs = match checks(&self.verify, self.timeout, dir, tokio::sync::watch::channel(false).1).await {
            Ok(runs) => runs,
            Err(Outcome::NeedsHuman(why)) => return Landed::Failed(why),
            Err(other) => return Landed::Failed(format!("{other:?}")),
        };
        for (command, run) in runs {
            if !run.succeeded() {
                let body = format!(
                    "`{command}` fails on `{branch}` brought up to date with {}:\n\n```\n{}\n```",
                    self.base,
                    run.tail(40)
                );
                return self.send_back(id, "verify", body).await;
            }
        }
        let head = match git::git(dir, &["rev-parse", "HEAD"]).await {
            Ok(h) => h,
            Err(e) => return Landed::Failed(e),
        };
        if head != was
            && let Err(e) = self.repo.push_rewritten(dir, branch, was).await
        {
            return Landed::Failed(format!("cannot push the updated {branch}: {e}"));
        }
        let url = pr["url"].as_str().unwrap_or_default();
        let number = pr["number"].to_string();
        let values = [
            ("pr", url),
            ("number", number.as_str()),
            ("branch", branch),
            ("base", self.base.as_str()),
            ("issue", &issue["number"].to_string()),
        ];
        let command = super::work::fill(&self.command, &values);
        let run = Run {
            command: &command,
            dir,
            env: vec![],
            env_remove: &[],
            stdin: None,
            timeout: self.timeout,
            stall: None,
        };
        let merged = match child::run(run, tokio::sync::watch::channel(false).1).await {
            Ok(run) if run.succeeded() => Ok(()),
            Ok(run) => Err(format!("`{}` failed:\n{}", self.command, run.tail(20))),
            Err(e) => Err(format!("cannot run `{}`: {e}", self.command)),
        };
        if let Err(why) = merged {
            // Not the agent's to fix: the approval is withdrawn so the queue does not retry it
            // for ever, and a person is told.
            let _ = self.api.delete(&format!("/api/issues/{}/approval", seg(id))).await;
            let note =
                json!({ "body": format!("Could not land: {why}"), "authorName": self.name, "authorType": "agent" });
            let _ = self.api.post(&format!("/api/issues/{}/comments", seg(id)), note).await;
            return Landed::Failed(why);
        }
        let record = json!({ "sha": head, "url": (!url.is_empty()).then_some(url) });
        match self.api.post(&format!("/api/issues/{}/merged", seg(id)), record).await {
            Ok(_) => Landed::Merged(head),
            Err(e) => Landed::Failed(format!("merged, but the merge was not recorded: {e:?}")),
        }
    }

    /// The issue goes back to its agent with what to fix.
    async fn send_back(&self, id: &str, kind: &str, body: String) -> Landed {
        let item = json!({ "kind": kind, "body": body, "author": self.name });
        match self.api.post(&format!("/api/issues/{}/rework", seg(id)), item).await {
            Ok(_) => Landed::SentBack(body),
            Err(e) => Landed::Failed(format!("{body}\n(and the rework was not recorded: {e:?})")),
        }
    }
}
