//! Objections and corrections (异议核实与纠错): a consumer department, or
//! the portal for a subject, objects to a record of a resource; the
//! record's items are marked disputed at once; the provider answers within
//! a deadline in working days (the hub's calendar): it corrects — and the
//! hub checks, in the next version, that the value really changed — or
//! rejects with a reason. Either way the mark goes; the objection is kept,
//! closed, with its history. `sql::objections` stores them.
//!
//! Lifecycle (`status`): `open` (raised and accepted: the hub found the
//! record, the mark is on) → `correcting` (the provider says the fix is on
//! its way) → `corrected` (a new version changed the value: closed); or
//! `open`/`correcting` → `rejected` (the provider stands by the value, with
//! its reason: closed).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Working days a provider has to answer, unless configured.
pub const ANSWER_DAYS: u32 = 5;

/// What the raiser gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectionSpec {
    /// Resource code, e.g. `101/000001`.
    pub resource: String,
    /// The record's key (a citizen ID, a credit code, a licence number).
    pub key: String,
    /// The items believed wrong (at least one).
    #[schema(min_items = 1)]
    pub items: Vec<String>,
    /// What the raiser believes correct, by item (may be left out).
    #[serde(default)]
    pub claimed: BTreeMap<String, String>,
    /// Why: the evidence, as text (a document's number, what was seen).
    #[schema(pattern = "\\S", max_length = 2000)]
    pub evidence: String,
}

/// Where an objection is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectionStatus {
    Open,
    Correcting,
    Corrected,
    Rejected,
}

tongban_policies::str_enum!(ObjectionStatus, "objection status", {
    ObjectionStatus::Open => "open",
    ObjectionStatus::Correcting => "correcting",
    ObjectionStatus::Corrected => "corrected",
    ObjectionStatus::Rejected => "rejected",
});

impl ObjectionStatus {
    /// Open or correcting: the items carry the mark.
    pub fn marks(self) -> bool {
        matches!(self, ObjectionStatus::Open | ObjectionStatus::Correcting)
    }
}

/// An objection as the hub keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ObjectionRecord {
    pub id: i64,
    pub resource: String,
    pub key: String,
    pub items: Vec<String>,
    pub claimed: BTreeMap<String, String>,
    pub evidence: String,
    /// The department that raised it (the portal, for a subject).
    pub raised_by: String,
    /// For the portal: the keyed hash of the user it acted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raised_for: Option<String>,
    /// The resource's provider, who must answer.
    pub provider: String,
    #[schema(value_type = String, example = "open")]
    pub status: ObjectionStatus,
    #[schema(value_type = String, format = DateTime)]
    pub raised_at: DateTime<Utc>,
    /// The end of the provider's last working day to answer.
    #[schema(value_type = String, format = DateTime)]
    pub due_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<DateTime<Utc>>,
    /// The dataset version the objection was raised against.
    pub version: i64,
    /// The version whose changed values closed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_version: Option<i64>,
    /// Keyed hashes of the items' values when raised, to tell a real
    /// correction from a new version with the same values. Never shown.
    #[serde(skip)]
    pub value_hashes: BTreeMap<String, String>,
    /// Oldest first.
    #[serde(default)]
    pub history: Vec<ObjectionEvent>,
}

impl ObjectionRecord {
    /// Not closed, and past its deadline at `now`.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.status.marks() && self.due_at < now
    }
}

/// One step of an objection's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ObjectionEvent {
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// A department, or `hub` for the hub's own checks.
    pub actor: String,
    /// `raised`, `accepted`, `correcting`, `unchanged`, `corrected`, `rejected`.
    pub action: String,
    #[serde(default)]
    pub note: String,
}

/// What the hub has found out when it raises an objection: who provides
/// the resource, the version it read, the values' hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raise<'a> {
    pub spec: &'a ObjectionSpec,
    pub raised_by: &'a str,
    pub raised_for: Option<String>,
    pub provider: &'a str,
    pub version: i64,
    pub value_hashes: BTreeMap<String, String>,
    pub now: DateTime<Utc>,
    /// Working days to answer.
    pub days: u32,
}

/// A step taken on an objection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The provider: the value is wrong and the fix comes with its next
    /// sync or version.
    Correcting { note: String },
    /// The provider: the value stands, because `reason`.
    Reject { reason: String },
    /// The hub: version `version` changed the items (closes it).
    Corrected { version: i64, note: String },
    /// The hub: version `version` left the items as they were.
    Unchanged { version: i64 },
}

/// Filters for listing objections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectionQuery {
    /// Objections this department raised or must answer.
    pub party: Option<String>,
    pub resource: Option<String>,
    pub status: Option<ObjectionStatus>,
    /// Only those open past their deadline at this time.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only those that mark their items (open or correcting).
    pub marking: bool,
}
