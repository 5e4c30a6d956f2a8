//! `loop export` and `loop import` on PostgreSQL: rows streamed from one snapshot, and loaded
//! with `COPY` in one transaction.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use loop_core::{Error, Result};
use serde_json::{Map, Value};
use sqlx::{Column, PgConnection, Row, TypeInfo, ValueRef};

use super::PgStore;
use super::faults::db;
use crate::export::{EXPORT_TABLES, ExportSink, ImportRows, LOCAL_COLUMNS, check_import_row, refuse_unless_empty};

impl PgStore {
    /// Passes every row of every exported table to `out`, in foreign-key order, from one
    /// consistent snapshot. Returns how many rows there were.
    pub async fn export(&self, out: &mut ExportSink<'_>) -> Result<u64> {
        let mut tx = self.backend().pool.begin().await.map_err(db)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let mut n = 0;
        for (table, order) in EXPORT_TABLES {
            let sql = format!("SELECT * FROM {table} ORDER BY {order}");
            let mut rows = sqlx::query(&sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await.map_err(db)? {
                let mut map = Map::new();
                for (i, col) in row.columns().iter().enumerate() {
                    if LOCAL_COLUMNS.contains(&col.name()) {
                        continue;
                    }
                    let raw = row.try_get_raw(i).map_err(db)?;
                    let value = if raw.is_null() {
                        Value::Null
                    } else {
                        match raw.type_info().name() {
                            "INT8" => Value::from(row.try_get::<i64, _>(i).map_err(db)?),
                            "FLOAT8" => Value::from(row.try_get::<f64, _>(i).map_err(db)?),
                            _ => Value::from(row.try_get::<String, _>(i).map_err(db)?),
                        }
                    };
                    map.insert(col.name().to_owned(), value);
                }
                out(table, map)?;
                n += 1;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(n)
    }

    /// Loads exported rows into this database, which must hold none yet, in one transaction:
    /// all of them or (on any error) none. Returns how many rows were loaded.
    pub async fn import(&self, rows: &mut ImportRows<'_>) -> Result<u64> {
        let mut tx = self.backend().pool.begin().await.map_err(db)?;
        // Nodes importing at once would both find the database empty.
        sqlx::query("LOCK TABLE issues IN EXCLUSIVE MODE").execute(&mut *tx).await.map_err(db)?;
        refuse_unless_empty(&mut *tx).await?;
        let mut types: HashMap<String, HashMap<String, String>> = HashMap::new();
        let mut batch = CopyBatch::default();
        let mut n = 0;
        for entry in rows {
            let (table, row) = entry?;
            if !types.contains_key(&table) {
                batch.flush(&mut tx).await?;
                let cols: Vec<(String, String)> = sqlx::query_as(
                    "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1",
                )
                .bind(&table)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                types.insert(table.clone(), cols.into_iter().collect());
            }
            let columns = &types[&table];
            check_import_row(&table, &row, &columns.keys().cloned().collect::<Vec<_>>())?;
            if !batch.takes(&table, &row) {
                batch.flush(&mut tx).await?;
                batch.start(&table, &row);
            }
            batch.add(&table, &row, columns)?;
            if batch.data.len() >= COPY_CHUNK {
                batch.flush(&mut tx).await?;
            }
            n += 1;
        }
        batch.flush(&mut tx).await?;
        // New issues and events continue after the imported ones.
        sqlx::raw_sql(
            "SELECT setval('issue_numbers', max(number)) FROM issues HAVING count(*) > 0; \
             SELECT setval('issue_event_ids', max(id)) FROM issue_events HAVING count(*) > 0",
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        // Fresh statistics, so the planner does not plan for the empty tables it saw before.
        sqlx::query("ANALYZE").execute(&self.backend().pool).await.map_err(db)?;
        Ok(n)
    }
}

/// Bytes of rows sent per `COPY`.
const COPY_CHUNK: usize = 1 << 20;

/// Imported rows of one table with the same columns, in `COPY`'s text format: a round trip
/// per megabyte instead of one per row.
#[derive(Default)]
struct CopyBatch {
    table: String,
    columns: Vec<String>,
    data: Vec<u8>,
}

impl CopyBatch {
    /// Whether `row` can join this batch.
    fn takes(&self, table: &str, row: &Map<String, Value>) -> bool {
        self.table == table && row.len() == self.columns.len() && self.columns.iter().all(|c| row.contains_key(c))
    }

    fn start(&mut self, table: &str, row: &Map<String, Value>) {
        self.table = table.to_owned();
        self.columns = row.keys().cloned().collect();
    }

    /// Appends `row`, each value checked against its column's type.
    fn add(&mut self, table: &str, row: &Map<String, Value>, types: &HashMap<String, String>) -> Result<()> {
        for (i, name) in self.columns.iter().enumerate() {
            if i > 0 {
                self.data.push(b'\t');
            }
            let value = &row[name];
            let bad = || Error::invalid(name.as_str(), "wrong_type", format!("{table}.{name} cannot hold {value}"));
            let text = match (types[name].as_str(), value) {
                (_, Value::Null) => {
                    self.data.extend_from_slice(b"\\N");
                    continue;
                }
                ("bigint", v) => v.as_i64().ok_or_else(bad)?.to_string(),
                ("double precision", v) => v.as_f64().ok_or_else(bad)?.to_string(),
                (_, Value::String(s)) => s.clone(),
                (_, other) => other.to_string(),
            };
            for b in text.bytes() {
                match b {
                    b'\\' => self.data.extend_from_slice(b"\\\\"),
                    b'\t' => self.data.extend_from_slice(b"\\t"),
                    b'\n' => self.data.extend_from_slice(b"\\n"),
                    b'\r' => self.data.extend_from_slice(b"\\r"),
                    b => self.data.push(b),
                }
            }
        }
        self.data.push(b'\n');
        Ok(())
    }

    /// Sends the rows gathered so far.
    async fn flush(&mut self, conn: &mut PgConnection) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let table = &self.table;
        let failed = |e: sqlx::Error| Error::Internal(format!("importing into {table}: {e}"));
        let mut copy = conn
            .copy_in_raw(&format!("COPY {table} ({}) FROM STDIN", self.columns.join(", ")))
            .await
            .map_err(failed)?;
        let sent = copy.send(std::mem::take(&mut self.data)).await.map(|_| ());
        match sent {
            Ok(()) => copy.finish().await.map(|_| ()).map_err(failed),
            Err(e) => {
                let _ = copy.abort("import failed").await;
                Err(failed(e))
            }
        }
    }
}
