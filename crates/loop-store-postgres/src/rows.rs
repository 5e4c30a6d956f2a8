//! The small SQL helpers every resource file shares, and the row mappers (from `loop-store-rows`).

use loop_core::event::NewEvent;
use loop_core::issue::Issue;
use loop_core::{Actor, Error, Result, Timestamp};
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use crate::db;
use crate::sql::{pg, placeholders};

pub(crate) use loop_store_rows::{
    ISSUE_COLUMNS, comment, event, get, goal, issue, label, project, relation, review, session, template, to_json,
    version,
};

/// A bound value of a dynamically built query (PostgreSQL is strict about parameter types).
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// Takes the next `n` values of a counter (`issue_number` or `event`); returns the last. The
/// counter's row stays locked until the transaction ends, so values are handed out, and become
/// visible, in order: a reader that has seen event n has seen every event before it.
pub(crate) async fn next_values(conn: &mut PgConnection, counter: &str, n: i64) -> Result<i64> {
    sqlx::query_scalar(pg("UPDATE counters SET value = value + ? WHERE name = ? RETURNING value"))
        .bind(n)
        .bind(counter)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)
}

/// Appends history events inside the caller's transaction, in one statement that takes their
/// ids from the event counter (see [`next_values`]). One round trip matters: the counter stays
/// locked from here until commit, and every write in the database waits for it.
pub(crate) async fn record(conn: &mut PgConnection, events: &[NewEvent], actor: &Actor, now: Timestamp) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH taken AS (UPDATE counters SET value = value + $1 WHERE name = 'event' RETURNING value) \
         INSERT INTO issue_events (id, issue_id, kind, actor, data, created_at) \
         SELECT taken.value - $1 + e.n, e.issue_id, e.kind, $5, e.data, $6 \
         FROM taken, unnest($2::TEXT[], $3::TEXT[], $4::TEXT[]) WITH ORDINALITY AS e(issue_id, kind, data, n)",
    )
    .bind(events.len() as i64)
    .bind(events.iter().map(|e| e.issue_id.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.data.to_string()).collect::<Vec<_>>())
    .bind(&actor.name)
    .bind(now.millis())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Looks up a live issue by id, or by number when `key` is all digits.
pub(crate) async fn find_issue(conn: &mut PgConnection, key: &str) -> Result<Option<Issue>> {
    let row = if is_number(key) {
        let sql = placeholders(&format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE number = ? AND deleted_at IS NULL"));
        let number: i64 = key.parse().map_err(Error::internal)?;
        sqlx::query(&sql).bind(number).fetch_optional(&mut *conn).await.map_err(db)?
    } else {
        let sql = placeholders(&format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = ? AND deleted_at IS NULL"));
        sqlx::query(&sql).bind(key).fetch_optional(&mut *conn).await.map_err(db)?
    };
    row.as_ref().map(issue).transpose()
}

pub(crate) async fn require_issue(conn: &mut PgConnection, key: &str) -> Result<Issue> {
    find_issue(conn, key).await?.ok_or_else(|| Error::not_found("Issue", key))
}

pub(crate) fn is_number(key: &str) -> bool {
    !key.is_empty() && key.len() <= 18 && key.bytes().all(|b| b.is_ascii_digit())
}

/// True when a live row with this id exists in `table`.
pub(crate) async fn live(conn: &mut PgConnection, table: &str, id: &str) -> Result<bool> {
    let sql = placeholders(&format!("SELECT 1 FROM {table} WHERE id = ? AND deleted_at IS NULL"));
    Ok(sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?.is_some())
}

/// The row `sql` (with one `?` bound to `bind`) returns, if any, mapped by `map`.
pub(crate) async fn one<T>(
    conn: &mut PgConnection,
    sql: &str,
    bind: &str,
    map: fn(&PgRow) -> Result<T>,
) -> Result<Option<T>> {
    let sql = placeholders(sql);
    sqlx::query(&sql).bind(bind).fetch_optional(&mut *conn).await.map_err(db)?.as_ref().map(map).transpose()
}

/// One page of `SELECT {columns} {from} ORDER BY {order}` with the count of every matching row;
/// `from` is the `FROM … WHERE …` part, with `?` placeholders for `binds`.
pub(crate) async fn page_of<T>(
    conn: &mut PgConnection,
    columns: &str,
    from: &str,
    order: &str,
    binds: &[Bind],
    page: loop_core::Page,
    map: fn(&PgRow) -> Result<T>,
) -> Result<loop_core::Paged<T>> {
    let total = count(conn, from, binds).await?;
    let data = rows_of(conn, columns, from, order, binds, page, map).await?;
    Ok(loop_core::Paged { data, total })
}

/// `SELECT count(*) {from}`.
pub(crate) async fn count(conn: &mut PgConnection, from: &str, binds: &[Bind]) -> Result<u64> {
    let sql = placeholders(&format!("SELECT count(*) {from}"));
    let mut q = sqlx::query_scalar::<_, i64>(&sql);
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
        };
    }
    Ok(q.fetch_one(&mut *conn).await.map_err(db)? as u64)
}

/// One page of `SELECT {columns} {from} ORDER BY {order}`.
pub(crate) async fn rows_of<T>(
    conn: &mut PgConnection,
    columns: &str,
    from: &str,
    order: &str,
    binds: &[Bind],
    page: loop_core::Page,
    map: fn(&PgRow) -> Result<T>,
) -> Result<Vec<T>> {
    let sql = placeholders(&format!("SELECT {columns} {from} ORDER BY {order} LIMIT ? OFFSET ?"));
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
        };
    }
    let rows = q.bind(page.limit as i64).bind(page.offset as i64).fetch_all(&mut *conn).await.map_err(db)?;
    rows.iter().map(map).collect()
}

/// Checks that a referenced row is live; otherwise a 422 naming the field.
pub(crate) async fn check_ref(
    conn: &mut PgConnection,
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
