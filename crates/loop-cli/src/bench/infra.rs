//! What a bench cell runs on: a copy of the seeded database, `loop serve` nodes as child
//! processes, and the raw commit rate of the database it measures against.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use loop_core::SystemClock;
use loop_store::postgres::{PgConfig, PgStore, admin};
use loop_store::sqlite::{SqliteConfig, SqliteStore};
use tokio::io::{AsyncBufReadExt, BufReader};

pub const KEY: &str = "loop_bench0000000000000000000000000000000000000000000000000000000000";

/// Which database the nodes share.
pub enum Backend {
    Sqlite,
    Postgres { admin_url: String },
}

/// One cell's copy of the seeded database.
pub enum Database {
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

pub async fn open_sqlite(dir: &Path) -> Result<SqliteStore> {
    let config = SqliteConfig::new(dir.join("loop.db").to_string_lossy());
    Ok(SqliteStore::open(config, Arc::new(SystemClock)).await?)
}

/// Database names carry the bench's process id, so two benches can share a server.
pub fn seed_name(seed: &str) -> String {
    format!("loop_bench_{}_{seed}", std::process::id())
}

/// Moves the seeded SQLite database into a new PostgreSQL database `name`, as `loop export |
/// loop import` would. Returns the number of rows.
pub async fn copy_to_postgres(sqlite_dir: &Path, admin_url: &str, name: &str) -> Result<u64> {
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
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres { .. } => "PostgreSQL",
        }
    }

    /// A fresh copy of the seed `seed` (in `template`, and on PostgreSQL in the database
    /// [`seed_name`]) for one cell.
    pub async fn copy_seed(&self, template: &Path, seed: &str, cell_dir: &Path) -> Result<Database> {
        match self {
            Backend::Sqlite => {
                copy_dir(template, cell_dir)?;
                Ok(Database::Sqlite { dir: cell_dir.to_path_buf() })
            }
            Backend::Postgres { admin_url } => {
                let name = format!("loop_bench_{}_cell", std::process::id());
                admin::drop_database(admin_url, &name).await?;
                let url = admin::create_database(admin_url, &name, Some(&seed_name(seed))).await?;
                Ok(Database::Postgres { admin_url: admin_url.clone(), name, url, dir: cell_dir.to_path_buf() })
            }
        }
    }

    /// One-row transactions per second, straight on the database (no Loop in between).
    pub async fn raw_commit_rate(&self, work: &Path) -> Result<f64> {
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
    pub fn backend(&self) -> &'static str {
        match self {
            Database::Sqlite { .. } => "sqlite",
            Database::Postgres { .. } => "postgres",
        }
    }

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

    pub async fn size_mb(&self) -> f64 {
        match self {
            Database::Sqlite { dir } => file_mb(&dir.join("loop.db")),
            Database::Postgres { url, .. } => {
                admin::database_size(url).await.map_or(0.0, |bytes| bytes as f64 / 1_048_576.0)
            }
        }
    }

    pub fn wal_mb(&self) -> Option<f64> {
        match self {
            Database::Sqlite { dir } => Some(file_mb(&dir.join("loop.db-wal"))),
            Database::Postgres { .. } => None,
        }
    }

    pub async fn remove(self) {
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
pub struct Node {
    child: tokio::process::Child,
    pub pid: u32,
    pub url: String,
}

impl Node {
    pub async fn start(exe: &Path, db: &Database, node: usize) -> Result<Node> {
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

    /// Resident memory, in MiB.
    pub fn rss_mb(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// A graceful stop (SQLite checkpoints its log into the database file, which is then measured).
    pub async fn stop(mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.is_err() {
            self.child.kill().await.ok();
        }
    }
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
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
