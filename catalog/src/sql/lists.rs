//! The three lists and the calendar in SQL: the list half of
//! [`crate::SqlStore`]'s [`crate::Store`] implementation, kept apart from the
//! directory half for legibility. Same portable SQL rules as `sql.rs`.

use crate::lists::*;
use crate::model::{Located, Role, Status};

use super::common::{now_text, parse_time, parse_word, time_text, unique_to_duplicate};
use super::directory::{find_department, find_resource};
use crate::{Error, Result};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tongban_policies::calendar::Calendar;
use tongban_policies::lists::{ItemPolicy, ResourcePolicy};
use tongban_policies::{NeedStatus, PolicyInput, ShareType};

fn json_list<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("lists serialise")
}

fn parse_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("'{s}': {e}")))
}

fn opt_time(row: &AnyRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    row.try_get::<Option<String>, _>(col)?
        .map(|s| parse_time(&s))
        .transpose()
}

/// The next id of a list table. Lists are written rarely, by people: a
/// concurrent writer that takes the same id fails on the primary key and
/// gets a clear error rather than a silent overwrite.
async fn next_id(conn: &mut AnyConnection, table: &str) -> Result<i64> {
    let max: Option<i64> = sqlx::query_scalar(&format!("SELECT MAX(id) FROM {table}"))
        .fetch_one(&mut *conn)
        .await?;
    Ok(max.unwrap_or(0) + 1)
}

// ---- needs -------------------------------------------------------------------

const NEED_COLS: &str = "id, consumer_code, resource_code, items, matter, mode, justification, row_filter, \
     daily_quota, clear_items, valid_from, valid_until, status, submitted_at, due_at, decided_at, \
     matter_name, covert_until";

fn need_from_row(row: &AnyRow) -> Result<NeedRecord> {
    Ok(NeedRecord {
        id: row.try_get("id")?,
        consumer: row.try_get("consumer_code")?,
        resource: row.try_get("resource_code")?,
        items: parse_json(&row.try_get::<String, _>("items")?)?,
        matter: row.try_get("matter")?,
        mode: parse_word(&row.try_get::<String, _>("mode")?)?,
        justification: row.try_get("justification")?,
        row_filter: row
            .try_get::<Option<String>, _>("row_filter")?
            .map(|s| parse_json(&s))
            .transpose()?,
        daily_quota: row
            .try_get::<Option<i64>, _>("daily_quota")?
            .map(|q| q as u32),
        clear_items: parse_json(&row.try_get::<String, _>("clear_items")?)?,
        valid_from: opt_time(row, "valid_from")?,
        valid_until: opt_time(row, "valid_until")?,
        status: parse_word(&row.try_get::<String, _>("status")?)?,
        submitted_at: parse_time(&row.try_get::<String, _>("submitted_at")?)?,
        due_at: opt_time(row, "due_at")?,
        decided_at: opt_time(row, "decided_at")?,
        matter_name: row.try_get("matter_name")?,
        covert_until: opt_time(row, "covert_until")?,
        history: Vec::new(),
    })
}

pub(crate) async fn find_need(conn: &mut AnyConnection, id: i64) -> Result<Option<NeedRecord>> {
    let row = sqlx::query(&format!("SELECT {NEED_COLS} FROM needs WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut need = need_from_row(&row)?;
    let events = sqlx::query("SELECT at, actor_department, action, reason FROM need_events WHERE need_id = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    for e in &events {
        need.history.push(NeedEvent {
            at: parse_time(&e.try_get::<String, _>("at")?)?,
            actor: e.try_get("actor_department")?,
            action: e.try_get("action")?,
            reason: e.try_get("reason")?,
        });
    }
    Ok(Some(need))
}

async fn add_event(
    conn: &mut AnyConnection,
    id: i64,
    actor: &str,
    action: &str,
    reason: &str,
) -> Result<()> {
    let seq: Option<i64> =
        sqlx::query_scalar("SELECT MAX(seq) FROM need_events WHERE need_id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    sqlx::query("INSERT INTO need_events (need_id, seq, at, actor_department, action, reason) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(seq.unwrap_or(0) + 1)
        .bind(now_text())
        .bind(actor.to_string())
        .bind(action.to_string())
        .bind(reason.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Inserts or replaces a need row as given.
async fn write_need(conn: &mut AnyConnection, n: &NeedRecord, replace: bool) -> Result<()> {
    let sql = if replace {
        "UPDATE needs SET consumer_code = $2, resource_code = $3, items = $4, matter = $5, mode = $6,
         justification = $7, row_filter = $8, daily_quota = $9, clear_items = $10, valid_from = $11,
         valid_until = $12, status = $13, submitted_at = $14, due_at = $15, decided_at = $16,
         updated_at = $17, matter_name = $18, covert_until = $19 WHERE id = $1"
    } else {
        "INSERT INTO needs (id, consumer_code, resource_code, items, matter, mode, justification,
         row_filter, daily_quota, clear_items, valid_from, valid_until, status, submitted_at, due_at,
         decided_at, updated_at, matter_name, covert_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
         $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
    };
    sqlx::query(sql)
        .bind(n.id)
        .bind(n.consumer.clone())
        .bind(n.resource.clone())
        .bind(json_list(&n.items))
        .bind(n.matter.clone())
        .bind(n.mode.as_str())
        .bind(n.justification.clone())
        .bind(n.row_filter.as_ref().map(json_list))
        .bind(n.daily_quota.map(i64::from))
        .bind(json_list(&n.clear_items))
        .bind(n.valid_from.map(time_text))
        .bind(n.valid_until.map(time_text))
        .bind(n.status.as_str())
        .bind(time_text(n.submitted_at))
        .bind(n.due_at.map(time_text))
        .bind(n.decided_at.map(time_text))
        .bind(now_text())
        .bind(n.matter_name.clone())
        .bind(n.covert_until.map(time_text))
        .execute(&mut *conn)
        .await
        .map_err(|e| unique_to_duplicate(e, "need", &n.id.to_string()))?;
    Ok(())
}

/// Checks an application against the directory and the negative list.
/// Returns whether any item is conditional and whether the resource is published.
async fn check_application(
    conn: &mut AnyConnection,
    consumer: &str,
    a: &NeedApplication,
) -> Result<(bool, bool)> {
    validate_application(a)?;
    if find_department(conn, consumer).await?.is_none() {
        return Err(Error::invalid(
            "consumer",
            format!("unknown department '{consumer}'"),
        ));
    }
    let resource = find_resource(conn, &a.resource)
        .await?
        .ok_or_else(|| Error::invalid("resource", format!("unknown resource '{}'", a.resource)))?;
    if resource.status() == Status::Retired {
        return Err(Error::invalid(
            "resource",
            format!("resource '{}' is retired", a.resource),
        ));
    }
    let negatives = list_negatives(conn).await?;
    let mut conditional = false;
    for (i, name) in a.items.iter().enumerate() {
        let field = format!("items[{i}]");
        let item = resource
            .spec
            .items
            .iter()
            .find(|it| &it.name == name)
            .ok_or_else(|| {
                Error::invalid(&field, format!("'{}' has no item '{name}'", a.resource))
            })?;
        match item.share_type {
            ShareType::None => {
                return Err(Error::invalid(
                    &field,
                    format!(
                        "'{name}' is not shared: {}",
                        item.legal_basis.as_deref().unwrap_or("share type none")
                    ),
                ));
            }
            ShareType::Conditional => conditional = true,
            ShareType::Unconditional => {}
        }
        if let Some(n) = negatives
            .iter()
            .find(|n| n.resource == a.resource && n.to_policy().bars(name, consumer, a.mode))
        {
            return Err(Error::invalid(
                &field,
                format!(
                    "'{name}' is on the negative list (entry {}): {}",
                    n.id, n.legal_basis
                ),
            ));
        }
    }
    if let Some(f) = &a.row_filter
        && !resource.spec.items.iter().any(|it| it.name == f.item)
    {
        return Err(Error::invalid(
            "row_filter.item",
            format!("'{}' has no item '{}'", a.resource, f.item),
        ));
    }
    Ok((conditional, resource.status() == Status::Published))
}

pub(crate) async fn apply_need(
    conn: &mut AnyConnection,
    consumer: &str,
    a: &NeedApplication,
) -> Result<i64> {
    let (conditional, published) = check_application(conn, consumer, a).await?;
    let calendar = get_calendar(conn).await?;
    let now = Utc::now();
    let (status, days) = if conditional {
        (
            NeedStatus::PendingProvider,
            if published {
                PROVIDER_REPLY_DAYS
            } else {
                PROVIDER_REPLY_DAYS_UNPUBLISHED
            },
        )
    } else {
        (NeedStatus::PendingOffice, OFFICE_REVIEW_DAYS)
    };
    let id = next_id(conn, "needs").await?;
    let record = NeedRecord {
        id,
        consumer: consumer.to_string(),
        resource: a.resource.clone(),
        items: a.items.clone(),
        matter: a.matter.trim().to_string(),
        mode: a.mode,
        justification: a.justification.clone(),
        row_filter: a.row_filter.clone(),
        daily_quota: a.daily_quota,
        clear_items: a.clear_items.clone(),
        valid_from: a.valid_from,
        valid_until: a.valid_until,
        status,
        submitted_at: now,
        due_at: Some(calendar.deadline(now, days)),
        decided_at: None,
        matter_name: a
            .matter_name
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(Into::into),
        covert_until: a.covert_until,
        history: Vec::new(),
    };
    write_need(conn, &record, false).await?;
    add_event(conn, id, consumer, "applied", &a.justification).await?;
    Ok(id)
}

pub(crate) async fn review_need(
    conn: &mut AnyConnection,
    id: i64,
    actor: Actor<'_>,
    action: &ReviewAction,
    reason: &str,
) -> Result<()> {
    let mut need = find_need(conn, id).await?.ok_or_else(|| Error::NotFound {
        what: "need",
        key: id.to_string(),
    })?;
    let provider = find_resource(conn, &need.resource)
        .await?
        .map(|r| r.spec.provider)
        .unwrap_or_default();
    let office = actor.role == Role::DataOffice;
    let is_provider = actor.department == provider;
    let now = Utc::now();
    if matches!(action, ReviewAction::Reject | ReviewAction::Revoke) && reason.trim().is_empty() {
        return Err(Error::invalid(
            "reason",
            "give the reason: the consumer will read it",
        ));
    }
    let forbidden =
        |what: &str| Error::Forbidden(format!("{} may not {what} need {id}", actor.department));
    let event = match (action, need.status) {
        (ReviewAction::Approve, NeedStatus::PendingProvider) => {
            if !is_provider {
                return Err(forbidden(&format!("answer for provider {provider} on")));
            }
            need.status = NeedStatus::PendingOffice;
            need.due_at = Some(get_calendar(conn).await?.deadline(now, OFFICE_REVIEW_DAYS));
            "provider_approved"
        }
        (ReviewAction::Approve, NeedStatus::PendingOffice) => {
            if !office {
                return Err(forbidden("give the data office's approval to"));
            }
            need.status = NeedStatus::Approved;
            need.valid_from = Some(need.valid_from.unwrap_or(now));
            need.due_at = None;
            need.decided_at = Some(now);
            "approved"
        }
        (ReviewAction::Reject, NeedStatus::PendingProvider | NeedStatus::PendingOffice) => {
            let allowed = office || (is_provider && need.status == NeedStatus::PendingProvider);
            if !allowed {
                return Err(forbidden("reject"));
            }
            need.status = NeedStatus::Rejected;
            need.due_at = None;
            need.decided_at = Some(now);
            "rejected"
        }
        (ReviewAction::Revoke, NeedStatus::Approved) => {
            if !(office || is_provider) {
                return Err(forbidden("revoke"));
            }
            need.status = NeedStatus::Revoked;
            need.decided_at = Some(now);
            "revoked"
        }
        (action, status) => {
            return Err(Error::Conflict(format!(
                "need {id} is {status}: it cannot be {}",
                match action {
                    ReviewAction::Approve => "approved",
                    ReviewAction::Reject => "rejected",
                    ReviewAction::Revoke => "revoked",
                }
            )));
        }
    };
    write_need(conn, &need, true).await?;
    add_event(conn, id, actor.department, event, reason).await
}

pub(crate) async fn list_needs(conn: &mut AnyConnection, q: &NeedQuery) -> Result<Vec<NeedRecord>> {
    let rows = sqlx::query(&format!("SELECT {NEED_COLS} FROM needs ORDER BY id"))
        .fetch_all(&mut *conn)
        .await?;
    let mut needs = rows.iter().map(need_from_row).collect::<Result<Vec<_>>>()?;
    // Lists hold thousands of entries, not millions: filter here, in one place,
    // rather than in SQL built per filter combination.
    let providers: std::collections::HashMap<String, String> = if q.party.is_some() {
        sqlx::query("SELECT code, provider_code FROM resources")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("code")?, r.try_get("provider_code")?)))
            .collect::<Result<_>>()?
    } else {
        Default::default()
    };
    needs.retain(|n| {
        q.party
            .as_ref()
            .is_none_or(|p| &n.consumer == p || providers.get(&n.resource) == Some(p))
            && q.resource.as_ref().is_none_or(|r| &n.resource == r)
            && q.status.is_none_or(|s| n.status == s)
            && q.overdue_at.is_none_or(|t| n.overdue(t))
    });
    Ok(needs)
}

/// Checks an imported need against the directory (its history is not imported).
async fn check_need_record(conn: &mut AnyConnection, n: &NeedRecord) -> Result<()> {
    if n.id < 1 {
        return Err(Error::invalid("id", "must be positive"));
    }
    crate::validate::department_code("consumer", &n.consumer)?;
    check_application(conn, &n.consumer, &n.application()).await?;
    Ok(())
}

pub(crate) async fn import_needs(
    conn: &mut AnyConnection,
    records: &[Located<NeedRecord>],
) -> Result<(usize, usize)> {
    let (mut created, mut updated) = (0, 0);
    for r in records {
        check_need_record(conn, &r.value)
            .await
            .map_err(|e| e.at(&r.at))?;
        let exists = find_need(conn, r.value.id).await?.is_some();
        write_need(conn, &r.value, exists)
            .await
            .map_err(|e| e.at(&r.at))?;
        add_event(conn, r.value.id, "import", "imported", "").await?;
        if exists { updated += 1 } else { created += 1 }
    }
    Ok((created, updated))
}

// ---- negative list --------------------------------------------------------------

fn negative_from_row(row: &AnyRow) -> Result<NegativeRecord> {
    Ok(NegativeRecord {
        id: row.try_get("id")?,
        resource: row.try_get("resource_code")?,
        items: parse_json(&row.try_get::<String, _>("items")?)?,
        legal_basis: row.try_get("legal_basis")?,
        modes: parse_json(&row.try_get::<String, _>("modes")?)?,
        consumers: parse_json(&row.try_get::<String, _>("consumers")?)?,
        note: row.try_get("note")?,
    })
}

pub(crate) async fn list_negatives(conn: &mut AnyConnection) -> Result<Vec<NegativeRecord>> {
    let rows = sqlx::query("SELECT id, resource_code, items, legal_basis, modes, consumers, note FROM negative_entries ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(negative_from_row).collect()
}

async fn check_negative(conn: &mut AnyConnection, n: &NegativeSpec) -> Result<()> {
    validate_negative(n)?;
    let resource = find_resource(conn, &n.resource)
        .await?
        .ok_or_else(|| Error::invalid("resource", format!("unknown resource '{}'", n.resource)))?;
    for (i, item) in n.items.iter().enumerate() {
        if !resource.spec.items.iter().any(|it| &it.name == item) {
            return Err(Error::invalid(
                format!("items[{i}]"),
                format!("'{}' has no item '{item}'", n.resource),
            ));
        }
    }
    for (i, c) in n.consumers.iter().enumerate() {
        if find_department(conn, c).await?.is_none() {
            return Err(Error::invalid(
                format!("consumers[{i}]"),
                format!("unknown department '{c}'"),
            ));
        }
    }
    Ok(())
}

pub(crate) async fn write_negative(conn: &mut AnyConnection, n: &NegativeRecord) -> Result<bool> {
    check_negative(conn, &n.spec()).await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM negative_entries WHERE id = $1")
        .bind(n.id)
        .fetch_optional(&mut *conn)
        .await?;
    let sql = if exists.is_some() {
        "UPDATE negative_entries SET resource_code = $2, items = $3, legal_basis = $4, modes = $5,
         consumers = $6, note = $7, updated_at = $8 WHERE id = $1"
    } else {
        "INSERT INTO negative_entries (id, resource_code, items, legal_basis, modes, consumers, note,
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
    };
    sqlx::query(sql)
        .bind(n.id)
        .bind(n.resource.clone())
        .bind(json_list(&n.items))
        .bind(n.legal_basis.trim().to_string())
        .bind(json_list(&n.modes))
        .bind(json_list(&n.consumers))
        .bind(n.note.clone())
        .bind(now_text())
        .execute(&mut *conn)
        .await
        .map_err(|e| unique_to_duplicate(e, "negative entry", &n.id.to_string()))?;
    Ok(exists.is_none())
}

pub(crate) async fn create_negative(conn: &mut AnyConnection, spec: NegativeSpec) -> Result<i64> {
    let id = next_id(conn, "negative_entries").await?;
    write_negative(conn, &NegativeRecord::new(id, spec)).await?;
    Ok(id)
}

pub(crate) async fn delete_row(
    conn: &mut AnyConnection,
    table: &str,
    what: &'static str,
    id: i64,
) -> Result<()> {
    let done = sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound {
            what,
            key: id.to_string(),
        });
    }
    Ok(())
}

// ---- responsibility list ------------------------------------------------------------

fn responsibility_from_row(row: &AnyRow) -> Result<ResponsibilityRecord> {
    Ok(ResponsibilityRecord {
        id: row.try_get("id")?,
        provider: row.try_get("provider_code")?,
        resource: row.try_get("resource_code")?,
        items: parse_json(&row.try_get::<String, _>("items")?)?,
        refresh_interval_hours: row.try_get::<i64, _>("refresh_interval_hours")? as u32,
        delivery: parse_word(&row.try_get::<String, _>("delivery")?)?,
    })
}

pub(crate) async fn list_responsibilities(
    conn: &mut AnyConnection,
) -> Result<Vec<(ResponsibilityRecord, DateTime<Utc>)>> {
    let rows = sqlx::query(
        "SELECT id, provider_code, resource_code, items, refresh_interval_hours, delivery, created_at
         FROM responsibilities ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                responsibility_from_row(r)?,
                parse_time(&r.try_get::<String, _>("created_at")?)?,
            ))
        })
        .collect()
}

pub(crate) async fn write_responsibility(
    conn: &mut AnyConnection,
    r: &ResponsibilityRecord,
) -> Result<bool> {
    validate_responsibility(&r.spec())?;
    let resource = find_resource(conn, &r.resource)
        .await?
        .ok_or_else(|| Error::invalid("resource", format!("unknown resource '{}'", r.resource)))?;
    if resource.spec.provider != r.provider {
        return Err(Error::invalid(
            "provider",
            format!(
                "'{}' is provided by {}, not {}",
                r.resource, resource.spec.provider, r.provider
            ),
        ));
    }
    for (i, item) in r.items.iter().enumerate() {
        if !resource.spec.items.iter().any(|it| &it.name == item) {
            return Err(Error::invalid(
                format!("items[{i}]"),
                format!("'{}' has no item '{item}'", r.resource),
            ));
        }
    }
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM responsibilities WHERE id = $1")
        .bind(r.id)
        .fetch_optional(&mut *conn)
        .await?;
    let sql = if exists.is_some() {
        "UPDATE responsibilities SET provider_code = $2, resource_code = $3, items = $4,
         refresh_interval_hours = $5, delivery = $6, updated_at = $7 WHERE id = $1"
    } else {
        "INSERT INTO responsibilities (id, provider_code, resource_code, items, refresh_interval_hours,
         delivery, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
    };
    sqlx::query(sql)
        .bind(r.id)
        .bind(r.provider.clone())
        .bind(r.resource.clone())
        .bind(json_list(&r.items))
        .bind(i64::from(r.refresh_interval_hours))
        .bind(r.delivery.as_str())
        .bind(now_text())
        .execute(&mut *conn)
        .await
        .map_err(|e| unique_to_duplicate(e, "responsibility", &r.id.to_string()))?;
    Ok(exists.is_none())
}

pub(crate) async fn create_responsibility(
    conn: &mut AnyConnection,
    spec: ResponsibilitySpec,
) -> Result<i64> {
    let id = next_id(conn, "responsibilities").await?;
    write_responsibility(conn, &ResponsibilityRecord::new(id, spec)).await?;
    Ok(id)
}

pub(crate) async fn compliance(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
) -> Result<Vec<ComplianceRow>> {
    let latest: std::collections::HashMap<String, DateTime<Utc>> =
        sqlx::query("SELECT resource_code, MAX(created_at) AS latest FROM dataset_versions GROUP BY resource_code")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("resource_code")?, parse_time(&r.try_get::<String, _>("latest")?)?)))
            .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for (r, since) in list_responsibilities(conn).await? {
        let latest_at = latest.get(&r.resource).copied();
        let policy = tongban_policies::Responsibility {
            id: r.id,
            provider: r.provider.clone(),
            resource: r.resource.clone(),
            items: r.items.clone(),
            refresh_interval_hours: r.refresh_interval_hours,
            delivery: r.delivery,
        };
        let c = policy.compliance(latest_at, since, now);
        rows.push(ComplianceRow {
            responsibility: r.id,
            provider: r.provider,
            resource: r.resource,
            refresh_interval_hours: r.refresh_interval_hours,
            latest_version_at: latest_at,
            due_at: c.due_at,
            late: c.late_by_seconds > 0,
            late_by_hours: c.late_by_seconds / 3600,
        });
    }
    // Latest first: the office works down from the worst.
    rows.sort_by(|a, b| {
        b.late_by_hours
            .cmp(&a.late_by_hours)
            .then(a.responsibility.cmp(&b.responsibility))
    });
    Ok(rows)
}

// ---- calendar and the policy input ---------------------------------------------------

pub(crate) async fn get_calendar(conn: &mut AnyConnection) -> Result<Calendar> {
    let rows = sqlx::query("SELECT day, kind FROM calendar_days ORDER BY day")
        .fetch_all(&mut *conn)
        .await?;
    let mut c = Calendar::default();
    for r in &rows {
        let day: String = r.try_get("day")?;
        let date = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
            .map_err(|e| Error::Corrupt(format!("day '{day}': {e}")))?;
        match r.try_get::<String, _>("kind")?.as_str() {
            "holiday" => c.holidays.insert(date),
            _ => c.workdays.insert(date),
        };
    }
    Ok(c)
}

pub(crate) async fn put_calendar(conn: &mut AnyConnection, c: &Calendar) -> Result<()> {
    if let Some(d) = c.holidays.intersection(&c.workdays).next() {
        return Err(Error::invalid(
            "workdays",
            format!("{d} is both a holiday and a working day"),
        ));
    }
    sqlx::query("DELETE FROM calendar_days")
        .execute(&mut *conn)
        .await?;
    for (days, kind) in [(&c.holidays, "holiday"), (&c.workdays, "workday")] {
        for d in days {
            sqlx::query("INSERT INTO calendar_days (day, kind) VALUES ($1, $2)")
                .bind(d.format("%Y-%m-%d").to_string())
                .bind(kind)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

pub(crate) async fn policy_input(
    conn: &mut AnyConnection,
    resources: Vec<crate::Resource>,
) -> Result<PolicyInput> {
    let departments: Vec<String> = sqlx::query_scalar("SELECT code FROM departments")
        .fetch_all(&mut *conn)
        .await?;
    // Departments below city level receive bulk data of their own division
    // only (return flow).
    let divisions = sqlx::query(
        "SELECT code, division_code FROM departments
         WHERE level <> 'city' AND division_code IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| Ok((row.try_get("code")?, row.try_get("division_code")?)))
    .collect::<Result<_>>()?;
    let needs = list_needs(conn, &NeedQuery::default())
        .await?
        .iter()
        .map(NeedRecord::to_policy)
        .collect();
    let negatives = list_negatives(conn)
        .await?
        .iter()
        .map(NegativeRecord::to_policy)
        .collect();
    Ok(PolicyInput {
        departments,
        divisions,
        resources: resources
            .into_iter()
            .map(|r| ResourcePolicy {
                published: r.status() == Status::Published,
                division_item: r.spec.division_item,
                code: r.spec.code,
                provider: r.spec.provider,
                items: r
                    .spec
                    .items
                    .into_iter()
                    .map(|i| ItemPolicy {
                        name: i.name,
                        share_type: i.share_type,
                        mask: i.mask,
                    })
                    .collect(),
            })
            .collect(),
        needs,
        negatives,
    })
}
