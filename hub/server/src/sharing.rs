//! The Delta Sharing protocol server, under `/delta-sharing/`, so pandas,
//! Spark and BI tools read subscriptions as they read any shared table.
//!
//! - A recipient is a department; its bearer token is any of its tokens
//!   (`POST /v1/sharing/profile` makes a profile file with a new one).
//! - Its tables are its active pull subscriptions: share = the resource's
//!   base library (`population`, `legal_entity`, `geospatial`, `e_licence`)
//!   or category (`theme`, `department`); schema = the provider department;
//!   table = the subscription's name. A table's versions are the resource's
//!   dataset versions.
//! - Every data request is decided by the subscription's [`Plan`]: the files
//!   behind the signed URLs hold only the permitted rows and items, masked
//!   (see `tongban_delivery::files`) — never the raw version. Queries and change
//!   feeds are audited; refusals too.
//! - Errors are problem+json that also carry Delta Sharing's `errorCode`
//!   and `message`.
//!
//! Supported: list shares / schemas / tables / all-tables with
//! `maxResults` and `pageToken`; table version (`startingTimestamp`);
//! metadata; query with `version` or `timestamp`, `limitHint`,
//! `jsonPredicateHints` (files pruned by their statistics, best effort),
//! `predicateHints` (accepted, not used: SQL hints are optional in the
//! protocol), `maxFiles` / `pageToken` pagination; changes between versions
//! (`startingVersion` / `startingTimestamp` to `endingVersion` /
//! `endingTimestamp`): a version written by an incremental sync is its
//! change set (`cdf` files with `_change_type`), any other version is the
//! previous version removed and the new one added. Responses are the
//! protocol's parquet format.

use super::AppState;
use super::extract::{Caller, Path, Query};
use super::problem::{PROBLEM_JSON, Problem};
use arrow::datatypes::{DataType, SchemaRef};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tongban_catalog::subscriptions::{Subscription, SubscriptionStatus};
use tongban_catalog::{DatasetVersion, Resource, ResourceSpec};
use tongban_core::Code;
use tongban_core::sign::Invalid;
use tongban_delivery::Grant;
use tongban_delivery::apply::Part;
use tongban_delivery::files::{self, Manifest, SharedFile};
use tongban_delivery::plan::{self, Plan};

/// The routes of the protocol.
pub fn routes() -> Router<AppState> {
    const TABLE: &str = "/delta-sharing/shares/{share}/schemas/{schema}/tables/{table}";
    Router::new()
        .route("/delta-sharing/shares", get(list_shares))
        .route("/delta-sharing/shares/{share}", get(get_share))
        .route("/delta-sharing/shares/{share}/schemas", get(list_schemas))
        .route(
            "/delta-sharing/shares/{share}/schemas/{schema}/tables",
            get(list_tables),
        )
        .route("/delta-sharing/shares/{share}/all-tables", get(all_tables))
        .route(&format!("{TABLE}/version"), get(table_version))
        .route(&format!("{TABLE}/metadata"), get(metadata))
        .route(&format!("{TABLE}/query"), post(query))
        .route(&format!("{TABLE}/changes"), get(changes))
        .route("/delta-sharing/files/{token}", get(file))
}

/// A protocol error: problem+json plus Delta Sharing's `errorCode` and
/// `message`, which its clients show.
pub struct SharingError(Problem);

impl From<Problem> for SharingError {
    fn from(p: Problem) -> Self {
        SharingError(p)
    }
}

impl From<tongban_catalog::Error> for SharingError {
    fn from(e: tongban_catalog::Error) -> Self {
        SharingError(e.into())
    }
}

impl IntoResponse for SharingError {
    fn into_response(self) -> Response {
        let p = self.0;
        let code = match p.status {
            400 | 422 => "INVALID_PARAMETER_VALUE",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "RESOURCE_DOES_NOT_EXIST",
            429 => "RESOURCE_LIMIT_EXCEEDED",
            503 => "TEMPORARILY_UNAVAILABLE",
            _ => "INTERNAL_ERROR",
        };
        let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = serde_json::to_value(&p).expect("problems serialise");
        body["errorCode"] = Value::from(code);
        body["message"] = Value::from(p.detail.clone());
        let mut response = (status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

type Result<T, E = SharingError> = std::result::Result<T, E>;

fn bad_request(detail: impl Into<String>) -> SharingError {
    SharingError(Problem::new(Code::InvalidParameter, detail))
}

fn internal(e: impl std::fmt::Display) -> SharingError {
    tracing::error!(error = %e, "delta sharing request failed");
    SharingError(Problem::internal())
}

/// The share a resource is in.
pub fn share_of(spec: &ResourceSpec) -> String {
    spec.base_library
        .map(|b| b.as_str().to_string())
        .unwrap_or_else(|| spec.category.as_str().to_string())
}

/// The schema a resource is in: its provider (dots do not fit in Delta
/// Sharing names, which clients split on dots).
pub fn schema_of(spec: &ResourceSpec) -> String {
    spec.provider.replace('.', "_")
}

/// A recipient's table: one of its active pull subscriptions.
struct Table {
    sub: Subscription,
    resource: Resource,
}

impl Table {
    fn share(&self) -> String {
        share_of(&self.resource.spec)
    }
    fn schema(&self) -> String {
        schema_of(&self.resource.spec)
    }
    fn json(&self) -> Value {
        json!({
            "name": self.sub.spec.name,
            "schema": self.schema(),
            "share": self.share(),
            "shareId": self.share(),
            "id": format!("tongban-sub-{}", self.sub.id),
        })
    }
}

async fn tables(state: &AppState, consumer: &str) -> Result<Vec<Table>> {
    let mut out = Vec::new();
    for sub in state.store.list_subscriptions(Some(consumer)).await? {
        if sub.spec.channel.is_push() || sub.status != SubscriptionStatus::Active {
            continue;
        }
        let resource = state.store.get_resource(&sub.spec.resource).await?;
        out.push(Table { sub, resource });
    }
    Ok(out)
}

async fn table(
    state: &AppState,
    consumer: &str,
    (share, schema, name): (String, String, String),
) -> Result<Table> {
    let missing = || {
        SharingError(Problem::not_found(format!(
            "table '{share}.{schema}.{name}' is not shared with {consumer}"
        )))
    };
    let sub = match state.store.find_subscription(consumer, &name).await {
        Ok(sub) => sub,
        Err(tongban_catalog::Error::NotFound { .. }) => return Err(missing()),
        Err(e) => return Err(e.into()),
    };
    if sub.spec.channel.is_push() {
        return Err(missing());
    }
    let resource = state.store.get_resource(&sub.spec.resource).await?;
    let t = Table { sub, resource };
    if t.share() != share || t.schema() != schema {
        return Err(missing());
    }
    Ok(t)
}

// ---- pagination ------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Paging {
    max_results: Option<i64>,
    page_token: Option<String>,
}

/// Most items in one page when the client does not say.
const PAGE_DEFAULT: i64 = 500;

/// One page of `items`; a page token is the scope and offset, so a token
/// from one listing is refused by another.
fn page<T>(items: Vec<T>, paging: &Paging, scope: &str) -> Result<(Vec<T>, Option<String>)> {
    let size = paging.max_results.unwrap_or(PAGE_DEFAULT);
    if !(0..=1000).contains(&size) {
        return Err(bad_request("maxResults: must be between 0 and 1000"));
    }
    let offset = match &paging.page_token {
        None => 0,
        Some(t) => URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix(&format!("{scope}:"))
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .ok_or_else(|| bad_request("pageToken: not a token of this listing"))?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(size as usize).collect();
    let next = offset + page.len();
    let token =
        (next < total && size > 0).then(|| URL_SAFE_NO_PAD.encode(format!("{scope}:{next}")));
    Ok((page, token))
}

fn listing(items: Vec<Value>, next: Option<String>) -> Response {
    let mut body = json!({ "items": items });
    if let Some(t) = next {
        body["nextPageToken"] = Value::from(t);
    }
    axum::Json(body).into_response()
}

// ---- listings --------------------------------------------------------------

async fn list_shares(
    State(state): State<AppState>,
    Caller(who): Caller,
    Query(paging): Query<Paging>,
) -> Result<Response> {
    let mut shares: Vec<String> = tables(&state, &who.department)
        .await?
        .iter()
        .map(Table::share)
        .collect();
    shares.sort();
    shares.dedup();
    let (items, next) = page(shares, &paging, "shares")?;
    Ok(listing(
        items
            .into_iter()
            .map(|s| json!({"name": s, "id": s}))
            .collect(),
        next,
    ))
}

async fn get_share(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(share): Path<String>,
) -> Result<Response> {
    let known = tables(&state, &who.department)
        .await?
        .iter()
        .any(|t| t.share() == share);
    if !known {
        return Err(SharingError(Problem::not_found(format!(
            "share '{share}' is not shared with {}",
            who.department
        ))));
    }
    Ok(axum::Json(json!({"share": {"name": share, "id": share}})).into_response())
}

async fn list_schemas(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(share): Path<String>,
    Query(paging): Query<Paging>,
) -> Result<Response> {
    let all = tables(&state, &who.department).await?;
    if !all.iter().any(|t| t.share() == share) {
        return Err(SharingError(Problem::not_found(format!(
            "share '{share}' is not shared with {}",
            who.department
        ))));
    }
    let mut schemas: Vec<String> = all
        .iter()
        .filter(|t| t.share() == share)
        .map(Table::schema)
        .collect();
    schemas.sort();
    schemas.dedup();
    let (items, next) = page(schemas, &paging, &format!("schemas/{share}"))?;
    Ok(listing(
        items
            .into_iter()
            .map(|s| json!({"name": s, "share": share}))
            .collect(),
        next,
    ))
}

async fn list_tables(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((share, schema)): Path<(String, String)>,
    Query(paging): Query<Paging>,
) -> Result<Response> {
    let mut found: Vec<Table> = tables(&state, &who.department)
        .await?
        .into_iter()
        .filter(|t| t.share() == share && t.schema() == schema)
        .collect();
    if found.is_empty() {
        return Err(SharingError(Problem::not_found(format!(
            "schema '{share}.{schema}' is not shared with {}",
            who.department
        ))));
    }
    found.sort_by(|a, b| a.sub.spec.name.cmp(&b.sub.spec.name));
    let (items, next) = page(found, &paging, &format!("tables/{share}/{schema}"))?;
    Ok(listing(items.iter().map(Table::json).collect(), next))
}

async fn all_tables(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(share): Path<String>,
    Query(paging): Query<Paging>,
) -> Result<Response> {
    let mut found: Vec<Table> = tables(&state, &who.department)
        .await?
        .into_iter()
        .filter(|t| t.share() == share)
        .collect();
    if found.is_empty() {
        return Err(SharingError(Problem::not_found(format!(
            "share '{share}' is not shared with {}",
            who.department
        ))));
    }
    found.sort_by(|a, b| (a.schema(), &a.sub.spec.name).cmp(&(b.schema(), &b.sub.spec.name)));
    let (items, next) = page(found, &paging, &format!("all-tables/{share}"))?;
    Ok(listing(items.iter().map(Table::json).collect(), next))
}

// ---- versions ----------------------------------------------------------------

/// A resource's versions, oldest first; 404 when none is published yet.
async fn versions(state: &AppState, t: &Table) -> Result<Vec<DatasetVersion>> {
    let mut v = state.store.list_versions(&t.resource.spec.code).await?;
    if v.is_empty() {
        return Err(SharingError(Problem::not_found(format!(
            "'{}' has no published version yet",
            t.resource.spec.code
        ))));
    }
    v.reverse();
    Ok(v)
}

fn parse_timestamp(field: &str, s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            bad_request(format!(
                "{field}: '{s}' is not a timestamp like 2026-11-30T08:00:00Z"
            ))
        })
}

/// The first version published at or after `t`.
fn version_from(versions: &[DatasetVersion], field: &str, t: DateTime<Utc>) -> Result<i64> {
    versions
        .iter()
        .find(|v| v.created_at >= t)
        .map(|v| v.version)
        .ok_or_else(|| bad_request(format!("{field}: no version was published at or after {t}")))
}

/// The version in force at `t`: the last one published at or before it.
fn version_at(versions: &[DatasetVersion], field: &str, t: DateTime<Utc>) -> Result<i64> {
    versions
        .iter()
        .rev()
        .find(|v| v.created_at <= t)
        .map(|v| v.version)
        .ok_or_else(|| {
            bad_request(format!(
                "{field}: the first version was published after {t}"
            ))
        })
}

fn with_version(mut r: Response, version: i64) -> Response {
    r.headers_mut()
        .insert("delta-table-version", HeaderValue::from(version));
    r
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionQuery {
    starting_timestamp: Option<String>,
}

async fn table_version(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(path): Path<(String, String, String)>,
    Query(q): Query<VersionQuery>,
) -> Result<Response> {
    let t = table(&state, &who.department, path).await?;
    let versions = versions(&state, &t).await?;
    let version = match &q.starting_timestamp {
        Some(ts) => version_from(
            &versions,
            "startingTimestamp",
            parse_timestamp("startingTimestamp", ts)?,
        )?,
        None => versions.last().expect("not empty").version,
    };
    Ok(with_version(StatusCode::OK.into_response(), version))
}

// ---- plans, metadata ---------------------------------------------------------

/// The plan of a table's subscription now; a refusal is audited and
/// answered 403 with the rule.
async fn plan_for(state: &AppState, t: &Table, started: std::time::Instant) -> Result<Plan> {
    match plan::plan(&state.access, &state.disputes, &t.sub, Utc::now()) {
        Ok(p) => Ok(p),
        Err(refused) => {
            tongban_delivery::refuse(&state.base, &t.sub, None, &refused, started)
                .await
                .map_err(audit_unavailable)?;
            Err(SharingError(Problem::from(tongban_core::Error::from(
                refused,
            ))))
        }
    }
}

fn audit_unavailable(e: tongban_core::Error) -> SharingError {
    SharingError(Problem::from(e))
}

/// Spark's name of an Arrow type, as Delta schemas spell types.
fn spark_type(dt: &DataType) -> String {
    match dt {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "byte".into(),
        DataType::Int16 => "short".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "long".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        // Delta readers know `timestamp`; the files keep the exact unit.
        DataType::Timestamp(..) => "timestamp".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Binary | DataType::LargeBinary => "binary".into(),
        _ => "string".into(),
    }
}

/// The Delta `schemaString` of a released schema.
pub fn schema_string(schema: &SchemaRef) -> String {
    let fields: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| {
            json!({
                "name": f.name(),
                "type": spark_type(f.data_type()),
                "nullable": f.is_nullable(),
                "metadata": {},
            })
        })
        .collect();
    json!({"type": "struct", "fields": fields}).to_string()
}

fn protocol_line() -> Value {
    json!({"protocol": {"minReaderVersion": 1}})
}

fn metadata_line(t: &Table, schema: &SchemaRef, version: i64) -> Value {
    json!({"metaData": {
        "id": format!("tongban-sub-{}", t.sub.id),
        "name": t.sub.spec.name,
        "description": t.resource.spec.name,
        "format": {"provider": "parquet"},
        "schemaString": schema_string(schema),
        "partitionColumns": [],
        "configuration": {"enableChangeDataFeed": "true"},
        "version": version,
    }})
}

fn ndjson(lines: Vec<Value>, version: i64) -> Response {
    let mut body = Vec::with_capacity(lines.len() * 256);
    for line in &lines {
        serde_json::to_writer(&mut body, line).expect("json lines serialise");
        body.push(b'\n');
    }
    let mut r = (
        [(header::CONTENT_TYPE, "application/x-ndjson; charset=utf-8")],
        body,
    )
        .into_response();
    r.headers_mut()
        .insert("delta-table-version", HeaderValue::from(version));
    r
}

async fn metadata(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(path): Path<(String, String, String)>,
) -> Result<Response> {
    let started = std::time::Instant::now();
    let t = table(&state, &who.department, path).await?;
    let versions = versions(&state, &t).await?;
    let plan = plan_for(&state, &t, started).await?;
    let schema = tongban_delivery::apply::released_schema(&t.resource.spec, &plan, Part::Snapshot)
        .map_err(internal)?;
    let version = versions.last().expect("not empty").version;
    Ok(ndjson(
        vec![protocol_line(), metadata_line(&t, &schema, version)],
        version,
    ))
}

// ---- files -------------------------------------------------------------------

/// A file action's fields, with a fresh signed URL.
fn file_json(
    state: &AppState,
    plan: &Plan,
    f: &SharedFile,
    version: &DatasetVersion,
    with_stats: bool,
) -> Value {
    let ttl_ms = (state.delivery.config().url_ttl_s * 1000) as i64;
    let expires_ms = Utc::now().timestamp_millis() + ttl_ms;
    let token = state.delivery.signer().sign(&Grant {
        subscription: plan.subscription.id,
        fingerprint: plan.fingerprint.clone(),
        path: f.path.clone(),
        expires_ms,
    });
    let mut v = json!({
        "url": format!("{}/delta-sharing/files/{token}", state.delivery.public_url()),
        "id": f.id,
        "partitionValues": {},
        "size": f.size,
        "version": version.version,
        "timestamp": version.created_at.timestamp_millis(),
        "expirationTimestamp": expires_ms,
    });
    if with_stats {
        v["stats"] = Value::from(f.stats.to_string());
    }
    v
}

async fn manifest(
    state: &AppState,
    t: &Table,
    plan: &Plan,
    version: &DatasetVersion,
    part: Part,
) -> Result<Option<Manifest>> {
    let schema =
        tongban_delivery::apply::released_schema(&t.resource.spec, plan, part).map_err(internal)?;
    files::materialize(
        &state.datasets,
        state.delivery.config().file_rows,
        schema,
        plan,
        version,
        part,
        state.hash_key.clone(),
    )
    .await
    .map_err(internal)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryRequest {
    #[serde(default)]
    #[allow(dead_code)] // SQL hints are optional in the protocol; not used.
    predicate_hints: Option<Vec<String>>,
    #[serde(default)]
    json_predicate_hints: Option<String>,
    #[serde(default)]
    limit_hint: Option<i64>,
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    starting_version: Option<i64>,
    #[serde(default)]
    max_files: Option<i64>,
    #[serde(default)]
    page_token: Option<String>,
}

async fn query(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(path): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response> {
    let started = std::time::Instant::now();
    let req: QueryRequest = if body.iter().all(u8::is_ascii_whitespace) {
        QueryRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| bad_request(format!("body: {e}")))?
    };
    if req.starting_version.is_some() {
        return Err(bad_request(
            "startingVersion: streaming queries are not supported; read changes from the changes endpoint",
        ));
    }
    if req.version.is_some() && req.timestamp.is_some() {
        return Err(bad_request("give version or timestamp, not both"));
    }
    if req.limit_hint.is_some_and(|l| l < 0) {
        return Err(bad_request("limitHint: must not be negative"));
    }
    if req.max_files.is_some_and(|m| m <= 0) {
        return Err(bad_request("maxFiles: must be positive"));
    }
    let t = table(&state, &who.department, path).await?;
    let versions = versions(&state, &t).await?;
    // A page token pins the version of the first page.
    let (token_version, offset) = match &req.page_token {
        None => (None, 0),
        Some(tok) => {
            let (v, o) = parse_query_token(tok)?;
            (Some(v), o)
        }
    };
    let number = match (token_version, req.version, &req.timestamp) {
        (Some(v), _, _) => v,
        (None, Some(v), _) => v,
        (None, None, Some(ts)) => {
            version_at(&versions, "timestamp", parse_timestamp("timestamp", ts)?)?
        }
        (None, None, None) => versions.last().expect("not empty").version,
    };
    let version = versions
        .iter()
        .find(|v| v.version == number)
        .ok_or_else(|| {
            SharingError(Problem::not_found(format!(
                "version {number} of '{}' does not exist",
                t.resource.spec.code
            )))
        })?
        .clone();
    let plan = plan_for(&state, &t, started).await?;
    let schema = tongban_delivery::apply::released_schema(&t.resource.spec, &plan, Part::Snapshot)
        .map_err(internal)?;
    let manifest = manifest(&state, &t, &plan, &version, Part::Snapshot)
        .await?
        .expect("snapshots exist");
    let mut chosen: Vec<&SharedFile> = match req.json_predicate_hints.as_deref() {
        Some(hints) => match serde_json::from_str::<Value>(hints) {
            Ok(p) => manifest
                .files
                .iter()
                .filter(|f| tongban_delivery::predicate::may_match(&p, &f.stats))
                .collect(),
            Err(e) => {
                // Hints are best effort: a hint the hub cannot read prunes nothing.
                tracing::debug!(error = %e, "unreadable jsonPredicateHints ignored");
                manifest.files.iter().collect()
            }
        },
        None => manifest.files.iter().collect(),
    };
    if let Some(limit) = req.limit_hint {
        let mut rows = 0u64;
        chosen.retain(|f| {
            let keep = rows < limit as u64;
            rows += f.rows;
            keep
        });
    }
    let mut next = None;
    if req.max_files.is_some() || req.page_token.is_some() {
        let size = req.max_files.unwrap_or(i64::MAX) as usize;
        let total = chosen.len();
        chosen = chosen.into_iter().skip(offset).take(size).collect();
        let after = offset + chosen.len();
        if after < total {
            next = Some(URL_SAFE_NO_PAD.encode(format!("query:{}:{after}", version.version)));
        }
    }
    tongban_delivery::record(
        &state.access,
        &plan,
        version.version,
        tongban_audit::Outcome::Released,
        started,
    )
    .await
    .map_err(audit_unavailable)?;
    let mut lines = vec![protocol_line(), metadata_line(&t, &schema, version.version)];
    for f in chosen {
        lines.push(json!({"file": file_json(&state, &plan, f, &version, true)}));
    }
    if req.max_files.is_some() || req.page_token.is_some() {
        let mut end = json!({});
        if let Some(n) = next {
            end["nextPageToken"] = Value::from(n);
        }
        lines.push(json!({"endStreamAction": end}));
    }
    let _ = state.store.advance_cursor(t.sub.id, version.version).await;
    Ok(ndjson(lines, version.version))
}

fn parse_query_token(token: &str) -> Result<(i64, usize)> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let rest = s.strip_prefix("query:")?;
            let (v, o) = rest.split_once(':')?;
            Some((v.parse().ok()?, o.parse().ok()?))
        })
        .ok_or_else(|| bad_request("pageToken: not a token of this query"))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangesQuery {
    starting_version: Option<i64>,
    starting_timestamp: Option<String>,
    ending_version: Option<i64>,
    ending_timestamp: Option<String>,
    #[allow(dead_code)] // Metadata never changes within a subscription's plan.
    include_historical_metadata: Option<bool>,
}

async fn changes(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(path): Path<(String, String, String)>,
    Query(q): Query<ChangesQuery>,
) -> Result<Response> {
    let started = std::time::Instant::now();
    let t = table(&state, &who.department, path).await?;
    let versions = versions(&state, &t).await?;
    let latest = versions.last().expect("not empty").version;
    let start = match (q.starting_version, &q.starting_timestamp) {
        (Some(_), Some(_)) => {
            return Err(bad_request(
                "give startingVersion or startingTimestamp, not both",
            ));
        }
        (Some(v), None) => v,
        (None, Some(ts)) => version_from(
            &versions,
            "startingTimestamp",
            parse_timestamp("startingTimestamp", ts)?,
        )?,
        (None, None) => {
            return Err(bad_request(
                "startingVersion or startingTimestamp is required",
            ));
        }
    };
    let end = match (q.ending_version, &q.ending_timestamp) {
        (Some(_), Some(_)) => {
            return Err(bad_request(
                "give endingVersion or endingTimestamp, not both",
            ));
        }
        (Some(v), None) => v,
        (None, Some(ts)) => version_at(
            &versions,
            "endingTimestamp",
            parse_timestamp("endingTimestamp", ts)?,
        )?,
        (None, None) => latest,
    };
    if start < 0 || start > latest {
        return Err(bad_request(format!(
            "startingVersion: {start} is not a version of this table (latest {latest})"
        )));
    }
    if end < start {
        return Err(bad_request(format!(
            "endingVersion {end} is before startingVersion {start}"
        )));
    }
    let end = end.min(latest);
    let plan = plan_for(&state, &t, started).await?;
    let schema = tongban_delivery::apply::released_schema(&t.resource.spec, &plan, Part::Snapshot)
        .map_err(internal)?;
    let mut lines = vec![protocol_line(), metadata_line(&t, &schema, start)];
    let by_number = |n: i64| versions.iter().find(|v| v.version == n);
    for n in start..=end {
        let Some(version) = by_number(n) else {
            continue;
        };
        if let Some(changes) = manifest(&state, &t, &plan, version, Part::Changes).await? {
            for f in &changes.files {
                lines.push(json!({"cdf": file_json(&state, &plan, f, version, false)}));
            }
            continue;
        }
        // A full version: the previous one's rows go, this one's come.
        if let Some(previous) = by_number(n - 1) {
            let old = manifest(&state, &t, &plan, previous, Part::Snapshot)
                .await?
                .expect("snapshots exist");
            for f in &old.files {
                let mut action = file_json(&state, &plan, f, previous, false);
                action["version"] = Value::from(version.version);
                action["timestamp"] = Value::from(version.created_at.timestamp_millis());
                lines.push(json!({"remove": action}));
            }
        }
        let new = manifest(&state, &t, &plan, version, Part::Snapshot)
            .await?
            .expect("snapshots exist");
        for f in &new.files {
            lines.push(json!({"add": file_json(&state, &plan, f, version, true)}));
        }
    }
    tongban_delivery::record(
        &state.access,
        &plan,
        end,
        tongban_audit::Outcome::Released,
        started,
    )
    .await
    .map_err(audit_unavailable)?;
    let _ = state.store.advance_cursor(t.sub.id, end).await;
    Ok(ndjson(lines, start))
}

/// A shared file, by its signed URL. The URL is the credential; the hub
/// still checks that the subscription is active and decided the same way
/// (the fingerprint) before it serves the file. Ranges and `HEAD` work as
/// on an object store, which Parquet readers rely on.
async fn file(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Result<Response> {
    let now = Utc::now();
    let grant = state
        .delivery
        .signer()
        .verify::<Grant>(&token, now.timestamp_millis())
        .map_err(|e| {
            let detail = match e {
                Invalid::Expired => "the file URL has expired; query the table again",
                Invalid::BadSignature | Invalid::Malformed => "not a valid file URL",
            };
            SharingError(Problem::forbidden(detail))
        })?;
    let sub = state.store.get_subscription(grant.subscription).await?;
    // A file leaves only if the pipeline decides the same way now.
    let current = plan::plan(&state.access, &state.disputes, &sub, now)
        .map_err(|refused| SharingError(Problem::from(tongban_core::Error::from(refused))))?;
    if current.fingerprint != grant.fingerprint {
        return Err(SharingError(Problem::forbidden(
            "the policy for this subscription has changed since the URL was made; query the table again",
        )));
    }
    // The path comes from a signed grant; refuse anything but plain names.
    if grant
        .path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(SharingError(Problem::forbidden("not a valid file URL")));
    }
    // Only what the answer needs of the request: the body is not held
    // across the store's awaits.
    let range = request
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let head = request.method() == axum::http::Method::HEAD;
    drop(request);
    serve_object(
        &state.datasets,
        &files::object_path(&grant.path),
        range.as_deref(),
        head,
    )
    .await
}

/// Serves an object of the dataset store as a static file server does:
/// `HEAD`; one byte range (`206`, or `416` when it starts past the end);
/// the whole object otherwise (several ranges, or a malformed `Range`,
/// are answered with the whole file, as RFC 9110 allows). The body streams
/// from the store, so a replica on S3 never holds a file in memory.
async fn serve_object(
    datasets: &tongban_datasets::DatasetStore,
    path: &object_store::path::Path,
    range: Option<&str>,
    head: bool,
) -> Result<Response> {
    use object_store::{GetOptions, GetRange, ObjectStoreExt};
    let store = datasets.object_store();
    let meta = match store.head(path).await {
        Ok(meta) => meta,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(SharingError(Problem::not_found(
                "the file is gone; query the table again",
            )));
        }
        Err(e) => return Err(internal(e)),
    };
    let size = meta.size;
    let wanted = range.and_then(|v| byte_range(v, size));
    let (status, range) = match wanted {
        None => (StatusCode::OK, 0..size),
        Some(Some(range)) => (StatusCode::PARTIAL_CONTENT, range),
        Some(None) => {
            let mut problem = Problem::new(
                Code::RangeNotSatisfiable,
                format!("the file has {size} bytes"),
            )
            .into_response();
            problem.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
            );
            return Ok(problem);
        }
    };
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/vnd.apache.parquet")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, range.end - range.start)
        .header(
            header::LAST_MODIFIED,
            meta.last_modified
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string(),
        );
    if let Some(etag) = meta
        .e_tag
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        response = response.header(header::ETAG, etag);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{size}", range.start, range.end - 1),
        );
    }
    if head || range.is_empty() {
        return response.body(Body::empty()).map_err(internal);
    }
    let options = GetOptions {
        range: Some(GetRange::Bounded(range)),
        ..Default::default()
    };
    let body = store
        .get_opts(path, options)
        .await
        .map_err(internal)?
        .into_stream();
    response.body(Body::from_stream(body)).map_err(internal)
}

/// The one byte range of a `Range` header, for an object of `size` bytes:
/// `None` if the header is to be ignored (malformed, another unit, several
/// ranges), `Some(None)` if it cannot be satisfied.
fn byte_range(header: &str, size: u64) -> Option<Option<std::ops::Range<u64>>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // The last n bytes.
        let n: u64 = last.parse().ok()?;
        return Some((n > 0 && size > 0).then(|| size.saturating_sub(n)..size));
    }
    let start: u64 = first.parse().ok()?;
    let end = if last.is_empty() {
        size
    } else {
        let last: u64 = last.parse().ok()?;
        if last < start {
            return None;
        }
        (last + 1).min(size)
    };
    Some((start < size).then_some(start..end))
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn byte_ranges_are_read_as_rfc_9110_says() {
        assert_eq!(byte_range("bytes=0-3", 100), Some(Some(0..4)));
        assert_eq!(byte_range("bytes=96-", 100), Some(Some(96..100)));
        assert_eq!(byte_range("bytes=-8", 100), Some(Some(92..100)));
        assert_eq!(byte_range("bytes=-800", 100), Some(Some(0..100)));
        assert_eq!(byte_range("bytes=90-200", 100), Some(Some(90..100)));
        // Unsatisfiable: starts at or past the end, or an empty suffix.
        assert_eq!(byte_range("bytes=100-", 100), Some(None));
        assert_eq!(byte_range("bytes=-0", 100), Some(None));
        // Ignored: the whole file is sent.
        for ignored in [
            "bytes=5-1",
            "items=0-3",
            "bytes=0-1,4-5",
            "bytes=a-b",
            "bytes=",
        ] {
            assert_eq!(byte_range(ignored, 100), None, "{ignored}");
        }
    }
}
