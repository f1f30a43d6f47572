//! The one error type of the catalog crate.

/// What can go wrong in the directory. Messages are lowercase and name the
/// field or record at fault, so they can be shown to users as they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input broke a directory rule; `field` is a path such as `items[2].legal_basis`.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{what} '{key}' not found")]
    NotFound { what: &'static str, key: String },
    #[error("{what} '{key}' already exists")]
    Duplicate { what: &'static str, key: String },
    /// The request is well formed but clashes with the record's state.
    #[error("{0}")]
    Conflict(String),
    /// The acting department may not do this (e.g. approve for another provider).
    #[error("{0}")]
    Forbidden(String),
    /// An import failed at a record (`line 7`, `resources[3]`); nothing was written.
    #[error("{at}: {source}")]
    Import { at: String, source: Box<Error> },
    #[error(
        "unsupported store url '{0}': expected sqlite://PATH, sqlite::memory: or postgres://..."
    )]
    StoreUrl(String),
    #[error("catalog database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("catalog file error: {0}")]
    Io(#[from] std::io::Error),
    /// The stored data could not be read back (a bug or a hand-edited database).
    #[error("corrupt catalog record: {0}")]
    Corrupt(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Wraps an error with where in an import file it happened.
    pub(crate) fn at(self, at: &str) -> Self {
        match self {
            e @ Error::Import { .. } => e,
            e => Error::Import {
                at: at.to_string(),
                source: Box::new(e),
            },
        }
    }
}
