//! The stable error codes of the hub: what a client switches on, in every
//! problem+json body (`code`) and gRPC status. Each transport maps a code to
//! its own status in one table (the server's `problem.rs`); nothing else
//! decides a status.

use std::fmt;

/// A stable, machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// No identity, or an unknown or revoked token or certificate.
    Unauthorized,
    /// The identity's role may not do this.
    Forbidden,
    /// The policy decision releases nothing; the problem names the rule.
    Denied,
    /// No such resource, record or endpoint.
    NotFound,
    /// A field breaks a rule (a key failing its check digit, a missing matter).
    InvalidInput,
    /// The body is not JSON.
    InvalidJson,
    /// A query parameter cannot be read.
    InvalidQuery,
    /// A path parameter cannot be read.
    InvalidPath,
    /// A protocol parameter is out of range (Delta Sharing, Flight).
    InvalidParameter,
    /// An uploaded file is not text.
    InvalidBody,
    /// An import file breaks a rule; the problem names the line.
    InvalidImport,
    /// The body is not sent as a type this endpoint reads.
    UnsupportedMediaType,
    /// The body is too large.
    TooLarge,
    /// The endpoint does not accept that method.
    MethodNotAllowed,
    /// A byte range starts past the end of the file asked for.
    RangeNotSatisfiable,
    /// The change conflicts with the current state.
    Conflict,
    /// The record already exists.
    Duplicate,
    /// The need's quota is used up; retry after the time given.
    QuotaExceeded,
    /// The lists changed while a stream was open; open it again.
    PolicyChanged,
    /// The audit log cannot record, so nothing is released.
    AuditUnavailable,
    /// The resource's data is still loading.
    IndexLoading,
    /// The catalog store did not answer.
    StoreUnavailable,
    /// A provider's interface answered with an error status or with an
    /// answer that breaks its declared schema: the provider's fault.
    ProviderError,
    /// A provider's interface did not answer within its timeout.
    ProviderTimeout,
    /// A provider's interface is disabled, its circuit breaker is open, or
    /// its concurrency or rate limit is reached; retry after the time given.
    ProviderUnavailable,
    /// A fault of the hub; the detail is in its log, never in the answer.
    Internal,
}

impl Code {
    /// The code as clients see it, e.g. `quota_exceeded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthorized => "unauthorized",
            Code::Forbidden => "forbidden",
            Code::Denied => "denied",
            Code::NotFound => "not_found",
            Code::InvalidInput => "invalid_input",
            Code::InvalidJson => "invalid_json",
            Code::InvalidQuery => "invalid_query",
            Code::InvalidPath => "invalid_path",
            Code::InvalidParameter => "invalid_parameter",
            Code::InvalidBody => "invalid_body",
            Code::InvalidImport => "invalid_import",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::TooLarge => "too_large",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::RangeNotSatisfiable => "range_not_satisfiable",
            Code::Conflict => "conflict",
            Code::Duplicate => "duplicate",
            Code::QuotaExceeded => "quota_exceeded",
            Code::PolicyChanged => "policy_changed",
            Code::AuditUnavailable => "audit_unavailable",
            Code::IndexLoading => "index_loading",
            Code::StoreUnavailable => "store_unavailable",
            Code::ProviderError => "provider_error",
            Code::ProviderTimeout => "provider_timeout",
            Code::ProviderUnavailable => "provider_unavailable",
            Code::Internal => "internal",
        }
    }

    /// Every code, for tables that must cover them all.
    pub const ALL: [Code; 26] = [
        Code::Unauthorized,
        Code::Forbidden,
        Code::Denied,
        Code::NotFound,
        Code::InvalidInput,
        Code::InvalidJson,
        Code::InvalidQuery,
        Code::InvalidPath,
        Code::InvalidParameter,
        Code::InvalidBody,
        Code::InvalidImport,
        Code::UnsupportedMediaType,
        Code::TooLarge,
        Code::MethodNotAllowed,
        Code::RangeNotSatisfiable,
        Code::Conflict,
        Code::Duplicate,
        Code::QuotaExceeded,
        Code::PolicyChanged,
        Code::AuditUnavailable,
        Code::IndexLoading,
        Code::StoreUnavailable,
        Code::ProviderError,
        Code::ProviderTimeout,
        Code::ProviderUnavailable,
        Code::Internal,
    ];
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The code of a catalog error.
pub fn catalog_code(e: &tongban_catalog::Error) -> Code {
    use tongban_catalog::Error as E;
    match e {
        E::Invalid { .. } => Code::InvalidInput,
        E::NotFound { .. } => Code::NotFound,
        E::Duplicate { .. } => Code::Duplicate,
        E::Forbidden(_) => Code::Forbidden,
        E::Conflict(_) => Code::Conflict,
        E::Import { .. } => Code::InvalidImport,
        E::Database(_) => Code::StoreUnavailable,
        _ => Code::Internal,
    }
}

/// The code and the caller-facing message of a catalog error. A store
/// fault is logged here and never described to the caller.
pub fn of_catalog(e: &tongban_catalog::Error) -> (Code, String) {
    use tongban_catalog::Error as E;
    match e {
        E::Invalid { field, message } => (Code::InvalidInput, format!("{field}: {message}")),
        E::NotFound { what, key } => (Code::NotFound, format!("{what} '{key}' not found")),
        E::Duplicate { .. } => (Code::Duplicate, e.to_string()),
        E::Forbidden(detail) => (Code::Forbidden, detail.clone()),
        E::Conflict(detail) => (Code::Conflict, detail.clone()),
        E::Import { .. } => (Code::InvalidImport, e.to_string()),
        E::Database(cause) => {
            tracing::error!(error = %cause, "catalog store failed");
            (
                Code::StoreUnavailable,
                "the catalog store did not answer; try again shortly".into(),
            )
        }
        e => {
            tracing::error!(error = %e, "catalog failed");
            (
                Code::Internal,
                "the hub failed to handle this request; the error is in its log".into(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case() {
        let names: std::collections::HashSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len());
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
    }
}
