-- Sync jobs (a source mapped to a resource, with mode, schedule and
-- watermark) and their run history.

CREATE TABLE sync_jobs (
    id               BIGINT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    resource_code    TEXT NOT NULL REFERENCES resources (code),
    source           TEXT NOT NULL, -- JSON connector config, checked by the hub
    mode             TEXT NOT NULL,
    watermark_column TEXT,
    tombstone_column TEXT,
    schedule         TEXT,
    transform        TEXT,
    enabled          BIGINT NOT NULL,
    watermark        TEXT,          -- the last value published (incremental)
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE sync_runs (
    id               BIGINT PRIMARY KEY,
    job_id           BIGINT NOT NULL REFERENCES sync_jobs (id),
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    outcome          TEXT NOT NULL,
    rows_read        BIGINT NOT NULL,
    rows_written     BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    bytes            BIGINT NOT NULL,
    inserts          BIGINT NOT NULL,
    updates          BIGINT NOT NULL,
    deletes          BIGINT NOT NULL,
    version          BIGINT,
    quarantine       TEXT,
    watermark        TEXT,
    error            TEXT
);

CREATE INDEX sync_runs_job ON sync_runs (job_id, id);
