-- Return flow (回流): the item with each row's division code; subscriptions
-- and the push outbox (one delivery per subscription and version).

ALTER TABLE resources ADD COLUMN division_item TEXT;

CREATE TABLE subscriptions (
    id             BIGINT PRIMARY KEY,
    name           TEXT NOT NULL,
    consumer_code  TEXT NOT NULL REFERENCES departments (code),
    resource_code  TEXT NOT NULL REFERENCES resources (code),
    need_id        BIGINT NOT NULL REFERENCES needs (id),
    items          TEXT NOT NULL, -- JSON array of item names
    channel        TEXT NOT NULL, -- JSON {"type": "pull" | "webhook" | "postgres", ...}
    secret         TEXT,          -- webhook signing key
    status         TEXT NOT NULL,
    status_reason  TEXT,
    cursor_version BIGINT,        -- the last version delivered or read
    matter         TEXT NOT NULL,
    mode           TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (consumer_code, name)
);

CREATE INDEX subscriptions_need ON subscriptions (need_id);

CREATE TABLE deliveries (
    id              BIGINT PRIMARY KEY,
    subscription_id BIGINT NOT NULL REFERENCES subscriptions (id),
    version         BIGINT NOT NULL,
    status          TEXT NOT NULL,
    kind            TEXT,
    attempts        BIGINT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    rows_delivered  BIGINT,
    bytes           BIGINT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT,
    lease_until     TEXT,          -- a hub holds the delivery until then
    lease_owner     TEXT,          -- which hub process (released when it stops)
    UNIQUE (subscription_id, version)
);

CREATE INDEX deliveries_pending ON deliveries (status, next_attempt_at);
