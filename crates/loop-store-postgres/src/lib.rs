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
use sqlx::{Connection, PgConnection};

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
        // One connection first: the pool retries until its timeout and then reports only that.
        let server = format!("{}:{}", options.get_host(), options.get_port());
        let probe = PgConnection::connect_with(&options)
            .await
            .map_err(|e| Error::Internal(format!("cannot connect to PostgreSQL at {server}: {e}")))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .min_connections(config.min_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(|e| Error::Internal(format!("cannot connect to PostgreSQL at {server}: {e}")))?;
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

/// Maps a database error to the domain's: `Busy` when PostgreSQL aborted the transaction to
/// resolve a deadlock or a serialization conflict, or no connection came free (a retry may
/// succeed); otherwise internal.
pub(crate) fn db(e: sqlx::Error) -> Error {
    let transient = match &e {
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("40001" | "40P01")),
        sqlx::Error::PoolTimedOut => true,
        _ => false,
    };
    if transient { Error::Busy(format!("database: {e}")) } else { Error::Internal(format!("database: {e}")) }
}

/// True when `e` is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, PgConnection};

    use super::*;

    /// Two transactions that lock two rows in opposite orders: PostgreSQL aborts one of them,
    /// and the store reports that as `Busy` (503, retry), not as an internal failure.
    #[tokio::test]
    async fn a_deadlock_is_busy_not_internal() {
        let database = testing::database().await;
        let mut setup = PgConnection::connect(&database.url).await.unwrap();
        sqlx::raw_sql("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
            .execute(&mut setup)
            .await
            .unwrap();
        let lock_both = |first: i32, second: i32| {
            let url = database.url.clone();
            async move {
                let mut conn = PgConnection::connect(&url).await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                let lock = "SELECT 1 FROM t WHERE id = $1 FOR UPDATE";
                sqlx::query(lock).bind(first).execute(&mut *tx).await.unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                sqlx::query(lock).bind(second).execute(&mut *tx).await.map_err(db)
            }
        };
        let (a, b) = tokio::join!(lock_both(1, 2), lock_both(2, 1));
        let failed: Vec<Error> = [a, b].into_iter().filter_map(|r| r.err()).collect();
        assert_eq!(failed.len(), 1, "exactly one transaction is aborted: {failed:?}");
        assert!(matches!(&failed[0], Error::Busy(m) if m.contains("deadlock")), "{:?}", failed[0]);
    }
}
