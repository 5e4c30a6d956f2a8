//! A project's skills: the context files of its repository (`AGENTS.md`, `CLAUDE.md`,
//! `.loop/skills/*.md`), uploaded by `loop skills sync` and kept versioned, given to every
//! prompt of the project's issues as `skills`.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A skill as prompts see it: its current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Skill {
    /// The file's path in the repository, e.g. `AGENTS.md` or `.loop/skills/testing.md`.
    pub name: String,
    pub content: String,
    /// 1 for the first upload; one more each time its content changes.
    pub version: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

/// One file of a sync.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkillFile {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200, pattern = r"\S"))]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 200000))]
    pub content: String,
}

/// The body of `PUT /api/projects/:id/skills`: the whole set. Files not in it are retired.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkillSync {
    #[cfg_attr(feature = "openapi", schema(max_items = 100))]
    pub files: Vec<SkillFile>,
}

/// What a sync did, by file name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SkillSyncResult {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
}

impl SkillSync {
    pub fn validate(&self) -> crate::Result<()> {
        if self.files.len() > 100 {
            return Err(crate::Error::invalid("files", "too_many", "at most 100 files"));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, f) in self.files.iter().enumerate() {
            let field = format!("files[{i}]");
            if crate::text::blank(&f.name) || f.name.chars().count() > 200 {
                return Err(crate::Error::invalid(
                    format!("{field}.name"),
                    "invalid",
                    "1 to 200 characters, not only whitespace",
                ));
            }
            if f.content.chars().count() > 200_000 {
                return Err(crate::Error::invalid(format!("{field}.content"), "too_long", "at most 200000 characters"));
            }
            if !names.insert(f.name.as_str()) {
                return Err(crate::Error::invalid(
                    format!("{field}.name"),
                    "duplicate",
                    format!("{:?} is given twice", f.name),
                ));
            }
        }
        Ok(())
    }
}
