//! Sync jobs and runs in SQL: the sync half of [`crate::SqlStore`]'s
//! [`crate::Store`] implementation. Same portable SQL rules as `sql.rs`.

use super::common::{now_text, parse_time, parse_word, unique_to_duplicate};
use super::directory::insert_version;
use crate::sync::*;
use crate::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

const JOB_COLS: &str = "id, name, resource_code, source, mode, watermark_column, tombstone_column, \
     schedule, transform, enabled, watermark, created_at, updated_at, diff_deletes";

fn job_from_row(row: &AnyRow) -> Result<SyncJob> {
    let source: String = row.try_get("source")?;
    Ok(SyncJob {
        id: row.try_get("id")?,
        spec: SyncJobSpec {
            name: row.try_get("name")?,
            resource: row.try_get("resource_code")?,
            source: serde_json::from_str(&source)
                .map_err(|e| Error::Corrupt(format!("sync job source '{source}': {e}")))?,
            mode: parse_word(&row.try_get::<String, _>("mode")?)?,
            watermark_column: row.try_get("watermark_column")?,
            tombstone_column: row.try_get("tombstone_column")?,
            diff_deletes: row.try_get::<i64, _>("diff_deletes")? != 0,
            schedule: row.try_get("schedule")?,
            transform: row.try_get("transform")?,
            enabled: row.try_get::<i64, _>("enabled")? != 0,
        },
        watermark: row.try_get("watermark")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_time(&row.try_get::<String, _>("updated_at")?)?,
    })
}

/// The rules a job's definition follows, checked before it is stored.
fn validate(spec: &SyncJobSpec) -> Result<()> {
    let name_ok = !spec.name.is_empty()
        && spec.name.len() <= 64
        && spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(Error::invalid(
            "name",
            "use 1 to 64 letters, digits, '-' or '_'",
        ));
    }
    if !spec.source.is_object() || spec.source.get("type").and_then(|t| t.as_str()).is_none() {
        return Err(Error::invalid(
            "source",
            "a connector config object with a \"type\"",
        ));
    }
    match (spec.mode, &spec.watermark_column) {
        (SyncMode::Incremental, None) => {
            return Err(Error::invalid(
                "watermark_column",
                "an incremental job needs a watermark column",
            ));
        }
        (SyncMode::Full, Some(_)) => {
            return Err(Error::invalid(
                "watermark_column",
                "only incremental jobs have a watermark column",
            ));
        }
        _ => {}
    }
    if spec.diff_deletes && spec.mode == SyncMode::Full {
        return Err(Error::invalid(
            "diff_deletes",
            "a full run already drops the rows gone from the source; diffing is for incremental jobs",
        ));
    }
    if spec.tombstone_column.is_some() && spec.mode == SyncMode::Full {
        return Err(Error::invalid(
            "tombstone_column",
            "a full run sees deletes as missing rows; tombstones are for incremental jobs",
        ));
    }
    for (field, v) in [
        ("watermark_column", &spec.watermark_column),
        ("tombstone_column", &spec.tombstone_column),
        ("schedule", &spec.schedule),
        ("transform", &spec.transform),
    ] {
        if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(Error::invalid(field, "must not be empty when given"));
        }
    }
    Ok(())
}

pub(crate) async fn create_job(conn: &mut AnyConnection, spec: &SyncJobSpec) -> Result<()> {
    validate(spec)?;
    if super::directory::find_resource(&mut *conn, &spec.resource)
        .await?
        .is_none()
    {
        return Err(Error::invalid(
            "resource",
            format!("resource '{}' is not in the directory", spec.resource),
        ));
    }
    let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM sync_jobs")
        .fetch_one(&mut *conn)
        .await?;
    let now = now_text();
    sqlx::query(&format!(
        "INSERT INTO sync_jobs ({JOB_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, $11, $12)"
    ))
    .bind(max.unwrap_or(0) + 1)
    .bind(spec.name.clone())
    .bind(spec.resource.clone())
    .bind(spec.source.to_string())
    .bind(spec.mode.as_str())
    .bind(spec.watermark_column.clone())
    .bind(spec.tombstone_column.clone())
    .bind(spec.schedule.clone())
    .bind(spec.transform.clone())
    .bind(i64::from(spec.enabled))
    .bind(now)
    .bind(i64::from(spec.diff_deletes))
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_to_duplicate(e, "sync job", &spec.name))?;
    Ok(())
}

pub(crate) async fn find_job(conn: &mut AnyConnection, name: &str) -> Result<Option<SyncJob>> {
    sqlx::query(&format!("SELECT {JOB_COLS} FROM sync_jobs WHERE name = $1"))
        .bind(name.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(job_from_row)
        .transpose()
}

pub(crate) async fn list_jobs(conn: &mut AnyConnection) -> Result<Vec<SyncJob>> {
    sqlx::query(&format!("SELECT {JOB_COLS} FROM sync_jobs ORDER BY name"))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(job_from_row)
        .collect()
}

const RUN_COLS: &str = "r.id, j.name, j.resource_code, r.started_at, r.finished_at, r.outcome, r.rows_read, \
     r.rows_written, r.rows_quarantined, r.bytes, r.inserts, r.updates, r.deletes, r.version, r.quarantine, \
     r.watermark, r.error";

fn run_from_row(row: &AnyRow) -> Result<SyncRun> {
    Ok(SyncRun {
        id: row.try_get(0)?,
        job: row.try_get(1)?,
        resource: row.try_get(2)?,
        started_at: parse_time(&row.try_get::<String, _>(3)?)?,
        finished_at: row
            .try_get::<Option<String>, _>(4)?
            .map(|s| parse_time(&s))
            .transpose()?,
        outcome: parse_word(&row.try_get::<String, _>(5)?)?,
        counts: RunCounts {
            rows_read: row.try_get(6)?,
            rows_written: row.try_get(7)?,
            rows_quarantined: row.try_get(8)?,
            bytes: row.try_get(9)?,
            inserts: row.try_get(10)?,
            updates: row.try_get(11)?,
            deletes: row.try_get(12)?,
        },
        version: row.try_get(13)?,
        quarantine: row.try_get(14)?,
        watermark: row.try_get(15)?,
        error: row.try_get(16)?,
    })
}

pub(crate) async fn find_run(conn: &mut AnyConnection, id: i64) -> Result<SyncRun> {
    let row = sqlx::query(&format!(
        "SELECT {RUN_COLS} FROM sync_runs r JOIN sync_jobs j ON j.id = r.job_id WHERE r.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::NotFound {
        what: "sync run",
        key: id.to_string(),
    })?;
    run_from_row(&row)
}

pub(crate) async fn list_runs(
    conn: &mut AnyConnection,
    job: Option<&str>,
    limit: i64,
) -> Result<Vec<SyncRun>> {
    let limit = limit.clamp(1, 10_000);
    let rows = match job {
        Some(name) => {
            if find_job(&mut *conn, name).await?.is_none() {
                return Err(Error::NotFound {
                    what: "sync job",
                    key: name.to_string(),
                });
            }
            sqlx::query(&format!(
                "SELECT {RUN_COLS} FROM sync_runs r JOIN sync_jobs j ON j.id = r.job_id \
                 WHERE j.name = $1 ORDER BY r.id DESC LIMIT $2"
            ))
            .bind(name.to_string())
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {RUN_COLS} FROM sync_runs r JOIN sync_jobs j ON j.id = r.job_id \
                 ORDER BY r.id DESC LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    rows.iter().map(run_from_row).collect()
}

pub(crate) async fn start_run(conn: &mut AnyConnection, name: &str) -> Result<i64> {
    let job = find_job(&mut *conn, name)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "sync job",
            key: name.to_string(),
        })?;
    let now = now_text();
    sqlx::query(
        "UPDATE sync_runs SET outcome = 'interrupted', finished_at = $1, \
         error = 'the process running it stopped before it finished' \
         WHERE job_id = $2 AND outcome = 'running'",
    )
    .bind(now.clone())
    .bind(job.id)
    .execute(&mut *conn)
    .await?;
    let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM sync_runs")
        .fetch_one(&mut *conn)
        .await?;
    let id = max.unwrap_or(0) + 1;
    sqlx::query(
        "INSERT INTO sync_runs (id, job_id, started_at, outcome, rows_read, rows_written, \
         rows_quarantined, bytes, inserts, updates, deletes) \
         VALUES ($1, $2, $3, 'running', 0, 0, 0, 0, 0, 0, 0)",
    )
    .bind(id)
    .bind(job.id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_to_duplicate(e, "sync run", &id.to_string()))?;
    Ok(id)
}

pub(crate) async fn finish_run(conn: &mut AnyConnection, id: i64, f: &RunFinish) -> Result<()> {
    let run = find_run(&mut *conn, id).await?;
    if run.outcome != RunOutcome::Running {
        return Err(Error::Conflict(format!(
            "sync run {id} already ended ({})",
            run.outcome
        )));
    }
    if f.outcome == RunOutcome::Running {
        return Err(Error::invalid(
            "outcome",
            "a finished run cannot be running",
        ));
    }
    if let Some(v) = &f.version {
        if f.outcome != RunOutcome::Succeeded {
            return Err(Error::invalid(
                "version",
                "only a succeeded run publishes a version",
            ));
        }
        insert_version(&mut *conn, v).await?;
    }
    let c = &f.counts;
    sqlx::query(
        "UPDATE sync_runs SET finished_at = $1, outcome = $2, rows_read = $3, rows_written = $4, \
         rows_quarantined = $5, bytes = $6, inserts = $7, updates = $8, deletes = $9, version = $10, \
         quarantine = $11, watermark = $12, error = $13 WHERE id = $14",
    )
    .bind(now_text())
    .bind(f.outcome.as_str())
    .bind(c.rows_read)
    .bind(c.rows_written)
    .bind(c.rows_quarantined)
    .bind(c.bytes)
    .bind(c.inserts)
    .bind(c.updates)
    .bind(c.deletes)
    .bind(f.version.as_ref().map(|v| v.version))
    .bind(f.quarantine.clone())
    .bind(f.watermark.clone())
    .bind(f.error.clone())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if f.outcome == RunOutcome::Succeeded {
        sqlx::query("UPDATE sync_jobs SET watermark = $1, updated_at = $2 WHERE name = $3")
            .bind(f.watermark.clone())
            .bind(now_text())
            .bind(run.job.clone())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
