//! The PostgreSQL backend, for several stateless `loop serve` nodes sharing one database. Every
//! write is a transaction on a pooled connection; a transaction PostgreSQL aborted to break a
//! deadlock or a serialization conflict is run again (nothing of it was written). Nodes tell
//! each other about changes with `LISTEN`/`NOTIFY`.

pub mod admin;
mod conn;
mod export;
mod faults;
pub mod testing;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use loop_core::{Clock, Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};

pub use conn::Row;
use faults::db;

use crate::{Backend, SqlStore, Work};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The store on PostgreSQL.
pub type PgStore = SqlStore<PgBackend>;

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

pub struct PgBackend {
    pool: PgPool,
    /// An announcement is being sent; `again`: a change was made since it started.
    announcing: AtomicBool,
    again: AtomicBool,
}

/// Transactions PostgreSQL aborted to break a conflict are run again this many times.
const ATTEMPTS: u32 = 10;

/// The channel nodes announce changes on.
const CHANGES: &str = "loop_changes";

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
        let store =
            SqlStore::new(PgBackend { pool, announcing: AtomicBool::new(false), again: AtomicBool::new(false) }, clock);
        if config.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Applies pending migrations (under PostgreSQL's advisory lock, so nodes starting together
    /// take turns); returns how many were applied.
    pub async fn migrate(&self) -> Result<usize> {
        let pool = &self.backend().pool;
        let applied = || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM _sqlx_migrations").fetch_one(pool).await.unwrap_or(0)
        };
        let before = applied().await;
        MIGRATOR.run(pool).await.map_err(|e| Error::Internal(format!("migration failed: {e}")))?;
        Ok((applied().await - before).max(0) as usize)
    }

    pub async fn close(&self) {
        self.backend().pool.close().await;
    }
}

#[async_trait]
impl Backend for PgBackend {
    type Conn = PgConnection;

    async fn write<T: Send + 'static>(&self, work: Work<PgConnection, T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.pool.begin().await.map_err(db)?;
            let out = match work(&mut tx).await {
                // A COMMIT that fails (a serialization conflict found at the end, a lost
                // connection) acknowledges nothing.
                Ok(value) => tx.commit().await.map_err(db).map(|()| value),
                Err(e) => Err(e),
            };
            match out {
                Err(Error::Busy(_)) if attempt < ATTEMPTS => {
                    // Apart a little, so two transactions that collided do not collide again.
                    tokio::time::sleep(Duration::from_millis(rand_millis(attempt))).await;
                }
                out => return out,
            }
        }
    }

    async fn read<T: Send + 'static>(&self, work: Work<PgConnection, T>) -> Result<T> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        work(&mut conn).await
    }

    async fn snapshot<T: Send + 'static>(&self, work: Work<PgConnection, T>) -> Result<T> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let out = work(&mut tx).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// One announcement at a time: changes made while one is sent are covered by one more,
    /// sent after it (a busy node would otherwise spend a round trip per write on them).
    async fn announce_change(&self) {
        if self.announcing.swap(true, Ordering::AcqRel) {
            self.again.store(true, Ordering::Release);
            return;
        }
        loop {
            self.again.store(false, Ordering::Release);
            if let Err(e) = sqlx::query("SELECT pg_notify($1, '')").bind(CHANGES).execute(&self.pool).await {
                tracing::warn!(error = %e, "could not tell the other nodes about a change");
            }
            self.announcing.store(false, Ordering::Release);
            // A change that came in after `again` was read, and found this one still sending.
            if !self.again.load(Ordering::Acquire) || self.announcing.swap(true, Ordering::AcqRel) {
                return;
            }
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

/// Between 2^attempt and twice that many milliseconds (at most 256): growing, and varied so
/// that retries spread out.
fn rand_millis(attempt: u32) -> u64 {
    let jitter = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let base = 1u64 << attempt.min(7);
    base + u64::from(jitter) % base
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
