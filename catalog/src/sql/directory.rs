//! The directory's tables: departments, resources with their data items,
//! and dataset version records.

use super::common::*;
use crate::model::*;
use crate::{Error, Result, validate};
use chrono::{NaiveDate, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

// ---- departments ----------------------------------------------------------

pub(crate) const DEPARTMENT_COLS: &str =
    "code, name, level, parent_code, division_code, credit_code";

pub(crate) fn department_from_row(row: &AnyRow) -> Result<Department> {
    Ok(Department {
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        level: parse_word(&row.try_get::<String, _>("level")?)?,
        parent: row.try_get("parent_code")?,
        division_code: row.try_get("division_code")?,
        credit_code: row.try_get("credit_code")?,
    })
}

pub(crate) async fn find_department(
    conn: &mut AnyConnection,
    code: &str,
) -> Result<Option<Department>> {
    let row = sqlx::query(&format!(
        "SELECT {DEPARTMENT_COLS} FROM departments WHERE code = $1"
    ))
    .bind(code.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(department_from_row).transpose()
}

/// Validates a department against the rules and the parent it names.
pub(crate) async fn check_department(conn: &mut AnyConnection, d: &Department) -> Result<()> {
    validate::department(d)?;
    if let Some(parent) = &d.parent {
        let p = find_department(conn, parent)
            .await?
            .ok_or_else(|| Error::invalid("parent", format!("unknown department '{parent}'")))?;
        validate::parent_level(d.level, p.level)?;
    }
    Ok(())
}

/// Inserts or (with `replace`) updates a department. Returns whether it was new.
pub(crate) async fn upsert_department(
    conn: &mut AnyConnection,
    d: &Department,
    replace: bool,
) -> Result<bool> {
    check_department(conn, d).await?;
    let t = now_text();
    let exists = find_department(conn, &d.code).await?.is_some();
    if exists && !replace {
        return Err(Error::Duplicate {
            what: "department",
            key: d.code.clone(),
        });
    }
    let sql = if exists {
        "UPDATE departments SET name = $2, level = $3, parent_code = $4, division_code = $5,
         credit_code = $6, updated_at = $7 WHERE code = $1"
    } else {
        "INSERT INTO departments (code, name, level, parent_code, division_code, credit_code,
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
    };
    sqlx::query(sql)
        .bind(d.code.clone())
        .bind(d.name.clone())
        .bind(d.level.as_str())
        .bind(d.parent.clone())
        .bind(d.division_code.clone())
        .bind(d.credit_code.clone())
        .bind(t)
        .execute(&mut *conn)
        .await
        .map_err(|e| unique_to_duplicate(e, "department", &d.code))?;
    Ok(!exists)
}

// ---- resources -------------------------------------------------------------

pub(crate) const RESOURCE_COLS: &str = "code, name, provider_code, summary, category, base_library, format, \
     update_cycle, publish_date, key_items, division_item, status, version, created_at, updated_at";
pub(crate) const ITEM_COLS: &str = "resource_code, name, label, data_type, description, sensitivity, \
     share_type, share_condition, legal_basis, mask";
pub(crate) const VERSION_COLS: &str =
    "resource_code, version, created_at, row_count, byte_size, location, origin";

pub(crate) fn resource_from_row(row: &AnyRow) -> Result<Resource> {
    let key_items: String = row.try_get("key_items")?;
    let publish_date: Option<String> = row.try_get("publish_date")?;
    Ok(Resource {
        spec: ResourceSpec {
            code: row.try_get("code")?,
            name: row.try_get("name")?,
            provider: row.try_get("provider_code")?,
            summary: row.try_get("summary")?,
            category: parse_word(&row.try_get::<String, _>("category")?)?,
            base_library: row
                .try_get::<Option<String>, _>("base_library")?
                .map(|s| parse_word(&s))
                .transpose()?,
            format: parse_word(&row.try_get::<String, _>("format")?)?,
            update_cycle: parse_word(&row.try_get::<String, _>("update_cycle")?)?,
            publish_date: publish_date
                .map(|s| {
                    NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                        .map_err(|e| Error::Corrupt(format!("date '{s}': {e}")))
                })
                .transpose()?,
            key_items: serde_json::from_str(&key_items)
                .map_err(|e| Error::Corrupt(format!("key_items '{key_items}': {e}")))?,
            division_item: row.try_get("division_item")?,
            items: Vec::new(),
            status: Some(parse_word(&row.try_get::<String, _>("status")?)?),
        },
        version: row.try_get("version")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_time(&row.try_get::<String, _>("updated_at")?)?,
        latest_version: None,
    })
}

pub(crate) fn item_from_row(row: &AnyRow) -> Result<DataItem> {
    Ok(DataItem {
        name: row.try_get("name")?,
        label: row.try_get("label")?,
        data_type: row.try_get("data_type")?,
        description: row.try_get("description")?,
        sensitivity: parse_word(&row.try_get::<String, _>("sensitivity")?)?,
        share_type: parse_word(&row.try_get::<String, _>("share_type")?)?,
        share_condition: row.try_get("share_condition")?,
        legal_basis: row.try_get("legal_basis")?,
        mask: row
            .try_get::<Option<String>, _>("mask")?
            .map(|m| parse_word(&m))
            .transpose()?,
    })
}

pub(crate) fn version_from_row(row: &AnyRow) -> Result<DatasetVersion> {
    Ok(DatasetVersion {
        resource: row.try_get("resource_code")?,
        version: row.try_get("version")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
        row_count: row.try_get("row_count")?,
        byte_size: row.try_get("byte_size")?,
        location: row.try_get("location")?,
        origin: row.try_get("origin")?,
    })
}

/// Fills in items and latest versions for resources read without them.
pub(crate) async fn complete_resources(
    conn: &mut AnyConnection,
    resources: &mut [Resource],
) -> Result<()> {
    if resources.is_empty() {
        return Ok(());
    }
    let mut args = Args::default();
    let codes = args.list(resources.iter().map(|r| r.spec.code.as_str()));
    let rows = sqlx::query_with(
        &format!(
            "SELECT {ITEM_COLS} FROM data_items WHERE resource_code IN ({codes})
             ORDER BY resource_code, position"
        ),
        args.args,
    )
    .fetch_all(&mut *conn)
    .await?;
    let index: HashMap<String, usize> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| (r.spec.code.clone(), i))
        .collect();
    for row in &rows {
        let code: String = row.try_get("resource_code")?;
        if let Some(&i) = index.get(&code) {
            resources[i].spec.items.push(item_from_row(row)?);
        }
    }
    let mut args = Args::default();
    let codes = args.list(resources.iter().map(|r| r.spec.code.as_str()));
    let rows = sqlx::query_with(
        &format!(
            "SELECT {VERSION_COLS} FROM dataset_versions v WHERE resource_code IN ({codes})
             AND version = (SELECT MAX(version) FROM dataset_versions w
                            WHERE w.resource_code = v.resource_code)"
        ),
        args.args,
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in &rows {
        let v = version_from_row(row)?;
        if let Some(&i) = index.get(&v.resource) {
            resources[i].latest_version = Some(v);
        }
    }
    Ok(())
}

/// Inserts a dataset version record (in the caller's transaction).
pub(crate) async fn insert_version(conn: &mut AnyConnection, v: &NewDatasetVersion) -> Result<()> {
    if find_resource(&mut *conn, &v.resource).await?.is_none() {
        return Err(Error::NotFound {
            what: "resource",
            key: v.resource.clone(),
        });
    }
    if v.version < 1 || v.row_count < 0 || v.byte_size < 0 {
        return Err(Error::invalid(
            "version",
            "version must be positive and counts not negative",
        ));
    }
    sqlx::query(
        "INSERT INTO dataset_versions (resource_code, version, created_at, row_count, byte_size,
         location, origin) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(v.resource.clone())
    .bind(v.version)
    .bind(now_text())
    .bind(v.row_count)
    .bind(v.byte_size)
    .bind(v.location.clone())
    .bind(v.origin.clone())
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        unique_to_duplicate(
            e,
            "dataset version",
            &format!("{}@{}", v.resource, v.version),
        )
    })?;
    Ok(())
}

pub(crate) async fn find_resource(
    conn: &mut AnyConnection,
    code: &str,
) -> Result<Option<Resource>> {
    let row = sqlx::query(&format!(
        "SELECT {RESOURCE_COLS} FROM resources WHERE code = $1"
    ))
    .bind(code.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut r = [resource_from_row(&row)?];
    complete_resources(conn, &mut r).await?;
    let [r] = r;
    Ok(Some(r))
}

pub(crate) fn search_text(spec: &ResourceSpec) -> String {
    let mut s = format!("{} {} {}", spec.code, spec.name, spec.summary);
    for item in &spec.items {
        s.push(' ');
        s.push_str(&item.name);
        s.push(' ');
        s.push_str(&item.label);
    }
    s.to_lowercase()
}

/// Whether a resource may move from one state to another.
pub(crate) fn check_transition(code: &str, from: Status, to: Status) -> Result<()> {
    use Status::*;
    match (from, to) {
        (Draft, Draft | Published | Retired) | (Published, Published | Retired) => Ok(()),
        (Retired, _) => Err(Error::Conflict(format!(
            "resource '{code}' is retired and read-only"
        ))),
        (Published, Draft) => Err(Error::Conflict(format!(
            "resource '{code}' is published and cannot go back to draft; retire it instead"
        ))),
    }
}

/// Inserts or (with `replace`) replaces a resource and its items. Returns
/// whether it was new.
pub(crate) async fn upsert_resource(
    conn: &mut AnyConnection,
    spec: &ResourceSpec,
    replace: bool,
) -> Result<bool> {
    validate::resource(spec)?;
    if find_department(conn, &spec.provider).await?.is_none() {
        return Err(Error::invalid(
            "provider",
            format!("unknown department '{}'", spec.provider),
        ));
    }
    let existing = find_resource(conn, &spec.code).await?;
    let t = now_text();
    let today = Utc::now().date_naive();
    let status = match &existing {
        Some(_) if !replace => {
            return Err(Error::Duplicate {
                what: "resource",
                key: spec.code.clone(),
            });
        }
        Some(old) if old.status() == Status::Retired => {
            return Err(Error::Conflict(format!(
                "resource '{}' is retired and read-only",
                spec.code
            )));
        }
        Some(old) => {
            let to = spec.status.unwrap_or(old.status());
            check_transition(&spec.code, old.status(), to)?;
            to
        }
        None => spec.status.unwrap_or(Status::Draft),
    };
    let publish_date = spec
        .publish_date
        .or_else(|| existing.as_ref().and_then(|r| r.spec.publish_date))
        .or((status == Status::Published).then_some(today))
        .map(|d| d.format("%Y-%m-%d").to_string());
    let key_items = serde_json::to_string(&spec.key_items).expect("strings serialise");
    let sql = if existing.is_some() {
        "UPDATE resources SET name = $2, provider_code = $3, summary = $4, category = $5,
         base_library = $6, format = $7, update_cycle = $8, publish_date = $9, key_items = $10,
         status = $11, version = version + 1, updated_at = $12, search_text = $13,
         division_item = $14 WHERE code = $1"
    } else {
        "INSERT INTO resources (code, name, provider_code, summary, category, base_library,
         format, update_cycle, publish_date, key_items, status, version, created_at, updated_at,
         search_text, division_item)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12, $13, $14)"
    };
    sqlx::query(sql)
        .bind(spec.code.clone())
        .bind(spec.name.clone())
        .bind(spec.provider.clone())
        .bind(spec.summary.clone())
        .bind(spec.category.as_str())
        .bind(spec.base_library.map(|b| b.as_str()))
        .bind(spec.format.as_str())
        .bind(spec.update_cycle.as_str())
        .bind(publish_date)
        .bind(key_items)
        .bind(status.as_str())
        .bind(t)
        .bind(search_text(spec))
        .bind(spec.division_item.clone())
        .execute(&mut *conn)
        .await
        .map_err(|e| unique_to_duplicate(e, "resource", &spec.code))?;
    sqlx::query("DELETE FROM data_items WHERE resource_code = $1")
        .bind(spec.code.clone())
        .execute(&mut *conn)
        .await?;
    for (position, item) in spec.items.iter().enumerate() {
        sqlx::query(
            "INSERT INTO data_items (resource_code, position, name, label, data_type, description,
             sensitivity, share_type, share_condition, legal_basis, mask)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(spec.code.clone())
        .bind(position as i64)
        .bind(item.name.clone())
        .bind(item.label.clone())
        .bind(item.data_type.clone())
        .bind(item.description.clone())
        .bind(item.sensitivity.as_str())
        .bind(item.share_type.as_str())
        .bind(item.share_condition.clone())
        .bind(item.legal_basis.clone())
        .bind(item.mask.map(|m| m.to_string()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(existing.is_none())
}

/// `%` and `_` in a search are literal characters, not wildcards.
pub(crate) fn like_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}
