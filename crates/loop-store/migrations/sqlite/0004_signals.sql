-- Signals are deduplicated: a repeat of an open signal (same fingerprint) adds an occurrence
-- to it instead of opening a new issue. Webhook deliveries are processed once.
ALTER TABLE signals ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE signals ADD COLUMN occurrences INTEGER NOT NULL DEFAULT 1;
ALTER TABLE signals ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
UPDATE signals SET last_seen_at = created_at;
CREATE INDEX signals_fingerprint ON signals (fingerprint, created_at);
CREATE INDEX signals_recent ON signals (created_at);

CREATE TABLE webhook_deliveries (
    provider    TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (provider, delivery_id)
) WITHOUT ROWID;

CREATE INDEX goals_metric ON goals (metric) WHERE deleted_at IS NULL;
