//! `loop roadmap compile ROADMAP.md`: a Markdown plan becomes issues and `blocks` relations,
//! through the API, idempotently: each unit's issue carries a hidden marker with its id, so a
//! second compile updates what changed, creates what is new, never duplicates, and reports (but
//! does not delete) what left the file.

mod parse;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use self::parse::{Kind, Unit};
use super::api::{data, seg};
use super::output::{Mode, emit};
use super::{CliError, Ctx};

pub const ROADMAP_HELP: &str = "\
The format (close to how roadmaps are written):

  # Checkout {#checkout}                     a heading is a plan
  Make paying painless.                      text under a unit is its description

  ## Phase 1: Payments                       phases (Phase, Milestone, Step or a number
  - [ ] Stripe client {#stripe}              first) run in order: each task of a phase waits
    - [x] Pick the SDK                       for the tasks in the phase before
  - [ ] Webhooks (after: stripe)             list items are tasks under their heading; [x] is
                                             done; (after: id, …) or (blocked-by: id) says
  ## Phase 2: Refunds                        what must be done first
  1. Refund flow

Loop nests issues one level deep: an item nested under a task that is itself under a heading
(\"Pick the SDK\") becomes that task's sibling, and the task waits for it.

A unit's id is {#id} in its text, else the slug of its title (\"refund-flow\"); give ids to
items you may rename. Tasks are created in todo (dispatchable once unblocked), plans in
backlog. Compiling again updates what changed, creates what is new, never duplicates, and
lists what left the file without deleting it. Cycles, unknown references and duplicate ids are
refused with their line number; nothing is written then.

Examples:
  loop roadmap compile ROADMAP.md --project Web --dry-run
  loop roadmap compile ROADMAP.md --project Web";

#[derive(Args, Debug)]
pub struct RoadmapArgs {
    #[command(subcommand)]
    pub action: RoadmapAction,
}

#[derive(Subcommand, Debug)]
pub enum RoadmapAction {
    /// Create or update the issues and relations a Markdown roadmap describes.
    #[command(after_help = ROADMAP_HELP)]
    Compile(CompileArgs),
}

#[derive(Args, Debug)]
pub struct CompileArgs {
    /// The roadmap file.
    pub file: PathBuf,
    /// The project its issues belong to (name or id).
    #[arg(long, short)]
    pub project: Option<String>,
    /// Print the plan as a tree with what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

const MARKER: &str = "<!-- loop:unit=";

/// The hidden marker a unit's issue carries.
fn marker(id: &str) -> String {
    format!("{MARKER}{id} -->")
}

fn unit_of(description: &str) -> Option<&str> {
    let start = description.find(MARKER)? + MARKER.len();
    description[start..].split_whitespace().next()
}

/// What compiling would do to one unit.
#[derive(Debug, PartialEq)]
enum Change {
    Create,
    Update(Vec<&'static str>),
    Same,
}

pub async fn run(a: RoadmapArgs, ctx: &Ctx) -> Result<(), CliError> {
    let RoadmapAction::Compile(a) = a.action;
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", a.file.display())))?;
    let units = parse::parse(&text).map_err(|e| CliError::usage(format!("{}: {e}", a.file.display())))?;
    let project = match &a.project {
        Some(p) => Some(ctx.api.project_id(p).await?),
        None => None,
    };

    // The issues earlier compiles made, by unit id (deleted ones are gone from lists).
    let mut query = "/api/issues?status=triage,backlog,todo,in_progress,done,canceled".to_owned();
    if let Some(p) = &project {
        query.push_str(&format!("&projectId={}", seg(p)));
    }
    let mut existing: BTreeMap<String, Value> = BTreeMap::new();
    for issue in ctx.api.all(&query).await? {
        if let Some(id) = issue["description"].as_str().and_then(unit_of) {
            existing.insert(id.to_owned(), issue);
        }
    }
    let changes: Vec<Change> = units.iter().map(|u| change(u, existing.get(&u.id), &existing)).collect();
    let in_file: BTreeSet<&str> = units.iter().map(|u| u.id.as_str()).collect();
    let removed: Vec<&Value> =
        existing.iter().filter(|(id, _)| !in_file.contains(id.as_str())).map(|(_, i)| i).collect();

    if a.dry_run {
        print_plan(&units, &changes, &removed, ctx);
        return Ok(());
    }

    // Parents come before their children in the file, so one pass creates and updates all.
    let mut issue_ids: BTreeMap<String, String> =
        existing.iter().map(|(u, i)| (u.clone(), i["id"].as_str().unwrap_or_default().to_owned())).collect();
    let (mut created, mut updated) = (0, 0);
    for (u, c) in units.iter().zip(&changes) {
        let parent = u.parent.as_ref().and_then(|p| issue_ids.get(p)).cloned();
        match c {
            Change::Same => {}
            Change::Create => {
                let mut body = fields(u, parent.as_deref());
                body.insert("type".into(), json!(if u.kind == Kind::Plan { "plan" } else { "task" }));
                if let Some(p) = &project {
                    body.insert("projectId".into(), json!(p));
                }
                let issue = data(ctx.api.post("/api/issues", Value::Object(body)).await?);
                issue_ids.insert(u.id.clone(), issue["id"].as_str().unwrap_or_default().to_owned());
                created += 1;
            }
            Change::Update(what) => {
                let id = &issue_ids[&u.id];
                // Only what changed: a recompile never moves work in progress back to todo.
                let mut patch = fields(u, parent.as_deref());
                patch.retain(|k, _| what.iter().any(|w| k.as_str() == field_name(w)));
                ctx.api.patch(&format!("/api/issues/{}", seg(id)), Value::Object(patch)).await?;
                updated += 1;
            }
        }
    }
    let (added, dropped) = sync_blocks(&units, &issue_ids, ctx).await?;

    match ctx.out.mode {
        Mode::Json => emit(&super::output::json(&json!({
            "created": created, "updated": updated, "unchanged": changes.iter().filter(|c| **c == Change::Same).count(),
            "relationsAdded": added, "relationsRemoved": dropped,
            "removedFromFile": removed.iter().map(|i| json!({ "id": i["id"], "number": i["number"], "title": i["title"] })).collect::<Vec<_>>(),
        }))),
        _ => {
            let mut out = format!(
                "Compiled {}: {created} created, {updated} updated, {} unchanged; {added} blocks added, {dropped} removed.",
                a.file.display(),
                changes.iter().filter(|c| **c == Change::Same).count()
            );
            for i in &removed {
                out.push_str(&format!(
                    "\nNo longer in the file (left as it is): #{} {}",
                    i["number"],
                    i["title"].as_str().unwrap_or("")
                ));
            }
            emit(&out);
        }
    }
    Ok(())
}

/// What the unit's issue should say: title, description with its marker, status, parent.
fn fields(u: &Unit, parent: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("title".into(), json!(u.title));
    m.insert("description".into(), json!(description(u)));
    m.insert("status".into(), json!(status(u)));
    m.insert("parentId".into(), json!(parent));
    m
}

/// The API field a change is about.
fn field_name(change: &str) -> &str {
    if change == "parent" { "parentId" } else { change }
}

fn description(u: &Unit) -> String {
    if u.description.is_empty() { marker(&u.id) } else { format!("{}\n\n{}", u.description, marker(&u.id)) }
}

fn status(u: &Unit) -> &'static str {
    match (u.kind, u.done) {
        (_, true) => "done",
        (Kind::Plan, false) => "backlog",
        (Kind::Task, false) => "todo",
    }
}

fn change(u: &Unit, issue: Option<&Value>, existing: &BTreeMap<String, Value>) -> Change {
    let Some(issue) = issue else { return Change::Create };
    let mut what = Vec::new();
    if issue["title"] != u.title.as_str() {
        what.push("title");
    }
    if issue["description"].as_str() != Some(description(u).as_str()) {
        what.push("description");
    }
    // Only a done box is the file's to say; work in progress is not undone by a recompile.
    let now = issue["status"].as_str().unwrap_or("");
    let wants = status(u);
    if (wants == "done") != (now == "done") && !(wants != "done" && now == "canceled") {
        what.push("status");
    }
    let parent = u.parent.as_ref().and_then(|p| existing.get(p)).map(|p| p["id"].clone()).unwrap_or(Value::Null);
    if u.parent.as_ref().is_none_or(|p| existing.contains_key(p)) && issue["parentId"] != parent {
        what.push("parent");
    }
    if what.is_empty() { Change::Same } else { Change::Update(what) }
}

/// Makes the `blocks` relations between the roadmap's issues exactly what the file says.
async fn sync_blocks(units: &[Unit], ids: &BTreeMap<String, String>, ctx: &Ctx) -> Result<(usize, usize), CliError> {
    let ours: BTreeSet<&str> = ids.values().map(String::as_str).collect();
    let wanted: BTreeSet<(String, String)> =
        units.iter().flat_map(|u| u.after.iter().map(|a| (ids[a].clone(), ids[&u.id].clone()))).collect();
    // The blocks between roadmap issues as they are: (blocker, blocked) → relation id.
    let mut have: BTreeMap<(String, String), String> = BTreeMap::new();
    for u in units {
        let detail = data(ctx.api.get(&format!("/api/issues/{}", seg(&ids[&u.id]))).await?);
        for r in detail["relations"].as_array().into_iter().flatten() {
            let (a, b) = (r["issueId"].as_str().unwrap_or(""), r["relatedIssueId"].as_str().unwrap_or(""));
            let pair = match r["type"].as_str() {
                Some("blocks") => (a, b),
                Some("blocked_by") => (b, a),
                _ => continue,
            };
            if ours.contains(pair.0) && ours.contains(pair.1) {
                have.insert((pair.0.to_owned(), pair.1.to_owned()), r["id"].as_str().unwrap_or("").to_owned());
            }
        }
    }
    let mut dropped = 0;
    for (pair, relation) in &have {
        if !wanted.contains(pair) {
            ctx.api.delete(&format!("/api/relations/{}", seg(relation))).await?;
            dropped += 1;
        }
    }
    let mut added = 0;
    for (blocker, blocked) in &wanted {
        if !have.contains_key(&(blocker.clone(), blocked.clone())) {
            let body = json!({ "type": "blocks", "relatedIssueId": blocked });
            ctx.api.post(&format!("/api/issues/{}/relations", seg(blocker)), body).await?;
            added += 1;
        }
    }
    Ok((added, dropped))
}

fn print_plan(units: &[Unit], changes: &[Change], removed: &[&Value], ctx: &Ctx) {
    if ctx.out.mode == Mode::Json {
        let plan: Vec<Value> = units
            .iter()
            .zip(changes)
            .map(|(u, c)| {
                let change = match c {
                    Change::Create => json!("create"),
                    Change::Update(what) => json!({ "update": what }),
                    Change::Same => json!("unchanged"),
                };
                json!({ "unit": u.id, "title": u.title, "parent": u.parent, "after": u.after, "change": change })
            })
            .collect();
        let gone: Vec<Value> = removed.iter().map(|i| json!({ "number": i["number"], "title": i["title"] })).collect();
        emit(&super::output::json(&json!({ "plan": plan, "removedFromFile": gone })));
        return;
    }
    let depth = |u: &Unit| {
        let mut d = 0;
        let mut p = u.parent.clone();
        while let Some(id) = p {
            d += 1;
            p = units.iter().find(|o| o.id == id).and_then(|o| o.parent.clone());
        }
        d
    };
    let mut out = String::from("Dry run: nothing is written.\n");
    for (u, c) in units.iter().zip(changes) {
        let (sign, note) = match c {
            Change::Create => ("+", "new".to_owned()),
            Change::Update(what) => ("~", format!("changes {}", what.join(", "))),
            Change::Same => ("=", "unchanged".to_owned()),
        };
        let after = if u.after.is_empty() { String::new() } else { format!(" (after {})", u.after.join(", ")) };
        out.push_str(&format!("{sign} {}{} [{}]{after} {note}\n", "  ".repeat(depth(u)), u.title, u.id));
    }
    for i in removed {
        out.push_str(&format!(
            "- #{} {}: no longer in the file (left as it is)\n",
            i["number"],
            i["title"].as_str().unwrap_or("")
        ));
    }
    emit(out.trim_end());
}
