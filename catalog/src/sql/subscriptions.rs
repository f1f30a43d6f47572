//! Subscriptions and the push outbox in SQL: the subscription half of
//! [`crate::SqlStore`]'s [`crate::Store`] implementation. Same portable SQL
//! rules as `sql.rs`.
//!
//! Deliveries of one subscription go out in version order: only the oldest
//! pending delivery of a subscription is ever due, so a consumer that is down
//! holds back its own later versions (they wait, in order) and nobody else's.
//! A delivery is claimed with a lease before it is attempted, so two hub
//! replicas never send the same one at the same time.

use super::common::{now_text, parse_time, parse_word, time_text, unique_to_duplicate};
use crate::lists::NeedRecord;
use crate::subscriptions::*;
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tongban_policies::{Mode, NeedStatus};

const SUB_COLS: &str = "id, name, consumer_code, resource_code, need_id, items, channel, secret, \
     status, status_reason, cursor_version, matter, mode, created_at, updated_at";

fn sub_from_row(row: &AnyRow) -> Result<Subscription> {
    let items: String = row.try_get("items")?;
    let channel: String = row.try_get("channel")?;
    Ok(Subscription {
        id: row.try_get("id")?,
        consumer: row.try_get("consumer_code")?,
        spec: SubscriptionSpec {
            name: row.try_get("name")?,
            resource: row.try_get("resource_code")?,
            need: row.try_get("need_id")?,
            items: serde_json::from_str(&items)
                .map_err(|e| Error::Corrupt(format!("subscription items '{items}': {e}")))?,
            channel: serde_json::from_str(&channel)
                .map_err(|e| Error::Corrupt(format!("subscription channel '{channel}': {e}")))?,
        },
        matter: row.try_get("matter")?,
        mode: parse_word(&row.try_get::<String, _>("mode")?)?,
        status: parse_word(&row.try_get::<String, _>("status")?)?,
        status_reason: row.try_get("status_reason")?,
        cursor: row.try_get("cursor_version")?,
        secret: row.try_get("secret")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_time(&row.try_get::<String, _>("updated_at")?)?,
    })
}

/// Checks a subscription against its need: the consumer's own, approved and
/// in force, for this resource, of a bulk mode, covering the items. Returns
/// the items to deliver.
fn check_need(
    consumer: &str,
    spec: &SubscriptionSpec,
    need: &NeedRecord,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let invalid = |message: String| Err(Error::invalid("need", message));
    if need.consumer != consumer {
        return invalid(format!("need {} is not a need of {consumer}", need.id));
    }
    if need.resource != spec.resource {
        return invalid(format!(
            "need {} is for resource {}, not {}",
            need.id, need.resource, spec.resource
        ));
    }
    if !matches!(need.mode, Mode::Subscribe | Mode::Batch) {
        return invalid(format!(
            "need {} is for mode {}; subscriptions need a need of mode subscribe or batch",
            need.id, need.mode
        ));
    }
    if !need.to_policy().in_force(now) {
        let why = match need.status {
            NeedStatus::Approved => "is not within its validity window".to_string(),
            other => format!("is {other}, not approved"),
        };
        return invalid(format!("need {} {why}", need.id));
    }
    if spec.items.is_empty() {
        return Ok(need.items.clone());
    }
    for (i, item) in spec.items.iter().enumerate() {
        if !need.items.contains(item) {
            return Err(Error::invalid(
                format!("items[{i}]"),
                format!("'{item}' is not among the items of need {}", need.id),
            ));
        }
    }
    Ok(spec.items.clone())
}

pub(crate) async fn create(
    conn: &mut AnyConnection,
    consumer: &str,
    spec: &SubscriptionSpec,
    secret: Option<String>,
) -> Result<i64> {
    validate_spec(spec)?;
    let need = super::lists::find_need(&mut *conn, spec.need)
        .await?
        .ok_or_else(|| Error::invalid("need", format!("need {} does not exist", spec.need)))?;
    let items = check_need(consumer, spec, &need, Utc::now())?;
    let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM subscriptions")
        .fetch_one(&mut *conn)
        .await?;
    let id = max.unwrap_or(0) + 1;
    let now = now_text();
    sqlx::query(&format!(
        "INSERT INTO subscriptions ({SUB_COLS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', NULL, NULL, $9, $10, $11, $11)"
    ))
    .bind(id)
    .bind(spec.name.clone())
    .bind(consumer.to_string())
    .bind(spec.resource.clone())
    .bind(spec.need)
    .bind(serde_json::to_string(&items).expect("strings serialise"))
    .bind(serde_json::to_string(&spec.channel).expect("channels serialise"))
    .bind(secret)
    .bind(need.matter.clone())
    .bind(need.mode.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_to_duplicate(e, "subscription", &spec.name))?;
    Ok(id)
}

pub(crate) async fn find(conn: &mut AnyConnection, id: i64) -> Result<Subscription> {
    let row = sqlx::query(&format!(
        "SELECT {SUB_COLS} FROM subscriptions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::NotFound {
        what: "subscription",
        key: id.to_string(),
    })?;
    sub_from_row(&row)
}

pub(crate) async fn find_by_name(
    conn: &mut AnyConnection,
    consumer: &str,
    name: &str,
) -> Result<Subscription> {
    let row = sqlx::query(&format!(
        "SELECT {SUB_COLS} FROM subscriptions WHERE consumer_code = $1 AND name = $2"
    ))
    .bind(consumer.to_string())
    .bind(name.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::NotFound {
        what: "subscription",
        key: format!("{consumer}/{name}"),
    })?;
    sub_from_row(&row)
}

pub(crate) async fn list(
    conn: &mut AnyConnection,
    consumer: Option<&str>,
) -> Result<Vec<Subscription>> {
    let rows = match consumer {
        Some(c) => {
            sqlx::query(&format!(
                "SELECT {SUB_COLS} FROM subscriptions WHERE consumer_code = $1 ORDER BY id"
            ))
            .bind(c.to_string())
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query(&format!("SELECT {SUB_COLS} FROM subscriptions ORDER BY id"))
                .fetch_all(&mut *conn)
                .await?
        }
    };
    rows.iter().map(sub_from_row).collect()
}

pub(crate) async fn set_status(
    conn: &mut AnyConnection,
    id: i64,
    status: SubscriptionStatus,
    reason: Option<&str>,
) -> Result<()> {
    let current = find(&mut *conn, id).await?;
    if current.status != SubscriptionStatus::Active && status != current.status {
        return Err(Error::Conflict(format!(
            "subscription {id} is {}; it cannot become {status}",
            current.status
        )));
    }
    let now = now_text();
    sqlx::query(
        "UPDATE subscriptions SET status = $2, status_reason = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(reason.map(str::to_string))
    .bind(now.clone())
    .execute(&mut *conn)
    .await?;
    if status != SubscriptionStatus::Active {
        // Nothing more goes out: what waits is abandoned, with the reason.
        sqlx::query(
            "UPDATE deliveries SET status = 'abandoned', last_error = $2
             WHERE subscription_id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(format!(
            "subscription {status}{}",
            reason.map(|r| format!(": {r}")).unwrap_or_default()
        ))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Moves the cursor forward to `version` (never back).
pub(crate) async fn advance_cursor(conn: &mut AnyConnection, id: i64, version: i64) -> Result<()> {
    sqlx::query(
        "UPDATE subscriptions SET cursor_version = $2, updated_at = $3
         WHERE id = $1 AND (cursor_version IS NULL OR cursor_version < $2)",
    )
    .bind(id)
    .bind(version)
    .bind(now_text())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

const DELIVERY_COLS: &str = "id, subscription_id, version, status, kind, attempts, next_attempt_at, \
     last_error, rows_delivered, bytes, created_at, delivered_at";

fn delivery_from_row(row: &AnyRow) -> Result<Delivery> {
    let opt_time = |col: &str| -> Result<Option<DateTime<Utc>>> {
        row.try_get::<Option<String>, _>(col)?
            .map(|s| parse_time(&s))
            .transpose()
    };
    Ok(Delivery {
        id: row.try_get("id")?,
        subscription: row.try_get("subscription_id")?,
        version: row.try_get("version")?,
        status: parse_word(&row.try_get::<String, _>("status")?)?,
        kind: row.try_get("kind")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: parse_time(&row.try_get::<String, _>("next_attempt_at")?)?,
        last_error: row.try_get("last_error")?,
        rows: row.try_get("rows_delivered")?,
        bytes: row.try_get("bytes")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
        delivered_at: opt_time("delivered_at")?,
    })
}

/// Adds a pending delivery for each version not queued yet; returns how many
/// were added.
pub(crate) async fn enqueue(
    conn: &mut AnyConnection,
    subscription: i64,
    versions: &[i64],
) -> Result<usize> {
    let mut added = 0;
    let now = now_text();
    for &version in versions {
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM deliveries WHERE subscription_id = $1 AND version = $2",
        )
        .bind(subscription)
        .bind(version)
        .fetch_optional(&mut *conn)
        .await?;
        if exists.is_some() {
            continue;
        }
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM deliveries")
            .fetch_one(&mut *conn)
            .await?;
        sqlx::query(&format!(
            "INSERT INTO deliveries ({DELIVERY_COLS}, lease_until)
             VALUES ($1, $2, $3, 'pending', NULL, 0, $4, NULL, NULL, NULL, $4, NULL, NULL)"
        ))
        .bind(max.unwrap_or(0) + 1)
        .bind(subscription)
        .bind(version)
        .bind(now.clone())
        .execute(&mut *conn)
        .await?;
        added += 1;
    }
    Ok(added)
}

/// The oldest pending delivery of each active subscription, if its next
/// attempt is due and no one holds its lease.
pub(crate) async fn due(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Delivery>> {
    let now = time_text(now);
    let cols = DELIVERY_COLS
        .split(", ")
        .map(|c| format!("d.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query(&format!(
        "SELECT {cols} FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
         WHERE s.status = 'active' AND d.status = 'pending'
           AND d.version = (SELECT MIN(p.version) FROM deliveries p
                            WHERE p.subscription_id = d.subscription_id AND p.status = 'pending')
           AND d.next_attempt_at <= $1
           AND (d.lease_until IS NULL OR d.lease_until <= $1)
         ORDER BY d.next_attempt_at, d.id LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(delivery_from_row)
    .collect()
}

/// Takes a delivery's lease until `until`; false if someone else holds it or
/// it is no longer pending.
pub(crate) async fn claim(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE deliveries SET lease_until = $3, lease_owner = $4, attempts = attempts + 1
         WHERE id = $1 AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $2)",
    )
    .bind(id)
    .bind(time_text(now))
    .bind(time_text(until))
    .bind(owner.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives up the leases `owner` holds (a hub stopping mid-attempt), so the
/// deliveries are tried again at once rather than when the leases expire.
pub(crate) async fn release_leases(conn: &mut AnyConnection, owner: &str) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL
         WHERE lease_owner = $1 AND status = 'pending'",
    )
    .bind(owner.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

pub(crate) async fn find_delivery(conn: &mut AnyConnection, id: i64) -> Result<Delivery> {
    let row = sqlx::query(&format!(
        "SELECT {DELIVERY_COLS} FROM deliveries WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::NotFound {
        what: "delivery",
        key: id.to_string(),
    })?;
    delivery_from_row(&row)
}

/// Records an attempt; a delivered version moves the subscription's cursor
/// in the same transaction (the caller's).
pub(crate) async fn finish(conn: &mut AnyConnection, id: i64, attempt: &Attempt) -> Result<()> {
    let delivery = find_delivery(&mut *conn, id).await?;
    match attempt {
        Attempt::Delivered { kind, rows, bytes } => {
            sqlx::query(
                "UPDATE deliveries SET status = 'delivered', kind = $2, rows_delivered = $3,
                 bytes = $4, delivered_at = $5, last_error = NULL, lease_until = NULL,
                 lease_owner = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(kind.clone())
            .bind(*rows)
            .bind(*bytes)
            .bind(now_text())
            .execute(&mut *conn)
            .await?;
            advance_cursor(&mut *conn, delivery.subscription, delivery.version).await?;
        }
        Attempt::Failed { error, retry_at } => {
            sqlx::query(
                "UPDATE deliveries SET last_error = $2, next_attempt_at = $3, lease_until = NULL,
                 lease_owner = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(error.clone())
            .bind(time_text(*retry_at))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// A subscription's deliveries, newest version first.
pub(crate) async fn list_deliveries(
    conn: &mut AnyConnection,
    subscription: i64,
    limit: i64,
) -> Result<Vec<Delivery>> {
    sqlx::query(&format!(
        "SELECT {DELIVERY_COLS} FROM deliveries WHERE subscription_id = $1
         ORDER BY version DESC LIMIT $2"
    ))
    .bind(subscription)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(delivery_from_row)
    .collect()
}
