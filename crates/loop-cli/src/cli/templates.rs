//! Prompt templates: the list with review scores, versions and changelogs, new versions,
//! promotion (and rollback), and previews of what an issue would get.

use std::fmt::Write as _;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::Ctx;
use super::api::{Api, data, seg};
use super::args::{IssueRef, parse_object, read_text};
use super::error::{About, CliError};
use super::issues::issue_title;
use super::output::{
    self, BOLD, DIM, Fields, Mode, Out, PLAIN, Table, ago, arr, cell, col, emit, flex_col, float, int, num_col, opt, s,
    status_style,
};

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  loop templates                               scores and usage of the active versions\n  \
                  loop templates show task-execution           versions and changelogs\n  \
                  loop templates new-version task-execution --file t.hbs --changelog \"…\"\n  \
                  loop templates promote task-execution 3      make v3 active (or roll back to it)\n  \
                  loop templates preview 42                    the prompt #42 would get"
)]
pub struct TemplatesArgs {
    #[command(subcommand)]
    pub action: Option<TemplateAction>,
}

#[derive(Subcommand, Debug)]
pub enum TemplateAction {
    /// Templates with their active version, review score and usage (the default).
    #[command(
        visible_alias = "ls",
        after_help = "With --json: {data, total} where each template is as GET /api/templates/{id} returns it \
                      (with its activeVersion)."
    )]
    List,
    /// A template with its versions and changelogs.
    #[command(after_help = "With --json: the template as GET /api/templates/{id} returns it, plus `versions`.")]
    Show {
        /// Slug (or id).
        template: String,
        /// Also print the active version's content.
        #[arg(long)]
        content: bool,
    },
    /// Create a template; --file gives its first version.
    #[command(
        after_help = "Example:\n  loop templates create bug-fix --name \"Bug fix\" --conditions '{\"type\":\"task\",\"labels\":[\"bug\"]}' --specificity 30 --file bug-fix.hbs"
    )]
    Create {
        /// Slug: lowercase words joined by hyphens, e.g. bug-fix.
        slug: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Description.
        #[arg(long, short)]
        description: Option<String>,
        /// When it applies, a JSON object: type, signalSource, labels, projectId, hasFailedSessions, hypothesisConfidence.
        #[arg(long, value_parser = parse_object, value_name = "JSON")]
        conditions: Option<Value>,
        /// 0–100: the most specific matching template wins.
        #[arg(long)]
        specificity: Option<i64>,
        /// The first version's content (Handlebars); `-` reads stdin.
        #[arg(long, short, value_name = "FILE")]
        file: Option<String>,
    },
    /// Add a version from a file (a draft unless --activate).
    #[command(
        after_help = "Examples:\n  loop templates new-version task-execution --file task.hbs --changelog \"Ask for tests first\"\n  loop templates new-version task-execution --file - --activate < task.hbs"
    )]
    NewVersion {
        /// Slug (or id).
        template: String,
        /// The content (Handlebars); `-` reads stdin.
        #[arg(long, short, value_name = "FILE")]
        file: String,
        /// What changed and why.
        #[arg(long, short)]
        changelog: Option<String>,
        /// Make it the active version right away.
        #[arg(long)]
        activate: bool,
    },
    /// Make a version the active one (also how to roll back).
    #[command(
        after_help = "Examples:\n  loop templates promote <version-id>\n  loop templates promote task-execution 2"
    )]
    Promote {
        /// A version id, or a template slug (followed by VERSION).
        #[arg(value_name = "VERSION_ID | SLUG")]
        target: String,
        /// With a slug: the version number (2 or v2) or id.
        version: Option<String>,
    },
    /// The template and prompt dispatch would give an issue, without claiming it.
    Preview {
        /// Issue number (42 or #42) or id.
        issue: IssueRef,
    },
}

pub async fn run(a: TemplatesArgs, ctx: &Ctx) -> Result<(), CliError> {
    match a.action.unwrap_or(TemplateAction::List) {
        TemplateAction::List => list(ctx).await,
        TemplateAction::Show { template, content } => show(&template, content, ctx).await,
        TemplateAction::Create { slug, name, description, conditions, specificity, file } => {
            let mut body = json!({ "slug": slug, "name": name });
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            if let Some(c) = conditions {
                body["conditions"] = c;
            }
            if let Some(sp) = specificity {
                body["specificity"] = json!(sp);
            }
            let content = file.map(|f| read_text(&f, "template")).transpose()?;
            let t = data(ctx.api.post("/api/templates", body).await?);
            let mut version = Value::Null;
            if let Some(content) = content {
                let created = ctx
                    .api
                    .post(&format!("/api/templates/{}/versions", seg(s(&t, "id"))), json!({ "content": content }))
                    .await?;
                warn(&created["warnings"]);
                version = data(created);
            }
            match ctx.out.mode {
                Mode::Json => {
                    let mut t = t.clone();
                    t["activeVersion"] = version;
                    emit(&output::json(&t));
                }
                Mode::Plain => emit(s(&t, "id")),
                Mode::Human => {
                    let v = if version.is_null() {
                        format!("no versions yet: loop templates new-version {} --file <file>", s(&t, "slug"))
                    } else {
                        format!("v{} active", int(&version, "version").unwrap_or(1))
                    };
                    emit(&format!("Created template {} ({v})", ctx.out.bold(s(&t, "slug"))));
                }
            }
            Ok(())
        }
        TemplateAction::NewVersion { template, file, changelog, activate } => {
            let t = ctx.api.template(&template).await?;
            let content = read_text(&file, "template")?;
            let mut body = json!({ "content": content, "status": if activate { "active" } else { "draft" } });
            if let Some(c) = changelog {
                body["changelog"] = json!(c);
            }
            let created = ctx.api.post(&format!("/api/templates/{}/versions", seg(s(&t, "id"))), body).await?;
            if ctx.out.mode == Mode::Json {
                emit(&output::json(&created));
                return Ok(());
            }
            warn(&created["warnings"]);
            let v = &created["data"];
            if ctx.out.mode == Mode::Plain {
                emit(&format!("{}\t{}\t{}", s(v, "id"), int(v, "version").unwrap_or(0), s(v, "status")));
                return Ok(());
            }
            let mut o = format!(
                "Created {} v{} ({}), id {}\n",
                ctx.out.bold(s(&t, "slug")),
                int(v, "version").unwrap_or(0),
                ctx.out.paint(status_style(s(v, "status")), s(v, "status")),
                s(v, "id")
            );
            if s(v, "status") != "active" {
                o.push_str(&ctx.out.note(
                    &format!(
                        "Make it active: loop templates promote {} {}",
                        s(&t, "slug"),
                        int(v, "version").unwrap_or(0)
                    ),
                    2,
                ));
            }
            emit(&o);
            Ok(())
        }
        TemplateAction::Promote { target, version } => promote(&target, version.as_deref(), ctx).await,
        TemplateAction::Preview { issue } => preview(&issue, ctx).await,
    }
}

/// Version warnings (variables no context provides) go to stderr.
fn warn(warnings: &Value) {
    for w in arr(warnings) {
        eprintln!("warning: {}", w.as_str().unwrap_or_default());
    }
}

/// Every template with its detail (`activeVersion`), fetched side by side.
pub async fn with_active_versions(api: &Api) -> Result<Vec<Value>, CliError> {
    let templates = api.all("/api/templates").await?;
    let mut set = JoinSet::new();
    for (i, t) in templates.iter().enumerate() {
        let api = api.clone();
        let id = s(t, "id").to_owned();
        set.spawn(async move { (i, api.get(&format!("/api/templates/{}", seg(&id))).await.map(data)) });
    }
    let mut out = templates;
    while let Some(joined) = set.join_next().await {
        let Ok((i, detail)) = joined else { continue };
        if let Ok(d) = detail {
            out[i] = d;
        }
    }
    Ok(out)
}

async fn list(ctx: &Ctx) -> Result<(), CliError> {
    let templates = with_active_versions(&ctx.api).await?;
    if ctx.out.mode == Mode::Json {
        let total = templates.len();
        emit(&output::json(&json!({ "data": templates, "total": total })));
        return Ok(());
    }
    let mut t = if ctx.out.human() {
        Table::new(vec![col("SLUG"), col("ACTIVE"), num_col("SCORE"), num_col("USES"), flex_col("APPLIES TO")])
    } else {
        Table::new(vec![
            col("SLUG"),
            col("ACTIVE"),
            col("SCORE"),
            col("USES"),
            col("APPLIES TO"),
            col("NAME"),
            col("ID"),
        ])
    };
    for tpl in &templates {
        let v = &tpl["activeVersion"];
        let score = float(v, "reviewScore");
        let mut row = vec![
            cell(s(tpl, "slug"), BOLD),
            int(v, "version").map(|n| format!("v{n}")).unwrap_or_else(|| "—".into()).into(),
            cell(score.map(output::score).unwrap_or_else(|| "—".into()), score_style(score)),
            int(v, "usageCount").map(|n| n.to_string()).unwrap_or_default().into(),
            cell(conditions_text(&tpl["conditions"]), DIM),
        ];
        if !ctx.out.human() {
            row.push(s(tpl, "name").into());
            row.push(s(tpl, "id").into());
        }
        t.row(row);
    }
    let mut text = t.render(&ctx.out);
    if ctx.out.human() {
        text.push_str(&ctx.out.note("SCORE: review average, 1–5. Versions: loop templates show <slug>", 0));
    }
    emit(&text);
    Ok(())
}

pub fn score_style(score: Option<f64>) -> anstyle::Style {
    match score {
        Some(s) if s < 3.0 => output::RED,
        Some(s) if s < 3.5 => output::YELLOW,
        Some(_) => output::GREEN,
        None => DIM,
    }
}

/// `type=task labels=bug` or `any issue`.
pub fn conditions_text(c: &Value) -> String {
    let Some(m) = c.as_object().filter(|m| !m.is_empty()) else { return "any issue".into() };
    m.iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            Value::Array(a) => {
                format!("{k}={}", a.iter().map(|x| x.as_str().unwrap_or("?")).collect::<Vec<_>>().join(","))
            }
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn show(key: &str, content: bool, ctx: &Ctx) -> Result<(), CliError> {
    let t = ctx.api.template(key).await?;
    let id = s(&t, "id").to_owned();
    let (dp, vp) = (format!("/api/templates/{}", seg(&id)), format!("/api/templates/{}/versions", seg(&id)));
    let (detail, versions) = tokio::join!(ctx.api.get(&dp), ctx.api.all(&vp));
    let detail = data(detail.about(format!("template {key}"))?);
    let versions = versions?;
    match ctx.out.mode {
        Mode::Json => {
            let mut d = detail.clone();
            d["versions"] = json!(versions);
            emit(&output::json(&d));
        }
        Mode::Plain => {
            let mut t =
                Table::new(vec![col("ID"), col("VERSION"), col("STATUS"), col("SCORE"), col("USES"), col("CHANGELOG")]);
            for v in &versions {
                t.row(version_row(v, &ctx.out));
            }
            emit(&t.render(&ctx.out));
        }
        Mode::Human => emit(&render_show(&detail, &versions, content, &ctx.out)),
    }
    Ok(())
}

fn version_row(v: &Value, out: &Out) -> Vec<output::Cell> {
    let score = float(v, "reviewScore");
    let mut row = vec![
        cell(format!("v{}", int(v, "version").unwrap_or(0)), BOLD),
        cell(s(v, "status"), status_style(s(v, "status"))),
        cell(score.map(output::score).unwrap_or_else(|| "—".into()), score_style(score)),
        int(v, "usageCount").map(|n| n.to_string()).unwrap_or_default().into(),
    ];
    if out.human() {
        row.push(cell(ago(s(v, "createdAt")), DIM));
        row.push(cell(s(v, "authorName"), PLAIN));
        row.push(opt(v, "changelog").unwrap_or("—").into());
    } else {
        row.insert(0, s(v, "id").into());
        row.push(s(v, "changelog").into());
    }
    row
}

fn render_show(t: &Value, versions: &[Value], content: bool, out: &Out) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{} {}\n", out.bold(s(t, "slug")), out.dim(&format!("— {}", s(t, "name"))));
    let mut f = Fields::new();
    f.add("id", s(t, "id"));
    f.add("description", s(t, "description"));
    f.add("applies to", conditions_text(&t["conditions"]));
    f.add("specificity", int(t, "specificity").map(|n| n.to_string()).unwrap_or_default());
    f.add("project", s(t, "projectId"));
    let active = &t["activeVersion"];
    if active.is_object() {
        let score = float(active, "reviewScore").map(output::score).unwrap_or_else(|| "no reviews".into());
        f.add(
            "active",
            format!(
                "v{} · score {score} · used {}×",
                int(active, "version").unwrap_or(0),
                int(active, "usageCount").unwrap_or(0)
            ),
        );
    } else {
        f.styled("active", "none: dispatch skips this template until a version is promoted", output::YELLOW);
    }
    o.push_str(&f.render(out));
    let _ = writeln!(o, "\n{}", out.heading(&format!("Versions ({})", versions.len())));
    let mut tbl = Table::new(vec![
        num_col("VERSION"),
        col("STATUS"),
        num_col("SCORE"),
        num_col("USES"),
        col("CREATED"),
        col("AUTHOR"),
        flex_col("CHANGELOG"),
    ])
    .indent(2);
    for v in versions {
        tbl.row(version_row(v, out));
    }
    o.push_str(&tbl.render(out));
    o.push_str(&out.note(&format!("Roll back or promote: loop templates promote {} <version>", s(t, "slug")), 2));
    if content && active.is_object() {
        let _ = writeln!(o, "\n{}", out.heading(&format!("Content of v{}", int(active, "version").unwrap_or(0))));
        o.push_str(s(active, "content"));
        if !o.ends_with('\n') {
            o.push('\n');
        }
    }
    o
}

async fn promote(target: &str, version: Option<&str>, ctx: &Ctx) -> Result<(), CliError> {
    let (template, version) = match version {
        Some(v) => {
            let t = ctx.api.template(target).await?;
            let versions = ctx.api.all(&format!("/api/templates/{}/versions", seg(s(&t, "id")))).await?;
            let wanted = v.trim_start_matches(['v', 'V']);
            let found = versions
                .into_iter()
                .find(|x| s(x, "id") == v || int(x, "version").map(|n| n.to_string()).as_deref() == Some(wanted));
            let Some(found) = found else {
                return Err(CliError::failed(format!(
                    "template {} has no version {v}; see: loop templates show {}",
                    s(&t, "slug"),
                    s(&t, "slug")
                )));
            };
            (t, found)
        }
        None => find_version(&ctx.api, target).await?,
    };
    let promoted = data(
        ctx.api
            .post_empty(&format!(
                "/api/templates/{}/versions/{}/promote",
                seg(s(&template, "id")),
                seg(s(&version, "id"))
            ))
            .await
            .about("version")?,
    );
    match ctx.out.mode {
        Mode::Json => emit(&output::json(&promoted)),
        Mode::Plain => emit(&format!("{}\t{}\tactive", s(&promoted, "id"), int(&promoted, "version").unwrap_or(0))),
        Mode::Human => emit(&format!(
            "{} v{} is now active: dispatch uses it from the next claim.",
            ctx.out.bold(s(&template, "slug")),
            int(&promoted, "version").unwrap_or(0)
        )),
    }
    Ok(())
}

/// The template a version id belongs to (the API addresses versions under their template).
async fn find_version(api: &Api, vid: &str) -> Result<(Value, Value), CliError> {
    for t in api.all("/api/templates").await? {
        let versions = api.all(&format!("/api/templates/{}/versions", seg(s(&t, "id")))).await?;
        if let Some(v) = versions.into_iter().find(|v| s(v, "id") == vid) {
            return Ok((t, v));
        }
    }
    Err(CliError::failed(format!(
        "version {vid} not found in any template; see: loop templates show <slug> (or: loop templates promote <slug> <number>)"
    )))
}

async fn preview(r: &IssueRef, ctx: &Ctx) -> Result<(), CliError> {
    let p = data(ctx.api.get(&format!("/api/templates/preview/{}", seg(r.key()))).await.about(r.label())?);
    match ctx.out.mode {
        Mode::Json => emit(&output::json(&p)),
        Mode::Plain => emit(s(&p, "prompt")),
        Mode::Human => {
            let mut o = String::new();
            o.push_str(&ctx.out.para(&issue_title(&p["issue"], &ctx.out), 0, PLAIN));
            let tpl = &p["template"];
            if !tpl.is_object() {
                let msg = opt(&p, "message").unwrap_or("No matching template found");
                let _ =
                    writeln!(o, "{}", ctx.out.paint(output::YELLOW, &format!("{msg}: dispatch would give no prompt.")));
                emit(&o);
                return Ok(());
            }
            let v = &p["version"];
            o.push_str(&ctx.out.note(
                &format!(
                    "template {} v{} ({}) · the token is issued at dispatch",
                    s(tpl, "slug"),
                    int(v, "version").or_else(|| int(&p["meta"], "versionNumber")).unwrap_or(0),
                    conditions_text(&tpl["conditions"])
                ),
                0,
            ));
            if let Some(err) = opt(&p, "error") {
                let _ = writeln!(o, "{}", ctx.out.paint(output::RED, &format!("rendering failed: {err}")));
            }
            let _ = writeln!(o, "\n{}", s(&p, "prompt"));
            emit(&o);
        }
    }
    Ok(())
}
