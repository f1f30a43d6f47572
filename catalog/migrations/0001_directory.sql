-- The resource directory. Portable SQL: the same file runs on SQLite and
-- PostgreSQL. Times are RFC 3339 UTC text and dates ISO text, so both sort
-- correctly as text; integers are BIGINT everywhere.

CREATE TABLE departments (
    code          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    level         TEXT NOT NULL,
    parent_code   TEXT REFERENCES departments (code),
    division_code TEXT,
    credit_code   TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE resources (
    code          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    provider_code TEXT NOT NULL REFERENCES departments (code),
    summary       TEXT NOT NULL,
    category      TEXT NOT NULL,
    base_library  TEXT,
    format        TEXT NOT NULL,
    update_cycle  TEXT NOT NULL,
    publish_date  TEXT,
    key_items     TEXT NOT NULL, -- JSON array of item names
    status        TEXT NOT NULL,
    version       BIGINT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    -- lower-cased code, name, summary, item names and labels, for text search
    search_text   TEXT NOT NULL
);

CREATE INDEX resources_provider ON resources (provider_code);

CREATE TABLE data_items (
    resource_code   TEXT NOT NULL REFERENCES resources (code),
    position        BIGINT NOT NULL,
    name            TEXT NOT NULL,
    label           TEXT NOT NULL,
    data_type       TEXT NOT NULL,
    description     TEXT NOT NULL,
    sensitivity     TEXT NOT NULL,
    share_type      TEXT NOT NULL,
    share_condition TEXT,
    legal_basis     TEXT,
    PRIMARY KEY (resource_code, name)
);

CREATE TABLE dataset_versions (
    resource_code TEXT NOT NULL REFERENCES resources (code),
    version       BIGINT NOT NULL,
    created_at    TEXT NOT NULL,
    row_count     BIGINT NOT NULL,
    byte_size     BIGINT NOT NULL,
    location      TEXT NOT NULL,
    origin        TEXT NOT NULL,
    PRIMARY KEY (resource_code, version)
);

CREATE TABLE tokens (
    token_hash      TEXT PRIMARY KEY, -- hex SHA-256 of the token; the token itself is never stored
    department_code TEXT NOT NULL REFERENCES departments (code),
    role            TEXT NOT NULL,
    label           TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
