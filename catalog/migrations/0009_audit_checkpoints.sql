-- Signed checkpoints of each replica's audit log (C2SP signed notes of
-- the log's Merkle tree head), kept apart from the log itself: `tongban
-- audit verify` checks the log against every one of them, so records cut
-- off, edited or rewritten after a checkpoint was taken show.
CREATE TABLE audit_checkpoints (
    replica    TEXT NOT NULL,
    size       BIGINT NOT NULL,
    -- Hex of the tree's root at `size`.
    root       TEXT NOT NULL,
    -- The signed note, as published.
    note       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (replica, size)
);
