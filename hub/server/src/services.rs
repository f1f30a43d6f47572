//! Interface sharing over HTTP: the services in the directory under
//! `/v1/services` (everyone with an identity reads, the data office
//! registers, imports and switches), their health data, and the call
//! endpoint `POST /v1/call/{class}/{seq}/{endpoint}`, which goes through the
//! access pipeline in `tongban_services::Services::call`.

use super::AppState;
use super::extract::{Caller, DataOffice, Json, Path};
use super::problem::Problem;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tongban_catalog::services::{
    DraftResource, ServiceRecord, ServiceRegistration, ServiceSwitch, from_openapi,
};
use tongban_services::health::HealthReport;
use tongban_services::{CallAnswer, CallRequest, Services};
use utoipa::ToSchema;

type ApiResult<T> = Result<T, Problem>;

fn code((class, seq): (String, String)) -> String {
    format!("{class}/{seq}")
}

impl From<tongban_services::Error> for Problem {
    fn from(e: tongban_services::Error) -> Problem {
        use tongban_services::Error as E;
        let e = match e {
            E::Access(e) => return Problem::from(e),
            E::Catalog(e) => return Problem::from(e),
            e => e,
        };
        let mut p = Problem::new(e.code(), e.to_string());
        p.retry_after = e.retry_after_secs();
        p.provider_status = e.provider_status();
        p.notice = e.notice().map(str::to_string);
        if let E::Tls { .. } = e {
            p.field = Some("service.tls".into());
        }
        p
    }
}

/// After a write: the lists (a service's resource is part of them) and the
/// service runtimes pick the change up at once on this hub.
async fn changed(state: &AppState) {
    state.lists_changed().await;
    if let Err(e) = state.services.reload(state.store.as_ref()).await {
        tracing::error!(error = %e, "could not reload the services; the previous definitions stay in force");
    }
}

/// List the services
///
/// Every provider API registered in the directory, by resource code.
#[utoipa::path(get, path = "/v1/services", tag = "services",
    responses((status = 200, description = "The services", body = Vec<ServiceRecord>)),
    security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<axum::Json<Vec<ServiceRecord>>> {
    Ok(axum::Json(state.store.list_services().await?))
}

/// Register a service (data office)
///
/// The resource (its items are the endpoints' parameters and response
/// fields) and the interface, created or replaced together; the definition is
/// checked against the items and its TLS settings are tried. Nothing is saved
/// on error.
#[utoipa::path(post, path = "/v1/services", tag = "services",
    request_body = ServiceRegistration,
    responses((status = 201, description = "Registered", body = ServiceRecord),
              (status = 422, description = "Invalid definition; `field` names it", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn register(
    State(state): State<AppState>,
    DataOffice(who): DataOffice,
    Json(reg): Json<ServiceRegistration>,
) -> ApiResult<impl IntoResponse> {
    Services::check_tls(&reg.service)?;
    let record = state.store.register_service(&reg).await?;
    tracing::info!(service = %record.resource, by = %who.department, version = record.version, "service registered");
    changed(&state).await;
    Ok((StatusCode::CREATED, axum::Json(record)))
}

/// A provider's OpenAPI document to import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenApiImport {
    /// The resource code to give the service, e.g. `302/000109`.
    pub code: String,
    /// The providing department.
    pub provider: String,
    /// Defaults to the document's title.
    #[serde(default)]
    pub name: Option<String>,
    /// Defaults to the document's first server.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The OpenAPI 3 document.
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
}

/// Import a service from its OpenAPI document (data office)
///
/// Every `get` and `post` operation with an `operationId` becomes an
/// endpoint; its parameters and its 200 answer's properties become items,
/// `conditional` and `internal`, of a `draft` resource for the data office to
/// review before publishing. Nothing can be called until it is published.
#[utoipa::path(post, path = "/v1/services/import-openapi", tag = "services",
    request_body = OpenApiImport,
    responses((status = 201, description = "Imported as a draft", body = ServiceRecord),
              (status = 422, description = "Not an OpenAPI 3 document, or it yields an invalid definition", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn import_openapi(
    State(state): State<AppState>,
    DataOffice(who): DataOffice,
    Json(req): Json<OpenApiImport>,
) -> ApiResult<impl IntoResponse> {
    let reg = from_openapi(
        &req.document,
        DraftResource {
            code: req.code,
            provider: req.provider,
            name: req.name,
        },
        req.base_url,
    )?;
    let record = state.store.register_service(&reg).await?;
    tracing::info!(service = %record.resource, by = %who.department, "service imported from OpenAPI");
    changed(&state).await;
    Ok((StatusCode::CREATED, axum::Json(record)))
}

/// One service
#[utoipa::path(get, path = "/v1/services/{class}/{seq}", tag = "services",
    params(("class" = String, Path, description = "Classification, e.g. `302`"),
           ("seq" = String, Path, description = "Sequence, e.g. `000101`")),
    responses((status = 200, description = "The service", body = ServiceRecord)),
    security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(parts): Path<(String, String)>,
) -> ApiResult<axum::Json<ServiceRecord>> {
    Ok(axum::Json(state.store.get_service(&code(parts)).await?))
}

/// Enable or disable a service (data office)
///
/// A disabled service answers every call with `provider_unavailable` and
/// the notice, without touching the provider.
#[utoipa::path(put, path = "/v1/services/{class}/{seq}/switch", tag = "services",
    params(("class" = String, Path), ("seq" = String, Path)),
    request_body = ServiceSwitch,
    responses((status = 200, description = "Switched", body = ServiceRecord)),
    security(("token" = [])))]
pub async fn switch(
    State(state): State<AppState>,
    DataOffice(who): DataOffice,
    Path(parts): Path<(String, String)>,
    Json(switch): Json<ServiceSwitch>,
) -> ApiResult<axum::Json<ServiceRecord>> {
    let record = state.store.switch_service(&code(parts), &switch).await?;
    tracing::info!(service = %record.resource, by = %who.department, enabled = switch.enabled, "service switched");
    changed(&state).await;
    Ok(axum::Json(record))
}

/// Health data of every service
///
/// Per service: breaker state, last success and failure, counts since the
/// hub started, latency over the latest calls (X-Road's health data).
#[utoipa::path(get, path = "/v1/services/health", tag = "services",
    responses((status = 200, description = "Health of every service on this hub", body = Vec<HealthReport>)),
    security(("token" = [])))]
pub async fn health_all(
    State(state): State<AppState>,
    _caller: Caller,
) -> axum::Json<Vec<HealthReport>> {
    axum::Json(state.services.health())
}

/// Health data of one service
#[utoipa::path(get, path = "/v1/services/{class}/{seq}/health", tag = "services",
    params(("class" = String, Path), ("seq" = String, Path)),
    responses((status = 200, description = "Health of the service on this hub", body = HealthReport)),
    security(("token" = [])))]
pub async fn health(
    State(state): State<AppState>,
    _caller: Caller,
    Path(parts): Path<(String, String)>,
) -> ApiResult<axum::Json<HealthReport>> {
    let code = code(parts);
    state
        .services
        .health_of(&code)
        .map(axum::Json)
        .ok_or_else(|| Problem::not_found(format!("'{code}' is not a registered service")))
}

/// Call a provider's interface
///
/// Identity, matter and case, parameters (types, check digits of keys), one
/// policy decision over the endpoint's parameters and the response items
/// asked for, quota, then the provider — under its breaker, rate and
/// concurrency limits, timeout and retry budget. The answer is checked
/// against its declared fields, projected to the released items and masked;
/// the call is audited with SHA-256 hashes of the request as sent and the
/// answer as received, also returned as `X-Tongban-Request-Hash` and
/// `X-Tongban-Response-Hash`. Errors say whose fault: the caller's (4xx),
/// the provider's (`provider_error` 502 with `provider_status`,
/// `provider_timeout` 504), or unavailable for now (`provider_unavailable`
/// 503 with `Retry-After`, and the notice of a disabled service).
#[utoipa::path(post, path = "/v1/call/{class}/{seq}/{endpoint}", tag = "services",
    params(("class" = String, Path, description = "Classification, e.g. `302`"),
           ("seq" = String, Path, description = "Sequence, e.g. `000101`"),
           ("endpoint" = String, Path, description = "The endpoint's name")),
    request_body = CallRequest,
    responses((status = 200, description = "The permitted, masked fields of the provider's answer", body = CallAnswer,
               headers(("X-Tongban-Request-Hash" = String, description = "SHA-256 of `METHOD SP path-and-query LF body` as sent"),
                       ("X-Tongban-Response-Hash" = String, description = "SHA-256 of the provider's answer body"),
                       ("X-Tongban-Request-Id" = String, description = "The call's id"))),
              (status = 403, description = "The decision does not allow the call; `rule` says why", body = Problem, content_type = "application/problem+json"),
              (status = 429, description = "The need's quota is used up", body = Problem, content_type = "application/problem+json"),
              (status = 502, description = "The provider answered with an error or a broken answer", body = Problem, content_type = "application/problem+json"),
              (status = 503, description = "Disabled, breaker open, or a limit toward the provider reached", body = Problem, content_type = "application/problem+json"),
              (status = 504, description = "The provider did not answer in time", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn call(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((class, seq, endpoint)): Path<(String, String, String)>,
    Json(req): Json<CallRequest>,
) -> ApiResult<Response> {
    let resource = format!("{class}/{seq}");
    let mut answer = state
        .services
        .call(&state.access, &who.department, &resource, &endpoint, &req)
        .await?;
    // The subject's disputed items, as on every answer (异议标注).
    if let Some(subject) = req
        .subject
        .as_deref()
        .map(|s| s.trim().to_ascii_uppercase())
        && let Some(marked) = state.disputes.items(&resource, &subject)
    {
        answer.disputed = marked
            .into_iter()
            .filter(|i| answer.data.contains_key(i))
            .collect();
    }
    let headers = [
        ("x-tongban-request-hash", answer.request_hash.clone()),
        ("x-tongban-response-hash", answer.response_hash.clone()),
        ("x-tongban-request-id", answer.request_id.clone()),
    ];
    let mut response = axum::Json(answer).into_response();
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    Ok(response)
}
