//! Real-time lookup and verification for the acceptance front office:
//! `POST /v1/lookup/{class}/{seq}` and `POST /v1/verify/{class}/{seq}`.
//!
//! Every request goes through the access pipeline (`tongban_core::access`):
//! keys checked (check digits) before anything else; one policy decision
//! for the caller, matter and mode; quota; rows from the in-memory index;
//! the decision's row filters, projection and masks applied with the
//! `policies` evaluators; a durable audit record before the answer leaves.
//! A row a filter hides answers exactly like a missing key, so a filter
//! never discloses that a row exists.

use super::AppState;
use super::extract::{Caller, Json, Path, Query};
use super::problem::Problem;
use arrow::array::{Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tongban_core::access::{self, Ask, Grant};
use tongban_core::seal;
use tongban_lookup::index::Index;
use tongban_lookup::keys;
use tongban_policies::{Decision, Mode, Release, enforce};
use utoipa::{IntoParams, ToSchema};

/// Most keys in one request; larger sets go through the streaming endpoint.
pub const MAX_KEYS: usize = 1000;

type ApiResult<T> = Result<T, Problem>;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    /// Key values (e.g. citizen ID numbers), at most 1,000.
    #[schema(min_items = 1, max_items = 1000)]
    pub keys: Vec<String>,
    /// Items wanted; empty or absent asks for every item the caller may see.
    #[serde(default)]
    pub items: Vec<String>,
    /// Look up by this secondary item instead of the key (e.g. licences by `holder_id`).
    #[serde(default)]
    pub by: Option<String>,
    /// The matter (事项) code the lookup serves.
    #[schema(pattern = "\\S")]
    pub matter: String,
    /// The case (办件) number.
    #[schema(pattern = "\\S")]
    pub case: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyResult {
    pub key: String,
    pub found: bool,
    /// The permitted, masked items of each matching row. Kept as the JSON
    /// Arrow wrote, so an answer is encoded once, never parsed back.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Box<serde_json::value::RawValue>>,
    /// Items of this record in the answer that an open objection disputes
    /// (异议标注): the provider is checking them. Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disputed: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Denied {
    pub item: String,
    pub rule: String,
    pub reason: String,
}

/// What every answer says about itself: where it comes from, under which
/// decision, and what was not released.
#[derive(Debug, Serialize, ToSchema)]
pub struct Answered {
    pub resource: String,
    /// The dataset version answered from.
    pub version: i64,
    /// When that version was published.
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "tongban_audit::rfc3339::serialize")]
    pub as_of: DateTime<Utc>,
    /// Whether the version is within the provider's refresh promise
    /// (responsibility list); null when the resource has none.
    pub within_sla: Option<bool>,
    pub matter: String,
    pub case: String,
    /// The deciding rule, e.g. `need:12`.
    pub rule: String,
    /// Items asked for and not released, with why.
    pub denied: Vec<Denied>,
}

impl Answered {
    /// The header of an answer from `index` under `grant`: `within_sla`
    /// from the same snapshot of the lists as the decision.
    fn new(index: &Index, matter: String, case: String, grant: &Grant) -> Answered {
        let decision = grant.decision();
        Answered {
            within_sla: grant.within_sla(&index.resource, index.as_of, Utc::now()),
            resource: index.resource.clone(),
            version: index.version,
            as_of: index.as_of,
            matter,
            case,
            rule: decision.rule.to_string(),
            denied: denied(decision),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LookupResponse {
    #[serde(flatten)]
    pub answered: Answered,
    pub results: Vec<KeyResult>,
}

fn code((class, seq): (String, String)) -> String {
    format!("{class}/{seq}")
}

fn unprocessable(field: impl Into<String>, detail: impl Into<String>) -> Problem {
    Problem::from(access::Error::invalid(field, detail))
}

/// Normalises a key and checks its check digit when the key item is a
/// citizen ID or a credit code.
pub fn check_key(item: &str, field: &str, key: &str) -> ApiResult<String> {
    check_owned_key(item, field, key.to_string())
}

/// [`check_key`] of a key already owned: normalised in place, without a
/// copy (a stream checks a million of them).
fn check_owned_key(item: &str, field: &str, key: String) -> ApiResult<String> {
    keys::normalise(item, key).map_err(|e| unprocessable(field, format!("{field}: {e}")))
}

/// The index of a resource, or why there is none: still loading (503) or
/// nothing published (404).
pub(crate) fn index_of(state: &AppState, resource: &str) -> access::Result<Arc<Index>> {
    state.indexes.get(resource).ok_or_else(|| {
        if state.access.policies().is_published(resource) {
            access::Error::Loading {
                resource: resource.to_string(),
            }
        } else {
            access::Error::NoData {
                resource: resource.to_string(),
            }
        }
    })
}

fn denied(decision: &Decision) -> Vec<Denied> {
    decision
        .items
        .iter()
        .filter(|d| d.release.is_none())
        .map(|d| Denied {
            item: d.item.clone(),
            rule: d.rule.to_string(),
            reason: d.reason.clone(),
        })
        .collect()
}

/// Rows as JSON objects.
/// Rows as JSON objects, one per row, as Arrow's JSON writer encodes them.
fn to_json(batch: &RecordBatch) -> ApiResult<Vec<Box<serde_json::value::RawValue>>> {
    let mut w = arrow::json::LineDelimitedWriter::new(Vec::with_capacity(batch.num_rows() * 96));
    w.write(batch).map_err(internal)?;
    w.finish().map_err(internal)?;
    let text = String::from_utf8(w.into_inner()).map_err(internal)?;
    text.lines()
        .map(|line| serde_json::value::RawValue::from_string(line.to_string()).map_err(internal))
        .collect()
}

/// `{}`: a row with no released items.
fn empty_row() -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string("{}".to_string()).expect("valid JSON")
}

fn internal(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "lookup failed");
    Problem::internal()
}

/// Look up rows by key
///
/// Returns, per key, the items the caller may see for this matter, masked as
/// the directory and the caller's need say, plus the items denied and why.
#[utoipa::path(post, path = "/v1/lookup/{class}/{seq}", tag = "lookup",
    params(("class" = String, Path), ("seq" = String, Path)),
    request_body = LookupRequest,
    responses((status = 200, description = "Per-key results", body = LookupResponse),
              (status = 403, description = "Nothing may be released; `rule` says why", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "A key fails its check digit, or a field is missing", body = Problem, content_type = "application/problem+json"),
              (status = 503, description = "The data is still loading", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn lookup(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(parts): Path<(String, String)>,
    Json(req): Json<LookupRequest>,
) -> ApiResult<axum::Json<LookupResponse>> {
    let started = Instant::now();
    let resource = code(parts);
    let ask = Ask {
        consumer: &who.department,
        resource: &resource,
        matter: &req.matter,
        case: &req.case,
        mode: Mode::Lookup,
        started,
    };
    ask.check()?;
    if req.keys.is_empty() || req.keys.len() > MAX_KEYS {
        return Err(unprocessable(
            "keys",
            format!("keys: send 1 to {MAX_KEYS} keys; use the streaming endpoint for more"),
        ));
    }
    let index = index_of(&state, &resource)?;
    let key_item = match &req.by {
        Some(by) => {
            if index.rows_by(by, "").is_none() {
                let indexed: Vec<&str> = index.secondary_items().collect();
                return Err(unprocessable(
                    "by",
                    format!(
                        "by: '{by}' is not indexed for '{resource}' (indexed: {})",
                        indexed.join(", ")
                    ),
                ));
            }
            by.clone()
        }
        None => index.key_items.join("+"),
    };
    // Field names are formatted only for a key that fails.
    let keys = req
        .keys
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            keys::normalise(&key_item, k).map_err(|e| {
                let field = format!("keys[{i}]");
                unprocessable(&field, format!("{field}: {e}"))
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let grant = state.access.open(&ask, &req.items, &keys).await?;
    state.access.take_quota(&ask, &grant, &keys).await?;
    let mut results = answer(
        &index,
        &keys,
        req.by.as_deref(),
        grant.decision(),
        state.hash_key.as_bytes(),
    )?;
    if req.by.is_none() {
        mark(&state, &resource, &mut results, grant.decision());
    }
    state.access.release(&ask, &grant, &keys).await?;
    Ok(axum::Json(LookupResponse {
        answered: Answered::new(&index, req.matter, req.case, &grant),
        results,
    }))
}

/// The answer for each key, in key order: its rows (by the key, or by a
/// secondary item) that the row filters let through, projected and masked.
fn answer(
    index: &Index,
    keys: &[String],
    by: Option<&str>,
    decision: &Decision,
    hash_key: &[u8],
) -> ApiResult<Vec<KeyResult>> {
    let groups: Vec<Vec<u32>> = keys
        .iter()
        .map(|k| match by {
            Some(by) => index.rows_by(by, k).unwrap_or_default().to_vec(),
            None => index.row(k).into_iter().collect(),
        })
        .collect();
    release(index, keys, &groups, decision, hash_key)
}

/// Releases groups of rows, one group per label: row filters, projection,
/// masks. A row a filter hides is left out as if absent.
fn release(
    index: &Index,
    labels: &[String],
    groups: &[Vec<u32>],
    decision: &Decision,
    hash_key: &[u8],
) -> ApiResult<Vec<KeyResult>> {
    let mut rows: Vec<u32> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for (i, group) in groups.iter().enumerate() {
        rows.extend_from_slice(group);
        owner.extend(std::iter::repeat_n(i, group.len()));
    }
    let mut results: Vec<KeyResult> = labels
        .iter()
        .map(|k| KeyResult {
            key: k.clone(),
            found: false,
            rows: Vec::new(),
            disputed: Vec::new(),
        })
        .collect();
    if rows.is_empty() {
        return Ok(results);
    }
    let projection = decision.projection();
    // The usual answer (text, numbers, dates; filters on text) is written
    // row by row where the values lie; the Arrow path below covers the rest.
    if let Some(writer) = tongban_lookup::answer::Rows::new(
        &index.batch,
        &projection,
        &decision.row_filters,
        hash_key,
    ) {
        for (&row, &i) in rows.iter().zip(&owner) {
            if writer.visible(row as usize) {
                results[i].found = true;
                results[i].rows.push(writer.object(row as usize));
            }
        }
        return Ok(results);
    }
    let needed = projection
        .iter()
        .map(|(c, _)| *c)
        .chain(decision.row_filters.iter().map(|f| f.item.as_str()));
    let gathered = index.take_columns(&rows, needed).map_err(internal)?;
    let visible = visible_rows(&gathered, decision)?;
    // Without row filters every gathered row is visible: skip the copy.
    let kept = if decision.row_filters.is_empty() {
        gathered
    } else {
        arrow::compute::filter_record_batch(&gathered, &visible).map_err(internal)?
    };
    let released = enforce::project_and_mask(&kept, &projection, hash_key).map_err(internal)?;
    let mut objects = to_json(&released)?.into_iter();
    for (pos, &i) in owner.iter().enumerate() {
        if visible.value(pos) {
            results[i].found = true;
            results[i]
                .rows
                .push(objects.next().unwrap_or_else(empty_row));
        }
    }
    Ok(results)
}

/// Marks each found record's disputed items that the answer carries (the
/// released items an open objection names). Keys are the records' own:
/// answers by a secondary item (`by`) are not marked.
fn mark(state: &AppState, resource: &str, results: &mut [KeyResult], decision: &Decision) {
    let marks = state.disputes.current();
    let Some(records) = marks.get(resource).map(|m| &m.records) else {
        return;
    };
    for r in results.iter_mut().filter(|r| r.found) {
        if let Some(items) = records.get(&r.key) {
            r.disputed = disputed(decision, items).map(String::from).collect();
        }
    }
}

/// The items an answer under `decision` releases that a record's open
/// objections dispute (`marked`), in the decision's order.
fn disputed<'d>(decision: &'d Decision, marked: &[String]) -> impl Iterator<Item = &'d str> {
    decision
        .items
        .iter()
        .filter(|d| d.release.is_some() && marked.contains(&d.item))
        .map(|d| d.item.as_str())
}

/// Which gathered rows the decision's row filters let through (the
/// `policies` evaluator: the only one).
fn visible_rows(batch: &RecordBatch, decision: &Decision) -> ApiResult<arrow::array::BooleanArray> {
    enforce::visible_rows(batch, &decision.row_filters).map_err(internal)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The key of the row to check against (e.g. a citizen ID number).
    pub key: String,
    /// Claimed values by item, e.g. `{"name": "张三"}`. Dates as `YYYY-MM-DD`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub claims: BTreeMap<String, String>,
    /// For records with a validity window (licences): is the record in force
    /// on this date — not revoked, `valid_from` ≤ date, and before `valid_to`
    /// (open-ended when empty)? Needs `status`, `valid_from` and `valid_to`
    /// to be verifiable by the caller.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_at: Option<chrono::NaiveDate>,
    /// For sealed records (e-licences): is the issuer's electronic seal
    /// (SM2 with SM3) over the record's core fields valid under the key
    /// the issuer registered? Needs the signed items and `signature` to be
    /// verifiable by the caller.
    #[serde(default)]
    pub seal: bool,
    #[schema(pattern = "\\S")]
    pub matter: String,
    #[schema(pattern = "\\S")]
    pub case: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    #[serde(flatten)]
    pub answered: Answered,
    /// Whether a row has this key (and the caller may see it).
    pub found: bool,
    /// Per permitted claim: whether it matches. No values are disclosed.
    pub matches: BTreeMap<String, bool>,
    /// The answer to `valid_at`, when asked and permitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_force: Option<bool>,
    /// The answer to `seal`, when asked and permitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal: Option<SealCheck>,
    /// Items checked here that an open objection disputes (异议标注).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disputed: Vec<String>,
}

/// Whether a record's electronic seal is valid.
#[derive(Debug, Serialize, ToSchema)]
pub struct SealCheck {
    pub valid: bool,
    /// The issuing department the seal was checked against.
    pub issuer: String,
    /// `SM2-SM3`.
    pub algorithm: &'static str,
    /// Why it is not valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Verify claimed values against a row
///
/// Answers match or no-match per claimed item and discloses nothing else: the
/// acceptance office checks that a name belongs to a citizen ID, that a
/// company is registered and active, that a licence is valid.
#[utoipa::path(post, path = "/v1/verify/{class}/{seq}", tag = "lookup",
    params(("class" = String, Path), ("seq" = String, Path)),
    request_body = VerifyRequest,
    responses((status = 200, description = "Match per claim", body = VerifyResponse),
              (status = 403, description = "No claim may be verified; `rule` says why", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "A bad key or missing field", body = Problem, content_type = "application/problem+json"),
              (status = 503, description = "The data is still loading", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(parts): Path<(String, String)>,
    Json(req): Json<VerifyRequest>,
) -> ApiResult<axum::Json<VerifyResponse>> {
    let started = Instant::now();
    let resource = code(parts);
    let ask = Ask {
        consumer: &who.department,
        resource: &resource,
        matter: &req.matter,
        case: &req.case,
        mode: Mode::Verify,
        started,
    };
    ask.check()?;
    if req.claims.is_empty() && req.valid_at.is_none() && !req.seal {
        return Err(unprocessable(
            "claims",
            "claims: claim at least one item, or ask valid_at or seal",
        ));
    }
    let index = index_of(&state, &resource)?;
    let key = check_key(&index.key_items.join("+"), "key", &req.key)?;
    const WINDOW: [&str; 3] = ["status", "valid_from", "valid_to"];
    let mut items: Vec<String> = req.claims.keys().cloned().collect();
    if req.valid_at.is_some() {
        if WINDOW
            .iter()
            .any(|c| index.batch.column_by_name(c).is_none())
        {
            return Err(unprocessable(
                "valid_at",
                format!("valid_at: '{resource}' has no status and validity window"),
            ));
        }
        items.extend(
            WINDOW
                .iter()
                .filter(|w| !req.claims.contains_key(**w))
                .map(|w| w.to_string()),
        );
    }
    if req.seal {
        let sealed = seal::SIGNED_ITEMS.iter().chain([&seal::SEAL_ITEM]);
        if let Some(missing) = sealed
            .clone()
            .find(|c| index.batch.column_by_name(c).is_none())
        {
            return Err(unprocessable(
                "seal",
                format!("seal: '{resource}' is not sealed (it has no '{missing}')"),
            ));
        }
        for item in sealed {
            if !items.iter().any(|i| i == item) {
                items.push(item.to_string());
            }
        }
    }
    let keys = [key];
    let key = &keys[0];
    let grant = state.access.open(&ask, &items, &keys).await?;
    state.access.take_quota(&ask, &grant, &keys).await?;
    let decision = grant.decision();
    let mut matches = BTreeMap::new();
    let mut found = false;
    let mut in_force = None;
    let mut seal_check = None;
    if let Some(row) = index.row(key) {
        let needed = decision
            .items
            .iter()
            .filter(|d| d.release.is_some())
            .map(|d| d.item.as_str())
            .chain(decision.row_filters.iter().map(|f| f.item.as_str()));
        let gathered = index.take_columns(&[row], needed).map_err(internal)?;
        found = visible_rows(&gathered, decision)?.value(0);
        if found {
            // Each verifiable item's value, as text (dates as YYYY-MM-DD).
            let mut value_of = std::collections::HashMap::new();
            for d in decision
                .items
                .iter()
                .filter(|d| d.release == Some(Release::MatchOnly))
            {
                let col = gathered
                    .column_by_name(&d.item)
                    .ok_or_else(|| internal(format!("column '{}' missing", d.item)))?;
                let text = cast(col, &DataType::Utf8).map_err(internal)?;
                let text = text
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("cast to Utf8");
                value_of.insert(
                    d.item.as_str(),
                    (!text.is_null(0)).then(|| text.value(0).to_string()),
                );
            }
            for (item, claimed) in &req.claims {
                if let Some(value) = value_of.get(item.as_str()) {
                    matches.insert(item.clone(), value.as_deref() == Some(claimed.trim()));
                }
            }
            if let Some(at) = req.valid_at {
                let at = at.format("%Y-%m-%d").to_string();
                let get = |item: &str| value_of.get(item);
                in_force = match (get("status"), get("valid_from"), get("valid_to")) {
                    (Some(status), Some(Some(from)), Some(to)) => Some(
                        status.as_deref() != Some("revoked")
                            && from.as_str() <= at.as_str()
                            && to.as_deref().is_none_or(|to| at.as_str() < to),
                    ),
                    _ => None,
                };
            }
            if req.seal {
                seal_check = check_seal(&state, &value_of).await?;
            }
        }
    }
    state.access.release(&ask, &grant, &keys).await?;
    let disputed = match (found, state.disputes.items(&resource, key)) {
        (true, Some(marked)) => disputed(grant.decision(), &marked)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    };
    Ok(axum::Json(VerifyResponse {
        answered: Answered::new(&index, req.matter, req.case, &grant),
        found,
        matches,
        in_force,
        seal: seal_check,
        disputed,
    }))
}

/// The seal check of a found record from its verifiable values: `None`
/// when the decision does not let every signed item (and the seal) be
/// verified; else valid or not, against the issuer's registered key.
async fn check_seal(
    state: &AppState,
    value_of: &std::collections::HashMap<&str, Option<String>>,
) -> ApiResult<Option<SealCheck>> {
    let get = |item: &str| value_of.get(item).map(|v| v.as_deref().unwrap_or(""));
    let mut values = Vec::with_capacity(seal::SIGNED_ITEMS.len());
    for item in seal::SIGNED_ITEMS {
        let Some(v) = get(item) else { return Ok(None) };
        values.push(v);
    }
    let Some(signature) = get(seal::SEAL_ITEM) else {
        return Ok(None);
    };
    let fields = seal::LicenceFields {
        licence_no: values[0],
        licence_type: values[1],
        holder_id: values[2],
        holder_name: values[3],
        issuer_code: values[4],
        issue_date: values[5],
        valid_from: values[6],
        valid_to: values[7],
    };
    let mut text = String::new();
    seal::message(&fields, &mut text);
    // Registered keys are few and rarely change: read at the check.
    let key = state
        .store
        .seal_keys()
        .await?
        .into_iter()
        .find(|k| k.department == fields.issuer_code);
    let outcome = match &key {
        None => Err(format!(
            "the issuer '{}' has no registered seal key",
            fields.issuer_code
        )),
        Some(k) => seal::verify(&k.public_key, &text, signature).map_err(|e| e.to_string()),
    };
    Ok(Some(SealCheck {
        valid: outcome.is_ok(),
        issuer: fields.issuer_code.to_string(),
        algorithm: seal::ALGORITHM,
        reason: outcome.err(),
    }))
}

/// Where and why a streamed request is made.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// The matter (事项) code the lookups serve.
    pub matter: String,
    /// The case (办件) or batch number.
    pub case: String,
    /// Items wanted, comma-separated; absent asks for every permitted item.
    #[serde(default)]
    pub items: Option<String>,
    /// Look up by this secondary item instead of the key.
    #[serde(default)]
    pub by: Option<String>,
}

/// Keys per chunk of a stream: one Arrow gather and one audit record each.
pub const STREAM_CHUNK: usize = 4096;

/// One input line of a stream: a key, or why the line is not one.
enum Line {
    Key(String),
    Bad(usize, String),
}

/// Reads a key from a line: a bare key, a JSON string, or `{"key": …}`.
fn parse_line(line: &[u8], number: usize, key_item: &str) -> Option<Line> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t.trim(),
        Err(_) => return Some(Line::Bad(number, "not UTF-8 text".into())),
    };
    if text.is_empty() {
        return None;
    }
    let raw = if text.starts_with('"') {
        serde_json::from_str::<String>(text).map_err(|e| e.to_string())
    } else if text.starts_with('{') {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct K {
            key: String,
        }
        serde_json::from_str::<K>(text)
            .map(|k| k.key)
            .map_err(|e| e.to_string())
    } else {
        Ok(text.to_string())
    };
    Some(match raw {
        Ok(k) => match check_owned_key(key_item, "key", k) {
            Ok(k) => Line::Key(k),
            Err(p) => Line::Bad(number, p.detail),
        },
        Err(e) => Line::Bad(number, format!("not a key: {e}")),
    })
}

/// Stream lookups (NDJSON in, NDJSON out)
///
/// Send one key per line (bare, as a JSON string, or `{"key": "…"}`); each
/// answer line is `{"key", "found", "rows"}` in input order, or
/// `{"line", "error"}` for a line that is not a valid key. Answers are
/// flushed every 4,096 keys while the request is still being read. One policy
/// decision covers the stream; each chunk is audited.
#[utoipa::path(post, path = "/v1/lookup/{class}/{seq}/stream", tag = "lookup",
    params(("class" = String, Path), ("seq" = String, Path), StreamParams),
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 200, description = "One answer line per input line", content_type = "application/x-ndjson"),
              (status = 403, description = "Nothing may be released", body = Problem, content_type = "application/problem+json"),
              (status = 503, description = "The data is still loading", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(parts): Path<(String, String)>,
    Query(p): Query<StreamParams>,
    body: axum::body::Body,
) -> ApiResult<axum::response::Response> {
    use futures::StreamExt;
    let started = Instant::now();
    let resource = code(parts);
    let ask = Ask {
        consumer: &who.department,
        resource: &resource,
        matter: &p.matter,
        case: &p.case,
        mode: Mode::Lookup,
        started,
    };
    ask.check()?;
    let index = index_of(&state, &resource)?;
    let key_item = match &p.by {
        Some(by) if index.rows_by(by, "").is_none() => {
            return Err(unprocessable(
                "by",
                format!("by: '{by}' is not indexed for '{resource}'"),
            ));
        }
        Some(by) => by.clone(),
        None => index.key_items.join("+"),
    };
    let items: Vec<String> = p
        .items
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let grant = state.access.open(&ask, &items, &[]).await?;

    // The reader parses chunks of keys and takes their quota in input order,
    // then hands each chunk to its own task (lookups, masking, JSON, audit),
    // so up to STREAM_IN_FLIGHT chunks are answered at once on all cores. The
    // body awaits the tasks in order, so answers keep the input's order.
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(STREAM_IN_FLIGHT);
    let job = Arc::new(StreamJob {
        state,
        items,
        index,
        consumer: who.department,
        resource,
        matter: p.matter,
        case: p.case,
        by: p.by,
    });
    let bulk = job.state.bulk.clone();
    bulk.spawn(async move {
        // The grant of the chunks to come: renewed when the lists change.
        let mut grant = Arc::new(grant);
        let mut input = body.into_data_stream();
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk: Vec<Line> = Vec::with_capacity(STREAM_CHUNK);
        let mut number = 0usize;
        while let Some(data) = input.next().await {
            let Ok(data) = data else { break };
            pending.extend_from_slice(&data);
            let mut start = 0;
            while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
                number += 1;
                if let Some(line) = parse_line(&pending[start..start + end], number, &key_item) {
                    chunk.push(line);
                }
                start += end + 1;
                if chunk.len() >= STREAM_CHUNK && !job.dispatch(&mut grant, &mut chunk, &tx).await {
                    return;
                }
            }
            pending.drain(..start);
        }
        number += 1;
        if let Some(line) = parse_line(&pending, number, &key_item) {
            chunk.push(line);
        }
        if !chunk.is_empty() {
            job.dispatch(&mut grant, &mut chunk, &tx).await;
        }
    });
    let body = futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        let (bytes, more) = match rx.recv().await? {
            Chunk::Failed(bytes) => (bytes, false),
            Chunk::Answering(task) => task.await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "stream chunk task failed");
                (error_line("internal error; the stream stopped here"), false)
            }),
        };
        Some((Ok::<_, std::convert::Infallible>(bytes), more.then_some(rx)))
    });
    Ok(axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/x-ndjson")
        .body(axum::body::Body::from_stream(body))
        .expect("a valid response"))
}

/// Chunks of a stream answered at once.
const STREAM_IN_FLIGHT: usize = 4;

/// A chunk of a stream on its way to the body: refused before any lookup
/// (its error line ends the stream), or being answered by its task, which
/// yields the answer lines and whether the stream goes on.
enum Chunk {
    Failed(bytes::Bytes),
    Answering(tokio::task::JoinHandle<(bytes::Bytes, bool)>),
}

/// `{"error": …}` and a newline: how a stream says why it stopped.
fn error_line(detail: &str) -> bytes::Bytes {
    format!("{}\n", serde_json::json!({ "error": detail })).into()
}

/// The line that ends a stream refused by the pipeline: why, its stable
/// code and, for a decision, the rule.
fn refusal_line(e: &access::Error) -> bytes::Bytes {
    let mut line = serde_json::json!({ "error": e.to_string(), "code": e.code().as_str() });
    if let Some(rule) = e.rule() {
        line["rule"] = rule.into();
    }
    format!("{line}\n").into()
}

/// What every chunk of one stream shares.
struct StreamJob {
    state: AppState,
    /// The items asked for: each chunk is released under the stream's
    /// decision, checked again when the lists change.
    items: Vec<String>,
    index: Arc<Index>,
    consumer: String,
    resource: String,
    matter: String,
    case: String,
    by: Option<String>,
}

impl StreamJob {
    /// The ask of one chunk: its record's latency runs from now.
    fn ask(&self) -> Ask<'_> {
        Ask {
            consumer: &self.consumer,
            resource: &self.resource,
            matter: &self.matter,
            case: &self.case,
            mode: Mode::Lookup,
            started: Instant::now(),
        }
    }

    /// Checks that the lists still decide the stream as `grant` says,
    /// takes the chunk's quota (in input order) and sends it on to be
    /// answered; false when the stream must stop.
    async fn dispatch(
        self: &Arc<Self>,
        grant: &mut Arc<Grant>,
        chunk: &mut Vec<Line>,
        tx: &tokio::sync::mpsc::Sender<Chunk>,
    ) -> bool {
        let mut lines = std::mem::take(chunk);
        // The keys move out; the lines keep only their order and bad lines.
        let keys: Vec<String> = lines
            .iter_mut()
            .filter_map(|l| match l {
                Line::Key(k) => Some(std::mem::take(k)),
                Line::Bad(..) => None,
            })
            .collect();
        let access = &self.state.access;
        let ask = self.ask();
        let checked = match access.recheck(&ask, grant, &self.items, &keys).await {
            Ok(renewed) => {
                if let Some(renewed) = renewed {
                    *grant = Arc::new(renewed);
                }
                access.take_quota(&ask, grant, &keys).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = checked {
            let _ = tx.send(Chunk::Failed(refusal_line(&e))).await;
            return false;
        }
        let (job, grant) = (self.clone(), grant.clone());
        let task = self
            .state
            .bulk
            .spawn(async move { job.answer(&grant, lines, keys).await });
        tx.send(Chunk::Answering(task)).await.is_ok()
    }

    /// The answer lines of one chunk, recorded in the audit log first.
    async fn answer(
        &self,
        grant: &Grant,
        lines: Vec<Line>,
        keys: Vec<String>,
    ) -> (bytes::Bytes, bool) {
        let ask = self.ask();
        let decision = grant.decision();
        let projection = decision.projection();
        let hash_key = self.state.hash_key.as_bytes();
        let out = match tongban_lookup::answer::Rows::new(
            &self.index.batch,
            &projection,
            &decision.row_filters,
            hash_key,
        ) {
            Some(rows) => self.write_lines(&rows, decision, &lines, &keys),
            None => {
                let mut answered =
                    match answer(&self.index, &keys, self.by.as_deref(), decision, hash_key) {
                        Ok(a) => a,
                        Err(p) => return (error_line(&p.detail), false),
                    };
                if self.by.is_none() {
                    mark(&self.state, &self.index.resource, &mut answered, decision);
                }
                let mut out = Vec::with_capacity(lines.len() * 128);
                let mut answers = answered.into_iter();
                for line in &lines {
                    match line {
                        Line::Key(_) => serde_json::to_writer(
                            &mut out,
                            &answers.next().expect("one answer per key"),
                        )
                        .expect("answers serialise"),
                        Line::Bad(n, e) => bad_line(&mut out, *n, e),
                    }
                    out.push(b'\n');
                }
                out
            }
        };
        if let Err(e) = self.state.access.release(&ask, grant, &keys).await {
            return (refusal_line(&e), false);
        }
        (out.into(), true)
    }

    /// The usual chunk's answer lines, written in one pass from the
    /// index's columns: the bytes `answer`, `mark` and serde write, with no
    /// value per key or row in between.
    fn write_lines(
        &self,
        rows: &tongban_lookup::answer::Rows<'_>,
        decision: &Decision,
        lines: &[Line],
        keys: &[String],
    ) -> Vec<u8> {
        // Answers by a secondary item are not marked (see `mark`).
        let marks = self.by.is_none().then(|| self.state.disputes.current());
        let marked = marks
            .as_ref()
            .and_then(|m| m.get(&self.index.resource))
            .map(|m| &m.records);
        let mut out = Vec::with_capacity(lines.len() * 160);
        let mut keys = keys.iter();
        let mut found: Vec<u32> = Vec::new();
        for line in lines {
            if let Line::Bad(n, e) = line {
                bad_line(&mut out, *n, e);
                out.push(b'\n');
                continue;
            }
            // The keys moved out of their lines, in line order.
            let key = keys.next().expect("one key per key line");
            found.clear();
            match self.by.as_deref() {
                Some(by) => found.extend(self.index.rows_by(by, key).unwrap_or_default()),
                None => found.extend(self.index.row(key)),
            }
            found.retain(|&r| rows.visible(r as usize));
            let items: Vec<&str> = match marked.and_then(|m| m.get(key.as_str())) {
                Some(items) if !found.is_empty() => disputed(decision, items).collect(),
                _ => Vec::new(),
            };
            write_answer_line(&mut out, key, &found, rows, &items);
        }
        out
    }
}

/// `{"error": …, "line": n}`: a stream's input line that is not a key.
fn bad_line(out: &mut Vec<u8>, n: usize, e: &str) {
    serde_json::to_writer(out, &serde_json::json!({"line": n, "error": e}))
        .expect("errors serialise");
}

/// One answer line (newline included) of a key whose visible rows are
/// `found`: the bytes serde writes for its [`KeyResult`].
fn write_answer_line(
    out: &mut Vec<u8>,
    key: &str,
    found: &[u32],
    rows: &tongban_lookup::answer::Rows<'_>,
    disputed: &[&str],
) {
    out.extend_from_slice(b"{\"key\":");
    serde_json::to_writer(&mut *out, key).expect("keys serialise");
    out.extend_from_slice(if found.is_empty() {
        b",\"found\":false,\"rows\":["
    } else {
        b",\"found\":true,\"rows\":["
    });
    for (n, &row) in found.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        rows.write_object(row as usize, out);
    }
    out.push(b']');
    if !disputed.is_empty() {
        out.extend_from_slice(b",\"disputed\":");
        serde_json::to_writer(&mut *out, disputed).expect("items serialise");
    }
    out.extend_from_slice(b"}\n");
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocateRequest {
    /// Longitude (WGS 84).
    pub lon: f64,
    /// Latitude (WGS 84).
    pub lat: f64,
    /// Items wanted, e.g. `["code", "name", "level"]`; absent: all permitted.
    #[serde(default)]
    pub items: Vec<String>,
    #[schema(pattern = "\\S")]
    pub matter: String,
    #[schema(pattern = "\\S")]
    pub case: String,
}

/// Which divisions contain a point
///
/// Answers every division (city, district, street) whose boundary contains
/// the point, with the items the caller may see. An address is placed with a
/// lookup on the addresses resource by its `address` item instead.
#[utoipa::path(post, path = "/v1/locate/{class}/{seq}", tag = "lookup",
    params(("class" = String, Path), ("seq" = String, Path)),
    request_body = LocateRequest,
    responses((status = 200, description = "The containing divisions", body = LookupResponse),
              (status = 403, description = "Nothing may be released", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Not a point, or the resource has no boundaries", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn locate(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(parts): Path<(String, String)>,
    Json(req): Json<LocateRequest>,
) -> ApiResult<axum::Json<LookupResponse>> {
    let started = Instant::now();
    let resource = code(parts);
    let ask = Ask {
        consumer: &who.department,
        resource: &resource,
        matter: &req.matter,
        case: &req.case,
        mode: Mode::Lookup,
        started,
    };
    ask.check()?;
    if !(req.lon.is_finite()
        && req.lat.is_finite()
        && (-180.0..=180.0).contains(&req.lon)
        && (-90.0..=90.0).contains(&req.lat))
    {
        return Err(unprocessable(
            "lon",
            "lon/lat: a WGS 84 point has -180 ≤ lon ≤ 180 and -90 ≤ lat ≤ 90",
        ));
    }
    let index = index_of(&state, &resource)?;
    let Some(spatial) = &index.spatial else {
        return Err(unprocessable(
            "resource",
            format!("'{resource}' has no boundaries to locate points in"),
        ));
    };
    let keys = [format!("{},{}", req.lon, req.lat)];
    let grant = state.access.open(&ask, &req.items, &keys).await?;
    state.access.take_quota(&ask, &grant, &keys).await?;
    let rows = spatial.rows_at(req.lon, req.lat);
    let results = release(
        &index,
        &keys,
        &[rows],
        grant.decision(),
        state.hash_key.as_bytes(),
    )?;
    state.access.release(&ask, &grant, &keys).await?;
    Ok(axum::Json(LookupResponse {
        answered: Answered::new(&index, req.matter, req.case, &grant),
        results,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int32Array, StringArray};
    use tongban_policies::Reveal;

    #[test]
    fn answer_lines_are_the_bytes_serde_writes() {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "name",
                Arc::new(StringArray::from(vec![Some("欧阳\"小\"明"), None])) as ArrayRef,
            ),
            ("age", Arc::new(Int32Array::from(vec![Some(30), Some(7)]))),
        ])
        .unwrap();
        let projection = [("name", Reveal::Clear), ("age", Reveal::Clear)];
        let rows = tongban_lookup::answer::Rows::new(&batch, &projection, &[], b"k").unwrap();
        let cases: [(&str, &[u32], &[&str]); 4] = [
            ("11010519491231002X", &[0], &[]),
            ("310104199001011234", &[], &[]),
            ("k\"\\ey", &[1, 0], &["name"]),
            ("a", &[1], &["name", "age"]),
        ];
        for (key, found, disputed) in cases {
            let mut ours = Vec::new();
            write_answer_line(&mut ours, key, found, &rows, disputed);
            let theirs = KeyResult {
                key: key.to_string(),
                found: !found.is_empty(),
                rows: found.iter().map(|&r| rows.object(r as usize)).collect(),
                disputed: disputed.iter().map(|d| d.to_string()).collect(),
            };
            let mut theirs = serde_json::to_vec(&theirs).unwrap();
            theirs.push(b'\n');
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }
}
