-- While writes fail (a full disk), /health checks now and then with a real write: a row of
-- 64 KiB, added and removed in one transaction.
CREATE TABLE storage_probes (
    id     INTEGER PRIMARY KEY,
    filler BLOB NOT NULL
);
