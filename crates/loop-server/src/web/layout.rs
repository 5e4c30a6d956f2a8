//! The page shell (navigation, theme, live-update hook) and the small pieces every view uses.

use loop_core::Timestamp;
use loop_core::issue::{Issue, IssueStatus, Priority};
use maud::{DOCTYPE, Markup, html};

use super::session::Viewer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Issues,
    Inbox,
    Activity,
    Goals,
    Metrics,
    Prompts,
    Settings,
}

/// A whole page. `live_after` is the event id the page was rendered at: the page script asks
/// the event stream for what came after it and refreshes `<main>` when something did.
pub fn page(viewer: &Viewer, section: Section, title: &str, live_after: i64, body: Markup) -> Markup {
    let nav = [
        (Section::Issues, "/issues", "Issues"),
        (Section::Inbox, "/inbox", "Inbox"),
        (Section::Activity, "/activity", "Activity"),
        (Section::Goals, "/goals", "Goals"),
        (Section::Metrics, "/metrics", "Metrics"),
        (Section::Prompts, "/prompts", "Prompts"),
    ];
    // Token administration is for admins; the link is shown to them only.
    let settings = viewer.admin.then_some((Section::Settings, "/settings/tokens", "Tokens"));
    html! {
        (DOCTYPE)
        html lang="en" data-theme=[viewer.theme] {
            (head(title))
            body data-live-after=(live_after) {
                header.top {
                    a.brand href="/issues" { span.logo aria-hidden="true" { "◎" } " Loop" }
                    nav {
                        @for (s, href, label) in nav.into_iter().chain(settings) {
                            a href=(href) aria-current=[(s == section).then_some("page")] { (label) }
                        }
                    }
                    span.live title="Live updates" aria-live="polite" {}
                    button.theme type="button" title="Switch between light and dark" aria-label="Switch theme" { "◐" }
                    span.who title="Signed in as" {
                        @if viewer.actor == loop_core::Actor::human() { "master key" } @else { (viewer.actor.name) }
                    }
                    form.logout method="post" action="/logout" {
                        (csrf(viewer))
                        button type="submit" { "Log out" }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// A page for someone not signed in (login, errors before sign-in).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare { main #main { (body) } }
        }
    }
}

fn head(title: &str) -> Markup {
    // The version in the asset URLs makes browsers fetch them again after an upgrade.
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Loop" }
            link rel="stylesheet" href={ "/assets/app.css?v=" (env!("CARGO_PKG_VERSION")) };
            script src={ "/assets/app.js?v=" (env!("CARGO_PKG_VERSION")) } defer {}
        }
    }
}

pub fn csrf(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="_csrf" value=(viewer.csrf); }
}

pub fn status(s: IssueStatus) -> Markup {
    html! { span class={ "badge status-" (s.as_str()) } { (s.as_str().replace('_', " ")) } }
}

pub fn priority(p: Priority) -> Markup {
    let (label, class) = match p.value() {
        1 => ("urgent", "p1"),
        2 => ("high", "p2"),
        3 => ("medium", "p3"),
        4 => ("low", "p4"),
        _ => ("none", "p0"),
    };
    html! { span class={ "prio " (class) } title={ "priority " (p.value()) } { (label) } }
}

pub fn issue_link(issue: &Issue) -> Markup {
    html! {
        a.issue-link href={ "/issues/" (issue.number) } {
            span.num { "#" (issue.number) } " " (issue.title)
        }
    }
}

/// "3 min ago", with the exact time on hover.
pub fn ago(at: Timestamp, now: Timestamp) -> Markup {
    let secs = (now.millis() - at.millis()).max(0) / 1000;
    let text = match secs {
        0..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        86_400..2_592_000 => format!("{} d ago", secs / 86_400),
        _ => at.to_string()[..10].to_owned(),
    };
    html! { time datetime=(at.to_string()) title=(at.to_string()) { (text) } }
}

/// A tiny inline chart of values (oldest first), drawn as SVG.
pub fn sparkline(values: &[f64], label: &str) -> Markup {
    if values.len() < 2 {
        return html! { span.muted { "—" } };
    }
    let (w, h) = (120.0, 28.0);
    let (lo, hi) = values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let step = w / (values.len() - 1) as f64;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", i as f64 * step, h - 2.0 - (v - lo) / span * (h - 4.0)))
        .collect();
    html! {
        svg.spark viewBox={ "0 0 " (w) " " (h) } width=(w) height=(h) role="img" aria-label=(label) {
            polyline points=(points.join(" ")) fill="none" stroke="currentColor" stroke-width="1.5" {}
        }
    }
}

pub fn empty(message: &str) -> Markup {
    html! { p.empty { (message) } }
}
