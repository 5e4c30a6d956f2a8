-- Loop's schema on PostgreSQL: the same tables and meanings as the SQLite store (see its
-- migrations for the reasoning behind each column). Instants are bigint milliseconds since the
-- Unix epoch and JSON columns hold serialised JSON text, as on SQLite, so both stores map rows
-- the same way and `loop export` / `loop import` move data between them unchanged.

-- Counters that must not skip: issue numbers and the event log's positions. A row lock on
-- the counter orders concurrent writers, so a reader that has seen event n has seen every
-- event before it (a sequence would let a later id commit first).
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('issue_number', 0), ('event', 0);

CREATE TABLE goals (
    id            TEXT PRIMARY KEY,
    title         TEXT NOT NULL,
    description   TEXT,
    metric        TEXT,
    target_value  DOUBLE PRECISION,
    current_value DOUBLE PRECISION,
    unit          TEXT,
    status        TEXT NOT NULL,
    project_id    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    deleted_at    BIGINT
);
CREATE INDEX goals_live ON goals (created_at) WHERE deleted_at IS NULL;
CREATE INDEX goals_project ON goals (project_id) WHERE deleted_at IS NULL;
CREATE INDEX goals_metric ON goals (metric) WHERE deleted_at IS NULL;

CREATE TABLE goal_readings (
    goal_id     TEXT NOT NULL REFERENCES goals (id),
    value       DOUBLE PRECISION NOT NULL,
    recorded_at BIGINT NOT NULL,
    seq         BIGSERIAL
);
CREATE INDEX goal_readings_goal ON goal_readings (goal_id, recorded_at);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    status      TEXT NOT NULL,
    health      TEXT NOT NULL,
    goal_id     TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);
CREATE INDEX projects_live ON projects (created_at) WHERE deleted_at IS NULL;

CREATE TABLE issues (
    id               TEXT PRIMARY KEY,
    number           BIGINT NOT NULL UNIQUE,
    title            TEXT NOT NULL,
    description      TEXT,
    type             TEXT NOT NULL,
    status           TEXT NOT NULL,
    priority         BIGINT NOT NULL,
    parent_id        TEXT,
    project_id       TEXT,
    signal_source    TEXT,
    signal_payload   TEXT,
    hypothesis       TEXT,
    agent_session_id TEXT,
    agent_summary    TEXT,
    commits          TEXT,
    pull_requests    TEXT,
    completed_at     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    deleted_at       BIGINT,
    -- Dispatch: kept in the same transaction as every change that affects them.
    todo_since       BIGINT,
    open_blockers    BIGINT NOT NULL DEFAULT 0,
    has_active_goal  BIGINT NOT NULL DEFAULT 0,
    dispatch_key     BIGINT
);
CREATE INDEX issues_live ON issues (created_at, number) WHERE deleted_at IS NULL;
CREATE INDEX issues_status ON issues (status, created_at) WHERE deleted_at IS NULL;
CREATE INDEX issues_parent ON issues (parent_id) WHERE deleted_at IS NULL;
CREATE INDEX issues_project ON issues (project_id, status) WHERE deleted_at IS NULL;
CREATE INDEX issues_type ON issues (type) WHERE deleted_at IS NULL;
CREATE INDEX issues_done ON issues (completed_at) WHERE status = 'done' AND deleted_at IS NULL;
CREATE INDEX issues_ready ON issues (dispatch_key DESC, todo_since, number)
    WHERE status = 'todo' AND open_blockers = 0 AND deleted_at IS NULL;
CREATE INDEX issues_ready_project ON issues (project_id, dispatch_key DESC, todo_since, number)
    WHERE status = 'todo' AND open_blockers = 0 AND deleted_at IS NULL;

CREATE TABLE labels (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    color      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX labels_live_name ON labels (name) WHERE deleted_at IS NULL;

CREATE TABLE issue_labels (
    issue_id TEXT NOT NULL REFERENCES issues (id),
    label_id TEXT NOT NULL REFERENCES labels (id),
    PRIMARY KEY (issue_id, label_id)
);
CREATE INDEX issue_labels_label ON issue_labels (label_id, issue_id);

CREATE TABLE issue_relations (
    id               TEXT PRIMARY KEY,
    type             TEXT NOT NULL,
    issue_id         TEXT NOT NULL REFERENCES issues (id),
    related_issue_id TEXT NOT NULL REFERENCES issues (id),
    edge_kind        TEXT NOT NULL,
    edge_from        TEXT NOT NULL,
    edge_to          TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX relations_edge ON issue_relations (edge_kind, edge_from, edge_to);
CREATE INDEX relations_issue ON issue_relations (issue_id);
CREATE INDEX relations_related ON issue_relations (related_issue_id);
CREATE INDEX relations_edge_to ON issue_relations (edge_to, edge_kind);
CREATE INDEX relations_edge_from ON issue_relations (edge_from, edge_kind);

CREATE TABLE comments (
    id          TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    issue_id    TEXT NOT NULL REFERENCES issues (id),
    author_name TEXT NOT NULL,
    author_type TEXT NOT NULL,
    parent_id   TEXT REFERENCES comments (id),
    created_at  BIGINT NOT NULL
);
CREATE INDEX comments_issue ON comments (issue_id, created_at);

CREATE TABLE issue_events (
    id         BIGINT PRIMARY KEY,
    issue_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX issue_events_issue ON issue_events (issue_id, id);

CREATE TABLE signals (
    id           TEXT PRIMARY KEY,
    source       TEXT NOT NULL,
    source_id    TEXT,
    type         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    payload      TEXT NOT NULL,
    issue_id     TEXT NOT NULL REFERENCES issues (id),
    created_at   BIGINT NOT NULL,
    fingerprint  TEXT NOT NULL DEFAULT '',
    occurrences  BIGINT NOT NULL DEFAULT 1,
    last_seen_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX signals_issue ON signals (issue_id);
CREATE INDEX signals_fingerprint ON signals (fingerprint, created_at);
CREATE INDEX signals_recent ON signals (created_at);

CREATE TABLE webhook_deliveries (
    provider    TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);

CREATE TABLE prompt_templates (
    id                TEXT PRIMARY KEY,
    slug              TEXT NOT NULL,
    name              TEXT NOT NULL,
    description       TEXT,
    conditions        TEXT NOT NULL,
    specificity       BIGINT NOT NULL,
    project_id        TEXT,
    active_version_id TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    deleted_at        BIGINT
);
CREATE UNIQUE INDEX templates_live_slug ON prompt_templates (slug) WHERE deleted_at IS NULL;

CREATE TABLE prompt_versions (
    id              TEXT PRIMARY KEY,
    template_id     TEXT NOT NULL REFERENCES prompt_templates (id),
    version         BIGINT NOT NULL,
    content         TEXT NOT NULL,
    changelog       TEXT,
    author_type     TEXT NOT NULL,
    author_name     TEXT NOT NULL,
    status          TEXT NOT NULL,
    usage_count     BIGINT NOT NULL DEFAULT 0,
    completion_rate DOUBLE PRECISION,
    avg_duration_ms DOUBLE PRECISION,
    review_score    DOUBLE PRECISION,
    created_at      BIGINT NOT NULL,
    activated_at    BIGINT,
    UNIQUE (template_id, version)
);

CREATE TABLE prompt_reviews (
    id           TEXT PRIMARY KEY,
    version_id   TEXT NOT NULL REFERENCES prompt_versions (id),
    issue_id     TEXT NOT NULL REFERENCES issues (id),
    clarity      BIGINT NOT NULL CHECK (clarity BETWEEN 1 AND 5),
    completeness BIGINT NOT NULL CHECK (completeness BETWEEN 1 AND 5),
    relevance    BIGINT NOT NULL CHECK (relevance BETWEEN 1 AND 5),
    feedback     TEXT,
    author_type  TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX prompt_reviews_version ON prompt_reviews (version_id, created_at);

CREATE TABLE prompt_improvements (
    issue_id    TEXT PRIMARY KEY REFERENCES issues (id),
    template_id TEXT NOT NULL REFERENCES prompt_templates (id),
    version_id  TEXT NOT NULL REFERENCES prompt_versions (id),
    created_at  BIGINT NOT NULL
);
CREATE INDEX prompt_improvements_template ON prompt_improvements (template_id, created_at);

CREATE TABLE agent_sessions (
    id                  TEXT PRIMARY KEY,
    issue_id            TEXT NOT NULL REFERENCES issues (id),
    agent               TEXT NOT NULL,
    template_version_id TEXT,
    claimed_at          BIGINT NOT NULL,
    lease_expires_at    BIGINT NOT NULL,
    ended_at            BIGINT,
    outcome             TEXT,
    summary             TEXT,
    tokens              BIGINT,
    cost_usd            DOUBLE PRECISION,
    duration_ms         BIGINT,
    idempotency_key     TEXT,
    prompt_error        TEXT
);
CREATE INDEX sessions_issue ON agent_sessions (issue_id, claimed_at);
CREATE INDEX sessions_open_by_lease ON agent_sessions (lease_expires_at) WHERE ended_at IS NULL;
CREATE INDEX sessions_open_by_agent ON agent_sessions (agent, claimed_at) WHERE ended_at IS NULL;
CREATE UNIQUE INDEX sessions_idempotency ON agent_sessions (agent, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX sessions_version ON agent_sessions (template_version_id) WHERE template_version_id IS NOT NULL;
