//! The hub's core: what every release path and every transport shares.
//!
//! # Layout
//! - [`hub`]: **the hub value** every path, transport and worker shares;
//! - [`access`]: **the access pipeline** — identity, input checks, one
//!   policy decision from one snapshot, quota, enforcement by the caller,
//!   a durable audit record. Every path that releases data calls it;
//! - [`audit_log`]: the audit log across replicas: sealed segments shipped
//!   to the object store, heads recorded in the catalog, verify and trace
//!   over every replica;
//! - [`codes`]: the stable error codes every transport maps to its statuses;
//! - [`config`]: the TOML configuration, validated without IO;
//! - [`tls`]: TLS and client certificates (rustls, ring), for HTTPS and Flight;
//! - [`auth`]: tokens (issued and hashed here only) and the identities
//!   behind them;
//! - [`policy`]: the compiled lists every decision reads, swapped whole;
//! - [`limits`]: need quotas as rate limits (governor);
//! - [`metrics`]: the pipeline's Prometheus counts (by consumer, resource,
//!   mode, outcome, rule), recorded where the audit record is made;
//! - [`sign`]: signed, expiring tokens (file URLs, console sessions);
//! - [`objections`]: objections to records (异议核实与纠错): who may raise
//!   them, the disputed marks answers carry, the provider's answers, the
//!   check that a correction changed the value;
//! - [`uses`]: the data-use record (数据使用记录): a subject's uses, from
//!   the audit log's subject index, for the portal and the data office;
//! - [`seal`]: licences' electronic seals (SM2 with SM3): what is signed,
//!   signing for the demo's issuers, verification against the directory.
//!
//! Crate ladder (docs/architecture.md): depends on `tongban-policies`,
//! `tongban-catalog`, `tongban-audit`, `tongban-datasets` and
//! `tongban-lookup`; knows neither HTTP nor gRPC, and nothing above it
//! (delivery, console, server) is imported here.

pub mod access;
pub mod audit_log;
pub mod auth;
pub mod codes;
pub mod config;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod objections;
pub mod policy;
pub mod seal;
pub mod sign;
pub mod tls;
pub mod uses;

pub use access::{Access, Ask, Error, Grant, Result};
pub use codes::Code;
pub use config::Config;
pub use hub::Hub;
