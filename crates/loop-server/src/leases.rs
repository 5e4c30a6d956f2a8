//! Waking long-polls (and refreshing the template cache) after writes, and the sweeper:
//! expiring leases, ending waits, deciding hypotheses.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// After a successful write, long-polling claimers look again: the write may have made an
/// issue eligible (a create, a status change, an unblock).
pub async fn wake_on_write(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // Template writes come from the API and from the dashboard's prompt pages.
    let path = req.uri().path();
    let templates = path.starts_with("/api/templates") || path.starts_with("/prompts/");
    let response = next.run(req).await;
    // The dashboard's forms answer a successful write with a redirect.
    if write && (response.status().is_success() || response.status().is_redirection()) {
        if templates {
            state.templates.invalidate();
        }
        state.changed();
    }
    response
}

/// Returns issues whose lease ran out to `todo`, ends the waits whose time came, and lets the
/// data decide hypotheses whose window passed, for as long as the server runs.
pub async fn sweep(state: AppState) {
    let mut tick = tokio::time::interval(state.config.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match state.store.sweep_due().await {
            Ok(swept) if swept.released > 0 || swept.resolved > 0 => {
                tracing::info!(
                    released = swept.released,
                    hypotheses = swept.resolved,
                    "waits ended; hypotheses decided"
                );
                state.changed();
            }
            Ok(_) => {}
            Err(e) => {
                if stopped(&state, &e, "hypothesis sweep") {
                    return;
                }
            }
        }
        if let Some(days) = state.config.stale_after_days {
            match state.store.close_stale(days).await {
                Ok(closed) if !closed.is_empty() => {
                    let numbers: Vec<i64> = closed.iter().map(|i| i.number).collect();
                    tracing::info!(?numbers, days, "closed stale triage and backlog issues");
                    state.changed();
                }
                Ok(_) => {}
                Err(e) => {
                    if stopped(&state, &e, "stale sweep") {
                        return;
                    }
                }
            }
        }
        match state.store.expire_leases().await {
            Ok(expired) if !expired.is_empty() => {
                state.health.succeeded();
                for s in &expired {
                    tracing::info!(session = %s.id, issue = %s.issue_id, agent = %s.agent, "lease expired; issue back in todo");
                }
                state.changed();
            }
            Ok(_) => {}
            Err(e) => {
                if stopped(&state, &e, "lease sweep") {
                    return;
                }
            }
        }
    }
}

/// A step of the sweep failed: true when the store was closed for shutdown (the sweep ends
/// quietly); otherwise the failure is reported (a storage fault once per episode, by the
/// health tracker) and the sweep goes on.
fn stopped(state: &AppState, e: &loop_core::Error, step: &str) -> bool {
    if state.store.is_closed() {
        return true;
    }
    if e.is_storage_fault() {
        state.health.failed(e);
    } else {
        tracing::error!(error = %e, "{step} failed");
    }
    false
}
