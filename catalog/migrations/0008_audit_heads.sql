-- The head of each replica's audit chain, as the replica last recorded
-- it: `tongban audit verify` checks that the chain it reads (the shipped
-- segments, and the replica's own disk where it runs) reaches this record
-- with this hash, so that a cut-off tail or a missing segment shows.
CREATE TABLE audit_heads (
    replica    TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    -- The last record of the newest segment shipped to the object store.
    shipped    BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);
