//! What the shared store asks of a database connection: run one SQL statement with its
//! arguments (inside whatever transaction the backend opened) and return rows that can be read
//! by column name. Each backend implements it once (`sqlite/conn.rs`, `postgres/conn.rs`);
//! every query in `crate` is written against it, once.
//!
//! SQL is written in one dialect, SQLite's `?` / `?N` placeholders with PostgreSQL's row-lock
//! clauses, and each backend adapts it (see `dialect.rs`).

use std::future::Future;

use loop_core::Result;

use crate::rows::Cols;

/// The `code` of the [`loop_core::Error::Conflict`] a backend reports for a unique-index
/// violation; the shared code turns it into the conflict the caller should see.
pub const UNIQUE: &str = "unique_violation";

/// `e`, or `conflict` when `e` is a unique-index violation.
pub fn unique_as(e: loop_core::Error, conflict: impl FnOnce() -> loop_core::Error) -> loop_core::Error {
    match e {
        loop_core::Error::Conflict { code, .. } if code == UNIQUE => conflict(),
        e => e,
    }
}

/// A statement argument. Typed even when null: PostgreSQL must know a parameter's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<&'a str>),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

impl From<f64> for Arg<'_> {
    fn from(v: f64) -> Self {
        Arg::Real(Some(v))
    }
}

impl From<Option<f64>> for Arg<'_> {
    fn from(v: Option<f64>) -> Self {
        Arg::Real(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Text(v.as_deref())
    }
}

/// An argument that owns its value, for statements built as they go (filters, IN lists,
/// batches of writes).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Real(f64),
    Text(String),
    /// A NULL, typed (`Arg::Int(None)`, …) as PostgreSQL needs.
    Null(Arg<'static>),
}

impl Value {
    pub fn arg(&self) -> Arg<'_> {
        match self {
            Value::Int(i) => Arg::Int(Some(*i)),
            Value::Real(r) => Arg::Real(Some(*r)),
            Value::Text(s) => Arg::Text(Some(s)),
            Value::Null(null) => null.clone(),
        }
    }
}

impl From<&Arg<'_>> for Value {
    fn from(arg: &Arg<'_>) -> Self {
        match *arg {
            Arg::Int(Some(i)) => Value::Int(i),
            Arg::Real(Some(r)) => Value::Real(r),
            Arg::Text(Some(s)) => Value::Text(s.to_owned()),
            Arg::Int(None) => Value::Null(Arg::Int(None)),
            Arg::Real(None) => Value::Null(Arg::Real(None)),
            Arg::Text(None) => Value::Null(Arg::Text(None)),
        }
    }
}

/// A write that owns its statement and arguments, so writes can be gathered and then sent
/// together (see [`DbExt::run_writes`]).
#[derive(Debug, Clone)]
pub struct Write {
    pub sql: std::borrow::Cow<'static, str>,
    pub values: Vec<Value>,
}

impl Write {
    pub fn new(sql: impl Into<std::borrow::Cow<'static, str>>, args: &[Arg<'_>]) -> Self {
        Self { sql: sql.into(), values: args.iter().map(Value::from).collect() }
    }
}

/// `args![a, b, …]`: a statement's arguments, each converted with `Arg::from`.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => { [$($crate::db::Arg::from($a)),*] };
}

/// Which database a connection talks to: where the shared code must choose (row locks,
/// advisory locks, numbering), it asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// One writer at a time: no row locks are needed.
    Sqlite,
    /// Several writers and nodes: rows are locked where the SQL says so.
    Postgres,
}

/// A connection inside the backend's transaction (writes) or outside one (reads).
pub trait Db: Send {
    type Row: Cols + Send + Sync;

    fn dialect(&self) -> Dialect;

    /// Every row `sql` returns.
    fn all<'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> impl Future<Output = Result<Vec<Self::Row>>> + Send + 'a;

    /// The first row `sql` returns, if any.
    fn one<'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> impl Future<Output = Result<Option<Self::Row>>> + Send + 'a;

    /// Runs `sql`; returns how many rows it changed.
    fn run<'a>(&'a mut self, sql: &'a str, args: &'a [Arg<'a>]) -> impl Future<Output = Result<u64>> + Send + 'a;

    /// Runs writes (INSERT, UPDATE, DELETE) none of which depends on another's effect, as if in
    /// order. PostgreSQL takes them as one statement (see [`crate::dialect::together`]): one
    /// round trip instead of one each.
    fn run_batch<'a>(&'a mut self, batch: &'a [Statement<'a>]) -> impl Future<Output = Result<()>> + Send + 'a {
        async move {
            for (sql, args) in batch {
                self.run(sql, args).await?;
            }
            Ok(())
        }
    }
}

/// A statement and its arguments, for [`Db::run_batch`].
pub type Statement<'a> = (&'a str, &'a [Arg<'a>]);

/// Reading helpers over any [`Db`].
pub trait DbExt: Db {
    /// The first row mapped by `map`.
    fn first<'a, T: Send + 'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
        map: fn(&Self::Row) -> Result<T>,
    ) -> impl Future<Output = Result<Option<T>>> + Send + 'a {
        async move { self.one(sql, args).await?.as_ref().map(map).transpose() }
    }

    /// Every row mapped by `map`.
    fn each<'a, T: Send + 'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
        map: fn(&Self::Row) -> Result<T>,
    ) -> impl Future<Output = Result<Vec<T>>> + Send + 'a {
        async move { self.all(sql, args).await?.iter().map(map).collect() }
    }

    /// Runs gathered writes as one batch (see [`Db::run_batch`]).
    fn run_writes<'a>(&'a mut self, writes: &'a [Write]) -> impl Future<Output = Result<()>> + Send + 'a {
        async move {
            if writes.is_empty() {
                return Ok(());
            }
            let args: Vec<Vec<Arg<'_>>> = writes.iter().map(|w| w.values.iter().map(Value::arg).collect()).collect();
            let batch: Vec<Statement<'_>> = writes.iter().zip(&args).map(|(w, a)| (&*w.sql, &a[..])).collect();
            self.run_batch(&batch).await
        }
    }

    /// The integer in the first column named `column` of the first row (0 when none).
    fn int<'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
        column: &'a str,
    ) -> impl Future<Output = Result<i64>> + Send + 'a {
        async move {
            match self.one(sql, args).await? {
                Some(row) => Ok(row.int(column)?.unwrap_or(0)),
                None => Ok(0),
            }
        }
    }
}

impl<D: Db> DbExt for D {}
