//! `loop export` and `loop import`: every table's rows as JSON values, so a database moves
//! between SQLite and PostgreSQL (or into a backup) with nothing lost.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use loop_core::{Error, Result};
use loop_store_rows::{EXPORT_TABLES, ExportSink, ImportRows, check_import_row};
use serde_json::{Map, Value};
use sqlx::{Column, PgConnection, Row, TypeInfo, ValueRef};

use crate::sql::placeholders;
use crate::{PgStore, db};

/// Columns that exist only here (an ordering aid), left out of exports.
const LOCAL_COLUMNS: &[&str] = &["seq"];

impl PgStore {
    /// Passes every row of every exported table to `out`, in foreign-key order, from one
    /// consistent snapshot. Returns how many rows there were.
    pub async fn export(&self, out: &mut ExportSink<'_>) -> Result<u64> {
        let mut tx = self.pool.begin().await.map_err(db)?;
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
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Nodes importing at once would both find the database empty.
        sqlx::query("LOCK TABLE issues IN EXCLUSIVE MODE").execute(&mut *tx).await.map_err(db)?;
        refuse_unless_empty(&mut tx).await?;
        let mut types: HashMap<String, HashMap<String, String>> = HashMap::new();
        let mut n = 0;
        for entry in rows {
            let (table, row) = entry?;
            let (table, row) = (&table, &row);
            if !types.contains_key(table) {
                let cols: Vec<(String, String)> = sqlx::query_as(
                    "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1",
                )
                .bind(table)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                types.insert(table.clone(), cols.into_iter().collect());
            }
            let columns = &types[table];
            check_import_row(table, row, &columns.keys().cloned().collect::<Vec<_>>())?;
            let names: Vec<&String> = row.keys().collect();
            let sql = placeholders(&format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
                vec!["?"; names.len()].join(", ")
            ));
            let mut q = sqlx::query(&sql);
            for (name, value) in row {
                let bad = || Error::invalid(name.as_str(), "wrong_type", format!("{table}.{name} cannot hold {value}"));
                q = match (columns[name].as_str(), value) {
                    ("bigint", Value::Null) => q.bind(None::<i64>),
                    ("bigint", v) => q.bind(v.as_i64().ok_or_else(bad)?),
                    ("double precision", Value::Null) => q.bind(None::<f64>),
                    ("double precision", v) => q.bind(v.as_f64().ok_or_else(bad)?),
                    (_, Value::Null) => q.bind(None::<String>),
                    (_, Value::String(s)) => q.bind(s.clone()),
                    (_, other) => q.bind(other.to_string()),
                };
            }
            q.execute(&mut *tx).await.map_err(|e| Error::Internal(format!("importing into {table}: {e}")))?;
            n += 1;
        }
        // New issues and events continue after the imported ones.
        sqlx::query(
            "UPDATE counters SET value = CASE name \
             WHEN 'issue_number' THEN (SELECT coalesce(max(number), 0) FROM issues) \
             WHEN 'event' THEN (SELECT coalesce(max(id), 0) FROM issue_events) END",
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        // Fresh statistics, so the planner does not plan for the empty tables it saw before.
        sqlx::query("ANALYZE").execute(&self.pool).await.map_err(db)?;
        Ok(n)
    }
}

/// An import never merges: the target must be empty (migrated, nothing else).
async fn refuse_unless_empty(conn: &mut PgConnection) -> Result<()> {
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
