//! Prompt health: every template's active version, usage, review scores and completion rate,
//! and a template's page with its versions, a diff between two of them, promote / roll back,
//! and an editor that previews the rendered prompt against a chosen issue before saving.

use axum::Router;
use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use loop_core::template::{PromptVersion, TemplateDetail, VersionStatus};
use loop_core::{Clock, Page, SystemClock};
use loop_prompts::PromptMeta;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use similar::{ChangeTag, TextDiff};

use super::layout::{self, Section, ago, csrf};
use super::session::Viewer;
use super::{CsrfForm, WebResult, back_to, check_form, input};
use crate::AppState;
use crate::extract::{Params, Path};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/prompts", get(health))
        .route("/prompts/{id}", get(template))
        .route("/prompts/{id}/preview", post(preview))
        .route("/prompts/{id}/versions", post(save_version))
        .route("/prompts/{id}/versions/{version_id}/promote", post(promote))
}

/// How many recent reviews the score sparkline shows.
const SPARK_REVIEWS: u32 = 30;

async fn health(State(s): State<AppState>, viewer: Viewer) -> WebResult<Markup> {
    let (health, cursor) = tokio::join!(s.store.prompt_health(), s.store.last_event_id());
    let (health, cursor) = (health?, cursor?);
    let mut scores = Vec::with_capacity(health.len());
    for h in &health {
        let reviews = s.store.list_reviews(&h.template.id, Page { limit: SPARK_REVIEWS, offset: 0 }).await?;
        // Newest first from the store; the sparkline reads left to right, oldest first.
        scores.push(reviews.data.iter().rev().map(|r| r.composite()).collect::<Vec<f64>>());
    }
    let attention = health.iter().filter(|h| h.needs_attention).count();
    let body = html! {
        div.page-head {
            h1 { "Prompt health" }
            span.muted.count { (health.len()) " templates" @if attention > 0 { " · " span.warn { (attention) " need attention" } } }
        }
        @if health.is_empty() { (layout::empty("No templates.")) }
        @else {
            div.table-wrap {
                table.prompts {
                    thead { tr {
                        th { "Template" } th { "Active" } th.numeric { "Used" } th.numeric { "Score" }
                        th.hide-narrow { "Recent reviews" } th.numeric { "Completed" } th { "" }
                    } }
                    tbody {
                        @for (h, spark) in health.iter().zip(&scores) {
                            tr data-href={ "/prompts/" (h.template.id) } class=[h.needs_attention.then_some("attention")] {
                                td { a href={ "/prompts/" (h.template.id) } { (h.template.name) } div.muted.small { code { (h.template.slug) } } }
                                td { @match &h.active_version { Some(v) => { "v" (v.version) }, None => span.muted { "none" } } }
                                td.numeric { (h.active_version.as_ref().map_or(0, |v| v.usage_count)) }
                                td.numeric { (score(h.review_summary.composite_score)) }
                                td.hide-narrow { (layout::sparkline(spark, &format!("review scores of {}", h.template.name))) }
                                td.numeric { (percent(h.active_version.as_ref().and_then(|v| v.completion_rate))) }
                                td { @if h.needs_attention { span.badge.attention title="Review score under the improvement threshold (see /api/settings) or completion under 50%" { "needs attention" } } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&viewer, Section::Prompts, "Prompt health", cursor, body))
}

fn score(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.2}"))
}

fn percent(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{:.0}%", v * 100.0))
}

/// What the editor holds: a draft, and possibly its preview against an issue.
#[derive(Default)]
struct Editor {
    content: Option<String>,
    changelog: String,
    issue: String,
    preview: Option<Result<String, String>>,
}

async fn template(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    params: Params,
) -> WebResult<Markup> {
    let editor = Editor { issue: params.text("issue").unwrap_or_default(), ..Editor::default() };
    template_page(&s, &viewer, &id, &params, editor).await
}

async fn template_page(s: &AppState, viewer: &Viewer, id: &str, params: &Params, editor: Editor) -> WebResult<Markup> {
    let all = Page { limit: loop_core::page::MAX_LIMIT, offset: 0 };
    let (detail, versions, cursor) =
        tokio::join!(s.store.template_detail(id), s.store.list_versions(id, all), s.store.last_event_id());
    let (TemplateDetail { template: t, active_version }, versions, cursor) = (detail?, versions?.data, cursor?);
    let now = SystemClock.now();
    let find = |vid: Option<&str>| vid.and_then(|vid| versions.iter().find(|v| v.id == vid));
    // By default: what changed from the version before the newest to the newest.
    let to = find(params.get("to")).or(versions.first());
    let from = find(params.get("from")).or_else(|| versions.get(1));
    let content =
        editor.content.clone().or_else(|| active_version.as_ref().map(|v| v.content.clone())).unwrap_or_default();

    let body = html! {
        nav.crumbs { a href="/prompts" { "Prompts" } " / " span { (t.name) } }
        div.page-head {
            h1 { (t.name) }
            span.muted { code { (t.slug) } " · specificity " (t.specificity.value()) }
        }
        @if let Some(d) = &t.description { p { (d) } }
        p.muted { "Matches " code { (serde_json::to_string(&t.conditions).unwrap_or_default()) } }
        section.card {
            h2 { "Versions" }
            div.table-wrap { table.versions {
                thead { tr { th { "Version" } th { "Status" } th { "Changelog" } th.hide-narrow { "Author" } th.numeric { "Used" }
                    th.numeric { "Score" } th.numeric { "Completed" } th.hide-narrow { "Created" } th { "" } } }
                tbody { @for v in &versions {
                    tr {
                        td { "v" (v.version) }
                        td { span class={ "badge version-" (v.status.as_str()) } { (v.status.as_str()) } }
                        td { (v.changelog.as_deref().unwrap_or("")) }
                        td.hide-narrow { (v.author_name) }
                        td.numeric { (v.usage_count) }
                        td.numeric { (score(v.review_score)) }
                        td.numeric { (percent(v.completion_rate)) }
                        td.hide-narrow { (ago(v.created_at, now)) }
                        td { @if v.status != VersionStatus::Active {
                            form.inline method="post" action={ "/prompts/" (t.id) "/versions/" (v.id) "/promote" } {
                                (csrf(viewer))
                                button type="submit" { @if v.status == VersionStatus::Retired { "Roll back to v" (v.version) } @else { "Promote" } }
                            }
                        } }
                    }
                } }
            } }
        }
        @if versions.len() > 1 {
            section.card #diff {
                h2 { "Compare" }
                form.inline method="get" action={ "/prompts/" (t.id) "#diff" } {
                    (version_select("from", "From", &versions, from))
                    (version_select("to", "to", &versions, to))
                    button type="submit" { "Show changes" }
                }
                @if let (Some(a), Some(b)) = (from, to) { (diff(a, b)) }
            }
        }
        section.card #editor {
            h2 { "New version" }
            p.muted { "Starts from the active version. Preview renders it against an issue exactly as dispatch would (with a placeholder for the token); saving adds a draft, or makes it active at once." }
            form.stack method="post" action={ "/prompts/" (t.id) "/versions" } {
                (csrf(viewer))
                label for="content" { "Template (Handlebars)" }
                textarea #content.code name="content" rows="18" spellcheck="false" required { (content) }
                div.row {
                    div { label for="changelog" { "Changelog" } input #changelog type="text" name="changelog" value=(editor.changelog) placeholder="What changed and why"; }
                    div { label for="issue" { "Preview against issue" } input #issue type="text" name="issue" value=(editor.issue) placeholder="#42"; }
                }
                div.buttons {
                    button type="submit" formaction={ "/prompts/" (t.id) "/preview#preview" } { "Preview" }
                    button type="submit" name="activate" value="false" { "Save as draft" }
                    button.primary type="submit" name="activate" value="true" { "Save and activate" }
                }
            }
            @if let Some(p) = &editor.preview {
                div #preview {
                    h3 { "Preview" @if !editor.issue.is_empty() { " for " (editor.issue) } }
                    @match p {
                        Ok(text) => pre.prompt { (text) },
                        Err(e) => p.error role="alert" { (e) },
                    }
                }
            }
        }
    };
    Ok(layout::page(viewer, Section::Prompts, &t.name, cursor, body))
}

fn version_select(name: &str, label: &str, versions: &[PromptVersion], chosen: Option<&PromptVersion>) -> Markup {
    html! {
        label for=(name) { (label) }
        select id=(name) name=(name) {
            @for v in versions {
                option value=(v.id) selected[chosen.is_some_and(|c| c.id == v.id)] { "v" (v.version) " (" (v.status.as_str()) ")" }
            }
        }
    }
}

/// A line diff of two versions' content.
fn diff(a: &PromptVersion, b: &PromptVersion) -> Markup {
    let d = TextDiff::from_lines(&a.content, &b.content);
    html! {
        @if a.content == b.content { p.muted { "v" (a.version) " and v" (b.version) " have the same content." } }
        @else {
            pre.diff aria-label={ "changes from v" (a.version) " to v" (b.version) } {
                @for group in d.grouped_ops(3) {
                    span.hunk { "…\n" }
                    @for op in group { @for change in d.iter_changes(&op) {
                        @match change.tag() {
                            ChangeTag::Delete => del { "- " (change.value()) },
                            ChangeTag::Insert => ins { "+ " (change.value()) },
                            ChangeTag::Equal => span { "  " (change.value()) },
                        }
                    } }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct VersionForm {
    #[serde(rename = "_csrf")]
    csrf: String,
    content: String,
    #[serde(default)]
    changelog: String,
    #[serde(default)]
    issue: String,
    #[serde(default)]
    activate: Option<String>,
}

async fn preview(
    State(s): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Params,
    Form(f): Form<VersionForm>,
) -> WebResult<Markup> {
    check_form(&viewer, &headers, &f.csrf)?;
    let issue = f.issue.trim().trim_start_matches('#').to_owned();
    let rendered = if issue.is_empty() {
        Err("Name an issue to preview against, e.g. #42.".to_owned())
    } else {
        render_preview(&s, &id, &issue, &f.content).await
    };
    let editor = Editor { content: Some(f.content), changelog: f.changelog, issue: f.issue, preview: Some(rendered) };
    template_page(&s, &viewer, &id, &params, editor).await
}

/// The draft rendered against the issue as dispatch would render it, or what went wrong.
async fn render_preview(s: &AppState, template_id: &str, issue: &str, content: &str) -> Result<String, String> {
    let checked = crate::routes::templates::validate(content).map_err(|e| e.message)?;
    let inputs = s.store.prompt_inputs(issue).await.map_err(|e| crate::error::ApiError::from(e).message)?;
    let t = s.store.template_detail(template_id).await.map_err(|e| crate::error::ApiError::from(e).message)?;
    let meta = PromptMeta {
        template_id: t.template.id.clone(),
        template_slug: t.template.slug.clone(),
        version_id: "draft".into(),
        version_number: t.active_version.as_ref().map_or(1, |v| v.version + 1),
        session_id: None,
        lease_expires_at: None,
        review_url: "POST /api/prompt-reviews",
        model: None,
    };
    let ctx = loop_prompts::hydrate(&inputs, &meta, &s.config.public_url, "<token issued at dispatch>");
    let text = s.prompts.render_draft(content, ctx)?;
    Ok(if checked.warnings.is_empty() { text } else { format!("{}\n\n---\n{text}", checked.warnings.join("\n")) })
}

async fn save_version(
    State(s): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<VersionForm>,
) -> WebResult {
    check_form(&viewer, &headers, &f.csrf)?;
    crate::routes::templates::validate(&f.content)?;
    let activate = f.activate.as_deref() == Some("true");
    let mut body = json!({ "content": f.content, "status": if activate { "active" } else { "draft" } });
    if !f.changelog.trim().is_empty() {
        body["changelog"] = json!(f.changelog.trim());
    }
    s.store.create_version(&id, input(body)?, &viewer.actor).await?;
    Ok(back_to(&format!("/prompts/{id}")))
}

async fn promote(
    State(s): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path((id, version_id)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> WebResult {
    check_form(&viewer, &headers, &f.csrf)?;
    s.store.promote_version(&id, &version_id).await?;
    Ok(back_to(&format!("/prompts/{id}")))
}
