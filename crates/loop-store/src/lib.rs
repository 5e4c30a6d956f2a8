//! Loop's storage, written once for both databases.
//!
//! - The shared store ([`SqlStore`]) holds every rule and every query: one module per resource
//!   (`issues.rs`, `claiming.rs`, …), each a set of functions over a [`Db`] connection, and the
//!   `Store` traits of `loop-core` implemented on top of them.
//! - A [`Backend`] runs those functions: it owns the connections, opens and commits the
//!   transactions, and classifies its driver's errors. [`sqlite`] is the embedded default (one
//!   writer thread that commits concurrent writes together, a few reader connections);
//!   [`postgres`] serves several nodes on one database (a pool, `LISTEN`/`NOTIFY`).
//! - What the databases do differently is said in [`dialect`] (the SQL text) and by
//!   [`Db::dialect`] where the shared code must choose (advisory locks, numbering).

pub mod db;
pub mod dialect;
pub mod export;
pub mod postgres;
pub mod rows;
pub mod sqlite;

mod agent_days;
mod claiming;
mod comments;
mod common;
mod dashboard;
mod dispatch;
mod dispatch_index;
mod goals;
mod handoff;
mod hydration;
mod hypotheses;
mod improvement;
mod issues;
mod labels;
mod merge_slots;
mod metrics;
mod projects;
mod pull_requests;
mod questions;
mod relations;
mod rework;
mod sessions;
mod settings;
mod signals;
mod skills;
mod templates;
mod tokens;
mod triage;

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use loop_core::{Clock, Result, Store, Timestamp};

pub use db::{Arg, Db, DbExt, Dialect};

/// Work on a connection: run once per attempt (a backend may run it again after a rollback
/// that was not its fault), always to completion.
pub type Work<C, T> = Box<dyn for<'c> Fn(&'c mut C) -> BoxFuture<'c, Result<T>> + Send + Sync>;

/// What a database must provide the shared store.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    type Conn: Db;

    /// Runs `work` in one write transaction, committed when it succeeds; when it fails nothing
    /// it wrote remains. Acknowledges only what is committed.
    async fn write<T: Send + 'static>(&self, work: Work<Self::Conn, T>) -> Result<T>;

    /// Runs `work`, which only reads.
    async fn read<T: Send + 'static>(&self, work: Work<Self::Conn, T>) -> Result<T>;

    /// Runs `work`, which only reads, with every query on one snapshot of the database.
    async fn snapshot<T: Send + 'static>(&self, work: Work<Self::Conn, T>) -> Result<T>;

    /// True once closed for shutdown.
    fn is_closed(&self) -> bool;

    /// Tells the other nodes on this database that something changed.
    async fn announce_change(&self) {}

    /// Calls `on_change` whenever another node announces a change, until closed.
    async fn follow_changes(&self, on_change: Arc<dyn Fn() + Send + Sync>) {
        let _ = on_change;
    }
}

/// The store: every behaviour of [`loop_core::Store`], over a backend. Cheap to clone.
pub struct SqlStore<B> {
    backend: Arc<B>,
    clock: Arc<dyn Clock>,
}

impl<B> Clone for SqlStore<B> {
    fn clone(&self) -> Self {
        Self { backend: self.backend.clone(), clock: self.clock.clone() }
    }
}

impl<B: Backend> SqlStore<B> {
    pub fn new(backend: B, clock: Arc<dyn Clock>) -> Self {
        Self { backend: Arc::new(backend), clock }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Runs `work` in one write transaction (see [`Backend::write`]), handing it its own copy
    /// of `input` on every attempt.
    async fn write<A, T, F>(&self, input: A, work: F) -> Result<T>
    where
        A: Clone + Send + Sync + 'static,
        T: Send + 'static,
        F: for<'c> Fn(&'c mut B::Conn, A) -> BoxFuture<'c, Result<T>> + Send + Sync + 'static,
    {
        self.backend.write(Box::new(move |db| work(db, input.clone()))).await
    }

    /// Runs `work`, which only reads, with `input` as [`write`](Self::write) does.
    async fn read<A, T, F>(&self, input: A, work: F) -> Result<T>
    where
        A: Clone + Send + Sync + 'static,
        T: Send + 'static,
        F: for<'c> Fn(&'c mut B::Conn, A) -> BoxFuture<'c, Result<T>> + Send + Sync + 'static,
    {
        self.backend.read(Box::new(move |db| work(db, input.clone()))).await
    }

    /// Runs `work`, which only reads, on one snapshot of the database.
    async fn snapshot<A, T, F>(&self, input: A, work: F) -> Result<T>
    where
        A: Clone + Send + Sync + 'static,
        T: Send + 'static,
        F: for<'c> Fn(&'c mut B::Conn, A) -> BoxFuture<'c, Result<T>> + Send + Sync + 'static,
    {
        self.backend.snapshot(Box::new(move |db| work(db, input.clone()))).await
    }
}

/// A row of 64 KiB, added and removed in one transaction: a real write that changes nothing.
async fn probe(db: &mut impl Db) -> Result<()> {
    static FILLER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| "0".repeat(65_536));
    db.run("INSERT INTO storage_probes (id, filler) VALUES (1, ?)", &args![FILLER.as_str()]).await?;
    db.run("DELETE FROM storage_probes", &[]).await?;
    Ok(())
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn ping(&self) -> Result<()> {
        self.read((), |db, ()| Box::pin(async move { db.run("SELECT 1", &[]).await.map(|_| ()) })).await
    }

    async fn probe_write(&self) -> Result<()> {
        self.write((), |db, ()| Box::pin(probe(db))).await
    }

    fn is_closed(&self) -> bool {
        self.backend.is_closed()
    }

    async fn announce_change(&self) {
        self.backend.announce_change().await
    }

    async fn follow_changes(&self, on_change: Arc<dyn Fn() + Send + Sync>) {
        self.backend.follow_changes(on_change).await
    }
}
