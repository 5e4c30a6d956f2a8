//! Loop's embedded SQLite store: one file in WAL mode.
//!
//! Writes go through a single connection, so write transactions queue in the application
//! instead of fighting over SQLite's lock with busy-waits; reads use a separate pool of
//! read-only connections, which WAL lets run beside the writer.

mod claiming;
mod comments;
mod dashboard;
mod dispatch;
mod dispatch_index;
mod engine;
mod export;
mod goals;
mod improvement;
mod issues;
mod labels;
mod projects;
mod relations;
mod rows;
pub mod seed;
mod sessions;
mod signals;
mod templates;
mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use loop_core::{Clock, Error, Result, Store};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct SqliteStore {
    writer: writer::Writer,
    /// Runs claims; see `engine.rs`.
    engine: Arc<engine::Engine>,
    reader: SqlitePool,
    clock: Arc<dyn Clock>,
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// A file path, or a `sqlite:` URL.
    pub location: String,
    /// Apply pending migrations on open.
    pub migrate: bool,
    pub readers: u32,
}

impl SqliteConfig {
    pub fn new(location: impl Into<String>) -> Self {
        Self { location: location.into(), migrate: true, readers: 4 }
    }
}

impl SqliteStore {
    pub async fn open(config: SqliteConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        // Claims use a connection of their own (`engine.rs`), which must see the same database.
        if config.location.contains(":memory:") || config.location.contains("mode=memory") {
            return Err(Error::Internal(format!(
                "cannot use the in-memory SQLite database {}: give a file path (Loop opens it from several connections)",
                config.location
            )));
        }
        let base = if config.location.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(&config.location).map_err(Error::internal)?
        } else {
            SqliteConnectOptions::new().filename(&config.location)
        };
        let base = base
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .pragma("cache_size", "-16000")
            // Checkpoints run on their own thread (see `engine.rs`), not inside a commit.
            .pragma("wal_autocheckpoint", "0");

        // Pings before each acquire would cost a round trip to sqlx's worker thread per query.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(|e| Error::Internal(format!("cannot open SQLite database {}: {e}", config.location)))?;
        if config.migrate {
            MIGRATOR.run(&writer).await.map_err(|e| Error::Internal(format!("migration failed: {e}")))?;
        }
        let reader = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(config.readers.max(1))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(base.clone().read_only(true))
            .await
            .map_err(Error::internal)?;
        let writer = writer::Writer::new(writer);
        let engine = Arc::new(engine::Engine::start(base.get_filename(), writer.gate())?);
        Ok(Self { writer, engine, reader, clock })
    }

    /// Applies pending migrations; returns how many were applied.
    pub async fn migrate(&self) -> Result<usize> {
        use sqlx::Row;
        let before: i64 = sqlx::query("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(&self.reader)
            .await
            .and_then(|r| r.try_get(0))
            .unwrap_or(0);
        let mut conn = self.writer.acquire().await.map_err(db)?;
        MIGRATOR.run(&mut *conn).await.map_err(|e| Error::Internal(format!("migration failed: {e}")))?;
        Ok(MIGRATOR.iter().count().saturating_sub(before as usize))
    }

    /// Flushes the WAL into the main file and closes every connection.
    pub async fn close(&self) {
        self.engine.stop().await;
        if let Ok(mut conn) = self.writer.acquire().await {
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *conn).await;
        }
        self.reader.close().await;
        self.writer.close().await;
    }

    fn now(&self) -> loop_core::Timestamp {
        self.clock.now()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map(|_| ()).map_err(db)
    }

    fn is_closed(&self) -> bool {
        self.reader.is_closed()
    }
}

/// Maps a database error to the domain's: internal, or
/// `Busy` when the database stayed locked past the busy timeout or no connection came free (a
/// retry may succeed).
pub(crate) fn db(e: sqlx::Error) -> Error {
    let busy = match &e {
        // SQLITE_BUSY and its extended codes.
        sqlx::Error::Database(d) => d.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| c & 0xff == 5),
        sqlx::Error::PoolTimedOut => true,
        _ => false,
    };
    if busy { Error::Busy(format!("database: {e}")) } else { Error::Internal(format!("database: {e}")) }
}

/// True when `e` is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
