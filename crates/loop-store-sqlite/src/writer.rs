//! The writer's turn. Two connections write: sqlx's writer (most writes) and the claim engine's
//! (claims). They take turns through one fair gate, so SQLite never sees two writers from this
//! process and nobody waits on SQLite's busy lock, whose back-off sleeps make long tails.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The turn to write. The claim engine takes it with `blocking_lock`.
pub(crate) type Gate = Arc<Mutex<()>>;

#[derive(Clone)]
pub(crate) struct Writer {
    pool: SqlitePool,
    gate: Gate,
}

impl Writer {
    pub(crate) fn new(pool: SqlitePool) -> Self {
        Self { pool, gate: Gate::default() }
    }

    pub(crate) fn gate(&self) -> Gate {
        self.gate.clone()
    }

    /// A write transaction, holding the turn until it is committed or dropped.
    pub(crate) async fn begin(&self) -> sqlx::Result<Turn<Transaction<'static, Sqlite>>> {
        let turn = self.gate.clone().lock_owned().await;
        Ok(Turn { conn: self.pool.begin().await?, _turn: turn })
    }

    /// The writer connection outside a transaction (single statements), holding the turn.
    pub(crate) async fn acquire(&self) -> sqlx::Result<Turn<PoolConnection<Sqlite>>> {
        let turn = self.gate.clone().lock_owned().await;
        Ok(Turn { conn: self.pool.acquire().await?, _turn: turn })
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// A writer connection (or transaction) used during the turn.
pub(crate) struct Turn<C> {
    conn: C,
    _turn: OwnedMutexGuard<()>,
}

impl Turn<Transaction<'static, Sqlite>> {
    pub(crate) async fn commit(self) -> sqlx::Result<()> {
        self.conn.commit().await
    }
}

impl<C: DerefMut<Target = SqliteConnection>> Deref for Turn<C> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl<C: DerefMut<Target = SqliteConnection>> DerefMut for Turn<C> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}
