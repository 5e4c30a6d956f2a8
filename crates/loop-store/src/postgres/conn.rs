//! [`Db`] on a PostgreSQL connection (sqlx): each statement is prepared once per connection
//! (sqlx caches it) and run with typed arguments.

use loop_core::{Error, Result};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres, Row as _};

use super::faults::db;
use crate::db::{Arg, Db, Dialect, Statement};
use crate::dialect::{adapt, together};
use crate::rows::Cols;

/// A result row.
pub struct Row(PgRow);

impl Cols for Row {
    fn text(&self, name: &str) -> Result<Option<String>> {
        self.0.try_get(name).map_err(|e| Error::Internal(format!("database: {e}")))
    }

    /// BIGINT columns, and integer expressions (`CASE … THEN 1`), which PostgreSQL types INT.
    fn int(&self, name: &str) -> Result<Option<i64>> {
        match self.0.try_get::<Option<i64>, _>(name) {
            Err(sqlx::Error::ColumnDecode { .. }) => self.0.try_get::<Option<i32>, _>(name).map(|v| v.map(i64::from)),
            read => read,
        }
        .map_err(|e| Error::Internal(format!("database: {e}")))
    }

    fn real(&self, name: &str) -> Result<Option<f64>> {
        self.0.try_get(name).map_err(|e| Error::Internal(format!("database: {e}")))
    }
}

fn bound<'q>(sql: &'q str, args: &'q [Arg<'q>]) -> Query<'q, Postgres, PgArguments> {
    let mut q = sqlx::query(sql);
    for arg in args {
        q = match arg {
            Arg::Int(v) => q.bind(*v),
            Arg::Real(v) => q.bind(*v),
            Arg::Text(v) => q.bind(*v),
        };
    }
    q
}

impl Db for PgConnection {
    type Row = Row;

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn all(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>> {
        let sql = adapt(Dialect::Postgres, sql);
        let rows = bound(&sql, args).fetch_all(&mut *self).await.map_err(db)?;
        Ok(rows.into_iter().map(Row).collect())
    }

    async fn one(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Option<Row>> {
        let sql = adapt(Dialect::Postgres, sql);
        Ok(bound(&sql, args).fetch_optional(&mut *self).await.map_err(db)?.map(Row))
    }

    async fn run(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        let sql = adapt(Dialect::Postgres, sql);
        Ok(bound(&sql, args).execute(&mut *self).await.map_err(db)?.rows_affected())
    }

    async fn run_batch(&mut self, batch: &[Statement<'_>]) -> Result<()> {
        let sql = together(batch.iter().map(|(sql, args)| (*sql, args.len())));
        let args: Vec<Arg<'_>> = batch.iter().flat_map(|(_, args)| args.iter().cloned()).collect();
        bound(&sql, &args).execute(&mut *self).await.map_err(db)?;
        Ok(())
    }
}
