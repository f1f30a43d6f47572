//! Errors as RFC 9457 `application/problem+json`, with a stable `code` that
//! clients can switch on. The whole mapping from codes to HTTP and gRPC
//! statuses is the one table here, [`edge`]; domain errors convert to a
//! [`Problem`] (HTTP) or a `tonic::Status` (Flight) through it.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tongban_core::Code;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// How a code shows at each edge.
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub http: StatusCode,
    pub grpc: tonic::Code,
    /// The problem's fixed `title`.
    pub title: &'static str,
}

/// The one table from error codes to HTTP statuses, gRPC codes and titles.
pub const fn edge(code: Code) -> Edge {
    use StatusCode as H;
    use tonic::Code as G;
    let (http, grpc, title) = match code {
        Code::Unauthorized => (
            H::UNAUTHORIZED,
            G::Unauthenticated,
            "Authentication required",
        ),
        Code::Forbidden => (
            H::FORBIDDEN,
            G::PermissionDenied,
            "Not allowed for this identity",
        ),
        Code::Denied => (
            H::FORBIDDEN,
            G::PermissionDenied,
            "Not allowed for this identity",
        ),
        Code::NotFound => (H::NOT_FOUND, G::NotFound, "Not found"),
        Code::InvalidInput => (H::UNPROCESSABLE_ENTITY, G::InvalidArgument, "Invalid input"),
        Code::InvalidJson | Code::InvalidQuery | Code::InvalidPath | Code::InvalidBody => {
            (H::BAD_REQUEST, G::InvalidArgument, "Bad request")
        }
        Code::InvalidParameter => (H::BAD_REQUEST, G::InvalidArgument, "Invalid parameter"),
        Code::InvalidImport => (
            H::UNPROCESSABLE_ENTITY,
            G::InvalidArgument,
            "Invalid import",
        ),
        Code::UnsupportedMediaType => (
            H::UNSUPPORTED_MEDIA_TYPE,
            G::InvalidArgument,
            "Unsupported media type",
        ),
        Code::TooLarge => (
            H::PAYLOAD_TOO_LARGE,
            G::InvalidArgument,
            "Request body too large",
        ),
        Code::MethodNotAllowed => (
            H::METHOD_NOT_ALLOWED,
            G::Unimplemented,
            "Method not allowed",
        ),
        Code::RangeNotSatisfiable => (
            H::RANGE_NOT_SATISFIABLE,
            G::OutOfRange,
            "Range not satisfiable",
        ),
        Code::Conflict => (
            H::CONFLICT,
            G::FailedPrecondition,
            "Conflicts with current state",
        ),
        Code::Duplicate => (H::CONFLICT, G::AlreadyExists, "Already exists"),
        Code::QuotaExceeded => (H::TOO_MANY_REQUESTS, G::ResourceExhausted, "Quota exceeded"),
        // The caller no longer has permission for what it opened.
        Code::PolicyChanged => (H::FORBIDDEN, G::PermissionDenied, "The lists changed"),
        Code::AuditUnavailable => (
            H::SERVICE_UNAVAILABLE,
            G::Unavailable,
            "Audit log unavailable",
        ),
        Code::IndexLoading => (
            H::SERVICE_UNAVAILABLE,
            G::Unavailable,
            "Index not loaded yet",
        ),
        Code::StoreUnavailable => (
            H::SERVICE_UNAVAILABLE,
            G::Unavailable,
            "Catalog store unavailable",
        ),
        // Whose fault: the provider's (502, 504) or nobody's for now (503).
        Code::ProviderError => (H::BAD_GATEWAY, G::Unavailable, "Provider error"),
        Code::ProviderTimeout => (
            H::GATEWAY_TIMEOUT,
            G::DeadlineExceeded,
            "Provider timed out",
        ),
        Code::ProviderUnavailable => (
            H::SERVICE_UNAVAILABLE,
            G::Unavailable,
            "Provider unavailable",
        ),
        Code::Internal => (H::INTERNAL_SERVER_ERROR, G::Internal, "Internal error"),
    };
    Edge { http, grpc, title }
}

/// An error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:tongban:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short, fixed summary of the code.
    pub title: String,
    pub status: u16,
    /// What went wrong in this request, in lowercase prose.
    pub detail: String,
    /// Stable machine-readable code, e.g. `invalid_input`, `not_found`.
    #[schema(example = "invalid_input")]
    pub code: String,
    /// The input field at fault, as a path such as `items[2].legal_basis`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For policy denials: the rule that decided, e.g. `no_need`, `negative:3`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Seconds to wait, also sent as the `Retry-After` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// For `provider_error`: the status the provider answered with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_status: Option<u16>,
    /// For a disabled service: the notice its data office left for callers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

impl Problem {
    /// A problem with `code`; its status and title come from [`edge`].
    pub fn new(code: Code, detail: impl Into<String>) -> Problem {
        let edge = edge(code);
        Problem {
            type_: format!("urn:tongban:problem:{code}"),
            title: edge.title.to_string(),
            status: edge.http.as_u16(),
            detail: detail.into(),
            code: code.as_str().to_string(),
            field: None,
            rule: None,
            retry_after: None,
            provider_status: None,
            notice: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Problem {
        self.field = Some(field.into());
        self
    }

    pub fn unauthorized(detail: &str) -> Problem {
        Problem::new(Code::Unauthorized, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(Code::Forbidden, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(Code::NotFound, detail)
    }

    pub fn internal() -> Problem {
        Problem::new(
            Code::Internal,
            "the hub failed to handle this request; the error is in its log",
        )
    }

    /// The gRPC status of this problem, by the same table.
    pub fn into_status(self) -> tonic::Status {
        let code = Code::ALL
            .into_iter()
            .find(|c| c.as_str() == self.code)
            .unwrap_or(Code::Internal);
        let message = match &self.rule {
            Some(rule) => format!("{} (rule {rule})", self.detail),
            None => self.detail,
        };
        tonic::Status::new(edge(code).grpc, message)
    }
}

impl From<tongban_core::Error> for Problem {
    fn from(e: tongban_core::Error) -> Problem {
        if let tongban_core::Error::Catalog(e) = e {
            return Problem::from(e);
        }
        // A fault of the hub is logged, never described to the caller.
        if e.code() == Code::Internal {
            tracing::error!(error = %e, "request failed");
            return Problem::internal();
        }
        let mut p = Problem::new(e.code(), e.to_string());
        p.field = e.field().map(str::to_string);
        p.rule = e.rule().map(str::to_string);
        p.retry_after = e.retry_after_secs();
        p
    }
}

/// A release path's error as a gRPC status, through the same table.
pub fn status(e: tongban_core::Error) -> tonic::Status {
    Problem::from(e).into_status()
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<tongban_catalog::Error> for Problem {
    fn from(e: tongban_catalog::Error) -> Problem {
        let (code, detail) = tongban_core::codes::of_catalog(&e);
        let mut p = Problem::new(code, detail);
        if let tongban_catalog::Error::Invalid { field, .. } = e {
            p.field = Some(field);
        }
        p
    }
}

/// axum's rejection texts start with a capital; ours do not. Only the first
/// letter changes: the rest may quote the caller's input.
fn lower_first(s: String) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => s,
    }
}

impl From<JsonRejection> for Problem {
    fn from(r: JsonRejection) -> Problem {
        let detail = lower_first(r.body_text());
        match r {
            JsonRejection::JsonDataError(_) => Problem::new(Code::InvalidInput, detail),
            JsonRejection::MissingJsonContentType(_) => Problem::new(
                Code::UnsupportedMediaType,
                "send the body as application/json",
            ),
            JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Problem::new(Code::TooLarge, detail)
            }
            _ => Problem::new(Code::InvalidJson, detail),
        }
    }
}

impl From<QueryRejection> for Problem {
    fn from(r: QueryRejection) -> Problem {
        Problem::new(Code::InvalidQuery, lower_first(r.body_text()))
    }
}

impl From<PathRejection> for Problem {
    fn from(r: PathRejection) -> Problem {
        Problem::new(Code::InvalidPath, lower_first(r.body_text()))
    }
}

/// For routes that do not exist.
pub async fn no_route() -> Problem {
    Problem::not_found("no such endpoint; see /openapi.json")
}

/// For methods a route does not have.
pub async fn no_method() -> Problem {
    Problem::new(
        Code::MethodNotAllowed,
        "this endpoint does not accept that method; see /openapi.json",
    )
}
