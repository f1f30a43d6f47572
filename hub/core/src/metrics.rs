//! The access pipeline's metrics: every request that reaches a decision
//! passes [`access`] on its way to the audit log, so the counts below are
//! the audit log's, by label. Names and labels are listed in
//! `docs/operations.md`; the Grafana dashboard in `deploy/grafana/` reads
//! them. Labels are codes (consumer, resource, mode, outcome, rule): a
//! bounded set, never a key or a case number.

use metrics::{Counter, Histogram};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, RwLock};
use tongban_audit::{EventRef, Outcome};

/// Whether a global recorder is installed: only then are handles kept
/// (one taken before would stay a no-op for good).
static RECORDING: AtomicBool = AtomicBool::new(false);

/// Says that the global recorder is installed (the server does, once).
pub fn recorder_installed() {
    RECORDING.store(true, Ordering::Release);
}

/// Metric handles by their label values. `metrics::counter!` with labels
/// builds a key of owned strings (an allocation per label) and looks it
/// up in the recorder's registry on every call: 6 % of a lookup's
/// instructions in the profile (docs/benchmarks.md, issue 17). Here a
/// call costs a hash of the labels, a read lock and a comparison.
pub struct Handles<H> {
    by_hash: RwLock<HashMap<u64, Vec<Kept<H>>>>,
}

/// One set of label values and its handles.
type Kept<H> = (Box<[Box<str>]>, H);

impl<H: Clone> Handles<H> {
    pub fn new() -> Handles<H> {
        Handles {
            by_hash: RwLock::new(HashMap::new()),
        }
    }

    /// The handles of `labels`, made by `make` the first time.
    pub fn get(&self, labels: &[&str], make: impl FnOnce() -> H) -> H {
        let mut hasher = std::hash::DefaultHasher::new();
        labels.hash(&mut hasher);
        let hash = hasher.finish();
        let same = |kept: &[Box<str>]| kept.iter().map(|l| &**l).eq(labels.iter().copied());
        if let Some(h) = self
            .by_hash
            .read()
            .expect("metric handles lock")
            .get(&hash)
            .and_then(|v| v.iter().find(|(kept, _)| same(kept)))
        {
            return h.1.clone();
        }
        let handles = make();
        if RECORDING.load(Ordering::Acquire) {
            let mut map = self.by_hash.write().expect("metric handles lock");
            let bucket = map.entry(hash).or_default();
            if !bucket.iter().any(|(kept, _)| same(kept)) {
                let kept = labels.iter().map(|l| Box::from(*l)).collect();
                bucket.push((kept, handles.clone()));
            }
        }
        handles
    }
}

impl<H: Clone> Default for Handles<H> {
    fn default() -> Self {
        Self::new()
    }
}

static ACCESS: LazyLock<Handles<(Counter, Histogram)>> = LazyLock::new(Handles::new);

/// Counts one decided request by consumer, resource, mode and outcome, its
/// latency by mode, and, when refused, the deciding rule.
pub fn access(event: &EventRef<'_>) {
    let outcome = event.outcome.as_str();
    let (total, duration) = ACCESS.get(
        &[event.mode, event.resource, event.consumer, outcome],
        || {
            (
                metrics::counter!(
                    "tongban_access_total",
                    "mode" => event.mode.to_string(),
                    "resource" => event.resource.to_string(),
                    "consumer" => event.consumer.to_string(),
                    "outcome" => outcome,
                ),
                metrics::histogram!("tongban_access_duration_seconds", "mode" => event.mode.to_string()),
            )
        },
    );
    total.increment(1);
    duration.record(event.latency_us as f64 / 1e6);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Handles are made once per set of label values, and only once a
    /// recorder is installed; labels that differ anywhere never share.
    #[test]
    fn handles_are_kept_per_label_set_once_recording() {
        let handles: Handles<usize> = Handles::new();
        let made = std::cell::Cell::new(0);
        let make = || {
            made.set(made.get() + 1);
            made.get()
        };
        if !RECORDING.load(Ordering::Acquire) {
            assert_eq!(handles.get(&["lookup", "101/000001"], make), 1);
            assert_eq!(
                handles.get(&["lookup", "101/000001"], make),
                2,
                "not kept before"
            );
        }
        recorder_installed();
        let first = handles.get(&["lookup", "101/000001"], make);
        assert_eq!(handles.get(&["lookup", "101/000001"], make), first);
        let other = handles.get(&["lookup", "101/000002"], make);
        assert_ne!(other, first);
        // The same characters split differently are other labels.
        let split = handles.get(&["lookup1", "01/000001"], make);
        assert!(split != first && split != other);
        assert_eq!(handles.get(&["lookup", "101/000002"], make), other);
    }
}
