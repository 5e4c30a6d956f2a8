//! Issue commands end to end: human tables, `--json` (the API's data), `--plain` (TSV).

mod common;

use common::{Server, assert_fits, assert_no_color};
use serde_json::Value;

fn numbers(list: &Value) -> Vec<i64> {
    list["data"].as_array().unwrap().iter().map(|i| i["number"].as_i64().unwrap()).collect()
}

#[test]
fn list_filters_pages_and_formats() {
    let server = Server::start();
    let cli = server.cli();
    cli.ok(&["projects", "create", "Web"]);
    cli.ok(&["labels", "create", "bug", "--color", "red"]);
    cli.ok(&["create", "Parent plan", "--type", "plan", "--status", "todo", "--project", "Web"]);
    cli.ok(&["create", "Child task", "--parent", "1", "--status", "backlog", "--priority", "urgent", "--label", "bug"]);
    cli.ok(&["create", "A very long title that goes on and on about the many details of a login problem on mobile"]);
    cli.ok(&["create", "Finished", "--status", "done"]);

    // Default: open issues only.
    assert_eq!(numbers(&cli.json(&["list"])), [1, 2, 3]);
    assert_eq!(numbers(&cli.json(&["list", "--status", "all"])), [1, 2, 3, 4]);
    assert_eq!(numbers(&cli.json(&["list", "--status", "done"])), [4]);
    assert_eq!(numbers(&cli.json(&["list", "-s", "todo,backlog"])), [1, 2]);
    assert_eq!(numbers(&cli.json(&["list", "--type", "plan"])), [1]);
    assert_eq!(numbers(&cli.json(&["list", "--priority", "urgent"])), [2]);
    assert_eq!(numbers(&cli.json(&["list", "--label", "bug"])), [2]);
    assert_eq!(numbers(&cli.json(&["list", "--project", "web"])), [1, 2], "a child joins its parent's project");
    assert_eq!(numbers(&cli.json(&["list", "--parent", "#1"])), [2]);

    // --json is the API's list unchanged: {data, total} with full issues.
    let page = cli.json(&["list", "--limit", "2"]);
    assert_eq!(page["total"], 3);
    assert_eq!(page.as_object().unwrap().len(), 2);
    let first = &page["data"][0];
    for key in ["id", "number", "title", "status", "priority", "type", "createdAt", "updatedAt", "deletedAt"] {
        assert!(first.get(key).is_some(), "issue lacks {key}: {first}");
    }

    // Human: a table that fits, a footer that pages.
    let cli80 = server.cli().env("COLUMNS", "80");
    let out = cli80.ok(&["list"]);
    assert_no_color(&out);
    assert_fits(&out, 80);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(header.trim_start().starts_with("#  STATUS") && header.contains("TITLE"), "{out}");
    assert!(!header.contains("UPDATED"), "80 columns leave the title the room: {out}");
    assert!(cli.ok(&["list"]).lines().next().unwrap().ends_with("UPDATED"), "100 columns have room for it");
    assert!(out.contains("A very long title that goes on and on") && out.contains('…'), "{out}");
    assert!(out.contains("urgent"), "{out}");
    assert!(out.trim_end().ends_with("3 open issues"), "{out}");
    let out = cli80.ok(&["list", "--limit", "2"]);
    assert!(out.contains("1–2 of 3 open issues · next page: --offset 2"), "{out}");
    let out = cli80.ok(&["list", "--limit", "2", "--offset", "2"]);
    assert!(out.contains("3–3 of 3 open issues"), "{out}");
    let out = cli80.ok(&["list", "--offset", "50"]);
    assert_eq!(out.trim(), "Nothing at offset 50: 3 open issues in all.");
    let out = cli80.ok(&["list", "--status", "canceled"]);
    assert_eq!(out.trim(), "No canceled issues match.");

    // Plain: TSV, no header, nothing truncated.
    let plain = cli80.ok(&["list", "--plain"]);
    let rows: Vec<Vec<&str>> = plain.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1][..5], ["2", "backlog", "urgent", "task", "Child task"]);
    assert_eq!(rows[2][4], "A very long title that goes on and on about the many details of a login problem on mobile");
    assert_eq!(rows[0].len(), 7, "number, status, priority, type, title, updated, id");
}

#[test]
fn show_has_everything_about_an_issue() {
    let server = Server::start();
    let cli = server.cli();
    cli.ok(&["labels", "create", "bug"]);
    cli.ok(&["create", "Parent", "--type", "plan", "--status", "todo"]);
    let desc = "Users are logged out after 30 minutes.\n\nSteps: open the app and wait.";
    let r = cli.run_with_stdin(
        &[
            "create",
            "Fix the login timeout",
            "--status",
            "todo",
            "--parent",
            "1",
            "--label",
            "bug",
            "--description-file",
            "-",
        ],
        Some(desc),
    );
    assert_eq!(r.code, 0, "{r:?}");
    cli.ok(&["create", "Deploy", "--status", "todo"]);
    cli.ok(&["block", "2", "3"]);
    cli.ok(&["comment", "2", "Reproduced", "on", "iOS"]);
    let c = cli.json(&["comment", "2", "A reply"]);
    cli.ok(&["comment", "2", "Nested answer", "--reply-to", c["id"].as_str().unwrap()]);
    cli.ok(&["dispatch", "2", "--agent", "agent-7"]);

    let out = cli.ok(&["show", "2"]);
    assert_no_color(&out);
    assert_fits(&out, 100);
    assert!(out.starts_with("#2 Fix the login timeout\nin_progress · none · task\n"), "{out}");
    for part in [
        "parent   #1 Parent (todo)",
        "labels   bug",
        "Description\n  Users are logged out after 30 minutes.\n\n  Steps: open the app and wait.",
        "blocks    3  todo",
        "Sessions (1)",
        "agent-7",
        "Comments (3)",
        "Reproduced on iOS",
        "↳ ",
        "Nested answer",
        "History",
        "created",
        "#2 blocks #3",
        "claimed by agent-7",
    ] {
        assert!(out.contains(part), "show lacks {part:?}:\n{out}");
    }
    let parent = cli.ok(&["show", "1"]);
    assert!(parent.contains("Children (1)") && parent.contains("Fix the login timeout"), "{parent}");
    let blocked = cli.ok(&["show", "3"]);
    assert!(blocked.contains("blocked by  2  in_progress  Fix the login timeout"), "{blocked}");

    // --json: the API's issue detail plus comments, sessions and events.
    let v = cli.json(&["show", "#2"]);
    assert_eq!(v["number"], 2);
    assert_eq!(v["description"], desc);
    assert_eq!(v["parent"]["number"], 1);
    assert_eq!(v["labels"][0]["name"], "bug");
    assert_eq!(v["relations"][0]["type"], "blocks");
    assert_eq!(v["comments"].as_array().unwrap().len(), 2);
    assert_eq!(v["comments"][1]["replies"][0]["body"], "Nested answer");
    assert_eq!(v["sessions"][0]["agent"], "agent-7");
    assert!(v["events"].as_array().unwrap().len() >= 4);
    // By id works as well as by number.
    let by_id = cli.json(&["show", v["id"].as_str().unwrap()]);
    assert_eq!(by_id["number"], 2);

    let plain = cli.ok(&["show", "2", "--plain"]);
    assert!(plain.starts_with("number\t2\ntitle\tFix the login timeout\nstatus\tin_progress\n"), "{plain}");
}

#[test]
fn create_takes_every_field() {
    let server = Server::start();
    let cli = server.cli();
    cli.ok(&["projects", "create", "Growth"]);
    cli.ok(&["labels", "create", "experiment"]);
    cli.ok(&["labels", "create", "ux"]);
    cli.ok(&["create", "Root"]);
    let i = cli.json(&[
        "create",
        "Caching cuts p95",
        "--type",
        "hypothesis",
        "--status",
        "backlog",
        "--priority",
        "2",
        "--project",
        "Growth",
        "--parent",
        "1",
        "--label",
        "experiment",
        "--label",
        "ux",
        "--description",
        "Why",
        "--signal-source",
        "posthog",
        "--signal-payload",
        r#"{"metric": "p95"}"#,
        "--hypothesis",
        "Caching halves p95",
        "--confidence",
        "0.7",
        "--evidence",
        "trace A",
        "--evidence",
        "trace B",
        "--validation-criteria",
        "p95 < 1s",
        "--prediction",
        "p95 halves",
    ]);
    assert_eq!(i["type"], "hypothesis");
    assert_eq!(i["status"], "backlog");
    assert_eq!(i["priority"], 2);
    assert_eq!(i["description"], "Why");
    assert_eq!(i["signalSource"], "posthog");
    assert_eq!(i["signalPayload"]["metric"], "p95");
    assert_eq!(i["hypothesis"]["confidence"], 0.7);
    assert_eq!(i["hypothesis"]["evidence"][1], "trace B");
    assert_eq!(i["hypothesis"]["validationCriteria"], "p95 < 1s");
    assert_eq!(i["hypothesis"]["prediction"], "p95 halves");
    let shown = cli.json(&["show", "2"]);
    assert_eq!(shown["labels"].as_array().unwrap().len(), 2);
    assert!(shown["projectId"].is_string());
    assert_eq!(shown["parentId"], cli.json(&["show", "1"])["id"]);
    let out = cli.ok(&["show", "2"]);
    assert!(out.contains("Hypothesis\n  Caching halves p95") && out.contains("confidence  0.7"), "{out}");
    assert!(out.contains("project  Growth"), "{out}");

    // Defaults: a task in triage, with a hint; --plain gives the row.
    let out = cli.ok(&["create", "Quick one"]);
    assert!(out.starts_with("Created #3 Quick one (triage · none · task)"), "{out}");
    assert!(out.contains("loop triage accept 3"), "{out}");
    let plain = cli.ok(&["create", "Scripted", "--plain"]);
    assert!(plain.starts_with("4\ttriage\tnone\ttask\tScripted\t"), "{plain}");
    // `none` means none when creating too, as the help says.
    let bare = cli.json(&["create", "Loose", "--project", "none", "--parent", "none"]);
    assert_eq!((&bare["projectId"], &bare["parentId"]), (&Value::Null, &Value::Null));
}

#[test]
fn update_and_the_lifecycle() {
    let server = Server::start();
    let cli = server.cli();
    cli.ok(&["labels", "create", "a"]);
    cli.ok(&["labels", "create", "b"]);
    cli.ok(&["create", "Parent"]);
    cli.ok(&["create", "Work", "--parent", "1", "--label", "a"]);

    let out = cli.ok(&[
        "update",
        "2",
        "--title",
        "Work, renamed",
        "--priority",
        "low",
        "--add-label",
        "b",
        "--status",
        "todo",
    ]);
    assert!(out.starts_with("Updated #2 Work, renamed (todo · low · task): "), "{out}");
    assert!(out.contains("title") && out.contains("labels"), "{out}");
    let v = cli.json(&["show", "2"]);
    let labels: Vec<&str> = v["labels"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(labels.len(), 2);
    let v = cli.json(&["update", "2", "--remove-label", "a", "--parent", "none", "--summary", "notes"]);
    assert_eq!(v["parentId"], Value::Null);
    assert_eq!(v["agentSummary"], "notes");
    let v = cli.json(&["show", "2"]);
    assert_eq!(v["labels"][0]["name"], "b");
    assert_eq!(v["labels"].as_array().unwrap().len(), 1);
    let v = cli.json(&["update", "2", "--label", "none"]);
    assert_eq!(v["number"], 2);
    assert_eq!(cli.json(&["show", "2"])["labels"].as_array().unwrap().len(), 0);

    let out = cli.ok(&["start", "2"]);
    assert!(out.starts_with("Started #2 Work, renamed"), "{out}");
    assert_eq!(cli.json(&["show", "2"])["status"], "in_progress");
    let v = cli.json(&["cancel", "2", "--reason", "not needed"]);
    assert_eq!(v["status"], "canceled");
    let shown = cli.json(&["show", "2"]);
    assert_eq!(shown["comments"][0]["body"], "Canceled: not needed");
    assert_eq!(shown["comments"][0]["authorType"], "human");

    let out = cli.ok(&["delete", "2"]);
    assert_eq!(out.trim(), "Deleted #2 Work, renamed");
    cli.fails(&["show", "2"], 1);
    let v = cli.json(&["delete", "1"]);
    assert_eq!(v["deleted"], true);
    assert_eq!(v["number"], 1);
}

#[test]
fn block_unblock_and_comments() {
    let server = Server::start();
    let cli = server.cli();
    cli.ok(&["create", "A", "--status", "todo"]);
    cli.ok(&["create", "B", "--status", "todo"]);
    let rel = cli.json(&["block", "1", "2"]);
    assert_eq!(rel["type"], "blocks");
    assert_eq!(cli.json(&["explain", "2"])["eligible"], false);
    let out = cli.ok(&["unblock", "1", "2"]);
    assert_eq!(out.trim(), "#1 A no longer blocks #2 B");
    assert_eq!(cli.json(&["explain", "2"])["eligible"], true);
    // A blocked_by relation made elsewhere is removed the same way.
    let b_id = cli.json(&["show", "2"])["id"].as_str().unwrap().to_owned();
    let a_id = cli.json(&["show", "1"])["id"].as_str().unwrap().to_owned();
    let plain = cli.ok(&["block", &a_id, &b_id, "--plain"]);
    assert!(plain.ends_with("\t#1\tblocks\t#2\n"), "{plain}");
    let removed = cli.json(&["unblock", "#1", "#2"]);
    assert_eq!(removed["type"], "blocks");

    let r = cli.run_with_stdin(&["comment", "1", "-"], Some("From **stdin**\n"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("Commented on #1"), "{r:?}");
    let c = cli.json(&["comment", "1", "Second"]);
    assert_eq!(c["body"], "Second");
    assert_eq!(c["authorType"], "human");
    let shown = cli.json(&["show", "1"]);
    assert_eq!(shown["comments"][0]["body"], "From **stdin**");
}

#[test]
fn the_typescript_cli_names_still_work() {
    let server = Server::start();
    let cli = server.cli();
    let i = cli.json(&["issues", "create", "Old habits", "--type", "task", "--priority", "3"]);
    assert_eq!(i["priority"], 3);
    assert_eq!(cli.json(&["issues", "list", "--status", "triage"])["total"], 1);
    assert_eq!(cli.json(&["issues", "view", "1"])["title"], "Old habits");
    cli.ok(&["comments", "add", "1", "via the old name"]);
    cli.ok(&["issues", "start", "1"]);
    let done = cli.json(&["issues", "done", "1", "--outcome", "finished"]);
    assert_eq!(done["status"], "done");
    assert_eq!(done["agentSummary"], "finished");
    cli.ok(&["dispatch", "queue", "--limit", "5"]);
    cli.ok(&["dashboard"]);
    let status = cli.json(&["dashboard"]);
    assert_eq!(status["issues"]["done"], 1);
}

#[test]
fn colour_only_when_asked_and_never_with_no_color() {
    let server = Server::start();
    let cli = server.cli();
    cli.ok(&["create", "Coloured", "--status", "todo", "--priority", "urgent"]);
    // stdout is a pipe here: no colour.
    assert_no_color(&cli.ok(&["list"]));
    let forced = server.cli().env("CLICOLOR_FORCE", "1");
    assert!(forced.ok(&["list"]).contains("\u{1b}["), "CLICOLOR_FORCE colours a pipe");
    let no = server.cli().env("CLICOLOR_FORCE", "1").env("NO_COLOR", "1");
    assert_no_color(&no.ok(&["list"]));
    assert_no_color(&no.ok(&["show", "1"]));
    assert_no_color(&no.ok(&["status"]));
    // Never in --json or --plain.
    assert_no_color(&forced.ok(&["list", "--plain"]));
    assert_no_color(&forced.ok(&["list", "--json"]));
}

#[test]
fn narrow_terminals_get_narrow_tables() {
    let server = Server::start();
    let cli = server.cli();
    let title = "An issue title long enough to need truncating in any terminal narrower than a cinema screen";
    cli.ok(&["create", title, "--status", "todo"]);
    cli.ok(&["create", "Second", "--status", "todo"]);
    cli.ok(&["comment", "1", &"word ".repeat(60)]);
    cli.ok(&["dispatch", "2"]);
    for width in ["60", "80", "120"] {
        let narrow = server.cli().env("COLUMNS", width);
        let w: usize = width.parse().unwrap();
        for args in [&["list"][..], &["show", "1"], &["status"], &["next"], &["templates"], &["explain", "1"]] {
            let out = narrow.ok(args);
            assert_fits(&out, w);
        }
    }
}
