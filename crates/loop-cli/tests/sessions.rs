//! Holding a claim from a shell, as `loop prime` tells agents to: dispatch, heartbeat, review,
//! release, fail; each readable and scriptable with --json. And what a signal's repeats show.

mod common;

use common::{Cli, KEY, Server};

fn cli(server: &Server) -> Cli {
    Cli::new().env("LOOP_API_URL", &server.url).env("LOOP_API_KEY", KEY)
}

#[test]
fn a_claim_is_renewed_reviewed_released_and_failed_from_the_shell() {
    let server = Server::start();
    let cli = cli(&server);
    cli.ok(&["create", "Tidy the logs", "--status", "todo"]);

    let claim = cli.json(&["dispatch"]);
    let session = claim["session"]["id"].as_str().unwrap().to_owned();
    let out = cli.ok(&["heartbeat", &session]);
    assert!(out.starts_with("Lease renewed until "), "{out}");
    assert_eq!(cli.json(&["heartbeat", &session])["id"], session.as_str());

    let out = cli.ok(&[
        "review",
        &session,
        "--clarity",
        "4",
        "--completeness",
        "3",
        "--relevance",
        "5",
        "--feedback",
        "say where logs live",
    ]);
    assert!(out.starts_with("Review recorded"), "{out}");
    let err = cli.fails(&["review", &session, "--clarity", "6", "--completeness", "3", "--relevance", "5"], 2);
    assert!(err.contains("--clarity"), "{err}");

    let out = cli.ok(&["release", &session, "--reason", "needs a person"]);
    assert!(out.contains("ended (released)") && out.contains("back in the queue"), "{out}");
    assert_eq!(cli.json(&["show", "1"])["status"], "todo");

    let session = cli.json(&["dispatch"])["session"]["id"].as_str().unwrap().to_owned();
    let err = cli.fails(&["fail", &session], 2);
    assert!(err.contains("--reason"), "{err}");
    let failed = cli.json(&["fail", &session, "--reason", "disk full on the runner"]);
    assert_eq!(
        (failed["outcome"].as_str(), failed["summary"].as_str()),
        (Some("failed"), Some("disk full on the runner"))
    );
    // An ended session cannot be renewed, and the error says so.
    let err = cli.fails(&["heartbeat", &session], 1);
    assert!(err.contains("already ended (failed)") && err.contains("stop working on it"), "{err}");
}

#[test]
fn a_repeated_signal_shows_how_often_it_was_seen() {
    let server = Server::start();
    let cli = cli(&server);
    let args = ["signal", "Checkout errors doubled", "--source", "sentry", "--source-id", "evt-1"];
    let first = cli.json(&args);
    let number = first["issue"]["number"].to_string();
    cli.ok(&args);
    let shown = cli.ok(&["show", &number]);
    let seen = shown.lines().find(|l| l.trim_start().starts_with("seen")).unwrap_or_else(|| panic!("{shown}"));
    assert!(seen.contains("2 times"), "{seen}");
    assert_eq!(cli.json(&["show", &number])["occurrences"], 2);
}
