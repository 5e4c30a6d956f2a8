-- Named tokens: each person, agent and integration has its own secret, kept only as its
-- SHA-256 hash. A name is unique among the tokens not revoked, so a revoked one can be
-- replaced under the same name.
CREATE TABLE api_tokens (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL,
    project_id      TEXT REFERENCES projects (id),
    secret_hash     TEXT NOT NULL,
    max_claims      BIGINT,
    rate_per_minute BIGINT NOT NULL,
    -- A JSON array of origins.
    allowed_origins TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    revoked_at      BIGINT,
    last_used_at    BIGINT
);
CREATE UNIQUE INDEX api_tokens_secret ON api_tokens (secret_hash);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
