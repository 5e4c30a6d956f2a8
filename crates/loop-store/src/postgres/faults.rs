//! What a PostgreSQL error means for the caller.

use loop_core::Error;

/// Maps a database error to the domain's: busy when PostgreSQL aborted the transaction to
/// resolve a deadlock or a serialization conflict, or no connection came free (a retry may
/// succeed); storage faults for a full disk or a lost server; a conflict for a unique index.
pub(crate) fn db(e: sqlx::Error) -> Error {
    let message = format!("database: {e}");
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::conflict(crate::db::UNIQUE, message),
        sqlx::Error::Database(d) => match d.code().as_deref() {
            // A deadlock or serialization failure PostgreSQL broke: nothing was written.
            Some("40001" | "40P01") => Error::Busy(message),
            // Insufficient resources: the disk (53100), memory, or connections.
            Some("53100") => Error::StorageFull(message),
            Some(c) if c.starts_with("53") => Error::Unavailable(message),
            // The server is shutting down or restarting, or the connection broke.
            Some(c) if c.starts_with("08") || c.starts_with("57P") => Error::Unavailable(message),
            _ => Error::Internal(message),
        },
        sqlx::Error::PoolTimedOut => Error::Busy(message),
        // The connection is gone (a restart, a network fault): whatever was in flight did not
        // commit, or its outcome is unknown; either way it is not acknowledged.
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::PoolClosed => {
            Error::Unavailable(message)
        }
        _ => Error::Internal(message),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::{Connection, PgConnection};

    use super::*;
    use crate::postgres::testing;

    /// Two transactions that lock two rows in opposite orders: PostgreSQL aborts one of them,
    /// and the store reports that as `Busy` (503, retry), not as an internal failure.
    #[tokio::test]
    async fn a_deadlock_is_busy_not_internal() {
        let database = testing::database().await;
        let mut setup = PgConnection::connect(&database.url).await.unwrap();
        sqlx::raw_sql("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
            .execute(&mut setup)
            .await
            .unwrap();
        let lock_both = |first: i32, second: i32| {
            let url = database.url.clone();
            async move {
                let mut conn = PgConnection::connect(&url).await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                let lock = "SELECT 1 FROM t WHERE id = $1 FOR UPDATE";
                sqlx::query(lock).bind(first).execute(&mut *tx).await.unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                sqlx::query(lock).bind(second).execute(&mut *tx).await.map_err(db)
            }
        };
        let (a, b) = tokio::join!(lock_both(1, 2), lock_both(2, 1));
        let failed: Vec<Error> = [a, b].into_iter().filter_map(|r| r.err()).collect();
        assert_eq!(failed.len(), 1, "exactly one transaction is aborted: {failed:?}");
        assert!(matches!(&failed[0], Error::Busy(m) if m.contains("deadlock")), "{:?}", failed[0]);
    }
}
