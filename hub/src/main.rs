//! The `tongban` binary: the command line and the demo.
//!
//! # Layout
//! - [`cli`]: the `tongban` commands (`demo`, `serve`, `datagen`, `catalog`,
//!   `lists`, `sync`, `subscription`, `sharing`, `audit`, `token`, `cert`),
//!   one file per command group;
//! - [`demo`]: `tongban demo`, from nothing to a running hub;
//! - [`error`]: what a command can fail with.
//!
//! A binary only: nothing imports it. Everything else is a crate below it
//! (docs/architecture.md): `tongban-server` (HTTP and Flight, the
//! composition root), `tongban-console`, `tongban-delivery`, `tongban-sync`
//! (the only user of DataFusion), `tongban-core` (the hub value and the
//! access pipeline), `tongban-lookup`, `tongban-audit`, `tongban-datasets`,
//! and `tongban-datagen` (the demo directory, data and credentials).

mod cli;
mod demo;
mod error;
mod providers;

use error::{Error, Result};
use tongban_core::Config;
use tongban_datagen as datagen;
use tongban_server as server;

/// mimalloc instead of glibc's malloc: streamed lookups and syncs allocate
/// and free millions of small buffers across threads, and glibc's free
/// lists (`_int_free`, `malloc_consolidate`) took a third of a stream's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
