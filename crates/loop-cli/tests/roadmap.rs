//! Plans and conventions from the repository, against a real server. `loop roadmap compile`: a
//! first compile, the same file again, an edited file (a change, an addition, a removal, a
//! reordered phase), a cycle and a bad reference, checked through the API each time. `loop
//! skills sync`: files in a repository, synced, changed, removed, and rendered into a prompt.

mod common;

use common::{Cli, KEY, Server};
use serde_json::Value;

const FIRST: &str = "\
# Checkout {#checkout}
Make paying painless.

## Phase 1: Payments {#p1}
- [ ] Stripe client {#stripe}
  Wrap the API with retries.
  - [x] Pick the SDK {#sdk}
- [ ] Webhooks {#hooks} (after: stripe)

## Phase 2: Refunds {#p2}
1. Refund flow {#refunds}
";

/// Edited: a retitled item, a new item, an item removed, and the phases swapped.
const EDITED: &str = "\
# Checkout {#checkout}
Make paying painless.

## Phase 1: Refunds {#p2}
1. Refund flow, with partial refunds {#refunds}
2. Refund emails {#emails} (after: refunds)

## Phase 2: Payments {#p1}
- [ ] Stripe client {#stripe}
  Wrap the API with retries.
  - [x] Pick the SDK {#sdk}
";

struct Fixture {
    _server: Server,
    cli: Cli,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let server = Server::start();
        let cli = Cli::new().env("LOOP_API_URL", &server.url).env("LOOP_API_KEY", KEY);
        cli.ok(&["projects", "create", "Web"]);
        Fixture { _server: server, cli, dir: tempfile::tempdir().unwrap() }
    }

    fn compile(&self, text: &str, extra: &[&str]) -> common::Run {
        let file = self.dir.path().join("ROADMAP.md");
        std::fs::write(&file, text).unwrap();
        let mut args = vec!["roadmap", "compile", file.to_str().unwrap(), "--project", "Web"];
        args.extend(extra);
        self.cli.run(&args)
    }

    /// Every issue, by title.
    fn issues(&self) -> Vec<Value> {
        let all = self.cli.json(&["list", "--status", "all", "--limit", "200"]);
        all["data"].as_array().unwrap().clone()
    }

    fn by_title(&self, title: &str) -> Value {
        let number =
            self.issues().into_iter().find(|i| i["title"] == title).unwrap_or_else(|| panic!("no {title}"))["number"]
                .to_string();
        self.cli.json(&["show", &number])
    }

    /// The titles of the issues `title` waits for.
    fn blockers(&self, title: &str) -> Vec<String> {
        let issue = self.by_title(title);
        let id = issue["id"].as_str().unwrap().to_owned();
        let mut out: Vec<String> = issue["relations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["type"] == "blocked_by" && r["issueId"] == id.as_str())
            .map(|r| {
                self.issues().into_iter().find(|i| i["id"] == r["relatedIssueId"]).unwrap()["title"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        out.sort();
        out
    }
}

#[test]
fn a_roadmap_compiles_to_the_same_graph_every_time_and_edits_change_only_what_changed() {
    let f = Fixture::new();
    let dry = f.compile(FIRST, &["--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(dry.stdout.contains("+   Webhooks [hooks] (after stripe) new"), "{}", dry.stdout);
    assert!(f.issues().is_empty(), "a dry run writes nothing");

    let run = f.compile(FIRST, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("Compiled") && run.stdout.contains("7 created, 0 updated, 0 unchanged"),
        "{}",
        run.stdout
    );
    assert_eq!(f.issues().len(), 7);
    let stripe = f.by_title("Stripe client");
    assert_eq!((stripe["type"].as_str(), stripe["status"].as_str()), (Some("task"), Some("todo")));
    assert_eq!(stripe["parent"]["title"], "Phase 1: Payments");
    assert!(f.by_title("Phase 1: Payments")["parent"].is_null(), "plans do not nest");
    assert!(stripe["description"].as_str().unwrap().starts_with("Wrap the API with retries."));
    assert_eq!(f.by_title("Pick the SDK")["status"], "done");
    assert_eq!(f.by_title("Phase 1: Payments")["type"], "plan");
    assert_eq!(f.blockers("Webhooks"), ["Stripe client"]);
    assert_eq!(f.blockers("Stripe client"), ["Pick the SDK"], "a nested item is a step its task waits for");
    assert_eq!(f.blockers("Refund flow"), ["Pick the SDK", "Stripe client", "Webhooks"], "phase 2 waits for phase 1");

    // The same file again: the same graph, nothing written.
    let again = f.compile(FIRST, &["--json"]);
    let summary: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(
        (summary["created"].as_u64(), summary["updated"].as_u64(), summary["unchanged"].as_u64()),
        (Some(0), Some(0), Some(7)),
        "{summary}"
    );
    assert_eq!((summary["relationsAdded"].as_u64(), summary["relationsRemoved"].as_u64()), (Some(0), Some(0)));
    assert_eq!(f.issues().len(), 7);

    // Work started on an issue is not undone by a recompile.
    let number = f.by_title("Stripe client")["number"].to_string();
    f.cli.ok(&["start", &number]);

    let dry = f.compile(EDITED, &["--dry-run"]);
    assert!(dry.stdout.contains("~   Refund flow, with partial refunds [refunds] changes title"), "{}", dry.stdout);
    assert!(dry.stdout.contains("- #") && dry.stdout.contains("Webhooks: no longer in the file"), "{}", dry.stdout);
    let run = f.compile(EDITED, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("1 created"), "{}", run.stdout);
    assert!(
        run.stdout.contains("No longer in the file (left as it is): #") && run.stdout.contains("Webhooks"),
        "{}",
        run.stdout
    );
    assert_eq!(f.issues().len(), 8, "one new, none deleted, none duplicated");
    assert_eq!(f.by_title("Stripe client")["status"], "in_progress");
    // The phases swapped: payments now wait for refunds, not the other way.
    assert_eq!(f.blockers("Stripe client"), ["Pick the SDK", "Refund emails", "Refund flow, with partial refunds"]);
    assert!(f.blockers("Refund flow, with partial refunds").is_empty());
    assert_eq!(f.blockers("Refund emails"), ["Refund flow, with partial refunds"]);
}

#[test]
fn cycles_and_bad_references_are_refused_with_their_line_and_write_nothing() {
    let f = Fixture::new();
    let run = f.compile("- A {#a} (after: b)\n- B {#b} (after: a)\n", &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("ROADMAP.md: line ") && run.stderr.contains("cycle"), "{}", run.stderr);
    let run = f.compile("## Phase 1\n- A\n- B (after: nothing-like-this)\n", &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("line 3:") && run.stderr.contains("nothing-like-this"), "{}", run.stderr);
    assert!(f.issues().is_empty());
}

#[test]
fn skills_from_the_repository_reach_the_prompts_of_the_projects_issues() {
    let f = Fixture::new();
    let repo = f.dir.path().join("repo");
    std::fs::create_dir_all(repo.join(".loop/skills")).unwrap();
    std::fs::write(repo.join("AGENTS.md"), "Run `cargo test` before you say done.\n").unwrap();
    std::fs::write(repo.join(".loop/skills/style.md"), "Names say why.\n").unwrap();
    let repo_arg = repo.to_str().unwrap();
    let out = f.cli.ok(&["skills", "sync", "--project", "Web", "--repo", repo_arg]);
    assert!(out.starts_with("Skills synced: 2 added, 0 changed, 0 unchanged, 0 removed."), "{out}");
    let listed = f.cli.ok(&["skills", "list", "--project", "Web"]);
    assert!(listed.contains("AGENTS.md  v1") && listed.contains(".loop/skills/style.md  v1"), "{listed}");

    std::fs::write(repo.join("AGENTS.md"), "Run `cargo test` and `cargo clippy` before you say done.\n").unwrap();
    std::fs::remove_file(repo.join(".loop/skills/style.md")).unwrap();
    let out = f.cli.json(&["skills", "sync", "--project", "Web", "--repo", repo_arg]);
    assert_eq!(
        (out["changed"][0].as_str(), out["removed"][0].as_str()),
        (Some("AGENTS.md"), Some(".loop/skills/style.md"))
    );

    f.cli.ok(&["create", "Add retries", "--project", "Web", "--status", "todo"]);
    let claim = f.cli.json(&["dispatch"]);
    let prompt = claim["prompt"].as_str().unwrap();
    assert!(prompt.contains("### AGENTS.md\nRun `cargo test` and `cargo clippy` before you say done."), "{prompt}");
    assert!(!prompt.contains("Names say why."), "a removed skill is gone");
}
