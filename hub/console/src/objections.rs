//! The objections pages (异议核实与纠错): the list — open ones with their
//! deadlines, overdue ones highlighted — for the data office (all), and for
//! a department (those it raised or must answer); one objection with its
//! history, where the provider answers: the fix is coming, or the value
//! stands (a reason required). The same steps as the API
//! (`tongban_core::objections`), audited alike.

use super::names::Names;
use super::{Frame, Session, render};
use crate::ConsoleApp as AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use tongban_catalog::Role;
use tongban_catalog::objections::{ObjectionQuery, ObjectionRecord, ObjectionStatus, Step};
use tongban_core::uses::Asker;

#[derive(Debug, Default, serde::Deserialize)]
pub struct Filter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    overdue: Option<String>,
}

#[derive(Template)]
#[template(path = "objections.html")]
struct ListPage {
    f: Frame,
    objections: Vec<ObjectionRecord>,
    names: Names,
    status: String,
    overdue: bool,
    now: chrono::DateTime<Utc>,
}

pub async fn list(
    State(state): State<AppState>,
    s: Session,
    Query(filter): Query<Filter>,
) -> Response {
    let status: Option<ObjectionStatus> = filter.status.parse().ok();
    let overdue = filter.overdue.is_some_and(|v| !v.is_empty());
    let now = Utc::now();
    let query = ObjectionQuery {
        party: (s.who.role != Role::DataOffice).then(|| s.who.department.clone()),
        status,
        overdue_at: overdue.then_some(now),
        ..Default::default()
    };
    let (found, names) = tokio::join!(
        state.store.list_objections(&query),
        Names::load(state.store.as_ref())
    );
    let mut objections = match found {
        Ok(o) => o,
        Err(e) => return s.error(StatusCode::SERVICE_UNAVAILABLE, &super::message(&e)),
    };
    // Newest first on screen.
    objections.reverse();
    let page = ListPage {
        f: s.frame("objections", s.t.t("objections.title")),
        objections,
        names,
        status: filter.status,
        overdue,
        now,
    };
    (StatusCode::OK, render(&page)).into_response()
}

#[derive(Template)]
#[template(path = "objection.html")]
struct DetailPage {
    f: Frame,
    o: ObjectionRecord,
    names: Names,
    now: chrono::DateTime<Utc>,
    /// The provider may answer (open or correcting).
    can_answer: bool,
    error: Option<String>,
}

async fn detail_page(
    state: &AppState,
    s: &Session,
    id: i64,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let o = match state.store.get_objection(id).await {
        Ok(o) => o,
        Err(e) => return s.error(StatusCode::NOT_FOUND, &super::message(&e)),
    };
    let asker = Asker {
        department: &s.who.department,
        role: s.who.role,
        user: None,
    };
    if !tongban_core::objections::may_see(&asker, &o) {
        return s.error(StatusCode::NOT_FOUND, &format!("no objection {id}"));
    }
    let can_answer = o.provider == s.who.department && o.status.marks();
    let page = DetailPage {
        f: s.frame(
            "objections",
            &format!("{} #{}", s.t.t("objections.title"), o.id),
        ),
        names: Names::load(state.store.as_ref()).await,
        now: Utc::now(),
        can_answer,
        error,
        o,
    };
    (status, render(&page)).into_response()
}

pub async fn detail(State(state): State<AppState>, s: Session, Path(id): Path<i64>) -> Response {
    detail_page(&state, &s, id, None, StatusCode::OK).await
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
}

pub async fn answer(
    State(state): State<AppState>,
    s: Session,
    Path((id, action)): Path<(i64, String)>,
    axum::Form(form): axum::Form<AnswerForm>,
) -> Response {
    if let Err(r) = s.check_csrf(&form.csrf) {
        return r;
    }
    let step = match action.as_str() {
        "correcting" => Step::Correcting {
            note: form.note.trim().to_string(),
        },
        "reject" => Step::Reject {
            reason: form.note.trim().to_string(),
        },
        _ => return s.error(StatusCode::NOT_FOUND, "no such action"),
    };
    let asker = Asker {
        department: &s.who.department,
        role: s.who.role,
        user: None,
    };
    match tongban_core::objections::answer(&state.hub, &asker, id, step).await {
        Ok(o) => {
            tracing::info!(objection = id, action, by = %s.who.department, status = %o.status, "objection answered in the console");
            Redirect::to(&format!("/console/objections/{id}")).into_response()
        }
        Err(e) => {
            let status = match e.code() {
                tongban_core::Code::Forbidden => StatusCode::FORBIDDEN,
                tongban_core::Code::Conflict => StatusCode::CONFLICT,
                tongban_core::Code::NotFound => StatusCode::NOT_FOUND,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            detail_page(&state, &s, id, Some(e.to_string()), status).await
        }
    }
}
