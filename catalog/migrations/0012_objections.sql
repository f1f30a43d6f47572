-- Objections and corrections (异议核实与纠错): a record's items disputed
-- by a consumer or the portal, answered by the provider within working
-- days, closed by a verified correction or a reasoned rejection; kept
-- with their history. Migration 13 makes their changes count as the
-- lists' topic, so that replicas reload their disputed marks with the lists.
CREATE TABLE objections (
    id                BIGINT PRIMARY KEY,
    resource_code     TEXT NOT NULL,
    record_key        TEXT NOT NULL,
    items             TEXT NOT NULL,
    claimed           TEXT NOT NULL,
    evidence          TEXT NOT NULL,
    raised_by         TEXT NOT NULL,
    raised_for        TEXT,
    provider          TEXT NOT NULL,
    status            TEXT NOT NULL,
    raised_at         TEXT NOT NULL,
    due_at            TEXT NOT NULL,
    closed_at         TEXT,
    version           BIGINT NOT NULL,
    corrected_version BIGINT,
    -- Keyed hashes of the disputed values when raised (never the values).
    value_hashes      TEXT NOT NULL
);
CREATE INDEX objections_by_status ON objections (status, resource_code);
CREATE TABLE objection_events (
    objection_id BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    note         TEXT NOT NULL,
    PRIMARY KEY (objection_id, seq)
);
