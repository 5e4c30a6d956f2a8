-- Loop core schema (SQLite). Instants are integer milliseconds since the Unix epoch; JSON
-- columns hold serialised JSON text. Soft-deleted rows keep `deleted_at`; uniqueness of
-- names only applies to live rows, so deleted names can be reused.

CREATE TABLE goals (
    id            TEXT PRIMARY KEY,
    title         TEXT NOT NULL,
    description   TEXT,
    metric        TEXT,
    target_value  REAL,
    current_value REAL,
    unit          TEXT,
    status        TEXT NOT NULL,
    project_id    TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    deleted_at    INTEGER
);
CREATE INDEX goals_live ON goals (created_at) WHERE deleted_at IS NULL;
CREATE INDEX goals_project ON goals (project_id) WHERE deleted_at IS NULL;

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    status      TEXT NOT NULL,
    health      TEXT NOT NULL,
    goal_id     TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);
CREATE INDEX projects_live ON projects (created_at) WHERE deleted_at IS NULL;

CREATE TABLE issues (
    id               TEXT PRIMARY KEY,
    number           INTEGER NOT NULL UNIQUE,
    title            TEXT NOT NULL,
    description      TEXT,
    type             TEXT NOT NULL,
    status           TEXT NOT NULL,
    priority         INTEGER NOT NULL,
    parent_id        TEXT,
    project_id       TEXT,
    signal_source    TEXT,
    signal_payload   TEXT,
    hypothesis       TEXT,
    agent_session_id TEXT,
    agent_summary    TEXT,
    commits          TEXT,
    pull_requests    TEXT,
    completed_at     INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    deleted_at       INTEGER
);
CREATE INDEX issues_live ON issues (created_at, number) WHERE deleted_at IS NULL;
CREATE INDEX issues_status ON issues (status, created_at) WHERE deleted_at IS NULL;
CREATE INDEX issues_parent ON issues (parent_id) WHERE deleted_at IS NULL;
CREATE INDEX issues_project ON issues (project_id, status) WHERE deleted_at IS NULL;

CREATE TABLE labels (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    color      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX labels_live_name ON labels (name) WHERE deleted_at IS NULL;

CREATE TABLE issue_labels (
    issue_id TEXT NOT NULL REFERENCES issues (id),
    label_id TEXT NOT NULL REFERENCES labels (id),
    PRIMARY KEY (issue_id, label_id)
) WITHOUT ROWID;
CREATE INDEX issue_labels_label ON issue_labels (label_id, issue_id);

-- `edge_*` is the direction-free identity of a relation (see loop_core::relation::Edge):
-- "A blocks B" and "B blocked_by A" share one edge, so the unique index rejects both twins.
CREATE TABLE issue_relations (
    id               TEXT PRIMARY KEY,
    type             TEXT NOT NULL,
    issue_id         TEXT NOT NULL REFERENCES issues (id),
    related_issue_id TEXT NOT NULL REFERENCES issues (id),
    edge_kind        TEXT NOT NULL,
    edge_from        TEXT NOT NULL,
    edge_to          TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX relations_edge ON issue_relations (edge_kind, edge_from, edge_to);
CREATE INDEX relations_issue ON issue_relations (issue_id);
CREATE INDEX relations_related ON issue_relations (related_issue_id);
CREATE INDEX relations_edge_to ON issue_relations (edge_to, edge_kind);

CREATE TABLE comments (
    id          TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    issue_id    TEXT NOT NULL REFERENCES issues (id),
    author_name TEXT NOT NULL,
    author_type TEXT NOT NULL,
    parent_id   TEXT REFERENCES comments (id),
    created_at  INTEGER NOT NULL
);
CREATE INDEX comments_issue ON comments (issue_id, created_at);

-- Append-only history; `id` orders the whole log.
CREATE TABLE issue_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    issue_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX issue_events_issue ON issue_events (issue_id, id);

CREATE TABLE signals (
    id         TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    source_id  TEXT,
    type       TEXT NOT NULL,
    severity   TEXT NOT NULL,
    payload    TEXT NOT NULL,
    issue_id   TEXT NOT NULL REFERENCES issues (id),
    created_at INTEGER NOT NULL
);
CREATE INDEX signals_issue ON signals (issue_id);

CREATE TABLE prompt_templates (
    id                TEXT PRIMARY KEY,
    slug              TEXT NOT NULL,
    name              TEXT NOT NULL,
    description       TEXT,
    conditions        TEXT NOT NULL,
    specificity       INTEGER NOT NULL,
    project_id        TEXT,
    active_version_id TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    deleted_at        INTEGER
);
CREATE UNIQUE INDEX templates_live_slug ON prompt_templates (slug) WHERE deleted_at IS NULL;

CREATE TABLE prompt_versions (
    id              TEXT PRIMARY KEY,
    template_id     TEXT NOT NULL REFERENCES prompt_templates (id),
    version         INTEGER NOT NULL,
    content         TEXT NOT NULL,
    changelog       TEXT,
    author_type     TEXT NOT NULL,
    author_name     TEXT NOT NULL,
    status          TEXT NOT NULL,
    usage_count     INTEGER NOT NULL DEFAULT 0,
    completion_rate REAL,
    avg_duration_ms REAL,
    review_score    REAL,
    created_at      INTEGER NOT NULL,
    UNIQUE (template_id, version)
);

CREATE TABLE prompt_reviews (
    id           TEXT PRIMARY KEY,
    version_id   TEXT NOT NULL REFERENCES prompt_versions (id),
    issue_id     TEXT NOT NULL REFERENCES issues (id),
    clarity      INTEGER NOT NULL CHECK (clarity BETWEEN 1 AND 5),
    completeness INTEGER NOT NULL CHECK (completeness BETWEEN 1 AND 5),
    relevance    INTEGER NOT NULL CHECK (relevance BETWEEN 1 AND 5),
    feedback     TEXT,
    author_type  TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX prompt_reviews_version ON prompt_reviews (version_id, created_at);
