//! Dataset versions on the object store: immutable Parquet snapshots of a
//! resource, laid out as `datasets/<resource>/v<N>…/part-00000.parquet`
//! under the store's root, beside `quarantine/<job>/run-<id>.parquet`. The
//! root is `DATA_DIR` on one machine, or an S3 bucket and prefix
//! ([`ObjectStoreConfig`]) that several replicas share.
//!
//! A version becomes visible in one step, after its files are complete: the
//! writer uploads (a multipart upload that the store commits on close), then
//! the version record is committed to the catalog. A crash before that leaves
//! at most unreferenced files and the previous version serving.
//!
//! Nothing is overwritten. Objects written whole (quarantine files, and the
//! audit segments replicas ship) go through [`DatasetStore::put_new`], a
//! create-only put (`If-None-Match: *` on S3). A multipart upload cannot be
//! made conditional through `object_store` 0.13, so version files never
//! share a name instead: each writer's folder carries its sync run's id or
//! a random suffix, and the catalog's unique (resource, version) record
//! decides which folder becomes the version.
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

/// The `[object_store]` table of the configuration: an S3-compatible
/// bucket (or a local folder) that every replica shares. Credentials come
/// from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// optionally `AWS_SESSION_TOKEN`), never from the file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectStoreConfig {
    /// `s3://BUCKET/PREFIX` or `file:///ABSOLUTE/PATH`.
    pub url: String,
    /// The S3 endpoint, e.g. `https://s3.internal:9000`. Unset: AWS's own,
    /// from the region.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The S3 region. Unset: `AWS_REGION`, else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// Address the bucket in the path (`endpoint/bucket/key`) rather than as
    /// a host name (`bucket.endpoint/key`): most on-premises S3 servers want it.
    #[serde(default)]
    pub path_style: bool,
    /// Allow an `http://` endpoint. Only for a store on a private network:
    /// requests carry the data in clear.
    #[serde(default)]
    pub allow_http: bool,
}

impl ObjectStoreConfig {
    /// Every problem of the table, without IO.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let url = self.url.as_str();
        if let Some(rest) = url.strip_prefix("s3://") {
            if rest.split('/').next().is_none_or(str::is_empty) {
                out.push(format!("object_store.url: '{url}' names no bucket"));
            }
        } else if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                out.push(format!(
                    "object_store.url: '{url}' must be an absolute file:///PATH"
                ));
            }
        } else {
            out.push(format!(
                "object_store.url: '{url}' is not an s3://BUCKET/PREFIX or file:///PATH url"
            ));
        }
        if let Some(e) = &self.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                out.push(format!(
                    "object_store.endpoint: '{e}' is not an http:// or https:// URL"
                ));
            } else if e.starts_with("http://") && !self.allow_http {
                out.push(format!(
                    "object_store.endpoint: '{e}' is plain HTTP; set allow_http = true if the store is on a private network"
                ));
            }
        }
        out
    }
}

/// Where dataset versions and quarantine files live.
#[derive(Debug, Clone)]
pub struct DatasetStore {
    /// The store's root: versions under `datasets/`, quarantine files
    /// under `quarantine/`.
    store: Arc<dyn ObjectStore>,
    /// How the root is named to people: a folder or `s3://bucket/prefix`.
    root: String,
}

/// Where version folders live under the root.
const DATASETS: &str = "datasets";

/// What a create-only put found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    /// The object was there already (another writer made it); nothing changed.
    Exists,
}

impl DatasetStore {
    /// The local store in `DATA_DIR`.
    pub fn local(data_dir: &Path) -> Result<DatasetStore> {
        let datasets = data_dir.join(DATASETS);
        std::fs::create_dir_all(&datasets).map_err(Error::file(&datasets))?;
        let root = std::path::absolute(data_dir).map_err(Error::file(data_dir))?;
        Ok(DatasetStore {
            store: Arc::new(LocalFileSystem::new_with_prefix(&root)?),
            root: root.display().to_string(),
        })
    }

    /// The configured store: `[object_store]`, or `DATA_DIR` without one.
    /// Opening does no IO on S3; the first request tells whether the bucket
    /// and the credentials work.
    pub fn open(config: Option<&ObjectStoreConfig>, data_dir: &Path) -> Result<DatasetStore> {
        let Some(config) = config else {
            return Self::local(data_dir);
        };
        if let Some(problem) = config.problems().into_iter().next() {
            return Err(Error::Config(problem));
        }
        if let Some(path) = config.url.strip_prefix("file://") {
            let path = Path::new(path);
            std::fs::create_dir_all(path.join(DATASETS)).map_err(Error::file(path))?;
            return Self::local(path);
        }
        let rest = config.url.strip_prefix("s3://").unwrap_or_default();
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/');
        // from_env: credentials (and anything else AWS_* the operator set).
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let region = config
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_string());
        builder = builder.with_region(region);
        let s3: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            s3
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
        };
        let root = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        Ok(DatasetStore { store, root })
    }

    /// How the store's root is named: a folder or `s3://bucket/prefix`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The object store under the root, for other writers of the hub's
    /// files (the audit log's shipped segments).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// How an object under the root is named to people (a run's
    /// quarantine file in its record, a log line).
    pub fn display(&self, path: &str) -> String {
        format!("{}/{path}", self.root)
    }

    /// Writes `bytes` at `path` unless something is there already: a
    /// create-only put, so two replicas never clobber each other's object.
    pub async fn put_new(&self, path: &str, bytes: bytes::Bytes) -> Result<Put> {
        let opts = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&ObjectPath::from(path), bytes.into(), opts)
            .await
        {
            Ok(_) => Ok(Put::Created),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Put::Exists),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a whole object under the root.
    pub async fn get(&self, path: &str) -> Result<bytes::Bytes> {
        Ok(self
            .store
            .get(&ObjectPath::from(path))
            .await?
            .bytes()
            .await?)
    }

    /// The folder of a version: resource codes contain `/`, folders use `-`.
    pub fn location(resource: &str, version: i64) -> String {
        format!("{}/v{version}", resource.replace('/', "-"))
    }

    /// Starts writing version `version` of `resource` with the given schema,
    /// into a folder of its own (a random suffix: two writers racing for
    /// the same version number never write into each other's files).
    pub fn begin(&self, resource: &str, version: i64, schema: SchemaRef) -> Result<VersionWriter> {
        let suffix = getrandom::u32().map_err(Error::Randomness)?;
        let location = format!("{}-{suffix:08x}", Self::location(resource, version));
        self.begin_in(resource, version, location, schema)
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
        let path = ObjectPath::from(format!("{DATASETS}/{location}/part-00000.parquet"));
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
        let files = self.files(location).await?;
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
        let prefix = ObjectPath::from(format!("{DATASETS}/{location}"));
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
    /// The system gave no random bytes for a version folder's name.
    #[error("no randomness: {0}")]
    Randomness(getrandom::Error),
    /// The `[object_store]` table is wrong (see [`ObjectStoreConfig::problems`]).
    #[error("{0}")]
    Config(String),
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
