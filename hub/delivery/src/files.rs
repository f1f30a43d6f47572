//! Policy-applied Parquet files: what Delta Sharing file URLs serve.
//!
//! For one subscription, plan (fingerprint), version and part (snapshot or
//! change set), the released rows are written once into Parquet files of at
//! most `delivery.file_rows` rows, with a `manifest.json` listing each file
//! with its size and statistics (rows, min, max, nulls per column — what
//! predicate hints are checked against). Files are written into a temporary
//! folder and renamed into place complete, so a reader never sees half a
//! file and two hubs writing the same files at once do no harm.
//!
//! Layout: `DATA_DIR/sharing/sub-<id>/<fingerprint>/v<N>-<part>/part-NNNNN.parquet`.
//! A changed policy (another mask, filter or item) is another fingerprint,
//! so files of an old plan are never served under a new one.

use super::Delivery;
use super::apply::{self, Part};
use super::plan::Plan;
use crate::{Error, Result};
use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tongban_catalog::DatasetVersion;
use tongban_datasets::DatasetStore;

/// One shared file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedFile {
    /// Relative to the sharing directory.
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
    delivery: &Delivery,
    datasets: &DatasetStore,
    schema: SchemaRef,
    plan: &Plan,
    version: &DatasetVersion,
    part: Part,
    hash_key: Arc<str>,
) -> Result<Option<Manifest>> {
    let rel = folder(plan, version.version, part);
    let dir = delivery.sharing_dir().join(&rel);
    if let Some(m) = read_manifest(&dir).await? {
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
    let tmp_root = delivery.sharing_dir().join("tmp");
    tokio::fs::create_dir_all(&tmp_root)
        .await
        .map_err(Error::file(&tmp_root))?;
    let tmp = tmp_root.join(format!(
        "{}-{}",
        rel.replace('/', "_"),
        tongban_core::auth::new_token()
    ));
    tokio::fs::create_dir_all(&tmp)
        .await
        .map_err(Error::file(&tmp))?;
    let written = write_files(
        &tmp,
        &rel,
        schema,
        apply::released(datasets, &location, plan, part, hash_key).await?,
        delivery.config().file_rows,
    )
    .await;
    let files = match written {
        Ok(files) => files,
        Err(e) => {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            return Err(e);
        }
    };
    let manifest = Manifest {
        version: version.version,
        files,
    };
    let text = serde_json::to_vec_pretty(&manifest).expect("manifests serialise");
    let path = tmp.join("manifest.json");
    tokio::fs::write(&path, text)
        .await
        .map_err(Error::file(&path))?;
    if let Some(parent) = dir.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(Error::file(parent))?;
    }
    if tokio::fs::rename(&tmp, &dir).await.is_err() {
        // Another writer got there first: its files are the same.
        let _ = tokio::fs::remove_dir_all(&tmp).await;
        if let Some(m) = read_manifest(&dir).await? {
            return Ok(Some(m));
        }
        return Err(Error::SharedFiles(format!(
            "could not place shared files at {}",
            dir.display()
        )));
    }
    Ok(Some(manifest))
}

async fn read_manifest(dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join("manifest.json");
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
            Error::SharedFiles(format!("{}: unreadable manifest ({e})", path.display()))
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::File { path, source: e }),
    }
}

/// Writes the stream into files of at most `file_rows` rows.
async fn write_files(
    dir: &Path,
    rel: &str,
    schema: SchemaRef,
    mut input: futures::stream::BoxStream<'static, Result<RecordBatch>>,
    file_rows: usize,
) -> Result<Vec<SharedFile>> {
    let mut files = Vec::new();
    let mut current: Option<Open> = None;
    while let Some(batch) = input.next().await {
        let mut batch = batch?;
        while batch.num_rows() > 0 {
            if current.is_none() {
                current = Some(Open::new(dir, files.len(), schema.clone()).await?);
            }
            let open = current.as_mut().expect("opened above");
            let room = file_rows - open.rows;
            let take = room.min(batch.num_rows());
            let head = batch.slice(0, take);
            batch = batch.slice(take, batch.num_rows() - take);
            open.write(&head).await?;
            if open.rows == file_rows {
                let done = current.take().expect("open");
                files.push(done.finish(rel).await?);
            }
        }
    }
    if let Some(open) = current {
        files.push(open.finish(rel).await?);
    }
    Ok(files)
}

/// A file being written, with its running statistics.
struct Open {
    name: String,
    path: PathBuf,
    writer: AsyncArrowWriter<tokio::fs::File>,
    rows: usize,
    stats: Vec<ColumnStats>,
    schema: SchemaRef,
}

impl Open {
    async fn new(dir: &Path, n: usize, schema: SchemaRef) -> Result<Open> {
        let name = format!("part-{n:05}.parquet");
        let path = dir.join(&name);
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(Error::file(&path))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let writer = AsyncArrowWriter::try_new(file, schema.clone(), Some(props))?;
        Ok(Open {
            name,
            path,
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

    async fn finish(self, rel: &str) -> Result<SharedFile> {
        let Open {
            name,
            path,
            mut writer,
            rows,
            stats,
            schema,
        } = self;
        writer.finish().await?;
        let size = tokio::fs::metadata(&path)
            .await
            .map_err(Error::file(&path))?
            .len();
        let (mut min, mut max, mut nulls) = (Map::new(), Map::new(), Map::new());
        for (field, s) in schema.fields().iter().zip(stats) {
            nulls.insert(field.name().clone(), Value::from(s.nulls));
            if let (Some(lo), Some(hi)) = (s.min, s.max) {
                min.insert(field.name().clone(), lo.into_json());
                max.insert(field.name().clone(), hi.into_json());
            }
        }
        let rel_path = format!("{rel}/{name}");
        let id = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(rel_path.as_bytes())[..16]);
        Ok(SharedFile {
            path: rel_path,
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
