//! `loop bench`: dispatch throughput and latency against a real `loop serve`, over loopback.
//!
//! For each backlog size it seeds a template database once, then for each cell (a number of
//! nodes and of claimers) copies it, so every cell starts from the same state, starts `loop
//! serve` on the copy as child processes, and runs closed-loop claimers, each sending `GET
//! /api/dispatch/next` back to back with its own agent name and a fresh `Idempotency-Key`, to
//! the nodes in turn. Every claim returns a hydrated prompt. It reports claims/s, p50/p99/max
//! latency, server RSS and database size, checks that no issue was handed out twice, and
//! brackets each size with this machine's raw commit rate of the same database (one-row
//! transactions), because absolute figures drift on a shared machine.
//!
//! The backlog is seeded into SQLite either way; with `--database-url` it is then moved into
//! a PostgreSQL database by the same export and import as `loop export` / `loop import`, so
//! both backends claim from the same seed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use loop_core::SystemClock;
use loop_store_postgres::{PgConfig, PgStore, admin};
use loop_store_sqlite::seed::{BacklogReport, BacklogSpec};
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
    /// Benchmark PostgreSQL instead of SQLite: a server and a user that may create databases,
    /// e.g. postgres://postgres@127.0.0.1:5432/postgres. The bench creates databases named
    /// loop_bench_* there and drops them when it ends.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Numbers of `loop serve` nodes sharing the database, claimers spread over them in turn
    /// (several nodes need --database-url) [default: 1,3 with --database-url, else 1].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=16))]
    pub nodes: Vec<u16>,
    /// Where to keep the seeded SQLite databases (`seed-<size>/loop.db`): kept afterwards, and
    /// reused by the next run [default: a temporary directory, removed afterwards].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Print the results as JSON too.
    #[arg(long)]
    pub json: bool,
}

const KEY: &str = "loop_bench0000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, serde::Serialize)]
struct Cell {
    backend: &'static str,
    issues: u64,
    nodes: usize,
    claimers: usize,
    claims: usize,
    empty: usize,
    claims_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Summed over the nodes.
    server_rss_mb: f64,
    db_mb: f64,
    /// SQLite's write-ahead log when the claims ended.
    wal_mb: Option<f64>,
    raw_commits_per_sec: f64,
    double_claims: usize,
    in_progress_matches: bool,
}

/// Which database the nodes share.
enum Backend {
    Sqlite,
    Postgres { admin_url: String },
}

/// One cell's copy of the seeded database.
enum Database {
    Sqlite {
        dir: PathBuf,
    },
    /// `dir` holds the nodes' data directories.
    Postgres {
        admin_url: String,
        name: String,
        url: String,
        dir: PathBuf,
    },
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let backend = match &args.database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Backend::Postgres { admin_url: url.clone() }
        }
        Some(url) => bail!("--database-url: expected postgres://…, got {url:?} (SQLite is the default)"),
        None => Backend::Sqlite,
    };
    let nodes: Vec<usize> = match (&backend, args.nodes.is_empty()) {
        (Backend::Sqlite, false) if args.nodes.iter().any(|&n| n > 1) => {
            bail!("--nodes: several nodes share one database only on PostgreSQL; add --database-url postgres://…")
        }
        (Backend::Postgres { .. }, true) => vec![1, 3],
        (_, true) => vec![1],
        (_, false) => args.nodes.iter().map(|&n| n as usize).collect(),
    };
    let tmp = tempfile::tempdir()?;
    let work = args.work_dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&work)?;
    let plan = Plan {
        backend,
        nodes,
        concurrency: args.concurrency.clone(),
        claims: args.claims,
        exe: std::env::current_exe()?,
        work: work.clone(),
    };
    match &plan.backend {
        Backend::Sqlite => println!(
            "loop bench: SQLite WAL, synchronous=NORMAL; load generator on the same machine ({} cores)",
            cores()
        ),
        Backend::Postgres { admin_url } => println!(
            "loop bench: PostgreSQL {} (synchronous_commit={}, fsync={}); load generator on the same machine ({} cores)",
            admin::setting(admin_url, "server_version").await?,
            admin::setting(admin_url, "synchronous_commit").await?,
            admin::setting(admin_url, "fsync").await?,
            cores()
        ),
    }
    let mut cells = Vec::new();
    for &size in &args.sizes {
        let template = work.join(format!("seed-{size}"));
        let started = Instant::now();
        let report = seed(&template, size).await?;
        println!(
            "seed of {size} issues ready in {:.1}s: {} todo, {} blocked, {} eligible",
            started.elapsed().as_secs_f64(),
            report.todo,
            report.blocked,
            report.eligible
        );
        let size_cells = run_size(&plan, &template, size, report.eligible).await;
        if let Backend::Postgres { admin_url } = &plan.backend {
            admin::drop_database(admin_url, &seed_name(size)).await?;
        }
        cells.extend(size_cells?);
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

/// What every size runs.
struct Plan {
    backend: Backend,
    nodes: Vec<usize>,
    concurrency: Vec<usize>,
    claims: usize,
    exe: PathBuf,
    work: PathBuf,
}

/// Every cell of one backlog size, bracketed by the raw commit rate.
async fn run_size(plan: &Plan, template: &Path, size: u64, eligible: u64) -> Result<Vec<Cell>> {
    let Plan { backend, nodes, concurrency, claims, exe, work } = plan;
    if let Backend::Postgres { admin_url } = backend {
        let started = Instant::now();
        let rows = copy_to_postgres(template, admin_url, &seed_name(size)).await?;
        println!("imported {rows} rows into PostgreSQL in {:.1}s", started.elapsed().as_secs_f64());
    }
    let raw_before = backend.raw_commit_rate(work).await?;
    let mut size_cells = Vec::new();
    for &n in nodes {
        for &c in concurrency {
            let db = backend.copy_seed(template, size, &work.join(format!("cell-{size}-{n}-{c}"))).await?;
            let cell = run_cell(exe, &db, size, n, c, (*claims).min(eligible as usize)).await;
            db.remove().await;
            size_cells.push(cell?);
        }
    }
    let raw_after = backend.raw_commit_rate(work).await?;
    let raw = (raw_before + raw_after) / 2.0;
    let drift = (raw_before - raw_after).abs() / raw;
    println!(
        "raw {} commits/s: {raw_before:.0} before, {raw_after:.0} after{}",
        backend.name(),
        if drift > 0.25 { " (drifted >25%: the machine was busy; treat this size's figures with care)" } else { "" }
    );
    for cell in &mut size_cells {
        cell.raw_commits_per_sec = raw;
    }
    Ok(size_cells)
}

/// Seeds a backlog of `issues` into `dir`, or reuses the one a previous run with the same
/// `--work-dir` left there (a 1M seed takes minutes).
async fn seed(dir: &Path, issues: u64) -> Result<BacklogReport> {
    let marker = dir.join("seeded");
    if let Some(report) = std::fs::read_to_string(&marker).ok().and_then(|s| parse_report(&s)) {
        println!("reusing the seed in {}", dir.display());
        return Ok(report);
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let store = open_sqlite(dir).await?;
    loop_server::seed_default_templates(&store).await?;
    let report = store.seed_backlog(&BacklogSpec { issues, seed: 42, projects: 10, projects_with_goal: 3 }).await?;
    store.close().await;
    std::fs::write(&marker, format!("{} {} {}", report.todo, report.blocked, report.eligible))?;
    Ok(report)
}

fn parse_report(marker: &str) -> Option<BacklogReport> {
    let mut n = marker.split_whitespace().map(|v| v.parse::<u64>().ok());
    Some(BacklogReport { todo: n.next()??, blocked: n.next()??, eligible: n.next()?? })
}

async fn open_sqlite(dir: &Path) -> Result<SqliteStore> {
    let config = SqliteConfig::new(dir.join("loop.db").to_string_lossy());
    Ok(SqliteStore::open(config, Arc::new(SystemClock)).await?)
}

/// Database names carry the bench's process id, so two benches can share a server.
fn seed_name(size: u64) -> String {
    format!("loop_bench_{}_seed_{size}", std::process::id())
}

/// Moves the seeded SQLite database into a new PostgreSQL database `name`, as `loop export |
/// loop import` would. Returns the number of rows.
async fn copy_to_postgres(sqlite_dir: &Path, admin_url: &str, name: &str) -> Result<u64> {
    let sqlite = open_sqlite(sqlite_dir).await?;
    let mut rows = Vec::new();
    sqlite
        .export(&mut |table: &str, row| {
            rows.push((table.to_owned(), row));
            Ok(())
        })
        .await?;
    sqlite.close().await;
    admin::drop_database(admin_url, name).await?;
    let url = admin::create_database(admin_url, name, None).await?;
    let pg = PgStore::open(PgConfig::new(url), Arc::new(SystemClock)).await?;
    let loaded = pg.import(&mut rows.into_iter().map(Ok)).await;
    pg.close().await;
    Ok(loaded?)
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres { .. } => "PostgreSQL",
        }
    }

    /// A fresh copy of the seed of `size` for one cell.
    async fn copy_seed(&self, template: &Path, size: u64, cell_dir: &Path) -> Result<Database> {
        match self {
            Backend::Sqlite => {
                copy_dir(template, cell_dir)?;
                Ok(Database::Sqlite { dir: cell_dir.to_path_buf() })
            }
            Backend::Postgres { admin_url } => {
                let name = format!("loop_bench_{}_cell", std::process::id());
                admin::drop_database(admin_url, &name).await?;
                let url = admin::create_database(admin_url, &name, Some(&seed_name(size))).await?;
                Ok(Database::Postgres { admin_url: admin_url.clone(), name, url, dir: cell_dir.to_path_buf() })
            }
        }
    }

    /// One-row transactions per second, straight on the database (no Loop in between).
    async fn raw_commit_rate(&self, work: &Path) -> Result<f64> {
        match self {
            Backend::Sqlite => raw_sqlite_commit_rate(&work.join("raw.db"), 20_000),
            Backend::Postgres { admin_url } => {
                let name = format!("loop_bench_{}_raw", std::process::id());
                admin::drop_database(admin_url, &name).await?;
                let url = admin::create_database(admin_url, &name, None).await?;
                let rate = admin::commit_rate(&url, 5_000).await;
                admin::drop_database(admin_url, &name).await?;
                Ok(rate?)
            }
        }
    }
}

impl Database {
    /// The `loop serve` arguments that select this database; `node` gets a data directory of
    /// its own.
    fn serve_args(&self, node: usize) -> Vec<std::ffi::OsString> {
        match self {
            Database::Sqlite { dir } => vec!["--data-dir".into(), dir.into()],
            Database::Postgres { url, dir, .. } => {
                vec!["--database-url".into(), url.into(), "--data-dir".into(), dir.join(format!("node-{node}")).into()]
            }
        }
    }

    async fn size_mb(&self) -> f64 {
        match self {
            Database::Sqlite { dir } => file_mb(&dir.join("loop.db")),
            Database::Postgres { url, .. } => {
                admin::database_size(url).await.map_or(0.0, |bytes| bytes as f64 / 1_048_576.0)
            }
        }
    }

    fn wal_mb(&self) -> Option<f64> {
        match self {
            Database::Sqlite { dir } => Some(file_mb(&dir.join("loop.db-wal"))),
            Database::Postgres { .. } => None,
        }
    }

    async fn remove(self) {
        match self {
            Database::Sqlite { dir } => {
                std::fs::remove_dir_all(dir).ok();
            }
            Database::Postgres { admin_url, name, dir, .. } => {
                std::fs::remove_dir_all(dir).ok();
                if let Err(e) = admin::drop_database(&admin_url, &name).await {
                    eprintln!("warning: {e}");
                }
            }
        }
    }
}

/// A running `loop serve`.
struct Node {
    child: tokio::process::Child,
    pid: u32,
    url: String,
}

async fn start_node(exe: &Path, db: &Database, node: usize) -> Result<Node> {
    let mut child = tokio::process::Command::new(exe)
        .args(["serve", "--port", "0", "--log-level", "warn"])
        .args(db.serve_args(node))
        .env("LOOP_API_KEY", KEY)
        // The database is chosen by the arguments alone.
        .env_remove("LOOP_DATABASE_URL")
        .env_remove("LOOP_DATA_DIR")
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
    // Keep reading: the node logs to standard output, and must never find the pipe closed or full.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("WARN") || line.contains("ERROR") {
                eprintln!("node {node}: {line}");
            }
        }
    });
    Ok(Node { child, pid, url })
}

impl Node {
    /// A graceful stop (SQLite checkpoints its log into the database file, which is then measured).
    async fn stop(mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.is_err() {
            self.child.kill().await.ok();
        }
    }
}

async fn run_cell(
    exe: &Path,
    db: &Database,
    issues: u64,
    nodes: usize,
    claimers: usize,
    claims: usize,
) -> Result<Cell> {
    let mut servers = Vec::new();
    for n in 0..nodes {
        servers.push(start_node(exe, db, n).await?);
    }
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let http = reqwest::Client::builder().pool_max_idle_per_host(claimers).build()?;

    // Warm up every node: connections, caches, compiled templates.
    let warmup = 50.min(claims / 10);
    for i in 0..warmup {
        claim(&http, &urls[i % nodes], "warmup", &format!("w{i}")).await?;
    }
    let remaining = Arc::new(std::sync::atomic::AtomicIsize::new(claims as isize));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..claimers {
        let (http, url, remaining) = (http.clone(), urls[w % nodes].clone(), remaining.clone());
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
    let rss = servers.iter().map(|s| rss_mb(s.pid)).sum();
    let unique: HashSet<&String> = ids.iter().collect();
    let in_progress = in_progress_count(&http, &urls[0]).await?;
    let wal_mb = db.wal_mb();
    drop(http);
    for server in servers {
        server.stop().await;
    }
    latencies.sort();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).map_or(0.0, ms);
    Ok(Cell {
        backend: match db {
            Database::Sqlite { .. } => "sqlite",
            Database::Postgres { .. } => "postgres",
        },
        issues,
        nodes,
        claimers,
        claims: ids.len(),
        empty,
        claims_per_sec: ids.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: latencies.last().map_or(0.0, ms),
        server_rss_mb: rss,
        db_mb: db.size_mb().await,
        wal_mb,
        raw_commits_per_sec: 0.0,
        double_claims: ids.len() - unique.len(),
        // Warm-up claims are in progress too.
        in_progress_matches: in_progress == (ids.len() + warmup) as u64,
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
        "| backend | issues | nodes | claimers | claims | claims/s | p50 ms | p99 ms | max ms | server RSS MB | DB MB | WAL MB | raw commits/s | claims/raw | double claims |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for c in cells {
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {:.0} | {:.0} | {} | {:.0} | {:.1}% | {}{} |",
            c.backend,
            c.issues,
            c.nodes,
            c.claimers,
            c.claims,
            c.claims_per_sec,
            c.p50_ms,
            c.p99_ms,
            c.max_ms,
            c.server_rss_mb,
            c.db_mb,
            c.wal_mb.map_or("–".to_owned(), |w| format!("{w:.0}")),
            c.raw_commits_per_sec,
            100.0 * c.claims_per_sec / c.raw_commits_per_sec,
            c.double_claims,
            if c.in_progress_matches { "" } else { " (in-progress count mismatch!)" }
        );
    }
    let (small, large) = (cells.iter().map(|x| x.issues).min(), cells.iter().map(|x| x.issues).max());
    let (Some(small), Some(large)) = (small, large) else { return };
    if small == large {
        return;
    }
    let mut shapes: Vec<(usize, usize)> = cells.iter().map(|c| (c.nodes, c.claimers)).collect();
    shapes.sort_unstable();
    shapes.dedup();
    for (nodes, claimers) in shapes {
        let at = |n: u64| {
            cells.iter().find(|x| x.issues == n && x.nodes == nodes && x.claimers == claimers).map(|x| x.claims_per_sec)
        };
        if let (Some(s), Some(l)) = (at(small), at(large)) {
            println!(
                "{nodes} node(s), {claimers} claimer(s): claims/s at {large} issues = {:.2}× claims/s at {small}",
                l / s
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
fn raw_sqlite_commit_rate(path: &Path, commits: u32) -> Result<f64> {
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
