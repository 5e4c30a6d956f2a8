-- The dashboard's counts, kept to index scans at any backlog size. Neither index is written
-- by a claim (it changes neither `type` nor makes an issue `done`).

-- Issues by type (by status uses issues_status).
CREATE INDEX issues_type ON issues (type) WHERE deleted_at IS NULL;

-- Issues done recently.
CREATE INDEX issues_done ON issues (completed_at) WHERE status = 'done' AND deleted_at IS NULL;

-- Not indexed: when each chain last changed. An index on it is rewritten by every claim (which
-- changes `updated_at`) and cost claims about a fifth of their throughput.
