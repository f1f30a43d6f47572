//! The directory as files: JSON (the whole [`Directory`]) and CSV (resources,
//! one row per data item, the way offices keep the catalogue in spreadsheets).
//!
//! Parsing checks everything that needs no database and points at the line at
//! fault; the store then writes all or nothing.

use crate::model::*;
use crate::{Error, Result, validate};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A directory file's records, with where each came from.
#[derive(Debug, Default)]
pub struct Parsed {
    pub departments: Vec<Located<Department>>,
    pub resources: Vec<Located<ResourceSpec>>,
}

/// Writes a directory as pretty JSON.
pub fn to_json(dir: &Directory) -> String {
    serde_json::to_string_pretty(dir).expect("directory serialises")
}

/// Reads a JSON directory (`{"departments": [...], "resources": [...]}`).
pub fn from_json(text: &str) -> Result<Parsed> {
    let dir: Directory =
        serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| Error::Import {
            at: format!("line {}", e.line()),
            source: Box::new(Error::invalid("json", e.to_string())),
        })?;
    let departments = dir
        .departments
        .into_iter()
        .enumerate()
        .map(|(i, value)| Located {
            at: format!("departments[{i}] ({})", value.code),
            value,
        })
        .collect::<Vec<_>>();
    let resources = dir
        .resources
        .into_iter()
        .enumerate()
        .map(|(i, value)| Located {
            at: format!("resources[{i}] ({})", value.code),
            value,
        })
        .collect::<Vec<_>>();
    for d in &departments {
        validate::department(&d.value).map_err(|e| e.at(&d.at))?;
    }
    for r in &resources {
        validate::resource(&r.value).map_err(|e| e.at(&r.at))?;
    }
    Ok(Parsed {
        departments,
        resources,
    })
}

/// One CSV row: a data item with its resource's columns repeated.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvRow {
    resource_code: String,
    resource_name: String,
    provider: String,
    summary: String,
    category: String,
    base_library: String,
    format: String,
    update_cycle: String,
    publish_date: String,
    /// Key item names separated by `;`.
    key_items: String,
    status: String,
    item_name: String,
    item_label: String,
    data_type: String,
    item_description: String,
    sensitivity: String,
    share_type: String,
    share_condition: String,
    legal_basis: String,
    #[serde(default)]
    mask: String,
    /// The resource's division item (return flow), if any.
    #[serde(default)]
    division_item: String,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn word<T: std::str::FromStr>(field: &str, s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.trim()
        .parse()
        .map_err(|e: T::Err| Error::invalid(field, e.to_string()))
}

fn opt_word<T: std::str::FromStr>(field: &str, s: &str) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    opt(s).map(|s| word(field, &s)).transpose()
}

/// Resource columns of a row; rows of one resource must agree on them.
fn resource_of(row: &CsvRow) -> Result<ResourceSpec> {
    Ok(ResourceSpec {
        code: row.resource_code.trim().to_string(),
        name: row.resource_name.trim().to_string(),
        provider: row.provider.trim().to_string(),
        summary: row.summary.trim().to_string(),
        category: word("category", &row.category)?,
        base_library: opt_word("base_library", &row.base_library)?,
        format: word("format", &row.format)?,
        update_cycle: word("update_cycle", &row.update_cycle)?,
        publish_date: opt(&row.publish_date)
            .map(|d| {
                chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| {
                    Error::invalid(
                        "publish_date",
                        format!("'{d}' is not a date like 2026-01-31"),
                    )
                })
            })
            .transpose()?,
        key_items: row.key_items.split(';').filter_map(opt).collect(),
        division_item: opt(&row.division_item),
        items: Vec::new(),
        status: opt_word("status", &row.status)?,
    })
}

fn item_of(row: &CsvRow) -> Result<DataItem> {
    Ok(DataItem {
        name: row.item_name.trim().to_string(),
        label: row.item_label.trim().to_string(),
        data_type: row.data_type.trim().to_string(),
        description: row.item_description.trim().to_string(),
        sensitivity: word("sensitivity", &row.sensitivity)?,
        share_type: word("share_type", &row.share_type)?,
        share_condition: opt(&row.share_condition),
        legal_basis: opt(&row.legal_basis),
        mask: opt_word("mask", &row.mask)?,
    })
}

/// Reads resources from CSV (header row required; UTF-8, with or without BOM).
/// Rows of one resource need not be adjacent; items keep their row order.
pub fn from_csv(text: &str) -> Result<Parsed> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    // (spec, first line, line of each item)
    let mut resources: Vec<(ResourceSpec, usize, Vec<usize>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let csv_error = |e: csv::Error| {
        let line = e.position().map(|p| p.line() as usize).unwrap_or(1);
        Error::Import {
            at: format!("line {line}"),
            source: Box::new(Error::invalid("csv", e.to_string())),
        }
    };
    let headers = reader.headers().map_err(csv_error)?.clone();
    let mut raw = csv::StringRecord::new();
    while reader.read_record(&mut raw).map_err(csv_error)? {
        let line = raw.position().map(|p| p.line() as usize).unwrap_or(0);
        let at = format!("line {line}");
        let record: CsvRow = raw
            .deserialize(Some(&headers))
            .map_err(|e| Error::invalid("csv", e.to_string()).at(&at))?;
        let spec = resource_of(&record).map_err(|e| e.at(&at))?;
        let item = item_of(&record).map_err(|e| e.at(&at))?;
        match index.get(&spec.code) {
            Some(&i) => {
                let (first, first_line, lines) = &mut resources[i];
                let mut same = spec.clone();
                same.items = first.items.clone();
                if same != *first {
                    return Err(Error::invalid(
                        "resource columns",
                        format!(
                            "differ from line {first_line}, the first row of resource {}",
                            spec.code
                        ),
                    )
                    .at(&at));
                }
                first.items.push(item);
                lines.push(line);
            }
            None => {
                index.insert(spec.code.clone(), resources.len());
                let mut spec = spec;
                spec.items.push(item);
                resources.push((spec, line, vec![line]));
            }
        }
    }
    let mut parsed = Parsed::default();
    for (spec, first_line, lines) in resources {
        if let Err(e) = validate::resource(&spec) {
            // Point item errors at the item's own row.
            let line = match &e {
                Error::Invalid { field, .. } => field
                    .strip_prefix("items[")
                    .and_then(|f| f.split(']').next())
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| lines.get(n).copied())
                    .unwrap_or(first_line),
                _ => first_line,
            };
            return Err(e.at(&format!("line {line}")));
        }
        parsed.resources.push(Located {
            at: format!("line {first_line}"),
            value: spec,
        });
    }
    Ok(parsed)
}

/// Writes resources as CSV, one row per data item, with a UTF-8 BOM so that
/// spreadsheet programs read the Chinese text correctly.
pub fn to_csv(resources: &[ResourceSpec]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in resources {
        for item in &r.items {
            w.serialize(CsvRow {
                resource_code: r.code.clone(),
                resource_name: r.name.clone(),
                provider: r.provider.clone(),
                summary: r.summary.clone(),
                category: r.category.to_string(),
                base_library: r.base_library.map(|b| b.to_string()).unwrap_or_default(),
                format: r.format.to_string(),
                update_cycle: r.update_cycle.to_string(),
                publish_date: r.publish_date.map(|d| d.to_string()).unwrap_or_default(),
                key_items: r.key_items.join(";"),
                status: r.status.map(|s| s.to_string()).unwrap_or_default(),
                item_name: item.name.clone(),
                item_label: item.label.clone(),
                data_type: item.data_type.clone(),
                item_description: item.description.clone(),
                sensitivity: item.sensitivity.to_string(),
                share_type: item.share_type.to_string(),
                share_condition: item.share_condition.clone().unwrap_or_default(),
                legal_basis: item.legal_basis.clone().unwrap_or_default(),
                mask: item.mask.map(|m| m.to_string()).unwrap_or_default(),
                division_item: r.division_item.clone().unwrap_or_default(),
            })
            .expect("writing to memory");
        }
    }
    let body = String::from_utf8(w.into_inner().expect("writing to memory")).expect("utf-8");
    format!("\u{feff}{body}")
}
