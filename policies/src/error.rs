//! The one error type of the policies crate.

/// What can go wrong compiling a policy set or enforcing a decision on data.
/// Messages are lowercase and name the entry or column at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A list entry refers to something the directory does not have, or
    /// breaks a list rule; `entry` names it, e.g. `need 12`.
    #[error("{entry}: {message}")]
    Invalid { entry: String, message: String },
    /// A column the decision names is not in the data.
    #[error("column '{0}' is not in the data")]
    MissingColumn(String),
    /// Masks work on text; the directory refuses them elsewhere, so this is a bug.
    #[error("column '{column}' of type {data_type} cannot be masked: masks apply to text")]
    MaskNotText { column: String, data_type: String },
    #[error(
        "unknown mask '{0}': expected citizen_id, credit_code, phone, chinese_name, address, keep_first:N, keep_last:N or hash"
    )]
    UnknownMask(String),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
