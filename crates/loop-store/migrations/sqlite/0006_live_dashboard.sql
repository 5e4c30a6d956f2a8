-- Every value a goal's current value took, so the dashboard can show its trend. Written in the
-- same transaction as the change (a PATCH or a metric reading).
CREATE TABLE goal_readings (
    goal_id     TEXT NOT NULL REFERENCES goals (id),
    value       REAL NOT NULL,
    recorded_at INTEGER NOT NULL
);
CREATE INDEX goal_readings_goal ON goal_readings (goal_id, recorded_at);

-- Goals that had a value before this migration start their history with it.
INSERT INTO goal_readings (goal_id, value, recorded_at)
SELECT id, current_value, updated_at FROM goals WHERE current_value IS NOT NULL;
