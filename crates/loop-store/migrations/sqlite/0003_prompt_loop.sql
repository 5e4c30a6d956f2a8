-- The prompt improvement loop.
--   activated_at        when a version last became active: "reviews since it became active"
--   prompt_improvements which issue asks for which template version to be improved, so there is
--                       only ever one open request per template and dispatch can hydrate it
ALTER TABLE prompt_versions ADD COLUMN activated_at INTEGER;
UPDATE prompt_versions SET activated_at = created_at WHERE status = 'active';

CREATE TABLE prompt_improvements (
    issue_id    TEXT PRIMARY KEY REFERENCES issues (id),
    template_id TEXT NOT NULL REFERENCES prompt_templates (id),
    version_id  TEXT NOT NULL REFERENCES prompt_versions (id),
    created_at  INTEGER NOT NULL
);
CREATE INDEX prompt_improvements_template ON prompt_improvements (template_id, created_at);

-- Version metrics (completion rate, duration) aggregate the sessions that used the version.
CREATE INDEX sessions_version ON agent_sessions (template_version_id) WHERE template_version_id IS NOT NULL;
