-- The three lists (needs, responsibilities, negative entries), the review
-- history of needs, the working-day calendar, and item masks.

ALTER TABLE data_items ADD COLUMN mask TEXT;

CREATE TABLE needs (
    id             BIGINT PRIMARY KEY,
    consumer_code  TEXT NOT NULL REFERENCES departments (code),
    resource_code  TEXT NOT NULL REFERENCES resources (code),
    items          TEXT NOT NULL, -- JSON array of item names
    matter         TEXT NOT NULL,
    mode           TEXT NOT NULL,
    justification  TEXT NOT NULL,
    row_filter     TEXT,          -- JSON {"item": ..., "prefix"|"equals": ...}
    daily_quota    BIGINT,
    clear_items    TEXT NOT NULL, -- JSON array
    valid_from     TEXT,
    valid_until    TEXT,
    status         TEXT NOT NULL,
    submitted_at   TEXT NOT NULL,
    due_at         TEXT,          -- deadline of the pending review stage
    decided_at     TEXT,
    updated_at     TEXT NOT NULL
);

CREATE INDEX needs_consumer ON needs (consumer_code);
CREATE INDEX needs_resource ON needs (resource_code);

CREATE TABLE need_events (
    need_id          BIGINT NOT NULL REFERENCES needs (id),
    seq              BIGINT NOT NULL,
    at               TEXT NOT NULL,
    actor_department TEXT NOT NULL,
    action           TEXT NOT NULL,
    reason           TEXT NOT NULL,
    PRIMARY KEY (need_id, seq)
);

CREATE TABLE negative_entries (
    id            BIGINT PRIMARY KEY,
    resource_code TEXT NOT NULL REFERENCES resources (code),
    items         TEXT NOT NULL, -- JSON array; empty = the whole resource
    legal_basis   TEXT NOT NULL,
    modes         TEXT NOT NULL, -- JSON array; empty = every mode
    consumers     TEXT NOT NULL, -- JSON array; empty = everyone
    note          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE responsibilities (
    id                     BIGINT PRIMARY KEY,
    provider_code          TEXT NOT NULL REFERENCES departments (code),
    resource_code          TEXT NOT NULL REFERENCES resources (code),
    items                  TEXT NOT NULL, -- JSON array
    refresh_interval_hours BIGINT NOT NULL,
    delivery               TEXT NOT NULL,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);

CREATE TABLE calendar_days (
    day  TEXT PRIMARY KEY, -- YYYY-MM-DD
    kind TEXT NOT NULL     -- holiday | workday
);
