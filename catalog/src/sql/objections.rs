//! Objections and their history (`crate::objections`).

use super::common::*;
use crate::objections::*;
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tongban_policies::calendar::Calendar;

const COLS: &str = "id, resource_code, record_key, items, claimed, evidence, raised_by, raised_for, \
     provider, status, raised_at, due_at, closed_at, version, corrected_version, value_hashes";

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("objection fields serialise")
}

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("'{s}': {e}")))
}

fn from_row(row: &AnyRow) -> Result<ObjectionRecord> {
    Ok(ObjectionRecord {
        id: row.try_get("id")?,
        resource: row.try_get("resource_code")?,
        key: row.try_get("record_key")?,
        items: parse(&row.try_get::<String, _>("items")?)?,
        claimed: parse(&row.try_get::<String, _>("claimed")?)?,
        evidence: row.try_get("evidence")?,
        raised_by: row.try_get("raised_by")?,
        raised_for: row.try_get("raised_for")?,
        provider: row.try_get("provider")?,
        status: parse_word(&row.try_get::<String, _>("status")?)?,
        raised_at: parse_time(&row.try_get::<String, _>("raised_at")?)?,
        due_at: parse_time(&row.try_get::<String, _>("due_at")?)?,
        closed_at: row
            .try_get::<Option<String>, _>("closed_at")?
            .map(|s| parse_time(&s))
            .transpose()?,
        version: row.try_get("version")?,
        corrected_version: row.try_get("corrected_version")?,
        value_hashes: parse(&row.try_get::<String, _>("value_hashes")?)?,
        history: Vec::new(),
    })
}

async fn add_event(
    conn: &mut AnyConnection,
    id: i64,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    note: &str,
) -> Result<()> {
    let seq: Option<i64> =
        sqlx::query_scalar("SELECT MAX(seq) FROM objection_events WHERE objection_id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    sqlx::query(
        "INSERT INTO objection_events (objection_id, seq, at, actor, action, note)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(seq.unwrap_or(0) + 1)
    .bind(time_text(at))
    .bind(actor.to_string())
    .bind(action.to_string())
    .bind(note.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Stores a new objection, open, with its deadline from `calendar`.
pub(crate) async fn raise(
    conn: &mut AnyConnection,
    r: &Raise<'_>,
    calendar: &Calendar,
) -> Result<i64> {
    let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM objections")
        .fetch_one(&mut *conn)
        .await?;
    let id = max.unwrap_or(0) + 1;
    let due = calendar.deadline(r.now, r.days);
    sqlx::query(&format!(
        "INSERT INTO objections ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(id)
    .bind(r.spec.resource.clone())
    .bind(r.spec.key.clone())
    .bind(json(&r.spec.items))
    .bind(json(&r.spec.claimed))
    .bind(r.spec.evidence.clone())
    .bind(r.raised_by.to_string())
    .bind(r.raised_for.clone())
    .bind(r.provider.to_string())
    .bind(ObjectionStatus::Open.as_str())
    .bind(time_text(r.now))
    .bind(time_text(due))
    .bind(None::<String>)
    .bind(r.version)
    .bind(None::<i64>)
    .bind(json(&r.value_hashes))
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_to_duplicate(e, "objection", &id.to_string()))?;
    add_event(conn, id, r.now, r.raised_by, "raised", &r.spec.evidence).await?;
    add_event(
        conn,
        id,
        r.now,
        "hub",
        "accepted",
        &format!(
            "record found in version {}; items marked disputed; {} to answer within {} working days",
            r.version, r.provider, r.days
        ),
    )
    .await?;
    Ok(id)
}

pub(crate) async fn find(conn: &mut AnyConnection, id: i64) -> Result<ObjectionRecord> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM objections WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "objection",
            key: id.to_string(),
        })?;
    let mut o = from_row(&row)?;
    let events = sqlx::query(
        "SELECT at, actor, action, note FROM objection_events WHERE objection_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    for e in &events {
        o.history.push(ObjectionEvent {
            at: parse_time(&e.try_get::<String, _>("at")?)?,
            actor: e.try_get("actor")?,
            action: e.try_get("action")?,
            note: e.try_get("note")?,
        });
    }
    Ok(o)
}

pub(crate) async fn list(
    conn: &mut AnyConnection,
    q: &ObjectionQuery,
) -> Result<Vec<ObjectionRecord>> {
    let mut args = Args::default();
    let mut filters = Vec::new();
    if let Some(p) = &q.party {
        let (a, b) = (args.text(p.clone()), args.text(p.clone()));
        filters.push(format!("(raised_by = {a} OR provider = {b})"));
    }
    if let Some(r) = &q.resource {
        filters.push(format!("resource_code = {}", args.text(r.clone())));
    }
    if let Some(s) = q.status {
        filters.push(format!("status = {}", args.text(s.as_str())));
    }
    if q.marking || q.overdue_at.is_some() {
        let (a, b) = (
            args.text(ObjectionStatus::Open.as_str()),
            args.text(ObjectionStatus::Correcting.as_str()),
        );
        filters.push(format!("status IN ({a}, {b})"));
    }
    if let Some(at) = q.overdue_at {
        // Times are stored in one format (RFC 3339, UTC, microseconds):
        // text order is time order.
        filters.push(format!("due_at < {}", args.text(time_text(at))));
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    let rows = sqlx::query_with(
        &format!("SELECT {COLS} FROM objections{filter} ORDER BY id"),
        args.args,
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Takes a step: `actor` is the provider for its own steps, `hub` for the
/// hub's checks. Steps out of order are conflicts; nothing changes then.
pub(crate) async fn step(
    conn: &mut AnyConnection,
    id: i64,
    actor: &str,
    step: &Step,
    now: DateTime<Utc>,
) -> Result<()> {
    let o = find(conn, id).await?;
    let provider_step = matches!(step, Step::Correcting { .. } | Step::Reject { .. });
    if provider_step && actor != o.provider {
        return Err(Error::Forbidden(format!(
            "only {}, the provider of {}, answers objections on it",
            o.provider, o.resource
        )));
    }
    use ObjectionStatus::*;
    let (next, action, note, corrected) = match step {
        Step::Correcting { note } if o.status == Open => {
            (Correcting, "correcting", note.clone(), None)
        }
        Step::Reject { reason } if o.status.marks() => {
            if reason.trim().is_empty() {
                return Err(Error::Invalid {
                    field: "reason".into(),
                    message: "a rejection needs its reason".into(),
                });
            }
            (Rejected, "rejected", reason.clone(), None)
        }
        Step::Corrected { version, note } if o.status == Correcting => {
            (Corrected, "corrected", note.clone(), Some(*version))
        }
        Step::Unchanged { version } if o.status == Correcting => (
            Correcting,
            "unchanged",
            format!("version {version} left the disputed items as they were"),
            None,
        ),
        _ => {
            return Err(Error::Conflict(format!(
                "objection {id} is {}: that step does not apply",
                o.status
            )));
        }
    };
    let closed = (!next.marks()).then(|| time_text(now));
    sqlx::query(
        "UPDATE objections SET status = $2, closed_at = $3, corrected_version = COALESCE($4, corrected_version)
         WHERE id = $1 AND status = $5",
    )
    .bind(id)
    .bind(next.as_str())
    .bind(closed)
    .bind(corrected)
    .bind(o.status.as_str())
    .execute(&mut *conn)
    .await?;
    add_event(conn, id, now, actor, action, &note).await
}
