-- The runner's second half: questions an agent asks a person, feedback that sends finished
-- work back (reviews, CI, the merge queue), merges, and the merge slot.

-- Open questions count as open blockers: an issue waiting for an answer is not dispatched.
ALTER TABLE issues ADD COLUMN open_questions BIGINT NOT NULL DEFAULT 0;
-- When its pull request was approved (for the merge queue) and merged.
ALTER TABLE issues ADD COLUMN approved_at BIGINT;
ALTER TABLE issues ADD COLUMN merged_at BIGINT;
-- A blocker of this relation is finished only once its pull request is merged.
-- New blocks inside a project that asks for it wait for the merge too.
ALTER TABLE projects ADD COLUMN wait_for_merge BIGINT NOT NULL DEFAULT 0;
ALTER TABLE issue_relations ADD COLUMN until_merged BIGINT NOT NULL DEFAULT 0;

CREATE TABLE questions (
    id          TEXT PRIMARY KEY,
    issue_id    TEXT NOT NULL REFERENCES issues (id),
    session_id  TEXT,
    body        TEXT NOT NULL,
    asked_by    TEXT NOT NULL,
    asked_at    BIGINT NOT NULL,
    answer      TEXT,
    answered_by TEXT,
    answered_at BIGINT
);
CREATE INDEX questions_issue ON questions (issue_id, asked_at);
CREATE INDEX questions_open ON questions (asked_at) WHERE answered_at IS NULL;

-- What sends finished work back: kept until the issue is done again.
CREATE TABLE rework (
    id           TEXT PRIMARY KEY,
    issue_id     TEXT NOT NULL REFERENCES issues (id),
    kind         TEXT NOT NULL,
    author       TEXT,
    body         TEXT NOT NULL,
    path         TEXT,
    line         BIGINT,
    url          TEXT,
    created_at   BIGINT NOT NULL,
    addressed_at BIGINT
);
CREATE INDEX rework_pending ON rework (issue_id, created_at) WHERE addressed_at IS NULL;

-- One runner lands a project's pull requests at a time: the slot is a lease.
CREATE TABLE merge_slots (
    scope      TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
