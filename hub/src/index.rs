//! Lookup indexes: for every published resource with key items, its newest
//! dataset version held in memory as one Arrow batch, with a hash map from key
//! to row (and, where configured, from a secondary item to rows — licences by
//! holder). A lookup is a map probe and an Arrow `take`: no SQL, no planning.
//!
//! A new version is built on a blocking thread and swapped in whole; requests
//! hold an `Arc` to the index they started with, so a swap never fails or
//! blocks one.

use crate::datasets::DatasetStore;
use crate::{Error, Result};
use arrow::array::{Array, StringArray, UInt32Array};
use arrow::compute::{cast, concat_batches, take_record_batch};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The key maps' hasher: foldhash, several times faster than SipHash on
/// 18-byte citizen IDs. It is seeded randomly per process, so the maps keep
/// their resistance to crafted collisions (keys come from the providers'
/// data anyway, not from callers).
type Fast = foldhash::fast::RandomState;
use tongban_catalog::{ResourceQuery, Status, Store};

/// Separates the parts of a composite key.
const KEY_SEP: char = '\u{1f}';

/// One resource version, ready for lookups.
pub struct Index {
    pub resource: String,
    pub version: i64,
    /// When the version was published: the `as_of` of every answer.
    pub as_of: DateTime<Utc>,
    pub batch: RecordBatch,
    /// The key items, in order.
    pub key_items: Vec<String>,
    primary: HashMap<Box<str>, u32, Fast>,
    /// item → value → rows.
    secondary: HashMap<String, HashMap<Box<str>, Vec<u32>, Fast>>,
    /// Division boundaries, for resources with a `boundary_wkt` item.
    pub spatial: Option<crate::spatial::Spatial>,
}

/// A column's values as text, for keys and comparisons.
fn text_column(batch: &RecordBatch, item: &str) -> Result<StringArray> {
    let col = batch.column_by_name(item).ok_or_else(|| Error::Dataset {
        resource: String::new(),
        message: format!("key item '{item}' is not in the data"),
    })?;
    let text = if col.data_type() == &DataType::Utf8 {
        col.clone()
    } else {
        cast(col, &DataType::Utf8)?
    };
    Ok(text
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8")
        .clone())
}

impl Index {
    /// Builds the maps over a version's batches (CPU work: call it on a
    /// blocking thread).
    pub fn build(
        resource: &str,
        version: i64,
        as_of: DateTime<Utc>,
        key_items: &[String],
        secondary_items: &[String],
        batches: &[RecordBatch],
    ) -> Result<Index> {
        let schema = batches
            .first()
            .map(|b| b.schema())
            .ok_or_else(|| Error::Dataset {
                resource: resource.to_string(),
                message: "the version has no data".into(),
            })?;
        let batch = concat_batches(&schema, batches)?;
        let keys: Vec<StringArray> = key_items
            .iter()
            .map(|k| text_column(&batch, k))
            .collect::<Result<_>>()?;
        let mut primary = HashMap::with_capacity_and_hasher(batch.num_rows(), Fast::default());
        let mut duplicates = 0usize;
        let mut buf = String::new();
        for row in 0..batch.num_rows() {
            if keys.iter().any(|k| k.is_null(row)) {
                continue;
            }
            buf.clear();
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    buf.push(KEY_SEP);
                }
                buf.push_str(k.value(row));
            }
            if primary
                .insert(Box::from(buf.as_str()), row as u32)
                .is_some()
            {
                duplicates += 1;
            }
        }
        if duplicates > 0 {
            tracing::warn!(
                resource,
                version,
                duplicates,
                "duplicate keys: the last row of each wins"
            );
        }
        let mut secondary = HashMap::new();
        for item in secondary_items {
            let values = text_column(&batch, item)?;
            let mut map: HashMap<Box<str>, Vec<u32>, Fast> = HashMap::default();
            for row in 0..batch.num_rows() {
                if !values.is_null(row) {
                    map.entry(Box::from(values.value(row)))
                        .or_default()
                        .push(row as u32);
                }
            }
            secondary.insert(item.clone(), map);
        }
        let spatial = match batch.column_by_name("boundary_wkt") {
            None => None,
            Some(_) => {
                let wkt = text_column(&batch, "boundary_wkt")?;
                let rows = (0..wkt.len()).map(|i| {
                    (
                        i as u32,
                        (!wkt.is_null(i)).then(|| wkt.value(i).to_string()),
                    )
                });
                Some(
                    crate::spatial::Spatial::build(rows).map_err(|message| Error::Dataset {
                        resource: resource.to_string(),
                        message: format!("boundary_wkt: {message}"),
                    })?,
                )
            }
        };
        Ok(Index {
            spatial,
            resource: resource.to_string(),
            version,
            as_of,
            batch,
            key_items: key_items.to_vec(),
            primary,
            secondary,
        })
    }

    /// The row of a key (composite keys: parts joined in key-item order).
    pub fn row(&self, key: &str) -> Option<u32> {
        self.primary.get(key).copied()
    }

    /// The rows whose secondary `item` equals `value`; `None` if the item is
    /// not indexed.
    pub fn rows_by(&self, item: &str, value: &str) -> Option<&[u32]> {
        Some(
            self.secondary
                .get(item)?
                .get(value)
                .map_or(&[][..], Vec::as_slice),
        )
    }

    pub fn secondary_items(&self) -> impl Iterator<Item = &str> {
        self.secondary.keys().map(String::as_str)
    }

    /// The given rows, in order, as one batch.
    pub fn take(&self, rows: &[u32]) -> Result<RecordBatch> {
        Ok(take_record_batch(
            &self.batch,
            &UInt32Array::from(rows.to_vec()),
        )?)
    }

    /// The given rows of only the named columns (those the data has), in
    /// order. Copying just what an answer needs is most of a lookup's saving:
    /// a row of the population has 15 items, an answer often 3.
    pub fn take_columns<'a>(
        &self,
        rows: &[u32],
        columns: impl IntoIterator<Item = &'a str>,
    ) -> Result<RecordBatch> {
        let schema = self.batch.schema();
        let mut indices: Vec<usize> = Vec::new();
        for c in columns {
            if let Ok(i) = schema.index_of(c)
                && !indices.contains(&i)
            {
                indices.push(i);
            }
        }
        let projected = self.batch.project(&indices)?;
        Ok(take_record_batch(
            &projected,
            &UInt32Array::from(rows.to_vec()),
        )?)
    }
}

/// All indexes of the hub, by resource code.
#[derive(Clone, Default)]
pub struct Indexes {
    by_resource: Arc<RwLock<HashMap<String, Arc<Index>>>>,
    /// Resource → items to index besides the key (from the configuration).
    secondary: Arc<HashMap<String, Vec<String>>>,
}

impl Indexes {
    pub fn new(secondary: HashMap<String, Vec<String>>) -> Indexes {
        Indexes {
            by_resource: Default::default(),
            secondary: Arc::new(secondary),
        }
    }

    pub fn get(&self, resource: &str) -> Option<Arc<Index>> {
        self.by_resource
            .read()
            .expect("index lock")
            .get(resource)
            .cloned()
    }

    /// Loads every published resource's newest version that is not loaded yet,
    /// swapping each in as soon as it is built. Returns how many were swapped.
    pub async fn refresh(&self, store: &dyn Store, datasets: &DatasetStore) -> Result<usize> {
        let mut swapped = 0;
        let query = ResourceQuery {
            status: Some(Status::Published),
            page_size: Some(200),
            ..Default::default()
        };
        let mut page = 1;
        loop {
            let p = store
                .list_resources(&ResourceQuery {
                    page: Some(page),
                    ..query.clone()
                })
                .await?;
            for r in &p.items {
                let Some(v) = &r.latest_version else { continue };
                if r.spec.key_items.is_empty()
                    || self
                        .get(&r.spec.code)
                        .is_some_and(|i| i.version >= v.version)
                {
                    continue;
                }
                let batches = datasets.read_version(&v.location).await?;
                let (code, version, as_of, keys) = (
                    r.spec.code.clone(),
                    v.version,
                    v.created_at,
                    r.spec.key_items.clone(),
                );
                let secondary = self.secondary.get(&code).cloned().unwrap_or_default();
                let started = std::time::Instant::now();
                let index = tokio::task::spawn_blocking(move || {
                    Index::build(&code, version, as_of, &keys, &secondary, &batches)
                })
                .await
                .map_err(|e| Error::Usage(format!("index build failed: {e}")))??;
                tracing::info!(
                    resource = %index.resource,
                    version,
                    rows = index.batch.num_rows(),
                    ms = started.elapsed().as_millis() as u64,
                    "index loaded"
                );
                self.by_resource
                    .write()
                    .expect("index lock")
                    .insert(index.resource.clone(), Arc::new(index));
                swapped += 1;
            }
            if i64::from(page) * 200 >= p.total {
                break;
            }
            page += 1;
        }
        Ok(swapped)
    }
}
