//! Connectors: how data gets into and out of Tongban as Arrow record batches.
//!
//! Connectors know nothing of policies or of the catalog: they move batches.
//! What may leave is decided in `tongban-policies` and enforced in the hub;
//! which source feeds which resource is a sync job, kept by the catalog and
//! run by the hub.
//!
//! # Layout
//!
//! - [`Source`] streams Arrow batches from a provider's system, in full or
//!   since a watermark; [`Sink`] writes a batch stream and commits or rolls
//!   back before returning. Both are in this file.
//! - [`SourceConfig`] / [`SinkConfig`] (`config.rs`): the closed, tagged enums
//!   (`type = "postgres" | "mysql" | "file" | "http"`) a sync job stores;
//!   `open()` turns one into a runtime connector.
//! - One folder per connector, each with its config struct (serde, validated
//!   without IO) and its runtime:
//!   - `postgres/`: binary `COPY (…) TO STDOUT` decoded straight into Arrow;
//!     binary `COPY … FROM STDIN` in one transaction for the sink;
//!   - `mysql/`: MySQL and MariaDB, streamed, split into primary-key ranges;
//!   - `file/`: CSV, JSON lines and Parquet, on the local disk or an object
//!     store URL;
//!   - `http/`: paginated JSON APIs with retries and timeouts.
//! - `docs/connectors.md` (repository root) documents each type mapping.
//!
//! Every connector passes the same conformance suite
//! (`tests/it/conformance.rs`): the schema announced is the schema read, an
//! empty input gives an empty stream with that schema, dropping a stream
//! midway cancels the read, and a sink that fails midway leaves nothing.

mod config;
mod error;
pub mod file;
pub mod http;
pub mod mysql;
pub mod postgres;

pub use config::{SinkConfig, SourceConfig};
pub use error::{Error, Result};

use arrow::array::Array;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use futures::stream::BoxStream;

/// Rows per batch when a connector's config does not say.
pub const DEFAULT_BATCH_ROWS: usize = 65_536;

/// A stream of record batches, all with the schema announced before it.
pub type BatchStream = BoxStream<'static, Result<RecordBatch>>;

/// Which rows a read returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Read {
    /// Every row.
    #[default]
    Full,
    /// The rows whose `column` is greater than `after` (an incremental sync
    /// past its watermark). `after` is the text form of the last value seen
    /// (what [`watermark_of`] returns); the source compares in the column's
    /// own type.
    Since { column: String, after: String },
}

/// A provider's system that rows come from.
///
/// Implementations announce their schema without reading rows, then stream
/// batches of exactly that schema. Dropping the stream cancels the read and
/// releases its connection.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// The Arrow schema [`Source::read`] will produce. An unsupported column
    /// type is an [`Error::UnsupportedType`] naming the column.
    async fn schema(&self) -> Result<SchemaRef>;

    /// Streams the rows `read` selects.
    async fn read(&self, read: &Read) -> Result<BatchStream>;

    /// Sets of columns whose values the source guarantees unique (a primary
    /// key or a unique constraint), each in column order; empty when the
    /// source cannot say. A sync whose key is one of them need not check
    /// keys for duplicates row by row.
    async fn unique_keys(&self) -> Result<Vec<Vec<String>>> {
        Ok(Vec::new())
    }
}

/// A system that rows are written into.
#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// Writes every batch of `input` and commits before returning the number
    /// of rows written. If `input` yields an error, or writing fails, nothing
    /// written is kept (rolled back) and the error is returned.
    async fn write_all(&self, schema: SchemaRef, input: BatchStream) -> Result<u64>;
}

/// The largest value of `column` in `batch`, as the text a later
/// [`Read::Since`] takes; `None` when the batch has no non-null value.
/// Integers, dates, timestamps and strings are supported (a watermark column
/// must be ordered).
pub fn watermark_of(batch: &RecordBatch, column: &str) -> Result<Option<String>> {
    use arrow::compute::kernels::aggregate::{max, max_string};
    use arrow::datatypes::{DataType, TimeUnit};
    let col = batch
        .column_by_name(column)
        .ok_or_else(|| Error::Config(format!("watermark column '{column}' is not in the data")))?;
    let unsupported = || {
        Error::Config(format!(
            "watermark column '{column}' has type {}; use an integer, date, timestamp or text column",
            col.data_type()
        ))
    };
    let arr = col.as_ref();
    let text = match col.data_type() {
        DataType::Int16 => max(arrow::array::cast::as_primitive_array::<
            arrow::datatypes::Int16Type,
        >(arr))
        .map(|v| v.to_string()),
        DataType::Int32 => max(arrow::array::cast::as_primitive_array::<
            arrow::datatypes::Int32Type,
        >(arr))
        .map(|v| v.to_string()),
        DataType::Int64 => max(arrow::array::cast::as_primitive_array::<
            arrow::datatypes::Int64Type,
        >(arr))
        .map(|v| v.to_string()),
        DataType::Date32 => max(arrow::array::cast::as_primitive_array::<
            arrow::datatypes::Date32Type,
        >(arr))
        .and_then(|d| chrono::DateTime::from_timestamp(i64::from(d) * 86_400, 0))
        .map(|d| d.date_naive().to_string()),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let v = max(arrow::array::cast::as_primitive_array::<
                arrow::datatypes::TimestampMicrosecondType,
            >(arr));
            v.and_then(chrono::DateTime::from_timestamp_micros)
                .map(|t| {
                    if tz.is_some() {
                        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
                    } else {
                        t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string()
                    }
                })
        }
        DataType::Utf8 => max_string(arrow::array::cast::as_string_array(arr)).map(str::to_string),
        _ => return Err(unsupported()),
    };
    Ok(text)
}

/// The rows of `batch` whose `column` is greater than `after`, for sources
/// that cannot push a watermark down to their system. `after` is cast to the
/// column's type, so `2026-01-31` compares as a date and `9` as a number.
pub fn filter_since(batch: &RecordBatch, column: &str, after: &str) -> Result<RecordBatch> {
    let col = batch
        .column_by_name(column)
        .ok_or_else(|| Error::Config(format!("watermark column '{column}' is not in the data")))?;
    let bound = arrow::compute::cast(
        &arrow::array::StringArray::from(vec![after]),
        col.data_type(),
    )
    .map_err(|e| {
        Error::Config(format!(
            "watermark '{after}' is not a {}: {e}",
            col.data_type()
        ))
    })?;
    if bound.is_null(0) {
        return Err(Error::Config(format!(
            "watermark '{after}' is not a {}",
            col.data_type()
        )));
    }
    let keep = arrow::compute::kernels::cmp::gt(col, &arrow::array::Scalar::new(bound))?;
    Ok(arrow::compute::filter_record_batch(batch, &keep)?)
}
