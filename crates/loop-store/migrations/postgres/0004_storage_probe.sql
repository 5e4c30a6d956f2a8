-- While writes fail (a full disk, a server restarting), /health checks now and then with a
-- real write: a row of 64 KiB added and removed in one transaction.
CREATE TABLE storage_probes (
    id     BIGINT PRIMARY KEY,
    filler BYTEA NOT NULL
);
