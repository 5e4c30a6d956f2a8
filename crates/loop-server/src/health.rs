//! Whether storage takes writes, learnt from the writes themselves: a storage fault (a full
//! disk, an I/O error, a lost database) starts an episode, logged once with its cause; the
//! next committed write ends it. `/health` reports the episode, and while it lasts checks with a
//! real write at most every [`PROBE_EVERY`], so that it tells the truth without a write per
//! probe when all is well.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use loop_core::{Error, Store};

/// How often `/health` tries a real write while writes fail.
pub const PROBE_EVERY: Duration = Duration::from_secs(3);

/// A storage fault as a response carries it to [`record`] (never in the body).
#[derive(Debug, Clone)]
pub struct Fault(pub Error);

#[derive(Default)]
pub struct StorageHealth {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The fault of the current episode, and when it began.
    fault: Option<(Error, Instant)>,
    last_probe: Option<Instant>,
}

impl StorageHealth {
    /// A write failed with `e`; only a storage fault counts.
    pub fn failed(&self, e: &Error) {
        if !e.is_storage_fault() {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let same_kind =
            state.fault.as_ref().is_some_and(|(f, _)| std::mem::discriminant(f) == std::mem::discriminant(e));
        if !same_kind {
            tracing::error!(cause = %e, "storage fault: writes are refused (nothing is acknowledged) until it clears");
            state.fault = Some((e.clone(), Instant::now()));
            // The write that just failed was the check; the next probe waits its turn.
            state.last_probe = Some(Instant::now());
        }
    }

    /// A write committed.
    pub fn succeeded(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, since)) = state.fault.take() {
            tracing::info!(after_secs = since.elapsed().as_secs(), "storage fault cleared: writes succeed again");
        }
    }

    /// The current fault, if writes are failing.
    pub fn fault(&self) -> Option<Error> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).fault.as_ref().map(|(e, _)| e.clone())
    }

    /// While writes fail, tries a real write (at most every [`PROBE_EVERY`]) and returns the
    /// fault that remains, if any.
    pub async fn check(&self, store: &dyn Store) -> Option<Error> {
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let fault = state.fault.as_ref()?;
            if state.last_probe.is_some_and(|at| at.elapsed() < PROBE_EVERY) {
                return Some(fault.0.clone());
            }
            state.last_probe = Some(Instant::now());
        }
        match store.probe_write().await {
            Ok(()) => self.succeeded(),
            Err(e) => self.failed(&e),
        }
        self.fault()
    }
}

/// Records the outcome of every write request: a storage fault the response carries starts
/// (or continues) an episode; a write that succeeded ends it.
pub async fn record(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.uri().path() == "/api/dispatch/next";
    let response = next.run(req).await;
    if let Some(Fault(e)) = response.extensions().get::<Fault>() {
        state.health.failed(e);
    } else if writes && response.status().is_success() && response.status() != axum::http::StatusCode::NO_CONTENT {
        state.health.succeeded();
    }
    response
}

/// What `/health` says of a fault, without the database's own words.
pub fn reason(e: &Error) -> &'static str {
    match e {
        Error::StorageFull(_) => "the database's disk is full: writes are refused until space is freed",
        _ => "the database cannot be reached or written: writes are refused until it can",
    }
}
