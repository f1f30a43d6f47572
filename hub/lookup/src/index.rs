//! Lookup indexes: for every published resource with key items, its newest
//! dataset version held in memory as one Arrow batch, with a hash map from key
//! to row (and, where configured, from a secondary item to rows — licences by
//! holder). A lookup is a map probe and an Arrow `take`: no SQL, no planning.
//!
//! A new version is built on a blocking thread and swapped in whole; requests
//! hold an `Arc` to the index they started with, so a swap never fails or
//! blocks one.

use crate::{Error, Result};
use arrow::array::{Array, StringArray, UInt32Array};
use arrow::compute::{cast, concat_batches, take_record_batch};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tongban_datasets::DatasetStore;

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
    /// [`Index::memory_bytes`].
    memory: usize,
}

/// A column's values as text, for keys and comparisons.
fn text_column(batch: &RecordBatch, item: &str) -> Result<StringArray> {
    let col = batch
        .column_by_name(item)
        .ok_or_else(|| Error::Unindexable {
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

/// The key map, its number of duplicate keys, and the secondary maps, over
/// `batches` as if they were one (row numbers run on across batches).
#[allow(clippy::type_complexity)]
fn key_maps(
    key_items: &[String],
    secondary_items: &[String],
    batches: &[RecordBatch],
) -> Result<(
    HashMap<Box<str>, u32, Fast>,
    usize,
    HashMap<String, HashMap<Box<str>, Vec<u32>, Fast>>,
)> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut primary = HashMap::with_capacity_and_hasher(rows, Fast::default());
    let mut duplicates = 0usize;
    let mut secondary: HashMap<String, HashMap<Box<str>, Vec<u32>, Fast>> = secondary_items
        .iter()
        .map(|item| (item.clone(), HashMap::default()))
        .collect();
    let mut buf = String::new();
    let mut offset = 0u32;
    for batch in batches {
        let keys: Vec<StringArray> = key_items
            .iter()
            .map(|k| text_column(batch, k))
            .collect::<Result<_>>()?;
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
                .insert(Box::from(buf.as_str()), offset + row as u32)
                .is_some()
            {
                duplicates += 1;
            }
        }
        for item in secondary_items {
            let values = text_column(batch, item)?;
            let map = secondary.get_mut(item).expect("made above");
            for row in 0..batch.num_rows() {
                if !values.is_null(row) {
                    map.entry(Box::from(values.value(row)))
                        .or_default()
                        .push(offset + row as u32);
                }
            }
        }
        offset += batch.num_rows() as u32;
    }
    Ok((primary, duplicates, secondary))
}

/// About how many bytes an index holds: its Arrow columns, and the key
/// maps' slots and control bytes and the keys' own heap blocks (rounded up
/// to 16 bytes, as allocators do). For the `index loaded` log line and the
/// index benchmark; the R-tree of a spatial index is not counted. A pass
/// over every key: done once, while building.
fn memory_bytes(
    batch: &RecordBatch,
    primary: &HashMap<Box<str>, u32, Fast>,
    secondary: &HashMap<String, HashMap<Box<str>, Vec<u32>, Fast>>,
) -> usize {
    fn table<V>(map: &HashMap<Box<str>, V, Fast>, value_heap: impl Fn(&V) -> usize) -> usize {
        // hashbrown: buckets are a power of two at most 7/8 full; one
        // control byte per bucket.
        let buckets = (map.capacity() * 8 / 7).next_power_of_two();
        let slots = buckets * (std::mem::size_of::<(Box<str>, V)>() + 1);
        let heap: usize = map
            .iter()
            .map(|(k, v)| k.len().next_multiple_of(16).max(16) + value_heap(v))
            .sum();
        slots + heap
    }
    let secondary: usize = secondary
        .values()
        .map(|m| table(m, |rows| (rows.capacity() * 4).next_multiple_of(16)))
        .sum();
    batch.get_array_memory_size() + table(primary, |_| 0) + secondary
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
            .ok_or_else(|| Error::Unindexable {
                resource: resource.to_string(),
                message: "the version has no data".into(),
            })?;
        // The one batch answers are read from, and the key maps, which need
        // only the key columns: built side by side, on two cores
        // (docs/benchmarks.md, index build).
        let (batch, maps) = std::thread::scope(|s| {
            let concat = s.spawn(|| concat_batches(&schema, batches));
            let maps = key_maps(key_items, secondary_items, batches);
            (
                concat.join().expect("the concatenation does not panic"),
                maps,
            )
        });
        let (batch, (primary, duplicates, secondary)) = (batch?, maps?);
        if duplicates > 0 {
            tracing::warn!(
                resource,
                version,
                duplicates,
                "duplicate keys: the last row of each wins"
            );
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
                Some(crate::spatial::Spatial::build(rows).map_err(|message| {
                    Error::Unindexable {
                        resource: resource.to_string(),
                        message: format!("boundary_wkt: {message}"),
                    }
                })?)
            }
        };
        Ok(Index {
            memory: memory_bytes(&batch, &primary, &secondary),
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

    /// About how many bytes the index holds (see [`memory_bytes`]),
    /// measured once when it was built.
    pub fn memory_bytes(&self) -> usize {
        self.memory
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

    /// How many indexes are loaded.
    pub fn count(&self) -> usize {
        self.by_resource.read().expect("index lock").len()
    }

    pub fn get(&self, resource: &str) -> Option<Arc<Index>> {
        self.by_resource
            .read()
            .expect("index lock")
            .get(resource)
            .cloned()
    }

    /// Loads every published resource's newest version that is not loaded
    /// yet, one at a time (a replica's memory holds at most one index being
    /// built besides the ones serving), swapping each in as soon as it is
    /// built. A version that cannot be loaded is logged and counted, and
    /// the others still load; the error is the first such failure.
    /// Returns how many were swapped.
    pub async fn refresh(&self, store: &dyn Store, datasets: &DatasetStore) -> Result<usize> {
        let mut swapped = 0;
        let mut first_failure = None;
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
                match self.load(r, v, datasets).await {
                    Ok(()) => swapped += 1,
                    Err(e) => {
                        tracing::error!(resource = %r.spec.code, version = v.version, error = %e,
                            "could not load an index; the previous version keeps serving");
                        metrics::counter!("tongban_index_load_failures_total",
                            "resource" => r.spec.code.clone())
                        .increment(1);
                        first_failure.get_or_insert(e);
                    }
                }
            }
            if i64::from(page) * 200 >= p.total {
                break;
            }
            page += 1;
        }
        match first_failure {
            Some(e) => Err(e),
            None => Ok(swapped),
        }
    }

    /// Builds the index of version `v` of `r` and swaps it in.
    async fn load(
        &self,
        r: &tongban_catalog::Resource,
        v: &tongban_catalog::DatasetVersion,
        datasets: &DatasetStore,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        let batches = datasets.read_version(&v.location).await?;
        let (code, version, as_of, keys) = (
            r.spec.code.clone(),
            v.version,
            v.created_at,
            r.spec.key_items.clone(),
        );
        let secondary = self.secondary.get(&code).cloned().unwrap_or_default();
        let index = tokio::task::spawn_blocking(move || {
            Index::build(&code, version, as_of, &keys, &secondary, &batches)
        })
        .await??;
        let (rows, bytes) = (index.batch.num_rows(), index.memory_bytes());
        tracing::info!(
            resource = %index.resource,
            version,
            rows,
            ms = started.elapsed().as_millis() as u64,
            mib = bytes / (1 << 20),
            "index loaded"
        );
        let resource = index.resource.clone();
        metrics::gauge!("tongban_index_version", "resource" => resource.clone())
            .set(version as f64);
        metrics::gauge!("tongban_index_rows", "resource" => resource.clone()).set(rows as f64);
        metrics::gauge!("tongban_index_bytes", "resource" => resource.clone()).set(bytes as f64);
        metrics::gauge!("tongban_index_load_seconds", "resource" => resource.clone())
            .set(started.elapsed().as_secs_f64());
        self.by_resource
            .write()
            .expect("index lock")
            .insert(resource, Arc::new(index));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int32Array};

    fn batch(ids: &[Option<&str>], holders: &[&str], n: i32) -> RecordBatch {
        let n = Int32Array::from_iter_values(n..n + ids.len() as i32);
        RecordBatch::try_from_iter_with_nullable(vec![
            (
                "id",
                Arc::new(StringArray::from(ids.to_vec())) as ArrayRef,
                true,
            ),
            (
                "holder",
                Arc::new(StringArray::from(holders.to_vec())),
                true,
            ),
            ("n", Arc::new(n), true),
        ])
        .unwrap()
    }

    #[test]
    fn rows_run_on_across_batches() {
        let batches = [
            batch(&[Some("a"), Some("b")], &["h1", "h2"], 0),
            batch(&[], &[], 2),
            batch(&[Some("c"), None, Some("a")], &["h1", "h3", "h2"], 2),
        ];
        let index = Index::build(
            "101/000001",
            1,
            Utc::now(),
            &["id".into()],
            &["holder".into()],
            &batches,
        )
        .unwrap();
        assert_eq!(index.batch.num_rows(), 5);
        let n_of = |row: u32| {
            let n = index.batch.column_by_name("n").unwrap();
            n.as_any()
                .downcast_ref::<Int32Array>()
                .unwrap()
                .value(row as usize)
        };
        assert_eq!(index.row("b").map(n_of), Some(1));
        assert_eq!(index.row("c").map(n_of), Some(2));
        assert_eq!(
            index.row("a").map(n_of),
            Some(4),
            "a duplicate key: the last row wins"
        );
        assert_eq!(index.row("absent"), None);
        let rows: Vec<i32> = index
            .rows_by("holder", "h2")
            .unwrap()
            .iter()
            .map(|&r| n_of(r))
            .collect();
        assert_eq!(rows, [1, 4]);
        assert_eq!(index.rows_by("holder", "nobody"), Some(&[][..]));
        assert!(index.memory_bytes() > index.batch.get_array_memory_size());
    }
}
