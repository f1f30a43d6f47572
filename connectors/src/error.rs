//! The crate's one error type.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A connector's configuration is wrong; found before any IO.
    #[error("invalid connector config: {0}")]
    Config(String),
    /// A source column whose type has no Arrow mapping.
    #[error("column '{column}': type {type_name} is not supported (see docs/connectors.md)")]
    UnsupportedType { column: String, type_name: String },
    /// The source's data does not decode as its announced schema.
    #[error("bad data in column '{column}': {message}")]
    Decode { column: String, message: String },
    /// The source or sink system refused or failed.
    #[error("{system}: {message}")]
    Remote {
        system: &'static str,
        message: String,
    },
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error(transparent)]
    ObjectStore(#[from] object_store::Error),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
}
