//! `loop config`, precedence of flag/environment/file/default, completions and help: none of
//! it needs a server.

mod common;

use common::{Cli, KEY, Server};
use serde_json::Value;

#[test]
fn config_set_get_list_unset() {
    let cli = Cli::new();
    // Nothing configured: the default URL, no token.
    assert_eq!(cli.ok(&["config", "get", "url"]).trim(), "http://localhost:5667");
    let err = cli.fails(&["config", "get", "token"], 1);
    assert!(err.contains("token is not set: loop config set token <value>"), "{err}");
    let list = cli.json(&["config", "list"]);
    assert_eq!(list["urlSource"], "default");
    assert_eq!(list["token"], Value::Null);
    // A wrong URL is shown, and flagged, by the command one runs to find it.
    let run = Cli::new().env("LOOP_API_URL", "garbage").run(&["config", "list"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("garbage") && run.stdout.contains("env LOOP_API_URL"), "{run:?}");
    assert!(run.stderr.contains("warning: the url from env LOOP_API_URL is wrong"), "{run:?}");

    cli.ok(&["config", "set", "url", "http://loop.example.com:8080/api/"]);
    cli.ok(&["config", "set", "token", KEY]);
    assert_eq!(cli.ok(&["config", "get", "url"]).trim(), "http://loop.example.com:8080");
    assert_eq!(cli.ok(&["config", "get", "token"]).trim(), KEY);
    let got = cli.json(&["config", "get", "url"]);
    assert_eq!(got["source"], "config file");

    // The TypeScript CLI's file format, other keys kept, mode 0600.
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(cli.config_path()).unwrap()).unwrap();
    assert_eq!(file["url"], "http://loop.example.com:8080");
    assert_eq!(file["token"], KEY);
    file["other"] = "kept".into();
    std::fs::write(cli.config_path(), file.to_string()).unwrap();
    cli.ok(&["config", "set", "url", "http://127.0.0.1:5667"]);
    let file: Value = serde_json::from_str(&std::fs::read_to_string(cli.config_path()).unwrap()).unwrap();
    assert_eq!(file["other"], "kept");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cli.config_path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let out = cli.ok(&["config", "list"]);
    assert!(out.contains("url") && out.contains("http://127.0.0.1:5667") && out.contains("config file"), "{out}");
    assert!(out.contains("loop_…00c1") && !out.contains(KEY), "the token is masked: {out}");
    assert!(out.contains(&cli.config_path().display().to_string()), "{out}");
    let plain = cli.ok(&["config", "list", "--plain"]);
    assert_eq!(plain.lines().next().unwrap(), "url\thttp://127.0.0.1:5667\tconfig file");

    assert_eq!(cli.ok(&["config", "path"]).trim(), cli.config_path().display().to_string());
    let out = cli.ok(&["config", "unset", "token"]);
    assert!(out.starts_with("Removed token"), "{out}");
    cli.fails(&["config", "get", "token"], 1);
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let cli = Cli::new();
    cli.ok(&["config", "set", "url", "http://from-file:1"]);
    cli.ok(&["config", "set", "token", "file-token"]);
    let cli = cli.env("LOOP_API_URL", "http://from-env:2");
    let list = cli.json(&["config", "list"]);
    assert_eq!(list["url"], "http://from-env:2");
    assert_eq!(list["urlSource"], "env LOOP_API_URL");
    assert_eq!(list["tokenSource"], "config file");
    let list = cli.json(&["config", "list", "--api-url", "http://from-flag:3", "--token", "flag-token"]);
    assert_eq!(list["url"], "http://from-flag:3");
    assert_eq!(list["urlSource"], "flag --api-url");
    assert_eq!(list["tokenSource"], "flag --token");
    let cli = cli.env("LOOP_API_TOKEN", "ts-token");
    assert_eq!(cli.ok(&["config", "get", "token"]).trim(), "ts-token");
    let cli = cli.env("LOOP_API_KEY", "key-wins");
    assert_eq!(cli.ok(&["config", "get", "token"]).trim(), "key-wins");
    // Setting a value the environment overrides says so.
    let r = cli.run(&["config", "set", "url", "http://x:1"]);
    assert!(r.stderr.contains("LOOP_API_URL is set in the environment and overrides this"), "{r:?}");
}

#[test]
fn the_config_file_is_what_commands_use() {
    let server = Server::start();
    let cli = Cli::new();
    cli.ok(&["config", "set", "url", &server.url]);
    cli.ok(&["config", "set", "token", KEY]);
    cli.ok(&["create", "From the config file"]);
    assert_eq!(cli.json(&["list"])["total"], 1);
    // Flags point elsewhere without touching the file.
    let err = cli.fails(&["list", "--api-url", &common::dead_url()], 1);
    assert!(err.contains("cannot reach"), "{err}");
}

#[test]
fn completions_for_each_shell() {
    let cli = Cli::new();
    let bash = cli.ok(&["completions", "bash"]);
    assert!(bash.contains("_loop()") && bash.contains("dispatch") && bash.contains("--json"), "{bash}");
    let zsh = cli.ok(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef loop"), "{zsh}");
    let fish = cli.ok(&["completions", "fish"]);
    assert!(fish.contains("complete -c loop"), "{fish}");
    // Completions offer the client commands, not hidden aliases.
    assert!(!fish.contains("'issues'"), "hidden aliases stay hidden");

    // A reader that went away (`| head -1`) is no crash.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(common::BIN).args(["completions", "fish"]).stdout(writer).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn help_documents_commands_and_flags() {
    let cli = Cli::new();
    let help = cli.ok(&["--help"]);
    for part in [
        "Examples:",
        "loop dispatch",
        "LOOP_API_URL",
        "LOOP_API_KEY",
        "Exit codes",
        "list",
        "status",
        "--json",
        "--plain",
    ] {
        assert!(help.contains(part), "--help lacks {part:?}:\n{help}");
    }
    // Server commands do not show the client's flags.
    let serve = cli.ok(&["serve", "--help"]);
    assert!(!serve.contains("--api-url") && serve.contains("--data-dir"), "{serve}");
    // Every client command has help for each of its flags.
    for cmd in [
        "list",
        "show",
        "create",
        "update",
        "start",
        "done",
        "cancel",
        "delete",
        "block",
        "unblock",
        "comment",
        "signal",
        "triage",
        "projects",
        "goals",
        "labels",
        "templates",
        "next",
        "dispatch",
        "explain",
        "status",
        "config",
        "completions",
    ] {
        let h = cli.ok(&[cmd, "--help"]);
        assert!(h.contains("--json") && h.contains("--api-url"), "loop {cmd} --help:\n{h}");
    }
    let h = cli.ok(&["list", "--help"]);
    assert!(h.contains("--status") && h.contains("open") && h.contains("--parent") && h.contains("Examples:"), "{h}");
    assert!(cli.ok(&["--version"]).starts_with("loop "));
}
