//! Policy-applied Parquet files: what Delta Sharing file URLs serve.
//!
//! For one subscription, plan (fingerprint), version and part (snapshot or
//! change set), the released rows are written once into Parquet files of at
//! most `delivery.file_rows` rows, with a `manifest.json` listing each file
//! with its size and statistics (rows, min, max, nulls per column — what
//! predicate hints are checked against).
//!
//! They live in the dataset store beside the versions (the data dir, or the
//! S3 bucket replicas share), so any replica serves a file another one
//! wrote. The manifest is what makes a folder visible: it is written last,
//! create-only. Each writer names its Parquet files with a tag of its own,
//! so two replicas materializing the same folder at once never overwrite
//! each other's bytes; the one whose manifest lands first wins and the
//! other deletes its files.
//!
//! Layout: `sharing/sub-<id>/<fingerprint>/v<N>-<part>/part-NNNNN-<tag>.parquet`
//! under the store's root. A changed policy (another mask, filter or item)
//! is another fingerprint, so files of an old plan are never served under a
//! new one.

use super::apply::{self, Part};
use super::plan::Plan;
use crate::{Error, Result};
use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;
use tongban_catalog::DatasetVersion;
use tongban_datasets::{DatasetStore, Put};

/// Where shared files live under the dataset store's root.
const SHARING: &str = "sharing";

/// Rows per row group of a shared file: the writer holds one row group in
/// memory, so a large `delivery.file_rows` does not make it hold a file.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// One shared file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedFile {
    /// Relative to the sharing folder (what a file URL's grant names).
    pub path: String,
    /// Stable id of the file (Delta's `id`): the digest of its path.
    pub id: String,
    pub rows: u64,
    pub size: u64,
    /// Delta statistics: `numRecords`, `minValues`, `maxValues`, `nullCount`.
    pub stats: Value,
}

/// The files of one version part under one plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: i64,
    pub files: Vec<SharedFile>,
}

impl Manifest {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
}

/// The object under the store's root of a shared file's relative path.
pub fn object_path(path: &str) -> ObjectPath {
    ObjectPath::from(format!("{SHARING}/{path}"))
}

fn folder(plan: &Plan, version: i64, part: Part) -> String {
    format!(
        "sub-{}/{}/v{version}-{}",
        plan.subscription.id,
        plan.fingerprint,
        part.as_str()
    )
}

/// The files of `version`'s part under `plan`, written now if they are not
/// there yet. A change set that does not exist is `Ok(None)`.
pub async fn materialize(
    datasets: &DatasetStore,
    file_rows: usize,
    schema: SchemaRef,
    plan: &Plan,
    version: &DatasetVersion,
    part: Part,
    hash_key: Arc<str>,
) -> Result<Option<Manifest>> {
    let rel = folder(plan, version.version, part);
    let manifest_path = format!("{SHARING}/{rel}/manifest.json");
    if let Some(m) = read_manifest(datasets, &manifest_path).await? {
        return Ok(Some(m));
    }
    let location = match part {
        Part::Snapshot => version.location.clone(),
        Part::Changes => DatasetStore::changes_location(&version.location),
    };
    if datasets.files(&location).await?.is_empty() {
        return match part {
            Part::Changes => Ok(None),
            Part::Snapshot => Err(Error::VersionMismatch {
                resource: version.resource.clone(),
                message: format!("version {} has no files at {location}", version.version),
            }),
        };
    }
    // This writer's tag: its files never share a name with another's.
    let tag = &tongban_core::auth::new_token()[3..11];
    let store = datasets.object_store();
    let mut written = Vec::new();
    let outcome = write_files(
        &store,
        &rel,
        tag,
        schema,
        apply::released(datasets, &location, plan, part, hash_key).await?,
        file_rows,
        &mut written,
    )
    .await;
    let manifest = match outcome {
        Ok(files) => Manifest {
            version: version.version,
            files,
        },
        Err(e) => {
            remove(&store, &written).await;
            return Err(e);
        }
    };
    let text = serde_json::to_vec_pretty(&manifest).expect("manifests serialise");
    match datasets.put_new(&manifest_path, text.into()).await {
        Ok(Put::Created) => Ok(Some(manifest)),
        Ok(Put::Exists) => {
            // Another writer got there first: its files are the ones served.
            remove(&store, &written).await;
            read_manifest(datasets, &manifest_path)
                .await?
                .map(Some)
                .ok_or_else(|| {
                    Error::SharedFiles(format!(
                        "{}: manifest vanished",
                        datasets.display(&manifest_path)
                    ))
                })
        }
        Err(e) => {
            remove(&store, &written).await;
            Err(e.into())
        }
    }
}

/// Deletes files a writer made and will not publish (best effort: a file
/// no manifest names is never served).
async fn remove(store: &Arc<dyn ObjectStore>, paths: &[ObjectPath]) {
    for path in paths {
        if let Err(e) = store.delete(path).await {
            tracing::warn!(path = %path, error = %e, "could not delete an unpublished shared file");
        }
    }
}

async fn read_manifest(datasets: &DatasetStore, path: &str) -> Result<Option<Manifest>> {
    match datasets.get(path).await {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
            Error::SharedFiles(format!(
                "{}: unreadable manifest ({e})",
                datasets.display(path)
            ))
        })?)),
        Err(tongban_datasets::Error::ObjectStore(object_store::Error::NotFound { .. })) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes the stream into files of at most `file_rows` rows; `written`
/// collects every object begun, so a failure can remove them.
async fn write_files(
    store: &Arc<dyn ObjectStore>,
    rel: &str,
    tag: &str,
    schema: SchemaRef,
    mut input: futures::stream::BoxStream<'static, Result<RecordBatch>>,
    file_rows: usize,
    written: &mut Vec<ObjectPath>,
) -> Result<Vec<SharedFile>> {
    let mut files = Vec::new();
    let mut current: Option<Open> = None;
    while let Some(batch) = input.next().await {
        let mut batch = batch?;
        while batch.num_rows() > 0 {
            if current.is_none() {
                let name = format!("{rel}/part-{:05}-{tag}.parquet", files.len());
                written.push(object_path(&name));
                current = Some(Open::new(store, name, schema.clone())?);
            }
            let open = current.as_mut().expect("opened above");
            let room = file_rows - open.rows;
            let take = room.min(batch.num_rows());
            let head = batch.slice(0, take);
            batch = batch.slice(take, batch.num_rows() - take);
            open.write(&head).await?;
            if open.rows == file_rows {
                let done = current.take().expect("open");
                files.push(done.finish().await?);
            }
        }
    }
    if let Some(open) = current {
        files.push(open.finish().await?);
    }
    Ok(files)
}

/// A file being written, with its running statistics.
struct Open {
    /// Relative to the sharing folder.
    name: String,
    writer: AsyncArrowWriter<BufWriter>,
    rows: usize,
    stats: Vec<ColumnStats>,
    schema: SchemaRef,
}

impl Open {
    fn new(store: &Arc<dyn ObjectStore>, name: String, schema: SchemaRef) -> Result<Open> {
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let sink = BufWriter::new(store.clone(), object_path(&name));
        let writer = AsyncArrowWriter::try_new(sink, schema.clone(), Some(props))?;
        Ok(Open {
            name,
            writer,
            rows: 0,
            stats: schema
                .fields()
                .iter()
                .map(|_| ColumnStats::default())
                .collect(),
            schema,
        })
    }

    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        for (stats, column) in self.stats.iter_mut().zip(batch.columns()) {
            stats.add(column)?;
        }
        self.writer.write(batch).await?;
        self.rows += batch.num_rows();
        Ok(())
    }

    async fn finish(self) -> Result<SharedFile> {
        let Open {
            name,
            mut writer,
            rows,
            stats,
            schema,
        } = self;
        // `finish` writes the Parquet footer and completes the upload.
        writer.finish().await?;
        let size = writer.bytes_written() as u64;
        let (mut min, mut max, mut nulls) = (Map::new(), Map::new(), Map::new());
        for (field, s) in schema.fields().iter().zip(stats) {
            nulls.insert(field.name().clone(), Value::from(s.nulls));
            if let (Some(lo), Some(hi)) = (s.min, s.max) {
                min.insert(field.name().clone(), lo.into_json());
                max.insert(field.name().clone(), hi.into_json());
            }
        }
        let id = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(name.as_bytes())[..16]);
        Ok(SharedFile {
            path: name,
            id,
            rows: rows as u64,
            size,
            stats: serde_json::json!({
                "numRecords": rows,
                "minValues": min,
                "maxValues": max,
                "nullCount": nulls,
            }),
        })
    }
}

/// A column value that statistics keep, comparable within its kind.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum StatValue {
    Int(i64),
    Float(f64),
    Text(String),
    /// Days since the Unix epoch (Date32), shown as `YYYY-MM-DD`.
    Date(i32),
}

impl StatValue {
    fn into_json(self) -> Value {
        match self {
            StatValue::Int(v) => Value::from(v),
            StatValue::Float(v) => Value::from(v),
            StatValue::Text(v) => Value::from(v),
            StatValue::Date(d) => Value::from(date_text(d)),
        }
    }
}

/// `YYYY-MM-DD` of a Date32 value.
pub fn date_text(days: i32) -> String {
    chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0)
        .map(|t| t.date_naive().to_string())
        .unwrap_or_default()
}

/// Min, max and null count of one column over a file.
#[derive(Debug, Default)]
struct ColumnStats {
    min: Option<StatValue>,
    max: Option<StatValue>,
    nulls: u64,
}

impl ColumnStats {
    fn add(&mut self, column: &ArrayRef) -> Result<()> {
        use arrow::compute::{max, max_string, min, min_string};
        use arrow::datatypes::*;
        self.nulls += column.null_count() as u64;
        let (lo, hi) = match column.data_type() {
            DataType::Utf8 => {
                let a = column.as_string::<i32>();
                (
                    min_string(a).map(|s| StatValue::Text(s.to_string())),
                    max_string(a).map(|s| StatValue::Text(s.to_string())),
                )
            }
            DataType::Int32 => {
                let a = column.as_primitive::<Int32Type>();
                (
                    min(a).map(|v| StatValue::Int(v.into())),
                    max(a).map(|v| StatValue::Int(v.into())),
                )
            }
            DataType::Int64 => {
                let a = column.as_primitive::<Int64Type>();
                (min(a).map(StatValue::Int), max(a).map(StatValue::Int))
            }
            DataType::Float64 => {
                let a = column.as_primitive::<Float64Type>();
                (min(a).map(StatValue::Float), max(a).map(StatValue::Float))
            }
            DataType::Date32 => {
                let a = column.as_primitive::<Date32Type>();
                (min(a).map(StatValue::Date), max(a).map(StatValue::Date))
            }
            // Other types carry null counts only.
            _ => (None, None),
        };
        if let Some(lo) = lo
            && self.min.as_ref().is_none_or(|m| lo < *m)
        {
            self.min = Some(lo);
        }
        if let Some(hi) = hi
            && self.max.as_ref().is_none_or(|m| hi > *m)
        {
            self.max = Some(hi);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Int64Array, StringArray};

    #[test]
    fn statistics_track_min_max_and_nulls_across_batches() {
        let mut s = ColumnStats::default();
        let a: ArrayRef = Arc::new(StringArray::from(vec![
            Some("310104"),
            None,
            Some("310101"),
        ]));
        let b: ArrayRef = Arc::new(StringArray::from(vec![Some("310115")]));
        s.add(&a).unwrap();
        s.add(&b).unwrap();
        assert_eq!(
            (s.min, s.max, s.nulls),
            (
                Some(StatValue::Text("310101".into())),
                Some(StatValue::Text("310115".into())),
                1
            )
        );
        let mut d = ColumnStats::default();
        d.add(&(Arc::new(Date32Array::from(vec![19_000, 18_000])) as ArrayRef))
            .unwrap();
        assert_eq!(d.min.unwrap().into_json(), Value::from("2019-04-14"));
        let mut n = ColumnStats::default();
        n.add(&(Arc::new(Int64Array::from(vec![None::<i64>])) as ArrayRef))
            .unwrap();
        assert_eq!((n.min, n.nulls), (None, 1), "no values: no min");
    }
}
