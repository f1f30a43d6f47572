//! Subscriptions (订阅) and the push outbox.
//!
//! A subscription is a consumer's standing order for a resource, under one of
//! its approved needs of mode `subscribe` or `batch`: which items, how they
//! are delivered (the [`Channel`]), and how far delivery has got (the
//! cursor: the last dataset version delivered). Pull channels are read by
//! the consumer (Delta Sharing, Arrow Flight); push channels are delivered by
//! the hub, one [`Delivery`] per (subscription, version) in version order,
//! retried with backoff until it succeeds — the durable outbox.
//!
//! The catalog keeps the records and their rules that need no IO; what may
//! be delivered is decided at each delivery by the policy engine, and the
//! hub checks channel configs (URLs, tables) before a subscription is saved.

use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tongban_policies::Mode;
use utoipa::ToSchema;

/// How a subscription's data reaches the consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Channel {
    /// The consumer reads it: over Delta Sharing (as a table named after the
    /// subscription) or Arrow Flight `DoGet`. (A struct variant, so that
    /// unknown fields are refused here too.)
    Pull {},
    /// The hub POSTs each new version to the consumer's endpoint, signed with
    /// HMAC-SHA256 (`Tongban-Signature`).
    Webhook {
        /// `http://` or `https://` endpoint.
        url: String,
        #[serde(default)]
        format: PayloadFormat,
    },
    /// The hub writes each new version into a table of the consumer's own
    /// PostgreSQL database (binary `COPY`, replacing the table's rows in one
    /// transaction).
    Postgres {
        /// `postgres://user@host:port/db` — no password in the URL.
        url: String,
        /// The target table (`table` or `schema.table`); it must exist, with
        /// a column for every delivered item.
        table: String,
        /// Environment variable of the hub holding the password, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_env: Option<String>,
    },
}

impl Channel {
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Pull {} => "pull",
            Channel::Webhook { .. } => "webhook",
            Channel::Postgres { .. } => "postgres",
        }
    }

    /// Whether the hub delivers (push) rather than the consumer reading.
    pub fn is_push(&self) -> bool {
        !matches!(self, Channel::Pull {})
    }
}

/// The body of a webhook delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    /// One JSON object per row (`application/x-ndjson`).
    #[default]
    Ndjson,
    /// One Parquet file (`application/vnd.apache.parquet`).
    Parquet,
}

tongban_policies::str_enum!(PayloadFormat, "payload format", {
    PayloadFormat::Ndjson => "ndjson",
    PayloadFormat::Parquet => "parquet",
});

/// What a consumer asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSpec {
    /// Unique among the consumer's subscriptions: letters, digits, `-`, `_`
    /// (it is the table name over Delta Sharing), e.g. `elderly-residents`.
    #[schema(example = "elderly-residents", pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub name: String,
    /// Resource code, e.g. `101/000001`.
    pub resource: String,
    /// The approved need (mode `subscribe` or `batch`) it is delivered under.
    pub need: i64,
    /// Items to deliver, a subset of the need's; empty: all the need's items.
    #[serde(default)]
    pub items: Vec<String>,
    pub channel: Channel,
}

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Delivered as new versions appear.
    Active,
    /// Its need is no longer in force (revoked or expired): nothing more is
    /// delivered; `status_reason` says why.
    Stopped,
    /// Cancelled by the consumer or the data office.
    Cancelled,
}

tongban_policies::str_enum!(SubscriptionStatus, "subscription status", {
    SubscriptionStatus::Active => "active",
    SubscriptionStatus::Stopped => "stopped",
    SubscriptionStatus::Cancelled => "cancelled",
});

/// A stored subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    pub id: i64,
    /// The consumer department.
    pub consumer: String,
    #[serde(flatten)]
    pub spec: SubscriptionSpec,
    /// The need's matter (事项), under which every delivery is decided.
    pub matter: String,
    /// The need's mode: `subscribe` or `batch`.
    #[schema(value_type = String, example = "subscribe")]
    pub mode: Mode,
    pub status: SubscriptionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// The last dataset version delivered (push) or read (pull).
    pub cursor: Option<i64>,
    /// Webhooks: the HMAC-SHA256 key of `Tongban-Signature`. Shown once,
    /// when the subscription is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

impl Subscription {
    /// The items delivered (the spec's, or else the need's, resolved when
    /// the subscription was created: never empty once stored).
    pub fn items(&self) -> &[String] {
        &self.spec.items
    }
}

/// Where a push delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its turn or its next attempt.
    Pending,
    Delivered,
    /// Will not be delivered: the subscription stopped or was cancelled.
    Abandoned,
}

tongban_policies::str_enum!(DeliveryStatus, "delivery status", {
    DeliveryStatus::Pending => "pending",
    DeliveryStatus::Delivered => "delivered",
    DeliveryStatus::Abandoned => "abandoned",
});

/// One dataset version on its way to one push subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub subscription: i64,
    pub version: i64,
    pub status: DeliveryStatus,
    /// `snapshot` (every permitted row) or `changes` (the version's change
    /// set), once attempted.
    pub kind: Option<String>,
    pub attempts: i64,
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub rows: Option<i64>,
    pub bytes: Option<i64>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<DateTime<Utc>>,
}

/// How an attempt ended, to be recorded with
/// [`crate::Store::finish_delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Accepted by the consumer's system; moves the cursor to the version.
    Delivered { kind: String, rows: i64, bytes: i64 },
    /// Failed; tried again at `retry_at`.
    Failed {
        error: String,
        retry_at: DateTime<Utc>,
    },
}

/// The rules a spec follows that need no database.
pub fn validate_spec(spec: &SubscriptionSpec) -> Result<()> {
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
    match &spec.channel {
        Channel::Pull {} => {}
        Channel::Webhook { url, .. } => {
            let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
            if !scheme_ok || url.len() > 2048 || url.chars().any(char::is_whitespace) {
                return Err(Error::invalid(
                    "channel.url",
                    "a webhook needs an http:// or https:// URL",
                ));
            }
        }
        Channel::Postgres { url, table, .. } => {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(Error::invalid(
                    "channel.url",
                    "a postgres channel needs a postgres:// URL",
                ));
            }
            if table.trim().is_empty() {
                return Err(Error::invalid("channel.table", "name the target table"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(channel: serde_json::Value) -> serde_json::Result<SubscriptionSpec> {
        serde_json::from_value(serde_json::json!({
            "name": "elderly", "resource": "101/000001", "need": 3, "channel": channel
        }))
    }

    #[test]
    fn channels_are_a_closed_tagged_set() {
        assert_eq!(
            spec(serde_json::json!({"type": "pull"})).unwrap().channel,
            Channel::Pull {}
        );
        let hook =
            spec(serde_json::json!({"type": "webhook", "url": "https://x.gov.cn/in"})).unwrap();
        assert_eq!(
            hook.channel,
            Channel::Webhook {
                url: "https://x.gov.cn/in".into(),
                format: PayloadFormat::Ndjson
            }
        );
        assert!(spec(serde_json::json!({"type": "ftp"})).is_err());
        assert!(spec(serde_json::json!({"type": "pull", "url": "x"})).is_err());
    }

    #[test]
    fn specs_are_checked_before_storing() {
        let bad_name = SubscriptionSpec {
            name: "a.b".into(),
            ..spec(serde_json::json!({"type": "pull"})).unwrap()
        };
        assert!(
            matches!(validate_spec(&bad_name), Err(Error::Invalid { field, .. }) if field == "name")
        );
        let bad_url = spec(serde_json::json!({"type": "webhook", "url": "ftp://x"})).unwrap();
        assert!(
            matches!(validate_spec(&bad_url), Err(Error::Invalid { field, .. }) if field == "channel.url")
        );
        let ok =
            spec(serde_json::json!({"type": "postgres", "url": "postgres://u@h/db", "table": "t"}))
                .unwrap();
        validate_spec(&ok).unwrap();
    }
}
