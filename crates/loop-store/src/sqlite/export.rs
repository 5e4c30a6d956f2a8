//! `loop export` and `loop import` on SQLite: rows streamed from one read transaction, and
//! loaded in one write transaction through prepared statements.

use std::collections::HashMap;

use loop_core::{Error, Result};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value};

use super::SqliteStore;
use super::conn::finish;
use super::faults::sqlite;
use crate::export::{EXPORT_TABLES, ExportSink, ImportRows, LOCAL_COLUMNS, check_import_row, refuse_unless_empty};

impl SqliteStore {
    /// Passes every row of every exported table to `out`, in foreign-key order, from one
    /// consistent snapshot. Returns how many rows there were.
    pub async fn export(&self, out: &mut ExportSink<'_>) -> Result<u64> {
        let path = self.backend().path().to_owned();
        tokio::task::block_in_place(move || {
            let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sqlite)?;
            conn.execute_batch("BEGIN").map_err(sqlite)?;
            let mut n = 0;
            for (table, order) in EXPORT_TABLES {
                let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY {order}")).map_err(sqlite)?;
                let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
                let mut rows = stmt.query([]).map_err(sqlite)?;
                while let Some(row) = rows.next().map_err(sqlite)? {
                    let mut map = Map::new();
                    for (i, name) in names.iter().enumerate().filter(|(_, n)| !LOCAL_COLUMNS.contains(&n.as_str())) {
                        let value = match row.get::<_, SqlValue>(i).map_err(sqlite)? {
                            SqlValue::Null => Value::Null,
                            SqlValue::Integer(i) => Value::from(i),
                            SqlValue::Real(x) => Value::from(x),
                            SqlValue::Text(s) => Value::from(s),
                            SqlValue::Blob(b) => Value::from(String::from_utf8_lossy(&b).into_owned()),
                        };
                        map.insert(name.clone(), value);
                    }
                    out(table, map)?;
                    n += 1;
                }
            }
            conn.execute_batch("COMMIT").map_err(sqlite)?;
            Ok(n)
        })
    }

    /// Loads exported rows into this database, which must hold none yet, in one transaction:
    /// all of them or (on any error) none. Returns how many rows were loaded.
    pub async fn import(&self, rows: &mut ImportRows<'_>) -> Result<u64> {
        let path = self.backend().path().to_owned();
        tokio::task::block_in_place(move || {
            let mut conn = Connection::open(&path).map_err(sqlite)?;
            conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sqlite)?;
            conn.execute_batch("PRAGMA foreign_keys = ON; BEGIN IMMEDIATE").map_err(sqlite)?;
            finish(refuse_unless_empty(&mut conn))?;
            let mut columns: HashMap<String, Vec<String>> = HashMap::new();
            let mut n = 0;
            for entry in rows {
                let (table, row) = entry?;
                if !columns.contains_key(&table) {
                    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?)").map_err(sqlite)?;
                    let names = stmt.query_map([&table], |r| r.get(0)).map_err(sqlite)?;
                    columns.insert(table.clone(), names.collect::<rusqlite::Result<_>>().map_err(sqlite)?);
                }
                check_import_row(&table, &row, &columns[&table])?;
                let names: Vec<&str> = row.keys().map(String::as_str).collect();
                let sql = format!(
                    "INSERT INTO {table} ({}) VALUES ({})",
                    names.join(", "),
                    vec!["?"; names.len()].join(", ")
                );
                let mut stmt = conn.prepare_cached(&sql).map_err(sqlite)?;
                for (i, value) in row.values().enumerate() {
                    let value = match value {
                        Value::Null => SqlValue::Null,
                        Value::Number(n) if n.is_i64() => SqlValue::Integer(n.as_i64().unwrap_or_default()),
                        Value::Number(n) => SqlValue::Real(n.as_f64().unwrap_or_default()),
                        Value::String(s) => SqlValue::Text(s.clone()),
                        other => SqlValue::Text(other.to_string()),
                    };
                    stmt.raw_bind_parameter(i + 1, value).map_err(sqlite)?;
                }
                stmt.raw_execute().map_err(|e| Error::Internal(format!("importing into {table}: {e}")))?;
                n += 1;
            }
            conn.execute_batch("COMMIT").map_err(sqlite)?;
            Ok(n)
        })
    }
}
