//! The writer: one thread with its own connection that runs every write (with prepared
//! statements), committing whatever writes arrived together in one transaction.
//!
//! Why one thread: a write is a dozen statements or more, and a thread hand-off per statement
//! (as sqlx's SQLite driver makes) bounded claims to under a thousand per second. Here a write
//! costs one hand-off, and a busy queue shares one commit (and its fsync).
//!
//! A write is acknowledged only once committed. After a failed COMMIT or ROLLBACK, or any
//! storage fault, the connection is replaced before the next write: SQLite may have rolled the
//! transaction back itself, and a connection whose state is unknown must not write again. WAL
//! checkpoints, which end in an fsync, run on a thread of their own instead of inside whichever
//! commit fills the log.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use loop_core::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::conn::finish;
use super::faults::{discards_connection, sqlite};
use crate::Work;

/// The turn to write: the checkpointer takes it for the moment it copies the last of the log.
type Gate = std::sync::Arc<Mutex<()>>;

/// The most jobs one transaction commits. Bounds how long sqlx writes wait for the engine.
const MAX_BATCH: usize = 64;
/// How often the log is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// Log frames (pages) beyond which a busy log is started over: 64 MiB of 4 KiB pages, which
/// bounds the log file under continuous writes. Each start-over holds writers for a final copy
/// and two fsyncs (10–30 ms here); at a few thousand frames a second that is every few seconds.
const RESTART_LOG_AFTER: i64 = 16_384;
/// The catch-up stops once a copy took in no more than this many new frames; what is left is
/// copied while writers wait for the log to start over.
const LAST_COPY_IN_TURN: i64 = 512;

/// How a job's run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    Done,
    Failed,
    /// Failed with a storage fault: the connection is not to be trusted any more.
    Fault,
}

/// Work queued for the engine, with the caller waiting for its result.
trait Job: Send {
    /// Runs the work inside the batch's transaction. May run again if another job's failure
    /// rolled its transaction back.
    fn run(&mut self, conn: &mut Connection) -> Ran;
    /// Answers the caller: the work's own error, else `error` when its transaction did not
    /// commit, else its result.
    fn finish(self: Box<Self>, error: Option<&Error>);
}

struct Pending<T> {
    work: Work<Connection, T>,
    out: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T: Send> Job for Pending<T> {
    fn run(&mut self, conn: &mut Connection) -> Ran {
        let out = finish((self.work)(conn));
        let ran = match &out {
            Ok(_) => Ran::Done,
            Err(e) if discards_connection(e) => Ran::Fault,
            Err(_) => Ran::Failed,
        };
        self.out = Some(out);
        ran
    }

    fn finish(self: Box<Self>, error: Option<&Error>) {
        let out = match (self.out, error) {
            (Some(Err(e)), _) => Err(e),
            (_, Some(e)) => Err(e.clone()),
            (Some(ok), None) => ok,
            (None, None) => Err(closed()),
        };
        let _ = self.reply.send(out);
    }
}

pub(crate) struct Engine {
    jobs: Mutex<Option<Sender<Box<dyn Job>>>>,
    /// Dropped to stop the checkpointer.
    checkpoints: Mutex<Option<Sender<()>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Engine {
    /// Opens the writer's and the checkpointer's connections to `path` and starts their
    /// threads.
    pub(crate) fn start(path: &Path, max_pages: Option<u64>) -> Result<Self> {
        let gate = Gate::default();
        let conn = open(path, max_pages)?;
        let checkpointer = open(path, None)?;
        let path = path.to_owned();
        let (jobs, queue) = channel();
        let (checkpoints, stop) = channel();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.into()).spawn(f).map_err(Error::internal)
        };
        let threads = vec![
            spawn(
                "loop-writer",
                Box::new({
                    let gate = gate.clone();
                    move || run(&path, max_pages, conn, queue, gate)
                }),
            )?,
            spawn("loop-checkpoint", Box::new(move || checkpoint(checkpointer, stop, gate)))?,
        ];
        Ok(Self {
            jobs: Mutex::new(Some(jobs)),
            checkpoints: Mutex::new(Some(checkpoints)),
            threads: Mutex::new(threads),
        })
    }

    /// Runs `work` in a write transaction and returns its result once it is committed. A
    /// failed `work` leaves no writes behind and costs the other jobs nothing (they run again
    /// if it failed after writing).
    pub(crate) async fn run<T: Send + 'static>(&self, work: Work<Connection, T>) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Pending { work, out: None, reply });
        let sent = match self.jobs.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if !sent {
            return Err(closed());
        }
        rx.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Lets queued jobs finish, then stops the threads and closes their connections.
    pub(crate) async fn stop(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.checkpoints.lock().unwrap_or_else(|e| e.into_inner()).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
    }
}

/// A connection to `path` set up as every Loop connection is; `max_pages` caps the file.
pub(crate) fn open(path: &Path, max_pages: Option<u64>) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        // A file that cannot be opened (again, after a fault) is a 503 to retry, like any I/O error.
        .map_err(|e| super::faults::sqlite_doing(&format!("cannot open SQLite database {}", path.display()), e))?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(sqlite)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -16000; PRAGMA wal_autocheckpoint = 0;",
    )
    .map_err(sqlite)?;
    if let Some(pages) = max_pages {
        conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(())).map_err(sqlite)?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Copies the log into the database file in the background, beside the writers. Once the log
/// is long, the copy catches up until little is left, and that little is copied in a writer's
/// turn: the log is then complete in the file, and the next write starts it over instead of
/// growing it further. When writes stop, the log file is emptied.
fn checkpoint(conn: Connection, stop: Receiver<()>, gate: Gate) {
    // Frames in the log after a copy, or `None` if the copy failed. A failure is logged once,
    // not every 250 ms while the disk stays full.
    let failing = std::cell::Cell::new(false);
    let copy = |mode: &str| match conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get::<_, i64>(1))
    {
        Ok(frames) => {
            if failing.replace(false) {
                tracing::info!("WAL checkpoints succeed again");
            }
            Some(frames)
        }
        Err(e) => {
            if !failing.replace(true) {
                tracing::warn!(error = %e, "WAL checkpoint failed; retrying until it succeeds");
            }
            None
        }
    };
    let mut before = 0;
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let Some(mut log) = copy("PASSIVE") else { continue };
        if log > 0 && log == before {
            // Nothing written since the last look.
            let _turn = gate.lock().unwrap_or_else(|e| e.into_inner());
            before = copy("TRUNCATE").unwrap_or(log);
            continue;
        }
        before = log;
        if log <= RESTART_LOG_AFTER {
            continue;
        }
        // Each copy takes in what was written during the one before, which shrinks.
        for _ in 0..8 {
            let Some(now) = copy("PASSIVE") else { break };
            let written = now - log;
            log = now;
            if written <= LAST_COPY_IN_TURN {
                break;
            }
        }
        let _turn = gate.lock().unwrap_or_else(|e| e.into_inner());
        copy("PASSIVE");
    }
}

/// The store is shutting down: a request still arriving is told to retry (elsewhere).
fn closed() -> Error {
    Error::Unavailable("the database is closed".into())
}

fn run(path: &Path, max_pages: Option<u64>, conn: Connection, jobs: Receiver<Box<dyn Job>>, gate: Gate) {
    let mut conn = Some(conn);
    let mut queue = VecDeque::new();
    loop {
        if queue.is_empty() {
            match jobs.recv() {
                Ok(job) => queue.push_back(job),
                Err(_) => return,
            }
        }
        while queue.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => queue.push_back(job),
                Err(_) => break,
            }
        }
        let _turn = gate.lock().unwrap_or_else(|e| e.into_inner());
        // A connection that a fault left behind is replaced before it writes again.
        if conn.is_none() {
            match open(path, max_pages) {
                Ok(fresh) => conn = Some(fresh),
                Err(e) => {
                    queue.drain(..).for_each(|job| job.finish(Some(&e)));
                    continue;
                }
            }
        }
        let Some(db) = conn.as_mut() else { continue };
        if let Err(e) = exec(db, "BEGIN IMMEDIATE") {
            tracing::debug!(error = %e, "claim engine cannot start a transaction");
            if discards_connection(&e) || !db.is_autocommit() {
                conn = None;
            }
            queue.drain(..).for_each(|job| job.finish(Some(&e)));
            continue;
        }
        // Jobs run without savepoints, which cost a copy of every page they touch. A job that
        // fails after writing (only a database error can) is answered, and the transaction is
        // rolled back; the jobs that ran before it in the batch run again in the next one.
        let mut ran = Vec::with_capacity(queue.len());
        let mut broken = None;
        while let Some(mut job) = queue.pop_front() {
            let before = db.total_changes();
            let outcome = job.run(db);
            if outcome == Ran::Fault || (outcome == Ran::Failed && db.total_changes() != before) {
                broken = Some((job, outcome));
                break;
            }
            ran.push(job);
        }
        if let Some((job, outcome)) = broken {
            let rolled_back = exec(db, "ROLLBACK").is_ok() && db.is_autocommit();
            if outcome == Ran::Fault || !rolled_back {
                conn = None;
            }
            job.finish(None);
            ran.into_iter().rev().for_each(|job| queue.push_front(job));
            continue;
        }
        let error = exec(db, "COMMIT").err();
        if error.is_some() {
            // The outcome of a failed COMMIT is the connection's to forget: SQLite may have
            // rolled back already. A fresh connection starts clean.
            let _ = exec(db, "ROLLBACK");
            conn = None;
        }
        ran.into_iter().for_each(|job| job.finish(error.as_ref()));
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql).and_then(|mut s| s.execute([])).map(|_| ()).map_err(sqlite)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use loop_core::SystemClock;

    use super::*;
    use crate::sqlite::{SqliteConfig, SqliteStore};

    async fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let path = dir.path().join("loop.db");
        SqliteStore::open(SqliteConfig::new(path.to_string_lossy()), Arc::new(SystemClock)).await.expect("open")
    }

    /// `f` as engine work.
    fn job<T: Send + 'static>(f: impl Fn(&Connection) -> Result<T> + Send + Sync + 'static) -> Work<Connection, T> {
        Box::new(move |conn| Box::pin(std::future::ready(f(conn))))
    }

    fn add_label(conn: &Connection, name: &str) -> Result<()> {
        conn.execute("INSERT INTO labels (id, name, color, created_at) VALUES (?1, ?1, '#000', 0)", [name])
            .map(|_| ())
            .map_err(sqlite)
    }

    fn labels(conn: &Connection) -> Result<Vec<String>> {
        let mut stmt = conn.prepare("SELECT name FROM labels ORDER BY name").map_err(sqlite)?;
        let names = stmt.query_map([], |r| r.get(0)).map_err(sqlite)?;
        names.collect::<rusqlite::Result<_>>().map_err(sqlite)
    }

    /// Jobs sent together share transactions. A job that fails before writing costs the others
    /// nothing; one that fails after writing takes its whole batch back, and every caller is
    /// told: a result is `Ok` exactly when its write is in the database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_job_leaves_no_writes_and_others_agree_with_the_database() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = store(&dir).await;
        let engine = store.backend().engine();
        let mut jobs = tokio::task::JoinSet::new();
        for i in 0..200 {
            let engine = engine.clone();
            jobs.spawn(async move {
                let name = format!("label-{i:03}");
                let job_name = name.clone();
                let out = engine
                    .run(job(move |conn| match i % 50 {
                        7 => Err(Error::conflict("refused", "fails before writing")),
                        13 => {
                            add_label(conn, &job_name)?;
                            Err(Error::Internal("fails after writing".into()))
                        }
                        _ => add_label(conn, &job_name),
                    }))
                    .await;
                (i, name, out)
            });
        }
        let results = jobs.join_all().await;
        let stored = engine.run(job(labels)).await.unwrap();
        for (i, name, out) in results {
            match i % 50 {
                7 => assert!(matches!(out, Err(Error::Conflict { .. })), "job {i}: {out:?}"),
                13 => {
                    assert!(matches!(&out, Err(Error::Internal(m)) if m == "fails after writing"), "job {i}: {out:?}")
                }
                _ => {}
            }
            assert_eq!(out.is_ok(), stored.contains(&name), "job {i}: result {out:?} disagrees with the database");
        }
        assert_eq!(stored.len(), 192, "every job that did not fail committed");
        // The engine still works after rollbacks.
        engine.run(job(|conn| add_label(conn, "after"))).await.unwrap();
        store.backend().close().await;
    }

    /// Once writes stop, the checkpointer copies the log into the database and empties it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_emptied_when_writes_stop() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = store(&dir).await;
        let engine = store.backend().engine();
        for i in 0..100 {
            engine.run(job(move |conn| add_label(conn, &format!("l{i}")))).await.unwrap();
        }
        let wal = dir.path().join("loop.db-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > 0, "the writes went to the log");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&wal).unwrap().len() > 0 {
            assert!(std::time::Instant::now() < deadline, "the log was not emptied within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(engine.run(job(labels)).await.unwrap().len(), 100);
        store.backend().close().await;
    }
}
