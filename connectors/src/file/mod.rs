//! Files: CSV, JSON lines and Parquet, from a local path (a file, or a
//! directory of files of the format, read in name order) or an object store
//! URL (`file:///…`; other stores as `object_store` is built with them).
//!
//! CSV and JSON lines take their schema from `columns` when given (the
//! stable choice for a sync job), else infer it from the first file's first
//! 1,000 records. Parquet files carry their schema. [`FileSink`] writes one
//! file atomically: to a temporary name beside it, renamed on success.

use crate::{BatchStream, DEFAULT_BATCH_ROWS, Error, Read, Result};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    /// JSON lines: one object per line.
    Jsonl,
    Parquet,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }
}

/// A declared column: its name and Arrow type as Arrow writes it
/// (`Utf8`, `Int64`, `Float64`, `Boolean`, `Date32`, `Decimal128(12, 2)`,
/// `Timestamp(Microsecond, None)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

/// Declared columns as an Arrow schema (all nullable: the quality gate, not
/// the reader, judges missing values).
pub fn declared_schema(columns: &[ColumnSpec]) -> Result<SchemaRef> {
    let mut fields = Vec::with_capacity(columns.len());
    for c in columns {
        let t: DataType = c.data_type.parse().map_err(|e| {
            Error::Config(format!("column '{}': type '{}': {e}", c.name, c.data_type))
        })?;
        fields.push(Field::new(&c.name, t, true));
    }
    Ok(Arc::new(Schema::new(fields)))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A local file or directory …
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// … or an object store URL of one file.
    #[serde(default)]
    pub url: Option<String>,
    /// The format; by default from the file extension.
    #[serde(default)]
    pub format: Option<Format>,
    /// CSV: whether the first line names the columns (default true).
    #[serde(default)]
    pub header: Option<bool>,
    /// CSV: the field delimiter (default `,`).
    #[serde(default)]
    pub delimiter: Option<char>,
    /// The columns and types; inferred from the data when absent.
    #[serde(default)]
    pub columns: Vec<ColumnSpec>,
    #[serde(default)]
    pub batch_rows: Option<usize>,
}

impl SourceConfig {
    pub fn validate(&self) -> Result<()> {
        match (&self.path, &self.url) {
            (Some(_), None) => {}
            (None, Some(u)) => {
                url::Url::parse(u).map_err(|e| Error::Config(format!("file url: {e}")))?;
            }
            _ => {
                return Err(Error::Config(
                    "file source: give exactly one of `path` and `url`".into(),
                ));
            }
        }
        self.format()?;
        if let Some(d) = self.delimiter
            && !d.is_ascii()
        {
            return Err(Error::Config(
                "file source: the delimiter must be one ASCII character".into(),
            ));
        }
        if !self.columns.is_empty() {
            declared_schema(&self.columns)?;
        }
        if self.batch_rows == Some(0) {
            return Err(Error::Config(
                "file source: batch_rows must be at least 1".into(),
            ));
        }
        Ok(())
    }

    fn format(&self) -> Result<Format> {
        if let Some(f) = self.format {
            return Ok(f);
        }
        let name = self
            .path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .or_else(|| self.url.clone())
            .unwrap_or_default();
        match name.rsplit('.').next() {
            Some("csv") => Ok(Format::Csv),
            Some("jsonl" | "ndjson" | "json") => Ok(Format::Jsonl),
            Some("parquet") => Ok(Format::Parquet),
            _ => Err(Error::Config(format!(
                "file source: cannot tell the format of '{name}'; set `format` (csv, jsonl, parquet)"
            ))),
        }
    }
}

/// Reads CSV, JSON lines or Parquet.
pub struct FileSource {
    config: SourceConfig,
    format: Format,
}

impl FileSource {
    pub fn new(config: SourceConfig) -> Result<FileSource> {
        config.validate()?;
        let format = config.format()?;
        Ok(FileSource { config, format })
    }

    /// The files to read, in order, as their bytes' origin.
    async fn inputs(&self) -> Result<Vec<Input>> {
        if let Some(u) = &self.config.url {
            return Ok(vec![Input::Url(u.clone())]);
        }
        let path = self.config.path.as_ref().expect("validated");
        let meta = tokio::fs::metadata(path).await.map_err(|e| Error::File {
            path: path.clone(),
            source: e,
        })?;
        if !meta.is_dir() {
            return Ok(vec![Input::Local(path.clone())]);
        }
        let ext = self.format.extension();
        let mut files = Vec::new();
        let mut dir = tokio::fs::read_dir(path).await.map_err(|e| Error::File {
            path: path.clone(),
            source: e,
        })?;
        while let Some(entry) = dir.next_entry().await.map_err(|e| Error::File {
            path: path.clone(),
            source: e,
        })? {
            let p = entry.path();
            if p.extension().and_then(|e| e.to_str()) == Some(ext) {
                files.push(p);
            }
        }
        files.sort();
        Ok(files.into_iter().map(Input::Local).collect())
    }

    /// The schema: declared, else from the first file.
    async fn resolve_schema(&self, inputs: &[Input]) -> Result<SchemaRef> {
        if !self.config.columns.is_empty() {
            return declared_schema(&self.config.columns);
        }
        let Some(first) = inputs.first() else {
            return Err(Error::Config(
                "file source: the directory has no files to infer columns from; declare `columns`"
                    .into(),
            ));
        };
        let bytes = first.bytes().await?;
        let format = self.format;
        let (header, delimiter) = self.csv_options();
        tokio::task::spawn_blocking(move || -> Result<SchemaRef> {
            Ok(Arc::new(match format {
                Format::Csv => {
                    arrow::csv::reader::Format::default()
                        .with_header(header)
                        .with_delimiter(delimiter)
                        .infer_schema(std::io::Cursor::new(&bytes[..]), Some(1000))?
                        .0
                }
                Format::Jsonl => {
                    arrow::json::reader::infer_json_schema(
                        std::io::Cursor::new(&bytes[..]),
                        Some(1000),
                    )?
                    .0
                }
                Format::Parquet => {
                    let reader =
                        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                            bytes,
                        )?;
                    reader.schema().as_ref().clone()
                }
            }))
        })
        .await
        .map_err(|e| Error::Config(format!("schema inference stopped: {e}")))?
    }

    fn csv_options(&self) -> (bool, u8) {
        (
            self.config.header.unwrap_or(true),
            self.config.delimiter.map_or(b',', |c| c as u8),
        )
    }
}

/// Where a file's bytes come from.
#[derive(Clone)]
enum Input {
    Local(PathBuf),
    Url(String),
}

impl Input {
    async fn bytes(&self) -> Result<bytes::Bytes> {
        match self {
            Input::Local(p) => tokio::fs::read(p)
                .await
                .map(bytes::Bytes::from)
                .map_err(|e| Error::File {
                    path: p.clone(),
                    source: e,
                }),
            Input::Url(u) => {
                let url =
                    url::Url::parse(u).map_err(|e| Error::Config(format!("file url: {e}")))?;
                use object_store::ObjectStoreExt;
                let (store, path) = object_store::parse_url(&url)?;
                Ok(store.get(&path).await?.bytes().await?)
            }
        }
    }
}

#[async_trait::async_trait]
impl crate::Source for FileSource {
    async fn schema(&self) -> Result<SchemaRef> {
        let inputs = self.inputs().await?;
        self.resolve_schema(&inputs).await
    }

    async fn read(&self, read: &Read) -> Result<BatchStream> {
        let inputs = self.inputs().await?;
        let schema = self.resolve_schema(&inputs).await?;
        let format = self.format;
        let (header, delimiter) = self.csv_options();
        let batch_rows = self.config.batch_rows.unwrap_or(DEFAULT_BATCH_ROWS);
        let read = read.clone();
        // Files are parsed on a blocking thread, a batch ahead of the
        // consumer; dropping the stream stops the parse at its next batch.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
        tokio::spawn(async move {
            for input in inputs {
                let bytes = match input.bytes().await {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                let (schema, tx2, read) = (schema.clone(), tx.clone(), read.clone());
                let done = tokio::task::spawn_blocking(move || {
                    let send = |b: Result<RecordBatch>| {
                        let b = b.and_then(|b| match &read {
                            Read::Full => Ok(b),
                            Read::Since { column, after } => crate::filter_since(&b, column, after),
                        });
                        tx2.blocking_send(b).is_ok()
                    };
                    parse(format, bytes, schema, header, delimiter, batch_rows, send)
                })
                .await;
                match done {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        let _ = tx
                            .send(Err(Error::Config(format!("file reader stopped: {e}"))))
                            .await;
                        return;
                    }
                }
            }
        });
        Ok(crate::postgres::tokio_stream(rx))
    }
}

/// Parses one file into batches of `schema`, handing each to `send`; false
/// when `send` asked to stop or an error was sent.
fn parse(
    format: Format,
    bytes: bytes::Bytes,
    schema: SchemaRef,
    header: bool,
    delimiter: u8,
    batch_rows: usize,
    mut send: impl FnMut(Result<RecordBatch>) -> bool,
) -> bool {
    let reader: Result<Box<dyn Iterator<Item = Result<RecordBatch>>>> = match format {
        Format::Csv => arrow::csv::ReaderBuilder::new(schema.clone())
            .with_header(header)
            .with_delimiter(delimiter)
            .with_batch_size(batch_rows)
            .build(std::io::Cursor::new(bytes))
            .map(|r| Box::new(r.map(|b| b.map_err(Error::from))) as Box<dyn Iterator<Item = _>>)
            .map_err(Error::from),
        Format::Jsonl => arrow::json::ReaderBuilder::new(schema.clone())
            .with_batch_size(batch_rows)
            .build(std::io::Cursor::new(bytes))
            .map(|r| Box::new(r.map(|b| b.map_err(Error::from))) as Box<dyn Iterator<Item = _>>)
            .map_err(Error::from),
        Format::Parquet => {
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.with_batch_size(batch_rows).build())
                .map(|r| {
                    let schema = schema.clone();
                    Box::new(r.map(move |b| {
                        let b = b?;
                        if b.schema().fields() != schema.fields() {
                            return Err(Error::Config(format!(
                                "a file's schema differs from the first file's: {:?}",
                                b.schema()
                                    .fields()
                                    .iter()
                                    .map(|f| f.name())
                                    .collect::<Vec<_>>()
                            )));
                        }
                        Ok(b)
                    })) as Box<dyn Iterator<Item = _>>
                })
                .map_err(Error::from)
        }
    };
    let reader = match reader {
        Ok(r) => r,
        Err(e) => {
            send(Err(e));
            return false;
        }
    };
    for batch in reader {
        let failed = batch.is_err();
        if !send(batch) || failed {
            return false;
        }
    }
    true
}

/// Writing one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    pub path: PathBuf,
    /// The format; by default from the file extension.
    #[serde(default)]
    pub format: Option<Format>,
}

impl SinkConfig {
    pub fn validate(&self) -> Result<()> {
        self.format().map(drop)
    }

    fn format(&self) -> Result<Format> {
        self.format.map(Ok).unwrap_or_else(|| {
            SourceConfig {
                path: Some(self.path.clone()),
                url: None,
                format: None,
                header: None,
                delimiter: None,
                columns: Vec::new(),
                batch_rows: None,
            }
            .format()
        })
    }
}

/// Writes a file atomically: a temporary file beside it, renamed into place
/// only when every batch is written.
pub struct FileSink {
    path: PathBuf,
    format: Format,
}

impl FileSink {
    pub fn new(config: SinkConfig) -> Result<FileSink> {
        let format = config.format()?;
        Ok(FileSink {
            path: config.path,
            format,
        })
    }
}

#[async_trait::async_trait]
impl crate::Sink for FileSink {
    async fn write_all(&self, schema: SchemaRef, mut input: BatchStream) -> Result<u64> {
        let tmp = temp_beside(&self.path);
        let file = std::fs::File::create(&tmp).map_err(|e| Error::File {
            path: tmp.clone(),
            source: e,
        })?;
        let mut writer = Writer::new(self.format, file, schema)?;
        let mut rows = 0u64;
        let written: Result<()> = async {
            while let Some(batch) = input.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                writer.write(&batch)?;
            }
            writer.finish()
        }
        .await;
        match written {
            Ok(()) => {
                std::fs::rename(&tmp, &self.path).map_err(|e| Error::File {
                    path: self.path.clone(),
                    source: e,
                })?;
                Ok(rows)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

enum Writer {
    Csv(Box<arrow::csv::Writer<std::fs::File>>),
    Jsonl(arrow::json::LineDelimitedWriter<std::fs::File>),
    Parquet(Box<parquet::arrow::ArrowWriter<std::fs::File>>),
}

impl Writer {
    fn new(format: Format, file: std::fs::File, schema: SchemaRef) -> Result<Writer> {
        Ok(match format {
            Format::Csv => Writer::Csv(Box::new(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(file),
            )),
            Format::Jsonl => Writer::Jsonl(arrow::json::LineDelimitedWriter::new(file)),
            Format::Parquet => Writer::Parquet(Box::new(parquet::arrow::ArrowWriter::try_new(
                file, schema, None,
            )?)),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Writer::Csv(w) => w.write(batch)?,
            Writer::Jsonl(w) => w.write(batch)?,
            Writer::Parquet(w) => w.write(batch)?,
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        let file = match self {
            Writer::Csv(w) => w.into_inner(),
            Writer::Jsonl(mut w) => {
                w.finish()?;
                w.into_inner()
            }
            Writer::Parquet(w) => w.into_inner()?,
        };
        file.sync_all().map_err(|e| Error::File {
            path: PathBuf::from("<sink file>"),
            source: e,
        })
    }
}
