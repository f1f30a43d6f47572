//! The services table: one provider API definition per resource, stored as
//! its JSON definition (the hub reads it whole; nothing queries inside it).

use super::common::*;
use super::directory::{find_resource, upsert_resource};
use crate::services::{ServiceRecord, ServiceRegistration, ServiceSpec, ServiceSwitch};
use crate::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

const COLS: &str =
    "s.resource_code, s.definition, s.version, s.updated_at, r.provider_code, r.name";

fn from_row(row: &AnyRow) -> Result<ServiceRecord> {
    let definition: String = row.try_get("definition")?;
    Ok(ServiceRecord {
        resource: row.try_get("resource_code")?,
        provider: row.try_get("provider_code")?,
        name: row.try_get("name")?,
        service: serde_json::from_str(&definition)
            .map_err(|e| Error::Corrupt(format!("service definition: {e}")))?,
        version: row.try_get("version")?,
        updated_at: parse_time(&row.try_get::<String, _>("updated_at")?)?,
    })
}

pub(crate) async fn find(conn: &mut AnyConnection, code: &str) -> Result<Option<ServiceRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM services s JOIN resources r ON r.code = s.resource_code \
         WHERE s.resource_code = $1"
    ))
    .bind(code.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(crate) async fn get(conn: &mut AnyConnection, code: &str) -> Result<ServiceRecord> {
    find(conn, code).await?.ok_or_else(|| Error::NotFound {
        what: "service",
        key: code.to_string(),
    })
}

pub(crate) async fn list(conn: &mut AnyConnection) -> Result<Vec<ServiceRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM services s JOIN resources r ON r.code = s.resource_code \
         ORDER BY s.resource_code"
    ))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Checks the definition against the resource, then writes the resource
/// (created or replaced) and the definition: the caller's transaction makes
/// it all or nothing.
pub(crate) async fn register(conn: &mut AnyConnection, reg: &ServiceRegistration) -> Result<()> {
    crate::validate::resource(&reg.resource)?;
    reg.service.check(&reg.resource)?;
    let exists = find_resource(conn, &reg.resource.code).await?.is_some();
    upsert_resource(conn, &reg.resource, exists).await?;
    write(conn, &reg.resource.code, &reg.service).await
}

async fn write(conn: &mut AnyConnection, code: &str, spec: &ServiceSpec) -> Result<()> {
    let definition = serde_json::to_string(spec).expect("service definitions serialise");
    let t = now_text();
    let updated = sqlx::query(
        "UPDATE services SET definition = $1, version = version + 1, updated_at = $2 \
         WHERE resource_code = $3",
    )
    .bind(definition.clone())
    .bind(t.clone())
    .bind(code.to_string())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        sqlx::query(
            "INSERT INTO services (resource_code, definition, version, updated_at) \
             VALUES ($1, $2, 1, $3)",
        )
        .bind(code.to_string())
        .bind(definition)
        .bind(t)
        .execute(&mut *conn)
        .await
        .map_err(|e| unique_to_duplicate(e, "service", code))?;
    }
    Ok(())
}

pub(crate) async fn switch(conn: &mut AnyConnection, code: &str, s: &ServiceSwitch) -> Result<()> {
    let mut record = get(conn, code).await?;
    if let Some(n) = &s.notice
        && n.chars().count() > 500
    {
        return Err(Error::invalid("notice", "at most 500 characters"));
    }
    record.service.enabled = s.enabled;
    if s.notice.is_some() || s.enabled {
        record.service.disabled_notice = s.notice.clone();
    }
    write(conn, code, &record.service).await
}
