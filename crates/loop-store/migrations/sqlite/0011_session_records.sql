-- What ran in a session, as the runner that worked it (`loop agent`) records it: an
-- attestation (JSON text) and the agent's transcript. Kept apart from agent_sessions, whose rows
-- every session list reads.
CREATE TABLE session_records (
    session_id  TEXT PRIMARY KEY REFERENCES agent_sessions (id),
    attestation TEXT NOT NULL,
    transcript  TEXT,
    recorded_at INTEGER NOT NULL
);
