//! The three lists under `/v1/lists`: needs (any department applies; the
//! provider and the data office review), the negative and responsibility
//! lists (the data office edits), compliance, the working-day calendar, and
//! CSV/JSON import and export of each list.
//!
//! Every successful write recompiles the policy set, so a decision made right
//! after an approval already sees it.

use super::AppState;
use super::extract::{Caller, DataOffice, Json, Path, Query};
use super::problem::Problem;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use tongban_catalog::Role;
use tongban_catalog::list_exchange::{self, ListName};
use tongban_catalog::lists::*;
use tongban_core::Code;
use tongban_core::auth::Identity;
use tongban_policies::NeedStatus;
use tongban_policies::calendar::Calendar;
use utoipa::{IntoParams, ToSchema};

type ApiResult<T> = Result<T, Problem>;

fn actor(who: &Identity) -> Actor<'_> {
    Actor {
        department: &who.department,
        role: who.role,
    }
}

/// Filters for listing needs.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NeedFilter {
    /// Only needs in this state.
    #[param(value_type = Option<NeedStatusSchema>)]
    pub status: Option<NeedStatus>,
    /// Only needs for this resource.
    pub resource: Option<String>,
    /// Only needs pending past their review deadline.
    #[serde(default)]
    pub overdue: bool,
}

/// List needs
///
/// The data office sees every need; a department sees the needs it applied
/// for and those for the resources it provides.
#[utoipa::path(get, path = "/v1/lists/needs", tag = "lists", params(NeedFilter),
    responses((status = 200, description = "Needs, by id", body = Vec<NeedRecord>)),
    security(("token" = [])))]
pub async fn list_needs(
    State(state): State<AppState>,
    Caller(who): Caller,
    Query(f): Query<NeedFilter>,
) -> ApiResult<axum::Json<Vec<NeedRecord>>> {
    let query = NeedQuery {
        party: (who.role != Role::DataOffice).then(|| who.department.clone()),
        resource: f.resource,
        status: f.status,
        overdue_at: f.overdue.then(Utc::now),
    };
    Ok(axum::Json(state.store.list_needs(&query).await?))
}

/// Apply for a need (需求申请)
///
/// Files a need for the caller's department. Conditional items go to the
/// provider first (reply within 5 working days, 10 if the resource is not yet
/// published), then to the data office (2 working days); unconditional items
/// go straight to the data office.
#[utoipa::path(post, path = "/v1/lists/needs", tag = "lists", request_body = NeedApplication,
    responses((status = 201, description = "Filed", body = NeedRecord),
              (status = 422, description = "Not a valid application", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn apply_need(
    State(state): State<AppState>,
    Caller(who): Caller,
    Json(app): Json<NeedApplication>,
) -> ApiResult<impl IntoResponse> {
    let need = state.store.apply_need(&who.department, &app).await?;
    tracing::info!(need = need.id, consumer = %who.department, resource = %need.resource, "need filed");
    state.lists_changed().await;
    let location = format!("/v1/lists/needs/{}", need.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(need),
    ))
}

/// A need the caller may see, or not found (its existence is not disclosed).
async fn visible_need(state: &AppState, who: &Identity, id: i64) -> ApiResult<NeedRecord> {
    let need = state.store.get_need(id).await?;
    if who.role == Role::DataOffice || need.consumer == who.department {
        return Ok(need);
    }
    let provider = state
        .store
        .get_resource(&need.resource)
        .await
        .map(|r| r.spec.provider)
        .unwrap_or_default();
    if provider == who.department {
        Ok(need)
    } else {
        Err(Problem::not_found(format!("need '{id}' not found")))
    }
}

/// Get a need with its review history
#[utoipa::path(get, path = "/v1/lists/needs/{id}", tag = "lists",
    params(("id" = i64, Path, description = "Need id")),
    responses((status = 200, description = "The need", body = NeedRecord),
              (status = 404, description = "No such need, or not yours", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn get_need(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<NeedRecord>> {
    Ok(axum::Json(visible_need(&state, &who, id).await?))
}

/// The reason for a review action.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// Required to reject or revoke; the consumer reads it.
    #[serde(default)]
    pub reason: String,
}

/// The review body is optional (an approval needs no reason): an empty body
/// is no reason, anything else must be a `Review` object.
async fn review(
    state: AppState,
    who: Identity,
    id: i64,
    action: ReviewAction,
    body: Bytes,
) -> ApiResult<axum::Json<NeedRecord>> {
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        String::new()
    } else {
        serde_json::from_slice::<Review>(&body)
            .map_err(|e| Problem::new(Code::InvalidInput, format!("review body: {e}")))?
            .reason
    };
    visible_need(&state, &who, id).await?;
    let need = state
        .store
        .review_need(id, actor(&who), action.clone(), &reason)
        .await?;
    tracing::info!(need = id, action = ?action, by = %who.department, status = %need.status, "need reviewed");
    state.lists_changed().await;
    Ok(axum::Json(need))
}

/// Approve a need
///
/// At the provider stage only the provider may approve; at the office stage
/// only the data office.
#[utoipa::path(post, path = "/v1/lists/needs/{id}/approve", tag = "lists",
    params(("id" = i64, Path)), request_body(content = Option<Review>),
    responses((status = 200, description = "Moved on", body = NeedRecord),
              (status = 422, description = "Not a review body", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such need", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Not pending", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn approve_need(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<axum::Json<NeedRecord>> {
    review(state, who, id, ReviewAction::Approve, body).await
}

/// Reject a need (reason required)
#[utoipa::path(post, path = "/v1/lists/needs/{id}/reject", tag = "lists",
    params(("id" = i64, Path)), request_body = Review,
    responses((status = 200, description = "Rejected", body = NeedRecord),
              (status = 404, description = "No such need", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Not pending", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "No reason", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn reject_need(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<axum::Json<NeedRecord>> {
    review(state, who, id, ReviewAction::Reject, body).await
}

/// Revoke an approved need (reason required; data office or provider)
#[utoipa::path(post, path = "/v1/lists/needs/{id}/revoke", tag = "lists",
    params(("id" = i64, Path)), request_body = Review,
    responses((status = 200, description = "Revoked", body = NeedRecord),
              (status = 404, description = "No such need", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Not approved", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "No reason", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn revoke_need(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<axum::Json<NeedRecord>> {
    review(state, who, id, ReviewAction::Revoke, body).await
}

/// The negative list (负面清单)
#[utoipa::path(get, path = "/v1/lists/negative", tag = "lists",
    responses((status = 200, description = "Entries, by id", body = Vec<NegativeRecord>)),
    security(("token" = [])))]
pub async fn list_negatives(
    State(state): State<AppState>,
    _c: Caller,
) -> ApiResult<axum::Json<Vec<NegativeRecord>>> {
    Ok(axum::Json(state.store.list_negatives().await?))
}

/// Add a negative entry (data office; legal basis required)
#[utoipa::path(post, path = "/v1/lists/negative", tag = "lists", request_body = NegativeSpec,
    responses((status = 201, description = "Added", body = NegativeRecord),
              (status = 422, description = "Invalid entry", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn create_negative(
    State(state): State<AppState>,
    DataOffice(who): DataOffice,
    Json(spec): Json<NegativeSpec>,
) -> ApiResult<impl IntoResponse> {
    let entry = state.store.create_negative(&spec).await?;
    tracing::info!(entry = entry.id, resource = %entry.resource, by = %who.department, "negative entry added");
    state.lists_changed().await;
    Ok((StatusCode::CREATED, axum::Json(entry)))
}

/// Remove a negative entry (data office)
#[utoipa::path(delete, path = "/v1/lists/negative/{id}", tag = "lists", params(("id" = i64, Path)),
    responses((status = 204, description = "Removed"),
              (status = 404, description = "No such entry", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn delete_negative(
    State(state): State<AppState>,
    DataOffice(who): DataOffice,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state.store.delete_negative(id).await?;
    tracing::info!(entry = id, by = %who.department, "negative entry removed");
    state.lists_changed().await;
    Ok(StatusCode::NO_CONTENT)
}

/// The responsibility list (责任清单)
#[utoipa::path(get, path = "/v1/lists/responsibilities", tag = "lists",
    responses((status = 200, description = "Entries, by id", body = Vec<ResponsibilityRecord>)),
    security(("token" = [])))]
pub async fn list_responsibilities(
    State(state): State<AppState>,
    _c: Caller,
) -> ApiResult<axum::Json<Vec<ResponsibilityRecord>>> {
    Ok(axum::Json(state.store.list_responsibilities().await?))
}

/// Add a responsibility (data office)
#[utoipa::path(post, path = "/v1/lists/responsibilities", tag = "lists", request_body = ResponsibilitySpec,
    responses((status = 201, description = "Added", body = ResponsibilityRecord),
              (status = 422, description = "Invalid entry", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn create_responsibility(
    State(state): State<AppState>,
    DataOffice(who): DataOffice,
    Json(spec): Json<ResponsibilitySpec>,
) -> ApiResult<impl IntoResponse> {
    let r = state.store.create_responsibility(&spec).await?;
    tracing::info!(responsibility = r.id, provider = %r.provider, by = %who.department, "responsibility added");
    Ok((StatusCode::CREATED, axum::Json(r)))
}

/// Remove a responsibility (data office)
#[utoipa::path(delete, path = "/v1/lists/responsibilities/{id}", tag = "lists", params(("id" = i64, Path)),
    responses((status = 204, description = "Removed"),
              (status = 404, description = "No such entry", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn delete_responsibility(
    State(state): State<AppState>,
    DataOffice(_w): DataOffice,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state.store.delete_responsibility(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Refresh compliance: which providers are late, and by how much
#[utoipa::path(get, path = "/v1/lists/responsibilities/compliance", tag = "lists",
    responses((status = 200, description = "Latest first", body = Vec<ComplianceRow>)),
    security(("token" = [])))]
pub async fn compliance(
    State(state): State<AppState>,
    _c: Caller,
) -> ApiResult<axum::Json<Vec<ComplianceRow>>> {
    Ok(axum::Json(state.store.compliance(Utc::now()).await?))
}

/// The working-day calendar used for review deadlines
#[utoipa::path(get, path = "/v1/lists/calendar", tag = "lists",
    responses((status = 200, description = "Holidays and make-up working days", body = Object)),
    security(("token" = [])))]
pub async fn get_calendar(
    State(state): State<AppState>,
    _c: Caller,
) -> ApiResult<axum::Json<Calendar>> {
    Ok(axum::Json(state.store.calendar().await?))
}

/// Replace the working-day calendar (data office)
///
/// Body: `{"holidays": ["2026-10-01", …], "workdays": ["2026-10-10", …]}`.
#[utoipa::path(put, path = "/v1/lists/calendar", tag = "lists", request_body(content = Object),
    responses((status = 200, description = "Replaced", body = Object)),
    security(("token" = [])))]
pub async fn put_calendar(
    State(state): State<AppState>,
    DataOffice(_w): DataOffice,
    Json(c): Json<Calendar>,
) -> ApiResult<axum::Json<Calendar>> {
    state.store.set_calendar(&c).await?;
    Ok(axum::Json(state.store.calendar().await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportFormat {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

fn file_response(csv: bool, body: String) -> Response {
    let ct = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/json"
    };
    ([(header::CONTENT_TYPE, ct)], body).into_response()
}

/// Export a list as JSON or CSV (data office)
#[utoipa::path(get, path = "/v1/lists/export/{list}", tag = "lists",
    params(("list" = ListName, Path, description = "needs, negative or responsibilities"), ExportFormat),
    responses((status = 200, description = "The list", content_type = "text/csv")),
    security(("token" = [])))]
pub async fn export_list(
    State(state): State<AppState>,
    DataOffice(_w): DataOffice,
    Path(list): Path<ListName>,
    Query(f): Query<ExportFormat>,
) -> ApiResult<Response> {
    let csv = match f.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(Problem::new(
                Code::InvalidQuery,
                format!("format '{other}' is not json or csv"),
            ));
        }
    };
    let store = &state.store;
    let body = match list {
        ListName::Needs => {
            let v = store.list_needs(&NeedQuery::default()).await?;
            if csv {
                list_exchange::to_csv(&v)
            } else {
                list_exchange::to_json(&v)
            }
        }
        ListName::Negative => {
            let v = store.list_negatives().await?;
            if csv {
                list_exchange::to_csv(&v)
            } else {
                list_exchange::to_json(&v)
            }
        }
        ListName::Responsibilities => {
            let v = store.list_responsibilities().await?;
            if csv {
                list_exchange::to_csv(&v)
            } else {
                list_exchange::to_json(&v)
            }
        }
    };
    Ok(file_response(csv, body))
}

/// Import a list from JSON or CSV (data office; all or nothing)
///
/// Send the file as the body with `Content-Type: text/csv` or
/// `application/json`. Records with an existing id are replaced, others
/// created; a bad record names its line (CSV) or index (JSON) and nothing is
/// written.
#[utoipa::path(post, path = "/v1/lists/import/{list}", tag = "lists",
    params(("list" = ListName, Path, description = "needs, negative or responsibilities")),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, description = "What changed", body = ImportCounts),
              (status = 422, description = "A bad record; nothing written", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn import_list(
    State(state): State<AppState>,
    DataOffice(who): DataOffice,
    Path(list): Path<ListName>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<axum::Json<ImportCounts>> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let csv = if ct.starts_with("text/csv") {
        true
    } else if ct.starts_with("application/json") {
        false
    } else {
        return Err(Problem::new(
            Code::UnsupportedMediaType,
            "send the list as text/csv or application/json",
        ));
    };
    let text = std::str::from_utf8(&body)
        .map_err(|_| Problem::new(Code::InvalidBody, "the file is not UTF-8 text"))?;
    let counts = list_exchange::import(state.store.as_ref(), list, text, csv).await?;
    tracing::info!(list = ?list, created = counts.created, updated = counts.updated, by = %who.department, "list imported");
    state.lists_changed().await;
    Ok(axum::Json(counts))
}
