//! The one error type of interface calls. Each variant says whose fault it
//! is through its [`Code`]: the caller's (4xx, from the pipeline), the
//! provider's (`provider_error` 502, `provider_timeout` 504), or nobody's
//! for now (`provider_unavailable` 503, with the time to wait).

use tongban_core::Code;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pipeline stage refused or failed: identity, input, decision,
    /// quota, audit.
    #[error(transparent)]
    Access(#[from] tongban_core::Error),
    /// No service is registered for the resource.
    #[error("'{resource}' is not a registered service")]
    NoService { resource: String },
    #[error("service '{resource}' has no endpoint '{endpoint}'; its endpoints are {}", .known.join(", "))]
    NoEndpoint {
        resource: String,
        endpoint: String,
        known: Vec<String>,
    },
    /// The service is switched off by the data office.
    #[error("this service is disabled{}", .notice.as_deref().map(|n| format!(": {n}")).unwrap_or_default())]
    Disabled { notice: Option<String> },
    /// The hub protects the provider: breaker open, rate or concurrency
    /// limit reached, or the hub cannot build its client.
    #[error("{detail}")]
    Unavailable {
        /// `breaker_open`, `breaker_half_open`, `rate_limit`,
        /// `concurrency_limit`, `misconfigured`.
        reason: &'static str,
        detail: String,
        retry_after_secs: u64,
    },
    /// The provider answered with a status that is not a success.
    #[error("the provider answered with status {status}")]
    ProviderStatus { status: u16 },
    /// The provider's answer is unusable: not JSON, breaks its declared
    /// schema, or is too large.
    #[error("{detail}")]
    ProviderBroken { status: Option<u16>, detail: String },
    #[error("the provider did not answer within {timeout_ms} ms")]
    ProviderTimeout { timeout_ms: u64 },
    /// The provider cannot be reached (connection refused, TLS failure).
    #[error("the provider cannot be reached: {detail}")]
    Unreachable { detail: String },
    /// The request to the provider cannot be built as defined.
    #[error("{message}")]
    TooLarge { message: String },
    /// A definition's TLS settings cannot be used.
    #[error("service.tls: {message}")]
    Tls { message: String },
    #[error(transparent)]
    Catalog(#[from] tongban_catalog::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn code(&self) -> Code {
        match self {
            Error::Access(e) => e.code(),
            Error::NoService { .. } | Error::NoEndpoint { .. } => Code::NotFound,
            Error::Disabled { .. } | Error::Unavailable { .. } => Code::ProviderUnavailable,
            Error::ProviderStatus { .. }
            | Error::ProviderBroken { .. }
            | Error::Unreachable { .. } => Code::ProviderError,
            Error::ProviderTimeout { .. } => Code::ProviderTimeout,
            Error::TooLarge { .. } => Code::TooLarge,
            Error::Tls { .. } => Code::InvalidInput,
            Error::Catalog(e) => tongban_core::codes::catalog_code(e),
        }
    }

    /// Short reason for the audit record and health data.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Disabled { .. } => "disabled",
            Error::Unavailable { reason, .. } => reason,
            Error::ProviderStatus { .. } => "provider_status",
            Error::ProviderBroken { .. } => "broken_answer",
            Error::ProviderTimeout { .. } => "timeout",
            Error::Unreachable { .. } => "unreachable",
            _ => "refused",
        }
    }

    /// Counts against the provider in its circuit breaker. A 4xx answer is
    /// the provider working as designed (it rejected the input), not failing.
    pub(crate) fn counts_as_failure(&self) -> bool {
        match self {
            Error::ProviderStatus { status } => *status >= 500,
            Error::ProviderBroken { .. }
            | Error::ProviderTimeout { .. }
            | Error::Unreachable { .. } => true,
            _ => false,
        }
    }

    /// Worth another attempt of an idempotent endpoint.
    pub(crate) fn retryable(&self) -> bool {
        match self {
            Error::ProviderStatus { status } => matches!(status, 502..=504),
            Error::ProviderTimeout { .. } | Error::Unreachable { .. } => true,
            _ => false,
        }
    }

    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Error::Access(e) => e.retry_after_secs(),
            Error::Unavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            // The data office decides when; a minute is a polite default.
            Error::Disabled { .. } => Some(60),
            _ => None,
        }
    }

    pub fn provider_status(&self) -> Option<u16> {
        match self {
            Error::ProviderStatus { status } => Some(*status),
            Error::ProviderBroken { status, .. } => *status,
            _ => None,
        }
    }

    pub fn notice(&self) -> Option<&str> {
        match self {
            Error::Disabled { notice } => notice.as_deref(),
            _ => None,
        }
    }
}
