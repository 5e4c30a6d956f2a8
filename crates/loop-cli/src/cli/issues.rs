//! Issues: list, show, create, update, start, done, cancel, delete, block, unblock, comment.

use std::collections::HashMap;
use std::fmt::Write as _;

use clap::Args;
use serde_json::{Map, Value, json};
use tokio::task::JoinSet;

use super::Ctx;
use super::api::{Api, data, issue_path, seg};
use super::args::{IssueRef, SetStatus, StatusArg, TypeArg, author_name, parse_object, parse_priority, read_text};
use super::error::{About, CliError};
use super::output::{
    self, BOLD, Cell, DIM, Fields, Mode, Out, PLAIN, Table, ago, arr, cell, col, emit, flex_col, float, int, issue_no,
    num_col, opt, priority_label, priority_style, s, status_style, timestamp, truncate, wrap,
};

pub const LIST_EXAMPLES: &str = "\
Examples:
  loop list                                   open issues (triage, backlog, todo, in progress)
  loop list --status todo --type task,plan --priority high
  loop list --status all --project Web --label bug --limit 100
  loop list --parent 12                       the children of #12
  loop list --plain | cut -f1                 numbers only (columns: number, status, priority,
                                              type, title, updated, id)";

pub const CREATE_EXAMPLES: &str = "\
Examples:
  loop create \"Fix login timeout\"                      a task, in triage
  loop create \"Fix login timeout\" --status todo --priority high --label bug
  git log -1 --format=%B | loop create \"Follow up\" --description-file -
  loop create \"Faster checkout\" --type hypothesis --hypothesis \"Caching cuts p95\" --confidence 0.7";

#[derive(Args, Debug)]
pub struct IssueArg {
    /// Issue number (42 or #42) or id.
    pub issue: IssueRef,
}

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// Statuses, comma-separated: triage, backlog, todo, in_progress, done, canceled; `open` is
    /// every status but done and canceled; `all` is every status.
    #[arg(long, short, value_enum, value_delimiter = ',', default_value = "open", hide_possible_values = true)]
    pub status: Vec<StatusArg>,
    /// Types, comma-separated.
    #[arg(long = "type", short = 't', value_enum, value_delimiter = ',')]
    pub types: Vec<TypeArg>,
    /// Only issues in this project (name or id).
    #[arg(long, short)]
    pub project: Option<String>,
    /// Only issues with this label (name or id).
    #[arg(long, short)]
    pub label: Option<String>,
    /// Only this priority: urgent, high, medium, low, none (or 1, 2, 3, 4, 0).
    #[arg(long, value_parser = parse_priority)]
    pub priority: Option<i64>,
    /// Only the children of this issue (number or id).
    #[arg(long)]
    pub parent: Option<IssueRef>,
    /// Only issues waiting for a not-before time (snoozed, or monitors before their window):
    /// true; or only the others: false.
    #[arg(long, value_name = "BOOL")]
    pub waiting: Option<bool>,
    /// How many to show (1–200).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub limit: u32,
    /// How many to skip (for the next page).
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
}

impl Default for ListArgs {
    fn default() -> Self {
        ListArgs {
            status: vec![StatusArg::Open],
            types: vec![],
            project: None,
            label: None,
            priority: None,
            parent: None,
            waiting: None,
            limit: 50,
            offset: 0,
        }
    }
}

#[derive(Args, Debug)]
#[command(after_help = "With --json: the issue as GET /api/issues/{id} returns it, plus `comments`, `sessions` \
                        and `events` (its history) as their endpoints return them.")]
pub struct ShowArgs {
    /// Issue number (42 or #42) or id.
    pub issue: IssueRef,
    /// How many history events to show (most recent last).
    #[arg(long, default_value_t = 20)]
    pub history: usize,
}

/// Fields shared by create and update.
#[derive(Args, Debug, Default)]
pub struct IssueFields {
    /// Description (Markdown).
    #[arg(long, short, conflicts_with = "description_file")]
    pub description: Option<String>,
    /// Read the description from a file; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub description_file: Option<String>,
    /// Priority: urgent, high, medium, low, none (or 1, 2, 3, 4, 0).
    #[arg(long, short, value_parser = parse_priority)]
    pub priority: Option<i64>,
    /// Status.
    #[arg(long, short, value_enum)]
    pub status: Option<SetStatus>,
    /// Project (name or id), or `none`.
    #[arg(long)]
    pub project: Option<String>,
    /// Parent issue (number or id), or `none`; issues nest one level deep.
    #[arg(long)]
    pub parent: Option<String>,
    /// Where a signal came from (e.g. posthog, sentry).
    #[arg(long)]
    pub signal_source: Option<String>,
    /// The signal's data, a JSON object.
    #[arg(long, value_parser = parse_object, value_name = "JSON")]
    pub signal_payload: Option<Value>,
    /// The hypothesis statement (for `--type hypothesis`).
    #[arg(long, value_name = "STATEMENT")]
    pub hypothesis: Option<String>,
    /// Confidence in the hypothesis, 0 to 1 (with --hypothesis).
    #[arg(long, requires = "hypothesis")]
    pub confidence: Option<f64>,
    /// Evidence for the hypothesis; repeat for more (with --hypothesis).
    #[arg(long, requires = "hypothesis")]
    pub evidence: Vec<String>,
    /// How the hypothesis will be validated (with --hypothesis).
    #[arg(long, requires = "hypothesis")]
    pub validation_criteria: Option<String>,
    /// What the hypothesis predicts (with --hypothesis).
    #[arg(long, requires = "hypothesis")]
    pub prediction: Option<String>,
    /// What Loop checks to validate the hypothesis by data, as "METRIC OP THRESHOLD within
    /// HOURSh" (OP one of >= > <= <), e.g. "conversion_rate >= 3.3 within 48h" (with --hypothesis).
    #[arg(long, requires = "hypothesis", value_parser = parse_criteria, value_name = "CRITERIA")]
    pub criteria: Option<Value>,
}

/// "conversion_rate >= 3.3 within 48h" as the API's `criteria` object.
fn parse_criteria(raw: &str) -> Result<Value, String> {
    let usage = "expected \"METRIC OP THRESHOLD within HOURSh\", e.g. \"conversion_rate >= 3.3 within 48h\"";
    let words: Vec<&str> = raw.split_whitespace().collect();
    let [metric, op, threshold, within, window] = words[..] else { return Err(usage.into()) };
    let comparison = match op {
        ">=" => "gte",
        ">" => "gt",
        "<=" => "lte",
        "<" => "lt",
        _ => return Err(format!("{op:?} is not a comparison (>=, >, <= or <); {usage}")),
    };
    let threshold: f64 = threshold.parse().map_err(|_| format!("{threshold:?} is not a number; {usage}"))?;
    let hours: f64 = window
        .strip_suffix('h')
        .filter(|_| within == "within")
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| format!("{within} {window}: {usage}"))?;
    Ok(json!({ "metric": metric, "comparison": comparison, "threshold": threshold, "windowHours": hours }))
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Title (1–500 characters).
    pub title: String,
    /// Type.
    #[arg(long = "type", short = 't', value_enum, default_value = "task")]
    pub issue_type: TypeArg,
    /// A label (name or id); repeat for more.
    #[arg(long, short)]
    pub label: Vec<String>,
    #[command(flatten)]
    pub fields: IssueFields,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Issue number (42 or #42) or id.
    pub issue: IssueRef,
    /// New title.
    #[arg(long)]
    pub title: Option<String>,
    /// New type.
    #[arg(long = "type", short = 't', value_enum)]
    pub issue_type: Option<TypeArg>,
    /// Replace all labels with these (name or id; repeat for more).
    #[arg(long, short, conflicts_with_all = ["add_label", "remove_label"])]
    pub label: Vec<String>,
    /// Add a label (name or id); repeat for more.
    #[arg(long)]
    pub add_label: Vec<String>,
    /// Remove a label (name or id); repeat for more.
    #[arg(long)]
    pub remove_label: Vec<String>,
    /// The agent's summary of what was done.
    #[arg(long)]
    pub summary: Option<String>,
    #[command(flatten)]
    pub fields: IssueFields,
}

#[derive(Args, Debug)]
pub struct DoneArgs {
    /// Issue number (42 or #42) or id.
    pub issue: IssueRef,
    /// What was done (stored as the issue's agentSummary and its session's summary).
    #[arg(long, alias = "outcome")]
    pub summary: Option<String>,
    /// A commit that did it (added to the issue's commits; repeat for more): the changelog
    /// lists done issues with commits or pull requests.
    #[arg(long = "commit", value_name = "SHA")]
    pub commits: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CancelArgs {
    /// Issue number (42 or #42) or id.
    pub issue: IssueRef,
    /// Why (added as a comment).
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Args, Debug)]
pub struct BlockArgs {
    /// The blocking issue (number or id).
    pub blocker: IssueRef,
    /// The issue that must wait (number or id).
    pub blocked: IssueRef,
    /// block only: the blocker counts as finished when its pull request is merged, not when
    /// it is done, so the dependant starts on code that is on the base branch [default: the
    /// waiting issue's project's waitForMerge]
    #[arg(long)]
    pub until_merged: bool,
}

#[derive(Args, Debug)]
pub struct CommentArgs {
    /// Issue number (42 or #42) or id.
    pub issue: IssueRef,
    /// The comment (Markdown); `-` reads it from stdin.
    #[arg(required = true, num_args = 1..)]
    pub body: Vec<String>,
    /// Reply to this comment (id).
    #[arg(long, value_name = "COMMENT_ID")]
    pub reply_to: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// list

pub async fn list(a: ListArgs, ctx: &Ctx) -> Result<(), CliError> {
    let query = list_query(&a, &ctx.api).await?;
    let page = ctx.api.get(&format!("/api/issues?{query}")).await?;
    if ctx.out.mode == Mode::Json {
        emit(&output::json(&page));
        return Ok(());
    }
    let rows = arr(&page["data"]);
    let mut text = issue_table(rows, &ctx.out).render(&ctx.out);
    if ctx.out.human() {
        let total = page["total"].as_u64().unwrap_or(rows.len() as u64);
        text.push_str(&list_footer(&a, rows.len() as u64, total, &ctx.out));
    }
    emit(&text);
    Ok(())
}

async fn list_query(a: &ListArgs, api: &Api) -> Result<String, CliError> {
    let mut q = vec![format!("limit={}", a.limit), format!("offset={}", a.offset)];
    if !a.status.contains(&StatusArg::All) && !a.status.is_empty() {
        q.push(format!("status={}", a.status.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")));
    }
    if !a.types.is_empty() {
        q.push(format!("type={}", a.types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")));
    }
    if let Some(p) = &a.project {
        q.push(format!("projectId={}", seg(&api.project_id(p).await?)));
    }
    if let Some(l) = &a.label {
        q.push(format!("labelId={}", seg(s(&api.label(l).await?, "id"))));
    }
    if let Some(p) = a.priority {
        q.push(format!("priority={p}"));
    }
    if let Some(p) = &a.parent {
        let parent = api.issue(p).await?;
        q.push(format!("parentId={}", seg(s(&parent, "id"))));
    }
    if let Some(w) = a.waiting {
        q.push(format!("waiting={w}"));
    }
    Ok(q.join("&"))
}

fn list_footer(a: &ListArgs, shown: u64, total: u64, out: &Out) -> String {
    let what = if a.status.contains(&StatusArg::All) {
        String::new()
    } else {
        a.status.iter().map(|s| s.as_str().replace('_', " ")).collect::<Vec<_>>().join("/") + " "
    };
    let line = if total == 0 {
        if a.offset > 0 {
            format!("No {what}issues past offset {}.", a.offset)
        } else if a.status == [StatusArg::Triage] && a.types.is_empty() && a.label.is_none() {
            "Nothing in triage. Signals land here: loop signal \"<what happened>\"".into()
        } else if a.status == [StatusArg::Open] && a.types.is_empty() && a.project.is_none() && a.label.is_none() {
            "No open issues. Create one: loop create \"<title>\"   (or see closed ones: loop list --status all)".into()
        } else {
            format!("No {what}issues match.")
        }
    } else if shown == 0 {
        format!("Nothing at offset {}: {total} {what}issue{} in all.", a.offset, if total == 1 { "" } else { "s" })
    } else if a.offset == 0 && shown == total {
        format!("{total} {what}issue{}", if total == 1 { "" } else { "s" })
    } else {
        let from = a.offset + 1;
        let to = a.offset + shown;
        let next = if to < total { format!(" · next page: --offset {to}") } else { String::new() };
        format!("{from}–{to} of {total} {what}issues{next}")
    };
    out.note(&line, 0)
}

/// The standard issue table; plain columns: number, status, priority, type, title, updated, id.
pub fn issue_table(rows: &[Value], out: &Out) -> Table {
    let mut t = if out.human() {
        let mut cols = vec![num_col("#"), col("STATUS"), col("PRIORITY"), col("TYPE"), flex_col("TITLE")];
        if show_updated(out) {
            cols.push(col("UPDATED"));
        }
        Table::new(cols)
    } else {
        Table::new(vec![col("#"), col("STATUS"), col("PRIORITY"), col("TYPE"), col("TITLE"), col("UPDATED"), col("ID")])
    };
    for i in rows {
        t.row(issue_row(i, out));
    }
    t
}

pub fn issue_row(i: &Value, out: &Out) -> Vec<Cell> {
    let prio = int(i, "priority").unwrap_or(0);
    let status = s(i, "status");
    let mut row = vec![
        cell(int(i, "number").map(|n| n.to_string()).unwrap_or_default(), BOLD),
        cell(status, status_style(status)),
        cell(priority_label(prio), priority_style(prio)),
        cell(s(i, "type"), PLAIN),
        cell(s(i, "title"), if status == "done" || status == "canceled" { DIM } else { PLAIN }),
    ];
    if out.human() {
        if show_updated(out) {
            row.push(cell(ago(s(i, "updatedAt")), DIM));
        }
    } else {
        row.push(s(i, "updatedAt").into());
        row.push(s(i, "id").into());
    }
    row
}

/// Narrow terminals give the title the room the UPDATED column would take.
fn show_updated(out: &Out) -> bool {
    out.width >= 90
}

/// One issue after a change: a sentence for people, the issue's JSON, or its plain row.
pub fn print_issue_result(issue: &Value, sentence: String, extra: &str, out: &Out) {
    match out.mode {
        Mode::Json => emit(&output::json(issue)),
        Mode::Plain => emit(&issue_table(std::slice::from_ref(issue), out).render(out)),
        Mode::Human => {
            let mut s = sentence;
            s.push('\n');
            s.push_str(extra);
            emit(&s);
        }
    }
}

/// `#42 Fix login timeout`, bold number.
pub fn issue_title(i: &Value, out: &Out) -> String {
    format!("{} {}", out.bold(&issue_no(i)), s(i, "title"))
}

/// `todo · high · task`.
fn issue_badges(i: &Value, out: &Out) -> String {
    let status = s(i, "status");
    let prio = int(i, "priority").unwrap_or(0);
    format!(
        "{} · {} · {}",
        out.paint(status_style(status), status),
        out.paint(priority_style(prio), priority_label(prio)),
        s(i, "type")
    )
}

// ---------------------------------------------------------------------------------------------
// show

pub async fn show(a: ShowArgs, ctx: &Ctx) -> Result<(), CliError> {
    let detail = ctx.api.issue(&a.issue).await?;
    if ctx.out.mode == Mode::Plain {
        emit(&issue_fields(&detail, None, &ctx.out).render(&ctx.out));
        return Ok(());
    }
    let id = opt(&detail, "id").unwrap_or(a.issue.key());
    let path = format!("/api/issues/{}", seg(id));
    let api = &ctx.api;
    let (c, ss, ev) = (format!("{path}/comments"), format!("{path}/sessions"), format!("{path}/events?limit=200"));
    let (comments, sessions, events) = tokio::join!(api.get(&c), api.get(&ss), api.get(&ev));
    let comments = data(comments?);
    // Older servers have no sessions or history: show the rest.
    let sessions = sessions.map(data).unwrap_or(Value::Array(vec![]));
    let events = events.map(data).unwrap_or(Value::Array(vec![]));

    match ctx.out.mode {
        Mode::Json => {
            let mut v = detail.clone();
            if let Value::Object(m) = &mut v {
                m.insert("comments".into(), comments);
                m.insert("sessions".into(), sessions);
                m.insert("events".into(), events);
            }
            emit(&output::json(&v));
        }
        _ => {
            let related = related_issues(api, &detail).await;
            let project = match opt(&detail, "projectId") {
                Some(p) => api.get(&format!("/api/projects/{}", seg(p))).await.ok().map(data),
                None => None,
            };
            emit(&render_show(&detail, &related, project.as_ref(), &comments, &sessions, &events, a.history, &ctx.out));
        }
    }
    Ok(())
}

/// The issues on the other end of this issue's relations, by id.
async fn related_issues(api: &Api, detail: &Value) -> HashMap<String, Value> {
    let me = s(detail, "id");
    let mut ids: Vec<String> = arr(&detail["relations"])
        .iter()
        .map(|r| if s(r, "issueId") == me { s(r, "relatedIssueId") } else { s(r, "issueId") }.to_owned())
        .filter(|id| !id.is_empty())
        .collect();
    ids.sort();
    ids.dedup();
    let mut set = JoinSet::new();
    for id in ids {
        let api = api.clone();
        set.spawn(async move {
            let r: IssueRef = id.parse().expect("ids are references");
            (id, api.issue(&r).await.ok())
        });
    }
    let mut out = HashMap::new();
    while let Some(Ok((id, issue))) = set.join_next().await {
        if let Some(i) = issue {
            out.insert(id, i);
        }
    }
    out
}

fn issue_fields(i: &Value, project: Option<&Value>, out: &Out) -> Fields {
    let mut f = Fields::new();
    let status = s(i, "status");
    let prio = int(i, "priority").unwrap_or(0);
    if !out.human() {
        f.add("number", int(i, "number").map(|n| n.to_string()).unwrap_or_default());
        f.add("title", s(i, "title"));
        f.add("status", status);
        f.add("priority", priority_label(prio));
        f.add("type", s(i, "type"));
    }
    f.add("id", s(i, "id"));
    match project {
        Some(p) if out.human() => f.add("project", s(p, "name")),
        _ => f.add("project", s(i, "projectId")),
    }
    if let Some(p) = i.get("parent").filter(|p| p.is_object() && out.human()) {
        f.add("parent", format!("{} {} ({})", issue_no(p), s(p, "title"), s(p, "status")));
    } else {
        f.add("parent", s(i, "parentId"));
    }
    let labels: Vec<&str> = arr(&i["labels"]).iter().map(|l| s(l, "name")).collect();
    f.add("labels", labels.join(", "));
    if let Some(src) = opt(i, "signalSource") {
        f.add("signal", src);
    }
    if let Some(n) = int(i, "occurrences") {
        let last = s(i, "lastSeenAt");
        let when = if last.is_empty() { String::new() } else { format!(", last {}", ago(last)) };
        f.add("seen", format!("{n} time{}{when}", if n == 1 { "" } else { "s" }));
    }
    let time = |k: &str| {
        let t = s(i, k);
        if t.is_empty() {
            String::new()
        } else if out.human() {
            format!("{} ({})", ago(t), timestamp(t))
        } else {
            t.to_owned()
        }
    };
    f.add("created", time("createdAt"));
    f.add("updated", time("updatedAt"));
    f.add("completed", time("completedAt"));
    if !out.human() {
        f.add("summary", s(i, "agentSummary"));
    }
    f
}

#[allow(clippy::too_many_arguments)]
fn render_show(
    i: &Value,
    related: &HashMap<String, Value>,
    project: Option<&Value>,
    comments: &Value,
    sessions: &Value,
    events: &Value,
    history: usize,
    out: &Out,
) -> String {
    let mut o = String::new();
    let w = out.width;
    o.push_str(&out.para(&issue_title(i, out), 0, PLAIN));
    let _ = writeln!(o, "{}", issue_badges(i, out));
    o.push('\n');
    o.push_str(&issue_fields(i, project, out).render(out));

    if let Some(d) = opt(i, "description") {
        let _ = writeln!(o, "\n{}", out.heading("Description"));
        o.push_str(&wrap(d, w, 2));
    }
    if let Some(h) = i.get("hypothesis").filter(|h| h.is_object()) {
        let _ = writeln!(o, "\n{}", out.heading("Hypothesis"));
        o.push_str(&wrap(s(h, "statement"), w, 2));
        let mut f = Fields::new();
        if let Some(c) = float(h, "confidence") {
            f.add("confidence", output::number(c));
        }
        for e in arr(&h["evidence"]) {
            f.add("evidence", e.as_str().unwrap_or_default());
        }
        f.add("validation", s(h, "validationCriteria"));
        f.add("prediction", s(h, "prediction"));
        if let Some(c) = h.get("criteria").filter(|c| c.is_object()) {
            let op = match s(c, "comparison") {
                "gte" => ">=",
                "gt" => ">",
                "lte" => "<=",
                _ => "<",
            };
            let window = format!("{} within {}h", c["threshold"], c["windowHours"]);
            f.add("criteria", format!("{} {op} {window}", s(c, "metric")));
        }
        f.add("status", s(h, "status"));
        f.add("observe until", s(h, "observeUntil"));
        f.add("outcome", s(h, "outcome"));
        o.push_str(&indent(&f.render(out), 2));
    }
    if let Some(p) = i.get("signalPayload").filter(|p| p.is_object()) {
        let _ = writeln!(o, "\n{}", out.heading("Signal payload"));
        let text = serde_json::to_string_pretty(p).unwrap_or_default();
        for line in text.lines().take(20) {
            let _ = writeln!(o, "  {}", truncate(line, w.saturating_sub(2)));
        }
    }
    if let Some(sum) = opt(i, "agentSummary") {
        let _ = writeln!(o, "\n{}", out.heading("Summary"));
        o.push_str(&wrap(sum, w, 2));
    }
    let commits = arr(&i["commits"]);
    let prs = arr(&i["pullRequests"]);
    if !commits.is_empty() || !prs.is_empty() {
        let _ = writeln!(o, "\n{}", out.heading("Commits and pull requests"));
        for c in commits {
            let sha: String = s(c, "sha").chars().take(10).collect();
            let _ = writeln!(o, "  {}  {}", out.paint(output::YELLOW, &sha), truncate(s(c, "message"), w - 14));
        }
        for p in prs {
            let num = int(p, "number").map(|n| format!("PR #{n}")).unwrap_or_default();
            let _ = writeln!(o, "  {}  {}  {}", out.bold(&num), s(p, "title"), out.dim(s(p, "url")));
        }
    }

    let children = arr(&i["children"]);
    if !children.is_empty() {
        let _ = writeln!(o, "\n{}", out.heading(&format!("Children ({})", children.len())));
        let mut t = Table::new(vec![num_col("#"), col("STATUS"), col("PRIORITY"), flex_col("TITLE")]).indent(2);
        for c in children {
            let prio = int(c, "priority").unwrap_or(0);
            t.row(vec![
                cell(int(c, "number").map(|n| n.to_string()).unwrap_or_default(), BOLD),
                cell(s(c, "status"), status_style(s(c, "status"))),
                cell(priority_label(prio), priority_style(prio)),
                s(c, "title").into(),
            ]);
        }
        o.push_str(&t.render(out));
    }

    let relations = arr(&i["relations"]);
    if !relations.is_empty() {
        let _ = writeln!(o, "\n{}", out.heading("Relations"));
        let me = s(i, "id");
        let mut t = Table::new(vec![col("RELATION"), num_col("#"), col("STATUS"), flex_col("TITLE")]).indent(2);
        for r in relations {
            let (verb, other) = relation_from(r, me);
            let other_issue = related.get(other);
            let status = other_issue.map(|x| s(x, "status")).unwrap_or("");
            let open_blocker = verb == "blocked by" && !matches!(status, "done" | "canceled" | "");
            t.row(vec![
                cell(verb, if open_blocker { output::RED } else { PLAIN }),
                cell(other_issue.and_then(|x| int(x, "number")).map(|n| n.to_string()).unwrap_or_default(), BOLD),
                cell(status, status_style(status)),
                other_issue.map(|x| s(x, "title").to_owned()).unwrap_or_else(|| other.to_owned()).into(),
            ]);
        }
        o.push_str(&t.render(out));
    }

    let sessions = arr(sessions);
    if !sessions.is_empty() {
        let _ = writeln!(o, "\n{}", out.heading(&format!("Sessions ({})", sessions.len())));
        let mut t = Table::new(vec![col("AGENT"), col("CLAIMED"), col("OUTCOME"), flex_col("SUMMARY")]).indent(2);
        for sess in sessions {
            t.row(session_row(sess));
        }
        o.push_str(&t.render(out));
    }

    let comments = arr(comments);
    if !comments.is_empty() {
        let _ = writeln!(o, "\n{}", out.heading(&format!("Comments ({})", count_comments(comments))));
        for c in comments {
            render_comment(c, 2, &mut o, out);
        }
    }

    let events = arr(events);
    if !events.is_empty() && history > 0 {
        let shown = &events[events.len().saturating_sub(history)..];
        let title = if shown.len() < events.len() {
            format!("History (last {} of {}; --history N for more)", shown.len(), events.len())
        } else {
            "History".to_owned()
        };
        let _ = writeln!(o, "\n{}", out.heading(&title));
        let mut t = Table::new(vec![col("WHEN"), col("WHO"), flex_col("WHAT")]).indent(2);
        for e in shown {
            t.row(vec![cell(ago(s(e, "createdAt")), DIM), s(e, "actor").into(), describe_event(e, i, related).into()]);
        }
        o.push_str(&t.render(out));
    }
    o
}

fn indent(text: &str, n: usize) -> String {
    text.lines().map(|l| format!("{}{l}\n", " ".repeat(n))).collect()
}

/// The relation seen from issue `me`: ("blocks", other id), ("blocked by", …), …
fn relation_from<'a>(r: &'a Value, me: &str) -> (&'static str, &'a str) {
    let outgoing = s(r, "issueId") == me;
    let other = if outgoing { s(r, "relatedIssueId") } else { s(r, "issueId") };
    let verb = match (s(r, "type"), outgoing) {
        ("blocks", true) | ("blocked_by", false) => "blocks",
        ("blocks", false) | ("blocked_by", true) => "blocked by",
        ("duplicate", true) => "duplicates",
        ("duplicate", false) => "duplicated by",
        _ => "related to",
    };
    (verb, other)
}

pub fn session_row(sess: &Value) -> Vec<Cell> {
    let outcome = match opt(sess, "outcome") {
        Some(o) => cell(o, status_style(o)),
        None => cell(format!("open, lease {}", ago(s(sess, "leaseExpiresAt"))), output::YELLOW),
    };
    vec![s(sess, "agent").into(), cell(ago(s(sess, "claimedAt")), DIM), outcome, s(sess, "summary").into()]
}

fn count_comments(list: &[Value]) -> usize {
    list.iter().map(|c| 1 + count_comments(arr(&c["replies"]))).sum()
}

fn render_comment(c: &Value, depth: usize, o: &mut String, out: &Out) {
    let pad = " ".repeat(depth);
    let marker = if depth > 2 { "↳ " } else { "" };
    let _ = writeln!(
        o,
        "{pad}{marker}{} {}",
        out.bold(s(c, "authorName")),
        out.dim(&format!("({}) · {}", s(c, "authorType"), ago(s(c, "createdAt"))))
    );
    o.push_str(&wrap(s(c, "body"), out.width, depth + if depth > 2 { 4 } else { 2 }));
    for r in arr(&c["replies"]) {
        render_comment(r, depth + 2, o, out);
    }
}

/// One history event in words.
fn describe_event(e: &Value, issue: &Value, related: &HashMap<String, Value>) -> String {
    let d = &e["data"];
    let name_of = |id: &str| -> String {
        if id == s(issue, "id") {
            issue_no(issue)
        } else if let Some(x) = related.get(id) {
            issue_no(x)
        } else {
            id.chars().take(8).collect()
        }
    };
    let compact = |v: &Value| -> String {
        match v {
            Value::Null => "—".into(),
            Value::String(s) => truncate(&output::one_line(s), 40),
            other => truncate(&other.to_string(), 40),
        }
    };
    match s(e, "kind") {
        "created" => "created".into(),
        "status_changed" => format!("status {} → {}", s(d, "from"), s(d, "to")),
        "field_changed" => {
            let field = s(d, "field");
            if field == "priority" {
                let p = |v: &Value| priority_label(v.as_i64().unwrap_or(0)).to_owned();
                format!("priority {} → {}", p(&d["from"]), p(&d["to"]))
            } else if field == "description" || field == "agentSummary" {
                format!("{field} changed")
            } else {
                format!("{field} {} → {}", compact(&d["from"]), compact(&d["to"]))
            }
        }
        "label_added" => format!("label +{}", s(d, "name")),
        "label_removed" => format!("label −{}", s(d, "name")),
        k @ ("relation_added" | "relation_removed") => {
            let verb = match s(d, "type") {
                "blocks" => "blocks",
                "blocked_by" => "blocked by",
                "duplicate" => "duplicates",
                _ => "related to",
            };
            let what = format!("{} {verb} {}", name_of(s(d, "issueId")), name_of(s(d, "relatedIssueId")));
            if k == "relation_added" { what } else { format!("removed: {what}") }
        }
        "comment_added" => format!("comment by {}", s(d, "author")),
        "deleted" => "deleted".into(),
        "claimed" => format!("claimed by {} (lease until {})", s(d, "agent"), timestamp(s(d, "leaseExpiresAt"))),
        "session_ended" => format!("session ended: {}", s(d, "outcome")),
        other => format!("{other} {}", compact(d)),
    }
}

// ---------------------------------------------------------------------------------------------
// create / update

/// Puts the shared fields into a request body. `patch` allows `none` to clear references.
async fn apply_fields(f: &IssueFields, body: &mut Map<String, Value>, api: &Api) -> Result<(), CliError> {
    let description = match (&f.description, &f.description_file) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(path)) => Some(read_text(path, "description")?.trim_end().to_owned()),
        _ => None,
    };
    if let Some(d) = description {
        body.insert("description".into(), json!(d));
    }
    if let Some(p) = f.priority {
        body.insert("priority".into(), json!(p));
    }
    if let Some(st) = f.status {
        body.insert("status".into(), json!(st.as_str()));
    }
    if let Some(p) = &f.project {
        let v = if is_none(p) { Value::Null } else { json!(api.project_id(p).await?) };
        body.insert("projectId".into(), v);
    }
    if let Some(p) = &f.parent {
        let v = if is_none(p) {
            Value::Null
        } else {
            let r: IssueRef = p.parse().map_err(CliError::usage)?;
            let parent = api.get(&issue_path(&r)).await.map(data).about(format!("parent issue {}", r.short()))?;
            json!(s(&parent, "id"))
        };
        body.insert("parentId".into(), v);
    }
    if let Some(src) = &f.signal_source {
        body.insert("signalSource".into(), json!(src));
    }
    if let Some(p) = &f.signal_payload {
        body.insert("signalPayload".into(), p.clone());
    }
    if let Some(st) = &f.hypothesis {
        let mut h = json!({ "statement": st, "confidence": f.confidence.unwrap_or(0.5), "evidence": f.evidence });
        if let Some(v) = &f.validation_criteria {
            h["validationCriteria"] = json!(v);
        }
        if let Some(p) = &f.prediction {
            h["prediction"] = json!(p);
        }
        if let Some(c) = &f.criteria {
            h["criteria"] = c.clone();
        }
        body.insert("hypothesis".into(), h);
    }
    Ok(())
}

fn is_none(s: &str) -> bool {
    matches!(s.trim().to_ascii_lowercase().as_str(), "none" | "null" | "")
}

async fn label_ids(api: &Api, names: &[String]) -> Result<Vec<String>, CliError> {
    let mut ids = Vec::new();
    for n in names {
        ids.push(s(&api.label(n).await?, "id").to_owned());
    }
    Ok(ids)
}

pub async fn create(a: CreateArgs, ctx: &Ctx) -> Result<(), CliError> {
    let mut body = Map::new();
    body.insert("title".into(), json!(a.title));
    body.insert("type".into(), json!(a.issue_type.as_str()));
    apply_fields(&a.fields, &mut body, &ctx.api).await?;
    if !a.label.is_empty() {
        body.insert("labelIds".into(), json!(label_ids(&ctx.api, &a.label).await?));
    }
    let issue = data(ctx.api.post("/api/issues", Value::Object(body)).await?);
    let n = int(&issue, "number").map(|n| n.to_string()).unwrap_or_else(|| s(&issue, "id").to_owned());
    let hint = match s(&issue, "status") {
        "triage" => {
            ctx.out.note(&format!("It waits in triage: loop triage accept {n}   (--todo to queue it for dispatch)"), 2)
        }
        "backlog" => ctx.out.note(&format!("To queue it for dispatch: loop update {n} --status todo"), 2),
        _ => String::new(),
    };
    print_issue_result(
        &issue,
        format!("Created {} ({})", issue_title(&issue, &ctx.out), issue_badges(&issue, &ctx.out)),
        &hint,
        &ctx.out,
    );
    Ok(())
}

pub async fn update(a: UpdateArgs, ctx: &Ctx) -> Result<(), CliError> {
    let mut body = Map::new();
    if let Some(t) = &a.title {
        body.insert("title".into(), json!(t));
    }
    if let Some(t) = a.issue_type {
        body.insert("type".into(), json!(t.as_str()));
    }
    if let Some(sum) = &a.summary {
        body.insert("agentSummary".into(), json!(sum));
    }
    apply_fields(&a.fields, &mut body, &ctx.api).await?;
    if !a.label.is_empty() {
        let ids =
            if a.label.len() == 1 && is_none(&a.label[0]) { vec![] } else { label_ids(&ctx.api, &a.label).await? };
        body.insert("labelIds".into(), json!(ids));
    } else if !a.add_label.is_empty() || !a.remove_label.is_empty() {
        let current = ctx.api.issue(&a.issue).await?;
        let mut ids: Vec<String> = arr(&current["labels"]).iter().map(|l| s(l, "id").to_owned()).collect();
        for id in label_ids(&ctx.api, &a.add_label).await? {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let remove = label_ids(&ctx.api, &a.remove_label).await?;
        ids.retain(|id| !remove.contains(id));
        body.insert("labelIds".into(), json!(ids));
    }
    if body.is_empty() {
        return Err(CliError::usage(
            "nothing to change: give at least one of --title, --description, --status, --priority, --type, \
             --project, --parent, --label, --add-label, --remove-label, --summary (see loop update --help)",
        ));
    }
    let changed: Vec<String> = body.keys().map(|k| field_name(k).to_owned()).collect();
    let issue = data(ctx.api.patch(&issue_path(&a.issue), Value::Object(body)).await.about(a.issue.label())?);
    print_issue_result(
        &issue,
        format!(
            "Updated {} ({}): {}",
            issue_title(&issue, &ctx.out),
            issue_badges(&issue, &ctx.out),
            changed.join(", ")
        ),
        "",
        &ctx.out,
    );
    Ok(())
}

fn field_name(api_field: &str) -> &str {
    match api_field {
        "parentId" => "parent",
        "projectId" => "project",
        "labelIds" => "labels",
        "agentSummary" => "summary",
        "signalSource" => "signal source",
        "signalPayload" => "signal payload",
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// lifecycle

async fn set_status(r: &IssueRef, body: Value, ctx: &Ctx) -> Result<Value, CliError> {
    ctx.api.patch(&issue_path(r), body).await.about(r.label()).map(data)
}

pub async fn start(a: IssueArg, ctx: &Ctx) -> Result<(), CliError> {
    let issue = set_status(&a.issue, json!({ "status": "in_progress" }), ctx).await?;
    print_issue_result(&issue, format!("Started {}", issue_title(&issue, &ctx.out)), "", &ctx.out);
    Ok(())
}

pub async fn done(a: DoneArgs, ctx: &Ctx) -> Result<(), CliError> {
    let before = ctx.api.issue(&a.issue).await?;
    let mut body = json!({ "status": "done" });
    if let Some(sum) = &a.summary {
        body["agentSummary"] = json!(sum);
    }
    if !a.commits.is_empty() {
        let mut commits = arr(&before["commits"]).to_vec();
        commits.extend(a.commits.iter().map(|sha| json!({ "sha": sha })));
        body["commits"] = json!(commits);
    }
    let issue = set_status(&a.issue, body, ctx).await?;
    let mut extra = String::new();
    if ctx.out.human() {
        // What finishing this unblocked.
        let me = s(&before, "id");
        for r in arr(&before["relations"]) {
            let (verb, other) = relation_from(r, me);
            if verb != "blocks" {
                continue;
            }
            if let Ok(x) = ctx.api.get(&format!("/api/dispatch/explain/{}", seg(other))).await.map(data) {
                let i = &x["issue"];
                if x["eligible"].as_bool() == Some(true) {
                    let _ = writeln!(extra, "  Unblocked {}: ready to dispatch", issue_title(i, &ctx.out));
                } else if s(i, "status") != "done" && s(i, "status") != "canceled" {
                    let _ = writeln!(
                        extra,
                        "  {} is no longer blocked by it ({})",
                        issue_title(i, &ctx.out),
                        s(i, "status")
                    );
                }
            }
        }
    }
    print_issue_result(&issue, format!("Done: {}", issue_title(&issue, &ctx.out)), &extra, &ctx.out);
    Ok(())
}

pub async fn cancel(a: CancelArgs, ctx: &Ctx) -> Result<(), CliError> {
    let issue = set_status(&a.issue, json!({ "status": "canceled" }), ctx).await?;
    if let Some(reason) = &a.reason {
        post_comment(&ctx.api, s(&issue, "id"), &format!("Canceled: {reason}"), None).await?;
    }
    print_issue_result(&issue, format!("Canceled {}", issue_title(&issue, &ctx.out)), "", &ctx.out);
    Ok(())
}

pub async fn delete(a: IssueArg, ctx: &Ctx) -> Result<(), CliError> {
    let issue = ctx.api.issue(&a.issue).await?;
    ctx.api.delete(&format!("/api/issues/{}", seg(s(&issue, "id")))).await.about(a.issue.label())?;
    match ctx.out.mode {
        Mode::Json => emit(&output::json(&json!({ "id": issue["id"], "number": issue["number"], "deleted": true }))),
        Mode::Plain => emit(&format!("{}\t{}\tdeleted", int(&issue, "number").unwrap_or(0), s(&issue, "id"))),
        Mode::Human => emit(&format!("Deleted {}", issue_title(&issue, &ctx.out))),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// relations and comments

pub async fn block(a: BlockArgs, ctx: &Ctx) -> Result<(), CliError> {
    let (blocker, blocked) = tokio::join!(ctx.api.issue(&a.blocker), ctx.api.issue(&a.blocked));
    let (blocker, blocked) = (blocker?, blocked?);
    let rel = data(
        ctx.api
            .post(
                &format!("/api/issues/{}/relations", seg(s(&blocker, "id"))),
                if a.until_merged {
                    json!({ "type": "blocks", "relatedIssueId": s(&blocked, "id"), "untilMerged": true })
                } else {
                    json!({ "type": "blocks", "relatedIssueId": s(&blocked, "id") })
                },
            )
            .await?,
    );
    let waits = rel["untilMerged"] == true;
    let until = if waits { "its pull request is merged (or it is canceled)" } else { "done or canceled" };
    match ctx.out.mode {
        Mode::Json => emit(&output::json(&rel)),
        Mode::Plain => emit(&format!("{}\t{}\tblocks\t{}", s(&rel, "id"), issue_no(&blocker), issue_no(&blocked))),
        Mode::Human => emit(&format!(
            "{} now blocks {}\n{}",
            issue_title(&blocker, &ctx.out),
            issue_title(&blocked, &ctx.out),
            ctx.out
                .note(&format!("{} is not dispatched until {} is {until}.", issue_no(&blocked), issue_no(&blocker)), 2)
        )),
    }
    Ok(())
}

pub async fn unblock(a: BlockArgs, ctx: &Ctx) -> Result<(), CliError> {
    let (blocker, blocked) = tokio::join!(ctx.api.issue(&a.blocker), ctx.api.issue(&a.blocked));
    let (blocker, blocked) = (blocker?, blocked?);
    let (a_id, b_id) = (s(&blocker, "id"), s(&blocked, "id"));
    let rel = arr(&blocker["relations"]).iter().find(|r| {
        let (t, from, to) = (s(r, "type"), s(r, "issueId"), s(r, "relatedIssueId"));
        (t == "blocks" && from == a_id && to == b_id) || (t == "blocked_by" && from == b_id && to == a_id)
    });
    let Some(rel) = rel.cloned() else {
        return Err(CliError::failed(format!("{} does not block {}", issue_no(&blocker), issue_no(&blocked))));
    };
    ctx.api.delete(&format!("/api/relations/{}", seg(s(&rel, "id")))).await.about("relation")?;
    match ctx.out.mode {
        Mode::Json => emit(&output::json(&rel)),
        Mode::Plain => emit(&format!("{}\t{}\tunblocked\t{}", s(&rel, "id"), issue_no(&blocker), issue_no(&blocked))),
        Mode::Human => {
            emit(&format!("{} no longer blocks {}", issue_title(&blocker, &ctx.out), issue_title(&blocked, &ctx.out)))
        }
    }
    Ok(())
}

pub async fn post_comment(api: &Api, issue_id: &str, body: &str, parent: Option<&str>) -> Result<Value, CliError> {
    let mut req = json!({ "body": body, "authorType": "human", "authorName": author_name() });
    if let Some(p) = parent {
        req["parentId"] = json!(p);
    }
    api.post(&format!("/api/issues/{}/comments", seg(issue_id)), req).await.map(data)
}

pub async fn comment(a: CommentArgs, ctx: &Ctx) -> Result<(), CliError> {
    let text = if a.body == ["-"] { read_text("-", "comment")? } else { a.body.join(" ") };
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(CliError::usage("the comment is empty"));
    }
    let c = post_comment(&ctx.api, a.issue.key(), &text, a.reply_to.as_deref()).await.about(a.issue.label())?;
    match ctx.out.mode {
        Mode::Json => emit(&output::json(&c)),
        Mode::Plain => emit(&format!("{}\t{}", s(&c, "id"), a.issue.short())),
        Mode::Human => emit(&format!("Commented on {} as {}", ctx.out.bold(&a.issue.short()), s(&c, "authorName"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_read_from_either_end() {
        let r = json!({"type": "blocks", "issueId": "a", "relatedIssueId": "b"});
        assert_eq!(relation_from(&r, "a"), ("blocks", "b"));
        assert_eq!(relation_from(&r, "b"), ("blocked by", "a"));
        let r = json!({"type": "blocked_by", "issueId": "a", "relatedIssueId": "b"});
        assert_eq!(relation_from(&r, "a"), ("blocked by", "b"));
        assert_eq!(relation_from(&r, "b"), ("blocks", "a"));
    }
}
