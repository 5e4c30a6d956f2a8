//! The small SQL helpers every resource file shares, and the row mappers (from `loop-store-rows`).

use loop_core::event::NewEvent;
use loop_core::issue::Issue;
use loop_core::{Actor, Error, Result, Timestamp};
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;

use crate::db;

pub(crate) use loop_store_rows::{
    ISSUE_COLUMNS, comment, event, get, goal, issue, label, project, relation, review, session, template, to_json,
    version,
};

/// Appends history events inside the caller's transaction.
pub(crate) async fn record(
    conn: &mut SqliteConnection,
    events: &[NewEvent],
    actor: &Actor,
    now: Timestamp,
) -> Result<()> {
    for e in events {
        sqlx::query("INSERT INTO issue_events (issue_id, kind, actor, data, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&e.issue_id)
            .bind(e.kind.as_str())
            .bind(&actor.name)
            .bind(e.data.to_string())
            .bind(now.millis())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// Looks up a live issue by id, or by number when `key` is all digits.
pub(crate) async fn find_issue(conn: &mut SqliteConnection, key: &str) -> Result<Option<Issue>> {
    let sql = if is_number(key) {
        format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE number = ? AND deleted_at IS NULL")
    } else {
        format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = ? AND deleted_at IS NULL")
    };
    let row = sqlx::query(&sql).bind(key).fetch_optional(&mut *conn).await.map_err(db)?;
    row.as_ref().map(issue).transpose()
}

pub(crate) async fn require_issue(conn: &mut SqliteConnection, key: &str) -> Result<Issue> {
    find_issue(conn, key).await?.ok_or_else(|| Error::not_found("Issue", key))
}

pub(crate) fn is_number(key: &str) -> bool {
    !key.is_empty() && key.len() <= 18 && key.bytes().all(|b| b.is_ascii_digit())
}

/// True when a live row with this id exists in `table`.
pub(crate) async fn live(conn: &mut SqliteConnection, table: &str, id: &str) -> Result<bool> {
    let sql = format!("SELECT 1 FROM {table} WHERE id = ? AND deleted_at IS NULL");
    Ok(sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?.is_some())
}

/// The row `sql` (with one `?` bound to `bind`) returns, if any, mapped by `map`.
pub(crate) async fn one<T>(
    conn: &mut SqliteConnection,
    sql: &str,
    bind: &str,
    map: fn(&SqliteRow) -> Result<T>,
) -> Result<Option<T>> {
    sqlx::query(sql).bind(bind).fetch_optional(&mut *conn).await.map_err(db)?.as_ref().map(map).transpose()
}

/// One page of `SELECT {columns} {from} ORDER BY {order}` with the count of every matching row;
/// `from` is the `FROM … WHERE …` part, with `?` placeholders for `binds`.
pub(crate) async fn page_of<T>(
    conn: &mut SqliteConnection,
    columns: &str,
    from: &str,
    order: &str,
    binds: &[&str],
    page: loop_core::Page,
    map: fn(&SqliteRow) -> Result<T>,
) -> Result<loop_core::Paged<T>> {
    let total = count(conn, from, binds).await?;
    let data = rows_of(conn, columns, from, order, binds, page, map).await?;
    Ok(loop_core::Paged { data, total })
}

/// `SELECT count(*) {from}`.
pub(crate) async fn count(conn: &mut SqliteConnection, from: &str, binds: &[&str]) -> Result<u64> {
    let count_sql = format!("SELECT count(*) {from}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
    for b in binds {
        count = count.bind(*b);
    }
    Ok(count.fetch_one(&mut *conn).await.map_err(db)? as u64)
}

/// One page of `SELECT {columns} {from} ORDER BY {order}`.
pub(crate) async fn rows_of<T>(
    conn: &mut SqliteConnection,
    columns: &str,
    from: &str,
    order: &str,
    binds: &[&str],
    page: loop_core::Page,
    map: fn(&SqliteRow) -> Result<T>,
) -> Result<Vec<T>> {
    let sql = format!("SELECT {columns} {from} ORDER BY {order} LIMIT ? OFFSET ?");
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = q.bind(*b);
    }
    let rows = q.bind(page.limit as i64).bind(page.offset as i64).fetch_all(&mut *conn).await.map_err(db)?;
    rows.iter().map(map).collect()
}

/// Checks that a referenced row is live; otherwise a 422 naming the field.
pub(crate) async fn check_ref(
    conn: &mut SqliteConnection,
    table: &str,
    field: &str,
    code: &'static str,
    id: &str,
) -> Result<()> {
    if live(conn, table, id).await? {
        Ok(())
    } else {
        let what = table.trim_end_matches('s');
        Err(Error::invalid(field, code, format!("{what} {id} not found")))
    }
}
