//! `loop bench`: dispatch throughput and latency against a real `loop serve`, over loopback.
//!
//! For each backlog size it seeds a template database once, then for each concurrency copies
//! it (so every cell starts from the same state), starts `loop serve` on it as a child process,
//! and runs closed-loop claimers, each sending `GET /api/dispatch/next` back to back with its
//! own agent name and a fresh `Idempotency-Key`. Every claim returns a hydrated prompt. It
//! reports claims/s, p50/p99/max latency, server RSS and database size, checks that no issue
//! was handed out twice, and brackets each size with this machine's raw SQLite commit rate
//! (one-row transactions, WAL, synchronous=NORMAL), because absolute figures drift on a shared
//! machine.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use loop_core::SystemClock;
use loop_store_sqlite::seed::BacklogSpec;
use loop_store_sqlite::{SqliteConfig, SqliteStore};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Backlog sizes (issues) to seed.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub sizes: Vec<u64>,
    /// Concurrent claimers per cell.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub concurrency: Vec<usize>,
    /// Claims per cell (the 10k backlog has about 4,800 eligible issues).
    #[arg(long, default_value_t = 4000)]
    pub claims: usize,
    /// Where to keep the seeded databases (`seed-<size>/loop.db`, kept afterwards) [default: a
    /// temporary directory, removed afterwards].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Print the results as JSON too.
    #[arg(long)]
    pub json: bool,
}

const KEY: &str = "loop_bench0000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, serde::Serialize)]
struct Cell {
    issues: u64,
    claimers: usize,
    claims: usize,
    empty: usize,
    claims_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    server_rss_mb: f64,
    db_mb: f64,
    /// The write-ahead log's size when the claims ended.
    wal_mb: f64,
    raw_commits_per_sec: f64,
    double_claims: usize,
    in_progress_matches: bool,
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let work = args.work_dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&work)?;
    let exe = std::env::current_exe()?;
    println!("loop bench: SQLite WAL, synchronous=NORMAL; load generator on the same machine ({} cores)", cores());
    let mut cells = Vec::new();
    for &size in &args.sizes {
        let template = work.join(format!("seed-{size}"));
        let started = Instant::now();
        let report = seed(&template, size).await?;
        println!(
            "seeded {size} issues in {:.1}s: {} todo, {} blocked, {} eligible",
            started.elapsed().as_secs_f64(),
            report.todo,
            report.blocked,
            report.eligible
        );
        let raw_before = raw_commit_rate(&work.join("raw-before.db"), 20_000)?;
        let mut size_cells = Vec::new();
        for &c in &args.concurrency {
            let cell_dir = work.join(format!("cell-{size}-{c}"));
            copy_dir(&template, &cell_dir)?;
            let cell = run_cell(&exe, &cell_dir, size, c, args.claims.min(report.eligible as usize)).await?;
            std::fs::remove_dir_all(&cell_dir).ok();
            size_cells.push(cell);
        }
        let raw_after = raw_commit_rate(&work.join("raw-after.db"), 20_000)?;
        let raw = (raw_before + raw_after) / 2.0;
        let drift = (raw_before - raw_after).abs() / raw;
        println!(
            "raw SQLite commits/s: {raw_before:.0} before, {raw_after:.0} after{}",
            if drift > 0.25 {
                " (drifted >25%: the machine was busy; treat this size's figures with care)"
            } else {
                ""
            }
        );
        for mut cell in size_cells {
            cell.raw_commits_per_sec = raw;
            cells.push(cell);
        }
        if args.work_dir.is_none() {
            std::fs::remove_dir_all(&template).ok();
        }
    }
    print_table(&cells);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&cells)?);
    }
    if cells.iter().any(|c| c.double_claims > 0 || !c.in_progress_matches) {
        bail!("a correctness check failed: see the table");
    }
    Ok(())
}

async fn seed(dir: &Path, issues: u64) -> Result<loop_store_sqlite::seed::BacklogReport> {
    std::fs::create_dir_all(dir)?;
    let store =
        SqliteStore::open(SqliteConfig::new(dir.join("loop.db").to_string_lossy()), Arc::new(SystemClock)).await?;
    loop_server::seed_default_templates(&store).await?;
    let report = store.seed_backlog(&BacklogSpec { issues, seed: 42, projects: 10, projects_with_goal: 3 }).await?;
    store.close().await;
    Ok(report)
}

async fn run_cell(exe: &Path, dir: &Path, issues: u64, claimers: usize, claims: usize) -> Result<Cell> {
    let mut child = tokio::process::Command::new(exe)
        .args(["serve", "--port", "0", "--log-level", "warn", "--data-dir"])
        .arg(dir)
        .env("LOOP_API_KEY", KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start loop serve")?;
    let pid = child.id().context("no pid")?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let url = loop {
        let line = lines.next_line().await?.context("loop serve exited before listening")?;
        if let Some(u) = line.strip_prefix("Loop is listening on ") {
            break u.trim().to_owned();
        }
    };
    let http = reqwest::Client::builder().pool_max_idle_per_host(claimers).build()?;

    // Warm up: connections, caches, compiled templates.
    for i in 0..50.min(claims / 10) {
        claim(&http, &url, "warmup", &format!("w{i}")).await?;
    }
    let remaining = Arc::new(std::sync::atomic::AtomicIsize::new(claims as isize));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..claimers {
        let (http, url, remaining) = (http.clone(), url.clone(), remaining.clone());
        tasks.spawn(async move {
            let mut got = Vec::new();
            let mut latencies = Vec::new();
            let mut empty = 0;
            let mut n = 0;
            while remaining.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) > 0 {
                let t = Instant::now();
                match claim(&http, &url, &format!("bench-{w}"), &format!("{w}-{n}")).await? {
                    Some(id) => {
                        latencies.push(t.elapsed());
                        got.push(id);
                    }
                    None => empty += 1,
                }
                n += 1;
            }
            anyhow::Ok((got, latencies, empty))
        });
    }
    let mut ids = Vec::new();
    let mut latencies = Vec::new();
    let mut empty = 0;
    for r in tasks.join_all().await {
        let (g, l, e) = r?;
        ids.extend(g);
        latencies.extend(l);
        empty += e;
    }
    let elapsed = started.elapsed();
    let rss = rss_mb(pid);
    let unique: HashSet<&String> = ids.iter().collect();
    let in_progress = in_progress_count(&http, &url).await?;
    let wal_mb = file_mb(&dir.join("loop.db-wal"));
    // A graceful stop checkpoints the log into the database file, which is then measured.
    drop(http);
    let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    if tokio::time::timeout(Duration::from_secs(30), child.wait()).await.is_err() {
        child.kill().await.ok();
    }
    latencies.sort();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).map_or(0.0, ms);
    Ok(Cell {
        issues,
        claimers,
        claims: ids.len(),
        empty,
        claims_per_sec: ids.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: latencies.last().map_or(0.0, ms),
        server_rss_mb: rss,
        db_mb: file_mb(&dir.join("loop.db")),
        wal_mb,
        raw_commits_per_sec: 0.0,
        double_claims: ids.len() - unique.len(),
        // Warm-up claims are in progress too.
        in_progress_matches: in_progress == (ids.len() + 50.min(claims / 10)) as u64,
    })
}

/// One claim; `None` on 204. Checks that the claim carries a prompt.
async fn claim(http: &reqwest::Client, url: &str, agent: &str, key: &str) -> Result<Option<String>> {
    let resp = http
        .get(format!("{url}/api/dispatch/next"))
        .bearer_auth(KEY)
        .header("X-Loop-Agent", agent)
        .header("Idempotency-Key", key)
        .send()
        .await?;
    match resp.status().as_u16() {
        204 => Ok(None),
        200 => {
            // Only what the checks need, so the load generator takes little of the CPU it shares.
            #[derive(serde::Deserialize)]
            struct Claimed {
                issue: ClaimedIssue,
                prompt: Option<String>,
                meta: Option<serde_json::Value>,
            }
            #[derive(serde::Deserialize)]
            struct ClaimedIssue {
                id: String,
            }
            let body: Claimed = serde_json::from_slice(&resp.bytes().await?)?;
            if body.prompt.is_none() {
                bail!("a claim came back without a prompt: {:?}", body.meta);
            }
            Ok(Some(body.issue.id))
        }
        s => bail!("unexpected HTTP {s} from dispatch/next: {}", resp.text().await.unwrap_or_default()),
    }
}

async fn in_progress_count(http: &reqwest::Client, url: &str) -> Result<u64> {
    let body: serde_json::Value =
        http.get(format!("{url}/api/issues?status=in_progress&limit=1")).bearer_auth(KEY).send().await?.json().await?;
    body["total"].as_u64().context("no total")
}

fn print_table(cells: &[Cell]) {
    println!();
    println!(
        "| issues | claimers | claims | claims/s | p50 ms | p99 ms | max ms | server RSS MB | DB MB | WAL MB | raw commits/s | claims/raw | double claims |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for c in cells {
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1}% | {}{} |",
            c.issues,
            c.claimers,
            c.claims,
            c.claims_per_sec,
            c.p50_ms,
            c.p99_ms,
            c.max_ms,
            c.server_rss_mb,
            c.db_mb,
            c.wal_mb,
            c.raw_commits_per_sec,
            100.0 * c.claims_per_sec / c.raw_commits_per_sec,
            c.double_claims,
            if c.in_progress_matches { "" } else { " (in-progress count mismatch!)" }
        );
    }
    for &c in &[1usize, 8, 32] {
        let at = |n: u64| cells.iter().find(|x| x.issues == n && x.claimers == c).map(|x| x.claims_per_sec);
        let (small, large) = (cells.iter().map(|x| x.issues).min(), cells.iter().map(|x| x.issues).max());
        if let (Some(s), Some(l)) = (small.and_then(at), large.and_then(at))
            && small != large
        {
            println!(
                "{c} claimer(s): claims/s at {} issues = {:.2}× claims/s at {}",
                large.unwrap(),
                l / s,
                small.unwrap()
            );
        }
    }
}

fn ms(d: &Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

fn file_mb(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1_048_576.0)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

/// One-row transactions per second on a fresh WAL database with synchronous=NORMAL: a prepared
/// INSERT, each its own transaction, straight on SQLite (the same library Loop links).
fn raw_commit_rate(path: &Path, commits: u32) -> Result<f64> {
    let _ = std::fs::remove_file(path);
    let db = rusqlite::Connection::open(path)?;
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
    )?;
    let mut insert = db.prepare("INSERT INTO t (v) VALUES ('x')")?;
    let started = Instant::now();
    for _ in 0..commits {
        insert.execute([])?;
    }
    let rate = commits as f64 / started.elapsed().as_secs_f64();
    drop(insert);
    drop(db);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(rate)
}
