//! The directory API under `/v1/catalog`: everyone with an identity reads,
//! the data office writes.

use super::AppState;
use super::extract::{Caller, DataOffice, Json, Path, Query};
use super::problem::Problem;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use tongban_catalog::{
    DatasetVersion, Department, Page, Resource, ResourceQuery, ResourceSpec, Status,
};

type ApiResult<T> = Result<T, Problem>;

/// Resource codes contain a slash (`101/000001`), so resource paths take two
/// segments: `/v1/catalog/resources/101/000001`.
fn code((class, seq): (String, String)) -> String {
    format!("{class}/{seq}")
}

/// List and search resources
///
/// Resources with their data items and newest dataset version, by code.
#[utoipa::path(get, path = "/v1/catalog/resources", tag = "catalog",
    params(ResourceQuery),
    responses(
        (status = 200, description = "One page of resources", body = Page<Resource>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad paging", body = Problem, content_type = "application/problem+json"),
    ),
    security(("token" = [])))]
pub async fn list_resources(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<ResourceQuery>,
) -> ApiResult<axum::Json<Page<Resource>>> {
    Ok(axum::Json(state.store.list_resources(&query).await?))
}

/// Create a resource (data office)
///
/// Validates the description and its items; nothing is written on error. The
/// resource starts as `draft` unless `status` says otherwise.
#[utoipa::path(post, path = "/v1/catalog/resources", tag = "catalog",
    request_body = ResourceSpec,
    responses(
        (status = 201, description = "Created", body = Resource),
        (status = 409, description = "Code already taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid description", body = Problem, content_type = "application/problem+json"),
    ),
    security(("token" = [])))]
pub async fn create_resource(
    State(state): State<AppState>,
    DataOffice(who): DataOffice,
    Json(spec): Json<ResourceSpec>,
) -> ApiResult<impl IntoResponse> {
    let created = state.store.create_resource(&spec).await?;
    tracing::info!(resource = %created.spec.code, by = %who.department, "resource created");
    state.lists_changed().await;
    let location = format!("/v1/catalog/resources/{}", created.spec.code);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(created),
    ))
}

/// Get a resource
#[utoipa::path(get, path = "/v1/catalog/resources/{class}/{seq}", tag = "catalog",
    params(("class" = String, Path, description = "Classification part of the code, e.g. 101"),
           ("seq" = String, Path, description = "Sequence part of the code, e.g. 000001")),
    responses(
        (status = 200, description = "The resource with its items", body = Resource),
        (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
    ),
    security(("token" = [])))]
pub async fn get_resource(
    State(state): State<AppState>,
    _caller: Caller,
    Path(parts): Path<(String, String)>,
) -> ApiResult<axum::Json<Resource>> {
    Ok(axum::Json(state.store.get_resource(&code(parts)).await?))
}

/// `GET /v1/catalog/resources/101%2F000001`: the code as one encoded segment,
/// for clients that escape it. Not in the OpenAPI document (same answer as
/// [`get_resource`]).
pub async fn get_resource_encoded(
    State(state): State<AppState>,
    _caller: Caller,
    Path(code): Path<String>,
) -> ApiResult<axum::Json<Resource>> {
    Ok(axum::Json(state.store.get_resource(&code).await?))
}

/// Replace a resource's description (data office)
///
/// The body's `code` must be the path's. Bumps the resource's version.
#[utoipa::path(put, path = "/v1/catalog/resources/{class}/{seq}", tag = "catalog",
    params(("class" = String, Path), ("seq" = String, Path)),
    request_body = ResourceSpec,
    responses(
        (status = 200, description = "Updated", body = Resource),
        (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Retired, or an illegal status change", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid description", body = Problem, content_type = "application/problem+json"),
    ),
    security(("token" = [])))]
pub async fn update_resource(
    State(state): State<AppState>,
    DataOffice(who): DataOffice,
    Path(parts): Path<(String, String)>,
    Json(spec): Json<ResourceSpec>,
) -> ApiResult<axum::Json<Resource>> {
    let updated = state.store.update_resource(&code(parts), &spec).await?;
    state.lists_changed().await;
    tracing::info!(resource = %updated.spec.code, version = updated.version, by = %who.department, "resource updated");
    Ok(axum::Json(updated))
}

async fn set_status(
    state: AppState,
    who: &str,
    code: String,
    status: Status,
) -> ApiResult<axum::Json<Resource>> {
    let r = state.store.set_resource_status(&code, status).await?;
    state.lists_changed().await;
    tracing::info!(resource = %code, status = %status, by = %who, "resource status changed");
    Ok(axum::Json(r))
}

/// Publish a resource (data office)
#[utoipa::path(post, path = "/v1/catalog/resources/{class}/{seq}/publish", tag = "catalog",
    params(("class" = String, Path), ("seq" = String, Path)),
    responses(
        (status = 200, description = "Published", body = Resource),
        (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Retired", body = Problem, content_type = "application/problem+json"),
    ),
    security(("token" = [])))]
pub async fn publish_resource(
    State(state): State<AppState>,
    DataOffice(who): DataOffice,
    Path(parts): Path<(String, String)>,
) -> ApiResult<axum::Json<Resource>> {
    set_status(state, &who.department, code(parts), Status::Published).await
}

/// Retire a resource (data office)
///
/// Retired resources stay in the directory, read-only.
#[utoipa::path(post, path = "/v1/catalog/resources/{class}/{seq}/retire", tag = "catalog",
    params(("class" = String, Path), ("seq" = String, Path)),
    responses(
        (status = 200, description = "Retired", body = Resource),
        (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
    ),
    security(("token" = [])))]
pub async fn retire_resource(
    State(state): State<AppState>,
    DataOffice(who): DataOffice,
    Path(parts): Path<(String, String)>,
) -> ApiResult<axum::Json<Resource>> {
    set_status(state, &who.department, code(parts), Status::Retired).await
}

/// List a resource's dataset versions, newest first
#[utoipa::path(get, path = "/v1/catalog/resources/{class}/{seq}/versions", tag = "catalog",
    params(("class" = String, Path), ("seq" = String, Path)),
    responses(
        (status = 200, description = "Versions", body = Vec<DatasetVersion>),
        (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
    ),
    security(("token" = [])))]
pub async fn list_versions(
    State(state): State<AppState>,
    _caller: Caller,
    Path(parts): Path<(String, String)>,
) -> ApiResult<axum::Json<Vec<DatasetVersion>>> {
    let code = code(parts);
    state.store.get_resource(&code).await?;
    Ok(axum::Json(state.store.list_versions(&code).await?))
}

/// List departments
#[utoipa::path(get, path = "/v1/catalog/departments", tag = "catalog",
    responses((status = 200, description = "All departments, by code", body = Vec<Department>)),
    security(("token" = [])))]
pub async fn list_departments(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<axum::Json<Vec<Department>>> {
    Ok(axum::Json(state.store.list_departments().await?))
}

/// Register a department (data office)
#[utoipa::path(post, path = "/v1/catalog/departments", tag = "catalog",
    request_body = Department,
    responses(
        (status = 201, description = "Created", body = Department),
        (status = 409, description = "Code already taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid department", body = Problem, content_type = "application/problem+json"),
    ),
    security(("token" = [])))]
pub async fn create_department(
    State(state): State<AppState>,
    DataOffice(who): DataOffice,
    Json(d): Json<Department>,
) -> ApiResult<impl IntoResponse> {
    let created = state.store.create_department(&d).await?;
    state.lists_changed().await;
    tracing::info!(department = %created.code, by = %who.department, "department created");
    let location = format!("/v1/catalog/departments/{}", created.code);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(created),
    ))
}

/// Get a department
#[utoipa::path(get, path = "/v1/catalog/departments/{code}", tag = "catalog",
    params(("code" = String, Path, description = "Department code, e.g. sh-gaj")),
    responses(
        (status = 200, description = "The department", body = Department),
        (status = 404, description = "No such department", body = Problem, content_type = "application/problem+json"),
    ),
    security(("token" = [])))]
pub async fn get_department(
    State(state): State<AppState>,
    _caller: Caller,
    Path(code): Path<String>,
) -> ApiResult<axum::Json<Department>> {
    Ok(axum::Json(state.store.get_department(&code).await?))
}

/// What a department's seal key is registered with.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SealKeySpec {
    /// Hex of the uncompressed SEC1 point of the department's SM2 public
    /// key (`04` ‖ x ‖ y, 130 hex digits).
    #[schema(
        example = "0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
    )]
    pub public_key: String,
}

/// Register a department's seal key
///
/// The SM2 public key the department seals its e-licences with (SM2 over
/// SM3, GB/T 38540); licence verification (`"seal": true`) checks seals
/// against it. Replaces an earlier key. Data office only.
#[utoipa::path(put, path = "/v1/catalog/departments/{code}/seal-key", tag = "catalog",
    params(("code" = String, Path, description = "Department code, e.g. sh-scjgj")),
    request_body = SealKeySpec,
    responses(
        (status = 200, description = "Registered", body = tongban_catalog::SealKeyRecord),
        (status = 404, description = "No such department", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an SM2 public key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("token" = [])))]
pub async fn register_seal_key(
    State(state): State<AppState>,
    _office: DataOffice,
    Path(code): Path<String>,
    Json(spec): Json<SealKeySpec>,
) -> ApiResult<axum::Json<tongban_catalog::SealKeyRecord>> {
    state.store.get_department(&code).await?;
    tongban_core::seal::check_public_key(&spec.public_key).map_err(|e| {
        Problem::new(tongban_core::Code::InvalidInput, format!("public_key: {e}"))
            .with_field("public_key")
    })?;
    let record = tongban_catalog::SealKeyRecord {
        department: code,
        algorithm: tongban_core::seal::ALGORITHM.to_string(),
        public_key: spec.public_key.trim().to_ascii_lowercase(),
        registered_at: chrono::Utc::now(),
    };
    state.store.register_seal_key(&record).await?;
    Ok(axum::Json(record))
}

/// The registered seal keys
///
/// Every department's SM2 seal key, as licence verification uses them.
#[utoipa::path(get, path = "/v1/catalog/seal-keys", tag = "catalog",
    responses((status = 200, description = "By department", body = Vec<tongban_catalog::SealKeyRecord>)),
    security(("token" = [])))]
pub async fn seal_keys(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<axum::Json<Vec<tongban_catalog::SealKeyRecord>>> {
    Ok(axum::Json(state.store.seal_keys().await?))
}
