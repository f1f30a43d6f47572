//! The needs pages: the review queue (pending needs with their deadlines,
//! overdue ones highlighted), every need the user is party to, one need with
//! its history and the review actions the user may take, and the
//! application form for departments.

use super::names::Names;
use super::{Frame, Session, render};
use crate::ConsoleApp as AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use tongban_catalog::Role;
use tongban_catalog::lists::{Actor, NeedApplication, NeedQuery, NeedRecord, ReviewAction};
use tongban_policies::{Mode, NeedStatus};

#[derive(Debug, Default, serde::Deserialize)]
pub struct Filter {
    #[serde(default)]
    status: String,
}

#[derive(Template)]
#[template(path = "needs.html")]
struct ListPage {
    f: Frame,
    /// Pending needs waiting for this user's review, oldest deadline first.
    queue: Vec<NeedRecord>,
    needs: Vec<NeedRecord>,
    /// Departments', resources' and items' names for their codes.
    names: Names,
    status: String,
    now: chrono::DateTime<Utc>,
    flash: Option<String>,
}

/// Who reviews a pending need now: `provider` or `office`.
pub fn stage(n: &NeedRecord) -> &'static str {
    match n.status {
        NeedStatus::PendingProvider => "provider",
        NeedStatus::PendingOffice => "office",
        _ => "",
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct Flash {
    #[serde(default)]
    done: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    s: Session,
    Query(filter): Query<Filter>,
    Query(flash): Query<Flash>,
) -> Response {
    let status: Option<NeedStatus> = match filter.status.as_str() {
        "" => None,
        other => match other.parse() {
            Ok(st) => Some(st),
            Err(e) => return s.error(StatusCode::BAD_REQUEST, &format!("status: {e}")),
        },
    };
    let party = (!s.is_office()).then(|| s.who.department.clone());
    let query = NeedQuery {
        party: party.clone(),
        ..NeedQuery::default()
    };
    let (all, names) = tokio::join!(
        state.store.list_needs(&query),
        Names::load(state.store.as_ref())
    );
    let all = match all {
        Ok(n) => n,
        Err(e) => return s.error(StatusCode::SERVICE_UNAVAILABLE, &super::message(&e)),
    };
    // The queue: every pending need for the data office (it chases late
    // providers too); for a department, the provider stage of its resources.
    let mut queue = Vec::new();
    for n in &all {
        let mine = match n.status {
            NeedStatus::PendingOffice => s.is_office(),
            NeedStatus::PendingProvider => {
                s.is_office() || names.provider(&n.resource) == Some(s.who.department.as_str())
            }
            _ => false,
        };
        if mine {
            queue.push(n.clone());
        }
    }
    queue.sort_by_key(|n| n.due_at);
    let needs = all
        .into_iter()
        .filter(|n| status.is_none_or(|st| n.status == st))
        .rev()
        .collect();
    render(&ListPage {
        f: s.frame("needs", s.t.t("needs.title")),
        queue,
        needs,
        names,
        status: filter.status,
        now: Utc::now(),
        flash: flash.done,
    })
}

#[derive(Template)]
#[template(path = "need.html")]
struct DetailPage {
    f: Frame,
    n: NeedRecord,
    provider: String,
    names: Names,
    /// The actions this user may take now.
    can_approve: bool,
    can_reject: bool,
    can_revoke: bool,
    error: Option<String>,
    now: chrono::DateTime<Utc>,
}

async fn detail_page(
    state: &AppState,
    s: &Session,
    id: i64,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let n = match state.store.get_need(id).await {
        Ok(n) => n,
        Err(e) => return s.error(StatusCode::NOT_FOUND, &super::message(&e)),
    };
    let names = Names::load(state.store.as_ref()).await;
    let provider = names.provider(&n.resource).unwrap_or_default().to_string();
    let party = s.is_office() || n.consumer == s.who.department || provider == s.who.department;
    if !party {
        // As the API: a need one is not party to does not exist for one.
        return s.error(StatusCode::NOT_FOUND, &format!("need '{id}' not found"));
    }
    let is_provider = provider == s.who.department;
    let page = DetailPage {
        f: s.frame("needs", &format!("{} #{}", s.t.t("nav.needs"), n.id)),
        can_approve: (n.status == NeedStatus::PendingOffice && s.is_office())
            || (n.status == NeedStatus::PendingProvider && is_provider),
        can_reject: matches!(
            n.status,
            NeedStatus::PendingOffice | NeedStatus::PendingProvider
        ) && (s.is_office() || is_provider),
        can_revoke: n.status == NeedStatus::Approved && (s.is_office() || is_provider),
        provider,
        names,
        n,
        error,
        now: Utc::now(),
    };
    (status, render(&page)).into_response()
}

pub async fn detail(State(state): State<AppState>, s: Session, Path(id): Path<i64>) -> Response {
    detail_page(&state, &s, id, None, StatusCode::OK).await
}

#[derive(Debug, serde::Deserialize)]
pub struct ReviewForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// Approve, reject or revoke through the store, as the API does; a refusal
/// (a missing reason, the wrong stage) shows the need again with the message.
pub async fn review(
    State(state): State<AppState>,
    s: Session,
    Path((id, action)): Path<(i64, String)>,
    axum::Form(form): axum::Form<ReviewForm>,
) -> Response {
    if let Err(r) = s.check_csrf(&form.csrf) {
        return r;
    }
    let action = match action.as_str() {
        "approve" => ReviewAction::Approve,
        "reject" => ReviewAction::Reject,
        "revoke" => ReviewAction::Revoke,
        _ => return s.error(StatusCode::NOT_FOUND, "no such action"),
    };
    let actor = Actor {
        department: &s.who.department,
        role: s.who.role,
    };
    match state
        .store
        .review_need(id, actor, action.clone(), form.reason.trim())
        .await
    {
        Ok(n) => {
            tracing::info!(need = id, action = ?action, by = %s.who.department, status = %n.status, "need reviewed in the console");
            state.lists_changed().await;
            Redirect::to(&format!("/console/needs?done={}", n.id)).into_response()
        }
        Err(e) => {
            let status = match e {
                tongban_catalog::Error::Forbidden(_) => StatusCode::FORBIDDEN,
                tongban_catalog::Error::Conflict(_) => StatusCode::CONFLICT,
                tongban_catalog::Error::NotFound { .. } => StatusCode::NOT_FOUND,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            detail_page(&state, &s, id, Some(super::message(&e)), status).await
        }
    }
}

/// The application form, as typed.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ApplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub items: String,
    #[serde(default)]
    pub matter: String,
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub justification: String,
    #[serde(default)]
    pub daily_quota: String,
    #[serde(default)]
    pub clear_items: String,
}

fn list_of(s: &str) -> Vec<String> {
    s.split([',', '，', ' '])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

impl ApplyForm {
    fn application(&self) -> Result<NeedApplication, String> {
        let mode: Mode = self.mode.parse().map_err(|e| format!("mode: {e}"))?;
        let daily_quota = match self.daily_quota.trim() {
            "" => None,
            q => Some(
                q.parse::<u32>()
                    .map_err(|_| format!("daily_quota: '{q}' is not a whole number"))?,
            ),
        };
        Ok(NeedApplication {
            resource: self.resource.trim().to_string(),
            items: list_of(&self.items),
            matter: self.matter.trim().to_string(),
            mode,
            justification: self.justification.trim().to_string(),
            row_filter: None,
            daily_quota,
            clear_items: list_of(&self.clear_items),
            valid_from: None,
            valid_until: None,
            matter_name: None,
            covert_until: None,
        })
    }
}

#[derive(Template)]
#[template(path = "need_form.html")]
struct ApplyPage {
    f: Frame,
    form: ApplyForm,
    error: Option<String>,
    resources: Vec<(String, String)>,
}

async fn apply_page(
    state: &AppState,
    s: &Session,
    form: ApplyForm,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let resources = state
        .store
        .export()
        .await
        .map(|d| d.resources.into_iter().map(|r| (r.code, r.name)).collect())
        .unwrap_or_default();
    let page = ApplyPage {
        f: s.frame("needs", s.t.t("needs.apply")),
        form,
        error,
        resources,
    };
    (status, render(&page)).into_response()
}

pub async fn new_form(State(state): State<AppState>, s: Session) -> Response {
    let form = ApplyForm {
        mode: "lookup".into(),
        ..ApplyForm::default()
    };
    apply_page(&state, &s, form, None, StatusCode::OK).await
}

/// Files a need for the user's department, through the store as the API does.
pub async fn apply(State(state): State<AppState>, s: Session, body: Bytes) -> Response {
    let form: ApplyForm = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => return s.error(StatusCode::BAD_REQUEST, &format!("form: {e}")),
    };
    if let Err(r) = s.check_csrf(&form.csrf) {
        return r;
    }
    if s.who.role == Role::DataOffice {
        // The data office reviews needs; departments file them.
        return s.error(StatusCode::FORBIDDEN, s.t.t("needs.mine_only"));
    }
    let application = match form.application() {
        Ok(a) => a,
        Err(e) => {
            return apply_page(&state, &s, form, Some(e), StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    match state
        .store
        .apply_need(&s.who.department, &application)
        .await
    {
        Ok(n) => {
            state.lists_changed().await;
            Redirect::to(&format!("/console/needs/{}", n.id)).into_response()
        }
        Err(e) => {
            apply_page(
                &state,
                &s,
                form,
                Some(super::message(&e)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}
