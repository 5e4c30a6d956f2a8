//! The two migration folders describe one schema: after migrating, SQLite and PostgreSQL have
//! the same tables, the same columns (same kind, same nullability) and the same indexes over
//! the same columns. The differences the databases force are listed here, each with its reason.

use std::collections::BTreeMap;

use loop_store::postgres::{PgConfig, PgStore, testing};
use loop_store::sqlite::{SqliteConfig, SqliteStore};
use sqlx::Connection;

/// Table → column → (kind, nullable); and index name → "unique table(columns) where …".
#[derive(Debug, PartialEq, Default)]
struct Schema {
    columns: BTreeMap<String, BTreeMap<String, (&'static str, bool)>>,
    indexes: BTreeMap<String, String>,
}

/// What only PostgreSQL has: the writing transaction of each event, which orders the live feed
/// there (SQLite commits one transaction at a time, so its ids are already in commit order).
const POSTGRES_ONLY_COLUMNS: &[(&str, &str)] = &[("issue_events", "tx")];
const POSTGRES_ONLY_INDEXES: &[&str] = &["issue_events_feed"];

/// The kind of a column, as both databases can agree on it.
fn kind(declared: &str) -> &'static str {
    let t = declared.to_ascii_lowercase();
    if t.contains("int") {
        "integer"
    } else if t.contains("double") || t.contains("real") || t.contains("float") || t.contains("numeric") {
        "real"
    } else if t.contains("json") {
        "json"
    } else if t.contains("bytea") || t.contains("blob") {
        "bytes"
    } else if t.contains("text") || t.contains("char") {
        "text"
    } else {
        panic!("unknown column type {declared}")
    }
}

fn sqlite_schema(path: &std::path::Path) -> Schema {
    let db = rusqlite::Connection::open(path).unwrap();
    let mut schema = Schema::default();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in tables {
        let mut columns = BTreeMap::new();
        let mut info = db.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)").unwrap();
        let rows = info
            .query_map([&table], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?, r.get::<_, i64>(3)?))
            })
            .unwrap();
        for row in rows {
            let (name, declared, not_null, pk) = row.unwrap();
            // SQLite lets a non-integer primary key be NULL unless it says otherwise; the
            // schema treats a primary key as never null, as PostgreSQL does.
            columns.insert(name, (kind(&declared), !(not_null || pk > 0)));
        }
        let mut list =
            db.prepare("SELECT name, \"unique\", partial FROM pragma_index_list(?1) WHERE origin = 'c'").unwrap();
        let found: Vec<(String, bool, bool)> = list
            .query_map([&table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (index, unique, partial) in found {
            let mut info = db.prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno").unwrap();
            let cols: Vec<String> = info.query_map([&index], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
            schema.indexes.insert(index, describe_index(&table, &cols.join(", "), unique, partial));
        }
        schema.columns.insert(table, columns);
    }
    schema
}

fn describe_index(table: &str, columns: &str, unique: bool, partial: bool) -> String {
    let unique = if unique { "unique " } else { "" };
    let partial = if partial { " where …" } else { "" };
    format!("{unique}{table}({columns}){partial}")
}

async fn postgres_schema(url: &str) -> Schema {
    let mut db = sqlx::PgConnection::connect(url).await.unwrap();
    let mut schema = Schema::default();
    let columns: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    for (table, column, declared, nullable) in columns {
        if POSTGRES_ONLY_COLUMNS.contains(&(table.as_str(), column.as_str())) {
            continue;
        }
        let declared = if declared == "xid8" { "integer".to_owned() } else { declared };
        schema.columns.entry(table).or_default().insert(column, (kind(&declared), nullable == "YES"));
    }
    // Indexes made by CREATE INDEX (not those behind primary keys and UNIQUE constraints, which
    // SQLite does not list as indexes either), with their columns in order.
    let indexes: Vec<(String, String, String, bool, bool)> = sqlx::query_as(
        "SELECT i.relname::text, t.relname::text, \
                string_agg(a.attname, ', ' ORDER BY k.ord), x.indisunique, x.indpred IS NOT NULL \
         FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE n.nspname = 'public' AND t.relname NOT LIKE '\\_sqlx%' \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) \
         GROUP BY i.relname, t.relname, x.indisunique, x.indpred",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    for (index, table, cols, unique, partial) in indexes {
        if !POSTGRES_ONLY_INDEXES.contains(&index.as_str()) {
            schema.indexes.insert(index, describe_index(&table, &cols, unique, partial));
        }
    }
    schema
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_migration_folders_make_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loop.db");
    let store =
        SqliteStore::open(SqliteConfig::new(path.to_string_lossy()), loop_store_tests::manual_clock()).await.unwrap();
    store.close().await;
    let sqlite = sqlite_schema(&path);

    let database = testing::database().await;
    let store = PgStore::open(PgConfig::new(&database.url), loop_store_tests::manual_clock()).await.unwrap();
    store.close().await;
    let postgres = postgres_schema(&database.url).await;

    assert!(sqlite.columns.len() > 10 && sqlite.indexes.len() > 10, "the schema was read: {sqlite:?}");
    let tables = |s: &Schema| s.columns.keys().cloned().collect::<Vec<_>>();
    assert_eq!(tables(&sqlite), tables(&postgres), "the same tables");
    for (table, columns) in &sqlite.columns {
        assert_eq!(Some(columns), postgres.columns.get(table), "the columns of {table}");
    }
    assert_eq!(sqlite.indexes, postgres.indexes, "the same indexes");
}
