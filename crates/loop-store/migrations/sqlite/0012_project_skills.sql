-- A project's skills (its repository's AGENTS.md, CLAUDE.md, .loop/skills/*.md), versioned:
-- every version is kept in project_skill_versions; project_skills holds the current one of each
-- live file, which prompts read.
CREATE TABLE project_skill_versions (
    project_id TEXT NOT NULL REFERENCES projects (id),
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    content    TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, name, version)
);
CREATE TABLE project_skills (
    project_id TEXT NOT NULL REFERENCES projects (id),
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    content    TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, name)
);
