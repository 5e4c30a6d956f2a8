//! The server is shutting down. A graceful shutdown waits for every request in flight, and a
//! long-poll (`?wait=`) or a live page's event stream would hold it for up to a minute, or for
//! ever; they watch this and end at once instead.

use std::sync::Arc;

use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct Closing(Arc<watch::Sender<bool>>);

impl Default for Closing {
    fn default() -> Self {
        Self(Arc::new(watch::channel(false).0))
    }
}

impl Closing {
    /// Ends every wait on [`Closing::closed`], now and later.
    pub fn close(&self) {
        self.0.send_replace(true);
    }

    /// Resolves once the server is shutting down.
    pub async fn closed(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives as long as `self`, so this only returns once closed.
        let _ = rx.wait_for(|closing| *closing).await;
    }
}
