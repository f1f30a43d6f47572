//! Interface sharing in the console: every registered service with its
//! endpoints and its health on this hub (breaker state, counts, latency,
//! last success and failure); the data office registers services (their
//! JSON definition), imports them from OpenAPI documents as drafts, and
//! switches them on and off with a notice for callers.

use super::names::Names;
use super::{Frame, Session, render};
use crate::ConsoleApp as AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tongban_catalog::services::{DraftResource, ServiceRecord, ServiceRegistration, ServiceSwitch};
use tongban_services::health::HealthReport;

/// A service and what this hub knows of its health.
pub struct Row {
    pub record: ServiceRecord,
    pub health: Option<HealthReport>,
    /// `closed`, `open`, `half_open`.
    pub breaker: String,
    /// `min / avg / max`, or `–` before the first call.
    pub latency: String,
}

#[derive(Template)]
#[template(path = "services.html")]
struct ServicesPage {
    f: Frame,
    rows: Vec<Row>,
    names: Names,
    form_definition: String,
    error: Option<String>,
    flash: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct Flash {
    #[serde(default)]
    done: Option<String>,
}

async fn page_with(
    state: &AppState,
    s: &Session,
    form_definition: String,
    error: Option<String>,
    flash: Option<String>,
    status: StatusCode,
) -> Response {
    let (records, names) = tokio::join!(
        state.store.list_services(),
        Names::load(state.store.as_ref())
    );
    let records = match records {
        Ok(r) => r,
        Err(e) => return s.error(StatusCode::SERVICE_UNAVAILABLE, &super::message(&e)),
    };
    let rows = records
        .into_iter()
        .map(|record| {
            let health = state.services.health_of(&record.resource);
            let breaker = health
                .as_ref()
                .and_then(|h| serde_json::to_value(h.breaker).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "–".into());
            let latency = match &health {
                Some(HealthReport {
                    latency_min_ms: Some(min),
                    latency_avg_ms: Some(avg),
                    latency_max_ms: Some(max),
                    ..
                }) => format!("{min:.1} / {avg:.1} / {max:.1}"),
                _ => "–".into(),
            };
            Row {
                record,
                health,
                breaker,
                latency,
            }
        })
        .collect();
    let page = ServicesPage {
        f: s.frame("services", s.t.t("nav.services")),
        rows,
        names,
        form_definition,
        error,
        flash,
    };
    let mut response = render(&page);
    *response.status_mut() = status;
    response
}

pub async fn page(State(state): State<AppState>, s: Session, Query(q): Query<Flash>) -> Response {
    page_with(&state, &s, String::new(), None, q.done, StatusCode::OK).await
}

/// After a write: lists and runtimes take the change at once.
async fn changed(state: &AppState) {
    state.lists_changed().await;
    if let Err(e) = state.services.reload(state.store.as_ref()).await {
        tracing::error!(error = %e, "could not reload the services");
    }
}

/// After a registration or import: on to the list, or back to the page with
/// the message and what was typed (nothing was saved).
async fn finish(
    state: &AppState,
    s: &Session,
    saved: Result<ServiceRecord, String>,
    typed: String,
) -> Response {
    match saved {
        Ok(record) => {
            changed(state).await;
            Redirect::to(&format!("/console/services?done={}", record.resource)).into_response()
        }
        Err(e) => {
            page_with(
                state,
                s,
                typed,
                Some(e),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    definition: String,
}

pub async fn register(
    State(state): State<AppState>,
    s: Session,
    axum::Form(form): axum::Form<RegisterForm>,
) -> Response {
    if let Err(r) = s.check_csrf(&form.csrf).and_then(|()| s.require_office()) {
        return r;
    }
    let saved = async {
        let reg: ServiceRegistration =
            serde_json::from_str(&form.definition).map_err(|e| format!("definition: {e}"))?;
        tongban_services::Services::check_tls(&reg.service).map_err(|e| e.to_string())?;
        state
            .store
            .register_service(&reg)
            .await
            .map_err(|e| super::message(&e))
    }
    .await;
    finish(&state, &s, saved, form.definition).await
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct ImportForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    document: String,
}

pub async fn import(
    State(state): State<AppState>,
    s: Session,
    axum::Form(form): axum::Form<ImportForm>,
) -> Response {
    if let Err(r) = s.check_csrf(&form.csrf).and_then(|()| s.require_office()) {
        return r;
    }
    let saved = async {
        let doc: serde_json::Value =
            serde_json::from_str(&form.document).map_err(|e| format!("document: not JSON: {e}"))?;
        let base_url = Some(form.base_url.trim().to_string()).filter(|u| !u.is_empty());
        let reg = tongban_catalog::services::from_openapi(
            &doc,
            DraftResource {
                code: form.code.trim().to_string(),
                provider: form.provider.trim().to_string(),
                name: None,
            },
            base_url,
        )
        .map_err(|e| super::message(&e))?;
        state
            .store
            .register_service(&reg)
            .await
            .map_err(|e| super::message(&e))
    }
    .await;
    finish(&state, &s, saved, String::new()).await
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: String,
    #[serde(default)]
    notice: String,
}

pub async fn switch(
    State(state): State<AppState>,
    s: Session,
    Path((class, seq)): Path<(String, String)>,
    axum::Form(form): axum::Form<SwitchForm>,
) -> Response {
    if let Err(r) = s.check_csrf(&form.csrf).and_then(|()| s.require_office()) {
        return r;
    }
    let code = format!("{class}/{seq}");
    let switch = ServiceSwitch {
        enabled: form.enabled == "true",
        notice: Some(form.notice.trim().to_string()).filter(|n| !n.is_empty()),
    };
    match state.store.switch_service(&code, &switch).await {
        Ok(_) => {
            changed(&state).await;
            Redirect::to(&format!("/console/services?done={code}")).into_response()
        }
        Err(e) => s.error(StatusCode::NOT_FOUND, &super::message(&e)),
    }
}
