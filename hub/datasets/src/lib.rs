//! Dataset versions on the object store: immutable Parquet snapshots of a
//! resource, laid out as `<resource>/v<N>/part-00000.parquet` under the store
//! root (`DATA_DIR/datasets` by default; S3 later needs only another
//! `ObjectStore`).
//!
//! A version becomes visible in one step, after its files are complete: the
//! writer uploads (a multipart upload that the store commits on close), then
//! the version record is committed to the catalog. A crash before that leaves
//! at most unreferenced files and the previous version serving.
//!
//! Crate ladder (docs/architecture.md): depends on `tongban-catalog` only.

use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::path::Path;
use std::sync::Arc;
use tongban_catalog::{DatasetVersion, NewDatasetVersion, ResourceSpec, Store};

/// Rows per Parquet row group: big enough for fast scans, small enough that an
/// index build can load groups in parallel.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// A column chunk stops dictionary-encoding once its dictionary passes
/// this size. Parquet's default (1 MiB) lets a unique column — a key, a
/// timestamp — intern every value of a 128 Ki-row group for nothing (a
/// sixth of a large sync's encoding time); at 64 KiB such columns fall back
/// to plain encoding after a few thousand values, while the columns that
/// gain from a dictionary (codes, districts, statuses, even names) keep it.
const DICTIONARY_PAGE_BYTES: usize = 64 * 1024;

/// Where dataset versions live.
#[derive(Debug, Clone)]
pub struct DatasetStore {
    store: Arc<dyn ObjectStore>,
}

impl DatasetStore {
    /// The local store under `DATA_DIR/datasets`.
    pub fn local(data_dir: &Path) -> Result<DatasetStore> {
        let root = data_dir.join("datasets");
        std::fs::create_dir_all(&root).map_err(Error::file(&root))?;
        Ok(DatasetStore {
            store: Arc::new(LocalFileSystem::new_with_prefix(&root)?),
        })
    }

    /// The folder of a version: resource codes contain `/`, folders use `-`.
    pub fn location(resource: &str, version: i64) -> String {
        format!("{}/v{version}", resource.replace('/', "-"))
    }

    /// Starts writing version `version` of `resource` with the given schema.
    pub fn begin(&self, resource: &str, version: i64, schema: SchemaRef) -> Result<VersionWriter> {
        self.begin_in(resource, version, Self::location(resource, version), schema)
    }

    /// The folder of a version written by sync run `run`: the run's id in
    /// the name, so two runs racing for the same version number never
    /// write into each other's files (the catalog lets only one record it).
    pub fn run_location(resource: &str, version: i64, run: i64) -> String {
        format!("{}-run{run}", Self::location(resource, version))
    }

    /// Where the change set of the version at `location` lives: beside it
    /// (not inside, so reading the version never reads it).
    pub fn changes_location(location: &str) -> String {
        format!("{location}-changes")
    }

    /// Starts writing version `version` of `resource` into `location`.
    pub fn begin_in(
        &self,
        resource: &str,
        version: i64,
        location: String,
        schema: SchemaRef,
    ) -> Result<VersionWriter> {
        let path = ObjectPath::from(format!("{location}/part-00000.parquet"));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
            .build();
        let writer = AsyncArrowWriter::try_new(
            BufWriter::new(self.store.clone(), path),
            schema,
            Some(props),
        )?;
        Ok(VersionWriter {
            resource: resource.to_string(),
            version,
            location,
            writer,
            rows: 0,
        })
    }
}

/// An open version being written; [`VersionWriter::publish`] makes it visible.
pub struct VersionWriter {
    resource: String,
    version: i64,
    location: String,
    writer: AsyncArrowWriter<BufWriter>,
    rows: usize,
}

impl VersionWriter {
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).await?;
        self.rows += batch.num_rows();
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Completes the files, then records the version in the catalog.
    pub async fn publish(self, store: &dyn Store, origin: &str) -> Result<DatasetVersion> {
        let record = self.complete(origin).await?;
        Ok(store.record_version(&record).await?)
    }

    /// Completes the files and returns the record that makes them visible,
    /// for a caller that commits it with more (a sync run's record).
    pub async fn complete(self, origin: &str) -> Result<NewDatasetVersion> {
        let mut writer = self.writer;
        // `finish` writes the footer and completes the upload.
        writer.finish().await?;
        Ok(NewDatasetVersion {
            resource: self.resource,
            version: self.version,
            row_count: self.rows as i64,
            byte_size: writer.bytes_written() as i64,
            location: self.location,
            origin: origin.to_string(),
        })
    }
}

impl DatasetStore {
    /// Reads every Parquet file of a version, in name order.
    pub async fn read_version(&self, location: &str) -> Result<Vec<RecordBatch>> {
        use futures::TryStreamExt;
        let prefix = ObjectPath::from(location);
        let mut files: Vec<ObjectPath> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        files.retain(|f| f.as_ref().ends_with(".parquet"));
        files.sort();
        let mut batches = Vec::new();
        for file in files {
            let bytes = self.store.get(&file).await?.bytes().await?;
            // Decoding is CPU work: off the async threads.
            let decoded = tokio::task::spawn_blocking(move || decode(bytes))
                .await
                .map_err(Error::Task)??;
            batches.extend(decoded);
        }
        Ok(batches)
    }
}

impl DatasetStore {
    /// The Parquet files of a version, in name order (none: no such version
    /// or change set).
    pub async fn files(&self, location: &str) -> Result<Vec<ObjectPath>> {
        use futures::TryStreamExt;
        let prefix = ObjectPath::from(location);
        let mut files: Vec<ObjectPath> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        files.retain(|f| f.as_ref().ends_with(".parquet"));
        files.sort();
        Ok(files)
    }

    /// Streams the batches of a version file by file, without holding the
    /// version in memory (deliveries read whole versions).
    pub async fn stream_version(
        &self,
        location: &str,
    ) -> Result<futures::stream::BoxStream<'static, Result<RecordBatch>>> {
        use futures::{StreamExt, TryStreamExt};
        let files = self.files(location).await?;
        let store = self.store.clone();
        let batches = futures::stream::iter(files)
            .then(move |file| {
                let store = store.clone();
                async move {
                    // Deprecated in parquet 59 in favour of hand-written
                    // `AsyncFileReader`s; it still reads object stores
                    // correctly, and replacing it is a refactor of its own.
                    #[allow(deprecated)]
                    let reader =
                        parquet::arrow::async_reader::ParquetObjectReader::new(store, file);
                    let stream = parquet::arrow::ParquetRecordBatchStreamBuilder::new(reader)
                        .await?
                        .with_batch_size(STREAM_BATCH_ROWS)
                        .build()?;
                    Ok::<_, Error>(stream.map_err(Error::from))
                }
            })
            .try_flatten();
        Ok(batches.boxed())
    }
}

/// Rows per batch when a version is streamed.
const STREAM_BATCH_ROWS: usize = 16 * 1024;

/// The next version number of a resource.
/// Decodes a Parquet file held in memory, its row groups split in
/// contiguous runs over the cores (a 10M-row population file decodes in
/// about half the time on two), the batches in file order.
fn decode(bytes: bytes::Bytes) -> Result<Vec<RecordBatch>> {
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
    let meta = ArrowReaderMetadata::load(&bytes, Default::default())?;
    let groups = meta.metadata().num_row_groups();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = groups.div_ceil(cores.min(groups).max(1)).max(1);
    let read = |first: usize| -> Result<Vec<RecordBatch>> {
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(bytes.clone(), meta.clone())
                .with_row_groups((first..(first + per).min(groups)).collect())
                .with_batch_size(64 * 1024)
                .build()?;
        Ok(reader.collect::<Result<Vec<_>, _>>()?)
    };
    if groups <= per {
        return read(0);
    }
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..groups)
            .step_by(per)
            .map(|first| s.spawn(move || read(first)))
            .collect();
        let mut batches = Vec::new();
        for part in parts {
            batches.extend(part.join().expect("decoding does not panic")?);
        }
        Ok(batches)
    })
}

pub async fn next_version(store: &dyn Store, resource: &str) -> Result<i64> {
    Ok(store
        .list_versions(resource)
        .await?
        .first()
        .map_or(1, |v| v.version + 1))
}

/// The Arrow schema a resource's items describe (every column nullable unless
/// it is a key item).
pub fn schema_of(spec: &ResourceSpec) -> Result<Schema> {
    let fields = spec
        .items
        .iter()
        .map(|item| {
            let dt: DataType = item.data_type.parse().map_err(|e| Error::Schema {
                resource: spec.code.clone(),
                message: format!("item {}: {e}", item.name),
            })?;
            let nullable = !spec.key_items.contains(&item.name);
            Ok(arrow::datatypes::Field::new(&item.name, dt, nullable))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Schema::new(fields))
}

/// Checks that data has exactly the resource's items, in order, with their
/// types (nullability is the data's own business).
pub fn check_schema(spec: &ResourceSpec, schema: &Schema) -> Result<()> {
    let want = schema_of(spec)?;
    let describe = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
    };
    if describe(&want) != describe(schema) {
        return Err(Error::Schema {
            resource: spec.code.clone(),
            message: format!(
                "columns {:?} do not match the directory's items {:?}",
                describe(schema),
                describe(&want)
            ),
        });
    }
    Ok(())
}

/// What can go wrong with a dataset version.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The catalog refused or failed a version record.
    #[error(transparent)]
    Catalog(#[from] tongban_catalog::Error),
    /// A local folder or file of the store could not be made or read.
    #[error("{path}: {source}")]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// Data does not match its resource's items (a type the directory names
    /// that Arrow cannot read, or a column missing or of another type).
    #[error("dataset {resource}: {message}")]
    Schema { resource: String, message: String },
    /// A decoding task panicked or was cancelled.
    #[error("parquet decoding task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an IO error with the path it concerns.
    pub fn file(path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::File { path, source }
    }
}
