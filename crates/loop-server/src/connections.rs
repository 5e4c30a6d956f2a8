//! The open connections of [`crate::serve`]: which are idle (between requests), so that when
//! file descriptors run short the idle ones can be closed, oldest first, and real requests
//! keep being served; and all of them, for a graceful shutdown.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use tokio::sync::Notify;
use tower::ServiceExt;

/// One connection.
#[derive(Default)]
pub struct Entry {
    /// A request is being answered.
    busy: AtomicBool,
    close: Notify,
}

impl Entry {
    /// Resolves when the connection is asked to close (it then finishes the request it is on).
    pub async fn closing(&self) {
        self.close.notified().await
    }
}

#[derive(Default)]
pub struct Connections {
    next: AtomicU64,
    /// By age: the oldest first.
    open: Mutex<BTreeMap<u64, Arc<Entry>>>,
    all_closed: Notify,
}

/// Removes its connection from the registry when the connection's task ends.
pub struct Guard {
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut open = self.connections.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(&self.id);
        if open.is_empty() {
            self.connections.all_closed.notify_waiters();
        }
    }
}

impl Connections {
    pub fn add(self: &Arc<Self>) -> (Arc<Entry>, Guard) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(Entry::default());
        self.open.lock().unwrap_or_else(|e| e.into_inner()).insert(id, entry.clone());
        (entry, Guard { id, connections: self.clone() })
    }

    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Asks up to `n` idle connections, oldest first, to close; returns how many were asked.
    pub fn shed_idle(&self, n: usize) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let idle = open.values().filter(|e| !e.busy.load(Ordering::Relaxed)).take(n);
        idle.map(|e| e.close.notify_one()).count()
    }

    /// Asks every connection to close once its request is answered, and waits until all have.
    pub async fn close_all(&self) {
        loop {
            let closed = self.all_closed.notified();
            {
                let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
                if open.is_empty() {
                    return;
                }
                open.values().for_each(|e| e.close.notify_one());
            }
            closed.await;
        }
    }
}

/// `app` for one connection, marking the connection busy while a request is answered.
/// The address a request's connection came from (what sign-in attempts are counted by).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::IpAddr);

impl PeerAddr {
    /// What a request's attempts are counted under: its address, or `unknown` when it did not
    /// come through a socket (in-process calls).
    pub fn name(peer: Option<axum::Extension<PeerAddr>>) -> String {
        peer.map_or_else(|| "unknown".to_owned(), |axum::Extension(PeerAddr(ip))| ip.to_string())
    }
}

pub fn track(
    entry: Arc<Entry>,
    app: Router,
    peer: PeerAddr,
) -> impl tower::Service<Request<hyper::body::Incoming>, Response = Response, Error = Infallible, Future: Send> + Clone
{
    tower::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(peer);
        let entry = entry.clone();
        entry.busy.store(true, Ordering::Relaxed);
        let answer = app.clone().oneshot(req.map(Body::new));
        async move {
            let response = answer.await;
            entry.busy.store(false, Ordering::Relaxed);
            response
        }
    })
}
