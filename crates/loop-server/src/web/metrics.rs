//! Loop metrics over the last 30 days (or `?since=`): velocity from signal to validated
//! outcome and per stage, hypothesis hit rate, agent efficiency, throughput, and the changelog
//! of that period.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use loop_core::metrics::{HitRate, Period, Spread, duration_text};
use maud::{Markup, html};
use serde::Deserialize;

use super::WebResult;
use super::layout::{self, Section};
use super::session::Viewer;
use crate::AppState;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(page))
}

#[derive(Deserialize)]
struct Since {
    since: Option<String>,
}

async fn page(State(s): State<AppState>, viewer: Viewer, Query(q): Query<Since>) -> WebResult<Markup> {
    let since = match q.since.as_deref().filter(|v| !v.trim().is_empty()) {
        Some(raw) => Some(Period::parse_time("since", raw).map_err(ApiError::from_query)?),
        None => None,
    };
    let (metrics, changes, cursor) =
        tokio::join!(s.store.loop_metrics(since, None), s.store.changelog(since), s.store.last_event_id());
    let (m, changes, cursor) = (metrics?, changes?, cursor?);
    let stages = [
        ("Triage", &m.velocity.stages.triage),
        ("Hypothesis", &m.velocity.stages.hypothesis),
        ("Plan", &m.velocity.stages.plan),
        ("Execution", &m.velocity.stages.execution),
        ("Validation", &m.velocity.stages.validation),
    ];
    let done: u64 = m.throughput.iter().map(|d| d.done).sum();
    let body = html! {
        div.page-head {
            h1 { "Metrics" }
            span.muted.count { (day(&m.since.to_string())) " → " (day(&m.until.to_string())) }
        }
        section.card {
            h2 { "Loop velocity" }
            p { "Signal → validated outcome: " strong { (spread(&m.velocity.signal_to_validated)) } }
            table {
                thead { tr { th { "Stage" } th { "Median" } th { "p90" } th { "Chains" } } }
                tbody { @for (name, s) in stages { tr {
                    td { (name) } td { (hours(s.median_ms)) } td { (hours(s.p90_ms)) } td { (s.count) }
                } } }
            }
        }
        section.card {
            h2 { "Hypothesis hit rate" }
            p { strong { (rate(&m.hit_rate.overall)) } }
            table {
                thead { tr { th { "By" } th { "" } th { "Hit rate" } } }
                tbody {
                    @for r in &m.hit_rate.by_signal_source { tr { td { "source" } td { (r.key) } td { (rate(r)) } } }
                    @for r in &m.hit_rate.by_template_version { tr { td { "prompt" } td { (r.key) } td { (rate(r)) } } }
                }
            }
        }
        section.card {
            h2 { "Agents" }
            @if m.agents.is_empty() { p.muted { "No sessions in this period." } }
            @else {
                table {
                    thead { tr { th { "Agent" } th { "Sessions" } th { "Success" } th { "First attempt" } th { "Median" } th { "Issues done" } th { "Cost per issue" } } }
                    tbody { @for a in &m.agents { tr {
                        td { (a.agent) } td { (a.sessions) } td { (pct(a.success_rate)) } td { (pct(a.first_attempt_success)) }
                        td { (hours(a.median_duration_ms)) } td { (a.completed_issues) }
                        td { (a.cost_usd_per_completed_issue.map_or("—".into(), |c| format!("${c:.2}"))) }
                    } } }
                }
            }
        }
        section.card {
            h2 { "Throughput " span.muted { (done) " done" } }
            (layout::sparkline(&m.throughput.iter().map(|d| d.done as f64).collect::<Vec<_>>(), "issues done per day"))
        }
        section.card {
            h2 { "Changelog" }
            @if changes.is_empty() { p.muted { "No completed changes with commits or pull requests in this period." } }
            ul.plain { @for g in &changes { li { (g.summary) } } }
        }
    };
    Ok(layout::page(&viewer, Section::Metrics, "Metrics", cursor, body))
}

fn day(t: &str) -> String {
    t.chars().take(10).collect()
}

fn hours(ms: Option<i64>) -> String {
    ms.map_or("—".into(), duration_text)
}

fn spread(s: &Spread) -> String {
    match s.count {
        0 => "no validated chain yet".into(),
        n => format!("median {}, p90 {} ({n})", hours(s.median_ms), hours(s.p90_ms)),
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or("—".into(), |x| format!("{:.0}%", x * 100.0))
}

fn rate(r: &HitRate) -> String {
    match r.rate {
        Some(x) => format!("{:.0}% ({} of {})", x * 100.0, r.validated, r.validated + r.invalidated + r.inconclusive),
        None => "no hypothesis resolved".into(),
    }
}
