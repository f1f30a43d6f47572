//! The plan of a delivery: the policy decision for a subscription at one
//! moment, and what it obliges — which columns leave (in order), masked how,
//! and which rows (the needs' row filters and, for district and street
//! departments, return flow).
//!
//! A plan is refused when the subscription is not active, when its need is
//! no longer in force (revoked or expired: nothing is released under a
//! lapsed need, even items any department could have), or when the
//! decision releases no value at all.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tongban_catalog::subscriptions::{Subscription, SubscriptionStatus};
use tongban_core::objections::Disputes;
use tongban_core::{Access, Ask};
use tongban_policies::{Decision, Reveal, RowFilter, Rule};

/// What one delivery of a subscription may release.
#[derive(Debug, Clone)]
pub struct Plan {
    pub subscription: Subscription,
    pub decision: Decision,
    /// The released columns in delivery order, with how each is revealed.
    pub projection: Vec<(String, Reveal)>,
    /// Rows kept: every filter holds.
    pub row_filters: Vec<RowFilter>,
    /// A digest of the projection and filters (and the disputed marks):
    /// files written under one plan are reused only by plans with the same
    /// fingerprint, so a changed mask, filter or mark never serves an old
    /// file.
    pub fingerprint: String,
    /// Records of the resource whose released items an open objection
    /// disputes: their rows carry the `_disputed` column (异议标注).
    pub disputed: Option<Disputed>,
}

/// The disputed records a delivery marks: key item, and key → the
/// disputed released items, comma-joined (what `_disputed` holds).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Disputed {
    pub key_item: String,
    pub records: std::collections::BTreeMap<String, String>,
}

/// The column that carries a row's disputed items in a delivery.
pub const DISPUTED: &str = "_disputed";

/// Why nothing may be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The deciding rule, e.g. `need_not_in_force`, `negative:2`.
    pub rule: String,
    pub detail: String,
    /// The subscription's need lapsed: the subscription should stop.
    pub need_lapsed: bool,
}

impl From<Refused> for tongban_core::Error {
    fn from(r: Refused) -> Self {
        tongban_core::Error::Denied {
            rule: r.rule,
            detail: r.detail,
        }
    }
}

impl Plan {
    /// The projection in the form the enforcement helpers take.
    pub fn columns(&self) -> Vec<(&str, Reveal)> {
        self.projection
            .iter()
            .map(|(c, r)| (c.as_str(), *r))
            .collect()
    }

    /// Items released, in order.
    pub fn items(&self) -> Vec<String> {
        self.projection.iter().map(|(c, _)| c.clone()).collect()
    }

    /// Items asked for and denied, as `item:rule` (for the audit log).
    pub fn denied(&self) -> Vec<String> {
        self.decision
            .items
            .iter()
            .filter(|d| d.release.is_none())
            .map(|d| format!("{}:{}", d.item, d.rule))
            .collect()
    }
}

/// Decides what a delivery of `sub` at `now` may release, with the
/// disputed marks of open objections on its resource.
pub fn plan(
    access: &Access,
    disputes: &Disputes,
    sub: &Subscription,
    now: DateTime<Utc>,
) -> Result<Plan, Refused> {
    if sub.status != SubscriptionStatus::Active {
        return Err(Refused {
            rule: format!("subscription_{}", sub.status),
            detail: format!(
                "subscription '{}' is {}{}",
                sub.spec.name,
                sub.status,
                sub.status_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            need_lapsed: false,
        });
    }
    // The delivery's decision, from one snapshot of the lists, by the
    // access pipeline (the subscription's own checks are above and below).
    let decision = access
        .decide(
            &Ask {
                consumer: &sub.consumer,
                resource: &sub.spec.resource,
                matter: &sub.matter,
                case: "",
                mode: sub.mode,
                started: std::time::Instant::now(),
            },
            sub.items(),
            now,
        )
        .into_decision();
    // A subscription lives under a need: without one in force, not even
    // unconditional items are delivered.
    let under_need = decision
        .items
        .iter()
        .any(|d| d.release.is_some() && matches!(d.rule, Rule::Need(_)));
    if decision.permitted && !under_need {
        return Err(Refused {
            rule: "need_not_in_force".into(),
            detail: format!(
                "need {} of subscription '{}' is not in force (revoked or expired): nothing is delivered",
                sub.spec.need, sub.spec.name
            ),
            need_lapsed: true,
        });
    }
    let projection: Vec<(String, Reveal)> = decision
        .projection()
        .into_iter()
        .map(|(c, r)| (c.to_string(), r))
        .collect();
    if !decision.permitted || projection.is_empty() {
        let first = decision.items.iter().find(|d| d.release.is_none());
        let lapsed = decision.items.iter().all(|d| d.rule == Rule::NoNeed);
        return Err(Refused {
            rule: decision.rule.to_string(),
            detail: first.map_or_else(
                || "nothing may be delivered".to_string(),
                |d| format!("{}: {}", d.item, d.reason),
            ),
            need_lapsed: lapsed,
        });
    }
    let row_filters = decision.row_filters.clone();
    let disputed = disputes.current().get(&sub.spec.resource).and_then(|m| {
        let records: std::collections::BTreeMap<String, String> = m
            .records
            .iter()
            .filter_map(|(key, items)| {
                let released: Vec<&str> = projection
                    .iter()
                    .map(|(c, _)| c.as_str())
                    .filter(|c| items.iter().any(|i| i == c))
                    .collect();
                (!released.is_empty()).then(|| (key.clone(), released.join(",")))
            })
            .collect();
        (!records.is_empty() && !m.key_item.is_empty()).then(|| Disputed {
            key_item: m.key_item.clone(),
            records,
        })
    });
    let fingerprint = {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&(&projection, &row_filters)).expect("plans serialise"));
        if let Some(d) = &disputed {
            h.update(serde_json::to_vec(d).expect("marks serialise"));
        }
        hex::encode(&h.finalize()[..8])
    };
    Ok(Plan {
        subscription: sub.clone(),
        decision,
        projection,
        row_filters,
        fingerprint,
        disputed,
    })
}
