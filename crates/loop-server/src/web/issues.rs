//! The issue list (filters in the URL, sortable, paginated) and the issue page with its actions:
//! change status or priority, comment, accept or decline a triage item.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use loop_core::comment::ThreadedComment;
use loop_core::issue::{Issue, IssueDetail, IssueSort, IssueStatus, IssueType, SortKey};
use loop_core::relation::RelationType;
use loop_core::{Clock, Page, SystemClock, Timestamp};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::layout::{self, Section, ago, csrf, issue_link};
use super::session::Viewer;
use super::{WebResult, back_to, check_form, input, markdown};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Params, Path};
use crate::routes::issues::issue_filter;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/issues", get(list))
        .route("/issues/{number}", get(detail))
        .route("/issues/{number}/update", post(update))
        .route("/issues/{number}/comments", post(comment))
        .route("/issues/{number}/triage", post(triage))
}

const NEWEST_FIRST: IssueSort = IssueSort { key: SortKey::Created, descending: true };

async fn list(State(s): State<AppState>, viewer: Viewer, params: Params) -> WebResult<Markup> {
    let filter = issue_filter(&params, NEWEST_FIRST)?;
    let page = params.page()?;
    let store = s.store.as_ref();
    let all = Page { limit: loop_core::page::MAX_LIMIT, offset: 0 };
    let (issues, projects, labels, cursor) = tokio::join!(
        store.list_issues(&filter, page),
        store.list_projects(all),
        store.list_labels(all),
        store.last_event_id()
    );
    let (issues, projects, labels, cursor) = (issues?, projects?.data, labels?.data, cursor?);
    let ids: Vec<String> = issues.data.iter().map(|i| i.id.clone()).collect();
    let issue_labels = store.labels_of_issues(&ids).await?;
    let project_names: BTreeMap<&str, &str> = projects.iter().map(|p| (p.id.as_str(), p.name.as_str())).collect();
    let query = Query::from(&params);
    let now = SystemClock.now();
    let selected = |key: &str, value: &str| params.get(key) == Some(value);
    let last = page.offset + issues.data.len() as u64;

    let body = html! {
        div.page-head {
            h1 { "Issues" }
            span.muted.count { (issues.total) " matching" }
        }
        form.filters method="get" action="/issues" role="search" {
            input type="search" name="q" value=[params.get("q")] placeholder="Search titles, or #42   ( / )"
                aria-label="Search titles" data-shortcut="/";
            select name="status" aria-label="Status" {
                option value="" { "Any status" }
                option value="open" selected[selected("status", "open")] { "Open" }
                @for st in IssueStatus::ALL {
                    option value=(st.as_str()) selected[selected("status", st.as_str())] { (st.as_str().replace('_', " ")) }
                }
            }
            select name="type" aria-label="Type" {
                option value="" { "Any type" }
                @for t in IssueType::ALL {
                    option value=(t.as_str()) selected[selected("type", t.as_str())] { (t.as_str()) }
                }
            }
            select name="priority" aria-label="Priority" {
                option value="" { "Any priority" }
                @for (v, label) in [("1", "Urgent"), ("2", "High"), ("3", "Medium"), ("4", "Low"), ("0", "None")] {
                    option value=(v) selected[selected("priority", v)] { (label) }
                }
            }
            select name="projectId" aria-label="Project" {
                option value="" { "Any project" }
                @for p in &projects {
                    option value=(p.id) selected[selected("projectId", &p.id)] { (p.name) }
                }
            }
            select name="labelId" aria-label="Label" {
                option value="" { "Any label" }
                @for l in &labels {
                    option value=(l.id) selected[selected("labelId", &l.id)] { (l.name) }
                }
            }
            @if let Some(sort) = params.get("sort") { input type="hidden" name="sort" value=(sort); }
            button type="submit" { "Filter" }
            a.button.quiet href="/issues" { "Clear" }
        }
        @if issues.data.is_empty() {
            (layout::empty("No issues match these filters."))
        } @else {
            div.table-wrap {
                table.issues {
                    thead { tr {
                        (sort_header(&query, filter.sort, SortKey::Number, "#"))
                        (sort_header(&query, filter.sort, SortKey::Title, "Title"))
                        th.hide-phone { "Type" } th { "Status" }
                        (sort_header(&query, filter.sort, SortKey::Priority, "Priority"))
                        th.hide-narrow { "Project" } th.hide-narrow { "Labels" }
                        (sort_header(&query, filter.sort, SortKey::Created, "Created"))
                        (sort_header(&query, filter.sort, SortKey::Updated, "Updated"))
                    } }
                    tbody {
                        @for i in &issues.data {
                            tr data-href={ "/issues/" (i.number) } {
                                td.num { "#" (i.number) }
                                td.title { a href={ "/issues/" (i.number) } { (i.title) } }
                                td.hide-phone { span.type { (i.issue_type.as_str()) } }
                                td { (layout::status(i.status)) }
                                td { (layout::priority(i.priority)) }
                                td.hide-narrow {
                                    @if let Some(name) = i.project_id.as_deref().and_then(|p| project_names.get(p)) { (name) }
                                }
                                td.hide-narrow {
                                    @for l in issue_labels.get(&i.id).map(Vec::as_slice).unwrap_or_default() {
                                        span.label style=[label_style(&l.color)] { (l.name) }
                                    }
                                }
                                td.when.hide-phone { (ago(i.created_at, now)) }
                                td.when { (ago(i.updated_at, now)) }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                span.muted { (page.offset + 1) "–" (last) " of " (issues.total) }
                @if page.offset > 0 {
                    a.button rel="prev" href=(query.with("offset", Some(page.offset.saturating_sub(page.limit as u64).to_string()))) { "← Newer" }
                }
                @if last < issues.total {
                    a.button rel="next" href=(query.with("offset", Some(last.to_string()))) { "Older →" }
                }
            }
        }
        p.hint.hide-narrow { kbd { "j" } "/" kbd { "k" } " move · " kbd { "Enter" } " open · " kbd { "/" } " search" }
    };
    Ok(layout::page(&viewer, Section::Issues, "Issues", cursor, body))
}

/// A colour from user data is only used when it is a plain hex colour.
fn label_style(color: &str) -> Option<String> {
    let hex = color.strip_prefix('#')?;
    (matches!(hex.len(), 3 | 6) && hex.chars().all(|ch| ch.is_ascii_hexdigit())).then(|| format!("--label: {color}"))
}

fn sort_header(query: &Query, current: IssueSort, key: SortKey, label: &str) -> Markup {
    // The creation date is the first column a phone drops.
    let class = (key == SortKey::Created).then_some("hide-phone");
    let active = current.key == key;
    // Dates and numbers read newest first on the first click; names and priority from the top.
    let first_descending = matches!(key, SortKey::Created | SortKey::Updated | SortKey::Number);
    let next = IssueSort { key, descending: if active { !current.descending } else { first_descending } };
    let aria = active.then_some(if current.descending { "descending" } else { "ascending" });
    html! {
        th class=[class] aria-sort=[aria] {
            a href=(query.with("sort", Some(next.to_param())).without("offset")) {
                (label)
                @if active { span.arrow { @if current.descending { " ↓" } @else { " ↑" } } }
            }
        }
    }
}

/// The current query string, to build links that change one parameter.
struct Query(BTreeMap<String, String>);

impl From<&Params> for Query {
    fn from(p: &Params) -> Self {
        Query(p.0.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

impl Query {
    fn with(&self, key: &str, value: Option<String>) -> Query {
        let mut q = self.0.clone();
        match value {
            Some(v) => q.insert(key.to_owned(), v),
            None => q.remove(key),
        };
        Query(q)
    }

    fn without(&self, key: &str) -> Query {
        self.with(key, None)
    }
}

impl maud::Render for Query {
    fn render_to(&self, buffer: &mut String) {
        let qs = serde_urlencoded::to_string(&self.0).unwrap_or_default();
        let href = if qs.is_empty() { "/issues".to_owned() } else { format!("/issues?{qs}") };
        href.render_to(buffer);
    }
}

async fn detail(State(s): State<AppState>, viewer: Viewer, Path(number): Path<String>) -> WebResult<Markup> {
    let store = s.store.as_ref();
    let d = store.issue_detail(&number).await?;
    let id = d.issue.id.clone();
    let (comments, sessions, events, cursor) = tokio::join!(
        store.list_comments(&id),
        store.issue_sessions(&id),
        store.issue_events(&id, Page { limit: loop_core::page::MAX_LIMIT, offset: 0 }),
        store.last_event_id()
    );
    let (comments, sessions, events, cursor) = (comments?, sessions?, events?, cursor?);
    // What a runner recorded of each session (an issue has a handful).
    let mut records = BTreeMap::new();
    for sess in &sessions {
        if let Some(r) = store.session_record(&sess.id).await? {
            records.insert(sess.id.clone(), r);
        }
    }
    let mut related: BTreeMap<String, Issue> = BTreeMap::new();
    for r in &d.relations {
        for other in [&r.issue_id, &r.related_issue_id] {
            if *other != id
                && !related.contains_key(other)
                && let Ok(issue) = store.get_issue(other).await
            {
                related.insert(other.clone(), issue);
            }
        }
    }
    // Projects are few; their list is cheaper than a project's detail (which counts its issues).
    let project = match &d.issue.project_id {
        Some(p) => {
            let all = Page { limit: loop_core::page::MAX_LIMIT, offset: 0 };
            store.list_projects(all).await?.data.into_iter().find(|x| x.id == *p).map(|x| x.name)
        }
        None => None,
    };
    let now = SystemClock.now();
    let i = &d.issue;
    let title = format!("#{} {}", i.number, i.title);
    let (blocked_by, blocks) = blockers(&d, &related);

    let body = html! {
        nav.crumbs { a href="/issues" { "Issues" } " / " span { "#" (i.number) } }
        div.page-head.issue-head {
            h1 { span.num { "#" (i.number) } " " (i.title) }
        }
        div.meta-row {
            (layout::status(i.status)) " " span.type { (i.issue_type.as_str()) } " " (layout::priority(i.priority))
            @if let Some(p) = &project { " " span.project { (p) } }
            @for l in &d.labels { " " span.label style=[label_style(&l.color)] { (l.name) } }
            span.muted { " · created " (ago(i.created_at, now)) " · updated " (ago(i.updated_at, now)) }
        }
        div.detail {
            div.primary {
                @if i.awaiting_input {
                    section.card.waiting role="status" {
                        p { strong { "Waiting for a person: " } "an agent asked a question. " a href="/inbox" { "Answer it in the inbox" } "." }
                    }
                }
                @if let Some(at) = i.merged_at {
                    p.muted { "Pull request merged " (ago(at, now)) "." }
                } @else if let Some(at) = i.approved_at {
                    p.muted { "Approved for landing " (ago(at, now)) "." }
                }
                @if i.status == IssueStatus::Triage {
                    section.card.triage aria-label="Triage" {
                        h2 { "Triage" }
                        p.muted { "Accept puts it in the backlog (or straight into the dispatch queue); decline cancels it with your reason as a comment; snooze hides it from triage until then; a duplicate is folded into the issue it repeats." }
                        @if let Some(t) = i.not_before { p { "Snoozed until " (t.to_string()) "." } }
                        form method="post" action={ "/issues/" (i.number) "/triage" } {
                            (csrf(&viewer))
                            input type="text" name="reason" placeholder="Reason to decline (optional)" aria-label="Reason to decline";
                            button.primary type="submit" name="decision" value="accept" { "Accept" }
                            button type="submit" name="decision" value="accept_todo" { "Accept → todo" }
                            button.danger type="submit" name="decision" value="decline" { "Decline" }
                            button type="submit" name="decision" value="snooze_day" { "Snooze a day" }
                            button type="submit" name="decision" value="snooze_week" { "Snooze a week" }
                        }
                        form method="post" action={ "/issues/" (i.number) "/triage" } {
                            (csrf(&viewer))
                            input type="text" name="of" placeholder="#number it repeats" aria-label="The issue it repeats";
                            button type="submit" name="decision" value="duplicate" { "Duplicate of" }
                        }
                    }
                }
                section.card {
                    h2 { "Description" }
                    @match i.description.as_deref().filter(|d| !d.trim().is_empty()) {
                        Some(text) => div.markdown { (markdown::render(text)) },
                        None => p.muted { "No description." },
                    }
                }
                @if let Some(h) = &i.hypothesis {
                    section.card {
                        h2 { "Hypothesis" }
                        div.markdown { (markdown::render(h.statement.as_str())) }
                        dl.facts {
                            dt { "Confidence" } dd { (format!("{:.0}%", h.confidence.value() * 100.0)) }
                            @if let Some(c) = &h.validation_criteria { dt { "Validation criteria" } dd { (c) } }
                            @if let Some(p) = &h.prediction { dt { "Prediction" } dd { (p) } }
                        }
                        @if !h.evidence.is_empty() {
                            h3 { "Evidence" }
                            ul { @for e in &h.evidence { li { (e) } } }
                        }
                    }
                }
                @if i.signal_source.is_some() || i.signal_payload.is_some() {
                    section.card {
                        h2 { "Signal" @if let Some(src) = &i.signal_source { span.muted { " from " (src) } } }
                        @if let (Some(n), Some(last)) = (d.occurrences, d.last_seen_at) {
                            p.occurrences { "Seen " strong { (n) } @if n == 1 { " time" } @else { " times" } ", last " (ago(last, now)) }
                        }
                        @if let Some(payload) = &i.signal_payload {
                            pre.payload { (serde_json::to_string_pretty(payload).unwrap_or_default()) }
                        }
                    }
                }
                @if i.agent_summary.is_some() || i.commits.as_ref().is_some_and(|c| !c.is_empty()) || i.pull_requests.as_ref().is_some_and(|p| !p.is_empty()) {
                    section.card {
                        h2 { "Agent results" }
                        @if let Some(sum) = &i.agent_summary { div.markdown { (markdown::render(sum)) } }
                        @if let Some(commits) = i.commits.as_ref().filter(|c| !c.is_empty()) {
                            h3 { "Commits" }
                            ul.plain { @for c in commits { li {
                                code { (c.sha.as_str().chars().take(10).collect::<String>()) }
                                @if let Some(m) = &c.message { " " (m) }
                                @if let Some(u) = c.url.as_deref().filter(|u| markdown::is_safe_url(u)) { " " a href=(u) rel="noopener noreferrer" { "view" } }
                            } } }
                        }
                        @if let Some(prs) = i.pull_requests.as_ref().filter(|p| !p.is_empty()) {
                            h3 { "Pull requests" }
                            ul.plain { @for p in prs { li {
                                @match p.url.as_deref().filter(|u| markdown::is_safe_url(u)) {
                                    Some(u) => a href=(u) rel="noopener noreferrer" { "PR #" (p.number) },
                                    None => span { "PR #" (p.number) },
                                }
                                @if let Some(t) = &p.title { " " (t) }
                            } } }
                        }
                    }
                }
                section.card #comments {
                    h2 { "Comments " span.muted { (count_comments(&comments)) } }
                    @if comments.is_empty() { p.muted { "No comments yet." } }
                    (thread(&comments, now))
                    form.comment-form method="post" action={ "/issues/" (i.number) "/comments" } {
                        (csrf(&viewer))
                        label for="comment-body" { "Add a comment" }
                        textarea #comment-body name="body" rows="3" required placeholder="Markdown is supported" {}
                        button.primary type="submit" { "Comment" }
                    }
                }
                section.card {
                    h2 { "History" }
                    ol.history {
                        @for e in events.data.iter().rev() {
                            li { span.kind { (e.kind.as_str().replace('_', " ")) } " " span.muted { "by " (e.actor) " · " (ago(e.created_at, now)) }
                                @if let Some(change) = describe_change(&e.data) { " " span.change { (change) } }
                            }
                        }
                    }
                }
            }
            aside.side {
                section.card {
                    h2 { "Update" }
                    form.stack method="post" action={ "/issues/" (i.number) "/update" } {
                        (csrf(&viewer))
                        label for="status" { "Status" }
                        select #status name="status" {
                            @for st in IssueStatus::ALL {
                                option value=(st.as_str()) selected[*st == i.status] { (st.as_str().replace('_', " ")) }
                            }
                        }
                        label for="priority" { "Priority" }
                        select #priority name="priority" {
                            @for (v, label) in [(1u8, "Urgent"), (2, "High"), (3, "Medium"), (4, "Low"), (0, "None")] {
                                option value=(v) selected[i.priority.value() == v] { (label) }
                            }
                        }
                        button.primary type="submit" { "Save" }
                    }
                }
                @if let Some(parent) = &d.parent {
                    section.card { h2 { "Parent" } (issue_link(parent)) " " (layout::status(parent.status)) }
                }
                @if !d.children.is_empty() {
                    section.card {
                        h2 { "Children " span.muted { (d.children.len()) } }
                        ul.plain { @for c in &d.children { li { (issue_link(c)) " " (layout::status(c.status)) } } }
                    }
                }
                @if !blocked_by.is_empty() || !blocks.is_empty() {
                    section.card {
                        @if !blocked_by.is_empty() {
                            h2 { "Blocked by" }
                            ul.plain { @for b in &blocked_by { li { (issue_link(b)) " " (layout::status(b.status)) } } }
                        }
                        @if !blocks.is_empty() {
                            h2 { "Blocks" }
                            ul.plain { @for b in &blocks { li { (issue_link(b)) " " (layout::status(b.status)) } } }
                        }
                    }
                }
                section.card {
                    h2 { "Agent sessions " span.muted { (sessions.len()) } }
                    @if sessions.is_empty() { p.muted { "Not dispatched yet." } }
                    ul.sessions { @for sess in sessions.iter().rev() {
                        li {
                            strong { (sess.agent) } " "
                            @match sess.outcome {
                                Some(o) => span class={ "badge outcome-" (o.as_str()) } { (o.as_str()) },
                                None => span.badge.outcome-open { "working" },
                            }
                            div.muted { "claimed " (ago(sess.claimed_at, now))
                                @if let Some(ms) = sess.duration_ms { " · " (ms / 1000) " s" }
                                @if let Some(t) = sess.tokens { " · " (t) " tokens" }
                                @if let Some(c) = sess.cost_usd { " · $" (format!("{c:.2}")) }
                            }
                            @if let Some(sum) = &sess.summary { p.summary { (sum) } }
                            @if let Some(r) = records.get(&sess.id) { (session_record(r)) }
                        }
                    } }
                }
            }
        }
    };
    Ok(layout::page(&viewer, Section::Issues, &title, cursor, body))
}

/// What the runner recorded of a session: what ran, the checks, the branch and PR, and the
/// transcript, folded away.
fn session_record(r: &loop_core::session::SessionRecord) -> Markup {
    let a = &r.attestation;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    html! {
        details.record {
            summary { "What ran" }
            ul.plain {
                @if let Some(agent) = a.get("agent") {
                    li { "agent " code { (text(&agent["command"])) } ": " (text(&agent["result"]))
                        @if let Some(m) = agent["model"].as_str() { " · " (m) } }
                }
                @for check in a.get("verify").and_then(|v| v.as_array()).into_iter().flatten() {
                    li { "verify " code { (text(&check["command"])) } ": " (text(&check["result"])) }
                }
                @if let Some(b) = a.get("branch").and_then(|b| b.as_str()) { li { "branch " code { (b) } } }
                @for c in a.get("commits").and_then(|v| v.as_array()).into_iter().flatten() {
                    li { "commit " code { (text(&c["sha"]).chars().take(12).collect::<String>()) } " " (text(&c["subject"])) }
                }
                @if let Some(pr) = a.get("pullRequest").and_then(|p| p.as_str()) { li { "pull request " (pr) } }
            }
            @if let Some(t) = &r.transcript { pre.transcript { (t) } }
        }
    }
}

/// The issues blocking this one and the issues it blocks, whichever side recorded the relation.
fn blockers<'a>(d: &IssueDetail, related: &'a BTreeMap<String, Issue>) -> (Vec<&'a Issue>, Vec<&'a Issue>) {
    let me = &d.issue.id;
    let (mut blocked_by, mut blocks) = (Vec::new(), Vec::new());
    for r in &d.relations {
        let (other, this_is_subject) =
            if &r.issue_id == me { (&r.related_issue_id, true) } else { (&r.issue_id, false) };
        let Some(issue) = related.get(other) else { continue };
        match (r.relation_type, this_is_subject) {
            (RelationType::Blocks, true) | (RelationType::BlockedBy, false) => blocks.push(issue),
            (RelationType::BlockedBy, true) | (RelationType::Blocks, false) => blocked_by.push(issue),
            _ => {}
        }
    }
    (blocked_by, blocks)
}

fn count_comments(comments: &[ThreadedComment]) -> usize {
    comments.iter().map(|c| 1 + count_comments(&c.replies)).sum()
}

fn thread(comments: &[ThreadedComment], now: Timestamp) -> Markup {
    html! {
        @if !comments.is_empty() {
            ul.thread {
                @for c in comments {
                    li.comment {
                        div.comment-head {
                            strong { (c.comment.author_name) } " "
                            span class={ "badge author-" (c.comment.author_type.as_str()) } { (c.comment.author_type.as_str()) }
                            " " span.muted { (ago(c.comment.created_at, now)) }
                        }
                        div.markdown { (markdown::render(&c.comment.body)) }
                        (thread(&c.replies, now))
                    }
                }
            }
        }
    }
}

/// "todo → in progress" for events that record a change.
fn describe_change(data: &serde_json::Value) -> Option<String> {
    let field = data.get("field")?.as_str()?;
    let show = |v: Option<&serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => s.replace('_', " "),
        Some(serde_json::Value::Null) | None => "none".into(),
        Some(other) => other.to_string(),
    };
    Some(format!("{field}: {} → {}", show(data.get("from")), show(data.get("to"))))
}

#[derive(Deserialize)]
struct UpdateForm {
    #[serde(rename = "_csrf")]
    csrf: String,
    status: Option<String>,
    priority: Option<String>,
}

async fn update(
    State(s): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(number): Path<String>,
    Form(f): Form<UpdateForm>,
) -> WebResult {
    check_form(&viewer, &headers, &f.csrf)?;
    let current = s.store.get_issue(&number).await?;
    let mut patch = serde_json::Map::new();
    if let Some(st) = f.status.filter(|st| *st != current.status.as_str()) {
        patch.insert("status".into(), json!(st));
    }
    if let Some(p) = f.priority {
        let p: i64 = p.parse().map_err(|_| ApiError::query("priority", "must be a number from 0 to 4"))?;
        if p != i64::from(current.priority.value()) {
            patch.insert("priority".into(), json!(p));
        }
    }
    if !patch.is_empty() {
        let patch = input(serde_json::Value::Object(patch))?;
        s.store.update_issue(&current.id, patch, &viewer.actor).await?;
    }
    Ok(back_to(&format!("/issues/{}", current.number)))
}

#[derive(Deserialize)]
struct CommentForm {
    #[serde(rename = "_csrf")]
    csrf: String,
    body: String,
}

async fn comment(
    State(s): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(number): Path<String>,
    Form(f): Form<CommentForm>,
) -> WebResult {
    check_form(&viewer, &headers, &f.csrf)?;
    let issue = s.store.get_issue(&number).await?;
    let new_comment = input(json!({ "body": f.body, "authorType": "human" }))?;
    s.store.create_comment(&issue.id, new_comment, &viewer.actor).await?;
    Ok(back_to(&format!("/issues/{}#comments", issue.number)))
}

#[derive(Deserialize)]
struct TriageForm {
    #[serde(rename = "_csrf")]
    csrf: String,
    decision: String,
    #[serde(default)]
    reason: String,
    /// For `duplicate`: the issue it repeats.
    #[serde(default)]
    of: String,
}

async fn triage(
    State(s): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(number): Path<String>,
    Form(f): Form<TriageForm>,
) -> WebResult {
    check_form(&viewer, &headers, &f.csrf)?;
    let issue = s.store.get_issue(&number).await?;
    if issue.status != IssueStatus::Triage {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_in_triage",
            format!("#{} is {} now, no longer in triage", issue.number, issue.status.as_str().replace('_', " ")),
        )
        .into());
    }
    let snooze_days = match f.decision.as_str() {
        "snooze_day" => Some(1),
        "snooze_week" => Some(7),
        _ => None,
    };
    if let Some(days) = snooze_days {
        let until = SystemClock.now().plus_millis(days * loop_core::dispatch::DAY_MS);
        s.store.update_issue(&issue.id, input(json!({ "notBefore": until }))?, &viewer.actor).await?;
        return Ok(back_to("/issues?status=triage&waiting=false"));
    }
    if f.decision == "duplicate" {
        s.store.mark_duplicate(&issue.id, f.of.trim().trim_start_matches('#'), &viewer.actor).await?;
        return Ok(back_to(&format!("/issues/{}", issue.number)));
    }
    let status = match f.decision.as_str() {
        "accept" => "backlog",
        "accept_todo" => "todo",
        "decline" => "canceled",
        other => {
            return Err(ApiError::query(
                "decision",
                format!(
                    "must be accept, accept_todo, decline, snooze_day, snooze_week or duplicate, got {}",
                    loop_core::text::echo(other)
                ),
            )
            .into());
        }
    };
    let patch = input(json!({ "status": status }))?;
    s.store.update_issue(&issue.id, patch, &viewer.actor).await?;
    let reason = f.reason.trim();
    if status == "canceled" && !reason.is_empty() {
        let body = json!({ "body": format!("Declined in triage: {reason}"), "authorType": "human" });
        s.store.create_comment(&issue.id, input(body)?, &viewer.actor).await?;
    }
    Ok(back_to(&format!("/issues/{}", issue.number)))
}
