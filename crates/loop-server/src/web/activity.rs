//! The loop at work: each chain (a root issue and the work that grew from it, signal →
//! hypothesis → tasks → monitor), the most recently active first.

use axum::extract::State;
use loop_core::issue::{Issue, IssueType};
use loop_core::{Clock, SystemClock};
use maud::{Markup, html};

use super::WebResult;
use super::layout::{self, Section, ago};
use super::session::Viewer;
use crate::AppState;
use crate::extract::Params;

const PER_PAGE: u32 = 20;

pub async fn page(State(s): State<AppState>, viewer: Viewer, params: Params) -> WebResult<Markup> {
    let page = params.page_or(PER_PAGE)?;
    let (chains, cursor) = tokio::join!(s.store.activity(page), s.store.last_event_id());
    let (chains, cursor) = (chains?, cursor?);
    let now = SystemClock.now();
    let shown = page.offset + chains.data.len() as u64;
    let body = html! {
        div.page-head {
            h1 { "Loop activity" }
            span.muted.count { (chains.total) " chains" }
        }
        @if chains.data.is_empty() {
            (layout::empty("Nothing has happened yet. Signals arrive through POST /api/signals or the webhooks; every chain of work they start shows up here."))
        }
        ol.timeline {
            @for chain in &chains.data {
                li.chain {
                    div.chain-head {
                        (step(&chain.root, now))
                        span.muted.when { "active " (ago(chain.latest_activity, now)) }
                    }
                    @if !chain.children.is_empty() {
                        ol.steps {
                            @for c in &chain.children {
                                li { span.arrow aria-hidden="true" { "→ " } (step(&c.issue, now)) }
                            }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if !chains.data.is_empty() { span.muted { (page.offset + 1) "–" (shown) " of " (chains.total) } }
            @if page.offset > 0 {
                a.button rel="prev" href={ "/activity?offset=" (page.offset.saturating_sub(page.limit as u64)) } { "← Newer" }
            }
            @if shown < chains.total {
                a.button rel="next" href={ "/activity?offset=" (shown) } { "Older →" }
            }
        }
    };
    Ok(layout::page(&viewer, Section::Activity, "Activity", cursor, body))
}

/// One issue of a chain: what kind of step it is, and what it says about itself.
fn step(issue: &Issue, now: loop_core::Timestamp) -> Markup {
    let verb = match issue.issue_type {
        IssueType::Signal => "Signal",
        IssueType::Hypothesis => "Hypothesis",
        IssueType::Plan => "Plan",
        IssueType::Task => "Task",
        IssueType::Monitor => "Monitor",
    };
    html! {
        span class={ "step type-" (issue.issue_type.as_str()) } {
            span.step-kind { (verb) }
            " " (layout::issue_link(issue)) " " (layout::status(issue.status))
            @if let Some(h) = &issue.hypothesis { " " span.muted { "confidence " (format!("{:.2}", h.confidence.value())) } }
            @if let Some(src) = &issue.signal_source { " " span.muted { "(" (src) ")" } }
            @if let Some(prs) = issue.pull_requests.as_ref().filter(|p| !p.is_empty()) {
                " " span.muted { "PR " @for (n, p) in prs.iter().enumerate() { @if n > 0 { ", " } "#" (p.number) } }
            }
            " " span.muted.hide-narrow { (ago(issue.updated_at, now)) }
        }
    }
}
