//! The three lists as files: JSON (an array of records, exactly as the API
//! shows them) and CSV (one row per record, list-valued columns joined by
//! `;`, the row filter as compact JSON). One generic reader and writer serves
//! all three lists: a record goes through `serde_json::Value`, and a table of
//! column kinds says how each CSV cell maps to JSON.

use crate::lists::{NeedRecord, NegativeRecord, ResponsibilityRecord};
use crate::model::Located;
use crate::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// How a CSV cell becomes a JSON value (a column of [`ListFile::COLUMNS`]).
#[derive(Clone, Copy)]
pub enum Kind {
    Text,
    Int,
    /// `a;b;c` ↔ `["a", "b", "c"]`.
    List,
    /// A JSON object written as compact JSON.
    Json,
}

/// A list that can be exported and imported.
pub trait ListFile: Serialize + DeserializeOwned {
    /// The CSV columns, in order.
    const COLUMNS: &'static [(&'static str, Kind)];
}

impl ListFile for NeedRecord {
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("id", Kind::Int),
        ("consumer", Kind::Text),
        ("resource", Kind::Text),
        ("items", Kind::List),
        ("matter", Kind::Text),
        ("mode", Kind::Text),
        ("justification", Kind::Text),
        ("row_filter", Kind::Json),
        ("daily_quota", Kind::Int),
        ("clear_items", Kind::List),
        ("valid_from", Kind::Text),
        ("valid_until", Kind::Text),
        ("status", Kind::Text),
        ("submitted_at", Kind::Text),
        ("due_at", Kind::Text),
        ("decided_at", Kind::Text),
        ("matter_name", Kind::Text),
        ("covert_until", Kind::Text),
    ];
}

impl ListFile for NegativeRecord {
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("id", Kind::Int),
        ("resource", Kind::Text),
        ("items", Kind::List),
        ("legal_basis", Kind::Text),
        ("modes", Kind::List),
        ("consumers", Kind::List),
        ("note", Kind::Text),
    ];
}

impl ListFile for ResponsibilityRecord {
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("id", Kind::Int),
        ("provider", Kind::Text),
        ("resource", Kind::Text),
        ("items", Kind::List),
        ("refresh_interval_hours", Kind::Int),
        ("delivery", Kind::Text),
    ];
}

/// Records as pretty JSON (review history included for needs).
pub fn to_json<T: ListFile>(records: &[T]) -> String {
    serde_json::to_string_pretty(records).expect("records serialise")
}

/// Records from a JSON array; errors name the record (`[3]`) or the line.
pub fn from_json<T: ListFile>(text: &str) -> Result<Vec<Located<T>>> {
    let values: Vec<Value> = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| Error::invalid("json", e.to_string()).at(&format!("line {}", e.line())))?;
    values
        .into_iter()
        .enumerate()
        .map(|(i, mut v)| {
            let at = format!("[{i}]");
            // History is the store's record of what happened, not input.
            if let Some(map) = v.as_object_mut() {
                map.remove("history");
            }
            let value = serde_json::from_value(v)
                .map_err(|e| Error::invalid("record", e.to_string()).at(&at))?;
            Ok(Located { at, value })
        })
        .collect()
}

fn cell(v: Option<&Value>, kind: Kind) -> String {
    match (v, kind) {
        (None | Some(Value::Null), _) => String::new(),
        (Some(Value::Array(items)), _) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(";"),
        (Some(Value::String(s)), _) => s.clone(),
        (Some(v @ Value::Object(_)), _) => v.to_string(),
        (Some(v), _) => v.to_string(),
    }
}

/// Records as CSV with a UTF-8 BOM (spreadsheet programs need it for Chinese).
pub fn to_csv<T: ListFile>(records: &[T]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(T::COLUMNS.iter().map(|(name, _)| *name))
        .expect("writing to memory");
    for r in records {
        let v = serde_json::to_value(r).expect("records serialise");
        w.write_record(
            T::COLUMNS
                .iter()
                .map(|(name, kind)| cell(v.get(*name), *kind)),
        )
        .expect("writing to memory");
    }
    let body = String::from_utf8(w.into_inner().expect("writing to memory")).expect("utf-8");
    format!("\u{feff}{body}")
}

fn value_of(name: &str, kind: Kind, text: &str) -> Result<Option<Value>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(match kind {
            Kind::List => Some(Value::Array(Vec::new())),
            _ => None,
        });
    }
    Ok(Some(match kind {
        Kind::Text => Value::String(text.to_string()),
        Kind::Int => Value::Number(
            text.parse::<i64>()
                .map_err(|_| Error::invalid(name, format!("'{text}' is not a whole number")))?
                .into(),
        ),
        Kind::List => Value::Array(
            text.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.into()))
                .collect(),
        ),
        Kind::Json => serde_json::from_str(text)
            .map_err(|e| Error::invalid(name, format!("not JSON: {e}")))?,
    }))
}

/// Records from CSV with a header row (in any column order); errors name the line.
pub fn from_csv<T: ListFile>(text: &str) -> Result<Vec<Located<T>>> {
    let mut reader =
        csv::ReaderBuilder::new().from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let csv_error = |e: csv::Error| {
        let line = e.position().map(|p| p.line() as usize).unwrap_or(1);
        Error::invalid("csv", e.to_string()).at(&format!("line {line}"))
    };
    let headers = reader.headers().map_err(csv_error)?.clone();
    for h in &headers {
        if !T::COLUMNS.iter().any(|(name, _)| *name == h.trim()) {
            let known: Vec<&str> = T::COLUMNS.iter().map(|(n, _)| *n).collect();
            return Err(Error::invalid(
                "header",
                format!("unknown column '{h}'; columns are {}", known.join(", ")),
            )
            .at("line 1"));
        }
    }
    let mut out = Vec::new();
    let mut raw = csv::StringRecord::new();
    while reader.read_record(&mut raw).map_err(csv_error)? {
        let at = format!("line {}", raw.position().map(|p| p.line()).unwrap_or(0));
        let mut map = Map::new();
        for (h, text) in headers.iter().zip(raw.iter()) {
            let (name, kind) = T::COLUMNS
                .iter()
                .find(|(n, _)| *n == h.trim())
                .expect("checked above");
            if let Some(v) = value_of(name, *kind, text).map_err(|e| e.at(&at))? {
                map.insert((*name).to_string(), v);
            }
        }
        let value = serde_json::from_value(Value::Object(map))
            .map_err(|e| Error::invalid("record", e.to_string()).at(&at))?;
        out.push(Located { at, value });
    }
    Ok(out)
}

/// Which list a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListName {
    Needs,
    Negative,
    Responsibilities,
}

/// Parses a list file (CSV or JSON) and applies it in one catalog
/// transaction, all or nothing; the API, the console and the CLI import
/// through here.
pub async fn import(
    store: &dyn crate::Store,
    list: ListName,
    text: &str,
    csv: bool,
) -> Result<crate::lists::ImportCounts> {
    macro_rules! import {
        ($ty:ty, $method:ident) => {{
            let records = if csv {
                from_csv::<$ty>(text)
            } else {
                from_json::<$ty>(text)
            }?;
            store.$method(&records).await
        }};
    }
    match list {
        ListName::Needs => import!(NeedRecord, import_needs),
        ListName::Negative => import!(NegativeRecord, import_negatives),
        ListName::Responsibilities => import!(ResponsibilityRecord, import_responsibilities),
    }
}
