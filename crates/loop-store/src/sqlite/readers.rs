//! The read-only connections reads run on: each read is one hand-off to a blocking thread,
//! where it runs to the end on a connection of its own (WAL lets it read while the writer
//! writes). At most `max` read at once; idle connections are kept for the next read.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use loop_core::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::conn::finish;
use super::faults::{discards_connection, sqlite};
use crate::Work;

pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    turns: Semaphore,
}

impl Readers {
    pub(crate) fn new(path: &Path, max: usize) -> Self {
        Self { path: path.to_owned(), idle: Mutex::new(Vec::new()), turns: Semaphore::new(max) }
    }

    /// Runs `work` on a read-only connection; with `snapshot`, inside one read transaction, so
    /// that all its queries see the same state of the database.
    pub(crate) async fn run<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        work: Work<Connection, T>,
        snapshot: bool,
    ) -> Result<T> {
        let turn = self.turns.acquire().await.map_err(|_| Error::Unavailable("the database is closed".into()))?;
        let readers = self.clone();
        let out = tokio::task::spawn_blocking(move || {
            let mut conn = readers.take()?;
            let out = match snapshot {
                true => conn.execute_batch("BEGIN").map_err(sqlite).and_then(|()| {
                    let out = finish(work(&mut conn));
                    conn.execute_batch("COMMIT").map_err(sqlite)?;
                    out
                }),
                false => finish(work(&mut conn)),
            };
            // A connection that saw a storage fault is closed rather than kept.
            if !matches!(&out, Err(e) if discards_connection(e)) {
                readers.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
            }
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("a read panicked: {e}")))?;
        drop(turn);
        out
    }

    fn take(&self) -> Result<Connection> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        let conn =
            Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(sqlite)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(sqlite)?;
        conn.execute_batch("PRAGMA cache_size = -16000;").map_err(sqlite)?;
        conn.set_prepared_statement_cache_capacity(128);
        Ok(conn)
    }

    /// No further reads start; idle connections are closed.
    pub(crate) fn close(&self) {
        self.turns.close();
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
