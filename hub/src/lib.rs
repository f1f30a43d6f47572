//! The Tongban hub: the server and the `tongban` command line.
//!
//! # Layout
//! - [`cli`]: the `tongban` commands (`demo`, `serve`, `datagen`, `catalog`, `config`);
//! - [`config`]: the TOML server configuration and its validation;
//! - [`console`]: the data office's and departments' pages under `/console`;
//! - [`server`]: the HTTP API (axum), problem+json errors, OpenAPI document;
//! - [`auth`]: tokens and the identities behind them;
//! - [`audit`]: the hash-chained, append-only audit log with group commit;
//! - [`datasets`]: immutable Parquet dataset versions on the object store;
//! - [`delivery`]: subscriptions delivered — one policy plan for every
//!   channel: Delta Sharing, Arrow Flight `DoGet`, webhooks, PostgreSQL;
//! - [`datagen`]: the demo directory and the seeded base-library generators;
//! - [`policy`]: the compiled lists (the policy set) the hub decides with;
//! - [`index`]: in-memory lookup indexes over the newest dataset versions;
//! - [`answer`]: lookup answers written row by row from the index's columns;
//! - [`flight`]: Arrow Flight `DoExchange` for bulk lookups;
//! - [`limits`]: rate limits from need quotas (governor);
//! - [`spatial`]: point-in-polygon over division boundaries (R-tree);
//! - [`sync`]: sync runs (source → quality gate → dataset version) and the
//!   scheduler;
//! - [`tls`]: TLS and client certificates (mTLS) with rustls;
//! - [`demo`]: `tongban demo`, from nothing to a running hub;
//! - [`error`]: the crate's error type.
//!

// A `Problem` (an HTTP error body) is ~150 bytes and is returned by value
// from handlers: it is built once per failed request, never in a loop, and
// boxing it would only add an allocation to every error.
#![allow(clippy::result_large_err)]

pub mod answer;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
pub mod datagen;
pub mod datasets;
pub mod delivery;
pub mod demo;
pub mod error;
pub mod flight;
pub mod index;
pub mod limits;
pub mod policy;
pub mod server;
pub mod spatial;
pub mod sync;
pub mod tls;

pub use config::Config;
pub use error::{Error, Result};
