//! Projects, goals (with progress bars) and labels: list, show, create, update, delete.

use std::fmt::Write as _;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

use super::Ctx;
use super::api::{data, seg};
use super::error::{About, CliError};
use super::output::{
    self, BOLD, Fields, Mode, Out, PLAIN, Table, arr, bar, cell, col, emit, flex_col, float, opt, s, status_style,
};

// ---------------------------------------------------------------------------------------------
// Projects

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProjectStatus {
    Backlog,
    Planned,
    Active,
    Paused,
    Completed,
    Canceled,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Health {
    #[value(name = "on_track", alias = "on-track")]
    OnTrack,
    #[value(name = "at_risk", alias = "at-risk")]
    AtRisk,
    #[value(name = "off_track", alias = "off-track")]
    OffTrack,
}

fn enum_str<T: ValueEnum>(v: T) -> String {
    v.to_possible_value().map(|p| p.get_name().to_owned()).unwrap_or_default()
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ProjectsArgs {
    #[command(subcommand)]
    pub action: Option<ProjectAction>,
    #[command(flatten)]
    pub page: Page,
}

#[derive(Args, Debug, Clone, Copy)]
pub struct Page {
    /// How many to show (1–200).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub limit: u32,
    /// How many to skip.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
}

impl Page {
    fn query(&self) -> String {
        format!("limit={}&offset={}", self.limit, self.offset)
    }
}

#[derive(Args, Debug)]
pub struct ProjectFields {
    /// Description.
    #[arg(long, short)]
    pub description: Option<String>,
    /// Status.
    #[arg(long, short, value_enum)]
    pub status: Option<ProjectStatus>,
    /// Health.
    #[arg(long, value_enum)]
    pub health: Option<Health>,
    /// The goal it works toward (id or title), or `none`.
    #[arg(long)]
    pub goal: Option<String>,
    /// New blocks on its issues wait for the blocker's pull request to be merged, not only
    /// done (true or false).
    #[arg(long, value_name = "BOOL")]
    pub wait_for_merge: Option<bool>,
}

#[derive(Subcommand, Debug)]
pub enum ProjectAction {
    /// List projects (the default).
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        page: Page,
    },
    /// A project with its goal and issue counts per status.
    Show {
        /// Name or id.
        project: String,
    },
    /// Create a project.
    #[command(after_help = "Example:\n  loop projects create Web --status active --goal \"Checkout p95 < 1s\"")]
    Create {
        /// Name.
        name: String,
        #[command(flatten)]
        fields: ProjectFields,
    },
    /// Change a project.
    Update {
        /// Name or id.
        project: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        fields: ProjectFields,
    },
    /// Delete a project (its issues stay).
    Delete {
        /// Name or id.
        project: String,
    },
}

pub async fn projects(a: ProjectsArgs, ctx: &Ctx) -> Result<(), CliError> {
    match a.action {
        None => list_projects(a.page, ctx).await,
        Some(ProjectAction::List { page }) => list_projects(page, ctx).await,
        Some(ProjectAction::Show { project }) => {
            let p = ctx.api.project(&project).await?;
            let detail = data(ctx.api.get(&format!("/api/projects/{}", seg(s(&p, "id")))).await.about("project")?);
            match ctx.out.mode {
                Mode::Json => emit(&output::json(&detail)),
                _ => emit(&render_project(&detail, &ctx.out)),
            }
            Ok(())
        }
        Some(ProjectAction::Create { name, fields }) => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            project_fields(&fields, &mut body, ctx).await?;
            let p = data(ctx.api.post("/api/projects", Value::Object(body)).await?);
            done(&p, format!("Created project {} ({})", ctx.out.bold(s(&p, "name")), s(&p, "id")), ctx);
            Ok(())
        }
        Some(ProjectAction::Update { project, name, fields }) => {
            let p = ctx.api.project(&project).await?;
            let mut body = Map::new();
            if let Some(n) = name {
                body.insert("name".into(), json!(n));
            }
            project_fields(&fields, &mut body, ctx).await?;
            if body.is_empty() {
                return Err(CliError::usage(
                    "nothing to change: give --name, --description, --status, --health, --goal or --wait-for-merge",
                ));
            }
            let p = data(ctx.api.patch(&format!("/api/projects/{}", seg(s(&p, "id"))), Value::Object(body)).await?);
            done(&p, format!("Updated project {}", ctx.out.bold(s(&p, "name"))), ctx);
            Ok(())
        }
        Some(ProjectAction::Delete { project }) => {
            let p = ctx.api.project(&project).await?;
            ctx.api.delete(&format!("/api/projects/{}", seg(s(&p, "id")))).await.about("project")?;
            deleted(&p, format!("Deleted project {}", ctx.out.bold(s(&p, "name"))), ctx);
            Ok(())
        }
    }
}

async fn project_fields(f: &ProjectFields, body: &mut Map<String, Value>, ctx: &Ctx) -> Result<(), CliError> {
    if let Some(d) = &f.description {
        body.insert("description".into(), json!(d));
    }
    if let Some(st) = f.status {
        body.insert("status".into(), json!(enum_str(st)));
    }
    if let Some(h) = f.health {
        body.insert("health".into(), json!(enum_str(h)));
    }
    if let Some(g) = &f.goal {
        let v = if g.eq_ignore_ascii_case("none") { Value::Null } else { json!(s(&ctx.api.goal(g).await?, "id")) };
        body.insert("goalId".into(), v);
    }
    if let Some(w) = f.wait_for_merge {
        body.insert("waitForMerge".into(), json!(w));
    }
    Ok(())
}

async fn list_projects(page: Page, ctx: &Ctx) -> Result<(), CliError> {
    let list = ctx.api.get(&format!("/api/projects?{}", page.query())).await?;
    if ctx.out.mode == Mode::Json {
        emit(&output::json(&list));
        return Ok(());
    }
    // Goal titles for the GOAL column (the link goes either way: project.goalId or goal.projectId).
    let goals = ctx.api.all("/api/goals").await.unwrap_or_default();
    let rows = arr(&list["data"]);
    let mut t = if ctx.out.human() {
        Table::new(vec![flex_col("NAME"), col("STATUS"), col("HEALTH"), flex_col("GOAL")])
    } else {
        Table::new(vec![col("NAME"), col("STATUS"), col("HEALTH"), col("GOAL"), col("ID")])
    };
    for p in rows {
        let goal = goals
            .iter()
            .find(|g| opt(p, "goalId") == Some(s(g, "id")))
            .or_else(|| goals.iter().find(|g| s(g, "projectId") == s(p, "id") && s(g, "status") == "active"))
            .map(|g| s(g, "title").to_owned())
            .unwrap_or_default();
        let mut row = vec![
            cell(s(p, "name"), BOLD),
            cell(s(p, "status"), status_style(s(p, "status"))),
            cell(s(p, "health"), status_style(s(p, "health"))),
            goal.into(),
        ];
        if !ctx.out.human() {
            row.push(s(p, "id").into());
        }
        t.row(row);
    }
    let mut text = t.render(&ctx.out);
    if ctx.out.human() {
        text.push_str(&footer(rows.len(), &list, page, "project", "loop projects create <name>", &ctx.out));
    }
    emit(&text);
    Ok(())
}

fn footer(shown: usize, list: &Value, page: Page, what: &str, create: &str, out: &Out) -> String {
    let total = list["total"].as_u64().unwrap_or(shown as u64);
    let plural = |n: u64| if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") };
    let line = match total {
        0 => format!("No {what}s yet. Create one: {create}"),
        n if shown == 0 => format!("Nothing at offset {}: {} in all.", page.offset, plural(n)),
        n if n as usize == shown => plural(n),
        n => format!("{shown} of {n} {what}s (see --limit, --offset)"),
    };
    out.note(&line, 0)
}

fn render_project(p: &Value, out: &Out) -> String {
    let mut f = Fields::new();
    if !out.human() {
        f.add("name", s(p, "name"));
    }
    f.add("id", s(p, "id"));
    f.styled("status", s(p, "status"), status_style(s(p, "status")));
    f.styled("health", s(p, "health"), status_style(s(p, "health")));
    f.add("description", s(p, "description"));
    if let Some(g) = p.get("goal").filter(|g| g.is_object()) {
        f.add("goal", format!("{} {}", s(g, "title"), progress_text(g)));
    }
    let counts = p["issueCounts"].as_object().cloned().unwrap_or_default();
    let order = ["triage", "backlog", "todo", "in_progress", "done", "canceled"];
    let issues: Vec<String> = order
        .iter()
        .filter_map(|k| counts.get(*k).and_then(Value::as_u64).map(|n| format!("{n} {}", k.replace('_', " "))))
        .collect();
    f.add("issues", if issues.is_empty() { "none".into() } else { issues.join(" · ") });
    f.add("created", s(p, "createdAt"));
    let mut o = String::new();
    if out.human() {
        let _ = writeln!(o, "{}\n", out.bold(s(p, "name")));
    }
    o.push_str(&f.render(out));
    o
}

fn done(entity: &Value, sentence: String, ctx: &Ctx) {
    match ctx.out.mode {
        Mode::Json => emit(&output::json(entity)),
        Mode::Plain => emit(s(entity, "id")),
        Mode::Human => emit(&sentence),
    }
}

fn deleted(entity: &Value, sentence: String, ctx: &Ctx) {
    match ctx.out.mode {
        Mode::Json => emit(&output::json(&json!({ "id": entity["id"], "deleted": true }))),
        Mode::Plain => emit(&format!("{}\tdeleted", s(entity, "id"))),
        Mode::Human => emit(&sentence),
    }
}

// ---------------------------------------------------------------------------------------------
// Goals

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GoalStatus {
    Active,
    Achieved,
    Abandoned,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GoalsArgs {
    #[command(subcommand)]
    pub action: Option<GoalAction>,
    /// Only goals with this status.
    #[arg(long, short, value_enum)]
    pub status: Option<GoalStatus>,
    #[command(flatten)]
    pub page: Page,
}

#[derive(Args, Debug)]
pub struct GoalFields {
    /// Description.
    #[arg(long, short)]
    pub description: Option<String>,
    /// What is measured, e.g. "checkout p95 latency".
    #[arg(long)]
    pub metric: Option<String>,
    /// The value to reach.
    #[arg(long, allow_negative_numbers = true)]
    pub target: Option<f64>,
    /// The value now.
    #[arg(long, allow_negative_numbers = true)]
    pub current: Option<f64>,
    /// The unit, e.g. ms or %.
    #[arg(long)]
    pub unit: Option<String>,
    /// Status.
    #[arg(long, short, value_enum)]
    pub status: Option<GoalStatus>,
    /// The project it belongs to (name or id): its issues get the goal bonus in dispatch. Or `none`.
    #[arg(long, short)]
    pub project: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum GoalAction {
    /// List goals with their progress (the default).
    #[command(visible_alias = "ls")]
    List {
        /// Only goals with this status.
        #[arg(long, short, value_enum)]
        status: Option<GoalStatus>,
        #[command(flatten)]
        page: Page,
    },
    /// One goal.
    Show {
        /// Id or title.
        goal: String,
    },
    /// Create a goal.
    #[command(
        after_help = "Example:\n  loop goals create \"Checkout p95 < 1s\" --metric \"p95 latency\" --current 2300 --target 1000 --unit ms --project Web"
    )]
    Create {
        /// Title.
        title: String,
        #[command(flatten)]
        fields: GoalFields,
    },
    /// Change a goal, e.g. record progress with --current.
    Update {
        /// Id or title.
        goal: String,
        /// New title.
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        fields: GoalFields,
    },
    /// Delete a goal.
    Delete {
        /// Id or title.
        goal: String,
    },
}

pub async fn goals(a: GoalsArgs, ctx: &Ctx) -> Result<(), CliError> {
    match a.action {
        None => list_goals(a.status, a.page, ctx).await,
        Some(GoalAction::List { status, page }) => list_goals(status.or(a.status), page, ctx).await,
        Some(GoalAction::Show { goal }) => {
            let g = ctx.api.goal(&goal).await?;
            match ctx.out.mode {
                Mode::Json => emit(&output::json(&g)),
                _ => emit(&render_goal(&g, &ctx.out)),
            }
            Ok(())
        }
        Some(GoalAction::Create { title, fields }) => {
            let mut body = Map::new();
            body.insert("title".into(), json!(title));
            goal_fields(&fields, &mut body, ctx).await?;
            let g = data(ctx.api.post("/api/goals", Value::Object(body)).await?);
            done(&g, format!("Created goal {} {}", ctx.out.bold(s(&g, "title")), progress_text(&g)), ctx);
            Ok(())
        }
        Some(GoalAction::Update { goal, title, fields }) => {
            let g = ctx.api.goal(&goal).await?;
            let mut body = Map::new();
            if let Some(t) = title {
                body.insert("title".into(), json!(t));
            }
            goal_fields(&fields, &mut body, ctx).await?;
            if body.is_empty() {
                return Err(CliError::usage(
                    "nothing to change: give --title, --current, --target, --unit, --metric, --status, --project or --description",
                ));
            }
            let g = data(ctx.api.patch(&format!("/api/goals/{}", seg(s(&g, "id"))), Value::Object(body)).await?);
            done(&g, format!("Updated goal {} {}", ctx.out.bold(s(&g, "title")), progress_text(&g)), ctx);
            Ok(())
        }
        Some(GoalAction::Delete { goal }) => {
            let g = ctx.api.goal(&goal).await?;
            ctx.api.delete(&format!("/api/goals/{}", seg(s(&g, "id")))).await.about("goal")?;
            deleted(&g, format!("Deleted goal {}", ctx.out.bold(s(&g, "title"))), ctx);
            Ok(())
        }
    }
}

async fn goal_fields(f: &GoalFields, body: &mut Map<String, Value>, ctx: &Ctx) -> Result<(), CliError> {
    for (key, v) in [("description", &f.description), ("metric", &f.metric), ("unit", &f.unit)] {
        if let Some(v) = v {
            body.insert(key.into(), json!(v));
        }
    }
    if let Some(t) = f.target {
        body.insert("targetValue".into(), json!(t));
    }
    if let Some(c) = f.current {
        body.insert("currentValue".into(), json!(c));
    }
    if let Some(st) = f.status {
        body.insert("status".into(), json!(enum_str(st)));
    }
    if let Some(p) = &f.project {
        let v = if p.eq_ignore_ascii_case("none") { Value::Null } else { json!(ctx.api.project_id(p).await?) };
        body.insert("projectId".into(), v);
    }
    Ok(())
}

/// How far along, 0 to 1, as the server's dashboard measures it (from the goal's first value,
/// so a goal to bring a value down fills up as it falls).
pub fn progress(g: &Value) -> Option<f64> {
    loop_core::goal::progress(float(g, "currentValue"), float(g, "targetValue"), float(g, "baselineValue"))
}

/// `350 / 500 ms`, `350 ms`, or nothing.
pub fn progress_text(g: &Value) -> String {
    let unit = opt(g, "unit").map(|u| format!(" {u}")).unwrap_or_default();
    match (float(g, "currentValue"), float(g, "targetValue")) {
        (Some(c), Some(t)) => format!("{} / {}{unit}", output::number(c), output::number(t)),
        (None, Some(t)) => format!("? / {}{unit}", output::number(t)),
        (Some(c), None) => format!("{}{unit}", output::number(c)),
        (None, None) => String::new(),
    }
}

/// `█████░░░░░  50%`.
pub fn progress_bar(g: &Value, cells: usize) -> String {
    match progress(g) {
        Some(f) => format!("{} {:>4}", bar(f, cells), format!("{}%", (f * 100.0).round() as i64)),
        None => format!("{} {:>4}", "·".repeat(cells), "—"),
    }
}

async fn list_goals(status: Option<GoalStatus>, page: Page, ctx: &Ctx) -> Result<(), CliError> {
    let filter = status.map(|st| format!("status={}&", enum_str(st))).unwrap_or_default();
    let list = ctx.api.get(&format!("/api/goals?{filter}{}", page.query())).await?;
    if ctx.out.mode == Mode::Json {
        emit(&output::json(&list));
        return Ok(());
    }
    let rows = arr(&list["data"]);
    let projects = ctx.api.all("/api/projects").await.unwrap_or_default();
    let project_name =
        |g: &Value| projects.iter().find(|p| opt(g, "projectId") == Some(s(p, "id"))).map(|p| s(p, "name").to_owned());
    let mut t = if ctx.out.human() {
        Table::new(vec![flex_col("GOAL"), col("PROGRESS"), col("VALUE"), col("STATUS"), col("PROJECT")])
    } else {
        Table::new(vec![
            col("ID"),
            col("TITLE"),
            col("CURRENT"),
            col("TARGET"),
            col("UNIT"),
            col("STATUS"),
            col("PROJECT"),
        ])
    };
    for g in rows {
        let project = project_name(g).unwrap_or_else(|| s(g, "projectId").to_owned());
        if ctx.out.human() {
            let done = s(g, "status") == "achieved";
            t.row(vec![
                cell(s(g, "title"), BOLD),
                cell(progress_bar(g, 12), if done { output::GREEN } else { output::CYAN }),
                progress_text(g).into(),
                cell(s(g, "status"), status_style(s(g, "status"))),
                project.into(),
            ]);
        } else {
            let num = |k: &str| float(g, k).map(output::number).unwrap_or_default();
            t.row(vec![
                s(g, "id").into(),
                s(g, "title").into(),
                num("currentValue").into(),
                num("targetValue").into(),
                s(g, "unit").into(),
                s(g, "status").into(),
                project.into(),
            ]);
        }
    }
    let mut text = t.render(&ctx.out);
    if ctx.out.human() {
        text.push_str(&footer(
            rows.len(),
            &list,
            page,
            "goal",
            "loop goals create <title> --target N --unit U",
            &ctx.out,
        ));
    }
    emit(&text);
    Ok(())
}

fn render_goal(g: &Value, out: &Out) -> String {
    let mut f = Fields::new();
    if !out.human() {
        f.add("title", s(g, "title"));
    }
    f.add("id", s(g, "id"));
    f.styled("status", s(g, "status"), status_style(s(g, "status")));
    f.add("metric", s(g, "metric"));
    f.add("value", progress_text(g));
    if out.human() {
        f.styled("progress", progress_bar(g, 20), output::CYAN);
    }
    f.add("project", s(g, "projectId"));
    f.add("description", s(g, "description"));
    f.add("updated", s(g, "updatedAt"));
    let mut o = String::new();
    if out.human() {
        let _ = writeln!(o, "{}\n", out.bold(s(g, "title")));
    }
    o.push_str(&f.render(out));
    o
}

// ---------------------------------------------------------------------------------------------
// Labels

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LabelsArgs {
    #[command(subcommand)]
    pub action: Option<LabelAction>,
    #[command(flatten)]
    pub page: Page,
}

#[derive(Subcommand, Debug)]
pub enum LabelAction {
    /// List labels (the default).
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        page: Page,
    },
    /// Create a label.
    #[command(
        override_usage = "loop labels create [OPTIONS] <NAME>",
        after_help = "Example:\n  loop labels create bug --color '#ef4444'"
    )]
    Create {
        /// Name (unique).
        #[arg(required_unless_present = "name_flag")]
        name: Option<String>,
        #[arg(long = "name", hide = true, conflicts_with = "name")]
        name_flag: Option<String>,
        /// Colour, e.g. #ef4444 or red.
        #[arg(long, default_value = "#6b7280")]
        color: String,
    },
    /// Rename or recolour a label.
    Update {
        /// Name or id.
        label: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New colour.
        #[arg(long)]
        color: Option<String>,
    },
    /// Delete a label (issues lose it).
    Delete {
        /// Name or id.
        label: String,
    },
}

pub async fn labels(a: LabelsArgs, ctx: &Ctx) -> Result<(), CliError> {
    match a.action {
        None => list_labels(a.page, ctx).await,
        Some(LabelAction::List { page }) => list_labels(page, ctx).await,
        Some(LabelAction::Create { name, name_flag, color }) => {
            let name = name.or(name_flag).unwrap_or_default();
            let l = data(ctx.api.post("/api/labels", json!({ "name": name, "color": color })).await?);
            done(&l, format!("Created label {} ({})", ctx.out.bold(s(&l, "name")), s(&l, "color")), ctx);
            Ok(())
        }
        Some(LabelAction::Update { label, name, color }) => {
            let l = ctx.api.label(&label).await?;
            let mut body = Map::new();
            if let Some(n) = name {
                body.insert("name".into(), json!(n));
            }
            if let Some(c) = color {
                body.insert("color".into(), json!(c));
            }
            if body.is_empty() {
                return Err(CliError::usage("nothing to change: give --name or --color"));
            }
            let l = data(ctx.api.patch(&format!("/api/labels/{}", seg(s(&l, "id"))), Value::Object(body)).await?);
            done(&l, format!("Updated label {} ({})", ctx.out.bold(s(&l, "name")), s(&l, "color")), ctx);
            Ok(())
        }
        Some(LabelAction::Delete { label }) => {
            let l = ctx.api.label(&label).await?;
            ctx.api.delete(&format!("/api/labels/{}", seg(s(&l, "id")))).await.about("label")?;
            deleted(&l, format!("Deleted label {}", ctx.out.bold(s(&l, "name"))), ctx);
            Ok(())
        }
    }
}

async fn list_labels(page: Page, ctx: &Ctx) -> Result<(), CliError> {
    let list = ctx.api.get(&format!("/api/labels?{}", page.query())).await?;
    if ctx.out.mode == Mode::Json {
        emit(&output::json(&list));
        return Ok(());
    }
    let rows = arr(&list["data"]);
    let mut t = if ctx.out.human() {
        Table::new(vec![flex_col("NAME"), col("COLOR")])
    } else {
        Table::new(vec![col("NAME"), col("COLOR"), col("ID")])
    };
    for l in rows {
        let mut row = vec![cell(s(l, "name"), BOLD), cell(s(l, "color"), PLAIN)];
        if !ctx.out.human() {
            row.push(s(l, "id").into());
        }
        t.row(row);
    }
    let mut text = t.render(&ctx.out);
    if ctx.out.human() {
        text.push_str(&footer(rows.len(), &list, page, "label", "loop labels create <name> --color <color>", &ctx.out));
    }
    emit(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_from_the_first_value() {
        let g = json!({"currentValue": 350.0, "targetValue": 500.0, "unit": "ms"});
        assert_eq!(progress(&g), Some(0.7), "no first value: from 0");
        assert_eq!(progress_text(&g), "350 / 500 ms");
        assert!(progress_bar(&g, 10).starts_with("███████░░░"));
        assert_eq!(progress(&json!({"currentValue": 3})), None);
        // Bringing p95 down from 2300 ms to 1000 ms.
        let down = |now: f64| json!({"currentValue": now, "targetValue": 1000.0, "baselineValue": 2300.0});
        assert_eq!(progress(&down(2300.0)), Some(0.0));
        assert_eq!(progress(&down(1650.0)), Some(0.5));
        assert_eq!(progress(&down(900.0)), Some(1.0));
    }
}
