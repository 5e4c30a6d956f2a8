-- Dispatch: what eligibility and score depend on, kept on the issue row in the same
-- transaction as every change that affects it, so a claim is one index seek.
--   todo_since      when the issue last entered `todo` (NULL when not in todo)
--   open_blockers   live, non-terminal issues that block it
--   has_active_goal its live project has a live, active goal
--   dispatch_key    (priority weight + type bonus + goal bonus) × 86 400 000 − todo_since;
--                   ordering by it is ordering by score (see loop_core::dispatch)
-- These columns are only maintained while an issue is in `todo`; they are recomputed when it
-- enters `todo`.

ALTER TABLE issues ADD COLUMN todo_since INTEGER;
ALTER TABLE issues ADD COLUMN open_blockers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE issues ADD COLUMN has_active_goal INTEGER NOT NULL DEFAULT 0;
ALTER TABLE issues ADD COLUMN dispatch_key INTEGER;

UPDATE issues SET todo_since = updated_at WHERE status = 'todo';
UPDATE issues SET
    open_blockers = (
        SELECT count(*) FROM issue_relations r JOIN issues b ON b.id = r.edge_from
        WHERE r.edge_kind = 'block' AND r.edge_to = issues.id
          AND b.deleted_at IS NULL AND b.status NOT IN ('done', 'canceled')),
    has_active_goal = EXISTS (
        SELECT 1 FROM projects p JOIN goals g ON (g.id = p.goal_id OR g.project_id = p.id)
        WHERE p.id = issues.project_id AND p.deleted_at IS NULL
          AND g.deleted_at IS NULL AND g.status = 'active')
WHERE status = 'todo';
UPDATE issues SET dispatch_key =
    (CASE priority WHEN 1 THEN 100 WHEN 2 THEN 75 WHEN 3 THEN 50 WHEN 4 THEN 25 ELSE 10 END
     + CASE type WHEN 'signal' THEN 50 WHEN 'hypothesis' THEN 40 WHEN 'plan' THEN 30 WHEN 'task' THEN 20 ELSE 10 END
     + 20 * has_active_goal) * 86400000 - todo_since
WHERE status = 'todo';

CREATE INDEX issues_ready ON issues (dispatch_key DESC, todo_since, number)
    WHERE status = 'todo' AND open_blockers = 0 AND deleted_at IS NULL;
CREATE INDEX issues_ready_project ON issues (project_id, dispatch_key DESC, todo_since, number)
    WHERE status = 'todo' AND open_blockers = 0 AND deleted_at IS NULL;
CREATE INDEX relations_edge_from ON issue_relations (edge_from, edge_kind);

-- One row per claim.
CREATE TABLE agent_sessions (
    id                  TEXT PRIMARY KEY,
    issue_id            TEXT NOT NULL REFERENCES issues (id),
    agent               TEXT NOT NULL,
    template_version_id TEXT,
    claimed_at          INTEGER NOT NULL,
    lease_expires_at    INTEGER NOT NULL,
    ended_at            INTEGER,
    outcome             TEXT,
    summary             TEXT,
    tokens              INTEGER,
    cost_usd            REAL,
    duration_ms         INTEGER,
    idempotency_key     TEXT,
    -- Why no prompt could be rendered for this claim, if so.
    prompt_error        TEXT
);
CREATE INDEX sessions_issue ON agent_sessions (issue_id, claimed_at);
CREATE INDEX sessions_open_by_lease ON agent_sessions (lease_expires_at) WHERE ended_at IS NULL;
CREATE INDEX sessions_open_by_agent ON agent_sessions (agent, claimed_at) WHERE ended_at IS NULL;
CREATE UNIQUE INDEX sessions_idempotency ON agent_sessions (agent, idempotency_key) WHERE idempotency_key IS NOT NULL;
