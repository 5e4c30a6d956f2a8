//! The embedded SQLite backend: one file in WAL mode. Every write runs on one writer thread
//! that commits concurrent writes together (`engine.rs`); reads run on a few read-only
//! connections beside it, which WAL lets proceed while the writer writes.

mod conn;
mod engine;
mod export;
mod faults;
mod readers;
pub mod seed;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use loop_core::{Clock, Error, Result};
use rusqlite::Connection;
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};

pub use conn::Row;
use engine::Engine;
use readers::Readers;

use crate::{Backend, SqlStore, Work};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite's page size (its default, which Loop keeps).
const PAGE_SIZE: u64 = 4096;

/// The store on SQLite.
pub type SqliteStore = SqlStore<SqliteBackend>;

/// How to open the database.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// A file path, or a `sqlite:` URL.
    pub location: String,
    /// Apply pending migrations on open.
    pub migrate: bool,
    /// Read-only connections reads run on, at most.
    pub readers: u32,
    /// The most the database file may grow to, in bytes (SQLite's `max_page_count`); past it,
    /// writes are refused as if the disk were full. `None`: as large as the disk allows.
    pub max_size: Option<u64>,
}

impl SqliteConfig {
    pub fn new(location: impl Into<String>) -> Self {
        Self { location: location.into(), migrate: true, readers: 4, max_size: None }
    }
}

pub struct SqliteBackend {
    path: PathBuf,
    engine: Arc<Engine>,
    readers: Arc<Readers>,
    closed: AtomicBool,
}

impl SqliteStore {
    /// Opens (and creates) the database at `config.location`, applying pending migrations unless
    /// told not to.
    pub async fn open(config: SqliteConfig, clock: Arc<dyn Clock>) -> Result<SqliteStore> {
        // The writer and the readers each open the file, so it must be one.
        if config.location.contains(":memory:") || config.location.contains("mode=memory") {
            return Err(Error::Internal(format!(
                "cannot use the in-memory SQLite database {}: give a file path (Loop opens it from several connections)",
                config.location
            )));
        }
        let options = if config.location.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(&config.location).map_err(Error::internal)?
        } else {
            SqliteConnectOptions::new().filename(&config.location)
        };
        let path = options.get_filename().to_owned();
        // Migrations run through sqlx, which keeps their history in `_sqlx_migrations`.
        let mut setup = options
            .journal_mode(SqliteJournalMode::Wal)
            .create_if_missing(true)
            .connect()
            .await
            .map_err(|e| Error::Internal(format!("cannot open SQLite database {}: {e}", path.display())))?;
        if config.migrate {
            MIGRATOR.run(&mut setup).await.map_err(|e| Error::Internal(format!("migration failed: {e}")))?;
        }
        let _ = sqlx::Connection::close(setup).await;
        let max_pages = config.max_size.map(|bytes| (bytes / PAGE_SIZE).max(1));
        let backend = SqliteBackend {
            engine: Arc::new(Engine::start(&path, max_pages)?),
            readers: Arc::new(Readers::new(&path, config.readers.max(1) as usize)),
            path,
            closed: AtomicBool::new(false),
        };
        Ok(SqlStore::new(backend, clock))
    }

    /// Applies pending migrations; returns how many were applied.
    pub async fn migrate(&self) -> Result<usize> {
        self.backend().migrate().await
    }

    /// Copies the log into the database file and closes every connection.
    pub async fn close(&self) {
        self.backend().close().await
    }
}

impl SqliteBackend {
    /// Applies pending migrations; returns how many were applied.
    pub async fn migrate(&self) -> Result<usize> {
        let mut conn = SqliteConnectOptions::new()
            .filename(&self.path)
            .connect()
            .await
            .map_err(|e| Error::Internal(format!("cannot open SQLite database {}: {e}", self.path.display())))?;
        let before: i64 =
            sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&mut conn).await.unwrap_or(0);
        MIGRATOR.run(&mut conn).await.map_err(|e| Error::Internal(format!("migration failed: {e}")))?;
        let _ = sqlx::Connection::close(conn).await;
        Ok(MIGRATOR.iter().count().saturating_sub(before as usize))
    }

    /// Lets queued writes finish, copies the log into the database file and closes every
    /// connection.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.engine.stop().await;
        self.readers.close();
        let path = self.path.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(conn) = Connection::open(&path) {
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            }
        })
        .await;
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    #[cfg(test)]
    pub(crate) fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    type Conn = Connection;

    async fn write<T: Send + 'static>(&self, work: Work<Connection, T>) -> Result<T> {
        self.engine.run(work).await.map_err(|e| faults::full_if_no_room(e, &self.path))
    }

    async fn read<T: Send + 'static>(&self, work: Work<Connection, T>) -> Result<T> {
        self.readers.run(work, false).await
    }

    async fn snapshot<T: Send + 'static>(&self, work: Work<Connection, T>) -> Result<T> {
        self.readers.run(work, true).await
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}
