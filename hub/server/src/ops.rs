//! Operations: what the people who run the hub watch, and how a replica
//! stays current with the catalog it shares.
//!
//! - `GET /ready`: 503 until this replica's lookup indexes are loaded and
//!   while its catalog does not answer; separate from `/health` (the
//!   process answers), so that a load balancer sends no traffic to a
//!   replica still loading and a supervisor does not restart it for that.
//! - `GET /metrics`: Prometheus text, from the `metrics` facade every
//!   crate records through. On the API port it needs a data-office
//!   identity; `[metrics] listen` adds a port that serves it alone without
//!   one, for a scraper on a private network.
//! - [`http_metrics`]: requests by route, method and status, with latency.
//! - [`keep_current`]: the replica's loop over the catalog's change feed:
//!   tokens, lists, services and indexes reloaded as soon as another
//!   replica (or the CLI) changes them.

use crate::AppState;
use crate::extract::DataOffice;
use crate::problem::Problem;
use axum::extract::{MatchedPath, State};
use axum::http::{Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};
use tongban_catalog::changes::{ChangeFeed, Topic};
use tongban_core::Code;
use tongban_core::metrics::Handles;
use utoipa::ToSchema;

/// The process's Prometheus recorder, installed on first use. One per
/// process: the `metrics` facade has one global recorder, which every
/// server in the process (tests run several) shares.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Latencies from 50 µs (an in-memory lookup) to 10 s (a provider's
        // time-out); batch sizes from one record to thousands.
        let seconds = [
            0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
            0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let counts = [
            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_records".into()), &counts))
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder (a test's) may be installed already: then the
        // metrics go there and this handle renders nothing, which is fine.
        let _ = metrics::set_global_recorder(recorder);
        tongban_core::metrics::recorder_installed();
        handle
    })
}

/// How ready this replica is.
#[derive(Debug, Default)]
pub struct Readiness {
    /// Every index of a published version was loaded once (or failed
    /// and was logged: a broken version must not keep the replica out).
    indexes_loaded: AtomicBool,
}

impl Readiness {
    pub fn set_loaded(&self) {
        if !self.indexes_loaded.swap(true, Ordering::AcqRel) {
            metrics::gauge!("tongban_ready").set(1.0);
        }
    }

    pub fn loaded(&self) -> bool {
        self.indexes_loaded.load(Ordering::Acquire)
    }
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    status: &'static str,
    /// This replica's name (`replica_id`).
    replica: String,
    /// The catalog's change counter as this replica last applied it.
    change_counter: i64,
    /// Lookup indexes loaded.
    indexes: usize,
}

/// Readiness: the indexes are loaded and the catalog answers (no identity)
#[utoipa::path(get, path = "/ready", tag = "system",
    responses((status = 200, description = "Ready for traffic", body = Ready),
              (status = 503, description = "Loading, or the catalog does not answer", body = Problem,
               content_type = "application/problem+json")))]
pub async fn ready(State(state): State<AppState>) -> Result<axum::Json<Ready>, Problem> {
    if !state.readiness.loaded() {
        return Err(Problem::new(
            Code::IndexLoading,
            "the lookup indexes are still loading",
        ));
    }
    let changes = tokio::time::timeout(Duration::from_secs(2), state.store.changes()).await;
    let changes = match changes {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return Err(Problem::new(
                Code::StoreUnavailable,
                format!("the catalog does not answer: {e}"),
            ));
        }
        Err(_) => {
            return Err(Problem::new(
                Code::StoreUnavailable,
                "the catalog did not answer within 2 s",
            ));
        }
    };
    Ok(axum::Json(Ready {
        status: "ready",
        replica: state.replica.clone(),
        change_counter: changes.counter,
        indexes: state.indexes.count(),
    }))
}

/// Prometheus metrics, text format (data office)
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text exposition format", body = String,
               content_type = "text/plain")),
    security(("token" = [])))]
pub async fn metrics(_: DataOffice) -> Response {
    render()
}

/// The exposition, for either port.
pub fn render() -> Response {
    let handle = prometheus();
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Counts every request by route template (never the raw path: keys and
/// codes in paths would make a series per value), method and status, and
/// its latency by route.
pub async fn http_metrics(req: Request<axum::body::Body>, next: Next) -> Response {
    static HANDLES: LazyLock<Handles<(Histogram, Counter)>> = LazyLock::new(Handles::new);
    let started = Instant::now();
    // Shared, not copied: a matched path is an `Arc<str>`.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let response = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let status = response.status();
    let (duration, requests) = HANDLES.get(&[route, method.as_str(), status.as_str()], || {
        (
            metrics::histogram!("tongban_http_request_duration_seconds", "route" => route.to_string()),
            metrics::counter!("tongban_http_requests_total",
                "route" => route.to_string(), "method" => method.to_string(), "status" => status.as_str().to_string()),
        )
    });
    duration.record(started.elapsed().as_secs_f64());
    requests.increment(1);
    response
}

/// The metrics-only listener's one route.
pub fn metrics_router() -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(|| async { render() }))
        .fallback(|| async { StatusCode::NOT_FOUND })
}

/// Keeps this replica current: the first index load, then, for every
/// change the feed reports, a reload of exactly what changed. A reload
/// that fails leaves the previous state in force and is retried on the
/// next news or after `retry`.
pub async fn keep_current(state: AppState, feed: ChangeFeed, retry: Duration) {
    let mut news = feed.subscribe();
    // Identities, lists and services were loaded when the hub was built,
    // from a catalog at least as new as the feed's first read.
    let mut applied = feed.current();
    let mut indexes_pending = true;
    loop {
        if indexes_pending {
            match state
                .indexes
                .refresh(state.store.as_ref(), &state.datasets)
                .await
            {
                Ok(swapped) => {
                    indexes_pending = false;
                    // A new version may carry a correction objected for.
                    if swapped > 0
                        && let Err(e) =
                            tongban_core::objections::check_corrections(&state.base).await
                    {
                        tracing::warn!(error = %e, "could not check corrections against the new versions");
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not load every lookup index; retrying")
                }
            }
            // Ready once every version was tried: one that fails to load
            // is an operator's problem, not a reason to refuse the rest.
            state.readiness.set_loaded();
        }
        tokio::select! {
            changed = news.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(retry) => {}
        }
        let now = news.borrow_and_update().clone();
        metrics::gauge!("tongban_catalog_change_counter").set(now.counter as f64);
        let topics = now.since(&applied);
        let mut done = now.clone();
        for topic in topics {
            metrics::counter!("tongban_catalog_reloads_total", "topic" => topic.as_str())
                .increment(1);
            let reloaded = reload(&state, topic).await;
            if let Err(e) = reloaded {
                tracing::warn!(topic = topic.as_str(), error = %e, "reload failed; keeping what is loaded");
                // Not applied: the next pass tries again.
                done.topics.insert(topic, applied.at(topic));
            } else if matches!(topic, Topic::Versions | Topic::Directory) {
                indexes_pending = true;
            }
        }
        applied = done;
    }
}

/// What a topic's change reloads. Versions (and the directory's items)
/// reload the indexes in the loop itself, where a failure is retried.
async fn reload(state: &AppState, topic: Topic) -> Result<(), String> {
    let store = state.store.as_ref();
    match topic {
        Topic::Identities => state
            .identities
            .reload(store)
            .await
            .map_err(|e| e.to_string()),
        // Objections count as lists: their marks reload with them.
        Topic::Lists => {
            state
                .access
                .policies()
                .reload(store)
                .await
                .map_err(|e| e.to_string())?;
            state
                .disputes
                .reload(store)
                .await
                .map_err(|e| e.to_string())
        }
        Topic::Directory => {
            // Items, share types and departments feed the decision and
            // the services' runtimes.
            state
                .access
                .policies()
                .reload(store)
                .await
                .map_err(|e| e.to_string())?;
            state
                .services
                .reload(store)
                .await
                .map_err(|e| e.to_string())
        }
        Topic::Services => state
            .services
            .reload(store)
            .await
            .map_err(|e| e.to_string()),
        // Indexes: the loop reloads them; subscriptions are read from the
        // catalog on every use, nothing is held.
        Topic::Versions | Topic::Subscriptions => Ok(()),
    }
}
