//! The runner's world for `loop agent` tests: a real `loop serve`, a bare git repository as
//! the remote, the runner's clone of it with a small test script, scripted agents (shell
//! scripts) and a `--pr-command` script that records its arguments and prints a URL.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{BIN, Cli, KEY, Run, Server};

/// `git args` in `dir`, which must succeed; its trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@localhost"])
        .args(args)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Whether process `pid` has ended (a zombie waiting for its reaper has), within 5 s: a
/// killed process takes a moment to go.
pub fn gone(pid: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) if stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')) => return true,
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    false
}

/// The secret the fixture's server checks GitHub deliveries against.
pub const WEBHOOK_SECRET: &str = "runner-tests-webhook-secret";

pub struct Fixture {
    pub server: Server,
    pub cli: Cli,
    pub dir: tempfile::TempDir,
}

/// The verify command's test: it fails while a file named `broken` exists.
pub const CHECK: &str =
    "#!/bin/sh\nif [ -e broken ]; then echo 'tests failed: broken exists'; exit 1; fi\necho 'tests passed'\n";
/// Records its arguments and the PR body, and prints the URL of the PR it "opened".
pub const PR: &str = "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$MARK_DIR/pr-args\"\ncp \"$4\" \"$MARK_DIR/pr-body\"\necho 'Creating pull request...'\necho 'https://example.test/o/r/pull/7'\n";

impl Fixture {
    pub fn new() -> Fixture {
        let server = Server::start_with_env(&[("LOOP_GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)]);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        git(root, &["init", "--quiet", "--bare", "-b", "main", "remote.git"]);
        git(root, &["clone", "--quiet", "remote.git", "seed"]);
        std::fs::write(root.join("seed/check.sh"), CHECK).unwrap();
        std::fs::write(root.join("seed/README"), "a project\n").unwrap();
        git(&root.join("seed"), &["add", "."]);
        git(&root.join("seed"), &["commit", "--quiet", "-m", "start"]);
        git(&root.join("seed"), &["push", "--quiet", "origin", "main"]);
        git(root, &["clone", "--quiet", "remote.git", "work"]);
        std::fs::create_dir(root.join("marks")).unwrap();
        std::fs::write(root.join("pr.sh"), PR).unwrap();
        let cli = Cli::new()
            .env("LOOP_API_URL", &server.url)
            .env("LOOP_API_KEY", KEY)
            .env("PATH", &std::env::var("PATH").unwrap())
            .env("MARK_DIR", &root.join("marks").to_string_lossy());
        Fixture { server, cli, dir }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn mark(&self, name: &str) -> String {
        std::fs::read_to_string(self.path("marks").join(name)).unwrap_or_default()
    }

    /// A ready issue; returns its number.
    pub fn issue(&self, title: &str) -> String {
        self.cli.json(&["create", title, "--status", "todo"])["number"].to_string()
    }

    /// `loop agent tick` with `agent` (a script's text) and the standard flags plus `extra`.
    pub fn tick(&self, agent: &str, extra: &[&str]) -> Run {
        let script = self.path("agent.sh");
        std::fs::write(&script, agent).unwrap();
        let agent = format!("sh {}", script.display());
        let pr = format!(
            "sh {} {{branch}} {{base}} {{title}} {{body_file}} {{issue}} {{draft}}",
            self.path("pr.sh").display()
        );
        let work = self.path("work");
        let mut args =
            vec!["agent", "tick", "--repo", work.to_str().unwrap(), "--agent", &agent, "--verify", "sh check.sh"];
        args.extend(["--pr-command", &pr, "--name", "test-agent"]);
        if !extra.contains(&"--timeout") {
            args.extend(["--timeout", "20s"]);
        }
        args.extend(extra);
        self.cli.run(&args)
    }

    pub fn show(&self, number: &str) -> Value {
        self.cli.json(&["show", number])
    }

    /// The branches `loop agent` pushed to the remote.
    pub fn pushed(&self) -> String {
        git(&self.path("remote.git"), &["branch", "--list", "loop/*"])
    }

    /// `loop agent run` with the agent script `script`, in the background (stderr piped).
    pub fn spawn_run(&self, script: &Path, extra: &[&str]) -> std::process::Child {
        Command::new(BIN)
            .args(["agent", "run", "--repo", self.path("work").to_str().unwrap(), "--agent"])
            .arg(format!("sh {}", script.display()))
            .args(extra)
            .env_clear()
            .env("HOME", self.path("marks"))
            .env("PATH", std::env::var("PATH").unwrap())
            .env("MARK_DIR", self.path("marks"))
            .env("LOOP_API_URL", &self.server.url)
            .env("LOOP_API_KEY", KEY)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn sessions(&self, number: &str) -> Vec<Value> {
        self.show(number)["sessions"].as_array().cloned().unwrap_or_default()
    }

    /// A GitHub delivery of `event`, signed as GitHub signs it; the status and the reply.
    pub fn deliver(&self, event: &str, payload: &Value) -> (u16, Value) {
        use hmac::{Hmac, Mac};
        let body = payload.to_string();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex_of(&mac.finalize().into_bytes()));
        let headers = [
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", event),
            ("X-Hub-Signature-256", signature.as_str()),
        ];
        let (status, reply) =
            super::http("POST", &format!("{}/api/signals/github", self.server.url), &headers, body.as_bytes());
        (status, serde_json::from_str(&reply).unwrap_or(Value::String(reply)))
    }

    /// A call to the API with the master key; the status and the reply.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let auth = format!("Bearer {KEY}");
        let headers = [("Content-Type", "application/json"), ("Authorization", auth.as_str())];
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, reply) = super::http(method, &format!("{}{path}", self.server.url), &headers, body.as_bytes());
        (status, serde_json::from_str(&reply).unwrap_or(Value::String(reply)))
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
