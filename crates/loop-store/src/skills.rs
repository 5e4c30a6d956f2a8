//! A project's skills, versioned: a sync gives each new or changed file a new version and
//! retires the files it no longer names; prompts read the current ones (see `hydration.rs`).

use loop_core::skill::{Skill, SkillSync, SkillSyncResult};
use loop_core::{Error, Result, Timestamp};

use crate::args;
use crate::db::{Db, DbExt};
use crate::rows;

pub(crate) const SKILL_COLUMNS: &str = "name, content, version, updated_at";

/// A 404 unless project `id` is live; `lock` as for `common::live`.
async fn require_project(db: &mut impl Db, id: &str, lock: &str) -> Result<()> {
    if crate::common::live(db, "projects", id, lock).await? { Ok(()) } else { Err(Error::not_found("Project", id)) }
}

pub(crate) async fn sync(
    db: &mut impl Db,
    project: String,
    sync: SkillSync,
    now: Timestamp,
) -> Result<SkillSyncResult> {
    // The project row is locked: two syncs of one project take turns.
    require_project(db, &project, "FOR UPDATE").await?;
    let current = list(db, &project).await?;
    let mut result = SkillSyncResult::default();
    for file in &sync.files {
        let (version, list) = match current.iter().find(|s| s.name == file.name) {
            Some(s) if s.content == file.content => {
                result.unchanged.push(file.name.clone());
                continue;
            }
            Some(_) => (latest(db, &project, &file.name).await? + 1, &mut result.changed),
            None => (latest(db, &project, &file.name).await? + 1, &mut result.added),
        };
        list.push(file.name.clone());
        keep_version(db, &project, &file.name, version, Some(&file.content), now).await?;
        db.run(
            "INSERT INTO project_skills (project_id, name, version, content, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (project_id, name) DO UPDATE SET version = excluded.version, content = excluded.content, \
             updated_at = excluded.updated_at",
            &args![&project, &file.name, version, &file.content, now.millis()],
        )
        .await?;
    }
    for gone in current.iter().filter(|s| !sync.files.iter().any(|f| f.name == s.name)) {
        // A retired file's last version says so (no content); an upload brings it back as the next.
        keep_version(db, &project, &gone.name, gone.version + 1, None, now).await?;
        db.run("DELETE FROM project_skills WHERE project_id = ? AND name = ?", &args![&project, &gone.name]).await?;
        result.removed.push(gone.name.clone());
    }
    Ok(result)
}

async fn latest(db: &mut impl Db, project: &str, name: &str) -> Result<i64> {
    let sql = "SELECT COALESCE(MAX(version), 0) AS v FROM project_skill_versions WHERE project_id = ? AND name = ?";
    let row = db.one(sql, &args![project, name]).await?.ok_or_else(|| Error::internal("no MAX row"))?;
    rows::get(&row, "v")
}

async fn keep_version(
    db: &mut impl Db,
    project: &str,
    name: &str,
    version: i64,
    content: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    db.run(
        "INSERT INTO project_skill_versions (project_id, name, version, content, created_at) VALUES (?, ?, ?, ?, ?)",
        &args![project, name, version, content, now.millis()],
    )
    .await
    .map(|_| ())
}

pub(crate) async fn list(db: &mut impl Db, project: &str) -> Result<Vec<Skill>> {
    let sql = format!(r#"SELECT {SKILL_COLUMNS} FROM project_skills WHERE project_id = ? ORDER BY name COLLATE "C""#);
    db.each(&sql, &args![project], rows::skill).await
}

pub(crate) async fn current(db: &mut impl Db, project: String) -> Result<Vec<Skill>> {
    require_project(db, &project, "").await?;
    list(db, &project).await
}
