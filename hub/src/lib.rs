//! The `tongban` binary: the command line, the demo and its data.
//!
//! # Layout
//! - [`cli`]: the `tongban` commands (`demo`, `serve`, `datagen`, `catalog`,
//!   `lists`, `sync`, `subscription`, `sharing`, `audit`, `token`, `cert`);
//! - [`demo`]: `tongban demo`, from nothing to a running hub;
//! - [`error`]: the crate's error type.
//!
//! Everything else is a crate below this one (docs/architecture.md):
//! `tongban-server` (HTTP and Flight, the composition root),
//! `tongban-console`, `tongban-delivery`, `tongban-sync` (the only user of
//! DataFusion), `tongban-core` (the hub value and the access pipeline),
//! `tongban-lookup`, `tongban-audit`, `tongban-datasets`, and
//! `tongban-datagen` (the demo directory and data generators). They are
//! re-exported here under their short names for the end-to-end tests and
//! the benchmarks.

pub mod cli;
pub mod demo;
pub mod error;

pub use error::{Error, Result};
pub use tongban_audit as audit;
pub use tongban_console as console;
pub use tongban_core::Config;
pub use tongban_core::{auth, config, limits, policy, tls};
pub use tongban_datagen as datagen;
pub use tongban_datasets as datasets;
pub use tongban_delivery as delivery;
pub use tongban_lookup::{answer, index, spatial};
pub use tongban_server as server;
pub use tongban_sync as sync;
