//! `/v1/objections`: objections to records and their answers (异议核实与
//! 纠错). Who may raise and answer, the marks, the correction check:
//! `tongban_core::objections`; the lifecycle: `tongban_catalog::objections`.

use super::AppState;
use super::extract::{Caller, Json, Path, Query};
use super::problem::Problem;
use super::uses::USER_HEADER;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use serde::Deserialize;
use tongban_catalog::Role;
use tongban_catalog::objections::{
    ObjectionQuery, ObjectionRecord, ObjectionSpec, ObjectionStatus, Step,
};
use tongban_core::objections::{self, Error};
use tongban_core::uses::Asker;
use utoipa::{IntoParams, ToSchema};

fn problem(e: Error) -> Problem {
    match e {
        Error::Access(e) => Problem::from(e),
        e => {
            let mut p = Problem::new(e.code(), e.to_string());
            p.field = e.field().map(str::to_string);
            p
        }
    }
}

/// The portal's user, from its header.
fn user(headers: &HeaderMap) -> Result<Option<&str>, Problem> {
    headers
        .get(USER_HEADER)
        .map(|v| {
            v.to_str().map_err(|_| {
                Problem::new(
                    tongban_core::Code::InvalidInput,
                    "X-Tongban-UserId: not text",
                )
                .with_field("X-Tongban-UserId")
            })
        })
        .transpose()
}

/// Raise an objection to a record
///
/// The items named are marked disputed at once in every answer that
/// carries them (lookups, verifications, interface answers, shared files);
/// the provider must answer within 5 working days by the hub's calendar.
/// A department with an approved need for the resource, the data office,
/// or the portal for its user's own record (header `X-Tongban-UserId`).
#[utoipa::path(post, path = "/v1/objections", tag = "objections",
    request_body = ObjectionSpec,
    params(("X-Tongban-UserId" = Option<String>, Header, description = "Portal only: the user it acts for")),
    responses((status = 201, description = "Raised, accepted, marked", body = ObjectionRecord),
              (status = 404, description = "No such resource or record", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "An item, key or evidence that breaks a rule", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn raise(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    Json(spec): Json<ObjectionSpec>,
) -> Result<(StatusCode, axum::Json<ObjectionRecord>), Problem> {
    let asker = Asker {
        department: &who.department,
        role: who.role,
        user: user(&headers)?,
    };
    let o = objections::raise(&state.base, &asker, &spec)
        .await
        .map_err(problem)?;
    Ok((StatusCode::CREATED, axum::Json(o)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `open`, `correcting`, `corrected`, `rejected` (empty: any).
    #[serde(default)]
    #[param(pattern = "^(open|correcting|corrected|rejected)?$")]
    pub status: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    /// Only those past their deadline and not answered by a correction or a rejection.
    #[serde(default)]
    pub overdue: bool,
}

/// List objections
///
/// The data office sees every objection; a department those it raised or
/// must answer; the portal those it raised for its user.
#[utoipa::path(get, path = "/v1/objections", tag = "objections",
    params(ListParams),
    responses((status = 200, description = "Oldest first", body = Vec<ObjectionRecord>),
              (status = 400, description = "A status that is none of the four", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "The portal without its user", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    Query(p): Query<ListParams>,
) -> Result<axum::Json<Vec<ObjectionRecord>>, Problem> {
    let status = match p.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(s.parse::<ObjectionStatus>().map_err(|e| {
            Problem::new(tongban_core::Code::InvalidQuery, format!("status: {e}"))
                .with_field("status")
        })?),
    };
    let query = ObjectionQuery {
        party: (who.role != Role::DataOffice).then(|| who.department.clone()),
        resource: p.resource.filter(|r| !r.trim().is_empty()),
        status,
        overdue_at: p.overdue.then(Utc::now),
        marking: false,
    };
    let mut found = state.store.list_objections(&query).await?;
    if who.role == Role::Portal {
        let Some(user) = user(&headers)? else {
            return Err(Problem::new(
                tongban_core::Code::InvalidInput,
                "the portal must name the user it acts for (header X-Tongban-UserId)",
            )
            .with_field("X-Tongban-UserId"));
        };
        let mine = state.access.audit().key_hash(user.trim());
        found.retain(|o| o.raised_for.as_deref() == Some(mine.as_str()));
    }
    Ok(axum::Json(found))
}

/// An objection with its history
#[utoipa::path(get, path = "/v1/objections/{id}", tag = "objections",
    params(("id" = i64, Path)),
    responses((status = 200, description = "The objection", body = ObjectionRecord),
              (status = 404, description = "No such objection, or not a party to it", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<axum::Json<ObjectionRecord>, Problem> {
    let o = state.store.get_objection(id).await?;
    let asker = Asker {
        department: &who.department,
        role: who.role,
        user: None,
    };
    // The portal sees only what it raised for the user it names.
    let for_user = match who.role {
        Role::Portal => user(&headers)?.is_some_and(|u| {
            o.raised_for.as_deref() == Some(state.access.audit().key_hash(u.trim()).as_str())
        }),
        _ => true,
    };
    if !objections::may_see(&asker, &o) || !for_user {
        return Err(Problem::not_found(format!("no objection {id}")));
    }
    Ok(axum::Json(o))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// For `correcting`: what will change and when; for `reject`: why the value stands (required).
    #[serde(default)]
    pub note: String,
}

/// The provider: the value is wrong, the fix comes with the next version
///
/// The mark stays until a newer version is loaded whose values of the
/// disputed items differ from those objected to; the hub checks.
#[utoipa::path(post, path = "/v1/objections/{id}/correcting", tag = "objections",
    params(("id" = i64, Path)), request_body = Answer,
    responses((status = 200, description = "Correcting (or corrected, if a newer version already changed it)", body = ObjectionRecord),
              (status = 409, description = "Not open", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn correcting(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<i64>,
    Json(a): Json<Answer>,
) -> Result<axum::Json<ObjectionRecord>, Problem> {
    answer(&state, &who, id, Step::Correcting { note: a.note }).await
}

/// The provider: the value stands
#[utoipa::path(post, path = "/v1/objections/{id}/reject", tag = "objections",
    params(("id" = i64, Path)), request_body = Answer,
    responses((status = 200, description = "Rejected, with its reason; the mark is removed", body = ObjectionRecord),
              (status = 409, description = "Already closed", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<i64>,
    Json(a): Json<Answer>,
) -> Result<axum::Json<ObjectionRecord>, Problem> {
    answer(&state, &who, id, Step::Reject { reason: a.note }).await
}

async fn answer(
    state: &AppState,
    who: &tongban_core::auth::Identity,
    id: i64,
    step: Step,
) -> Result<axum::Json<ObjectionRecord>, Problem> {
    let asker = Asker {
        department: &who.department,
        role: who.role,
        user: None,
    };
    objections::answer(&state.base, &asker, id, step)
        .await
        .map(axum::Json)
        .map_err(problem)
}
