//! Loop's PostgreSQL store: the same behaviour as the SQLite store, case for case (the
//! conformance suite holds both to it), for several stateless `loop serve` nodes sharing one
//! database. Claims take row locks that skip locked rows, so nodes never hand out one issue
//! twice and never wait on each other's claims.

pub mod admin;
mod claiming;
mod comments;
mod dashboard;
mod dispatch;
mod dispatch_index;
mod export;
mod goals;
mod improvement;
mod issues;
mod labels;
mod projects;
mod relations;
mod rows;
mod sessions;
mod signals;
mod sql;
mod templates;
pub mod testing;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use loop_core::{Clock, Error, Result, Store};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    clock: Arc<dyn Clock>,
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database?sslmode=…`
    pub url: String,
    pub max_connections: u32,
    pub min_connections: u32,
    /// How long a request may wait for a free connection before it fails.
    pub acquire_timeout: Duration,
    /// Apply pending migrations on open (safe when several nodes start at once).
    pub migrate: bool,
}

impl PgConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(10),
            migrate: true,
        }
    }
}

impl PgStore {
    pub async fn open(config: PgConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let options: PgConnectOptions =
            config.url.parse().map_err(|e| Error::Internal(format!("invalid PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .min_connections(config.min_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(|e| Error::Internal(format!("cannot connect to PostgreSQL: {e}")))?;
        let store = Self { pool, clock };
        if config.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Applies pending migrations (under PostgreSQL's advisory lock, so nodes starting together
    /// take turns); returns how many were applied.
    pub async fn migrate(&self) -> Result<usize> {
        let applied = |pool: &PgPool| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM _sqlx_migrations")
                    .fetch_one(&pool)
                    .await
                    .unwrap_or(0)
            }
        };
        let before = applied(&self.pool).await;
        MIGRATOR.run(&self.pool).await.map_err(|e| Error::Internal(format!("migration failed: {e}")))?;
        Ok((applied(&self.pool).await - before).max(0) as usize)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn now(&self) -> loop_core::Timestamp {
        self.clock.now()
    }
}

/// The channel nodes announce changes on.
const CHANGES: &str = "loop_changes";

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(db)
    }

    fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    async fn announce_change(&self) {
        if let Err(e) = sqlx::query("SELECT pg_notify($1, '')").bind(CHANGES).execute(&self.pool).await {
            tracing::warn!(error = %e, "could not tell the other nodes about a change");
        }
    }

    async fn follow_changes(&self, on_change: Arc<dyn Fn() + Send + Sync>) {
        loop {
            let Err(e) = relay(&self.pool, on_change.as_ref()).await;
            if self.pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "lost the change notifications of the other nodes; listening again in 1 s");
            // Whatever was announced meanwhile is lost: look again anyway.
            on_change();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Passes every change announced on the channel to `on_change`, until the connection fails.
async fn relay(pool: &PgPool, on_change: &(dyn Fn() + Send + Sync)) -> std::result::Result<Infallible, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(CHANGES).await?;
    loop {
        listener.recv().await?;
        on_change();
    }
}

/// Maps a database error to the domain's internal error.
pub(crate) fn db(e: sqlx::Error) -> Error {
    Error::Internal(format!("database: {e}"))
}

/// True when `e` is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
