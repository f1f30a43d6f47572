//! The three lists as the decision engine sees them — needs (需求清单),
//! responsibilities (责任清单), negative entries (负面清单) — plus the slice of
//! the directory a decision needs. The catalog stores richer records (review
//! history, justification, timestamps) and hands these down.

use crate::enforce::RowFilter;
use crate::mask::Mask;
use crate::vocab::ShareType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a consumer uses a resource (共享方式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Real-time query by key: permitted items, masked.
    Lookup,
    /// Match / no-match per claimed item; discloses no values.
    Verify,
    /// Bulk pull of a dataset version.
    Batch,
    /// Continuous delivery of new versions.
    Subscribe,
    /// A call of a provider's interface (接口共享) through the hub: the items
    /// are the endpoint's parameters and response fields.
    Call,
}

crate::str_enum!(Mode, "mode", {
    Mode::Lookup => "lookup",
    Mode::Verify => "verify",
    Mode::Batch => "batch",
    Mode::Subscribe => "subscribe",
    Mode::Call => "call",
});

/// Where a need stands in its review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeedStatus {
    /// Waiting for the provider's reply (conditional items).
    PendingProvider,
    /// Waiting for the data office.
    PendingOffice,
    Approved,
    Rejected,
    Revoked,
}

crate::str_enum!(NeedStatus, "need status", {
    NeedStatus::PendingProvider => "pending_provider",
    NeedStatus::PendingOffice => "pending_office",
    NeedStatus::Approved => "approved",
    NeedStatus::Rejected => "rejected",
    NeedStatus::Revoked => "revoked",
});

/// A consumer's need for items of a resource, for one matter and mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Need {
    pub id: i64,
    /// Consumer department code.
    pub consumer: String,
    pub resource: String,
    pub items: Vec<String>,
    /// The administrative matter (事项) code the data serves.
    pub matter: String,
    pub mode: Mode,
    /// Rows the consumer may see, e.g. its own district.
    pub row_filter: Option<RowFilter>,
    /// Requests per day under this need.
    pub daily_quota: Option<u32>,
    /// Items released without their directory mask.
    pub clear_items: Vec<String>,
    pub valid_from: DateTime<Utc>,
    /// Exclusive end; `None` = until revoked.
    pub valid_until: Option<DateTime<Utc>>,
    pub status: NeedStatus,
}

impl Need {
    /// Approved and inside its validity window at `now`.
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.status == NeedStatus::Approved
            && self.valid_from <= now
            && self.valid_until.is_none_or(|until| now < until)
    }

    /// Whether the need serves requests of this mode. A lookup need also
    /// serves verification: verifying discloses less than looking up.
    pub fn serves(&self, mode: Mode) -> bool {
        self.mode == mode || (mode == Mode::Verify && self.mode == Mode::Lookup)
    }
}

/// A negative-list entry: a resource, or some of its items, that must not be
/// shared. It wins over every other rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NegativeEntry {
    pub id: i64,
    pub resource: String,
    /// Items barred; empty bars the whole resource.
    pub items: Vec<String>,
    pub legal_basis: String,
    /// Modes barred; empty bars every mode.
    pub modes: Vec<Mode>,
    /// Consumers barred; empty bars everyone.
    pub consumers: Vec<String>,
}

impl NegativeEntry {
    /// Whether the entry bars `item` of its resource for this consumer and mode.
    pub fn bars(&self, item: &str, consumer: &str, mode: Mode) -> bool {
        (self.items.is_empty() || self.items.iter().any(|i| i == item))
            && (self.modes.is_empty() || self.modes.contains(&mode))
            && (self.consumers.is_empty() || self.consumers.iter().any(|c| c == consumer))
    }
}

/// A provider's duty to supply items of a resource, refreshed at an interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Responsibility {
    pub id: i64,
    pub provider: String,
    pub resource: String,
    pub items: Vec<String>,
    /// The longest a resource may go without a new dataset version.
    pub refresh_interval_hours: u32,
    pub delivery: Mode,
}

/// Whether a provider keeps its refresh promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compliance {
    /// When the next version is (or was) due.
    pub due_at: DateTime<Utc>,
    /// Seconds past due; 0 when on time.
    pub late_by_seconds: i64,
}

impl Responsibility {
    /// Compliance at `now`, from the newest dataset version's time (or, with no
    /// version yet, from when the duty began).
    pub fn compliance(
        &self,
        latest_version_at: Option<DateTime<Utc>>,
        duty_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Compliance {
        let base = latest_version_at.unwrap_or(duty_since);
        let due_at = base + chrono::Duration::hours(i64::from(self.refresh_interval_hours));
        Compliance {
            due_at,
            late_by_seconds: (now - due_at).num_seconds().max(0),
        }
    }
}

/// One item of a resource, as decisions see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemPolicy {
    pub name: String,
    pub share_type: ShareType,
    /// Applied on release unless a need lists the item as clear.
    pub mask: Option<Mask>,
}

/// One resource, as decisions see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourcePolicy {
    pub code: String,
    pub provider: String,
    /// Only published resources are shared.
    pub published: bool,
    pub items: Vec<ItemPolicy>,
    /// The item holding each row's administrative division code (GB/T 2260;
    /// 6-digit district or 12-digit street), if the data has one: bulk
    /// deliveries to a district or street department keep only the rows of
    /// its own division (return flow, 回流).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division_item: Option<String>,
}

/// Everything a policy set compiles from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInput {
    /// Registered department codes.
    pub departments: Vec<String>,
    pub resources: Vec<ResourcePolicy>,
    pub needs: Vec<Need>,
    pub negatives: Vec<NegativeEntry>,
    /// Departments below city level → the division they serve (6-digit
    /// district or 12-digit street code), for return flow (回流).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub divisions: std::collections::BTreeMap<String, String>,
}
