//! Subscriptions delivered: every way a subscription's data leaves the hub,
//! all through one [`plan::Plan`] — the policy decision for that
//! subscription at that moment.
//!
//! # Layout
//! - [`plan`]: the decision for a subscription (consumer, items, matter,
//!   bulk mode, return flow) and the projection, masks and row filters it
//!   obliges; refused unless the subscription is active and its need in
//!   force. Every channel starts here.
//! - [`apply`]: a dataset version (or its change set) streamed through a
//!   plan, batch by batch: row filters, projection, masks.
//! - [`files`]: the policy-applied Parquet files of a version for one plan,
//!   written once and kept, with per-file statistics (what Delta Sharing
//!   serves).
//! - [`sign`]: signed, expiring file URLs;
//! - [`predicate`]: Delta Sharing predicate hints checked against file
//!   statistics.
//! - [`sharing`]: the Delta Sharing protocol server under `/delta-sharing/`.
//! - [`flight`]: Arrow Flight `DoGet` of a subscription's version.
//! - [`push`]: the outbox worker: webhook (NDJSON or Parquet, HMAC-signed)
//!   and PostgreSQL deliveries, in version order, retried with backoff.
//!
//! Every release is audited (mode `subscribe` or `batch`, case
//! `sub:<name>:v<version>`, no keys), and so is every refusal.

pub mod apply;
pub mod files;
pub mod flight;
pub mod plan;
pub mod predicate;
pub mod push;
pub mod sharing;
pub mod sign;

use crate::config::DeliveryConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What every delivery path shares: settings, where shared files live, the
/// URL signing key.
#[derive(Clone)]
pub struct Delivery {
    inner: Arc<Inner>,
}

struct Inner {
    config: DeliveryConfig,
    /// `DATA_DIR/sharing`: policy-applied files, by subscription and plan.
    sharing_dir: PathBuf,
    /// Where spooled push bodies are written before they are sent.
    outbox_dir: PathBuf,
    /// The hub's base URL as consumers reach it.
    public_url: String,
    signer: sign::Signer,
    /// This hub process, as the owner of the push leases it takes (given
    /// up when it stops, so another process need not wait them out).
    instance: String,
}

impl Delivery {
    /// `secret` keys the URL signatures (derived from it, never used as is).
    pub fn new(
        config: DeliveryConfig,
        data_dir: &Path,
        public_url: String,
        secret: &[u8],
    ) -> Delivery {
        Delivery {
            inner: Arc::new(Inner {
                config,
                sharing_dir: data_dir.join("sharing"),
                outbox_dir: data_dir.join("outbox"),
                public_url,
                signer: sign::Signer::new(secret),
                instance: format!("hub-{}", &crate::auth::new_token()[3..15]),
            }),
        }
    }

    pub fn config(&self) -> &DeliveryConfig {
        &self.inner.config
    }

    pub fn sharing_dir(&self) -> &Path {
        &self.inner.sharing_dir
    }

    pub fn outbox_dir(&self) -> &Path {
        &self.inner.outbox_dir
    }

    pub fn public_url(&self) -> &str {
        &self.inner.public_url
    }

    pub fn signer(&self) -> &sign::Signer {
        &self.inner.signer
    }

    /// This hub process's name in push leases.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// The Delta Sharing endpoint of profiles.
    pub fn sharing_endpoint(&self) -> String {
        format!("{}/delta-sharing", self.inner.public_url)
    }
}

/// The audit case of a delivery: which subscription and version.
pub fn audit_case(subscription: &str, version: i64) -> String {
    format!("sub:{subscription}:v{version}")
}

/// What a delivery's audit record says.
pub struct Released<'a> {
    pub subscription: &'a tongban_catalog::subscriptions::Subscription,
    /// The version delivered (none when refused before one was chosen).
    pub version: Option<i64>,
    pub items: Vec<String>,
    pub denied: Vec<String>,
    pub rule: String,
    /// `released`, `denied`, `failed` (a push attempt the consumer's system
    /// did not accept: the data may have reached it).
    pub outcome: &'a str,
    pub started: std::time::Instant,
}

/// Appends a delivery's audit record; an error means the audit log cannot
/// record, and nothing may be released.
pub async fn audit(audit: &crate::audit::Audit, r: Released<'_>) -> Result<(), String> {
    let sub = r.subscription;
    let event = crate::audit::Event {
        time: chrono::Utc::now(),
        consumer: sub.consumer.clone(),
        resource: sub.spec.resource.clone(),
        mode: sub.mode.to_string(),
        matter: sub.matter.clone(),
        case: match r.version {
            Some(v) => audit_case(&sub.spec.name, v),
            None => format!("sub:{}", sub.spec.name),
        },
        items: if r.outcome == "denied" {
            Vec::new()
        } else {
            r.items
        },
        denied: r.denied,
        keys: Vec::new(),
        rule: r.rule,
        outcome: r.outcome.to_string(),
        latency_us: r.started.elapsed().as_micros() as u64,
    };
    audit.record(event).await.map(drop)
}

/// Records a refused delivery in the audit log and, when the need behind the
/// subscription lapsed, stops the subscription (which abandons what waits).
/// Every channel refuses through here. An error means the audit log cannot
/// record.
pub async fn refuse(
    state: &crate::server::AppState,
    subscription: &tongban_catalog::subscriptions::Subscription,
    version: Option<i64>,
    refused: &plan::Refused,
    started: std::time::Instant,
) -> Result<(), String> {
    tracing::info!(subscription = %subscription.spec.name, rule = %refused.rule, "delivery refused");
    let audited = audit(
        &state.audit,
        Released {
            subscription,
            version,
            items: Vec::new(),
            denied: vec![refused.rule.clone()],
            rule: refused.rule.clone(),
            outcome: "denied",
            started,
        },
    )
    .await;
    if refused.need_lapsed
        && let Err(e) = state
            .store
            .set_subscription_status(
                subscription.id,
                tongban_catalog::subscriptions::SubscriptionStatus::Stopped,
                Some(&refused.detail),
            )
            .await
    {
        tracing::warn!(error = %e, subscription = %subscription.spec.name, "could not stop a lapsed subscription");
    }
    audited
}
