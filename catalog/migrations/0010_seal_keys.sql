-- The public keys departments seal their electronic licences with (SM2,
-- SM3 digest): licence verification checks a licence's seal against its
-- issuer's key here. One key per department; registering again replaces it.
CREATE TABLE seal_keys (
    department    TEXT PRIMARY KEY REFERENCES departments (code),
    algorithm     TEXT NOT NULL,
    -- Hex of the uncompressed SEC1 point.
    public_key    TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
