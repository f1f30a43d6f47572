//! The negative and responsibility lists (everyone reads them; the data
//! office adds, removes, imports and exports entries) and refresh
//! compliance (who is late against the responsibility list).

use super::names::Names;
use super::{Frame, Session, render};
use crate::ConsoleApp as AppState;
use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use tongban_catalog::list_exchange;
use tongban_catalog::list_exchange::{ListName, import as import_file};
use tongban_catalog::lists::{
    ComplianceRow, NegativeRecord, NegativeSpec, ResponsibilityRecord, ResponsibilitySpec,
};
use tongban_policies::Mode;

#[derive(Debug, Default, serde::Deserialize)]
pub struct Flash {
    #[serde(default)]
    done: Option<String>,
    /// An entry to edit in the form.
    #[serde(default)]
    edit: Option<i64>,
}

/// The id of the entry a form edits; none: a new entry.
fn editing(id: &str) -> Result<Option<i64>, String> {
    match id.trim() {
        "" => Ok(None),
        n => n
            .parse()
            .map(Some)
            .map_err(|_| format!("id: '{n}' is not an entry id")),
    }
}

fn list_of(s: &str) -> Vec<String> {
    s.split([',', '，', ' '])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

/// The negative-list form, as typed.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct NegativeForm {
    #[serde(default)]
    csrf: String,
    /// Set when an existing entry is edited.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub items: String,
    #[serde(default)]
    pub modes: String,
    #[serde(default)]
    pub consumers: String,
    #[serde(default)]
    pub legal_basis: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Template)]
#[template(path = "negative.html")]
struct NegativePage {
    f: Frame,
    entries: Vec<NegativeRecord>,
    names: Names,
    form: NegativeForm,
    error: Option<String>,
    flash: Option<String>,
}

async fn negative_page(
    state: &AppState,
    s: &Session,
    form: NegativeForm,
    error: Option<String>,
    flash: Option<String>,
    status: StatusCode,
) -> Response {
    let (entries, names) = tokio::join!(
        state.store.list_negatives(),
        Names::load(state.store.as_ref())
    );
    let entries = match entries {
        Ok(e) => e,
        Err(e) => return s.error(StatusCode::SERVICE_UNAVAILABLE, &super::message(&e)),
    };
    let page = NegativePage {
        f: s.frame("negative", s.t.t("neg.title")),
        entries,
        names,
        form,
        error,
        flash,
    };
    (status, render(&page)).into_response()
}

pub async fn negative(
    State(state): State<AppState>,
    s: Session,
    Query(flash): Query<Flash>,
) -> Response {
    let mut form = NegativeForm::default();
    if let Some(id) = flash.edit {
        let entries = state.store.list_negatives().await.unwrap_or_default();
        let Some(e) = entries.into_iter().find(|e| e.id == id) else {
            return s.error(
                StatusCode::NOT_FOUND,
                &format!("negative entry '{id}' not found"),
            );
        };
        form = NegativeForm {
            csrf: String::new(),
            id: e.id.to_string(),
            resource: e.resource,
            items: e.items.join(","),
            modes: e
                .modes
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(","),
            consumers: e.consumers.join(","),
            legal_basis: e.legal_basis,
            note: e.note,
        };
    }
    negative_page(&state, &s, form, None, flash.done, StatusCode::OK).await
}

pub async fn add_negative(
    State(state): State<AppState>,
    s: Session,
    axum::Form(form): axum::Form<NegativeForm>,
) -> Response {
    if let Err(r) = s.check_csrf(&form.csrf).and_then(|()| s.require_office()) {
        return r;
    }
    let modes: Result<Vec<Mode>, String> = list_of(&form.modes)
        .iter()
        .map(|m| m.parse::<Mode>().map_err(|e| format!("modes: {e}")))
        .collect();
    let spec = match modes {
        Ok(modes) => NegativeSpec {
            resource: form.resource.trim().to_string(),
            items: list_of(&form.items),
            legal_basis: form.legal_basis.trim().to_string(),
            modes,
            consumers: list_of(&form.consumers),
            note: form.note.trim().to_string(),
        },
        Err(e) => {
            return negative_page(
                &state,
                &s,
                form,
                Some(e),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let saved = match editing(&form.id) {
        Err(e) => Err(tongban_catalog::Error::Conflict(e)),
        Ok(None) => state.store.create_negative(&spec).await.map(|n| n.id),
        Ok(Some(id)) => match state.store.list_negatives().await {
            Ok(all) if all.iter().any(|e| e.id == id) => state
                .store
                .import_negatives(&[tongban_catalog::Located {
                    at: format!("entry {id}"),
                    value: NegativeRecord::new(id, spec),
                }])
                .await
                .map(|_| id),
            Ok(_) => Err(tongban_catalog::Error::NotFound {
                what: "negative entry",
                key: id.to_string(),
            }),
            Err(e) => Err(e),
        },
    };
    match saved {
        Ok(id) => {
            state.lists_changed().await;
            Redirect::to(&format!("/console/lists/negative?done={id}")).into_response()
        }
        Err(e) => {
            negative_page(
                &state,
                &s,
                form,
                Some(super::message(&e)),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// The responsibility form, as typed.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ResponsibilityForm {
    #[serde(default)]
    csrf: String,
    /// Set when an existing duty is edited.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub items: String,
    #[serde(default)]
    pub refresh_interval_hours: String,
    #[serde(default)]
    pub delivery: String,
}

#[derive(Template)]
#[template(path = "responsibilities.html")]
struct ResponsibilityPage {
    f: Frame,
    entries: Vec<ResponsibilityRecord>,
    names: Names,
    form: ResponsibilityForm,
    error: Option<String>,
    flash: Option<String>,
}

async fn responsibility_page(
    state: &AppState,
    s: &Session,
    form: ResponsibilityForm,
    error: Option<String>,
    flash: Option<String>,
    status: StatusCode,
) -> Response {
    let (entries, names) = tokio::join!(
        state.store.list_responsibilities(),
        Names::load(state.store.as_ref())
    );
    let entries = match entries {
        Ok(e) => e,
        Err(e) => return s.error(StatusCode::SERVICE_UNAVAILABLE, &super::message(&e)),
    };
    let page = ResponsibilityPage {
        f: s.frame("responsibilities", s.t.t("resp.title")),
        entries,
        names,
        form,
        error,
        flash,
    };
    (status, render(&page)).into_response()
}

pub async fn responsibilities(
    State(state): State<AppState>,
    s: Session,
    Query(flash): Query<Flash>,
) -> Response {
    let mut form = ResponsibilityForm {
        delivery: "lookup".into(),
        ..ResponsibilityForm::default()
    };
    if let Some(id) = flash.edit {
        let entries = state
            .store
            .list_responsibilities()
            .await
            .unwrap_or_default();
        let Some(r) = entries.into_iter().find(|r| r.id == id) else {
            return s.error(
                StatusCode::NOT_FOUND,
                &format!("responsibility '{id}' not found"),
            );
        };
        form = ResponsibilityForm {
            csrf: String::new(),
            id: r.id.to_string(),
            provider: r.provider,
            resource: r.resource,
            items: r.items.join(","),
            refresh_interval_hours: r.refresh_interval_hours.to_string(),
            delivery: r.delivery.to_string(),
        };
    }
    responsibility_page(&state, &s, form, None, flash.done, StatusCode::OK).await
}

pub async fn add_responsibility(
    State(state): State<AppState>,
    s: Session,
    axum::Form(form): axum::Form<ResponsibilityForm>,
) -> Response {
    if let Err(r) = s.check_csrf(&form.csrf).and_then(|()| s.require_office()) {
        return r;
    }
    let parsed = (|| {
        let hours = form
            .refresh_interval_hours
            .trim()
            .parse::<u32>()
            .map_err(|_| {
                format!(
                    "refresh_interval_hours: '{}' is not a whole number of hours",
                    form.refresh_interval_hours.trim()
                )
            })?;
        let delivery: Mode = form
            .delivery
            .parse()
            .map_err(|e| format!("delivery: {e}"))?;
        Ok::<_, String>(ResponsibilitySpec {
            provider: form.provider.trim().to_string(),
            resource: form.resource.trim().to_string(),
            items: list_of(&form.items),
            refresh_interval_hours: hours,
            delivery,
        })
    })();
    let spec = match parsed {
        Ok(spec) => spec,
        Err(e) => {
            return responsibility_page(
                &state,
                &s,
                form,
                Some(e),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let saved = match editing(&form.id) {
        Err(e) => Err(tongban_catalog::Error::Conflict(e)),
        Ok(None) => state.store.create_responsibility(&spec).await.map(|r| r.id),
        Ok(Some(id)) => match state.store.list_responsibilities().await {
            Ok(all) if all.iter().any(|r| r.id == id) => state
                .store
                .import_responsibilities(&[tongban_catalog::Located {
                    at: format!("duty {id}"),
                    value: ResponsibilityRecord::new(id, spec),
                }])
                .await
                .map(|_| id),
            Ok(_) => Err(tongban_catalog::Error::NotFound {
                what: "responsibility",
                key: id.to_string(),
            }),
            Err(e) => Err(e),
        },
    };
    match saved {
        Ok(id) => {
            state.lists_changed().await;
            Redirect::to(&format!("/console/lists/responsibilities?done={id}")).into_response()
        }
        Err(e) => {
            responsibility_page(
                &state,
                &s,
                form,
                Some(super::message(&e)),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

fn back_to(list: &str) -> Option<&'static str> {
    match list {
        "negative" => Some("/console/lists/negative"),
        "responsibilities" => Some("/console/lists/responsibilities"),
        _ => None,
    }
}

pub async fn delete(
    State(state): State<AppState>,
    s: Session,
    Path((list, id)): Path<(String, i64)>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Err(r) = s.check_csrf(&form.csrf).and_then(|()| s.require_office()) {
        return r;
    }
    let Some(back) = back_to(&list) else {
        return s.error(StatusCode::NOT_FOUND, "no such list");
    };
    let deleted = match list.as_str() {
        "negative" => state.store.delete_negative(id).await,
        _ => state.store.delete_responsibility(id).await,
    };
    match deleted {
        Ok(()) => {
            state.lists_changed().await;
            Redirect::to(back).into_response()
        }
        Err(e) => s.error(StatusCode::NOT_FOUND, &super::message(&e)),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
}

/// A list as a CSV (with a BOM, for spreadsheets) or JSON download.
pub async fn export(
    State(state): State<AppState>,
    s: Session,
    Path(list): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Response {
    let csv = q.format.as_deref() == Some("csv");
    let body = match list.as_str() {
        "negative" => state.store.list_negatives().await.map(|v| {
            if csv {
                list_exchange::to_csv(&v)
            } else {
                list_exchange::to_json(&v)
            }
        }),
        "responsibilities" => state.store.list_responsibilities().await.map(|v| {
            if csv {
                list_exchange::to_csv(&v)
            } else {
                list_exchange::to_json(&v)
            }
        }),
        _ => return s.error(StatusCode::NOT_FOUND, "no such list"),
    };
    match body {
        Ok(body) => {
            let (ct, ext) = if csv {
                ("text/csv; charset=utf-8", "csv")
            } else {
                ("application/json", "json")
            };
            (
                [
                    (header::CONTENT_TYPE, ct.to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{list}.{ext}\""),
                    ),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => s.error(StatusCode::SERVICE_UNAVAILABLE, &super::message(&e)),
    }
}

/// Imports an uploaded CSV or JSON file, all or nothing, as the API does.
pub async fn import(
    State(state): State<AppState>,
    s: Session,
    Path(list): Path<String>,
    mut multipart: Multipart,
) -> Response {
    let Some(back) = back_to(&list) else {
        return s.error(StatusCode::NOT_FOUND, "no such list");
    };
    let (mut csrf, mut file, mut name) = (String::new(), Vec::new(), String::new());
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let field_name = field.name().unwrap_or_default().to_string();
                if field_name == "file" {
                    name = field.file_name().unwrap_or_default().to_string();
                }
                match field.bytes().await {
                    Ok(bytes) if field_name == "csrf" => {
                        csrf = String::from_utf8_lossy(&bytes).into_owned();
                    }
                    Ok(bytes) if field_name == "file" => file = bytes.to_vec(),
                    Ok(_) => {}
                    Err(e) => return s.error(StatusCode::BAD_REQUEST, &e.body_text()),
                }
            }
            Ok(None) => break,
            Err(e) => return s.error(StatusCode::BAD_REQUEST, &e.body_text()),
        }
    }
    if let Err(r) = s.check_csrf(&csrf).and_then(|()| s.require_office()) {
        return r;
    }
    let Ok(text) = std::str::from_utf8(&file) else {
        return s.error(StatusCode::BAD_REQUEST, "the file is not UTF-8 text");
    };
    let csv = name.to_ascii_lowercase().ends_with(".csv");
    let list = match list.as_str() {
        "negative" => ListName::Negative,
        _ => ListName::Responsibilities,
    };
    let counts = import_file(state.store.as_ref(), list, text, csv).await;
    match counts {
        Ok(c) => {
            state.lists_changed().await;
            Redirect::to(&format!("{back}?done=+{}/~{}", c.created, c.updated)).into_response()
        }
        Err(e) => s.error(StatusCode::UNPROCESSABLE_ENTITY, &super::message(&e)),
    }
}

#[derive(Template)]
#[template(path = "compliance.html")]
struct CompliancePage {
    f: Frame,
    rows: Vec<ComplianceRow>,
    names: Names,
}

pub async fn compliance(State(state): State<AppState>, s: Session) -> Response {
    let (rows, names) = tokio::join!(
        state.store.compliance(Utc::now()),
        Names::load(state.store.as_ref())
    );
    match rows {
        Ok(rows) => render(&CompliancePage {
            f: s.frame("compliance", s.t.t("comp.title")),
            rows,
            names,
        }),
        Err(e) => s.error(StatusCode::SERVICE_UNAVAILABLE, &super::message(&e)),
    }
}
