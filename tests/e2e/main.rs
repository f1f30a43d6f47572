//! End-to-end tests: they start the real hub (in-process on 127.0.0.1:0, or
//! the `tongban` binary itself) and talk to it over HTTP.
//!
//! - [`catalog_api`]: the directory API against demo data, on the embedded
//!   store and on the machine's PostgreSQL;
//! - [`cli`]: the `tongban` binary: `demo`, `catalog`, `config check`, `datagen`;
//! - [`lists_api`]: the three lists, the review workflow, `explain`;
//! - [`lookup_api`]: lookup and verification with policy, masks and row filters;
//! - [`tls_api`]: HTTPS and client certificates (mTLS).

mod catalog_api;
mod cli;
mod common;
mod lists_api;
mod lookup_api;
mod sync_runs;
mod tls_api;
