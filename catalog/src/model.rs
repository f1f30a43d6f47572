//! The directory's records: departments, resources with their data items, and
//! dataset versions. Input shapes (`*Spec`) are separate from stored shapes so
//! that the fields the store owns (version, timestamps, dataset versions)
//! cannot be set by a caller.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tongban_policies::{Sensitivity, ShareType};
use utoipa::{IntoParams, ToSchema};

/// Administrative level of a department or division.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 市级
    City,
    /// 区级
    District,
    /// 街镇级
    Street,
}

/// A government department (部门) that provides or uses resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Department {
    /// Short stable code, lowercase letters, digits, `-` and `.`; e.g. `sh-gaj`.
    #[schema(example = "sh-gaj", pattern = "^[a-z0-9][a-z0-9.-]{1,63}$")]
    pub code: String,
    /// Official name, e.g. 上海市公安局.
    #[schema(pattern = "\\S", max_length = 200)]
    pub name: String,
    pub level: Level,
    /// The department above this one; required below city level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The administrative division the department serves (6-digit district or
    /// 12-digit street code); row filters for return flow (回流) use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^([0-9]{6}|[0-9]{12})$")]
    pub division_code: Option<String>,
    /// The department's own unified social credit code (GB 32100), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9A-HJ-NPQRTUWXY]{18}$")]
    pub credit_code: Option<String>,
}

/// Resource category in the catalogue (GB/T 21063 classification, first level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 基础信息资源: the four base libraries. Code prefix `1`.
    Base,
    /// 主题信息资源. Code prefix `2`.
    Theme,
    /// 部门信息资源. Code prefix `3`.
    Department,
}

/// The four base libraries (四大基础库).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BaseLibrary {
    /// 人口库, code class `01`.
    Population,
    /// 法人库, code class `02`.
    LegalEntity,
    /// 空间地理库, code class `03`.
    Geospatial,
    /// 电子证照库, code class `04`.
    ELicence,
}

/// Resource format (信息资源格式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// 数据库: structured tables; everything the hub serves as rows.
    Database,
    /// 电子表格
    Spreadsheet,
    /// 电子文件
    Document,
    /// 图形图像
    Image,
    /// 流媒体
    Stream,
    /// 自描述格式 (JSON, XML)
    SelfDescribing,
}

/// How often the provider refreshes the resource (更新周期).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdateCycle {
    Realtime,
    Daily,
    Weekly,
    Monthly,
    Quarterly,
    Yearly,
    Irregular,
}

/// Lifecycle of a resource in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being described; not yet offered for sharing.
    Draft,
    /// Offered for sharing.
    Published,
    /// No longer offered; kept for the record, read-only.
    Retired,
}

/// One field of a resource (信息项).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataItem {
    /// Column name: lowercase ASCII identifier, e.g. `citizen_id`.
    #[schema(example = "citizen_id", pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub name: String,
    /// Chinese label, e.g. 公民身份号码.
    #[schema(pattern = "\\S", max_length = 100)]
    pub label: String,
    /// Arrow data type as Arrow prints it: `Utf8`, `Int64`, `Float64`,
    /// `Boolean`, `Date32`, `Decimal128(18, 2)`, `Timestamp(µs, "+08:00")`…
    #[schema(example = "Utf8")]
    pub data_type: String,
    #[serde(default)]
    pub description: String,
    #[schema(value_type = SensitivitySchema)]
    pub sensitivity: Sensitivity,
    #[schema(value_type = ShareTypeSchema)]
    pub share_type: ShareType,
    /// What a consumer must show to get a `conditional` item (required then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_condition: Option<String>,
    /// The law or rule behind a `none` share type (required then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
    /// How the value is masked when released, unless a need grants it clear:
    /// `citizen_id`, `credit_code`, `phone`, `chinese_name`, `address`,
    /// `keep_first:N`, `keep_last:N` or `hash`. Text items only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "citizen_id")]
    pub mask: Option<tongban_policies::Mask>,
}

/// What a caller gives to create or replace a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// Resource code `<classification>/<sequence>`: a 3–9 digit classification
    /// whose first digit is the category (1 base, 2 theme, 3 department) and,
    /// for base resources, whose next two digits name the base library
    /// (01 population, 02 legal entity, 03 geospatial, 04 e-licence); then a
    /// 6-digit sequence. E.g. `101/000001`.
    #[schema(example = "101/000001", pattern = "^[1-3][0-9]{2,8}/[0-9]{6}$")]
    pub code: String,
    #[schema(pattern = "\\S", max_length = 200)]
    pub name: String,
    /// Code of the providing department.
    #[schema(pattern = "^[a-z0-9][a-z0-9.-]{1,63}$")]
    pub provider: String,
    #[serde(default)]
    pub summary: String,
    pub category: Category,
    /// Required for, and only for, the `base` category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_library: Option<BaseLibrary>,
    pub format: Format,
    pub update_cycle: UpdateCycle,
    /// Set when the resource is published, if not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub publish_date: Option<NaiveDate>,
    /// Items that identify a row (the lookup key), in order.
    #[serde(default)]
    pub key_items: Vec<String>,
    /// The text item holding each row's administrative division code
    /// (GB/T 2260: 6-digit district or 12-digit street code), if any. Bulk
    /// deliveries to a district or street department keep only the rows of
    /// its own division (return flow, 回流).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "residence_street")]
    pub division_item: Option<String>,
    #[schema(min_items = 1)]
    pub items: Vec<DataItem>,
    /// Lifecycle state. On create it defaults to `draft`; when given on update
    /// or import it moves the resource: draft → published → retired, never back.
    /// Always set on a resource read from the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "published")]
    pub status: Option<Status>,
}

/// A resource as the directory holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Resource {
    #[serde(flatten)]
    pub spec: ResourceSpec,
    /// Incremented on every change to the description.
    pub version: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    /// The newest published dataset version, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_version: Option<DatasetVersion>,
}

impl Resource {
    /// The resource's lifecycle state (always set on stored resources).
    pub fn status(&self) -> Status {
        self.spec.status.unwrap_or(Status::Draft)
    }
}

/// An immutable, complete snapshot of a resource's data (数据版本).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DatasetVersion {
    pub resource: String,
    /// 1, 2, 3… per resource.
    pub version: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    pub row_count: i64,
    pub byte_size: i64,
    /// Where the files live, relative to the dataset store root.
    pub location: String,
    /// What produced it, e.g. `datagen seed=42 scale=1` or a sync job name.
    pub origin: String,
}

/// A version about to be recorded; the store assigns nothing, the writer chose
/// the number before writing files so the files and record agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDatasetVersion {
    pub resource: String,
    pub version: i64,
    pub row_count: i64,
    pub byte_size: i64,
    pub location: String,
    pub origin: String,
}

/// Filters and paging for listing resources. An empty parameter (`category=`,
/// as HTML forms send) counts as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResourceQuery {
    /// Text search over code, name, summary and item names and labels.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub q: Option<String>,
    /// Provider department code.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub provider: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub category: Option<Category>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub base_library: Option<BaseLibrary>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub status: Option<Status>,
    /// Resources with at least one item of this share type.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(value_type = Option<ShareTypeSchema>)]
    pub share_type: Option<ShareType>,
    /// 1-based page number (default 1).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(minimum = 1)]
    pub page: Option<u32>,
    /// Page size, 1–200 (default 20).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
}

/// Reads an optional query value from its text, treating `""` as absent.
fn empty_as_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let s: Option<String> = Option::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// The OpenAPI description of [`ShareType`] (which lives in the pure policies
/// crate, without OpenAPI derives).
#[derive(Serialize, ToSchema)]
#[schema(as = ShareType)]
#[serde(rename_all = "snake_case")]
pub enum ShareTypeSchema {
    Unconditional,
    Conditional,
    None,
}

/// The OpenAPI description of [`Sensitivity`].
#[derive(Serialize, ToSchema)]
#[schema(as = Sensitivity)]
#[serde(rename_all = "snake_case")]
pub enum SensitivitySchema {
    Public,
    Internal,
    Sensitive,
    HighlySensitive,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Matches over all pages.
    pub total: i64,
    pub page: u32,
    pub page_size: u32,
}

/// Who a token belongs to and what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 大数据中心: edits the directory and the lists.
    DataOffice,
    /// Any other department: reads the directory, applies for needs, calls lookups.
    Department,
    /// 一网通办: the citizens' and companies' portal. Acts for a subject its
    /// own login has authenticated (named per request, like X-Road's
    /// `userId`): reads that subject's data-use record and raises its
    /// objections, and otherwise only what any department may.
    Portal,
}

/// How far one replica's audit chain has come, as the replica recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub replica: String,
    /// The newest durable record: its sequence number and hash.
    pub seq: i64,
    pub hash: String,
    /// The last record of the newest segment shipped to the object store.
    pub shipped: i64,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A signed checkpoint of one replica's audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    pub replica: String,
    /// Records covered.
    pub size: i64,
    /// Hex of the Merkle root at `size`.
    pub root: String,
    /// The C2SP signed note.
    pub note: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The public key a department seals its electronic licences with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SealKeyRecord {
    pub department: String,
    /// `SM2-SM3`.
    pub algorithm: String,
    /// Hex of the uncompressed SEC1 point.
    pub public_key: String,
    #[schema(value_type = String, format = DateTime)]
    pub registered_at: chrono::DateTime<chrono::Utc>,
}

/// A stored API token; only its SHA-256 hash is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_hash: String,
    pub department: String,
    pub role: Role,
    pub label: String,
}

/// A record of an import file and where it came from (`line 7`,
/// `resources[3]`), so errors can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub at: String,
    pub value: T,
}

/// A whole directory, as exported and imported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    #[serde(default)]
    pub departments: Vec<Department>,
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
}

/// What an import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    pub departments_created: usize,
    pub departments_updated: usize,
    pub resources_created: usize,
    pub resources_updated: usize,
}

tongban_policies::str_enum!(Level, "level", {
    Level::City => "city",
    Level::District => "district",
    Level::Street => "street",
});
tongban_policies::str_enum!(Category, "category", {
    Category::Base => "base",
    Category::Theme => "theme",
    Category::Department => "department",
});
tongban_policies::str_enum!(BaseLibrary, "base library", {
    BaseLibrary::Population => "population",
    BaseLibrary::LegalEntity => "legal_entity",
    BaseLibrary::Geospatial => "geospatial",
    BaseLibrary::ELicence => "e_licence",
});
tongban_policies::str_enum!(Format, "format", {
    Format::Database => "database",
    Format::Spreadsheet => "spreadsheet",
    Format::Document => "document",
    Format::Image => "image",
    Format::Stream => "stream",
    Format::SelfDescribing => "self_describing",
});
tongban_policies::str_enum!(UpdateCycle, "update cycle", {
    UpdateCycle::Realtime => "realtime",
    UpdateCycle::Daily => "daily",
    UpdateCycle::Weekly => "weekly",
    UpdateCycle::Monthly => "monthly",
    UpdateCycle::Quarterly => "quarterly",
    UpdateCycle::Yearly => "yearly",
    UpdateCycle::Irregular => "irregular",
});
tongban_policies::str_enum!(Status, "status", {
    Status::Draft => "draft",
    Status::Published => "published",
    Status::Retired => "retired",
});
tongban_policies::str_enum!(Role, "role", {
    Role::DataOffice => "data_office",
    Role::Department => "department",
    Role::Portal => "portal",
});

#[cfg(test)]
mod tests {
    use super::*;

    /// The names the store and CSV files use are the names the JSON API uses.
    #[test]
    fn str_names_match_serde_names() {
        fn check<T: Serialize + Copy + std::fmt::Display>(values: &[T]) {
            for v in values {
                assert_eq!(
                    serde_json::to_value(v).unwrap(),
                    serde_json::Value::from(v.to_string())
                );
            }
        }
        check(&[Level::City, Level::District, Level::Street]);
        check(&[Category::Base, Category::Theme, Category::Department]);
        check(&[
            BaseLibrary::Population,
            BaseLibrary::LegalEntity,
            BaseLibrary::Geospatial,
            BaseLibrary::ELicence,
        ]);
        check(&[
            Format::Database,
            Format::Spreadsheet,
            Format::Document,
            Format::Image,
            Format::Stream,
            Format::SelfDescribing,
        ]);
        check(&[
            UpdateCycle::Realtime,
            UpdateCycle::Daily,
            UpdateCycle::Weekly,
            UpdateCycle::Monthly,
            UpdateCycle::Quarterly,
            UpdateCycle::Yearly,
            UpdateCycle::Irregular,
        ]);
        check(&[Status::Draft, Status::Published, Status::Retired]);
        check(&[Role::DataOffice, Role::Department, Role::Portal]);
    }
}
