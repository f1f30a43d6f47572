//! The directory pages: search and filters, a resource with its items,
//! versions and freshness, and the data office's create and edit form.

use super::names::Named;
use super::{Frame, Session, render};
use crate::ConsoleApp as AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use std::collections::HashMap;
use tongban_catalog::{
    DataItem, DatasetVersion, Department, Resource, ResourceQuery, ResourceSpec,
};

/// Filters as the form sends them (empty = any).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub base_library: String,
    #[serde(default)]
    pub share_type: String,
    #[serde(default)]
    pub page: Option<u32>,
}

/// One row of the list.
pub struct Row {
    pub code: String,
    pub name: String,
    pub provider: Named,
    pub category: String,
    pub library: String,
    pub status: String,
    pub shares: Vec<String>,
    pub latest: Option<DatasetVersion>,
    /// `Some(true)` on time, `Some(false)` late, `None` no refresh promise.
    pub fresh: Option<bool>,
}

#[derive(Template)]
#[template(path = "directory.html")]
struct ListPage {
    f: Frame,
    filters: Filters,
    rows: Vec<Row>,
    departments: Vec<Department>,
    total: i64,
    page: u32,
    pages: u32,
    query: String,
}

fn row(state: &AppState, r: &Resource, departments: &HashMap<&str, &str>) -> Row {
    let mut shares: Vec<String> = r
        .spec
        .items
        .iter()
        .map(|i| i.share_type.to_string())
        .collect();
    shares.sort();
    shares.dedup();
    Row {
        code: r.spec.code.clone(),
        name: r.spec.name.clone(),
        provider: Named::new(
            &r.spec.provider,
            departments.get(r.spec.provider.as_str()).copied(),
        ),
        category: r.spec.category.to_string(),
        library: r
            .spec
            .base_library
            .map(|b| b.to_string())
            .unwrap_or_default(),
        status: r.status().to_string(),
        shares,
        fresh: r.latest_version.as_ref().and_then(|v| {
            state
                .access
                .policies()
                .within_sla(&r.spec.code, v.created_at, Utc::now())
        }),
        latest: r.latest_version.clone(),
    }
}

/// The directory, searched and filtered, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    s: Session,
    Query(filters): Query<Filters>,
) -> Response {
    let page = filters.page.unwrap_or(1).max(1);
    let mut query: ResourceQuery = match serde_json::from_value(serde_json::json!({
        "q": filters.q, "provider": filters.provider, "category": filters.category,
        "base_library": filters.base_library, "share_type": filters.share_type,
    })) {
        Ok(q) => q,
        Err(e) => return s.error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    query.page = Some(page);
    query.page_size = Some(50);
    let (found, departments) = match (
        state.store.list_resources(&query).await,
        state.store.list_departments().await,
    ) {
        (Ok(f), Ok(d)) => (f, d),
        (Err(e), _) | (_, Err(e)) => {
            return s.error(StatusCode::SERVICE_UNAVAILABLE, &super::message(&e));
        }
    };
    let names: HashMap<&str, &str> = departments
        .iter()
        .map(|d| (d.code.as_str(), d.name.as_str()))
        .collect();
    let rows = found.items.iter().map(|r| row(&state, r, &names)).collect();
    let pages = ((found.total + 49) / 50).max(1) as u32;
    let query = serde_urlencoded::to_string([
        ("q", filters.q.as_str()),
        ("provider", filters.provider.as_str()),
        ("category", filters.category.as_str()),
        ("base_library", filters.base_library.as_str()),
        ("share_type", filters.share_type.as_str()),
    ])
    .unwrap_or_default();
    render(&ListPage {
        f: s.frame("directory", s.t.t("dir.title")),
        filters,
        rows,
        departments,
        total: found.total,
        page,
        pages,
        query,
    })
}

#[derive(Template)]
#[template(path = "resource.html")]
struct DetailPage {
    f: Frame,
    r: Resource,
    provider: Named,
    versions: Vec<DatasetVersion>,
    fresh: Option<bool>,
    sla_hours: Option<u32>,
}

impl DetailPage {
    /// One of the resource's items, with its label.
    fn item(&self, name: &str) -> Named {
        let label = self.r.spec.items.iter().find(|i| i.name == name);
        Named::new(name, label.map(|i| i.label.as_str()))
    }
}

pub async fn detail(
    State(state): State<AppState>,
    s: Session,
    Path((class, seq)): Path<(String, String)>,
) -> Response {
    let code = format!("{class}/{seq}");
    let r = match state.store.get_resource(&code).await {
        Ok(r) => r,
        Err(e) => return s.error(StatusCode::NOT_FOUND, &super::message(&e)),
    };
    let versions = state.store.list_versions(&code).await.unwrap_or_default();
    let provider_name = state
        .store
        .get_department(&r.spec.provider)
        .await
        .ok()
        .map(|d| d.name);
    let provider = Named::new(&r.spec.provider, provider_name.as_deref());
    let sla_hours = state
        .store
        .list_responsibilities()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|d| d.resource == code)
        .map(|d| d.refresh_interval_hours)
        .min();
    let fresh = r.latest_version.as_ref().and_then(|v| {
        state
            .access
            .policies()
            .within_sla(&code, v.created_at, Utc::now())
    });
    render(&DetailPage {
        f: s.frame("directory", &format!("{} {}", r.spec.code, r.spec.name)),
        r,
        provider,
        versions,
        fresh,
        sla_hours,
    })
}

/// One item row of the form, as typed.
#[derive(Debug, Clone, Default)]
pub struct ItemRow {
    pub name: String,
    pub label: String,
    pub data_type: String,
    pub sensitivity: String,
    pub share_type: String,
    /// The share condition (conditional) or legal basis (none).
    pub note: String,
    pub mask: String,
    pub description: String,
}

/// The form, as typed (kept to show it again when it is refused).
#[derive(Debug, Clone, Default)]
pub struct ResourceForm {
    pub code: String,
    pub name: String,
    pub provider: String,
    pub summary: String,
    pub category: String,
    pub base_library: String,
    pub format: String,
    pub update_cycle: String,
    pub key_items: String,
    pub division_item: String,
    pub status: String,
    pub items: Vec<ItemRow>,
}

impl ResourceForm {
    fn of(spec: &ResourceSpec) -> ResourceForm {
        ResourceForm {
            code: spec.code.clone(),
            name: spec.name.clone(),
            provider: spec.provider.clone(),
            summary: spec.summary.clone(),
            category: spec.category.to_string(),
            base_library: spec.base_library.map(|b| b.to_string()).unwrap_or_default(),
            format: spec.format.to_string(),
            update_cycle: spec.update_cycle.to_string(),
            key_items: spec.key_items.join(","),
            division_item: spec.division_item.clone().unwrap_or_default(),
            status: spec.status.map(|s| s.to_string()).unwrap_or_default(),
            items: spec.items.iter().map(item_row).collect(),
        }
    }

    /// Reads the posted fields; item rows are `item_<field>_<n>`.
    fn parse(body: &[u8]) -> Result<(ResourceForm, String, bool), String> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| format!("form: {e}"))?;
        let mut f = ResourceForm::default();
        let (mut csrf, mut more) = (String::new(), false);
        for (k, v) in pairs {
            match k.as_str() {
                "csrf" => csrf = v,
                "more_rows" => more = true,
                "code" => f.code = v,
                "name" => f.name = v,
                "provider" => f.provider = v,
                "summary" => f.summary = v,
                "category" => f.category = v,
                "base_library" => f.base_library = v,
                "format" => f.format = v,
                "update_cycle" => f.update_cycle = v,
                "key_items" => f.key_items = v,
                "division_item" => f.division_item = v,
                "status" => f.status = v,
                other => {
                    let Some(rest) = other.strip_prefix("item_") else {
                        continue;
                    };
                    let Some((field, n)) = rest.rsplit_once('_') else {
                        continue;
                    };
                    let Ok(n) = n.parse::<usize>() else { continue };
                    if n >= 500 {
                        return Err("items: at most 500 rows".into());
                    }
                    if f.items.len() <= n {
                        f.items.resize(n + 1, ItemRow::default());
                    }
                    let row = &mut f.items[n];
                    match field {
                        "name" => row.name = v,
                        "label" => row.label = v,
                        "type" => row.data_type = v,
                        "sensitivity" => row.sensitivity = v,
                        "share" => row.share_type = v,
                        "note" => row.note = v,
                        "mask" => row.mask = v,
                        "description" => row.description = v,
                        _ => {}
                    }
                }
            }
        }
        Ok((f, csrf, more))
    }

    /// The spec the form describes; a value that is not one of its kind's
    /// words is refused naming its field, as the API would.
    fn spec(&self) -> Result<ResourceSpec, String> {
        fn word<T: std::str::FromStr>(field: &str, v: &str) -> Result<T, String>
        where
            T::Err: std::fmt::Display,
        {
            v.trim().parse().map_err(|e| format!("{field}: {e}"))
        }
        fn opt_word<T: std::str::FromStr>(field: &str, v: &str) -> Result<Option<T>, String>
        where
            T::Err: std::fmt::Display,
        {
            if v.trim().is_empty() {
                Ok(None)
            } else {
                word(field, v).map(Some)
            }
        }
        let mut items = Vec::new();
        for (i, row) in self
            .items
            .iter()
            .filter(|r| !r.name.trim().is_empty())
            .enumerate()
        {
            let at = |f: &str| format!("items[{i}].{f}");
            let share_type: tongban_policies::ShareType = word(&at("share_type"), &row.share_type)?;
            let note = (!row.note.trim().is_empty()).then(|| row.note.trim().to_string());
            items.push(DataItem {
                name: row.name.trim().to_string(),
                label: row.label.trim().to_string(),
                data_type: row.data_type.trim().to_string(),
                description: row.description.trim().to_string(),
                sensitivity: word(&at("sensitivity"), &row.sensitivity)?,
                share_type,
                share_condition: (share_type == tongban_policies::ShareType::Conditional)
                    .then(|| note.clone())
                    .flatten(),
                legal_basis: (share_type == tongban_policies::ShareType::None)
                    .then(|| note.clone())
                    .flatten(),
                mask: opt_word(&at("mask"), &row.mask)?,
            });
        }
        Ok(ResourceSpec {
            code: self.code.trim().to_string(),
            name: self.name.trim().to_string(),
            provider: self.provider.trim().to_string(),
            summary: self.summary.trim().to_string(),
            category: word("category", &self.category)?,
            base_library: opt_word("base_library", &self.base_library)?,
            format: word("format", &self.format)?,
            update_cycle: word("update_cycle", &self.update_cycle)?,
            publish_date: None,
            key_items: self
                .key_items
                .split([',', '，', ';'])
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(String::from)
                .collect(),
            division_item: (!self.division_item.trim().is_empty())
                .then(|| self.division_item.trim().to_string()),
            items,
            status: opt_word("status", &self.status)?,
        })
    }
}

fn item_row(i: &DataItem) -> ItemRow {
    ItemRow {
        name: i.name.clone(),
        label: i.label.clone(),
        data_type: i.data_type.clone(),
        sensitivity: i.sensitivity.to_string(),
        share_type: i.share_type.to_string(),
        note: i
            .share_condition
            .clone()
            .or_else(|| i.legal_basis.clone())
            .unwrap_or_default(),
        mask: i.mask.map(|m| m.to_string()).unwrap_or_default(),
        description: i.description.clone(),
    }
}

#[derive(Template)]
#[template(path = "resource_form.html")]
struct FormPage {
    f: Frame,
    form: ResourceForm,
    /// `None`: a new resource; the code of the one edited otherwise.
    editing: Option<String>,
    error: Option<String>,
    departments: Vec<Department>,
}

/// Blank rows shown under the items for new ones.
const BLANK_ROWS: usize = 3;

async fn form_page(
    state: &AppState,
    s: &Session,
    mut form: ResourceForm,
    editing: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    form.items
        .extend(std::iter::repeat_n(ItemRow::default(), BLANK_ROWS));
    let title = match &editing {
        Some(code) => format!("{} {code}", s.t.t("dir.edit")),
        None => s.t.t("dir.new").to_string(),
    };
    let page = FormPage {
        f: s.frame("directory", &title),
        form,
        editing,
        error,
        departments: state.store.list_departments().await.unwrap_or_default(),
    };
    (status, render(&page)).into_response()
}

pub async fn new_form(State(state): State<AppState>, s: Session) -> Response {
    if let Err(r) = s.require_office() {
        return r;
    }
    let form = ResourceForm {
        category: "department".into(),
        format: "database".into(),
        update_cycle: "daily".into(),
        status: "draft".into(),
        ..ResourceForm::default()
    };
    form_page(&state, &s, form, None, None, StatusCode::OK).await
}

pub async fn edit_form(
    State(state): State<AppState>,
    s: Session,
    Path((class, seq)): Path<(String, String)>,
) -> Response {
    if let Err(r) = s.require_office() {
        return r;
    }
    let code = format!("{class}/{seq}");
    match state.store.get_resource(&code).await {
        Ok(r) => {
            form_page(
                &state,
                &s,
                ResourceForm::of(&r.spec),
                Some(code),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(e) => s.error(StatusCode::NOT_FOUND, &super::message(&e)),
    }
}

/// Saves a form through the store (all or nothing); a refusal shows the
/// form again with what was typed and the API's message.
async fn save(state: &AppState, s: &Session, body: &[u8], editing: Option<String>) -> Response {
    if let Err(r) = s.require_office() {
        return r;
    }
    let (form, csrf, more) = match ResourceForm::parse(body) {
        Ok(parsed) => parsed,
        Err(e) => return s.error(StatusCode::BAD_REQUEST, &e),
    };
    if let Err(r) = s.check_csrf(&csrf) {
        return r;
    }
    if more {
        // "More rows": the same form, with blank rows added, nothing saved.
        return form_page(state, s, form, editing, None, StatusCode::OK).await;
    }
    let spec = match form.spec() {
        Ok(spec) => spec,
        Err(e) => {
            return form_page(
                state,
                s,
                form,
                editing,
                Some(e),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let saved = match &editing {
        None => state.store.create_resource(&spec).await,
        Some(code) if *code != spec.code => Err(tongban_catalog::Error::Invalid {
            field: "code".into(),
            message: format!("the code of '{code}' cannot change"),
        }),
        Some(code) => state.store.update_resource(code, &spec).await,
    };
    match saved {
        Ok(r) => {
            state.lists_changed().await;
            Redirect::to(&format!("/console/directory/{}?saved=1", r.spec.code)).into_response()
        }
        Err(e) => {
            let status = match e {
                tongban_catalog::Error::Duplicate { .. } | tongban_catalog::Error::Conflict(_) => {
                    StatusCode::CONFLICT
                }
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            form_page(state, s, form, editing, Some(super::message(&e)), status).await
        }
    }
}

pub async fn create(State(state): State<AppState>, s: Session, body: Bytes) -> Response {
    save(&state, &s, &body, None).await
}

pub async fn update(
    State(state): State<AppState>,
    s: Session,
    Path((class, seq)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    save(&state, &s, &body, Some(format!("{class}/{seq}"))).await
}

/// `1.5 MiB`-style sizes.
pub fn size(bytes: &i64) -> String {
    let b = *bytes as f64;
    if b >= 1048576.0 {
        format!("{:.1} MiB", b / 1048576.0)
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_rows_come_back_in_order_and_empty_rows_are_ignored() {
        let body = "csrf=x&code=301%2F000999&name=%E6%B5%8B%E8%AF%95&provider=sh-rsj&category=department\
&format=database&update_cycle=daily&key_items=a&item_name_1=b&item_label_1=B&item_type_1=Utf8\
&item_sensitivity_1=internal&item_share_1=none&item_note_1=%E4%BE%9D%E6%8D%AE\
&item_name_0=a&item_label_0=A&item_type_0=Utf8&item_sensitivity_0=public&item_share_0=unconditional\
&item_name_2=&item_label_2=";
        let (form, csrf, more) = ResourceForm::parse(body.as_bytes()).unwrap();
        assert_eq!((csrf.as_str(), more), ("x", false));
        let spec = form.spec().unwrap();
        assert_eq!(spec.items.len(), 2);
        assert_eq!(spec.items[1].legal_basis.as_deref(), Some("依据"));
        assert_eq!(spec.key_items, ["a"]);
    }

    #[test]
    fn words_outside_their_kind_name_the_field() {
        let form = ResourceForm {
            category: "fish".into(),
            ..ResourceForm::default()
        };
        assert!(form.spec().unwrap_err().starts_with("category: "));
    }
}
