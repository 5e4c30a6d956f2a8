-- One store for both databases (the same queries run on SQLite and PostgreSQL):
--   goal_readings.seq   insertion order, named (it was the implicit rowid; PostgreSQL has seq)
--   prompt_versions.*   a version's session counts and done time, kept as sessions end, so its
--                       completion rate and mean duration cost the same whatever its history
CREATE TABLE goal_readings_new (
    seq         INTEGER PRIMARY KEY,
    goal_id     TEXT NOT NULL REFERENCES goals (id),
    value       REAL NOT NULL,
    recorded_at INTEGER NOT NULL
);
INSERT INTO goal_readings_new (seq, goal_id, value, recorded_at)
    SELECT rowid, goal_id, value, recorded_at FROM goal_readings;
DROP TABLE goal_readings;
ALTER TABLE goal_readings_new RENAME TO goal_readings;
CREATE INDEX goal_readings_goal ON goal_readings (goal_id, recorded_at);

ALTER TABLE prompt_versions ADD COLUMN sessions_ended INTEGER NOT NULL DEFAULT 0;
ALTER TABLE prompt_versions ADD COLUMN sessions_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE prompt_versions ADD COLUMN done_duration_ms INTEGER NOT NULL DEFAULT 0;
UPDATE prompt_versions SET
    sessions_ended = (SELECT count(*) FROM agent_sessions s
                      WHERE s.template_version_id = prompt_versions.id AND s.ended_at IS NOT NULL),
    sessions_done = (SELECT count(*) FROM agent_sessions s
                     WHERE s.template_version_id = prompt_versions.id AND s.outcome = 'done'),
    done_duration_ms = (SELECT COALESCE(SUM(COALESCE(s.duration_ms, s.ended_at - s.claimed_at)), 0)
                        FROM agent_sessions s WHERE s.template_version_id = prompt_versions.id AND s.outcome = 'done');

-- The storage probe's filler is text on both databases (the shared code binds one type).
DROP TABLE storage_probes;
CREATE TABLE storage_probes (
    id     INTEGER PRIMARY KEY,
    filler TEXT NOT NULL
);
