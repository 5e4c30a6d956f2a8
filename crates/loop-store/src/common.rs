//! The small queries every resource shares: finding a live issue, checking a reference,
//! appending history, reading a page.

use loop_core::event::NewEvent;
use loop_core::issue::Issue;
use loop_core::{Actor, Error, Page, Paged, Result, Timestamp};

use crate::args;
use crate::db::{Arg, Db, DbExt, Value, Write};
use crate::rows::{self, ISSUE_COLUMNS};

/// A key that names an issue by number rather than id.
pub(crate) fn is_number(key: &str) -> bool {
    !key.is_empty() && key.len() <= 18 && key.bytes().all(|b| b.is_ascii_digit())
}

/// A live issue by id, or by number when `key` is all digits; `lock` (`""`, `"FOR SHARE"`,
/// `"FOR NO KEY UPDATE"`) holds its row until the transaction ends on PostgreSQL.
pub(crate) async fn find_issue_locked(db: &mut impl Db, key: &str, lock: &str) -> Result<Option<Issue>> {
    if is_number(key) {
        let sql = format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE number = ? AND deleted_at IS NULL {lock}");
        let number: i64 = key.parse().map_err(Error::internal)?;
        db.first(&sql, &args![number], rows::issue).await
    } else {
        let sql = format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = ? AND deleted_at IS NULL {lock}");
        db.first(&sql, &args![key], rows::issue).await
    }
}

/// A live issue by id, or by number when `key` is all digits.
pub(crate) async fn find_issue(db: &mut impl Db, key: &str) -> Result<Option<Issue>> {
    find_issue_locked(db, key, "").await
}

pub(crate) async fn require_issue(db: &mut impl Db, key: &str) -> Result<Issue> {
    find_issue(db, key).await?.ok_or_else(|| Error::not_found("Issue", key))
}

/// True when a live row of `table` has this id; `lock` as for [`find_issue_locked`].
pub(crate) async fn live(db: &mut impl Db, table: &str, id: &str, lock: &str) -> Result<bool> {
    let sql = format!("SELECT 1 AS hit FROM {table} WHERE id = ? AND deleted_at IS NULL {lock}");
    Ok(db.one(&sql, &args![id]).await?.is_some())
}

/// A reference (`projectId`, `goalId`…) that must name a live row: a 422 naming the field
/// otherwise. On PostgreSQL the row is share-locked until commit, so it cannot be deleted
/// before what links to it commits.
pub(crate) async fn check_ref(db: &mut impl Db, table: &str, field: &str, code: &'static str, id: &str) -> Result<()> {
    if live(db, table, id, "FOR SHARE").await? { Ok(()) } else { Err(ref_not_found(table, field, code, id)) }
}

/// The error for a reference to a row that is not there.
pub(crate) fn ref_not_found(table: &str, field: &str, code: &'static str, id: &str) -> Error {
    let what = table.trim_end_matches('s');
    Error::invalid(field, code, format!("{what} {id} not found"))
}

/// Appends history events, in one statement, inside the caller's transaction.
pub(crate) async fn record(db: &mut impl Db, events: &[NewEvent], actor: &Actor, now: Timestamp) -> Result<()> {
    match events_insert(events, actor, now) {
        Some(write) => db.run_writes(&[write]).await,
        None => Ok(()),
    }
}

/// The statement that appends `events`, for a batch of writes (`None` for no events).
pub(crate) fn events_insert(events: &[NewEvent], actor: &Actor, now: Timestamp) -> Option<Write> {
    if events.is_empty() {
        return None;
    }
    let rows = vec!["(?, ?, ?, ?, ?)"; events.len()].join(", ");
    let values = events
        .iter()
        .flat_map(|e| {
            [
                Value::Text(e.issue_id.clone()),
                Value::Text(e.kind.as_str().into()),
                Value::Text(actor.name.clone()),
                Value::Text(e.data.to_string()),
                Value::Int(now.millis()),
            ]
        })
        .collect();
    let sql = format!("INSERT INTO issue_events (issue_id, kind, actor, data, created_at) VALUES {rows}");
    Some(Write { sql: sql.into(), values })
}

/// One page of `SELECT {columns} {from} ORDER BY {order}` with the count of every matching row;
/// `from` is the `FROM … WHERE …` part, with `?` placeholders for `binds`.
pub(crate) async fn page_of<D: Db, T: Send>(
    db: &mut D,
    columns: &str,
    from: &str,
    order: &str,
    binds: &[Arg<'_>],
    page: Page,
    map: fn(&D::Row) -> Result<T>,
) -> Result<Paged<T>> {
    let total = count(db, from, binds).await?;
    let data = rows_of(db, columns, from, order, binds, page, map).await?;
    Ok(Paged { data, total })
}

/// `SELECT count(*) {from}`.
pub(crate) async fn count(db: &mut impl Db, from: &str, binds: &[Arg<'_>]) -> Result<u64> {
    Ok(db.int(&format!("SELECT count(*) AS n {from}"), binds, "n").await? as u64)
}

/// One page of `SELECT {columns} {from} ORDER BY {order}`.
pub(crate) async fn rows_of<D: Db, T: Send>(
    db: &mut D,
    columns: &str,
    from: &str,
    order: &str,
    binds: &[Arg<'_>],
    page: Page,
    map: fn(&D::Row) -> Result<T>,
) -> Result<Vec<T>> {
    let sql = format!("SELECT {columns} {from} ORDER BY {order} LIMIT ? OFFSET ?");
    let mut args = binds.to_vec();
    args.extend(args![page.limit as i64, page.offset as i64]);
    db.each(&sql, &args, map).await
}
