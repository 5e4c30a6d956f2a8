//! [`Db`] on a rusqlite connection. Statements run at once (SQLite is in-process), so every
//! future here is ready when returned; each statement is prepared once per connection and
//! reused.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{Future, ready};
use std::sync::Arc;

use loop_core::{Error, Result};
use rusqlite::Connection;
use rusqlite::types::{Value, ValueRef};

use super::faults::sqlite;
use crate::db::{Arg, Db, Dialect};
use crate::dialect::adapt;
use crate::rows::Cols;

/// A result row, owned: its column names (shared by every row of the statement) and values.
pub struct Row {
    names: Arc<[Box<str>]>,
    values: Vec<Value>,
}

impl Row {
    fn value(&self, name: &str) -> Result<&Value> {
        match self.names.iter().position(|n| &**n == name) {
            Some(i) => Ok(&self.values[i]),
            None => Err(Error::Internal(format!("no column {name} in the result"))),
        }
    }

    /// Every column by name, for exports.
    pub fn columns(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.names.iter().map(|n| &**n).zip(&self.values)
    }
}

impl Cols for Row {
    fn text(&self, name: &str) -> Result<Option<String>> {
        match self.value(name)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            other => Err(Error::Internal(format!("column {name}: expected text, got {other:?}"))),
        }
    }

    fn int(&self, name: &str) -> Result<Option<i64>> {
        match self.value(name)? {
            Value::Null => Ok(None),
            Value::Integer(i) => Ok(Some(*i)),
            other => Err(Error::Internal(format!("column {name}: expected an integer, got {other:?}"))),
        }
    }

    fn real(&self, name: &str) -> Result<Option<f64>> {
        match self.value(name)? {
            Value::Null => Ok(None),
            Value::Real(x) => Ok(Some(*x)),
            Value::Integer(i) => Ok(Some(*i as f64)),
            other => Err(Error::Internal(format!("column {name}: expected a number, got {other:?}"))),
        }
    }
}

/// A statement's column names, shared by its rows.
type Names = Arc<[Box<str>]>;

thread_local! {
    /// The column names of each statement this thread ran, by SQL text.
    static NAMES: RefCell<HashMap<Arc<str>, Names>> = RefCell::new(HashMap::new());
}

fn query(conn: &Connection, sql: &str, args: &[Arg<'_>], limit: Option<usize>) -> Result<Vec<Row>> {
    let sql = adapt(Dialect::Sqlite, sql);
    let mut stmt = conn.prepare_cached(&sql).map_err(sqlite)?;
    bind(&mut stmt, args)?;
    let names = NAMES.with_borrow_mut(|names| {
        if let Some(known) = names.get(&sql) {
            return known.clone();
        }
        if names.len() >= 4096 {
            names.clear();
        }
        let known: Arc<[Box<str>]> = stmt.column_names().into_iter().map(Into::into).collect();
        names.insert(sql.clone(), known.clone());
        known
    });
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sqlite)? {
        let values = (0..names.len()).map(|i| row.get_ref(i).map(ValueRef::into)).collect::<rusqlite::Result<_>>();
        out.push(Row { names: names.clone(), values: values.map_err(sqlite)? });
        if limit.is_some_and(|n| out.len() >= n) {
            break;
        }
    }
    Ok(out)
}

fn bind(stmt: &mut rusqlite::CachedStatement<'_>, args: &[Arg<'_>]) -> Result<()> {
    for (i, arg) in args.iter().enumerate() {
        let bound = match arg {
            Arg::Int(v) => stmt.raw_bind_parameter(i + 1, v),
            Arg::Real(v) => stmt.raw_bind_parameter(i + 1, v),
            Arg::Text(v) => stmt.raw_bind_parameter(i + 1, v),
        };
        bound.map_err(sqlite)?;
    }
    Ok(())
}

fn execute(conn: &Connection, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
    let sql = adapt(Dialect::Sqlite, sql);
    let mut stmt = conn.prepare_cached(&sql).map_err(sqlite)?;
    bind(&mut stmt, args)?;
    if stmt.column_count() == 0 {
        return stmt.raw_execute().map(|n| n as u64).map_err(sqlite);
    }
    // A statement with results (`RETURNING`, `SELECT`): run it through.
    let mut rows = stmt.raw_query();
    while rows.next().map_err(sqlite)?.is_some() {}
    drop(rows);
    Ok(conn.changes())
}

impl Db for Connection {
    type Row = Row;

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn all<'a>(&'a mut self, sql: &'a str, args: &'a [Arg<'a>]) -> impl Future<Output = Result<Vec<Row>>> + Send + 'a {
        ready(query(self, sql, args, None))
    }

    fn one<'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Arg<'a>],
    ) -> impl Future<Output = Result<Option<Row>>> + Send + 'a {
        ready(query(self, sql, args, Some(1)).map(|rows| rows.into_iter().next()))
    }

    fn run<'a>(&'a mut self, sql: &'a str, args: &'a [Arg<'a>]) -> impl Future<Output = Result<u64>> + Send + 'a {
        ready(execute(self, sql, args))
    }
}

/// Runs a future whose awaits are all on a [`Connection`] (so it is ready at once) to the end.
pub fn finish<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    use std::task::{Context, Poll, Waker};
    let mut work = std::pin::pin!(work);
    match work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => Err(Error::Internal("SQLite work waited on something other than its connection".into())),
    }
}
