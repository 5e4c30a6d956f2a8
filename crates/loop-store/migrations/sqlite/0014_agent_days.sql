-- Agent efficiency, kept as it happens: each ended session adds itself to the row of its
-- agent, the UTC day it was claimed and its duration's bucket, so loop metrics read a few rows
-- per agent and day however many sessions there were.
--
-- took_bucket: 0 under 100 ms; otherwise (digits of the duration in ms) * 100 + its first two
-- digits rounded down to a step of 2 (10–19), 5 (20–39) or 10 (40–99). The same rule is
-- loop_core::duration_histogram::bucket_of; the two are checked against each other. Kept in
-- key order (WITHOUT ROWID), so a period's rows are read in one sweep.
CREATE TABLE agent_days (
    day             INTEGER NOT NULL,
    agent           TEXT NOT NULL,
    took_bucket     INTEGER NOT NULL,
    ended           INTEGER NOT NULL,
    done            INTEGER NOT NULL,
    -- Sessions that were their issue's first, and those of them that ended done.
    firsts          INTEGER NOT NULL,
    first_done      INTEGER NOT NULL,
    -- Sums of what sessions reported, and how many reported.
    tokens          INTEGER NOT NULL,
    tokens_reported INTEGER NOT NULL,
    cost_usd        REAL NOT NULL,
    cost_reported   INTEGER NOT NULL,
    PRIMARY KEY (day, agent, took_bucket)
) WITHOUT ROWID;

-- The sessions that ended before this migration.
INSERT INTO agent_days (day, agent, took_bucket, ended, done, firsts, first_done, tokens, tokens_reported, cost_usd, cost_reported)
SELECT day, agent,
       CASE WHEN took < 100 THEN 0 ELSE length(CAST(took AS TEXT)) * 100 +
         CASE WHEN lead < 20 THEN lead - lead % 2 WHEN lead < 40 THEN lead - lead % 5 ELSE lead - lead % 10 END END,
       count(*), sum(done), sum(first), sum(first * done),
       COALESCE(sum(tokens), 0), count(tokens), COALESCE(sum(cost_usd), 0), count(cost_usd)
FROM (
    SELECT s.claimed_at / 86400000 AS day, s.agent, s.tokens, s.cost_usd,
           COALESCE(s.duration_ms, s.ended_at - s.claimed_at) AS took,
           CAST(substr(CAST(COALESCE(s.duration_ms, s.ended_at - s.claimed_at) AS TEXT), 1, 2) AS INTEGER) AS lead,
           CASE WHEN s.outcome = 'done' THEN 1 ELSE 0 END AS done,
           CASE WHEN EXISTS (SELECT 1 FROM agent_sessions e WHERE e.issue_id = s.issue_id AND e.claimed_at < s.claimed_at)
             THEN 0 ELSE 1 END AS first
    FROM agent_sessions s WHERE s.ended_at IS NOT NULL
) ended
GROUP BY 1, 2, 3;
