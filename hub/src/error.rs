//! The one error type of the `tongban` binary's crate: what a command can
//! fail with. (HTTP and gRPC statuses are the server's, `problem.rs`.)

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Catalog(#[from] tongban_catalog::Error),
    #[error(transparent)]
    Dataset(#[from] tongban_datasets::Error),
    #[error(transparent)]
    Audit(#[from] tongban_audit::Error),
    #[error(transparent)]
    Sync(#[from] tongban_sync::Error),
    #[error(transparent)]
    Datagen(#[from] tongban_datagen::Error),
    /// A task the command waited for panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The server could not start or serve.
    #[error(transparent)]
    Server(#[from] tongban_server::Error),
    /// The configuration, a TLS file, or a release path failed.
    #[error(transparent)]
    Core(#[from] tongban_core::Error),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A command's arguments or input files are wrong; the message says
    /// which and how to fix it.
    #[error("{0}")]
    Usage(String),
    /// `tongban audit verify` found one or more replicas' chains broken.
    #[error("audit log broken: {0}")]
    AuditChains(String),
    /// Shipped audit segments could not be read.
    #[error(transparent)]
    AuditShipped(#[from] tongban_core::audit_log::ShipError),
    /// The demo's generated data or directory is not as its code expects
    /// (a bug, caught before anything is served).
    #[error("demo data: {0}")]
    DemoData(String),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn file(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::File { path, source }
    }
}
