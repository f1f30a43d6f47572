//! JSON over HTTP: an [`HttpSource`] pages through a JSON API with GET
//! requests and turns each page's records into Arrow batches.
//!
//! Layout:
//! - this file: the config (serde, checked without IO by
//!   [`SourceConfig::validate`]) and the [`crate::Source`] implementation,
//!   whose producer task fetches pages one after another and decodes them;
//! - `fetch.rs`: one GET with its timeout, retries and backoff, and the
//!   headers with `${VAR}` expanded from the environment;
//! - `pages.rs`: the pagination styles (which URL comes next, when to stop)
//!   and finding the records in a page's body.
//!
//! Pages are fetched strictly in order (an API's pages are only stable read
//! forwards, and a provider's rate limits are easier kept that way). Records
//! are decoded with `arrow::json` against the declared columns, or against
//! columns inferred from the first page when none are declared.

mod fetch;
mod pages;

use crate::file::{ColumnSpec, declared_schema};
use crate::{BatchStream, DEFAULT_BATCH_ROWS, Error, Read, Result};
use arrow::compute::BatchCoalescer;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use url::Url;

pub use pages::Pagination;

/// Reading records from a paginated JSON API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The first page's URL, `http://` or `https://`. Its query parameters
    /// are sent with every page; pagination parameters replace same-named
    /// ones.
    pub url: String,
    /// Request headers. A value may name environment variables as `${VAR}`,
    /// read when a read starts, so tokens are never stored in the catalog:
    /// `{"Authorization": "Bearer ${HR_API_TOKEN}"}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON pointer (RFC 6901) to the array of records in each page's
    /// body, e.g. `/data/items`; empty (the default) when the body is the
    /// array itself.
    #[serde(default)]
    pub records: String,
    /// The columns and types; inferred from the first page when absent.
    /// Declare them for a sync job: an inferred schema changes when the
    /// first page's values do.
    #[serde(default)]
    pub columns: Vec<ColumnSpec>,
    /// How to get from one page to the next (default: one page only).
    #[serde(default)]
    pub pagination: Pagination,
    /// A query parameter to send an incremental read's watermark as, so the
    /// API can filter (e.g. `updated_after`). Rows are still filtered here
    /// too: the API's notion of "after" is not trusted to match ours.
    #[serde(default)]
    pub since_param: Option<String>,
    /// Time allowed for one request, connect to last body byte, in
    /// milliseconds (default 30,000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Retries of one request after a connect error, a timeout, a 429 or a
    /// 5xx (default 3). Other 4xx statuses fail at once.
    #[serde(default)]
    pub retries: Option<u32>,
    /// The first retry's wait in milliseconds, doubled at each retry
    /// (default 200); a `Retry-After: <seconds>` header overrides it.
    #[serde(default)]
    pub backoff_ms: Option<u64>,
    /// The most pages a read takes (default 100,000); an API that has more
    /// fails the read rather than being cut short silently.
    #[serde(default)]
    pub max_pages: Option<u64>,
    /// Rows per Arrow batch (default 65,536), whatever the page size.
    #[serde(default)]
    pub batch_rows: Option<usize>,
}

const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_BACKOFF_MS: u64 = 200;
const DEFAULT_MAX_PAGES: u64 = 100_000;

impl SourceConfig {
    /// Checks the config without any IO (environment variables named in
    /// headers are looked up only when a read starts).
    pub fn validate(&self) -> Result<()> {
        let url = Url::parse(&self.url)
            .map_err(|e| Error::Config(format!("http url '{}': {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::Config(format!(
                "http url '{}': use an http:// or https:// URL with a host",
                self.url
            )));
        }
        fetch::check_headers(&self.headers)?;
        pages::check_pointer("records", &self.records)?;
        if !self.columns.is_empty() {
            declared_schema(&self.columns)?;
        }
        self.pagination.validate()?;
        if self.since_param.as_deref().is_some_and(str::is_empty) {
            return Err(Error::Config(
                "http source: since_param must not be empty".into(),
            ));
        }
        for (name, value) in [
            ("timeout_ms", self.timeout_ms),
            ("max_pages", self.max_pages),
            ("batch_rows", self.batch_rows.map(|n| n as u64)),
        ] {
            if value == Some(0) {
                return Err(Error::Config(format!(
                    "http source: {name} must be at least 1"
                )));
            }
        }
        Ok(())
    }
}

/// Reads a paginated JSON API.
pub struct HttpSource {
    config: SourceConfig,
    /// Kept for the source's life so connections are reused across reads.
    client: reqwest::Client,
}

impl HttpSource {
    /// Checks the config and builds the HTTP client; no request is made.
    pub fn new(config: SourceConfig) -> Result<HttpSource> {
        config.validate()?;
        let client = fetch::client(&config)?;
        Ok(HttpSource { config, client })
    }

    /// The declared columns, if any.
    fn declared(&self) -> Result<Option<SchemaRef>> {
        if self.config.columns.is_empty() {
            Ok(None)
        } else {
            declared_schema(&self.config.columns).map(Some)
        }
    }
}

#[async_trait::async_trait]
impl crate::Source for HttpSource {
    async fn schema(&self) -> Result<SchemaRef> {
        if let Some(schema) = self.declared()? {
            return Ok(schema);
        }
        // Inferred: from the first page of a full read.
        let fetcher = fetch::Fetcher::new(&self.config, self.client.clone())?;
        let pager = pages::Pager::new(&self.config, &Read::Full)?;
        let url = pager.first();
        let mut body = fetcher.get(&url).await?;
        let records = pages::take_records(&mut body, &self.config.records, &url)?;
        if records.is_empty() {
            return Err(Error::Remote {
                system: "http",
                message: format!(
                    "GET {url}: the first page has no records to infer the columns from; declare `columns`"
                ),
            });
        }
        infer(&records, &url)
    }

    async fn read(&self, read: &Read) -> Result<BatchStream> {
        let declared = self.declared()?;
        let fetcher = fetch::Fetcher::new(&self.config, self.client.clone())?;
        let pager = pages::Pager::new(&self.config, read)?;
        let producer = Producer {
            fetcher,
            pager,
            records: self.config.records.clone(),
            read: read.clone(),
            max_pages: self.config.max_pages.unwrap_or(DEFAULT_MAX_PAGES),
            batch_rows: self.config.batch_rows.unwrap_or(DEFAULT_BATCH_ROWS),
        };
        // Pages are fetched and decoded in a task of their own, a batch
        // ahead of the consumer. Dropping the stream closes the channel,
        // which ends the task at once, even mid-request or mid-backoff, and
        // so releases its connection.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
        tokio::spawn(async move {
            let closed = tx.clone();
            tokio::select! {
                _ = closed.closed() => {}
                done = producer.run(declared, &tx) => {
                    if let Err(e) = done {
                        let _ = tx.send(Err(e)).await;
                    }
                }
            }
        });
        Ok(crate::postgres::tokio_stream(rx))
    }
}

/// One read's page loop.
struct Producer {
    fetcher: fetch::Fetcher,
    pager: pages::Pager,
    records: String,
    read: Read,
    max_pages: u64,
    batch_rows: usize,
}

type Sender = tokio::sync::mpsc::Sender<Result<RecordBatch>>;

impl Producer {
    /// Fetches every page and sends its rows in batches of `batch_rows`
    /// (batches span pages, so small pages still make full batches). Returns
    /// early, without error, when the consumer has gone.
    async fn run(mut self, declared: Option<SchemaRef>, tx: &Sender) -> Result<()> {
        let mut schema = declared;
        let mut coalescer: Option<BatchCoalescer> = None;
        let mut next = Some(self.pager.first());
        let mut pages = 0u64;
        while let Some(url) = next.take() {
            let mut body = self.fetcher.get(&url).await?;
            let records = pages::take_records(&mut body, &self.records, &url)?;
            next = self.pager.next(&url, &body, records.len())?;
            // The empty page that ends page and offset pagination is not a
            // page of records, so it does not count towards max_pages.
            if records.is_empty() && next.is_none() {
                break;
            }
            pages += 1;
            if pages > self.max_pages {
                return Err(Error::Remote {
                    system: "http",
                    message: format!(
                        "GET {url}: the API has more than max_pages = {} pages; raise max_pages if that is expected",
                        self.max_pages
                    ),
                });
            }
            if records.is_empty() {
                continue;
            }
            if schema.is_none() {
                schema = Some(infer(&records, &url)?);
            }
            let page_schema = schema.clone().expect("declared or inferred above");
            let out = coalescer
                .get_or_insert_with(|| BatchCoalescer::new(page_schema.clone(), self.batch_rows));
            for batch in decode(page_schema, &records, self.batch_rows, &url)? {
                let batch = match &self.read {
                    Read::Full => batch,
                    Read::Since { column, after } => crate::filter_since(&batch, column, after)?,
                };
                out.push_batch(batch)?;
                while let Some(done) = out.next_completed_batch() {
                    if tx.send(Ok(done)).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        if let Some(mut coalescer) = coalescer {
            coalescer.finish_buffered_batch()?;
            while let Some(done) = coalescer.next_completed_batch() {
                if tx.send(Ok(done)).await.is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// Columns inferred from one page's records.
fn infer(records: &[Value], url: &Url) -> Result<SchemaRef> {
    pages::check_objects(records, url)?;
    let schema = arrow::json::reader::infer_json_schema_from_iterator(records.iter().map(Ok))
        .map_err(|e| bad_records(url, e))?;
    Ok(Arc::new(schema))
}

/// One page's records as batches of at most `batch_rows` rows. Numbers and
/// booleans decode into `Utf8` columns as their JSON text (APIs are loose
/// about ids); keys not among the columns are ignored.
fn decode(
    schema: SchemaRef,
    records: &[Value],
    batch_rows: usize,
    url: &Url,
) -> Result<Vec<RecordBatch>> {
    pages::check_objects(records, url)?;
    let mut decoder = arrow::json::ReaderBuilder::new(schema)
        .with_coerce_primitive(true)
        .build_decoder()?;
    let mut batches = Vec::with_capacity(records.len().div_ceil(batch_rows));
    // `serialize` takes every row it is given, so hand it batch_rows at a time.
    for chunk in records.chunks(batch_rows) {
        decoder.serialize(chunk).map_err(|e| bad_records(url, e))?;
        if let Some(b) = decoder.flush().map_err(|e| bad_records(url, e))? {
            batches.push(b);
        }
    }
    Ok(batches)
}

fn bad_records(url: &Url, e: arrow::error::ArrowError) -> Error {
    Error::Remote {
        system: "http",
        message: format!("GET {url}: the records do not match the columns: {e}"),
    }
}
