//! The access pipeline's metrics: every request that reaches a decision
//! passes [`access`] on its way to the audit log, so the counts below are
//! the audit log's, by label. Names and labels are listed in
//! `docs/operations.md`; the Grafana dashboard in `deploy/grafana/` reads
//! them. Labels are codes (consumer, resource, mode, outcome, rule): a
//! bounded set, never a key or a case number.

use tongban_audit::{EventRef, Outcome};

/// Counts one decided request by consumer, resource, mode and outcome, its
/// latency by mode, and, when refused, the deciding rule.
pub fn access(event: &EventRef<'_>) {
    metrics::counter!(
        "tongban_access_total",
        "mode" => event.mode.to_string(),
        "resource" => event.resource.to_string(),
        "consumer" => event.consumer.to_string(),
        "outcome" => event.outcome.as_str(),
    )
    .increment(1);
    metrics::histogram!("tongban_access_duration_seconds", "mode" => event.mode.to_string())
        .record(event.latency_us as f64 / 1e6);
    match event.outcome {
        Outcome::Denied => {
            metrics::counter!("tongban_denials_total", "rule" => event.rule.to_string())
                .increment(1)
        }
        Outcome::QuotaExceeded => metrics::counter!(
            "tongban_quota_refusals_total",
            "consumer" => event.consumer.to_string(),
            "resource" => event.resource.to_string(),
        )
        .increment(1),
        _ => {}
    }
}
