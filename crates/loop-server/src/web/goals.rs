//! Goals: each one's current value against its target, its trend, its project and the open
//! issues working toward it.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use loop_core::goal::{Goal, GoalStatus, Trend};
use loop_core::issue::{IssueFilter, IssueSort, IssueStatus, SortKey};
use loop_core::{Page, Result};
use maud::{Markup, html};

use super::WebResult;
use super::layout::{self, Section};
use super::session::Viewer;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/goals", get(page))
}

/// How many readings the sparkline shows, and how many open issues each goal lists.
const READINGS: u32 = 30;
const ISSUES: u32 = 5;

async fn page(State(s): State<AppState>, viewer: Viewer) -> WebResult<Markup> {
    let all = Page { limit: loop_core::page::MAX_LIMIT, offset: 0 };
    let (goals, cursor) = tokio::join!(s.store.list_goals(None, all), s.store.last_event_id());
    let (goals, cursor) = (goals?.data, cursor?);
    let mut cards = Vec::with_capacity(goals.len());
    for g in &goals {
        cards.push(card(&s, g).await?);
    }
    let body = html! {
        div.page-head {
            h1 { "Goals" }
            span.muted.count { (goals.iter().filter(|g| g.status == GoalStatus::Active).count()) " active" }
        }
        @if goals.is_empty() {
            (layout::empty("No goals yet. Create one with POST /api/goals (a metric and a target); issues in its project get a dispatch bonus while it is active."))
        }
        div.goals { @for c in cards { (c) } }
    };
    Ok(layout::page(&viewer, Section::Goals, "Goals", cursor, body))
}

async fn card(s: &AppState, g: &Goal) -> Result<Markup> {
    let readings = s.store.goal_readings(&g.id, READINGS).await?;
    let project = match &g.project_id {
        Some(p) => Some(s.store.project_detail(p).await?),
        None => None,
    };
    let issues = match &g.project_id {
        Some(p) => {
            let filter = IssueFilter {
                project_id: Some(p.clone()),
                statuses: IssueStatus::open(),
                sort: IssueSort { key: SortKey::Priority, descending: false },
                ..Default::default()
            };
            s.store.list_issues(&filter, Page { limit: ISSUES, offset: 0 }).await?
        }
        None => loop_core::Paged { data: vec![], total: 0 },
    };
    let values: Vec<f64> = readings.iter().map(|r| r.value).collect();
    let progress = g.progress();
    let unit = g.unit.as_deref().unwrap_or("");
    let show = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{}{unit}", trim_number(v)));
    let (arrow, trend_class, trend_label) = match g.trend(&readings) {
        Some(Trend::Toward) => ("▲", "good", "moving toward the target"),
        Some(Trend::Away) => ("▼", "bad", "moving away from the target"),
        Some(Trend::Flat) => ("▶", "flat", "unchanged"),
        None => ("", "flat", "no trend yet"),
    };
    Ok(html! {
        article.card.goal {
            div.goal-head {
                h2 { (g.title) }
                span class={ "badge goal-" (g.status.as_str()) } { (g.status.as_str()) }
            }
            @if let Some(m) = &g.metric { p.muted { "metric " code { (m) } } }
            div.goal-numbers {
                span.current { (show(g.current_value)) }
                span.muted { " of " (show(g.target_value)) }
                span class={ "trend " (trend_class) } title=(trend_label) aria-label=(trend_label) { " " (arrow) }
                (layout::sparkline(&values, &format!("last {} readings of {}", values.len(), g.title)))
            }
            @if let Some(p) = progress {
                div.progress role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=(format!("{:.0}", p * 100.0)) {
                    span style={ "width: " (format!("{:.1}", p * 100.0)) "%" } {}
                }
                p.muted.small { (format!("{:.0}", p * 100.0)) "% of the way" }
            }
            @if let Some(p) = &project {
                p { "Project " strong { (p.project.name) } " " span.badge { (p.project.status.as_str()) } }
            }
            @if issues.total > 0 {
                h3 { "Working toward it " span.muted { (issues.total) " open" } }
                ul.plain { @for i in &issues.data { li { (layout::issue_link(i)) " " (layout::status(i.status)) } } }
                @if let Some(p) = &g.project_id {
                    @if issues.total > issues.data.len() as u64 {
                        a href={ "/issues?status=open&sort=priority&projectId=" (p) } { "All " (issues.total) " →" }
                    }
                }
            } @else if g.project_id.is_some() {
                p.muted { "No open issues in its project." }
            }
        }
    })
}

/// 3.50 → "3.5", 12.0 → "12".
fn trim_number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}
