//! `loop export` and `loop import`: every table's rows as JSON values, so a database moves
//! between SQLite and PostgreSQL (or into a backup) with nothing lost.

use futures_util::TryStreamExt;
use loop_core::{Error, Result};
use loop_store_rows::{EXPORT_TABLES, ExportSink, ImportRows, check_import_row};
use serde_json::{Map, Value};
use sqlx::{Column, Row, SqliteConnection, TypeInfo, ValueRef};

use crate::{SqliteStore, db};

impl SqliteStore {
    /// Passes every row of every exported table to `out`, in foreign-key order, from one
    /// consistent snapshot. Returns how many rows there were.
    pub async fn export(&self, out: &mut ExportSink<'_>) -> Result<u64> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        sqlx::query("BEGIN").execute(&mut *conn).await.map_err(db)?;
        let mut n = 0;
        for (table, order) in EXPORT_TABLES {
            let sql = format!("SELECT * FROM {table} ORDER BY {order}");
            let mut rows = sqlx::query(&sql).fetch(&mut *conn);
            while let Some(row) = rows.try_next().await.map_err(db)? {
                let mut map = Map::new();
                for (i, col) in row.columns().iter().enumerate() {
                    let raw = row.try_get_raw(i).map_err(db)?;
                    let value = if raw.is_null() {
                        Value::Null
                    } else {
                        match raw.type_info().name() {
                            "INTEGER" => Value::from(row.try_get::<i64, _>(i).map_err(db)?),
                            "REAL" => Value::from(row.try_get::<f64, _>(i).map_err(db)?),
                            _ => Value::from(row.try_get::<String, _>(i).map_err(db)?),
                        }
                    };
                    map.insert(col.name().to_owned(), value);
                }
                out(table, map)?;
                n += 1;
            }
        }
        sqlx::query("COMMIT").execute(&mut *conn).await.map_err(db)?;
        Ok(n)
    }

    /// Loads exported rows into this database, which must hold none yet, in one transaction:
    /// all of them or (on any error) none. Returns how many rows were loaded.
    pub async fn import(&self, rows: &mut ImportRows<'_>) -> Result<u64> {
        let mut tx = self.writer.begin().await.map_err(db)?;
        refuse_unless_empty(&mut tx).await?;
        let mut columns: std::collections::HashMap<String, Vec<String>> = Default::default();
        let mut batch = InsertBatch::default();
        let mut n = 0;
        for entry in rows {
            let (table, mut row) = entry?;
            if !columns.contains_key(&table) {
                let names: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
                    .bind(&table)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
                columns.insert(table.clone(), names);
            }
            check_import_row(&table, &row, &columns[&table])?;
            if !batch.takes(&table, &row) {
                batch.flush(&mut tx).await?;
                batch.table = table;
                batch.columns = row.keys().cloned().collect();
            }
            batch.values.extend(batch.columns.iter().map(|c| row.remove(c).unwrap_or(Value::Null)));
            batch.rows += 1;
            if batch.rows == ROWS_PER_INSERT {
                batch.flush(&mut tx).await?;
            }
            n += 1;
        }
        batch.flush(&mut tx).await?;
        tx.commit().await.map_err(db)?;
        Ok(n)
    }
}

/// Rows per `INSERT`: each statement is a hand-off to sqlx's worker thread, which would
/// otherwise cost more than inserting the row.
const ROWS_PER_INSERT: usize = 100;

/// Imported rows of one table with the same columns, inserted together.
#[derive(Default)]
struct InsertBatch {
    table: String,
    columns: Vec<String>,
    values: Vec<Value>,
    rows: usize,
}

impl InsertBatch {
    /// Whether `row` can join this batch.
    fn takes(&self, table: &str, row: &Map<String, Value>) -> bool {
        self.table == table && row.len() == self.columns.len() && self.columns.iter().all(|c| row.contains_key(c))
    }

    async fn flush(&mut self, conn: &mut SqliteConnection) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let one = format!("({})", vec!["?"; self.columns.len()].join(", "));
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            self.table,
            self.columns.join(", "),
            vec![one; self.rows].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for value in self.values.drain(..) {
            q = match value {
                Value::Null => q.bind(None::<String>),
                Value::Number(n) if n.is_i64() => q.bind(n.as_i64()),
                Value::Number(n) => q.bind(n.as_f64()),
                Value::String(s) => q.bind(s),
                other => q.bind(other.to_string()),
            };
        }
        self.rows = 0;
        q.execute(&mut *conn).await.map_err(|e| Error::Internal(format!("importing into {}: {e}", self.table)))?;
        Ok(())
    }
}

/// An import never merges: the target must be empty (migrated, nothing else).
async fn refuse_unless_empty(conn: &mut SqliteConnection) -> Result<()> {
    for (table, _) in EXPORT_TABLES {
        let n: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(&mut *conn).await.map_err(db)?;
        if n > 0 {
            return Err(Error::conflict(
                "not_empty",
                format!(
                    "the target database already holds data ({n} rows in {table}): import into a new, empty database"
                ),
            ));
        }
    }
    Ok(())
}
