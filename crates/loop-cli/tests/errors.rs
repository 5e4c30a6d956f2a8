//! Errors say what to do, and exit codes follow the rule: 0 success, 1 error, 2 usage error.

mod common;

use common::{Cli, KEY, Server, dead_url};

#[test]
fn an_unreachable_server_names_the_url_and_how_to_start_one() {
    let url = dead_url();
    let cli = Cli::new().env("LOOP_API_URL", &url).env("LOOP_API_KEY", KEY);
    for args in [&["list"][..], &["status"], &["show", "1"], &["dispatch"], &["list", "--json"]] {
        let err = cli.fails(args, 1);
        assert!(err.starts_with("error: cannot reach the Loop server at "), "{err}");
        assert!(err.contains(&url), "{err}");
        assert!(err.contains("loop serve"), "{err}");
        assert!(err.contains("loop config set url"), "{err}");
        assert!(!err.contains('\u{1b}'), "no colour off a terminal: {err}");
    }
    // With nothing configured the default URL is tried.
    let err = Cli::new().fails(&["list"], 1);
    assert!(err.contains("http://localhost:5667"), "{err}");
}

/// Something that answers 200 with `body` to every request, as a login proxy might.
fn answering(body: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.read(&mut [0; 4096]);
            let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    url
}

#[test]
fn a_body_that_is_not_loops_json_is_an_error_not_an_empty_list() {
    for body in ["<html><body>Sign in</body></html>", r#"{"foo":1}"#] {
        let cli = Cli::new().env("LOOP_API_URL", &answering(body)).env("LOOP_API_KEY", KEY);
        for args in [&["list"][..], &["list", "--json"]] {
            let err = cli.fails(args, 1);
            assert!(err.contains("answered GET /api/issues with something that is not Loop's JSON"), "{err}");
        }
    }
}

#[test]
fn an_unreachable_database_says_why_at_once() {
    let dead = dead_url().replace("http://", "postgres://loop@");
    let started = std::time::Instant::now();
    let err = Cli::new().fails(&["migrate", "--database-url", &format!("{dead}/loop")], 1);
    assert!(err.contains("cannot connect to PostgreSQL at 127.0.0.1:") && err.contains("refused"), "{err}");
    assert!(!err.contains("internal error"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "not after the pool's 10 s timeout");
}

#[test]
fn a_wrong_or_missing_key_says_how_to_set_one() {
    let server = Server::start();
    let err = server.cli().env("LOOP_API_KEY", "loop_wrong").fails(&["list"], 1);
    assert!(err.contains("rejected the API key from env LOOP_API_KEY"), "{err}");
    assert!(err.contains("loop config set token <key>") && err.contains("LOOP_API_KEY"), "{err}");

    let err = server.cli().without("LOOP_API_KEY").fails(&["status"], 1);
    assert!(err.contains("no API key is configured"), "{err}");
    assert!(err.contains("loop config set token <key>"), "{err}");

    // The TypeScript CLI's variable works too, and the flag beats the environment.
    server.cli().without("LOOP_API_KEY").env("LOOP_API_TOKEN", KEY).ok(&["list"]);
    let err = server.cli().fails(&["list", "--token", "loop_bad"], 1);
    assert!(err.contains("rejected the API key from flag --token"), "{err}");
}

#[test]
fn unknown_issues_are_not_found_by_number() {
    let server = Server::start();
    let cli = server.cli();
    cli.ok(&["create", "Exists", "--status", "todo"]);
    for args in [
        &["show", "999"][..],
        &["show", "#999"],
        &["done", "999"],
        &["start", "999"],
        &["cancel", "999"],
        &["delete", "999"],
        &["explain", "999"],
        &["update", "999", "--title", "x"],
        &["comment", "999", "hello"],
        &["block", "1", "999"],
        &["dispatch", "999"],
        &["triage", "accept", "999"],
        &["templates", "preview", "999"],
    ] {
        let err = cli.fails(args, 1);
        assert!(err.contains("issue #999 not found"), "loop {}: {err}", args.join(" "));
    }
    let err = cli.fails(&["show", "no-such-id"], 1);
    assert!(err.contains("issue no-such-id not found"), "{err}");
    let err = cli.fails(&["create", "Child", "--parent", "77"], 1);
    assert!(err.contains("parent issue #77 not found"), "{err}");
    let err = cli.fails(&["list", "--project", "Nope"], 1);
    assert!(err.contains("project \"Nope\" not found") && err.contains("loop projects"), "{err}");
    let err = cli.fails(&["templates", "show", "nope"], 1);
    assert!(err.contains("template \"nope\" not found"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let server = Server::start();
    let cli = server.cli();
    cli.ok(&["create", "One"]);
    for args in [
        &["list", "--bogus"][..],
        &["list", "--status", "nope"],
        &["list", "--limit", "0"],
        &["list", "--json", "--plain"],
        &["create"],
        &["create", "x", "--priority", "extreme"],
        &["create", "x", "--type", "bug"],
        &["create", "x", "--signal-payload", "[1]"],
        &["update", "1"],
        &["show"],
        &["show", "#"],
        &["nonsense"],
        &["config", "set", "url", "not a url"],
        &["config", "set", "colour", "x"],
        &["completions", "tcsh"],
        &["dispatch", "--wait", "120"],
    ] {
        let err = cli.fails(args, 2);
        assert!(!err.is_empty(), "loop {} says nothing", args.join(" "));
    }
    let err = cli.fails(&["update", "1"], 2);
    assert!(err.contains("nothing to change") && err.contains("--title"), "{err}");
}

#[test]
fn validation_errors_name_the_field_and_the_flag() {
    let server = Server::start();
    let cli = server.cli();
    cli.ok(&["create", "one"]);
    // Hints name the argument as this command spells it.
    let err = cli.fails(&["create", ""], 1);
    assert!(err.starts_with("error: title: "), "{err}");
    assert!(err.contains("(see TITLE)"), "{err}");
    let long = "x".repeat(501);
    let err = cli.fails(&["update", "1", "--title", &long], 1);
    assert!(err.contains("title") && err.contains("(see --title)"), "{err}");
    assert!(cli.fails(&["signal", ""], 1).contains("(see TEXT)"));
    let err = cli.fails(&["labels", "create", "x", "--color", ""], 1);
    assert!(err.contains("color") && err.contains("--color"), "{err}");
    let err = cli.fails(&["comment", "1", "hi", "--reply-to", "nope"], 1);
    assert!(err.contains("(see --reply-to)") && !err.contains("--parent"), "{err}");
}

#[test]
fn conflicts_explain_themselves() {
    let server = Server::start();
    let cli = server.cli();
    cli.ok(&["create", "Blocker", "--status", "todo"]);
    cli.ok(&["create", "Blocked", "--status", "todo"]);
    cli.ok(&["block", "1", "2"]);
    let err = cli.fails(&["dispatch", "2"], 1);
    assert!(err.contains("blocked by #1"), "{err}");
    assert!(err.contains("loop explain 2"), "{err}");
    let err = cli.fails(&["block", "1", "2"], 1);
    assert!(!err.is_empty(), "a duplicate relation is refused: {err}");
    let err = cli.fails(&["unblock", "2", "1"], 1);
    assert!(err.contains("#2 does not block #1"), "{err}");
    let err = cli.fails(&["triage", "accept", "1"], 1);
    assert!(err.contains("issue #1 is todo, not in triage"), "{err}");
}

#[test]
fn a_url_without_a_scheme_is_refused_before_any_request() {
    let err = Cli::new().fails(&["list", "--api-url", "localhost:5667"], 2);
    assert!(err.contains("the server URL from flag --api-url is \"localhost:5667\""), "{err}");
    let err = Cli::new().env("LOOP_API_URL", "ftp://x").fails(&["list"], 1);
    assert!(err.contains("env LOOP_API_URL") && err.contains("http://"), "{err}");
}

#[test]
fn a_broken_config_file_is_named() {
    let cli = Cli::new();
    std::fs::create_dir_all(cli.config_path().parent().unwrap()).unwrap();
    std::fs::write(cli.config_path(), "{not json").unwrap();
    let err = cli.fails(&["list"], 1);
    assert!(err.contains(".loop/config.json") && err.contains("fix it or delete it"), "{err}");
}
