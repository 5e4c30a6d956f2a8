//! `loop bench`: what agents and planners do, against a real `loop serve`, over loopback.
//!
//! For each backlog size and history size it seeds a template database once, then for each
//! cell (a kind of load, a number of nodes and of clients) copies it, so every cell starts from
//! the same state, starts `loop serve` on the copy as child processes, and runs closed-loop
//! clients against the nodes in turn (see `load.rs` for what each kind does). It reports
//! units/s (claims, cycles or creates), p50/p99 of every operation, server RSS and database
//! size, checks that no issue was handed out twice and that the database agrees with what
//! the clients did, and brackets each seed with this machine's raw commit rate of the same
//! database (one-row transactions), because absolute figures drift on a shared machine.
//!
//! The backlog is seeded into SQLite either way; with `--database-url` it is then moved into
//! a PostgreSQL database by the same export and import as `loop export` / `loop import`, so
//! both backends start from the same seed.

mod infra;
mod load;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use loop_store::postgres::admin;
use loop_store::sqlite::seed::{BacklogReport, BacklogSpec};

use infra::{Backend, Database, Node, cores, open_sqlite, seed_name};
use load::Kind;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Backlog sizes (issues) to seed.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub sizes: Vec<u64>,
    /// History sizes to seed beside each backlog: ended sessions, each with three events and a
    /// comment, as a database that has been used for a while holds (e.g. 0,1000000).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub history: Vec<u64>,
    /// What the clients do: claim (claims only), cycle (claim, report done), working (claim,
    /// heartbeat, comment, done), create (issues with labels, and relations between them).
    #[arg(long, value_delimiter = ',', default_value = "claim,cycle,working,create")]
    pub cells: Vec<Kind>,
    /// Concurrent clients (agents, or creators) per cell.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub concurrency: Vec<usize>,
    /// Units per cell: claims, cycles or creates (the 10k backlog has about 4,800 ready issues,
    /// which bounds claims and cycles).
    #[arg(long = "ops", visible_alias = "claims", default_value_t = 4000)]
    pub ops: usize,
    /// Benchmark PostgreSQL instead of SQLite: a server and a user that may create databases,
    /// e.g. postgres://postgres@127.0.0.1:5432/postgres. The bench creates databases named
    /// loop_bench_* there and drops them when it ends.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Numbers of `loop serve` nodes sharing the database, clients spread over them in turn
    /// (several nodes need --database-url) [default: 1,3 with --database-url, else 1].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=16))]
    pub nodes: Vec<u16>,
    /// Where to keep the seeded SQLite databases (`seed_<size>_h<history>/loop.db`): kept
    /// afterwards, and reused by the next run [default: a temporary directory, removed afterwards].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Print the results as JSON too.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, serde::Serialize)]
struct Cell {
    kind: Kind,
    backend: &'static str,
    issues: u64,
    history: u64,
    nodes: usize,
    clients: usize,
    /// Claims, cycles or creates completed.
    units: usize,
    /// Claims that found the queue empty.
    empty: usize,
    units_per_sec: f64,
    /// p50/p99/max of every operation, in milliseconds.
    latency: Vec<Latency>,
    /// Summed over the nodes.
    server_rss_mb: f64,
    db_mb: f64,
    /// SQLite's write-ahead log when the load ended.
    wal_mb: Option<f64>,
    raw_commits_per_sec: f64,
    double_claims: usize,
    /// The database agrees with what the clients did (issues in progress, issues created).
    consistent: bool,
}

#[derive(Debug, serde::Serialize)]
struct Latency {
    op: &'static str,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
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
        kinds: args.cells.clone(),
        nodes,
        concurrency: args.concurrency.clone(),
        ops: args.ops,
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
        for &history in &args.history {
            let seed = Seed { issues: size, history, name: format!("seed_{size}_h{history}") };
            let template = work.join(&seed.name);
            let started = Instant::now();
            let report = seed_backlog(&template, &seed).await?;
            println!(
                "seed of {size} issues and {history} past sessions ready in {:.1}s: {} todo, {} blocked, {} ready",
                started.elapsed().as_secs_f64(),
                report.todo,
                report.blocked,
                report.eligible
            );
            let seed_cells = run_seed(&plan, &template, &seed, report.eligible).await;
            if let Backend::Postgres { admin_url } = &plan.backend {
                admin::drop_database(admin_url, &seed_name(&seed.name)).await?;
            }
            cells.extend(seed_cells?);
            if args.work_dir.is_none() {
                std::fs::remove_dir_all(&template).ok();
            }
        }
    }
    print_table(&cells);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&cells)?);
    }
    if cells.iter().any(|c| c.double_claims > 0 || !c.consistent) {
        bail!("a correctness check failed: see the table");
    }
    Ok(())
}

/// What every seed runs.
struct Plan {
    backend: Backend,
    kinds: Vec<Kind>,
    nodes: Vec<usize>,
    concurrency: Vec<usize>,
    ops: usize,
    exe: PathBuf,
    work: PathBuf,
}

/// One seeded database.
struct Seed {
    issues: u64,
    history: u64,
    name: String,
}

/// Every cell of one seed, bracketed by the raw commit rate.
async fn run_seed(plan: &Plan, template: &Path, seed: &Seed, ready: u64) -> Result<Vec<Cell>> {
    let Plan { backend, kinds, nodes, concurrency, ops, exe, work } = plan;
    if let Backend::Postgres { admin_url } = backend {
        let started = Instant::now();
        let rows = infra::copy_to_postgres(template, admin_url, &seed_name(&seed.name)).await?;
        println!("imported {rows} rows into PostgreSQL in {:.1}s", started.elapsed().as_secs_f64());
    }
    let raw_before = backend.raw_commit_rate(work).await?;
    let mut seed_cells = Vec::new();
    for &kind in kinds {
        for &n in nodes {
            for &c in concurrency {
                let cell_dir = work.join(format!("cell-{}-{}-{n}-{c}", seed.name, kind.name()));
                let db = backend.copy_seed(template, &seed.name, &cell_dir).await?;
                // A claim takes a ready issue; a report done may free others, but count on none.
                let units = if kind.claims() { (*ops).min(ready as usize) } else { *ops };
                let cell = run_cell(exe, &db, seed, kind, n, c, units).await;
                db.remove().await;
                seed_cells.push(cell?);
            }
        }
    }
    let raw_after = backend.raw_commit_rate(work).await?;
    let raw = (raw_before + raw_after) / 2.0;
    let drift = (raw_before - raw_after).abs() / raw;
    println!(
        "raw {} commits/s: {raw_before:.0} before, {raw_after:.0} after{}",
        backend.name(),
        if drift > 0.25 { " (drifted >25%: the machine was busy; treat this seed's figures with care)" } else { "" }
    );
    for cell in &mut seed_cells {
        cell.raw_commits_per_sec = raw;
    }
    Ok(seed_cells)
}

/// Seeds a backlog into `dir`, or reuses the one a previous run with the same `--work-dir`
/// left there (a 1M seed takes minutes).
async fn seed_backlog(dir: &Path, seed: &Seed) -> Result<BacklogReport> {
    let marker = dir.join("seeded");
    if let Some(report) = std::fs::read_to_string(&marker).ok().and_then(|s| parse_report(&s)) {
        println!("reusing the seed in {}", dir.display());
        return Ok(report);
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let store = open_sqlite(dir).await?;
    loop_server::seed_default_templates(&store).await?;
    let spec =
        BacklogSpec { issues: seed.issues, seed: 42, projects: 10, projects_with_goal: 3, history: seed.history };
    let report = store.seed_backlog(&spec).await?;
    store.close().await;
    std::fs::write(&marker, format!("{} {} {}", report.todo, report.blocked, report.eligible))?;
    Ok(report)
}

fn parse_report(marker: &str) -> Option<BacklogReport> {
    let mut n = marker.split_whitespace().map(|v| v.parse::<u64>().ok());
    Some(BacklogReport { todo: n.next()??, blocked: n.next()??, eligible: n.next()?? })
}

async fn run_cell(
    exe: &Path,
    db: &Database,
    seed: &Seed,
    kind: Kind,
    nodes: usize,
    clients: usize,
    units: usize,
) -> Result<Cell> {
    let mut servers = Vec::new();
    for n in 0..nodes {
        servers.push(Node::start(exe, db, n).await?);
    }
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build()?;
    let labels = Arc::new(load::labels(&http, &urls[0]).await?);
    let warm = load::warm_up(kind, &http, &urls, &labels, 50.min(units / 10)).await?;
    let out = load::drive(kind, &http, &urls, labels, clients, units).await?;
    let rss = servers.iter().map(Node::rss_mb).sum();
    // What the database holds agrees with what the clients did: claims leave their issues in
    // progress, reports take them out again, creates add issues.
    let consistent = match kind {
        Kind::Claim => {
            load::count_issues(&http, &urls[0], "status=in_progress").await? == (out.units + warm.units) as u64
        }
        Kind::Cycle | Kind::Working => load::count_issues(&http, &urls[0], "status=in_progress").await? == 0,
        Kind::Create => load::count_issues(&http, &urls[0], "").await? == seed.issues + (out.units + warm.units) as u64,
        // Reading changes nothing.
        Kind::Metrics => load::count_issues(&http, &urls[0], "status=in_progress").await? == 0,
    };
    let wal_mb = db.wal_mb();
    drop(http);
    for server in servers {
        server.stop().await;
    }
    let double_claims = load::double_claims(warm.claimed.iter().chain(&out.claimed));
    let latency = out
        .latencies
        .iter()
        .map(|(op, l)| {
            let mut l = l.clone();
            l.sort();
            let pct = |p: f64| l.get(((l.len() as f64 - 1.0) * p).round() as usize).map_or(0.0, ms);
            Latency { op, p50_ms: pct(0.50), p99_ms: pct(0.99), max_ms: l.last().map_or(0.0, ms) }
        })
        .collect();
    Ok(Cell {
        kind,
        backend: db.backend(),
        issues: seed.issues,
        history: seed.history,
        nodes,
        clients,
        units: out.units,
        empty: out.empty,
        units_per_sec: out.units as f64 / out.elapsed.as_secs_f64(),
        latency,
        server_rss_mb: rss,
        db_mb: db.size_mb().await,
        wal_mb,
        raw_commits_per_sec: 0.0,
        double_claims,
        consistent,
    })
}

fn print_table(cells: &[Cell]) {
    println!();
    println!(
        "| cell | backend | issues | history | nodes | clients | units | units/s | p50 / p99 ms | server RSS MB | DB MB | WAL MB | raw commits/s | units/raw | double claims |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for c in cells {
        let latency: Vec<String> =
            c.latency.iter().map(|l| format!("{} {:.2} / {:.2}", l.op, l.p50_ms, l.p99_ms)).collect();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {:.0} | {:.0} | {} | {:.0} | {:.1}% | {}{} |",
            c.kind.name(),
            c.backend,
            c.issues,
            c.history,
            c.nodes,
            c.clients,
            c.units,
            c.units_per_sec,
            latency.join(", "),
            c.server_rss_mb,
            c.db_mb,
            c.wal_mb.map_or("–".to_owned(), |w| format!("{w:.0}")),
            c.raw_commits_per_sec,
            100.0 * c.units_per_sec / c.raw_commits_per_sec,
            c.double_claims,
            if c.consistent { "" } else { " (the database disagrees with the clients!)" }
        );
    }
    // How units/s holds up as the backlog and the history grow, cell shape by cell shape.
    let mut shapes: Vec<(Kind, usize, usize)> = cells.iter().map(|c| (c.kind, c.nodes, c.clients)).collect();
    shapes.sort_unstable();
    shapes.dedup();
    let compare = |what: &str, key: fn(&Cell) -> u64, same: fn(&Cell) -> u64| {
        for &(kind, nodes, clients) in &shapes {
            let of_shape: Vec<&Cell> =
                cells.iter().filter(|c| c.kind == kind && c.nodes == nodes && c.clients == clients).collect();
            for base in of_shape.iter().filter(|c| key(c) == of_shape.iter().map(|c| key(c)).min().unwrap_or(0)) {
                for other in of_shape.iter().filter(|c| same(c) == same(base) && key(c) > key(base)) {
                    println!(
                        "{} · {nodes} node(s) · {clients} client(s): units/s at {what} {} = {:.2}× at {}",
                        kind.name(),
                        key(other),
                        other.units_per_sec / base.units_per_sec,
                        key(base)
                    );
                }
            }
        }
    };
    compare("backlog", |c| c.issues, |c| c.history);
    compare("history", |c| c.history, |c| c.issues);
}

fn ms(d: &Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
