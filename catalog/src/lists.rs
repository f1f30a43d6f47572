//! The three lists as the directory keeps them — needs with their review
//! workflow, responsibilities with their refresh SLA, negative entries with
//! their legal basis — and the checks that need no database.
//!
//! Review deadlines follow the national rules: needs for unconditional items
//! are reviewed by the data office within 2 working days; for conditional
//! items the provider replies within 5 working days (10 when the resource is
//! not yet published), then the data office confirms within 2.

use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tongban_policies::{Mode, NeedStatus, RowFilter};
use utoipa::ToSchema;

/// Working days for each review stage.
pub const OFFICE_REVIEW_DAYS: u32 = 2;
pub const PROVIDER_REPLY_DAYS: u32 = 5;
pub const PROVIDER_REPLY_DAYS_UNPUBLISHED: u32 = 10;

/// What a consumer applies for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NeedApplication {
    /// Resource code, e.g. `101/000001`.
    pub resource: String,
    /// Items needed (at least one).
    #[schema(min_items = 1)]
    pub items: Vec<String>,
    /// The matter (事项) code the data serves, e.g. `310104-JZZ-001`.
    #[schema(pattern = "\\S", max_length = 64)]
    pub matter: String,
    #[schema(value_type = ModeSchema)]
    pub mode: Mode,
    /// Why the items are needed for this matter.
    #[schema(pattern = "\\S")]
    pub justification: String,
    /// Rows limited to, e.g. the consumer's district.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, example = json!({"item": "residence_street", "prefix": "310104"}))]
    pub row_filter: Option<RowFilter>,
    /// Requests per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub daily_quota: Option<u32>,
    /// Items asked for without their directory mask (a subset of `items`).
    #[serde(default)]
    pub clear_items: Vec<String>,
    /// Start of validity; defaults to approval time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_from: Option<DateTime<Utc>>,
    /// End of validity (exclusive); none = until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<DateTime<Utc>>,
    /// The matter's name, as citizens see it in their data-use record
    /// (e.g. 居住证办理); the code alone if none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub matter_name: Option<String>,
    /// A legal exception (e.g. an investigation): uses under this need are
    /// withheld from the subject's data-use record until this time, then
    /// shown. The data office sees the flag when it reviews the need.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub covert_until: Option<DateTime<Utc>>,
}

/// One step in a need's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NeedEvent {
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// The department that acted.
    pub actor: String,
    /// `applied`, `provider_approved`, `approved`, `rejected`, `revoked`, `imported`.
    pub action: String,
    #[serde(default)]
    pub reason: String,
}

/// A need as the directory holds it; also the form of list exports and imports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NeedRecord {
    pub id: i64,
    /// Consumer department code.
    pub consumer: String,
    pub resource: String,
    pub items: Vec<String>,
    pub matter: String,
    #[schema(value_type = ModeSchema)]
    pub mode: Mode,
    pub justification: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub row_filter: Option<RowFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_quota: Option<u32>,
    #[serde(default)]
    pub clear_items: Vec<String>,
    /// Start of validity (set on approval if the application gave none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<DateTime<Utc>>,
    #[schema(value_type = NeedStatusSchema)]
    pub status: NeedStatus,
    #[schema(value_type = String, format = DateTime)]
    pub submitted_at: DateTime<Utc>,
    /// Deadline of the pending review stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matter_name: Option<String>,
    /// Uses under this need are withheld from data-use records until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub covert_until: Option<DateTime<Utc>>,
    /// Review history, oldest first (not part of imports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<NeedEvent>,
}

impl NeedRecord {
    /// Pending with its deadline passed at `now`.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        matches!(
            self.status,
            NeedStatus::PendingProvider | NeedStatus::PendingOffice
        ) && self.due_at.is_some_and(|d| d < now)
    }

    /// The application this need answers, for validation.
    pub fn application(&self) -> NeedApplication {
        NeedApplication {
            resource: self.resource.clone(),
            items: self.items.clone(),
            matter: self.matter.clone(),
            mode: self.mode,
            justification: self.justification.clone(),
            row_filter: self.row_filter.clone(),
            daily_quota: self.daily_quota,
            clear_items: self.clear_items.clone(),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            matter_name: self.matter_name.clone(),
            covert_until: self.covert_until,
        }
    }

    /// Whether uses under this need are withheld from the subjects'
    /// data-use records at `now`.
    pub fn covert_at(&self, now: DateTime<Utc>) -> bool {
        self.covert_until.is_some_and(|until| now < until)
    }

    /// The form the decision engine compiles.
    pub fn to_policy(&self) -> tongban_policies::Need {
        tongban_policies::Need {
            id: self.id,
            consumer: self.consumer.clone(),
            resource: self.resource.clone(),
            items: self.items.clone(),
            matter: self.matter.clone(),
            mode: self.mode,
            row_filter: self.row_filter.clone(),
            daily_quota: self.daily_quota,
            clear_items: self.clear_items.clone(),
            valid_from: self.valid_from.unwrap_or(self.submitted_at),
            valid_until: self.valid_until,
            status: self.status,
        }
    }
}

/// Who is acting on a need.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub department: &'a str,
    pub role: crate::model::Role,
}

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportCounts {
    pub created: usize,
    pub updated: usize,
}

/// A review action on a need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewAction {
    Approve,
    Reject,
    Revoke,
}

/// Filters for listing needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeedQuery {
    /// Needs this department is a party to: as consumer, or as provider of the resource.
    pub party: Option<String>,
    pub resource: Option<String>,
    pub status: Option<NeedStatus>,
    /// Only needs pending past their deadline at this time.
    pub overdue_at: Option<DateTime<Utc>>,
}

/// A negative-list entry as the directory holds it (and as it is written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NegativeSpec {
    pub resource: String,
    /// Items barred; empty bars the whole resource.
    #[serde(default)]
    pub items: Vec<String>,
    /// The law or rule that bars sharing (required).
    #[schema(pattern = "\\S")]
    pub legal_basis: String,
    /// Modes barred; empty bars every mode.
    #[serde(default)]
    #[schema(value_type = Vec<ModeSchema>)]
    pub modes: Vec<Mode>,
    /// Consumers barred; empty bars everyone.
    #[serde(default)]
    pub consumers: Vec<String>,
    #[serde(default)]
    pub note: String,
}

/// A stored negative entry; also the form of list exports and imports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NegativeRecord {
    pub id: i64,
    pub resource: String,
    #[serde(default)]
    pub items: Vec<String>,
    pub legal_basis: String,
    #[serde(default)]
    #[schema(value_type = Vec<ModeSchema>)]
    pub modes: Vec<Mode>,
    #[serde(default)]
    pub consumers: Vec<String>,
    #[serde(default)]
    pub note: String,
}

impl NegativeRecord {
    pub fn new(id: i64, s: NegativeSpec) -> Self {
        NegativeRecord {
            id,
            resource: s.resource,
            items: s.items,
            legal_basis: s.legal_basis,
            modes: s.modes,
            consumers: s.consumers,
            note: s.note,
        }
    }

    pub fn spec(&self) -> NegativeSpec {
        NegativeSpec {
            resource: self.resource.clone(),
            items: self.items.clone(),
            legal_basis: self.legal_basis.clone(),
            modes: self.modes.clone(),
            consumers: self.consumers.clone(),
            note: self.note.clone(),
        }
    }

    pub fn to_policy(&self) -> tongban_policies::NegativeEntry {
        tongban_policies::NegativeEntry {
            id: self.id,
            resource: self.resource.clone(),
            items: self.items.clone(),
            legal_basis: self.legal_basis.clone(),
            modes: self.modes.clone(),
            consumers: self.consumers.clone(),
        }
    }
}

/// A responsibility-list entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponsibilitySpec {
    /// The providing department; must be the resource's provider.
    pub provider: String,
    pub resource: String,
    #[serde(default)]
    pub items: Vec<String>,
    /// The longest the resource may go without a new dataset version.
    #[schema(minimum = 1)]
    pub refresh_interval_hours: u32,
    #[schema(value_type = ModeSchema)]
    pub delivery: Mode,
}

/// A stored responsibility; also the form of list exports and imports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponsibilityRecord {
    pub id: i64,
    pub provider: String,
    pub resource: String,
    #[serde(default)]
    pub items: Vec<String>,
    pub refresh_interval_hours: u32,
    #[schema(value_type = ModeSchema)]
    pub delivery: Mode,
}

impl ResponsibilityRecord {
    pub fn new(id: i64, s: ResponsibilitySpec) -> Self {
        ResponsibilityRecord {
            id,
            provider: s.provider,
            resource: s.resource,
            items: s.items,
            refresh_interval_hours: s.refresh_interval_hours,
            delivery: s.delivery,
        }
    }

    pub fn spec(&self) -> ResponsibilitySpec {
        ResponsibilitySpec {
            provider: self.provider.clone(),
            resource: self.resource.clone(),
            items: self.items.clone(),
            refresh_interval_hours: self.refresh_interval_hours,
            delivery: self.delivery,
        }
    }
}

/// Whether a provider keeps its refresh promise, at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ComplianceRow {
    pub responsibility: i64,
    pub provider: String,
    pub resource: String,
    pub refresh_interval_hours: u32,
    /// Time of the newest dataset version, if any.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub latest_version_at: Option<DateTime<Utc>>,
    #[schema(value_type = String, format = DateTime)]
    pub due_at: DateTime<Utc>,
    pub late: bool,
    /// Hours past due, rounded down; 0 when on time.
    pub late_by_hours: i64,
}

/// OpenAPI names for the policy enums (the policies crate has no OpenAPI derives).
#[derive(Serialize, ToSchema)]
#[schema(as = Mode)]
#[serde(rename_all = "snake_case")]
pub enum ModeSchema {
    Lookup,
    Verify,
    Batch,
    Subscribe,
    Call,
}

#[derive(Serialize, ToSchema)]
#[schema(as = NeedStatus)]
#[serde(rename_all = "snake_case")]
pub enum NeedStatusSchema {
    PendingProvider,
    PendingOffice,
    Approved,
    Rejected,
    Revoked,
}

fn non_empty(field: &str, v: &str, max: usize) -> Result<()> {
    if v.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

fn no_duplicates(field: &str, items: &[String]) -> Result<()> {
    for (i, item) in items.iter().enumerate() {
        if items[..i].contains(item) {
            return Err(Error::invalid(
                format!("{field}[{i}]"),
                format!("duplicate '{item}'"),
            ));
        }
    }
    Ok(())
}

/// Checks an application on its own; the store checks it against the directory.
pub fn validate_application(a: &NeedApplication) -> Result<()> {
    crate::validate::resource_code(&a.resource).map_err(|_| {
        Error::invalid(
            "resource",
            format!("'{}' is not a resource code like 101/000001", a.resource),
        )
    })?;
    if a.items.is_empty() {
        return Err(Error::invalid("items", "name at least one item"));
    }
    no_duplicates("items", &a.items)?;
    non_empty("matter", &a.matter, 64)?;
    non_empty("justification", &a.justification, 2000)?;
    for (i, c) in a.clear_items.iter().enumerate() {
        if !a.items.contains(c) {
            return Err(Error::invalid(
                format!("clear_items[{i}]"),
                format!("'{c}' is not one of the items applied for"),
            ));
        }
    }
    if a.daily_quota == Some(0) {
        return Err(Error::invalid("daily_quota", "must be at least 1"));
    }
    if let (Some(from), Some(until)) = (a.valid_from, a.valid_until)
        && until <= from
    {
        return Err(Error::invalid("valid_until", "must be after valid_from"));
    }
    if let Some(f) = &a.row_filter {
        non_empty("row_filter.item", &f.item, 63)?;
    }
    Ok(())
}

pub fn validate_negative(n: &NegativeSpec) -> Result<()> {
    crate::validate::resource_code(&n.resource).map_err(|_| {
        Error::invalid(
            "resource",
            format!("'{}' is not a resource code", n.resource),
        )
    })?;
    non_empty("legal_basis", &n.legal_basis, 2000)?;
    no_duplicates("items", &n.items)?;
    for (i, c) in n.consumers.iter().enumerate() {
        crate::validate::department_code(&format!("consumers[{i}]"), c)?;
    }
    Ok(())
}

pub fn validate_responsibility(r: &ResponsibilitySpec) -> Result<()> {
    crate::validate::resource_code(&r.resource).map_err(|_| {
        Error::invalid(
            "resource",
            format!("'{}' is not a resource code", r.resource),
        )
    })?;
    crate::validate::department_code("provider", &r.provider)?;
    no_duplicates("items", &r.items)?;
    if r.refresh_interval_hours == 0 {
        return Err(Error::invalid(
            "refresh_interval_hours",
            "must be at least 1",
        ));
    }
    Ok(())
}
