//! `loop skills sync|list`: the repository's context files (`AGENTS.md`, `CLAUDE.md`,
//! `.loop/skills/*.md`) registered with a project, so every prompt for its issues carries them.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::api::{Api, data, seg};
use super::output::{Mode, emit};
use super::{CliError, Ctx};

#[derive(Args, Debug)]
pub struct SkillsArgs {
    #[command(subcommand)]
    pub action: SkillsAction,
}

#[derive(Subcommand, Debug)]
pub enum SkillsAction {
    /// Upload AGENTS.md, CLAUDE.md and .loop/skills/*.md from the repository: new and changed
    /// files get a new version, files no longer there are retired.
    Sync(SyncArgs),
    /// The project's current skills.
    List(ListArgs),
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The project (name or id).
    #[arg(long, short)]
    pub project: String,
    /// The repository [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// The project (name or id).
    #[arg(long, short)]
    pub project: String,
}

/// The files a repository's skills come from, relative to its top.
pub fn skill_files(top: &Path) -> Result<Vec<(String, String)>, String> {
    let mut names: Vec<String> = ["AGENTS.md", "CLAUDE.md"].iter().map(|n| (*n).to_owned()).collect();
    if let Ok(dir) = std::fs::read_dir(top.join(".loop/skills")) {
        let mut found: Vec<String> = dir
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".md"))
            .map(|n| format!(".loop/skills/{n}"))
            .collect();
        found.sort();
        names.extend(found);
    }
    let mut files = Vec::new();
    for name in names {
        match std::fs::read_to_string(top.join(&name)) {
            Ok(content) => files.push((name, content)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {name}: {e}")),
        }
    }
    Ok(files)
}

/// Uploads the repository's skills to `project` (an id); returns what changed.
pub async fn sync_repo(api: &Api, project: &str, top: &Path) -> Result<Value, CliError> {
    let files = skill_files(top).map_err(CliError::failed)?;
    let files: Vec<Value> =
        files.into_iter().map(|(name, content)| json!({ "name": name, "content": content })).collect();
    Ok(data(api.put(&format!("/api/projects/{}/skills", seg(project)), json!({ "files": files })).await?))
}

/// One line on what a sync did.
pub fn describe(result: &Value) -> String {
    let count = |k: &str| result[k].as_array().map_or(0, Vec::len);
    let names =
        |k: &str| result[k].as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(", ");
    let mut out = format!(
        "Skills synced: {} added, {} changed, {} unchanged, {} removed.",
        count("added"),
        count("changed"),
        count("unchanged"),
        count("removed")
    );
    for (k, label) in [("added", "added"), ("changed", "changed"), ("removed", "removed")] {
        if count(k) > 0 {
            out.push_str(&format!("\n  {label}: {}", names(k)));
        }
    }
    out
}

pub async fn run(a: SkillsArgs, ctx: &Ctx) -> Result<(), CliError> {
    match a.action {
        SkillsAction::Sync(a) => {
            let project = ctx.api.project_id(&a.project).await?;
            let dir = a.repo.unwrap_or_else(|| PathBuf::from("."));
            // The top of the checkout, when it is one; else the directory as given.
            let top = super::agent::top_of(&dir).await.unwrap_or(dir);
            let result = sync_repo(&ctx.api, &project, &top).await?;
            match ctx.out.mode {
                Mode::Json => emit(&super::output::json(&result)),
                _ => emit(&describe(&result)),
            }
        }
        SkillsAction::List(a) => {
            let project = ctx.api.project_id(&a.project).await?;
            let list = ctx.api.get(&format!("/api/projects/{}/skills", seg(&project))).await?;
            match ctx.out.mode {
                Mode::Json => emit(&super::output::json(&list)),
                _ => {
                    let rows: Vec<String> = list["data"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|s| {
                            format!(
                                "{}  v{}  {} characters",
                                s["name"].as_str().unwrap_or(""),
                                s["version"],
                                s["content"].as_str().map_or(0, |c| c.chars().count())
                            )
                        })
                        .collect();
                    emit(&if rows.is_empty() {
                        "No skills: loop skills sync --project … uploads them.".to_owned()
                    } else {
                        rows.join("\n")
                    });
                }
            }
        }
    }
    Ok(())
}
