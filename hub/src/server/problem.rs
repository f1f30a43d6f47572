//! Errors as RFC 9457 `application/problem+json`, with a stable `code` that
//! clients can switch on. The whole mapping from errors to HTTP statuses lives
//! here.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

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
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> Problem {
        Problem {
            type_: format!("urn:tongban:problem:{code}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            field: None,
            rule: None,
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Problem {
        self.field = Some(field.into());
        self
    }

    pub fn unauthorized(detail: &str) -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed for this identity",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not_found", "Not found", detail)
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, code, "Bad request", detail)
    }

    pub fn internal() -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the hub failed to handle this request; the error is in its log",
        )
    }
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
        use tongban_catalog::Error as E;
        match e {
            E::Invalid { field, message } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                "Invalid input",
                format!("{field}: {message}"),
            )
            .with_field(field),
            E::NotFound { what, key } => Problem::not_found(format!("{what} '{key}' not found")),
            e @ E::Duplicate { .. } => Problem::new(
                StatusCode::CONFLICT,
                "duplicate",
                "Already exists",
                e.to_string(),
            ),
            E::Forbidden(detail) => Problem::forbidden(detail),
            E::Conflict(detail) => Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                "Conflicts with current state",
                detail,
            ),
            e @ E::Import { .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_import",
                "Invalid import",
                e.to_string(),
            ),
            E::Database(e) => {
                tracing::error!(error = %e, "catalog store failed");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "Catalog store unavailable",
                    "the catalog store did not answer; try again shortly",
                )
            }
            e => {
                tracing::error!(error = %e, "catalog failed");
                Problem::internal()
            }
        }
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
            JsonRejection::JsonDataError(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                "Invalid input",
                detail,
            ),
            JsonRejection::MissingJsonContentType(_) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "send the body as application/json",
            ),
            JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "Request body too large",
                    detail,
                )
            }
            _ => Problem::bad_request("invalid_json", detail),
        }
    }
}

impl From<QueryRejection> for Problem {
    fn from(r: QueryRejection) -> Problem {
        Problem::bad_request("invalid_query", lower_first(r.body_text()))
    }
}

impl From<PathRejection> for Problem {
    fn from(r: PathRejection) -> Problem {
        Problem::bad_request("invalid_path", lower_first(r.body_text()))
    }
}

/// For routes that do not exist.
pub async fn no_route() -> Problem {
    Problem::not_found("no such endpoint; see /openapi.json")
}

/// For methods a route does not have.
pub async fn no_method() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed",
        "this endpoint does not accept that method; see /openapi.json",
    )
}
