//! Running a shell command the runner does not trust to stop by itself: in its own process
//! group (so a timeout stops everything it started), with its output kept as a transcript
//! (capped), a deadline, a stall limit (no output for too long), and a stop signal.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

/// The most transcript kept per command; the start and the end are kept, the middle cut.
pub const TRANSCRIPT_CAP: usize = 256 * 1024;
/// How long a stopped command gets to exit after SIGINT before its group is killed.
const GRACE: Duration = Duration::from_secs(30);

/// What to run, and under which limits.
pub struct Run<'a> {
    pub command: &'a str,
    pub dir: &'a Path,
    pub env: Vec<(String, String)>,
    /// Variables removed from the inherited environment (the master key).
    pub env_remove: &'a [&'a str],
    pub stdin: Option<String>,
    pub timeout: Duration,
    /// No output for this long stops the command (`None`: no stall limit).
    pub stall: Option<Duration>,
}

/// How it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// It exited by itself with this code (`None`: killed by a signal).
    Exited(Option<i32>),
    TimedOut,
    Stalled,
    /// The runner is stopping (SIGINT/SIGTERM).
    Stopped,
}

#[derive(Debug)]
pub struct Finished {
    pub ending: Ending,
    /// stdout and stderr as they came, capped at [`TRANSCRIPT_CAP`] (the start and the end kept).
    pub transcript: String,
    /// stdout alone (the agent's report is its last line), capped the same way.
    pub stdout: String,
    pub duration: Duration,
}

impl Finished {
    pub fn succeeded(&self) -> bool {
        self.ending == Ending::Exited(Some(0))
    }

    /// The last `n` lines of the transcript.
    pub fn tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.transcript.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Output kept so far: the start, up to half the cap, then the latest lines in the other half.
#[derive(Default)]
struct Transcript {
    head: String,
    tail: std::collections::VecDeque<String>,
    tail_len: usize,
    cut: bool,
}

impl Transcript {
    fn push(&mut self, line: &str) {
        let half = TRANSCRIPT_CAP / 2;
        if !self.cut && self.head.len() + line.len() < half {
            self.head.push_str(line);
            self.head.push('\n');
            return;
        }
        self.tail.push_back(line.to_owned());
        self.tail_len += line.len() + 1;
        while self.tail_len > half && self.tail.len() > 1 {
            self.cut = true;
            self.tail_len -= self.tail.pop_front().map_or(0, |l| l.len() + 1);
        }
    }

    fn text(&self) -> String {
        let mut out = self.head.clone();
        if self.cut {
            out.push_str("[… output cut …]\n");
        }
        for line in &self.tail {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// What a command printed, and when it last printed anything.
struct Captured {
    transcript: Transcript,
    stdout: Transcript,
    last_output: Instant,
}

fn read_lines(
    from: impl AsyncRead + Unpin + Send + 'static,
    captured: Arc<Mutex<Captured>>,
    is_stdout: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(from).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut c = captured.lock().unwrap_or_else(|e| e.into_inner());
            c.last_output = Instant::now();
            c.transcript.push(&line);
            if is_stdout {
                c.stdout.push(&line);
            }
        }
    })
}

/// Runs `run.command` with `sh -c`; `stop` turning true stops it as a timeout would.
pub async fn run(run: Run<'_>, mut stop: watch::Receiver<bool>) -> std::io::Result<Finished> {
    let started = Instant::now();
    let mut command = Command::new("sh");
    command.arg("-c").arg(run.command).current_dir(run.dir).process_group(0).kill_on_drop(true);
    for name in run.env_remove {
        command.env_remove(name);
    }
    command.envs(run.env.iter().map(|(k, v)| (k, v)));
    command.stdin(if run.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let group = child.id().map(|id| id as i32);
    if let (Some(text), Some(mut pipe)) = (run.stdin, child.stdin.take()) {
        // A command that does not read its stdin must not block the run: write in the background.
        tokio::spawn(async move {
            let _ = pipe.write_all(text.as_bytes()).await;
        });
    }
    let captured = Arc::new(Mutex::new(Captured {
        transcript: Transcript::default(),
        stdout: Transcript::default(),
        last_output: Instant::now(),
    }));
    let readers = [
        read_lines(child.stdout.take().expect("piped stdout"), captured.clone(), true),
        read_lines(child.stderr.take().expect("piped stderr"), captured.clone(), false),
    ];
    let deadline = tokio::time::Instant::now() + run.timeout;
    let ending = loop {
        let stalled_at = run.stall.map(|s| {
            let last = captured.lock().unwrap_or_else(|e| e.into_inner()).last_output;
            tokio::time::Instant::from_std(last + s)
        });
        tokio::select! {
            status = child.wait() => break Ending::Exited(status?.code()),
            _ = tokio::time::sleep_until(deadline) => break Ending::TimedOut,
            _ = tokio::time::sleep_until(stalled_at.unwrap_or(deadline)), if stalled_at.is_some() => {
                let last = captured.lock().unwrap_or_else(|e| e.into_inner()).last_output;
                if run.stall.is_some_and(|s| last.elapsed() >= s) {
                    break Ending::Stalled;
                }
            }
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { break Ending::Stopped },
        }
    };
    if !matches!(ending, Ending::Exited(_)) {
        stop_group(&mut child, group).await;
    } else if let Some(g) = group {
        // It exited; whatever it left running in its group goes with it.
        signal_group(g, libc::SIGKILL);
    }
    for reader in readers {
        // Output still buffered is read; a grandchild holding the pipe open is gone by now.
        let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    }
    let c = captured.lock().unwrap_or_else(|e| e.into_inner());
    Ok(Finished { ending, transcript: c.transcript.text(), stdout: c.stdout.text(), duration: started.elapsed() })
}

fn signal_group(group: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group we created for the child.
    unsafe {
        libc::kill(-group, signal);
    }
}

/// SIGINT to the whole group, then SIGKILL to it after [`GRACE`] if the command is still there.
async fn stop_group(child: &mut tokio::process::Child, group: Option<i32>) {
    let Some(group) = group else { return };
    signal_group(group, libc::SIGINT);
    signal_group(group, libc::SIGTERM);
    let _ = tokio::time::timeout(GRACE, child.wait()).await;
    signal_group(group, libc::SIGKILL);
    let _ = child.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_in<'a>(dir: &'a Path, command: &'a str, timeout: Duration, stall: Option<Duration>) -> Run<'a> {
        Run { command, dir, env: vec![], env_remove: &[], stdin: None, timeout, stall }
    }

    #[tokio::test]
    async fn output_exit_codes_timeouts_and_stalls() {
        let dir = tempfile::tempdir().unwrap();
        let (_tx, stop) = watch::channel(false);
        let out =
            run(run_in(dir.path(), "echo out; echo err >&2; exit 3", Duration::from_secs(10), None), stop.clone())
                .await
                .unwrap();
        assert_eq!(out.ending, Ending::Exited(Some(3)));
        assert!(out.transcript.contains("out\n") && out.transcript.contains("err\n"));
        assert_eq!(out.stdout, "out\n");

        // A timeout stops the whole group: the background sleep is gone too.
        let pid_file = dir.path().join("pid");
        let command = format!("sleep 600 & echo $! > {}; wait", pid_file.display());
        let out = run(run_in(dir.path(), &command, Duration::from_millis(500), None), stop.clone()).await.unwrap();
        assert_eq!(out.ending, Ending::TimedOut);
        let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_owned();
        let deadline = Instant::now() + Duration::from_secs(5);
        // Gone, or a zombie waiting for its reaper: a killed process takes a moment to go.
        while std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        {
            assert!(Instant::now() < deadline, "the agent's background process was left running");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let out = run(
            run_in(dir.path(), "echo once; sleep 600", Duration::from_secs(60), Some(Duration::from_millis(400))),
            stop,
        )
        .await
        .unwrap();
        assert_eq!(out.ending, Ending::Stalled);
        assert!(out.duration < Duration::from_secs(30), "{:?}", out.duration);
    }

    #[tokio::test]
    async fn a_stop_signal_stops_the_command_and_stdin_is_the_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, stop) = watch::channel(false);
        let mut r = run_in(dir.path(), "cat; sleep 600", Duration::from_secs(60), None);
        r.stdin = Some("the prompt".into());
        let stopper = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            tx.send(true).unwrap();
        };
        let (out, ()) = tokio::join!(run(r, stop), stopper);
        let out = out.unwrap();
        assert_eq!(out.ending, Ending::Stopped);
        assert_eq!(out.stdout, "the prompt\n");
    }

    #[test]
    fn a_long_transcript_keeps_its_start_and_its_end() {
        let mut transcript = Transcript::default();
        let line = "x".repeat(1000);
        for i in 0..1000 {
            transcript.push(&format!("{i} {line}"));
        }
        let t = transcript.text();
        assert!(t.len() <= TRANSCRIPT_CAP + 100, "{}", t.len());
        assert!(t.starts_with("0 ") && t.contains("[… output cut …]") && t.ends_with(&format!("999 {line}\n")));
    }
}
