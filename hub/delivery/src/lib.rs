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
//! - [`predicate`]: Delta Sharing predicate hints checked against file
//!   statistics.
//! - [`push`]: the outbox worker: webhook (NDJSON or Parquet, HMAC-signed)
//!   and PostgreSQL deliveries, in version order, retried with backoff.
//! - this file: [`Delivery`] (settings, shared-file folders, the URL
//!   signer), [`Grant`] (what a signed file URL grants), and the audit of
//!   every delivery and refusal through the access pipeline.
//!
//! Transport-free: the Delta Sharing protocol endpoints and Flight `DoGet`
//! are the server's (`tongban-server`), built on this crate. Every release
//! is audited (mode `subscribe` or `batch`, case `sub:<name>:v<version>`, no
//! keys), and so is every refusal.
//!
//! Crate ladder (docs/architecture.md): depends on `tongban-core` and the
//! crates below it (policies, catalog, connectors, datasets, audit).

pub mod apply;
pub mod files;
pub mod plan;
pub mod predicate;
pub mod push;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tongban_core::Hub;
use tongban_core::config::DeliveryConfig;

/// What the delivery paths work with: the hub and the delivery settings.
/// Fields of the hub are reached through it (`Deref`).
#[derive(Clone)]
pub struct DeliveryState {
    pub hub: Hub,
    pub delivery: Delivery,
}

impl std::ops::Deref for DeliveryState {
    type Target = Hub;
    fn deref(&self) -> &Hub {
        &self.hub
    }
}

/// What can go wrong delivering.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Catalog(#[from] tongban_catalog::Error),
    #[error(transparent)]
    Dataset(#[from] tongban_datasets::Error),
    /// The access pipeline refused, or the audit log cannot record.
    #[error(transparent)]
    Access(#[from] tongban_core::Error),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Enforcing a plan on the data failed.
    #[error("policy enforcement: {0}")]
    Policy(#[from] tongban_policies::Error),
    /// A shared or spooled file could not be read or written.
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A version does not hold what its plan releases.
    #[error("dataset {resource}: {message}")]
    VersionMismatch { resource: String, message: String },
    /// The dataset store refused a shared file.
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// Shared files could not be placed or read back.
    #[error("shared files: {0}")]
    SharedFiles(String),
    /// The version a delivery waits for is gone.
    #[error("version {0} is gone")]
    VersionGone(i64),
    /// The channel cannot take this delivery (a pull subscription is never
    /// pushed).
    #[error("{0}")]
    Channel(&'static str),
    /// The consumer's system did not accept the delivery.
    #[error("{0}")]
    Refused(String),
    /// A background task panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn file(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::File { path, source }
    }
}

/// What every delivery path shares: settings, where push bodies are
/// spooled, the URL signing key. (Shared files live in the dataset store:
/// see [`files`].)
#[derive(Clone)]
pub struct Delivery {
    inner: Arc<Inner>,
}

struct Inner {
    config: DeliveryConfig,
    /// Where spooled push bodies are written before they are sent.
    outbox_dir: PathBuf,
    /// The hub's base URL as consumers reach it.
    public_url: String,
    signer: tongban_core::sign::Signer,
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
                outbox_dir: data_dir.join("outbox"),
                public_url,
                signer: file_url_signer(secret),
                instance: format!("hub-{}", &tongban_core::auth::new_token()[3..15]),
            }),
        }
    }

    pub fn config(&self) -> &DeliveryConfig {
        &self.inner.config
    }

    pub fn outbox_dir(&self) -> &Path {
        &self.inner.outbox_dir
    }

    pub fn public_url(&self) -> &str {
        &self.inner.public_url
    }

    pub fn signer(&self) -> &tongban_core::sign::Signer {
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

/// A Delta Sharing profile file (`config.share`) for a recipient: the
/// endpoint and its bearer token, as the official clients read it.
pub fn sharing_profile(endpoint: &str, token: &str) -> serde_json::Value {
    serde_json::json!({
        "shareCredentialsVersion": 1,
        "endpoint": endpoint,
        "bearerToken": token,
    })
}

/// The signer of shared files' URLs, keyed by the hub's secret.
pub fn file_url_signer(secret: &[u8]) -> tongban_core::sign::Signer {
    tongban_core::sign::Signer::new(secret, b"tongban delta-sharing file urls v1")
}

/// What a signed file URL grants: one file of one subscription under one
/// plan (by fingerprint), until it expires. The hub still checks that the
/// subscription is active under the same plan before it serves a byte.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    /// Subscription id.
    #[serde(rename = "s")]
    pub subscription: i64,
    /// The plan's fingerprint when the URL was made.
    #[serde(rename = "f")]
    pub fingerprint: String,
    /// The file, relative to the sharing directory.
    #[serde(rename = "p")]
    pub path: String,
    /// Expiry, Unix milliseconds.
    #[serde(rename = "e")]
    pub expires_ms: i64,
}

impl tongban_core::sign::Expiring for Grant {
    fn expires_ms(&self) -> i64 {
        self.expires_ms
    }
}

/// The audit case of a delivery: which subscription and version.
pub fn audit_case(subscription: &str, version: i64) -> String {
    format!("sub:{subscription}:v{version}")
}

/// The ask of a delivery of `sub` (version `version`, when one was chosen):
/// what its decision and audit record are about.
pub fn ask<'a>(
    sub: &'a tongban_catalog::subscriptions::Subscription,
    case: &'a str,
    started: std::time::Instant,
) -> tongban_core::Ask<'a> {
    tongban_core::Ask {
        consumer: &sub.consumer,
        resource: &sub.spec.resource,
        matter: &sub.matter,
        case,
        mode: sub.mode,
        started,
    }
}

/// The audit case of a delivery, with or without a version.
fn case_of(sub: &tongban_catalog::subscriptions::Subscription, version: Option<i64>) -> String {
    match version {
        Some(v) => audit_case(&sub.spec.name, v),
        None => format!("sub:{}", sub.spec.name),
    }
}

/// Records a delivery of `version` under `plan` with `outcome` (released,
/// or failed for a push the consumer's system did not accept). An error
/// means the audit log cannot record, and nothing may be released.
pub async fn record(
    access: &tongban_core::Access,
    plan: &plan::Plan,
    version: i64,
    outcome: tongban_audit::Outcome,
    started: std::time::Instant,
) -> tongban_core::Result<()> {
    let case = case_of(&plan.subscription, Some(version));
    let ask = ask(&plan.subscription, &case, started);
    access.record(&ask, &plan.decision, &[], outcome).await
}

/// Records a refused delivery in the audit log and, when the need behind the
/// subscription lapsed, stops the subscription (which abandons what waits).
/// Every channel refuses through here. An error means the audit log cannot
/// record.
pub async fn refuse(
    state: &DeliveryState,
    subscription: &tongban_catalog::subscriptions::Subscription,
    version: Option<i64>,
    refused: &plan::Refused,
    started: std::time::Instant,
) -> tongban_core::Result<()> {
    tracing::info!(subscription = %subscription.spec.name, rule = %refused.rule, "delivery refused");
    let case = case_of(subscription, version);
    let audited = state
        .access
        .record_refusal(&ask(subscription, &case, started), &refused.rule)
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
