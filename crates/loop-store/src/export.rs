//! `loop export` and `loop import`: every table's rows as JSON values, so a database moves
//! between SQLite and PostgreSQL (or into a backup) with nothing lost. Each backend streams the
//! rows its own way (`sqlite/export.rs`, `postgres/export.rs`); what is exported, and what an
//! import must check, is said here.

use loop_core::{Error, Result};

use crate::db::Db;

/// The tables `loop export` writes and `loop import` reads, in an order that respects their
/// foreign keys, each with the order its rows are written in.
pub const EXPORT_TABLES: &[(&str, &str)] = &[
    ("projects", "id"),
    ("project_skill_versions", "project_id, name, version"),
    ("project_skills", "project_id, name"),
    ("goals", "id"),
    ("goal_readings", "goal_id, recorded_at, seq"),
    ("labels", "id"),
    ("issues", "number"),
    ("issue_labels", "issue_id, label_id"),
    ("issue_relations", "id"),
    ("comments", "created_at, id"),
    ("issue_events", "id"),
    ("questions", "asked_at, id"),
    ("rework", "created_at, id"),
    ("signals", "id"),
    ("webhook_deliveries", "provider, delivery_id"),
    ("prompt_templates", "id"),
    ("prompt_versions", "template_id, version"),
    ("prompt_reviews", "created_at, id"),
    ("prompt_improvements", "issue_id"),
    ("agent_sessions", "claimed_at, id"),
    ("session_records", "session_id"),
    ("hypothesis_watch", "issue_id"),
    ("hypothesis_outcomes", "issue_id"),
    ("agent_days", "day, agent, took_bucket"),
    ("api_tokens", "id"),
    ("merge_slots", "scope"),
    ("settings", "id"),
];

/// Where an export's rows go: each row with its table's name.
pub type ExportSink<'a> = dyn FnMut(&str, serde_json::Map<String, serde_json::Value>) -> Result<()> + Send + 'a;

/// Where an import's rows come from, one at a time, so a large export never sits in memory
/// whole. An `Err` (a malformed line, say) ends the import with nothing loaded.
pub type ImportRows<'a> = dyn Iterator<Item = Result<(String, serde_json::Map<String, serde_json::Value>)>> + Send + 'a;

/// The first line of an export.
pub const EXPORT_HEADER: &str = r#"{"format":"loop-export","version":1}"#;

/// Checks an imported row's table and column names against the target's own (they are put
/// into SQL), so a hand-edited file cannot inject anything.
pub fn check_import_row(
    table: &str,
    row: &serde_json::Map<String, serde_json::Value>,
    columns: &[String],
) -> Result<()> {
    if !EXPORT_TABLES.iter().any(|(t, _)| *t == table) {
        return Err(Error::invalid("table", "unknown_table", format!("{table:?} is not a table Loop exports")));
    }
    match row.keys().find(|k| !columns.contains(k)) {
        Some(k) => Err(Error::invalid("row", "unknown_column", format!("table {table} has no column {k:?}"))),
        None => Ok(()),
    }
}

/// Columns a backend keeps for itself (an ordering aid, the writing transaction), left out of
/// exports: the importing database assigns its own.
pub const LOCAL_COLUMNS: &[&str] = &["seq", "tx"];

/// An import never merges: the target must be empty (migrated, nothing else).
pub(crate) async fn refuse_unless_empty(db: &mut impl Db) -> Result<()> {
    for (table, _) in EXPORT_TABLES {
        let n = crate::DbExt::int(db, &format!("SELECT count(*) AS n FROM {table}"), &[], "n").await?;
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
