//! Per-service health data, in the spirit of X-Road's
//! `getSecurityServerHealthData`: when the last call succeeded and failed
//! (and why), counts since the hub started, and latency over the last calls.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;
use utoipa::ToSchema;

/// Latency is summarised over this many of the latest calls that reached
/// the provider.
pub const LATENCY_WINDOW: usize = 200;

#[derive(Debug, Default)]
struct Inner {
    calls: u64,
    successes: u64,
    failures: u64,
    timeouts: u64,
    /// Refused by the hub before reaching the provider (disabled, breaker
    /// open, concurrency or rate limit).
    refused: u64,
    cache_hits: u64,
    last_success: Option<DateTime<Utc>>,
    last_failure: Option<(DateTime<Utc>, String)>,
    latencies_us: VecDeque<u64>,
}

/// One service's counters. Shared by its calls.
#[derive(Debug, Default)]
pub struct Health(Mutex<Inner>);

/// How a call ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended<'a> {
    Success {
        provider_us: u64,
    },
    Failure {
        provider_us: Option<u64>,
        reason: &'a str,
        timeout: bool,
    },
    Refused,
    CacheHit,
}

/// Health data of one service, as the API and the console show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthReport {
    pub resource: String,
    pub name: String,
    pub provider: String,
    pub enabled: bool,
    #[schema(value_type = String, example = "closed")]
    pub breaker: crate::breaker::State,
    pub breaker_opened: u64,
    pub calls: u64,
    pub successes: u64,
    pub failures: u64,
    pub timeouts: u64,
    pub refused: u64,
    pub cache_hits: u64,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_success: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_failure: Option<DateTime<Utc>>,
    pub last_failure_reason: Option<String>,
    /// Calls in flight to the provider now.
    pub in_flight: u32,
    /// Over the latest calls that reached the provider (at most 200).
    pub latency_window: usize,
    pub latency_min_ms: Option<f64>,
    pub latency_avg_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
}

impl Health {
    pub fn note(&self, ended: Ended<'_>) {
        let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        h.calls += 1;
        let latency = match ended {
            Ended::Success { provider_us } => {
                h.successes += 1;
                h.last_success = Some(Utc::now());
                Some(provider_us)
            }
            Ended::Failure {
                provider_us,
                reason,
                timeout,
            } => {
                h.failures += 1;
                h.timeouts += u64::from(timeout);
                h.last_failure = Some((Utc::now(), reason.to_string()));
                provider_us
            }
            Ended::Refused => {
                h.refused += 1;
                None
            }
            Ended::CacheHit => {
                h.cache_hits += 1;
                None
            }
        };
        if let Some(us) = latency {
            if h.latencies_us.len() == LATENCY_WINDOW {
                h.latencies_us.pop_front();
            }
            h.latencies_us.push_back(us);
        }
    }

    /// Fills the counters of a report.
    pub(crate) fn fill(&self, r: &mut HealthReport) {
        let h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        r.calls = h.calls;
        r.successes = h.successes;
        r.failures = h.failures;
        r.timeouts = h.timeouts;
        r.refused = h.refused;
        r.cache_hits = h.cache_hits;
        r.last_success = h.last_success;
        r.last_failure = h.last_failure.as_ref().map(|f| f.0);
        r.last_failure_reason = h.last_failure.as_ref().map(|f| f.1.clone());
        r.latency_window = h.latencies_us.len();
        let ms = |us: u64| us as f64 / 1000.0;
        r.latency_min_ms = h.latencies_us.iter().min().map(|&v| ms(v));
        r.latency_max_ms = h.latencies_us.iter().max().map(|&v| ms(v));
        r.latency_avg_ms = (!h.latencies_us.is_empty())
            .then(|| ms(h.latencies_us.iter().sum::<u64>()) / h.latencies_us.len() as f64);
    }
}
