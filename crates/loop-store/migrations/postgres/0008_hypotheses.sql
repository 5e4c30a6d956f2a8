-- Hypotheses validated by data, monitors that wait, and what loop metrics are computed from.

-- Not dispatched before this time. While set, it counts as one more open blocker, so waiting
-- issues stay out of the ready indexes; the sweeper clears it when the time comes.
ALTER TABLE issues ADD COLUMN not_before BIGINT;
CREATE INDEX issues_waiting ON issues (not_before) WHERE not_before IS NOT NULL AND deleted_at IS NULL;

-- Hypotheses being tested against criteria: which metric's readings concern them, when their
-- window ends, and the last reading taken while testing. A row goes when the hypothesis is
-- resolved (the issue's hypothesis holds the truth).
CREATE TABLE hypothesis_watch (
    issue_id      TEXT PRIMARY KEY REFERENCES issues (id),
    metric        TEXT NOT NULL,
    observe_until BIGINT NOT NULL,
    last_value    DOUBLE PRECISION,
    last_read_at  BIGINT
);
CREATE INDEX hypothesis_watch_metric ON hypothesis_watch (metric);
CREATE INDEX hypothesis_watch_due ON hypothesis_watch (observe_until);

-- One row per resolved hypothesis, written when it is resolved, with the times of its chain
-- (signal, triage, hypothesis, tasks underway, tasks done): loop metrics read these rather
-- than the event log.
CREATE TABLE hypothesis_outcomes (
    issue_id            TEXT PRIMARY KEY REFERENCES issues (id),
    status              TEXT NOT NULL,
    resolved_at         BIGINT NOT NULL,
    signal_source       TEXT,
    template_version_id TEXT,
    signal_at           BIGINT,
    triaged_at          BIGINT,
    hypothesis_at       BIGINT NOT NULL,
    testing_at          BIGINT,
    shipped_at          BIGINT
);
CREATE INDEX hypothesis_outcomes_resolved ON hypothesis_outcomes (resolved_at);

CREATE INDEX sessions_claimed ON agent_sessions (claimed_at);

-- Triage and backlog issues by when they were last touched: what the stale policy closes.
CREATE INDEX issues_untouched ON issues (updated_at) WHERE status IN ('triage', 'backlog') AND deleted_at IS NULL;

-- The team's settings (see loop_core::settings), one row of JSON; without it, the defaults.
CREATE TABLE settings (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    value TEXT NOT NULL
);
