//! The runner's second half, end to end: signed GitHub deliveries about the pull requests
//! `loop agent` opened (review comments, a red check, a merge, a close, a reply), questions to a
//! person, blockers that wait for a merge, and the merge queue, against a real `loop serve` and
//! a bare git repository as the remote.

mod common;

use common::BIN;
use common::runner::{Fixture, git};
use serde_json::{Value, json};

/// Writes a feature file and reports; records its prompt in `$MARK_DIR/prompt`.
const FEATURE: &str =
    "cat > \"$MARK_DIR/prompt\"\necho 'feature' > feature.txt\necho '{\"summary\": \"Added the feature\"}'\n";

/// The pull request `pr.sh` "opens" for every issue.
const PR_URL: &str = "https://example.test/o/r/pull/7";

fn data(reply: &(u16, Value)) -> &Value {
    assert!((200..300).contains(&reply.0), "HTTP {}: {}", reply.0, reply.1);
    &reply.1["data"]
}

/// The pull request `loop agent` opened for issue `number`: its branch.
fn pull_request_branch(f: &Fixture, number: &str) -> String {
    let issue = f.show(number);
    let prs = issue["pullRequests"].as_array().cloned().unwrap_or_default();
    assert_eq!(prs.len(), 1, "one pull request: {issue}");
    assert_eq!(prs[0]["url"], PR_URL);
    prs[0]["branch"].as_str().expect("the runner records the branch").to_owned()
}

fn pull_request(branch: &str) -> Value {
    json!({ "number": 7, "html_url": PR_URL, "head": { "ref": branch }, "body": "", "title": "" })
}

/// Commits on the remote's `branch` that are not on main, oldest first.
fn commits_on(f: &Fixture, branch: &str) -> Vec<String> {
    let range = format!("main..{branch}");
    let log = git(&f.path("remote.git"), &["log", "--first-parent", "--reverse", "--format=%s", &range]);
    log.lines().map(str::to_owned).collect()
}

#[test]
fn review_comments_and_a_red_check_are_fixed_on_the_same_branch_and_pull_request() {
    let f = Fixture::new();
    let n = f.issue("Add the feature file");
    let first = f.tick(FEATURE, &[]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let branch = pull_request_branch(&f, &n);
    assert!(f.mark("pr-args").contains(&branch));
    std::fs::remove_file(f.path("marks/pr-args")).unwrap();

    // A reviewer comments on a line; CI goes red on the branch. Each sends the issue back.
    let comment = json!({
        "action": "created",
        "pull_request": pull_request(&branch),
        "comment": { "body": "Say hello instead", "path": "feature.txt", "line": 1, "user": { "login": "dana" },
                     "html_url": "https://example.test/o/r/pull/7#discussion_r1" },
    });
    let reply = f.deliver("pull_request_review_comment", &comment);
    assert_eq!(data(&reply)["issue"]["status"], "todo", "{reply:?}");
    assert_eq!(f.deliver("pull_request_review_comment", &comment).1["duplicate"], true, "a redelivery adds nothing");
    let check = json!({
        "action": "completed",
        "check_run": { "name": "unit tests", "conclusion": "failure", "head_branch": branch, "head_sha": "abc",
                       "pull_requests": [{ "number": 7 }], "html_url": "https://example.test/o/r/runs/9",
                       "output": { "title": "1 failed", "text": "running 3 tests\nassert hello == feature FAILED" } },
    });
    data(&f.deliver("check_run", &check));
    // A red check on someone else's branch is still a CI signal, not rework.
    let mut other = check.clone();
    other["check_run"]["head_branch"] = json!("feature/other");
    assert_eq!(f.deliver("check_run", &other).0, 201);
    let pending = data(&f.api("GET", &format!("/api/issues/{n}/rework"), None)).clone();
    assert_eq!(pending.as_array().map(Vec::len), Some(2), "{pending}");

    // The next run continues the branch with the feedback in its prompt, and opens no PR.
    let fix = "cat > \"$MARK_DIR/prompt\"\ntest -f feature.txt && echo 'hello' > feature.txt\necho '{\"summary\": \"Said hello\"}'\n";
    let second = f.tick(fix, &[]);
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    let prompt = f.mark("prompt");
    for part in
        ["reworking task", "Say hello instead", "`feature.txt:1`", "unit tests", "assert hello == feature FAILED"]
    {
        assert!(prompt.contains(part), "the rework prompt lacks {part:?}:\n{prompt}");
    }
    assert!(!f.path("marks/pr-args").exists(), "never a second pull request for one issue");
    assert_eq!(f.pushed().lines().count(), 1, "one branch: {}", f.pushed());
    assert_eq!(commits_on(&f, &branch).len(), 2, "the fix is a second commit on the same branch");
    assert_eq!(git(&f.path("remote.git"), &["show", &format!("{branch}:feature.txt")]), "hello");
    let issue = f.show(&n);
    assert_eq!(issue["status"], "done");
    assert_eq!(issue["commits"].as_array().map(Vec::len), Some(2), "the issue keeps both commits");
    assert_eq!(pull_request_branch(&f, &n), branch);
    assert_eq!(data(&f.api("GET", &format!("/api/issues/{n}/rework"), None)), &json!([]), "addressed");

    // The merged delivery records the merge; a closed, unmerged one sends its issue to triage.
    let mut merged = json!({ "action": "closed", "pull_request": pull_request(&branch) });
    merged["pull_request"]["merged"] = json!(true);
    merged["pull_request"]["merge_commit_sha"] = json!("0123456789abcdef");
    let issue = data(&f.deliver("pull_request", &merged)).clone();
    assert!(issue["issue"]["mergedAt"].is_string(), "{issue}");
    let m = f.issue("Another change");
    assert_eq!(f.tick(FEATURE, &[]).code, 0);
    let closed = json!({ "action": "closed", "pull_request": pull_request(&pull_request_branch(&f, &m)) });
    assert_eq!(data(&f.deliver("pull_request", &closed))["issue"]["status"], "triage");
    assert!(f.cli.ok(&["show", &m]).contains("closed without merging"));
}

#[test]
fn an_agent_asks_a_person_and_the_answer_on_the_pull_request_resumes_it() {
    let f = Fixture::new();
    let n = f.issue("Cache the rates");
    assert_eq!(f.tick(FEATURE, &[]).code, 0);
    let branch = pull_request_branch(&f, &n);
    let review = json!({
        "action": "submitted",
        "pull_request": pull_request(&branch),
        "review": { "state": "changes_requested", "body": "Cache for a day, not forever", "user": { "login": "dana" } },
    });
    data(&f.deliver("pull_request_review", &review));

    // The agent cannot decide alone: it asks (through the CLI, with its claim's token) and stops.
    let asks = format!(
        "echo 'half done' > wip.txt\n{BIN} --api-url \"$LOOP_API_URL\" --token \"$LOOP_TOKEN\" inbox ask 'Serve stale rates when the refresh fails, or fail?'\n"
    );
    let run = f.tick(&asks, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("waiting for a person's answer"), "{}", run.stdout);
    let waiting = f.show(&n);
    assert_eq!((waiting["status"].as_str(), waiting["awaitingInput"].as_bool()), (Some("todo"), Some(true)));
    assert!(f.cli.ok(&["inbox"]).contains("Serve stale rates"), "the inbox lists it");
    assert!(commits_on(&f, &branch).iter().any(|c| c.contains("waiting for an answer")), "the work so far is kept");
    assert_eq!(f.tick(FEATURE, &[]).code, 0);
    assert_eq!(f.sessions(&n).len(), 2, "nothing is dispatched while it waits");

    // A person answers on the pull request.
    let answer = json!({
        "action": "created",
        "issue": { "number": 7, "pull_request": { "url": PR_URL }, "title": format!("#{n}: Cache the rates"),
                   "body": format!("Added it.\n\nLoop-Issue: #{n}\n") },
        "comment": { "body": "Serve stale for a day, and log it.", "user": { "login": "dana", "type": "User" } },
    });
    data(&f.deliver("issue_comment", &answer));
    assert_eq!(f.show(&n)["awaitingInput"], false);
    assert!(f.cli.ok(&["inbox"]).contains("No agent is waiting"));

    let resume = "cat > \"$MARK_DIR/prompt\"\ntest -f wip.txt && echo 'stale for a day' > rates.txt\necho '{\"summary\": \"Serves stale\"}'\n";
    let run = f.tick(resume, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let prompt = f.mark("prompt");
    for part in ["Serve stale rates when the refresh fails", "Serve stale for a day, and log it.", "Cache for a day"] {
        assert!(prompt.contains(part), "the prompt lacks {part:?}:\n{prompt}");
    }
    assert_eq!(f.show(&n)["status"], "done");
    assert_eq!(git(&f.path("remote.git"), &["show", &format!("{branch}:rates.txt")]), "stale for a day");
    assert_eq!(f.pushed().lines().count(), 1);
}

#[test]
fn a_person_answers_from_the_cli_inbox() {
    let f = Fixture::new();
    let n = f.issue("Pick a colour");
    let claim = f.cli.json(&["dispatch"]);
    let (session, token) = (claim["session"]["id"].as_str().unwrap(), claim["token"].as_str().unwrap());
    assert!(f.cli.fails(&["inbox", "answer", &n, "Blue"], 2).contains("no open question"));
    let asked = f.cli.run(&["--token", token, "inbox", "ask", "Blue or green?", "--session", session]);
    assert_eq!(asked.code, 0, "{}{}", asked.stdout, asked.stderr);
    assert!(asked.stdout.contains("stop working on it"), "{}", asked.stdout);
    assert!(f.cli.ok(&["explain", &n]).contains("answer"), "explain says why it waits");
    let answered = f.cli.ok(&["inbox", "answer", &n, "Blue"]);
    assert!(answered.contains("Answered"), "{answered}");
    let next = f.cli.json(&["dispatch"]);
    assert_eq!(next["issue"]["number"].to_string(), n, "answered, it is dispatched again");
    assert!(next["prompt"].as_str().unwrap().contains("Blue or green?"));
}

#[test]
fn a_dependant_waits_for_its_blockers_merge_when_asked_to() {
    let f = Fixture::new();
    let blocker = f.cli.json(&["create", "The API", "--status", "todo", "--priority", "urgent"])["number"].to_string();
    let dependant = f.issue("The UI on the API");
    f.cli.ok(&["block", &blocker, &dependant, "--until-merged"]);
    assert_eq!(f.tick(FEATURE, &[]).code, 0);
    assert_eq!(f.show(&blocker)["status"], "done");
    assert_eq!(f.tick(FEATURE, &[]).code, 0);
    assert_eq!(f.show(&dependant)["status"], "todo", "done is not merged: the dependant waits");
    assert!(f.cli.ok(&["explain", &dependant]).contains("not merged"));

    let mut merged = json!({ "action": "closed", "pull_request": pull_request(&pull_request_branch(&f, &blocker)) });
    merged["pull_request"]["merged"] = json!(true);
    data(&f.deliver("pull_request", &merged));
    assert_eq!(f.tick(FEATURE, &[]).code, 0);
    assert_eq!(f.show(&dependant)["status"], "done", "merged, the dependant ran");
}

/// Lands approved work: `git push` of the updated branch to main stands for GitHub's merge.
const MERGE: &str = "git push --quiet origin HEAD:refs/heads/main";

#[test]
fn the_merge_queue_lands_one_at_a_time_after_reverifying_and_sends_conflicts_back() {
    let f = Fixture::new();
    let mut numbers = vec![];
    for (title, file) in [("Add a", "a.txt"), ("Add b", "b.txt"), ("Reword the readme", "README")] {
        let n = f.issue(title);
        let agent = format!("echo '{title}' > {file}\necho '{{\"summary\": \"{title}\"}}'\n");
        assert_eq!(f.tick(&agent, &[]).code, 0);
        numbers.push(n);
    }
    // Meanwhile the base moves on: the readme changes there too.
    let seed = f.path("seed");
    std::fs::write(seed.join("README"), "the project, renamed\n").unwrap();
    git(&seed, &["commit", "--quiet", "-am", "rename"]);
    git(&seed, &["push", "--quiet", "origin", "main"]);
    // People approve: a GitHub review for the first, the API for the others.
    let review = json!({
        "action": "submitted",
        "pull_request": pull_request(&pull_request_branch(&f, &numbers[0])),
        "review": { "state": "approved", "user": { "login": "dana" } },
    });
    assert!(data(&f.deliver("pull_request_review", &review))["issue"]["approvedAt"].is_string());
    for n in &numbers[1..] {
        data(&f.api("POST", &format!("/api/issues/{n}/approval"), None));
    }
    let queue = data(&f.api("GET", "/api/merge-queue", None)).clone();
    assert_eq!(queue.as_array().map(Vec::len), Some(3));

    // Landing is off until a merge command is given.
    let work = f.path("work");
    let work = work.to_str().unwrap();
    assert!(f.cli.fails(&["agent", "land", "--repo", work], 2).contains("--merge-command"));

    // Two landers at once: the second finds the slot held and lands nothing.
    let verify =
        "echo >> \"$MARK_DIR/verifying\"; sh check.sh && sleep 1 && git rev-parse HEAD >> \"$MARK_DIR/verified\"";
    let args = ["agent", "land", "--repo", work, "--merge-command", MERGE, "--verify", verify, "--name"];
    let first = std::process::Command::new(BIN)
        .args(args)
        .arg("lander-1")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", f.path("marks"))
        .env("MARK_DIR", f.path("marks"))
        .env("LOOP_API_URL", &f.server.url)
        .env("LOOP_API_KEY", common::KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first is verifying, it holds the slot.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while f.mark("verifying").is_empty() {
        assert!(std::time::Instant::now() < deadline, "the first lander never started verifying");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = f.cli.run(&[&args[..], &["lander-2"]].concat());
    let first = first.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&first.stdout).into_owned();
    assert_eq!(first.status.code(), Some(1), "one did not land:\n{out}{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    assert!(second.stdout.contains("lander-1") && second.stdout.contains("nothing landed"), "{}", second.stdout);

    // a and b landed, one after the other, rebased (a straight line on main) and re-verified.
    let remote = f.path("remote.git");
    assert_eq!(git(&remote, &["show", "main:a.txt"]), "Add a");
    assert_eq!(git(&remote, &["show", "main:b.txt"]), "Add b");
    assert_eq!(git(&remote, &["rev-list", "--merges", "main"]), "", "rebased, not merged");
    let verified = f.mark("verified");
    assert_eq!(verified.lines().count(), 2, "verified before each landing:\n{verified}");
    assert!(verified.lines().any(|sha| git(&remote, &["rev-list", "main"]).contains(sha)));
    for n in &numbers[..2] {
        assert!(f.show(n)["mergedAt"].is_string(), "#{n} merged: {}", f.show(n));
    }
    // The readme change conflicts with the base: it goes back as rework naming the file.
    let readme = &numbers[2];
    assert_eq!(f.show(readme)["status"], "todo", "{out}");
    let rework = data(&f.api("GET", &format!("/api/issues/{readme}/rework"), None)).clone();
    assert_eq!(rework[0]["kind"], "conflict");
    assert!(rework[0]["body"].as_str().unwrap().contains("`README`"), "{rework}");

    // The rework claim gets the conflict to resolve on the same branch; then it lands.
    let resolve = "cat > \"$MARK_DIR/prompt\"\ngrep -q '<<<<<<<' README && echo 'the project, renamed and reworded' > README\necho '{\"summary\": \"Resolved\"}'\n";
    let run = f.tick(resolve, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(f.mark("prompt").contains("Resolve the conflict with main"), "{}", f.mark("prompt"));
    data(&f.api("POST", &format!("/api/issues/{readme}/approval"), None));
    let landed = f.cli.run(&[&args[..], &["lander-1"]].concat());
    assert_eq!(landed.code, 0, "{}{}", landed.stdout, landed.stderr);
    assert_eq!(git(&remote, &["show", "main:README"]), "the project, renamed and reworded");
    assert!(f.show(readme)["mergedAt"].is_string());
}

#[test]
fn of_several_attempts_only_the_smallest_verified_change_is_pushed() {
    let f = Fixture::new();
    let n = f.issue("Add the greeting");
    // Three agents at once, each in its own worktree: a long change, a short one, a broken one.
    let agent = "case \"$LOOP_WORKTREE\" in\n\
        *attempt-1) seq 1 20 > greeting.txt ;;\n\
        *attempt-2) echo hello > greeting.txt ;;\n\
        *) echo hello > greeting.txt; touch broken ;;\n\
        esac\necho '{\"summary\": \"greeted\"}'\n";
    let run = f.tick(agent, &["--attempts", "3"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let branch = pull_request_branch(&f, &n);
    let remote = f.path("remote.git");
    assert_eq!(git(&remote, &["show", &format!("{branch}:greeting.txt")]), "hello", "the smallest passing change");
    assert_eq!(f.pushed().lines().count(), 1, "only the chosen attempt is pushed: {}", f.pushed());
    let session = f.sessions(&n)[0]["id"].as_str().unwrap().to_owned();
    let record = data(&f.api("GET", &format!("/api/sessions/{session}/record"), None)).clone();
    let attempts = record["attestation"]["attempts"].as_array().cloned().unwrap_or_default();
    let results: Vec<&str> = attempts.iter().map(|a| a["result"].as_str().unwrap()).collect();
    assert_eq!(results.len(), 3, "{record}");
    assert!(
        results[0].contains("not chosen") && results[1].contains("chosen") && results[2].starts_with("failed"),
        "{results:?}"
    );
    assert!(f.cli.ok(&["show", &n]).contains("attempt 2 (default): verified; chosen"));

    // An issue's attempts:N label asks for attempts too; none verified, nothing is pushed.
    let m = f.issue("Break everything");
    f.cli.ok(&["labels", "create", "attempts:2"]);
    f.cli.ok(&["update", &m, "--add-label", "attempts:2"]);
    let run = f.tick("touch broken\necho done\n", &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(f.pushed().lines().count(), 1, "nothing more pushed");
    assert_eq!(f.show(&m)["status"], "todo");
}

#[test]
fn the_issue_chooses_the_agent_profile_and_a_rate_limited_one_hands_over_to_its_fallback() {
    let f = Fixture::new();
    let work = f.path("work");
    std::fs::create_dir(work.join(".loop")).unwrap();
    let limited = f.path("limited.sh");
    std::fs::write(
        &limited,
        "echo \"$LOOP_MODEL\" >> \"$MARK_DIR/models\"\necho 'Error: rate limit reached'\nexit 1\n",
    )
    .unwrap();
    let steady = f.path("steady.sh");
    std::fs::write(
        &steady,
        "echo \"$LOOP_MODEL\" >> \"$MARK_DIR/models\"\necho done > done.txt\necho '{\"summary\": \"done\"}'\n",
    )
    .unwrap();
    let toml = format!(
        "agent = \"sh {steady}\"\nverify = [\"sh check.sh\"]\n\
         [profiles.fast]\nagent = \"sh {limited}\"\nmodel = \"small-model\"\nlabels = [\"quick\"]\nfallback = \"steady\"\n\
         [profiles.steady]\nmodel = \"big-model\"\n",
        steady = steady.display(),
        limited = limited.display()
    );
    std::fs::write(work.join(".loop/agent.toml"), toml).unwrap();
    let quick = f.issue("A quick one");
    f.cli.ok(&["labels", "create", "quick"]);
    f.cli.ok(&["update", &quick, "--add-label", "quick"]);
    let run = f.cli.run(&["agent", "tick", "--repo", work.to_str().unwrap(), "--name", "profiled"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("profile fast is rate-limited") && run.stderr.contains("trying steady"),
        "{}",
        run.stderr
    );
    assert_eq!(f.mark("models"), "small-model\nbig-model\n", "the label's profile, then its fallback");
    assert_eq!(f.show(&quick)["status"], "done");
    assert!(f.cli.ok(&["show", &quick]).contains("profile: steady"));

    // A plain issue runs the top-level agent, without a model.
    let plain = f.issue("A plain one");
    assert_eq!(f.cli.run(&["agent", "tick", "--repo", work.to_str().unwrap(), "--name", "profiled"]).code, 0);
    assert_eq!(f.mark("models"), "small-model\nbig-model\n\n");
    assert_eq!(f.show(&plain)["status"], "done");
    // Several attempts may each run another profile.
    let toml = format!(
        "agent = \"sh {steady}\"\nverify = [\"sh check.sh\"]\nattempt-profiles = [\"one\", \"two\"]\n\
         [profiles.one]\nmodel = \"m-one\"\n[profiles.two]\nmodel = \"m-two\"\n",
        steady = steady.display()
    );
    std::fs::write(work.join(".loop/agent.toml"), toml).unwrap();
    std::fs::remove_file(f.path("marks/models")).unwrap();
    let both = f.issue("Two ways");
    let run = f.cli.run(&["agent", "tick", "--repo", work.to_str().unwrap(), "--attempts", "2"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let mut models: Vec<String> = f.mark("models").lines().map(str::to_owned).collect();
    models.sort();
    assert_eq!(models, ["m-one", "m-two"]);
    assert!(f.cli.ok(&["show", &both]).contains("attempt 2 (two)"));
    // A fallback that names no profile is refused before anything runs.
    std::fs::write(work.join(".loop/agent.toml"), "agent = \"true\"\n[profiles.a]\nfallback = \"b\"\n").unwrap();
    let bad = f.cli.run(&["agent", "tick", "--repo", work.to_str().unwrap()]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("profiles.a.fallback"), "{}", bad.stderr);
}
