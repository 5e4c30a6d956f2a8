-- Where a goal started: the first value its current value took. Progress is measured from it,
-- so a goal to bring a value down fills up as the value falls.
ALTER TABLE goals ADD COLUMN baseline_value DOUBLE PRECISION;

UPDATE goals SET baseline_value =
    (SELECT value FROM goal_readings r WHERE r.goal_id = goals.id ORDER BY r.recorded_at, r.seq LIMIT 1);
