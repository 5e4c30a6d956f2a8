//! The loop closing from the shell: a hypothesis with criteria, validated by a goal's reading
//! once its task is underway; another resolved by a person; then `loop metrics` and
//! `loop changelog` tell the story, readable and with --json. And the triage queue kept clean:
//! snoozed and folded duplicates leave it.

mod common;

use common::{Cli, KEY, Server};

fn cli(server: &Server) -> Cli {
    Cli::new().env("LOOP_API_URL", &server.url).env("LOOP_API_KEY", KEY)
}

#[test]
fn a_hypothesis_validated_by_a_reading_shows_in_metrics_and_the_changelog() {
    let server = Server::start();
    let cli = cli(&server);
    let goal = cli.json(&[
        "goals",
        "create",
        "Conversion",
        "--metric",
        "conversion_rate",
        "--current",
        "3.0",
        "--target",
        "3.4",
    ]);
    let h = cli.json(&[
        "create",
        "Restore conversion",
        "--type",
        "hypothesis",
        "--hypothesis",
        "The OAuth redirect is slow",
        "--criteria",
        "conversion_rate >= 3.3 within 0h",
    ]);
    assert_eq!(h["hypothesis"]["criteria"]["comparison"], "gte");
    assert_eq!(h["hypothesis"]["status"], "proposed");
    let err = cli.fails(&["create", "x", "--type", "hypothesis", "--hypothesis", "s", "--criteria", "rate about 3"], 2);
    assert!(err.contains("METRIC OP THRESHOLD within HOURSh"), "{err}");

    let n = h["number"].to_string();
    let task = cli.json(&["create", "Speed up the redirect", "--parent", &n, "--status", "todo"]);
    let t = task["number"].to_string();
    cli.ok(&["start", &t]);
    assert_eq!(cli.json(&["show", &n])["hypothesis"]["status"], "testing");
    cli.ok(&["done", &t, "--summary", "cached the token", "--commit", "9f8e7d6c5b4a"]);
    let goal_id = goal["id"].as_str().unwrap();
    cli.ok(&["goals", "update", goal_id, "--current", "3.4"]);
    let shown = cli.ok(&["show", &n]);
    assert!(shown.contains("validated") && shown.contains("conversion_rate is 3.4"), "{shown}");

    let other =
        cli.json(&["create", "Pricing page confuses", "--type", "hypothesis", "--hypothesis", "Too many plans"]);
    let out = cli.ok(&["resolve", &other["number"].to_string(), "invalidated", "--reason", "interviews said no"]);
    assert!(out.contains("invalidated (interviews said no)"), "{out}");
    let err = cli.fails(&["resolve", &other["number"].to_string(), "validated", "--reason", "again"], 1);
    assert!(err.contains("already resolved as invalidated"), "{err}");

    let m = cli.json(&["metrics"]);
    assert_eq!(
        (m["hitRate"]["overall"]["validated"].as_u64(), m["hitRate"]["overall"]["rate"].as_f64()),
        (Some(1), Some(0.5))
    );
    let text = cli.ok(&["metrics"]);
    assert!(text.contains("Hypothesis hit rate: 50% (1 validated, 1 invalidated, 0 inconclusive)"), "{text}");
    assert!(text.contains("Throughput: 1 issues done"), "{text}");

    let log = cli.ok(&["changelog"]);
    assert!(log.contains("## Hypothesis #1: The OAuth redirect is slow"), "{log}");
    assert!(log.contains("- #2 Speed up the redirect") && log.contains("9f8e7d6"), "{log}");
    assert!(log.contains("validated"), "{log}");
    let json = cli.json(&["changelog", "--since", "2020-01-01"]);
    assert_eq!(json[0]["changes"][0]["number"], 2);
    let err = cli.fails(&["changelog", "--since", "last tuesday"], 1);
    assert!(err.contains("since") && err.contains("2026-11-01"), "{err}");
}

#[test]
fn triage_snoozes_and_folds_duplicates_from_the_shell() {
    let server = Server::start();
    let cli = cli(&server);
    cli.ok(&["signal", "Checkout times out"]);
    cli.ok(&["signal", "Payment page hangs"]);
    cli.ok(&["signal", "Avatar upload flaky"]);

    let out = cli.ok(&["triage", "snooze", "3", "--until", "3d"]);
    assert!(out.starts_with("Snoozed #3") && out.contains("it comes back to triage then"), "{out}");
    let err = cli.fails(&["triage", "snooze", "3", "--until", "soon"], 2);
    assert!(err.contains("12h, 3d, 2w"), "{err}");
    let out = cli.ok(&["triage", "duplicate", "2", "--of", "1"]);
    assert!(out.starts_with("Folded #2") && out.contains("into #1"), "{out}");
    let queue = cli.json(&["triage"]);
    let numbers: Vec<u64> = queue["data"].as_array().unwrap().iter().map(|i| i["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1], "snoozed and folded issues left the queue: {queue}");
    assert_eq!(cli.json(&["list", "--waiting", "true", "--status", "all"])["total"], 1);
    let err = cli.fails(&["triage", "duplicate", "1", "--of", "1"], 1);
    assert!(err.contains("cannot be a duplicate of itself"), "{err}");
}
