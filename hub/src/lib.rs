//! The Tongban hub: the server and the `tongban` command line.
//!
//! # Layout
//! - [`cli`]: the `tongban` commands (`demo`, `serve`, `datagen`, `catalog`, `config`);
//! - [`console`]: the data office's and departments' pages under `/console`;
//! - [`server`]: the HTTP API (axum), problem+json errors, OpenAPI document;
//! - [`delivery`]: subscriptions delivered — one policy plan for every
//!   channel: Delta Sharing, Arrow Flight `DoGet`, webhooks, PostgreSQL;
//! - [`datagen`]: the demo directory and the seeded base-library generators;
//! - [`demo`]: `tongban demo`, from nothing to a running hub;
//! - [`error`]: the crate's error type.
//!
//! Below this crate: `tongban-core` (the access pipeline, identities, the
//! compiled lists, quotas, error codes), `tongban-datasets` (dataset versions),
//! `tongban-audit` (the audit log), `tongban-lookup` (indexes, spatial
//! search, the answer writer, key checks) and `tongban-sync` (sync runs,
//! the only user of DataFusion).

// A `Problem` (an HTTP error body) is ~150 bytes and is returned by value
// from handlers: it is built once per failed request, never in a loop, and
// boxing it would only add an allocation to every error.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod console;
pub mod datagen;
pub mod demo;
pub mod error;
pub mod server;

pub use error::{Error, Result};
pub use tongban_audit as audit;
pub use tongban_core::Config;
pub use tongban_core::{auth, config, limits, policy, tls};
pub use tongban_datasets as datasets;
pub use tongban_delivery as delivery;
pub use tongban_lookup::{answer, index, spatial};
pub use tongban_sync as sync;
