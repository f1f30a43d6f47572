//! PostgreSQL: a [`PgSource`] reads with binary `COPY (SELECT …) TO STDOUT`,
//! decoded straight into Arrow builders (no text parsing, no row objects);
//! a [`PgSink`] writes with binary `COPY … FROM STDIN` inside one transaction.
//!
//! Connections go through sqlx, so TLS is rustls (ring): `sslmode=require`
//! (or `verify-full` with `sslrootcert=…`) in the URL.
//!
//! Layout: the configs are here; `types.rs` maps types; `copy.rs` decodes
//! and encodes the binary `COPY` format.

mod copy;
pub mod types;

use crate::{BatchStream, DEFAULT_BATCH_ROWS, Error, Read, Result};
use arrow::datatypes::{Field, Schema, SchemaRef};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, Row};
use std::sync::Arc;
use types::PgType;

/// Reading a table or a query from PostgreSQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `postgres://user@host:port/db?sslmode=require`. Never stored with a
    /// password in the catalog: use `password_env`.
    pub url: String,
    /// Name of an environment variable holding the password, if any.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A table (optionally `schema.table`) to read whole …
    #[serde(default)]
    pub table: Option<String>,
    /// … or a `SELECT` query.
    #[serde(default)]
    pub query: Option<String>,
    /// Rows per Arrow batch (default 65,536).
    #[serde(default)]
    pub batch_rows: Option<usize>,
}

impl SourceConfig {
    pub fn validate(&self) -> Result<()> {
        check_url(&self.url)?;
        match (&self.table, &self.query) {
            (Some(t), None) => check_table_name(t),
            (None, Some(q)) if !q.trim().is_empty() => Ok(()),
            _ => Err(Error::Config(
                "postgres source: give exactly one of `table` and `query`".into(),
            )),
        }?;
        if self.batch_rows == Some(0) {
            return Err(Error::Config(
                "postgres source: batch_rows must be at least 1".into(),
            ));
        }
        Ok(())
    }

    fn relation(&self) -> Relation<'_> {
        match (&self.table, &self.query) {
            (Some(t), _) => Relation::Table(t),
            (_, Some(q)) => Relation::Query(q.trim().trim_end_matches(';')),
            _ => unreachable!("validated"),
        }
    }

    /// The `SELECT` whose rows are the source.
    fn select(&self) -> String {
        match (&self.table, &self.query) {
            (Some(t), _) => format!("SELECT * FROM {}", quote_table(t)),
            (_, Some(q)) => q.trim().trim_end_matches(';').to_string(),
            _ => unreachable!("validated"),
        }
    }
}

/// Writing rows into a PostgreSQL table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    pub url: String,
    #[serde(default)]
    pub password_env: Option<String>,
    /// The target table; it must exist, and its columns are matched by name.
    pub table: String,
    /// `append` (default) adds rows; `replace` empties the table first, in
    /// the same transaction, so readers see the old rows or the new ones.
    #[serde(default)]
    pub mode: SinkMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkMode {
    #[default]
    Append,
    Replace,
}

impl SinkConfig {
    pub fn validate(&self) -> Result<()> {
        check_url(&self.url)?;
        check_table_name(&self.table)
    }
}

fn check_url(url: &str) -> Result<()> {
    let parsed = url::Url::parse(url).map_err(|e| Error::Config(format!("postgres url: {e}")))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(Error::Config(format!(
            "postgres url: scheme '{}' is not postgres://",
            parsed.scheme()
        )));
    }
    // The config is stored in the catalog: a password does not belong in it.
    if parsed.password().is_some() {
        return Err(Error::Config(
            "postgres url: remove the password; name an environment variable in `password_env`"
                .into(),
        ));
    }
    Ok(())
}

fn check_table_name(t: &str) -> Result<()> {
    let ok = !t.is_empty()
        && t.split('.').count() <= 2
        && t.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "table '{t}': use a plain name or schema.name (letters, digits, _)"
        )))
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_table(t: &str) -> String {
    t.split('.').map(quote_ident).collect::<Vec<_>>().join(".")
}

/// A string literal; `standard_conforming_strings` is on since PostgreSQL 9.1.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn connect(url: &str, password_env: &Option<String>) -> Result<PgConnection> {
    let mut opts: sqlx::postgres::PgConnectOptions = url
        .parse()
        .map_err(|e| Error::Config(format!("postgres url: {e}")))?;
    if let Some(var) = password_env {
        let pw = std::env::var(var)
            .map_err(|_| Error::Config(format!("password_env: ${var} is not set")))?;
        opts = opts.password(&pw);
    }
    PgConnection::connect_with(&opts).await.map_err(remote)
}

fn remote(e: sqlx::Error) -> Error {
    let message = match &e {
        sqlx::Error::Database(d) => d.message().to_string(),
        other => other.to_string(),
    };
    Error::Remote {
        system: "postgres",
        message,
    }
}

/// What to describe: a table by name, or a query.
#[derive(Clone, Copy)]
enum Relation<'a> {
    Table(&'a str),
    Query(&'a str),
}

/// A column of the source, as PostgreSQL describes it.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    ty: PgType,
    not_null: bool,
}

/// The columns of a table (with its `NOT NULL`s), or of a query by way of
/// a temporary view (which keeps each column's type modifier, so
/// `numeric(12,2)` stays a 12,2 decimal; a view's columns are all nullable).
async fn describe(conn: &mut PgConnection, relation: Relation<'_>) -> Result<Vec<Column>> {
    const COLUMNS: &str = "SELECT a.attname::text, a.atttypid::int8, a.atttypmod, \
         format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a \
         WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";
    let rows = match relation {
        Relation::Table(table) => sqlx::query(COLUMNS)
            .bind(quote_table(table))
            .fetch_all(&mut *conn)
            .await
            .map_err(remote)?,
        Relation::Query(select) => {
            let view = format!("CREATE TEMP VIEW tongban_source AS {select}");
            sqlx::query(&view)
                .execute(&mut *conn)
                .await
                .map_err(remote)?;
            let rows = sqlx::query(COLUMNS)
                .bind("tongban_source")
                .fetch_all(&mut *conn)
                .await
                .map_err(remote)?;
            sqlx::query("DROP VIEW tongban_source")
                .execute(&mut *conn)
                .await
                .map_err(remote)?;
            rows
        }
    };
    rows.iter()
        .map(|r| {
            let name: String = r.get(0);
            let oid: i64 = r.get(1);
            let typmod: i32 = r.get(2);
            let type_name: String = r.get(3);
            let ty = PgType::from_oid(oid as u32, typmod)
                .ok_or_else(|| types::unsupported(&name, &type_name))?;
            Ok(Column {
                name,
                ty,
                not_null: r.get(4),
            })
        })
        .collect()
}

fn schema_of(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, c.ty.arrow(), !c.not_null))
            .collect::<Vec<_>>(),
    ))
}

/// Reads from PostgreSQL with binary `COPY`.
pub struct PgSource {
    config: SourceConfig,
}

impl PgSource {
    pub fn new(config: SourceConfig) -> PgSource {
        PgSource { config }
    }
}

#[async_trait::async_trait]
impl crate::Source for PgSource {
    async fn schema(&self) -> Result<SchemaRef> {
        let mut conn = connect(&self.config.url, &self.config.password_env).await?;
        let columns = describe(&mut conn, self.config.relation()).await?;
        Ok(schema_of(&columns))
    }

    async fn unique_keys(&self) -> Result<Vec<Vec<String>>> {
        // A query's rows promise nothing; a table's unique indexes do (whole
        // columns only: no partial or expression indexes).
        let Relation::Table(table) = self.config.relation() else {
            return Ok(Vec::new());
        };
        let mut conn = connect(&self.config.url, &self.config.password_env).await?;
        let sets: Vec<Vec<String>> = sqlx::query_scalar(
            "SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i \
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL \
             AND NOT (0 = ANY (i.indkey)) GROUP BY i.indexrelid",
        )
        .bind(quote_table(table))
        .fetch_all(&mut conn)
        .await
        .map_err(remote)?;
        let _ = conn.close().await;
        Ok(sets)
    }

    async fn read(&self, read: &Read) -> Result<BatchStream> {
        let mut conn = connect(&self.config.url, &self.config.password_env).await?;
        let select = self.config.select();
        let columns = describe(&mut conn, self.config.relation()).await?;
        let schema = schema_of(&columns);
        let filtered = match read {
            Read::Full => select,
            Read::Since { column, after } => {
                if !columns.iter().any(|c| &c.name == column) {
                    return Err(Error::Config(format!(
                        "watermark column '{column}' is not in the source"
                    )));
                }
                format!(
                    "SELECT * FROM ({select}) AS tongban_source WHERE {} > {}",
                    quote_ident(column),
                    quote_literal(after)
                )
            }
        };
        let statement = format!("COPY ({filtered}) TO STDOUT (FORMAT binary)");
        let batch_rows = self.config.batch_rows.unwrap_or(DEFAULT_BATCH_ROWS);
        let types: Vec<PgType> = columns.iter().map(|c| c.ty).collect();
        // Decoding runs in its own task, a batch ahead of the consumer, so
        // decoding and (say) Parquet encoding use both cores. Dropping the
        // stream drops the receiver; the task's next send fails and it drops
        // the connection, which ends the COPY.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<arrow::record_batch::RecordBatch>>(2);
        tokio::spawn(async move {
            let mut decoder = copy::Decoder::new(schema, types, batch_rows);
            let mut data = match conn.copy_out_raw(&statement).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(remote(e))).await;
                    return;
                }
            };
            while let Some(chunk) = data.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(remote(e))).await;
                        return;
                    }
                };
                match decoder.push(&chunk) {
                    Ok(batches) => {
                        for b in batches {
                            if tx.send(Ok(b)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            drop(data);
            match decoder.finish() {
                Ok(Some(b)) => {
                    let _ = tx.send(Ok(b)).await;
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                }
            }
            let _ = conn.close().await;
        });
        Ok(tokio_stream(rx))
    }
}

/// A stream over a channel's receiver.
pub(crate) fn tokio_stream<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> futures::stream::BoxStream<'static, T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) }).boxed()
}

/// Writes into a PostgreSQL table with binary `COPY`, in one transaction.
pub struct PgSink {
    config: SinkConfig,
}

impl PgSink {
    pub fn new(config: SinkConfig) -> PgSink {
        PgSink { config }
    }
}

#[async_trait::async_trait]
impl crate::Sink for PgSink {
    async fn write_all(&self, schema: SchemaRef, mut input: BatchStream) -> Result<u64> {
        let mut conn = connect(&self.config.url, &self.config.password_env).await?;
        let table = quote_table(&self.config.table);
        let target = describe(&mut conn, Relation::Table(&self.config.table)).await?;
        // Every input column must exist in the table; table columns the
        // input lacks get their defaults.
        let mut columns = Vec::new();
        for field in schema.fields() {
            let col = target
                .iter()
                .find(|c| &c.name == field.name())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "postgres sink: table {} has no column '{}'",
                        self.config.table,
                        field.name()
                    ))
                })?;
            columns.push(col.clone());
        }
        let list = columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let mut tx = conn.begin().await.map_err(remote)?;
        if self.config.mode == SinkMode::Replace {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await
                .map_err(remote)?;
        }
        let mut copy = tx
            .copy_in_raw(&format!("COPY {table} ({list}) FROM STDIN (FORMAT binary)"))
            .await
            .map_err(remote)?;
        let types: Vec<PgType> = columns.iter().map(|c| c.ty).collect();
        let encoder = copy::Encoder::new(types);
        let mut rows = 0u64;
        let mut buf = Vec::with_capacity(1 << 20);
        encoder.header(&mut buf);
        let written: Result<()> = async {
            while let Some(batch) = input.next().await {
                let batch = batch?;
                encoder.encode(&batch, &mut buf)?;
                rows += batch.num_rows() as u64;
                if buf.len() >= 1 << 20 {
                    copy.send(std::mem::take(&mut buf)).await.map_err(remote)?;
                }
            }
            encoder.trailer(&mut buf);
            copy.send(std::mem::take(&mut buf)).await.map_err(remote)?;
            Ok(())
        }
        .await;
        match written {
            Ok(()) => {
                copy.finish().await.map_err(remote)?;
                tx.commit().await.map_err(remote)?;
                Ok(rows)
            }
            Err(e) => {
                // Abort the COPY, then the transaction: nothing is kept.
                let _ = copy.abort("the input failed").await;
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
}
