//! Whole databases on a server: create (optionally as a copy of another), drop, measure. Used
//! by the test harness and by `loop bench`, which gives every run a database of its own.

use loop_core::{Error, Result};
use sqlx::{Connection, PgConnection};

use super::faults::db;

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Creates database `name` through `admin_url` (a user that may create databases): empty, or
/// a copy of `template`, which must have no open connections. Returns its URL.
pub async fn create_database(admin_url: &str, name: &str, template: Option<&str>) -> Result<String> {
    let mut conn = connect(admin_url).await?;
    let sql = match template {
        Some(t) => format!("CREATE DATABASE {} TEMPLATE {}", quoted(name)?, quoted(t)?),
        None => format!("CREATE DATABASE {}", quoted(name)?),
    };
    sqlx::query(&sql).execute(&mut conn).await.map_err(|e| Error::Internal(format!("cannot create {name}: {e}")))?;
    Ok(with_database(admin_url, name))
}

/// Drops database `name` if it exists, closing its connections first.
pub async fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    let mut conn = connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quoted(name)?))
        .execute(&mut conn)
        .await
        .map_err(|e| Error::Internal(format!("cannot drop {name}: {e}")))?;
    Ok(())
}

/// The on-disk size of the database at `url`, in bytes.
pub async fn database_size(url: &str) -> Result<u64> {
    let mut conn = connect(url).await?;
    let bytes: i64 =
        sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(&mut conn).await.map_err(db)?;
    Ok(bytes as u64)
}

/// A setting of the server at `url` (`SHOW name`).
pub async fn setting(url: &str, name: &str) -> Result<String> {
    let mut conn = connect(url).await?;
    sqlx::query_scalar(&format!("SHOW {}", quoted(name)?)).fetch_one(&mut conn).await.map_err(db)
}

/// One-row transactions per second on the server at `url`: a prepared INSERT into a new
/// table, each its own transaction, over one connection, with the server's own durability
/// settings. The bench's yardstick for what the machine can commit.
pub async fn commit_rate(url: &str, commits: u32) -> Result<f64> {
    let mut conn = connect(url).await?;
    sqlx::query("CREATE TABLE commit_rate (id BIGSERIAL PRIMARY KEY, v TEXT)").execute(&mut conn).await.map_err(db)?;
    let started = std::time::Instant::now();
    for _ in 0..commits {
        sqlx::query("INSERT INTO commit_rate (v) VALUES ('x')").execute(&mut conn).await.map_err(db)?;
    }
    let rate = commits as f64 / started.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE commit_rate").execute(&mut conn).await.map_err(db)?;
    Ok(rate)
}

async fn connect(url: &str) -> Result<PgConnection> {
    PgConnection::connect(url).await.map_err(|e| Error::Internal(format!("cannot connect to PostgreSQL: {e}")))
}

/// A name as a quoted identifier; only plain names are accepted, so nothing needs escaping.
fn quoted(name: &str) -> Result<String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::invalid("name", "identifier", format!("{name:?} is not a plain database name")));
    }
    Ok(format!("\"{name}\""))
}

#[cfg(test)]
mod tests {
    use super::{quoted, with_database};

    #[test]
    fn urls_get_their_database_replaced() {
        assert_eq!(with_database("postgres://u@h:5/postgres", "x"), "postgres://u@h:5/x");
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(with_database("postgres://u:p@h/db?sslmode=require", "x"), "postgres://u:p@h/x?sslmode=require");
    }

    #[test]
    fn only_plain_names_are_quoted() {
        assert_eq!(quoted("loop_bench_1").unwrap(), "\"loop_bench_1\"");
        assert!(quoted("a\"; DROP").is_err());
        assert!(quoted("").is_err());
    }
}
