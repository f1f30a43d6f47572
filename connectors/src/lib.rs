//! Connectors: how data gets into and out of Tongban as Arrow record batches.
//!
//! This crate will own (see the connectors and batch sync issue):
//! - `Source`: streams Arrow batches from a provider's system, in full or since a
//!   watermark; `Sink`: writes a batch stream and commits or rolls back before
//!   returning;
//! - one folder per connector, configured by a closed tagged enum
//!   (`type = "postgres" | "mysql" | "file" | "http"`): PostgreSQL via binary
//!   `COPY`, MySQL/MariaDB with primary-key range splits, CSV / JSON lines /
//!   Parquet files, paginated JSON HTTP APIs;
//! - the type mapping of each source to Arrow, and the conformance suite every
//!   connector passes.
//!
//! Connectors know nothing of policies: what may leave is decided in
//! `tongban-policies` and enforced in the hub.
