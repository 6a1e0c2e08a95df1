-- The slot ledger (SQLite): settled holds read once from a Prefect server, per server and tag.
-- Times are microseconds since the epoch (UTC), compared exactly with the server's bounds.

-- name: reset
DROP TABLE IF EXISTS hold;
DROP TABLE IF EXISTS coverage;

-- name: schema
CREATE TABLE IF NOT EXISTS coverage (
    server  TEXT NOT NULL,
    tag     TEXT NOT NULL,
    first   INTEGER NOT NULL,  -- every hold of the tag that started at or after this ...
    horizon INTEGER NOT NULL,  -- ... and before this is in `hold`, and was over when read
    PRIMARY KEY (server, tag)
);
CREATE TABLE IF NOT EXISTS hold (
    server      TEXT NOT NULL,
    tag         TEXT NOT NULL,
    task_run_id TEXT NOT NULL,
    task_run    TEXT NOT NULL,
    flow        TEXT NOT NULL,
    flow_run_id TEXT NOT NULL,
    pending_at  INTEGER,
    start       INTEGER NOT NULL,
    "end"       INTEGER NOT NULL,
    state       TEXT NOT NULL,
    lost        TEXT,  -- a holder that lost its slot: why, and its lease's last confirmation
    PRIMARY KEY (server, tag, task_run_id)
);
CREATE INDEX IF NOT EXISTS hold_by_start ON hold (server, tag, start);

-- name: coverage
SELECT first, horizon FROM coverage WHERE server = ? AND tag = ?;

-- name: count
SELECT count(*) FROM hold WHERE server = ? AND tag = ? AND start >= ? AND start < ?;

-- name: holds
SELECT task_run_id, task_run, flow, flow_run_id, pending_at, start, "end", state, lost
FROM hold WHERE server = ? AND tag = ? AND start >= ? AND start < ?;

-- name: forget
DELETE FROM hold WHERE server = ? AND tag = ?;

-- name: prune
DELETE FROM hold WHERE server = ? AND tag = ? AND start < ?;

-- name: keep
INSERT OR REPLACE INTO hold (server, tag, task_run_id, task_run, flow, flow_run_id, pending_at, start, "end", state,
                             lost)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: cover
INSERT OR REPLACE INTO coverage (server, tag, first, horizon) VALUES (?, ?, ?, ?);
