//! The push outbox worker: new dataset versions of a push subscription's
//! resource become deliveries (one per version, in the catalog, so nothing
//! is lost when the hub restarts), and each is sent — to a webhook or into
//! the consumer's PostgreSQL table — in version order, retried with
//! exponential backoff until the consumer's system accepts it.
//!
//! - A new subscription starts with the newest version (a snapshot); every
//!   later version follows, each once, in order. A version written by an
//!   incremental sync goes out as its change set when the consumer has the
//!   version before it; otherwise as a snapshot.
//! - Every attempt is decided afresh ([`super::plan`]): a revoked or
//!   expired need stops the subscription and nothing more leaves.
//! - Webhook bodies are spooled to disk while their HMAC-SHA256 signature
//!   is computed, then streamed: `Tongban-Signature: t=<unix>,v1=<hex>`
//!   over `<t>.<body>`, with `Tongban-Delivery`, `Tongban-Subscription`,
//!   `Tongban-Version`, `Tongban-Kind` and `Idempotency-Key` headers, so a
//!   receiver can check the sender and drop a repeat.
//! - PostgreSQL deliveries replace the target table's rows with the
//!   version's permitted rows in one transaction (binary `COPY`).

use super::apply::{self, Part};
use super::plan::{self, Plan};
use crate::DeliveryState as AppState;
use crate::{Error, Result};
use arrow::record_batch::RecordBatch;
use chrono::Utc;
use futures::StreamExt;
use futures::stream::BoxStream;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tongban_catalog::subscriptions::{
    Attempt, Channel, Delivery, PayloadFormat, Subscription, SubscriptionStatus,
};
use tongban_catalog::{DatasetVersion, Store};

/// Deliveries attempted per tick.
const BATCH: i64 = 16;

/// Runs the outbox until `stop` turns true. It stops between attempts,
/// never inside one: an attempt cut off mid-claim could leave its lease
/// taken after the hub gave its leases up, and the next hub would wait it
/// out.
pub async fn run(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let tick = Duration::from_millis(state.delivery.config().tick_ms);
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(state.delivery.config().timeout_ms))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client for webhooks: push delivery is off");
            return;
        }
    };
    while !*stop.borrow() {
        if let Err(e) = enqueue_new_versions(state.store.as_ref()).await {
            tracing::warn!(error = %e, "could not queue new versions for push subscriptions");
        }
        match state.store.due_deliveries(Utc::now(), BATCH).await {
            Ok(due) => {
                // Deliveries due now, as far as one poll sees (at most BATCH).
                metrics::gauge!("tongban_delivery_backlog").set(due.len() as f64);
                for d in due {
                    if *stop.borrow() {
                        return;
                    }
                    attempt(&state, &client, d).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the push outbox"),
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Queues, for every active push subscription, the versions it has not
/// received: the newest one for a subscription that has had none, and
/// every version after the last one queued otherwise.
pub async fn enqueue_new_versions(store: &dyn Store) -> Result<usize> {
    let mut queued = 0;
    for sub in store.list_subscriptions(None).await? {
        if !sub.spec.channel.is_push() || sub.status != SubscriptionStatus::Active {
            continue;
        }
        let versions = store.list_versions(&sub.spec.resource).await?; // newest first
        let Some(newest) = versions.first() else {
            continue;
        };
        let last_queued = store
            .list_deliveries(sub.id, 1)
            .await?
            .first()
            .map(|d| d.version)
            .or(sub.cursor);
        let wanted: Vec<i64> = match last_queued {
            None => vec![newest.version],
            Some(last) => {
                let mut v: Vec<i64> = versions
                    .iter()
                    .map(|v| v.version)
                    .filter(|&n| n > last)
                    .collect();
                v.sort();
                v
            }
        };
        if !wanted.is_empty() {
            queued += store.enqueue_deliveries(sub.id, &wanted).await?;
        }
    }
    Ok(queued)
}

/// The wait before the next attempt after `attempts` failures.
pub fn backoff(attempts: i64, base_ms: u64, max_ms: u64) -> Duration {
    let exp = attempts.clamp(1, 32) as u32 - 1;
    let ms = base_ms.saturating_mul(1u64 << exp.min(20)).min(max_ms);
    Duration::from_millis(ms)
}

/// One attempt of one delivery, recorded whatever happens.
async fn attempt(state: &AppState, client: &reqwest::Client, d: Delivery) {
    let now = Utc::now();
    let config = state.delivery.config();
    let lease = now + chrono::Duration::milliseconds((2 * config.timeout_ms + 10_000) as i64);
    match state
        .store
        .claim_delivery(d.id, state.delivery.instance(), now, lease)
        .await
    {
        Ok(true) => {}
        Ok(false) => return, // another hub has it
        Err(e) => {
            tracing::warn!(error = %e, delivery = d.id, "could not claim a delivery");
            return;
        }
    }
    let started = std::time::Instant::now();
    let sub = match state.store.get_subscription(d.subscription).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, delivery = d.id, "subscription unreadable");
            return;
        }
    };
    let plan = match plan::plan(&state.access, &state.disputes, &sub, now) {
        // A push target's columns are fixed (a PostgreSQL table, a
        // consumer's parser): pushes carry no `_disputed` column.
        Ok(p) => plan::Plan {
            disputed: None,
            ..p
        },
        Err(refused) => {
            // A lapsed need stops the subscription, abandoning what waits.
            let _ = super::refuse(state, &sub, Some(d.version), &refused, started).await;
            if !refused.need_lapsed {
                let retry_at = now
                    + chrono::Duration::from_std(backoff(
                        d.attempts + 1,
                        config.retry_base_ms,
                        config.retry_max_ms,
                    ))
                    .unwrap_or_default();
                let _ = state
                    .store
                    .finish_delivery(
                        d.id,
                        &Attempt::Failed {
                            error: format!(
                                "refused by policy ({}): {}",
                                refused.rule, refused.detail
                            ),
                            retry_at,
                        },
                    )
                    .await;
            }
            return;
        }
    };
    let outcome = deliver(state, client, &sub, &plan, &d).await;
    let (audit_outcome, attempt) = match outcome {
        Ok((kind, rows, bytes)) => (
            tongban_audit::Outcome::Released,
            Attempt::Delivered {
                kind: kind.as_str().to_string(),
                rows,
                bytes,
            },
        ),
        Err(e) => {
            metrics::counter!("tongban_delivery_failures_total").increment(1);
            let wait = backoff(d.attempts + 1, config.retry_base_ms, config.retry_max_ms);
            tracing::info!(subscription = %sub.spec.name, version = d.version, error = %e, retry_in_ms = wait.as_millis() as u64, "push delivery failed");
            (
                tongban_audit::Outcome::Failed,
                Attempt::Failed {
                    error: e.to_string(),
                    retry_at: Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                },
            )
        }
    };
    let audited = super::record(&state.access, &plan, d.version, audit_outcome, started).await;
    if let Err(e) = audited {
        // The data went out but its record did not: keep the delivery
        // pending so it is retried (and recorded) rather than lost from the log.
        tracing::error!(error = %e, "audit record of a delivery failed");
        let _ = state
            .store
            .finish_delivery(
                d.id,
                &Attempt::Failed {
                    error: format!("audit log unavailable: {e}"),
                    retry_at: Utc::now() + chrono::Duration::seconds(5),
                },
            )
            .await;
        return;
    }
    if let Err(e) = state.store.finish_delivery(d.id, &attempt).await {
        tracing::error!(error = %e, delivery = d.id, "could not record a delivery attempt");
    }
}

/// Sends one version; returns what was sent: kind, rows, bytes.
async fn deliver(
    state: &AppState,
    client: &reqwest::Client,
    sub: &Subscription,
    plan: &Plan,
    d: &Delivery,
) -> Result<(Part, i64, i64)> {
    let versions = state.store.list_versions(&sub.spec.resource).await?;
    let version = versions
        .iter()
        .find(|v| v.version == d.version)
        .ok_or(Error::VersionGone(d.version))?
        .clone();
    let resource = state.store.get_resource(&sub.spec.resource).await?;
    let changes = tongban_datasets::DatasetStore::changes_location(&version.location);
    // A table holds a version's rows, not its changes: PostgreSQL always
    // gets the snapshot.
    let part = if sub.spec.channel.kind() == "webhook"
        && sub.cursor == Some(d.version - 1)
        && !state.datasets.files(&changes).await?.is_empty()
    {
        Part::Changes
    } else {
        Part::Snapshot
    };
    let location = match part {
        Part::Snapshot => version.location.clone(),
        Part::Changes => changes,
    };
    let schema = apply::released_schema(&resource.spec, plan, part)?;
    let batches = apply::released(
        &state.datasets,
        &location,
        plan,
        part,
        state.hash_key.clone(),
    )
    .await?;
    let timeout = Duration::from_millis(state.delivery.config().timeout_ms);
    match &sub.spec.channel {
        Channel::Pull {} => Err(Error::Channel("pull subscriptions are not pushed")),
        Channel::Webhook { url, format } => {
            let spool = Spool::write(state, d, *format, schema, batches).await?;
            let sent = send_webhook(client, url, sub, &version, d, part, *format, &spool).await;
            spool.remove().await;
            sent.map(|()| (part, spool.rows, spool.bytes))
        }
        Channel::Postgres {
            url,
            table,
            password_env,
        } => {
            let sink = tongban_connectors::SinkConfig::Postgres(
                tongban_connectors::postgres::SinkConfig {
                    url: url.clone(),
                    password_env: password_env.clone(),
                    table: table.clone(),
                    mode: tongban_connectors::postgres::SinkMode::Replace,
                },
            );
            let rows = write_sink(&sink, schema, batches, timeout).await?;
            Ok((part, rows as i64, 0))
        }
    }
}

async fn write_sink(
    sink: &tongban_connectors::SinkConfig,
    schema: arrow::datatypes::SchemaRef,
    batches: BoxStream<'static, Result<RecordBatch>>,
    timeout: Duration,
) -> Result<u64> {
    let sink = sink
        .open()
        .map_err(|e| Error::Refused(format!("postgres channel: {e}")))?;
    let input = batches
        .map(|b| b.map_err(|e| tongban_connectors::Error::Config(e.to_string())))
        .boxed();
    match tokio::time::timeout(timeout, sink.write_all(schema, input)).await {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(e)) => Err(Error::Refused(format!("postgres channel: {e}"))),
        Err(_) => Err(Error::Refused(format!(
            "postgres channel: no commit within {} ms; rolled back",
            timeout.as_millis()
        ))),
    }
}

/// A webhook body on disk, with its signature state.
struct Spool {
    path: std::path::PathBuf,
    rows: i64,
    bytes: i64,
}

impl Spool {
    async fn write(
        state: &AppState,
        d: &Delivery,
        format: PayloadFormat,
        schema: arrow::datatypes::SchemaRef,
        mut batches: BoxStream<'static, Result<RecordBatch>>,
    ) -> Result<Spool> {
        let dir = state.delivery.outbox_dir();
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(Error::file(dir))?;
        let path = dir.join(format!("delivery-{}-{}.body", d.id, d.attempts));
        let mut rows = 0i64;
        match format {
            PayloadFormat::Ndjson => {
                let file = tokio::fs::File::create(&path)
                    .await
                    .map_err(Error::file(&path))?;
                let mut out = tokio::io::BufWriter::new(file);
                while let Some(batch) = batches.next().await {
                    let batch = batch?;
                    rows += batch.num_rows() as i64;
                    let mut w = arrow::json::LineDelimitedWriter::new(Vec::new());
                    w.write(&batch)?;
                    w.finish()?;
                    out.write_all(&w.into_inner())
                        .await
                        .map_err(Error::file(&path))?;
                }
                out.flush().await.map_err(Error::file(&path))?;
            }
            PayloadFormat::Parquet => {
                let file = tokio::fs::File::create(&path)
                    .await
                    .map_err(Error::file(&path))?;
                let mut w = parquet::arrow::AsyncArrowWriter::try_new(file, schema, None)?;
                while let Some(batch) = batches.next().await {
                    let batch = batch?;
                    rows += batch.num_rows() as i64;
                    w.write(&batch).await?;
                }
                w.close().await?;
            }
        }
        let bytes = tokio::fs::metadata(&path)
            .await
            .map_err(Error::file(&path))?
            .len() as i64;
        Ok(Spool { path, rows, bytes })
    }

    async fn remove(&self) {
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = signer(secret, t);
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn signer(secret: &[u8], t: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(format!("{t}.").as_bytes());
    mac
}

/// The signature of a spooled body, read in chunks.
async fn signature_of_file(secret: &[u8], t: i64, path: &std::path::Path) -> Result<String> {
    use tokio::io::AsyncReadExt;
    let mut mac = signer(secret, t);
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(Error::file(path))?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).await.map_err(Error::file(path))?;
        if n == 0 {
            break;
        }
        mac.update(&buf[..n]);
    }
    Ok(format!(
        "t={t},v1={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

#[allow(clippy::too_many_arguments)]
async fn send_webhook(
    client: &reqwest::Client,
    url: &str,
    sub: &Subscription,
    version: &DatasetVersion,
    d: &Delivery,
    part: Part,
    format: PayloadFormat,
    spool: &Spool,
) -> Result<()> {
    let t = Utc::now().timestamp();
    let secret = sub.secret.as_deref().unwrap_or_default();
    let signed = signature_of_file(secret.as_bytes(), t, &spool.path).await?;
    let file = tokio::fs::File::open(&spool.path)
        .await
        .map_err(Error::file(&spool.path))?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    let content_type = match format {
        PayloadFormat::Ndjson => "application/x-ndjson",
        PayloadFormat::Parquet => "application/vnd.apache.parquet",
    };
    let response = client
        .post(url)
        .header("content-type", content_type)
        .header("content-length", spool.bytes.to_string())
        .header("tongban-signature", signed)
        .header("tongban-delivery", d.id.to_string())
        .header("tongban-subscription", &sub.spec.name)
        .header("tongban-resource", &sub.spec.resource)
        .header("tongban-version", version.version.to_string())
        .header("tongban-kind", part.as_str())
        .header("tongban-rows", spool.rows.to_string())
        .header(
            "idempotency-key",
            format!("{}-v{}", sub.id, version.version),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| Error::Refused(format!("webhook {url}: {e}")))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        let text = response.text().await.unwrap_or_default();
        let text: String = text.chars().take(200).collect();
        Err(Error::Refused(format!(
            "webhook {url} answered {status}: {text}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let ms = |n| backoff(n, 1000, 300_000).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(9), ms(10), ms(50)],
            [1000, 2000, 4000, 256_000, 300_000, 300_000]
        );
    }

    #[test]
    fn signatures_cover_time_and_body() {
        let a = signature(b"k", 1_700_000_000, b"{\"a\":1}\n");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_ne!(a, signature(b"k", 1_700_000_001, b"{\"a\":1}\n"));
        assert_ne!(a, signature(b"k", 1_700_000_000, b"{\"a\":2}\n"));
        assert_ne!(a, signature(b"j", 1_700_000_000, b"{\"a\":1}\n"));
    }
}
