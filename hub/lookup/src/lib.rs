//! Lookups over the hub's in-memory copies of published resources.
//!
//! # Layout
//! - [`index`]: one resource version held in memory as an Arrow batch with
//!   hash maps from key (and secondary items) to rows; [`index::Indexes`]
//!   swaps new versions in without failing a request;
//! - [`spatial`]: point-in-polygon over division boundaries (R-tree);
//! - [`answer`]: answers written row by row from an index's columns, byte
//!   for byte what Arrow's JSON writer would write;
//! - [`keys`]: key normalisation and check digits, before any lookup.
//!
//! Nothing here decides or audits: the access pipeline (`tongban-core`)
//! does, and hands this crate only what the decision released.
//!
//! Crate ladder (docs/architecture.md): depends on `tongban-policies`,
//! `tongban-catalog` and `tongban-datasets`.

pub mod answer;
pub mod index;
pub mod keys;
pub mod spatial;

pub use index::{Index, Indexes};

/// What can go wrong building or reading an index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Catalog(#[from] tongban_catalog::Error),
    #[error(transparent)]
    Dataset(#[from] tongban_datasets::Error),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A version cannot be indexed as its resource says (no data, a key
    /// item missing, an unreadable boundary).
    #[error("index of {resource}: {message}")]
    Unindexable { resource: String, message: String },
    /// An index build panicked or was cancelled.
    #[error("index build task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
