//! Live updates: a server-sent event stream of the event log. The page names the last event it
//! was rendered with (`?after=`; a reconnecting browser sends `Last-Event-ID`), and gets one
//! `change` message per batch of newer events. The stream wakes on this node's writes and
//! looks at the log once a second besides, so changes made by other nodes arrive too.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;

use super::WebResult;
use super::session::Viewer;
use crate::AppState;
use crate::extract::Params;

/// The longest a change made elsewhere takes to show.
const POLL: Duration = Duration::from_secs(1);
const BATCH: u32 = 200;

pub async fn stream(
    State(s): State<AppState>,
    _viewer: Viewer,
    headers: HeaderMap,
    params: Params,
) -> WebResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let resumed = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let after = match resumed.or(params.int("after")?) {
        Some(id) => id,
        None => s.store.last_event_id().await?,
    };
    let changes = s.changes.subscribe();
    let events = futures_util::stream::unfold((s, changes, after), |(s, mut changes, mut after)| async move {
        loop {
            match s.store.events_after(after, BATCH).await {
                Ok(batch) if !batch.is_empty() => {
                    after = batch.last().map_or(after, |e| e.id);
                    let issues: Vec<_> =
                        batch.iter().map(|e| json!({ "issueId": e.issue_id, "kind": e.kind.as_str() })).collect();
                    let event = Event::default().event("change").id(after.to_string()).data(json!(issues).to_string());
                    return Some((Ok(event), (s, changes, after)));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "live updates: reading the event log failed"),
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
                // The browser reconnects, to this server once it is back.
                _ = s.config.closing.closed() => return None,
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
