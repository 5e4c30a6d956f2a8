//! End-to-end harness: a real `loop serve` on a free loopback port over a temporary data
//! directory, and the `loop` binary run against it with a temporary HOME (so
//! `~/.loop/config.json` is isolated) and nothing else from the environment.

#![allow(dead_code)]

pub mod runner;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const KEY: &str = "loop_00000000000000000000000000000000000000000000000000000000000000c1";
pub const BIN: &str = env!("CARGO_BIN_EXE_loop");

/// A running `loop serve`; killed when dropped.
pub struct Server {
    pub url: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// A server with extra `loop serve` arguments (e.g. `--database-url`).
    pub fn start_with(extra: &[&str]) -> Server {
        Server::start_under(Command::new(BIN), extra, &[])
    }

    /// A server with extra environment variables (webhook secrets…).
    pub fn start_with_env(env: &[(&str, &str)]) -> Server {
        Server::start_under(Command::new(BIN), &[], env)
    }

    /// A server whose process may open at most `files` files (soft and hard limit).
    pub fn start_with_file_limit(files: u32, extra: &[&str]) -> Server {
        let mut shell = Command::new("/bin/sh");
        shell.args(["-c", &format!("ulimit -n {files} && exec \"$0\" \"$@\""), BIN]);
        Server::start_under(shell, extra, &[])
    }

    /// Starts `loop serve` with `command`: the binary, or a wrapper that runs it.
    fn start_under(mut command: Command, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let mut child = command
            .args(["serve", "--port", "0", "--log-level", "warn", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(extra)
            .env_clear()
            .env("HOME", dir.path())
            .env("LOOP_API_KEY", KEY)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn loop serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("Loop is listening on ") {
                        break url.trim().to_owned();
                    }
                }
                _ => {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                    panic!("loop serve exited before listening:\n{log}");
                }
            }
        };
        // Keep reading so the server never writes into a closed pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { url, child, dir }
    }

    /// Stops the server (as a crash would: SIGKILL) and keeps its data directory.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends Ctrl-C (SIGINT) and returns how long the server took to exit, if it did within
    /// `limit`.
    pub fn interrupt(&mut self, limit: Duration) -> Option<Duration> {
        let started = std::time::Instant::now();
        Command::new("kill").arg("-INT").arg(self.child.id().to_string()).status().expect("kill -INT");
        while started.elapsed() < limit {
            if self.child.try_wait().expect("server status").is_some() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's data directory (its SQLite database, unless it was given another).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A CLI pointed at this server with the right key.
    pub fn cli(&self) -> Cli {
        Cli::new().env("LOOP_API_URL", &self.url).env("LOOP_API_KEY", KEY)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A URL nothing listens on: a port that was free a moment ago.
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// The `loop` binary with a clean environment and its own HOME.
pub struct Cli {
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Cli {
    pub fn new() -> Cli {
        Cli { home: tempfile::tempdir().expect("home"), env: vec![("COLUMNS".into(), "100".into())] }
    }

    pub fn env(mut self, k: &str, v: &str) -> Cli {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    pub fn without(mut self, k: &str) -> Cli {
        self.env.retain(|(key, _)| key != k);
        self
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.home.path().join(".loop").join("config.json")
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env_clear().env("HOME", self.home.path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().expect("spawn loop");
        if let Some(text) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(text.as_bytes()).unwrap();
        }
        let out = wait_with_timeout(child, Duration::from_secs(60));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and insists on exit 0; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "loop {} failed:\nstdout: {}\nstderr: {}", args.join(" "), r.stdout, r.stderr);
        r.stdout
    }

    /// Runs with `--json`, insists on exit 0, parses stdout.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("loop {} --json is not JSON ({e}):\n{out}", args.join(" ")))
    }

    /// Runs and insists on a failure with `code`; returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code,
            code,
            "loop {}: expected exit {code}:\nstdout: {}\nstderr: {}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r.stderr
    }
}

fn wait_with_timeout(child: Child, limit: Duration) -> std::process::Output {
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for loop"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("loop did not finish within {limit:?}");
        }
    }
}

/// Whether the server has a route (by its OpenAPI document).
pub fn has_route(server: &Server, path: &str) -> bool {
    let body = http_get(&format!("{}/api/openapi.json", server.url));
    serde_json::from_str::<Value>(&body).ok().is_some_and(|doc| doc["paths"].get(path).is_some())
}

/// A minimal HTTP/1.1 GET over std (no client crate needed in the tests).
pub fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let body = &buf[split..];
    let body = if head.contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_vec() };
    String::from_utf8_lossy(&body).into_owned()
}

/// A minimal HTTP/1.1 request over std: the status and the body.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = &buf[split..];
    let body = if head.contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_vec() };
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&rest[start..(start + n).min(rest.len())]);
        rest = rest.get(start + n + 2..).unwrap_or(&[]);
    }
    out
}

/// Every line of `text` is at most `width` characters.
#[track_caller]
pub fn assert_fits(text: &str, width: usize) {
    for line in text.lines() {
        assert!(line.chars().count() <= width, "line wider than {width}: {line:?}\n{text}");
    }
}

/// No ANSI escapes (stdout is a pipe in tests).
#[track_caller]
pub fn assert_no_color(text: &str) {
    assert!(!text.contains('\u{1b}'), "unexpected colour codes:\n{text}");
}
