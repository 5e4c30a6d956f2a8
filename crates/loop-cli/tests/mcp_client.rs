//! Loop's MCP server as an outside host meets it: the Python `mcp` SDK from PyPI (pinned,
//! installed into a virtual environment under target/) runs `mcp_client.py` against a real
//! `loop serve`, over stdio (`loop mcp`) and over Streamable HTTP (`/mcp`). Without python3 and
//! its venv module this fails, saying so: `.ci/run` installs them.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{BIN, Cli, KEY, Server};

/// The SDK release the client script is written against.
const MCP_SDK: &str = "mcp==2.3.0";

/// A virtual environment with the SDK, made once and reused by later runs.
fn python_with_sdk() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mcp-client-venv");
    let python = venv.join("bin/python");
    let ready = |python: &PathBuf| {
        Command::new(python).args(["-c", "import mcp, httpx2"]).output().is_ok_and(|o| o.status.success())
    };
    if ready(&python) {
        return python;
    }
    let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).output();
    assert!(
        made.as_ref().is_ok_and(|o| o.status.success()),
        "cannot make a Python virtual environment (install python3 and python3-venv, as .ci/run does): {made:?}"
    );
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", MCP_SDK])
        .output()
        .expect("run pip");
    assert!(installed.status.success(), "pip install {MCP_SDK}: {}", String::from_utf8_lossy(&installed.stderr));
    assert!(ready(&python), "{MCP_SDK} installed but does not import");
    python
}

/// Runs the client script in `mode` against a fresh server.
fn drive(python: &PathBuf, mode: &str) {
    let server = Server::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp_client.py");
    let out = Command::new(python).args([script, mode, &server.url, KEY, BIN]).output().expect("run the MCP client");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the Python MCP client failed over {mode}:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    assert!(stdout.contains(&format!("{mode}: ")), "{stdout}");
}

#[test]
fn the_python_sdk_lists_and_calls_every_tool_over_stdio_and_http() {
    let python = python_with_sdk();
    drive(&python, "stdio");
    drive(&python, "http");
}

#[test]
fn loop_mcp_without_a_key_says_which_variable_to_set() {
    let run = Cli::new().env("LOOP_API_URL", &common::dead_url()).run(&["mcp"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("LOOP_API_KEY"), "{}", run.stderr);
    // stdout belongs to the protocol: nothing else is ever written there.
    assert_eq!(run.stdout, "");
}

#[test]
fn loop_prime_prints_the_working_instructions() {
    let out = Cli::new().ok(&["prime"]);
    for step in
        ["loop dispatch", "loop heartbeat <session>", "loop done", "loop review <session>", "loop_get_next_task"]
    {
        assert!(out.contains(step), "{step} missing from:\n{out}");
    }
}
