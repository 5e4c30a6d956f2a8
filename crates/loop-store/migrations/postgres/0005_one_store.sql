-- One store for both databases, and no write waits for another's commit:
--   issue numbers       from a sequence (gaps are fine), not a counter row every create locks
--   issue_events.id     from a sequence; `tx` is the writing transaction, so a reader of the
--                       log takes only events of transactions older than every one still
--                       running (see dashboard.rs), and never misses one that commits late
--   prompt_versions.*   a version's session counts and done time, kept as sessions end
CREATE SEQUENCE issue_numbers;
SELECT setval('issue_numbers', GREATEST(value, 1), value > 0) FROM counters WHERE name = 'issue_number';
ALTER TABLE issues ALTER COLUMN number SET DEFAULT nextval('issue_numbers');

CREATE SEQUENCE issue_event_ids;
SELECT setval('issue_event_ids', GREATEST(value, 1), value > 0) FROM counters WHERE name = 'event';
ALTER TABLE issue_events ALTER COLUMN id SET DEFAULT nextval('issue_event_ids');
ALTER TABLE issue_events ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX issue_events_feed ON issue_events (tx, id);
DROP TABLE counters;

ALTER TABLE prompt_versions ADD COLUMN sessions_ended BIGINT NOT NULL DEFAULT 0;
ALTER TABLE prompt_versions ADD COLUMN sessions_done BIGINT NOT NULL DEFAULT 0;
ALTER TABLE prompt_versions ADD COLUMN done_duration_ms BIGINT NOT NULL DEFAULT 0;
UPDATE prompt_versions SET
    sessions_ended = (SELECT count(*) FROM agent_sessions s
                      WHERE s.template_version_id = prompt_versions.id AND s.ended_at IS NOT NULL),
    sessions_done = (SELECT count(*) FROM agent_sessions s
                     WHERE s.template_version_id = prompt_versions.id AND s.outcome = 'done'),
    done_duration_ms = (SELECT COALESCE(SUM(COALESCE(s.duration_ms, s.ended_at - s.claimed_at)), 0)
                        FROM agent_sessions s WHERE s.template_version_id = prompt_versions.id AND s.outcome = 'done');

-- The storage probe's filler is text on both databases (the shared code binds one type),
-- stored uncompressed, so it takes the room it says.
ALTER TABLE storage_probes ALTER COLUMN filler TYPE TEXT USING encode(filler, 'escape');
ALTER TABLE storage_probes ALTER COLUMN filler SET STORAGE EXTERNAL;
