//! Interface sharing (接口共享): a provider's own API registered in the
//! directory and called through the hub.
//!
//! A service is a resource whose sharing mode is interface: its data items
//! are the fields of the API's requests (parameters) and responses, so the
//! three lists govern a call item by item, exactly as they govern a lookup.
//! The [`ServiceSpec`] adds what the hub needs to call it: the base URL, the
//! endpoints (method and path template, which item goes where, which JSON
//! pointer of the answer is which item), timeouts, TLS toward the provider,
//! size, concurrency and rate limits, the circuit breaker, retries, a
//! response cache, and whether it is enabled.
//!
//! Everything here is checked without IO ([`ServiceSpec::check`]); the store
//! checks it against the resource's items and writes both in one
//! transaction. [`from_openapi`] turns a provider's OpenAPI 3 document into
//! a draft registration for the data office to review.

use crate::model::{DataItem, ResourceSpec, Status};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use utoipa::ToSchema;

/// Longest timeout an endpoint may have.
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// A resource and its interface, registered together: the resource's items
/// describe the endpoints' parameters and response fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceRegistration {
    #[schema(value_type = Object)]
    pub resource: ResourceSpec,
    pub service: ServiceSpec,
}

/// How the hub calls a provider's API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// `http://` or `https://` base URL of the provider's API; endpoint paths
    /// are appended to it. E.g. `https://api.rsj.example:8443/v2`.
    #[schema(example = "http://127.0.0.1:7301")]
    pub base_url: String,
    #[schema(min_items = 1)]
    pub endpoints: Vec<Endpoint>,
    /// TLS toward the provider (for `https` base URLs).
    #[serde(default)]
    pub tls: BackendTls,
    #[serde(default)]
    pub limits: ServiceLimits,
    #[serde(default)]
    pub breaker: BreakerSettings,
    #[serde(default)]
    pub retry: RetrySettings,
    /// Disabled services answer every call with `provider_unavailable` and
    /// their notice, without touching the provider.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Shown to callers while the service is disabled, e.g. 系统升级，预计 18:00 恢复.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_notice: Option<String>,
    /// Keep up to this many bytes of each request and response body in the
    /// audit record. Off (none) by default: records carry hashes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 65536)]
    pub log_body_bytes: Option<u32>,
}

fn yes() -> bool {
    true
}

/// One operation of the provider's API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Name callers use: `POST /v1/call/{class}/{seq}/{name}`. Lowercase
    /// letters, digits and `-`.
    #[schema(example = "contribution-status", pattern = "^[a-z][a-z0-9-]{0,62}$")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    pub method: HttpMethod,
    /// Path below the base URL; `{item}` takes a path parameter's value.
    #[schema(example = "/contributions/{citizen_id}")]
    pub path: String,
    /// Request parameters, each a data item of the resource.
    #[serde(default)]
    pub params: Vec<Param>,
    /// Response fields, each a data item of the resource at a JSON pointer.
    #[schema(min_items = 1)]
    pub response: Vec<Field>,
    /// Per attempt, in milliseconds: 3000 by default, at most 60000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Safe to repeat: only idempotent endpoints are retried or cached.
    /// Defaults to true for `GET`, false for `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// Keep a successful answer this long and serve it again for the same
    /// parameters (idempotent endpoints only). The caller's decision still
    /// applies to every answer served from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ttl_ms: Option<u64>,
}

fn default_timeout_ms() -> u64 {
    3_000
}

impl Endpoint {
    pub fn is_idempotent(&self) -> bool {
        self.idempotent.unwrap_or(self.method == HttpMethod::Get)
    }
}

/// The methods a provider endpoint may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
}

/// Where a parameter goes in the provider's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParamIn {
    /// Into the path template's `{item}`.
    Path,
    /// A query parameter of the same name.
    Query,
    /// A member of the JSON body (`POST`).
    Body,
}

/// The kinds of key whose check digits the hub verifies before a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// GB 11643 citizen ID number (ISO 7064 MOD 11-2 check).
    CitizenId,
    /// GB 32100 unified social credit code.
    CreditCode,
}

/// A request parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// The data item it is.
    pub item: String,
    #[serde(rename = "in")]
    pub location: ParamIn,
    /// Path parameters are always required.
    #[serde(default = "yes")]
    pub required: bool,
    /// Set for a key: its check digits are verified, and its keyed hash is
    /// the record's key in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyKind>,
}

/// A response field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// The data item it is.
    pub item: String,
    /// RFC 6901 JSON pointer into the provider's answer, e.g. `/data/paid_up`.
    pub pointer: String,
    /// An answer without it does not match the schema (never passed through).
    #[serde(default)]
    pub required: bool,
}

/// TLS toward the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendTls {
    /// PEM of the CA that signs the provider's certificate, when it is not a
    /// public one. Only this CA is trusted then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// A PEM file on the hub's machine holding the hub's client certificate
    /// and key toward this provider (mutual TLS). The key never enters the
    /// catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_identity_file: Option<String>,
}

/// Size, concurrency and rate limits toward the provider (the bulkhead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceLimits {
    /// Largest request body the hub sends.
    pub max_request_bytes: u32,
    /// Largest answer the hub reads; a longer one is a provider error.
    pub max_response_bytes: u32,
    /// Calls in flight to the provider at once, across all consumers; more
    /// are refused at once (`provider_unavailable`), never queued.
    pub max_concurrent: u32,
    /// Calls per second to the provider, with bursts of as many.
    pub rate_per_sec: u32,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        ServiceLimits {
            max_request_bytes: 64 * 1024,
            max_response_bytes: 1024 * 1024,
            max_concurrent: 64,
            rate_per_sec: 1_000,
        }
    }
}

/// The circuit breaker, with resilience4j's `CircuitBreakerConfig`
/// semantics (count-based sliding window).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    /// `slidingWindowSize`: the last N calls are counted.
    pub window: u32,
    /// `minimumNumberOfCalls`: no rate is computed below this many.
    pub min_calls: u32,
    /// `failureRateThreshold`, percent: open at or above it.
    pub failure_rate_pct: u32,
    /// `slowCallDurationThreshold`, milliseconds.
    pub slow_call_ms: u64,
    /// `slowCallRateThreshold`, percent: open at or above it.
    pub slow_call_rate_pct: u32,
    /// `waitDurationInOpenState`, milliseconds.
    pub wait_open_ms: u64,
    /// `permittedNumberOfCallsInHalfOpenState`.
    pub half_open_calls: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        // resilience4j's defaults but for the window (100 there): a
        // department's validation API sees tens of calls a minute, and a
        // window of 100 would take minutes to notice it is down.
        BreakerSettings {
            window: 20,
            min_calls: 10,
            failure_rate_pct: 50,
            slow_call_ms: 60_000,
            slow_call_rate_pct: 100,
            wait_open_ms: 60_000,
            half_open_calls: 10,
        }
    }
}

/// Retries of idempotent endpoints, under a retry budget (Envoy's
/// `retry_budget`): retries in flight may be at most `budget_pct` percent
/// of calls in flight, but `min_concurrent` are always allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Attempts in all, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// Wait before a retry, in milliseconds (doubled each time, with jitter).
    pub backoff_ms: u64,
    /// Envoy's `budget_percent`.
    pub budget_pct: u32,
    /// Envoy's `min_retry_concurrency`.
    pub min_concurrent: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        // Envoy's budget defaults (20 %, 3).
        RetrySettings {
            max_attempts: 2,
            backoff_ms: 25,
            budget_pct: 20,
            min_concurrent: 3,
        }
    }
}

/// A service as the directory holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceRecord {
    /// The resource code, e.g. `302/000101`.
    pub resource: String,
    pub provider: String,
    pub name: String,
    pub service: ServiceSpec,
    /// Incremented on every change.
    pub version: i64,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

/// What the data office changes to switch a service on or off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSwitch {
    pub enabled: bool,
    /// Shown to callers while disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

impl ServiceSpec {
    /// Checks the definition against the resource it belongs to, without IO:
    /// every item named exists, path templates and parameters agree, keys
    /// are text items, limits are in range. Errors name the field, e.g.
    /// `service.endpoints[1].response[0].pointer`.
    pub fn check(&self, resource: &ResourceSpec) -> Result<()> {
        let items: HashMap<&str, &DataItem> = resource
            .items
            .iter()
            .map(|i| (i.name.as_str(), i))
            .collect();
        check_base_url(&self.base_url)?;
        if self.endpoints.is_empty() {
            return Err(invalid(
                "endpoints",
                "a service needs at least one endpoint",
            ));
        }
        let mut names = BTreeSet::new();
        for (e, ep) in self.endpoints.iter().enumerate() {
            let at = |f: &str| format!("service.endpoints[{e}].{f}");
            check_endpoint_name(&at("name"), &ep.name)?;
            if !names.insert(ep.name.as_str()) {
                return Err(invalid(
                    &format!("endpoints[{e}].name"),
                    format!("duplicate endpoint '{}'", ep.name),
                ));
            }
            check_endpoint(ep, &items, &at)?;
        }
        if let Some(ca) = &self.tls.ca_pem
            && !ca.contains("-----BEGIN CERTIFICATE-----")
        {
            return Err(invalid("tls.ca_pem", "not a PEM certificate"));
        }
        if self.tls.client_identity_file.as_deref() == Some("") {
            return Err(invalid("tls.client_identity_file", "must not be empty"));
        }
        if !self.base_url.starts_with("https://")
            && (self.tls.ca_pem.is_some() || self.tls.client_identity_file.is_some())
        {
            return Err(invalid("tls", "TLS settings need an https:// base_url"));
        }
        let l = &self.limits;
        for (field, v, min, max) in [
            (
                "limits.max_request_bytes",
                l.max_request_bytes,
                16,
                16 << 20,
            ),
            (
                "limits.max_response_bytes",
                l.max_response_bytes,
                16,
                64 << 20,
            ),
            ("limits.max_concurrent", l.max_concurrent, 1, 100_000),
            ("limits.rate_per_sec", l.rate_per_sec, 1, 1_000_000),
        ] {
            in_range(field, u64::from(v), min, max)?;
        }
        let b = &self.breaker;
        in_range("breaker.window", b.window.into(), 1, 10_000)?;
        in_range("breaker.min_calls", b.min_calls.into(), 1, b.window.into())?;
        in_range(
            "breaker.failure_rate_pct",
            b.failure_rate_pct.into(),
            1,
            100,
        )?;
        in_range("breaker.slow_call_ms", b.slow_call_ms, 1, 3_600_000)?;
        in_range(
            "breaker.slow_call_rate_pct",
            b.slow_call_rate_pct.into(),
            1,
            100,
        )?;
        in_range("breaker.wait_open_ms", b.wait_open_ms, 1, 3_600_000)?;
        in_range(
            "breaker.half_open_calls",
            b.half_open_calls.into(),
            1,
            1_000,
        )?;
        let r = &self.retry;
        in_range("retry.max_attempts", r.max_attempts.into(), 1, 5)?;
        in_range("retry.backoff_ms", r.backoff_ms, 0, 10_000)?;
        in_range("retry.budget_pct", r.budget_pct.into(), 0, 100)?;
        in_range("retry.min_concurrent", r.min_concurrent.into(), 0, 1_000)?;
        if let Some(n) = &self.disabled_notice
            && n.chars().count() > 500
        {
            return Err(invalid("disabled_notice", "at most 500 characters"));
        }
        if let Some(cap) = self.log_body_bytes {
            in_range("log_body_bytes", cap.into(), 1, 65_536)?;
        }
        Ok(())
    }
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    let field = if field.starts_with("service.") {
        field.to_string()
    } else {
        format!("service.{field}")
    };
    Error::invalid(field, message)
}

fn in_range(field: &str, v: u64, min: u64, max: u64) -> Result<()> {
    if v < min || v > max {
        return Err(invalid(field, format!("{v} is out of range ({min}–{max})")));
    }
    Ok(())
}

fn check_base_url(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let Some(rest) = rest else {
        return Err(invalid(
            "base_url",
            format!("'{url}' must start with http:// or https://"),
        ));
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || rest.contains(['?', '#', ' ']) || url.ends_with('/') {
        return Err(invalid(
            "base_url",
            format!(
                "'{url}' must be scheme://host[:port][/path], with no query and no trailing '/'"
            ),
        ));
    }
    Ok(())
}

fn check_endpoint_name(field: &str, name: &str) -> Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    if !ok {
        return Err(invalid(
            field,
            format!("'{name}' is not an endpoint name (lowercase letter, then a-z, 0-9, '-')"),
        ));
    }
    Ok(())
}

fn check_endpoint(
    ep: &Endpoint,
    items: &HashMap<&str, &DataItem>,
    at: &dyn Fn(&str) -> String,
) -> Result<()> {
    if !ep.path.starts_with('/') || ep.path.contains(['?', '#', ' ']) {
        return Err(invalid(
            &at("path"),
            format!("'{}' must start with '/' and hold no query", ep.path),
        ));
    }
    let placeholders = path_placeholders(&ep.path).map_err(|m| invalid(&at("path"), m))?;
    let mut seen = BTreeSet::new();
    for (p, param) in ep.params.iter().enumerate() {
        let field = |f: &str| at(&format!("params[{p}].{f}"));
        let Some(item) = items.get(param.item.as_str()) else {
            return Err(invalid(
                &field("item"),
                format!("'{}' is not an item of the resource", param.item),
            ));
        };
        if !seen.insert(param.item.as_str()) {
            return Err(invalid(
                &field("item"),
                format!("parameter '{}' appears twice", param.item),
            ));
        }
        match param.location {
            ParamIn::Path if !placeholders.contains(param.item.as_str()) => {
                return Err(invalid(
                    &field("in"),
                    format!("the path has no {{{}}}", param.item),
                ));
            }
            ParamIn::Path if !param.required => {
                return Err(invalid(
                    &field("required"),
                    "path parameters are always required",
                ));
            }
            ParamIn::Body if ep.method == HttpMethod::Get => {
                return Err(invalid(&field("in"), "a GET endpoint has no body"));
            }
            _ => {}
        }
        if param.key.is_some() && item.data_type != "Utf8" {
            return Err(invalid(
                &field("key"),
                format!(
                    "a key is a text item; '{}' is {}",
                    item.name, item.data_type
                ),
            ));
        }
        scalar_type(&item.data_type).ok_or_else(|| {
            invalid(
                &field("item"),
                format!(
                    "'{}' is {}: parameters and fields are Utf8, Int64, Int32, Float64, Boolean or Date32",
                    item.name, item.data_type
                ),
            )
        })?;
    }
    for name in &placeholders {
        if !ep
            .params
            .iter()
            .any(|p| p.location == ParamIn::Path && p.item == *name)
        {
            return Err(invalid(
                &at("path"),
                format!("{{{name}}} is not a path parameter of the endpoint"),
            ));
        }
    }
    if ep.response.is_empty() {
        return Err(invalid(
            &at("response"),
            "an endpoint needs at least one response field",
        ));
    }
    let mut fields = BTreeSet::new();
    for (f, field) in ep.response.iter().enumerate() {
        let at = |x: &str| at(&format!("response[{f}].{x}"));
        let Some(item) = items.get(field.item.as_str()) else {
            return Err(invalid(
                &at("item"),
                format!("'{}' is not an item of the resource", field.item),
            ));
        };
        if !fields.insert(field.item.as_str()) {
            return Err(invalid(
                &at("item"),
                format!("field '{}' appears twice", field.item),
            ));
        }
        scalar_type(&item.data_type).ok_or_else(|| {
            invalid(
                &at("item"),
                format!(
                    "'{}' is {}: fields are Utf8, Int64, Int32, Float64, Boolean or Date32",
                    item.name, item.data_type
                ),
            )
        })?;
        if !field.pointer.is_empty() && !field.pointer.starts_with('/') {
            return Err(invalid(
                &at("pointer"),
                format!("'{}' is not a JSON pointer (RFC 6901)", field.pointer),
            ));
        }
    }
    if ep.timeout_ms == 0 || ep.timeout_ms > MAX_TIMEOUT_MS {
        return Err(invalid(
            &at("timeout_ms"),
            format!("{} is out of range (1–{MAX_TIMEOUT_MS})", ep.timeout_ms),
        ));
    }
    if let Some(ttl) = ep.cache_ttl_ms {
        if !ep.is_idempotent() {
            return Err(invalid(
                &at("cache_ttl_ms"),
                "only idempotent endpoints are cached",
            ));
        }
        in_range(&at("cache_ttl_ms"), ttl, 1, 86_400_000)?;
    }
    Ok(())
}

/// The `{name}`s of a path template.
fn path_placeholders(path: &str) -> Result<BTreeSet<&str>, String> {
    let mut out = BTreeSet::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("'{path}' has an unclosed '{{'"))?;
        let name = &after[..close];
        if name.is_empty() || name.contains(['{', '/']) {
            return Err(format!("'{path}' has an empty or broken {{…}}"));
        }
        out.insert(name);
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("'{path}' has a '}}' without '{{'"));
    }
    Ok(out)
}

/// The JSON shape of an item's Arrow type, for the types a service may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Text,
    Integer,
    Number,
    Boolean,
    /// `YYYY-MM-DD` text.
    Date,
}

/// The JSON shape of `data_type`, or none when a service cannot carry it.
pub fn scalar_type(data_type: &str) -> Option<Scalar> {
    Some(match data_type {
        "Utf8" => Scalar::Text,
        "Int64" | "Int32" => Scalar::Integer,
        "Float64" => Scalar::Number,
        "Boolean" => Scalar::Boolean,
        "Date32" => Scalar::Date,
        _ => return None,
    })
}

/// A draft registration from a provider's OpenAPI 3 document: one endpoint
/// per `get` / `post` operation with an `operationId`, its parameters and
/// its 200 answer's top-level properties as items. Items are `conditional`
/// and `internal` until the data office reviews them, and the resource is a
/// `draft`: nothing can be called before it is published.
pub fn from_openapi(
    doc: &serde_json::Value,
    resource: DraftResource,
    base_url: Option<String>,
) -> Result<ServiceRegistration> {
    use serde_json::Value;
    let version = doc.get("openapi").and_then(Value::as_str).unwrap_or("");
    if !version.starts_with("3.") {
        return Err(Error::invalid(
            "openapi",
            format!("expected an OpenAPI 3 document, got version '{version}'"),
        ));
    }
    let base_url = match base_url {
        Some(u) => u,
        None => doc
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .map(|u| u.trim_end_matches('/').to_string())
            .ok_or_else(|| {
                Error::invalid("servers", "the document names no server; give --base-url")
            })?,
    };
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::invalid("paths", "the document has no paths"))?;
    let mut items: Vec<DataItem> = Vec::new();
    let mut add_item = |name: &str, schema: &Value, description: &str| -> Result<String> {
        let name = item_name(name);
        if !items.iter().any(|i| i.name == name) {
            let data_type = match (
                schema.get("type").and_then(Value::as_str),
                schema.get("format").and_then(Value::as_str),
            ) {
                (Some("integer"), Some("int32")) => "Int32",
                (Some("integer"), _) => "Int64",
                (Some("number"), _) => "Float64",
                (Some("boolean"), _) => "Boolean",
                (Some("string"), Some("date")) => "Date32",
                _ => "Utf8",
            };
            items.push(DataItem {
                name: name.clone(),
                label: if description.is_empty() {
                    name.clone()
                } else {
                    description.chars().take(100).collect()
                },
                data_type: data_type.to_string(),
                description: format!(
                    "imported from the provider's OpenAPI document; review {name}"
                ),
                sensitivity: tongban_policies::Sensitivity::Internal,
                share_type: tongban_policies::ShareType::Conditional,
                share_condition: Some("an approved need for the matter (to be reviewed)".into()),
                legal_basis: None,
                mask: None,
            });
        }
        Ok(name)
    };
    let mut endpoints = Vec::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().into_iter().flatten() {
            let method = match method.as_str() {
                "get" => HttpMethod::Get,
                "post" => HttpMethod::Post,
                _ => continue,
            };
            let id = op
                .get("operationId")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    Error::invalid(
                        format!("paths.{path}.{}", method_word(method)),
                        "an operation needs an operationId to become an endpoint",
                    )
                })?;
            let mut params = Vec::new();
            let mut template = path.clone();
            for p in op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(name), Some(loc)) = (
                    p.get("name").and_then(Value::as_str),
                    p.get("in").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let location = match loc {
                    "path" => ParamIn::Path,
                    "query" => ParamIn::Query,
                    _ => continue,
                };
                let schema = p.get("schema").cloned().unwrap_or(Value::Null);
                let item = add_item(
                    name,
                    &schema,
                    p.get("description").and_then(Value::as_str).unwrap_or(""),
                )?;
                if location == ParamIn::Path {
                    template = template.replace(&format!("{{{name}}}"), &format!("{{{item}}}"));
                }
                params.push(Param {
                    key: key_kind_of(&item),
                    item,
                    location,
                    required: location == ParamIn::Path
                        || p.get("required").and_then(Value::as_bool).unwrap_or(false),
                });
            }
            if let Some(props) = resolve(
                doc,
                op.pointer("/requestBody/content/application~1json/schema"),
            )
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            {
                for (name, schema) in props {
                    let schema = resolve(doc, Some(schema)).unwrap_or(schema);
                    let item = add_item(
                        name,
                        schema,
                        schema
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or(""),
                    )?;
                    params.push(Param {
                        key: key_kind_of(&item),
                        item,
                        location: ParamIn::Body,
                        required: true,
                    });
                }
            }
            let answer = resolve(
                doc,
                op.pointer("/responses/200/content/application~1json/schema"),
            );
            let mut response = Vec::new();
            for (name, schema) in answer
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let schema = resolve(doc, Some(schema)).unwrap_or(schema);
                if matches!(
                    schema.get("type").and_then(Value::as_str),
                    Some("object" | "array")
                ) {
                    continue;
                }
                let item = add_item(
                    name,
                    schema,
                    schema
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                )?;
                response.push(Field {
                    pointer: format!("/{}", name.replace('~', "~0").replace('/', "~1")),
                    item,
                    required: false,
                });
            }
            endpoints.push(Endpoint {
                name: endpoint_name(id),
                summary: op
                    .get("summary")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                method,
                path: template,
                params,
                response,
                timeout_ms: default_timeout_ms(),
                idempotent: None,
                cache_ttl_ms: None,
            });
        }
    }
    if endpoints.is_empty() {
        return Err(Error::invalid(
            "paths",
            "no get or post operation in the document",
        ));
    }
    let spec = ResourceSpec {
        code: resource.code,
        name: resource.name.unwrap_or_else(|| {
            doc.pointer("/info/title")
                .and_then(Value::as_str)
                .unwrap_or("imported service")
                .to_string()
        }),
        provider: resource.provider,
        summary: doc
            .pointer("/info/description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        category: crate::model::Category::Department,
        base_library: None,
        format: crate::model::Format::SelfDescribing,
        update_cycle: crate::model::UpdateCycle::Realtime,
        publish_date: None,
        key_items: Vec::new(),
        division_item: None,
        items,
        status: Some(Status::Draft),
    };
    let service = ServiceSpec {
        base_url,
        endpoints,
        tls: BackendTls::default(),
        limits: ServiceLimits::default(),
        breaker: BreakerSettings::default(),
        retry: RetrySettings::default(),
        enabled: true,
        disabled_notice: None,
        log_body_bytes: None,
    };
    crate::validate::resource(&spec)?;
    service.check(&spec)?;
    Ok(ServiceRegistration {
        resource: spec,
        service,
    })
}

/// Who a draft from [`from_openapi`] belongs to.
#[derive(Debug, Clone)]
pub struct DraftResource {
    /// A department resource code, e.g. `302/000101`.
    pub code: String,
    pub provider: String,
    /// Defaults to the document's title.
    pub name: Option<String>,
}

fn method_word(m: HttpMethod) -> &'static str {
    match m {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
    }
}

/// Follows a local `$ref` (`#/components/schemas/X`).
fn resolve<'a>(
    doc: &'a serde_json::Value,
    schema: Option<&'a serde_json::Value>,
) -> Option<&'a serde_json::Value> {
    let schema = schema?;
    match schema.get("$ref").and_then(serde_json::Value::as_str) {
        Some(r) => doc.pointer(r.strip_prefix('#')?),
        None => Some(schema),
    }
}

/// `citizenId`, `Citizen-ID` → `citizen_id`.
fn item_name(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            if !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = false;
        }
    }
    let out = out.trim_matches('_').to_string();
    match out.chars().next() {
        Some(c) if c.is_ascii_lowercase() => out.chars().take(63).collect(),
        _ => format!("f_{out}").chars().take(63).collect(),
    }
}

fn endpoint_name(id: &str) -> String {
    let n = item_name(id).replace('_', "-");
    n.chars().take(63).collect()
}

fn key_kind_of(item: &str) -> Option<KeyKind> {
    match item {
        "citizen_id" | "id_number" | "sfzh" => Some(KeyKind::CitizenId),
        "credit_code" | "uscc" | "tyshxydm" => Some(KeyKind::CreditCode),
        _ => None,
    }
}

tongban_policies::str_enum!(HttpMethod, "method", {
    HttpMethod::Get => "GET",
    HttpMethod::Post => "POST",
});

#[cfg(test)]
mod tests;
