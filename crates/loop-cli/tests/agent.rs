//! `loop agent` end to end, with real parts and no network: a real `loop serve`, a bare git
//! repository as the remote, the runner's clone of it with a small test script, scripted agents
//! (shell scripts) and a `--pr-command` script that records its arguments and prints a URL.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::runner::{Fixture, git, gone};
use common::{Cli, KEY};

const SUCCEEDS: &str = "env > \"$MARK_DIR/env\"\ncat > \"$MARK_DIR/prompt\"\necho 'feature' > feature.txt\n\
    git push origin HEAD:refs/heads/agent-pushed 2>/dev/null && echo yes > \"$MARK_DIR/pushed\"\n\
    echo 'working on it'\necho '{\"summary\": \"Added the feature file\", \"model\": \"scripted-1\", \"tokens\": 1200, \"cost_usd\": 0.42}'\n";

#[test]
fn a_ready_issue_becomes_a_verified_pushed_branch_a_pr_and_a_done_issue() {
    let f = Fixture::new();
    let n = f.issue("Add the feature");
    let run = f.tick(SUCCEEDS, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "#{n} Add the feature: done (loop/{n}-add-the-feature, https://example.test/o/r/pull/7)"
        )),
        "{run:?}"
    );

    // The branch and its commit, with trailers, are on the remote; the base is untouched.
    let branch = format!("loop/{n}-add-the-feature");
    let remote = f.path("remote.git");
    assert_eq!(git(&remote, &["show", &format!("{branch}:feature.txt")]), "feature");
    let message = git(&remote, &["log", "-1", "--format=%B", &branch]);
    let issue = f.show(&n);
    let session = issue["sessions"][0]["id"].as_str().unwrap().to_owned();
    assert!(message.starts_with(&format!("#{n}: Add the feature")), "{message}");
    assert!(
        message.contains(&format!("Loop-Issue: #{n}")) && message.contains(&format!("Loop-Session: {session}")),
        "{message}"
    );
    assert!(git(&remote, &["ls-tree", "--name-only", "main"]).lines().all(|f| f != "feature.txt"));

    // The issue is done with its commit, PR and the agent's own summary.
    assert_eq!(issue["status"], "done");
    assert_eq!(issue["agentSummary"], "Added the feature file");
    assert_eq!(issue["commits"][0]["sha"], git(&remote, &["rev-parse", &branch]).as_str());
    assert_eq!(issue["pullRequests"][0]["number"], 7);
    assert_eq!(issue["pullRequests"][0]["url"], "https://example.test/o/r/pull/7");
    assert_eq!(issue["sessions"][0]["outcome"], "done");
    // What ran and what it cost, as reported by the agent.
    let comment = issue["comments"].as_array().unwrap().last().unwrap()["body"].as_str().unwrap().to_owned();
    for part in [
        "baseline: `sh check.sh` passed on main",
        "model scripted-1, 1200 tokens, $0.42",
        "verify: `sh check.sh`: passed",
        "pull request: https://example.test/o/r/pull/7",
    ] {
        assert!(comment.contains(part), "{part} missing from:\n{comment}");
    }

    // The session keeps what ran: the attestation, the cost on the session, the transcript.
    let kept = f.cli.json(&["sessions", "show", &session]);
    let attestation = &kept["record"]["attestation"];
    assert_eq!(attestation["outcome"], "done");
    assert_eq!(attestation["agent"]["exitCode"], 0);
    assert_eq!(
        (attestation["agent"]["model"].as_str(), attestation["agent"]["costUsd"].as_f64()),
        (Some("scripted-1"), Some(0.42))
    );
    assert_eq!(attestation["verify"][0]["command"], "sh check.sh");
    assert_eq!(attestation["verify"][0]["exitCode"], 0);
    assert_eq!(attestation["commits"][0]["sha"], issue["commits"][0]["sha"]);
    assert_eq!(attestation["pullRequest"], "https://example.test/o/r/pull/7");
    assert_eq!((kept["session"]["costUsd"].as_f64(), kept["session"]["tokens"].as_i64()), (Some(0.42), Some(1200)));
    let transcript = f.cli.ok(&["sessions", "show", &session, "--transcript"]);
    assert!(transcript.contains("working on it\n"), "{transcript}");
    let shown = f.cli.ok(&["sessions", "show", &session]);
    assert!(
        shown.contains("model scripted-1") && shown.contains(&format!("loop sessions show {session} --transcript")),
        "{shown}"
    );

    // The agent got the prompt and the claim's token, never the master key.
    let env = f.mark("env");
    assert!(env.lines().any(|l| l.starts_with("LOOP_TOKEN=loopt_")), "{env}");
    assert!(!env.contains(KEY) && !env.contains("LOOP_API_KEY="), "the master key reached the agent:\n{env}");
    assert!(env.contains(&format!("LOOP_ISSUE_NUMBER={n}\n")) && env.contains(&format!("LOOP_SESSION_ID={session}\n")));
    assert!(f.mark("prompt").contains("Add the feature"));
    assert_eq!(f.mark("pushed"), "", "the agent could push to the remote");
    assert!(git(&remote, &["branch", "--list", "agent-pushed"]).is_empty());

    // The PR command got the placeholders; the body carries the summary.
    let pr_args: Vec<String> = f.mark("pr-args").lines().map(str::to_owned).collect();
    assert_eq!(pr_args[..3], [branch.clone(), "main".into(), format!("#{n}: Add the feature")]);
    assert_eq!(pr_args[4], n);
    assert_eq!(pr_args[5], "--draft", "drafts unless --ready-pr");
    assert!(f.mark("pr-body").starts_with("Added the feature file"));

    // The worktree is gone.
    assert_eq!(git(&f.path("work"), &["worktree", "list"]).lines().count(), 1);
}

#[test]
fn failed_attempts_push_nothing_and_the_issue_comes_back_for_a_retry() {
    let f = Fixture::new();
    let cases: [(&str, &str, &[&str]); 4] = [
        ("echo x > broken\necho 'wrote code'", "`sh check.sh` failed after the agent's changes", &[]),
        ("cat > /dev/null\necho 'I looked around'", "the agent changed nothing", &[]),
        ("echo 'oops' >&2\nexit 3", "the agent exited with status 3", &[]),
        ("echo started\nsleep 600", "printed nothing for 1 s (stalled)", &["--stall-timeout", "1s"]),
    ];
    for (agent, reason, extra) in cases {
        let n = f.issue("Try something");
        let run = f.tick(agent, extra);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stdout.contains("failed: ") && run.stdout.contains(reason), "{reason}: {run:?}");
        assert_eq!(f.pushed(), "", "nothing is pushed on failure");
        let issue = f.show(&n);
        assert_eq!(issue["status"], "todo", "{reason}");
        let session = &f.sessions(&n)[0];
        assert_eq!(session["outcome"], "failed");
        assert!(session["summary"].as_str().unwrap().contains(reason), "{session}");
        let kept = f.cli.json(&["sessions", "show", session["id"].as_str().unwrap()]);
        assert_eq!(kept["record"]["attestation"]["outcome"], "failed");
        assert!(kept["record"]["attestation"]["reason"].as_str().unwrap().contains(reason));
        assert_eq!(git(&f.path("work"), &["worktree", "list"]).lines().count(), 1, "the worktree is removed");
        // The retry is handed out with the retry template, which shows this attempt.
        let retry = f.cli.json(&["dispatch", &n]);
        assert!(retry["prompt"].as_str().unwrap().contains(reason), "{}", retry["prompt"]);
        f.cli.ok(&["cancel", &n]);
    }
}

#[test]
fn a_hung_agent_is_stopped_at_the_timeout_with_everything_it_started() {
    let f = Fixture::new();
    let n = f.issue("Hang");
    let started = Instant::now();
    let run = f.tick("sleep 600 &\necho $! > \"$MARK_DIR/pid\"\nwait", &["--timeout", "2s"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("ran past the 2 s timeout"), "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    let pid = f.mark("pid").trim().to_owned();
    assert!(gone(&pid), "the agent's background process {pid} was left running");
    assert_eq!(f.show(&n)["status"], "todo");
}

#[test]
fn a_base_that_already_fails_is_for_a_person_not_the_agents_fault() {
    let f = Fixture::new();
    let seed = f.path("seed");
    std::fs::write(seed.join("broken"), "").unwrap();
    git(&seed, &["add", "broken"]);
    git(&seed, &["commit", "--quiet", "-m", "break the tests"]);
    git(&seed, &["push", "--quiet", "origin", "main"]);
    let n = f.issue("Build on a broken base");
    let run = f.tick(SUCCEEDS, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("needs a person: the base branch main already fails `sh check.sh`"), "{run:?}");
    assert_eq!(f.mark("prompt"), "", "the agent never ran");
    assert_eq!(f.pushed(), "");
    let issue = f.show(&n);
    assert_eq!(issue["status"], "todo");
    assert_eq!(issue["sessions"][0]["outcome"], "released", "not counted against the agent");
}

#[test]
fn nothing_ready_is_a_quiet_success_and_bad_usage_exits_2() {
    let f = Fixture::new();
    let run = f.tick(SUCCEEDS, &[]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    let run = f.tick(SUCCEEDS, &["--timeout", "soon"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("90s, 30m or 2h"), "{}", run.stderr);
    let not_git = f.path("marks");
    let run = f.cli.run(&["agent", "tick", "--repo", not_git.to_str().unwrap(), "--agent", "true"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("is not a git checkout"), "{}", run.stderr);
}

#[test]
fn run_stops_after_consecutive_failures_and_releases_leftovers_first() {
    let f = Fixture::new();
    let left = f.issue("Left over");
    // A runner of the same name crashed holding a claim.
    f.cli.json(&["dispatch", &left, "--agent", "test-agent"]);
    for _ in 0..2 {
        f.issue("Will fail");
    }
    let script = f.path("agent.sh");
    std::fs::write(&script, "exit 1").unwrap();
    let agent = format!("sh {}", script.display());
    let work = f.path("work");
    let run = f.cli.run(&[
        "agent",
        "run",
        "--repo",
        work.to_str().unwrap(),
        "--agent",
        &agent,
        "--name",
        "test-agent",
        "--max-consecutive-failures",
        "2",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("left open by an earlier run of test-agent"), "{}", run.stderr);
    assert!(run.stderr.contains("2 runs failed in a row (--max-consecutive-failures 2)"), "{}", run.stderr);
}

#[test]
fn sigterm_interrupts_the_agent_and_releases_its_issue() {
    let f = Fixture::new();
    let n = f.issue("Interrupted");
    let script = f.path("agent.sh");
    std::fs::write(&script, "echo $$ > \"$MARK_DIR/pid\"\nsleep 600").unwrap();
    let mut child = f.spawn_run(&script, &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.mark("pid").is_empty() {
        assert!(Instant::now() < deadline, "the agent never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let pid = f.mark("pid").trim().to_owned();
    assert!(gone(&pid), "the agent {pid} was left running");
    let issue = f.show(&n);
    assert_eq!(issue["status"], "todo");
    assert_eq!(issue["sessions"][0]["outcome"], "released");
    assert_eq!(f.pushed(), "");
    assert_eq!(git(&f.path("work"), &["worktree", "list"]).lines().count(), 1);
}

#[test]
fn an_issue_that_keeps_failing_goes_to_a_person() {
    let f = Fixture::new();
    let n = f.issue("Too hard");
    for attempt in 1..=2 {
        let run = f.tick("echo x > broken", &["--max-attempts", "2"]);
        assert_eq!(run.code, 1, "{run:?}");
        let tripped = run.stdout.contains("2 attempts failed: moved to the backlog with the label needs-human-review");
        assert_eq!(tripped, attempt == 2, "attempt {attempt}: {run:?}");
    }
    let issue = f.show(&n);
    assert_eq!(issue["status"], "backlog");
    assert_eq!(issue["labels"][0]["name"], "needs-human-review");
    let run = f.tick(SUCCEEDS, &[]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "it is not claimed again: {run:?}");
}

#[test]
fn budgets_count_this_agents_sessions_on_the_server() {
    let f = Fixture::new();
    let first = f.issue("First");
    assert_eq!(f.tick(SUCCEEDS, &["--max-runs-per-hour", "1"]).code, 0);
    assert_eq!(f.show(&first)["status"], "done");
    let second = f.issue("Second");
    // A new runner process: the count comes from the server, not from memory.
    let run = f.tick(SUCCEEDS, &["--max-runs-per-hour", "1"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("over budget: 1 runs in the last hour (--max-runs-per-hour 1)"), "{}", run.stderr);
    assert_eq!(f.show(&second)["status"], "todo", "nothing was claimed");

    // The first run reported $0.42.
    let run = f.tick(SUCCEEDS, &["--max-cost-per-day", "0.40"]);
    assert!(run.stderr.contains("over budget: $0.42 spent in the last 24 hours"), "{}", run.stderr);
    assert_eq!(f.show(&second)["status"], "todo");
    // An agent that reports no cost cannot be held to a cost budget.
    let run = f.tick("echo done > feature.txt", &["--max-cost-per-day", "5"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("reported no cost"), "{}", run.stderr);
}

#[test]
fn the_repository_keeps_the_runners_settings() {
    let f = Fixture::new();
    let script = f.path("agent.sh");
    std::fs::write(&script, SUCCEEDS).unwrap();
    let work = f.path("work");
    std::fs::create_dir(work.join(".loop")).unwrap();
    let toml = format!(
        "agent = \"sh {}\"\nverify = [\"sh check.sh\"]\nname = \"from-the-file\"\ntimeout = \"1m\"\n",
        script.display()
    );
    std::fs::write(work.join(".loop/agent.toml"), toml).unwrap();
    let n = f.issue("Configured");
    let run = f.cli.run(&["agent", "tick", "--repo", work.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    let issue = f.show(&n);
    assert_eq!(issue["status"], "done");
    assert_eq!(issue["sessions"][0]["agent"], "from-the-file");
    std::fs::write(work.join(".loop/agent.toml"), "agnet = \"claude\"\n").unwrap();
    let run = f.cli.run(&["agent", "tick", "--repo", work.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains(".loop/agent.toml") && run.stderr.contains("agnet"), "{}", run.stderr);
}

#[test]
fn a_rate_limited_agent_releases_its_issue_without_blame() {
    let f = Fixture::new();
    let n = f.issue("Limited");
    let reset = chrono_free_now() + 3600;
    let agent = format!("echo 'Claude AI usage limit reached|{reset}'\nexit 1");
    let run = f.tick(&agent, &["--max-attempts", "1"]);
    assert_eq!(run.code, 0, "not a failure of the issue: {run:?}");
    assert!(run.stdout.contains("released: the agent is rate-limited"), "{run:?}");
    assert!(run.stderr.contains("pausing 3"), "waits for the reset it was told: {}", run.stderr);
    let issue = f.show(&n);
    assert_eq!(issue["status"], "todo", "the breaker did not count it");
    assert_eq!(issue["sessions"][0]["outcome"], "released");
}

fn chrono_free_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn kept_worktrees_of_failed_runs_are_collected() {
    let f = Fixture::new();
    f.issue("Kept");
    let run = f.tick("echo x > broken", &["--keep-failed"]);
    assert!(run.stdout.contains("failed"), "{run:?}");
    let work = f.path("work");
    assert_eq!(git(&work, &["worktree", "list"]).lines().count(), 2, "kept for a look");
    let fresh = f.cli.run(&["agent", "gc", "--repo", work.to_str().unwrap()]);
    assert!(fresh.stdout.starts_with("No kept worktree is older than"), "{fresh:?}");
    std::thread::sleep(Duration::from_millis(1100));
    let gc = f.cli.ok(&["agent", "gc", "--repo", work.to_str().unwrap(), "--keep-failed-for", "1s"]);
    assert!(gc.starts_with("removed ") && gc.contains("loop-worktrees"), "{gc}");
    assert_eq!(git(&work, &["worktree", "list"]).lines().count(), 1);
}

#[test]
fn run_on_a_schedule_ticks_at_the_times_it_names() {
    let f = Fixture::new();
    let n = f.issue("Scheduled");
    let script = f.path("agent.sh");
    std::fs::write(&script, SUCCEEDS).unwrap();
    let child = f.spawn_run(&script, &["--cron", "* * * * * *"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.show(&n)["status"] != "done" {
        assert!(Instant::now() < deadline, "no tick ran");
        std::thread::sleep(Duration::from_millis(200));
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("next tick at"));
    let work = f.path("work");
    let bad = f.cli.run(&["agent", "run", "--repo", work.to_str().unwrap(), "--agent", "true", "--cron", "every hour"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("--cron \"every hour\""), "{}", bad.stderr);
    let tick = f.tick(SUCCEEDS, &["--cron", "* * * * *"]);
    assert_eq!(tick.code, 2, "{tick:?}");
    assert!(tick.stderr.contains("--cron is for loop agent run"), "{}", tick.stderr);
}

#[test]
fn the_runner_syncs_the_projects_skills_before_it_starts() {
    let f = Fixture::new();
    let project = f.cli.json(&["projects", "create", "Shop"])["id"].as_str().unwrap().to_owned();
    std::fs::write(f.path("work/AGENTS.md"), "Keep checkout fast.\n").unwrap();
    let n = f.cli.json(&["create", "Speed up checkout", "--project", "Shop", "--status", "todo"])["number"].to_string();
    let run = f.tick(SUCCEEDS, &["--project", &project]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("Skills synced: 1 added"), "{}", run.stderr);
    assert!(f.mark("prompt").contains("Keep checkout fast."), "the agent's prompt carries the skill");
    assert_eq!(f.show(&n)["status"], "done");
}

#[test]
fn under_an_agent_token_the_runner_works_and_counts_its_sessions_under_the_tokens_name() {
    let mut f = Fixture::new();
    let made = f.cli.json(&["tokens", "create", "runner", "--role", "agent"]);
    let secret = made["secret"].as_str().expect("the secret").to_owned();
    let cli = std::mem::replace(&mut f.cli, Cli::new());
    f.cli = cli.env("LOOP_API_KEY", &secret);
    let first = f.issue("First");
    let run = f.tick(SUCCEEDS, &["--max-runs-per-hour", "1"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(f.show(&first)["status"], "done");
    assert_eq!(f.sessions(&first)[0]["agent"], "runner/test-agent", "the token's worker");
    let second = f.issue("Second");
    let run = f.tick(SUCCEEDS, &["--max-runs-per-hour", "1"]);
    assert!(run.stderr.contains("over budget: 1 runs in the last hour"), "{}", run.stderr);
    assert_eq!(f.show(&second)["status"], "todo", "nothing was claimed");

    // The breaker still hands an issue that keeps failing to a person: the token last held it.
    for attempt in 1..=2 {
        let run = f.tick("echo x > broken", &["--max-attempts", "2"]);
        assert_eq!(run.code, 1, "attempt {attempt}: {run:?}");
    }
    let issue = f.show(&second);
    assert_eq!(issue["status"], "backlog", "{issue}");
    // An agent token makes no labels; a person does, and then the breaker applies it.
    let third = f.issue("Third");
    let admin = Cli::new().env("LOOP_API_URL", &f.server.url).env("LOOP_API_KEY", KEY);
    admin.ok(&["labels", "create", "needs-human-review"]);
    for _ in 1..=2 {
        f.tick("echo x > broken", &["--max-attempts", "2"]);
    }
    let labels = f.show(&third)["labels"].clone();
    let names: Vec<&str> = labels.as_array().unwrap().iter().filter_map(|l| l["name"].as_str()).collect();
    assert!(names.contains(&"needs-human-review"), "{names:?}");
    assert!(names.contains(&"auto-generated"), "an agent made it: {names:?}");
}
