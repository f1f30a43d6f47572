//! MySQL and MariaDB: a [`MySqlSource`] streams one table (or some of its
//! columns) into Arrow batches.
//!
//! - The schema comes from `information_schema.COLUMNS`, so it is known
//!   without reading a row; `types.rs` maps each column type to Arrow and
//!   decodes the bytes the binary protocol sends for it; `decode.rs` fills
//!   the Arrow builders row by row and cuts batches.
//! - Reads are split into ranges of an integer key (the configured `key`,
//!   else the table's single-column integer primary key): one
//!   `SELECT … WHERE key >= lo AND key <= hi ORDER BY key` per range, so a
//!   large table is many short queries instead of one that holds an open
//!   result (and the server's resources) for hours. The next range starts at
//!   the smallest key past the last one, found through the index, so gaps in
//!   the keys cost nothing. A table without such a key is one query.
//! - Every row is streamed (`fetch`), never collected: memory is one batch
//!   being built and two waiting in the channel.
//! - The session time zone is always UTC (`+00:00`): MySQL converts
//!   `TIMESTAMP` values to the session zone when sending them, so they read
//!   as UTC; `DATETIME` values carry no zone and read as written.
//!
//! Connections go through sqlx, so TLS is rustls (ring):
//! `ssl-mode=REQUIRED`, or `VERIFY_IDENTITY` with `ssl-ca=…`, in the URL.

mod decode;
pub mod types;

use crate::{BatchStream, DEFAULT_BATCH_ROWS, Error, Read, Result};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::mysql::{MySqlArguments, MySqlConnectOptions, MySqlConnection};
use sqlx::query::Query;
use sqlx::{Connection, MySql, Row};
use std::sync::Arc;
use tokio::sync::mpsc;
use types::MyType;

/// Key values per range when the config does not say.
pub const DEFAULT_SPLIT_ROWS: u64 = 100_000;

/// Reading a table from MySQL or MariaDB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `mysql://user@host:3306/db` (or `mariadb://…`), with
    /// `?ssl-mode=REQUIRED` for TLS. Never with a password (it would be
    /// stored in the catalog): use `password_env`.
    pub url: String,
    /// Name of an environment variable holding the password, if any.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The table: `name`, or `db.name` for a database other than the URL's.
    pub table: String,
    /// The columns to read, in this order (default: every column, in table
    /// order). Leaving a column out is how a table with an unsupported
    /// column type is read.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// An integer, `NOT NULL`, preferably indexed column to split the read
    /// on (default: the table's primary key when it is a single integer
    /// column; without one the table is read in one query).
    #[serde(default)]
    pub key: Option<String>,
    /// Width of one key range, in key values: at most this many rows per
    /// query when the key is unique (default 100,000).
    #[serde(default)]
    pub split_rows: Option<u64>,
    /// Rows per Arrow batch (default 65,536).
    #[serde(default)]
    pub batch_rows: Option<usize>,
}

impl SourceConfig {
    /// Checks the config without any IO.
    pub fn validate(&self) -> Result<()> {
        let parsed = url::Url::parse(&self.url).map_err(|e| invalid(format!("url: {e}")))?;
        if !matches!(parsed.scheme(), "mysql" | "mariadb") {
            return Err(invalid(format!(
                "url: scheme '{}' is not mysql:// or mariadb://",
                parsed.scheme()
            )));
        }
        if parsed.password().is_some() {
            return Err(invalid(
                "url: leave the password out and name its variable in password_env".into(),
            ));
        }
        // sqlx's own parse catches bad options (a misspelt ssl-mode) early.
        self.url
            .parse::<MySqlConnectOptions>()
            .map_err(|e| invalid(format!("url: {e}")))?;
        if self.password_env.as_deref() == Some("") {
            return Err(invalid("password_env is empty".into()));
        }
        check_table_name(&self.table)?;
        if let Some(columns) = &self.columns {
            if columns.is_empty() {
                return Err(invalid(
                    "columns is empty; leave it out to read every column".into(),
                ));
            }
            for (i, c) in columns.iter().enumerate() {
                check_ident("column", c)?;
                if columns[..i].iter().any(|d| d.eq_ignore_ascii_case(c)) {
                    return Err(invalid(format!("column '{c}' is listed twice")));
                }
            }
        }
        if let Some(key) = &self.key {
            check_ident("key", key)?;
        }
        if self.split_rows == Some(0) {
            return Err(invalid("split_rows must be at least 1".into()));
        }
        if self.batch_rows == Some(0) {
            return Err(invalid("batch_rows must be at least 1".into()));
        }
        Ok(())
    }

    /// The table's database (`None`: the URL's) and name.
    fn table_parts(&self) -> (Option<&str>, &str) {
        match self.table.split_once('.') {
            Some((db, name)) => (Some(db), name),
            None => (None, &self.table),
        }
    }
}

fn invalid(message: String) -> Error {
    Error::Config(format!("mysql source: {message}"))
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

fn check_ident(what: &str, s: &str) -> Result<()> {
    if is_ident(s) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} '{s}': use letters, digits and _ only"
        )))
    }
}

fn check_table_name(t: &str) -> Result<()> {
    let ok = t.split('.').count() <= 2 && t.split('.').all(is_ident);
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "table '{t}': use a plain name or db.name (letters, digits, _)"
        )))
    }
}

/// Backticks, doubled inside: names from the config are checked, but without
/// `columns` every name comes from the table and may hold anything; the
/// quoting also keeps reserved words usable as names.
fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

fn quote_table(t: &str) -> String {
    t.split('.').map(quote_ident).collect::<Vec<_>>().join(".")
}

fn remote(e: sqlx::Error) -> Error {
    let message = match &e {
        sqlx::Error::Database(d) => d.message().to_string(),
        other => other.to_string(),
    };
    Error::Remote {
        system: "mysql",
        message,
    }
}

async fn connect(config: &SourceConfig) -> Result<MySqlConnection> {
    let mut opts: MySqlConnectOptions = config
        .url
        .parse()
        .map_err(|e| invalid(format!("url: {e}")))?;
    if let Some(var) = &config.password_env {
        let pw =
            std::env::var(var).map_err(|_| invalid(format!("password_env: ${var} is not set")))?;
        opts = opts.password(&pw);
    }
    // TIMESTAMP values are sent in the session time zone; fixing it at UTC
    // (whatever the URL or the server's default says) makes them UTC.
    opts = opts.timezone(Some("+00:00".to_string()));
    let mut conn = MySqlConnection::connect_with(&opts).await.map_err(remote)?;
    // A slow consumer pauses the read, and the server drops a connection it
    // cannot write to for net_write_timeout (60 s by default).
    sqlx::query("SET SESSION net_write_timeout = 3600")
        .execute(&mut conn)
        .await
        .map_err(remote)?;
    Ok(conn)
}

/// A column of the table, as `information_schema` describes it.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    /// `None` when the type has no mapping.
    ty: Option<MyType>,
    column_type: String,
    nullable: bool,
}

impl Column {
    fn mapped(&self) -> Result<MyType> {
        self.ty
            .ok_or_else(|| types::unsupported(&self.name, &self.column_type))
    }
}

/// What a read selects: the columns (mapped), and the key to split on.
struct Table {
    columns: Vec<(Column, MyType)>,
    key: Option<(Column, MyType)>,
}

impl Table {
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|(c, ty)| Field::new(&c.name, ty.arrow(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }
}

/// Looks the table up in `information_schema`: its columns in table order,
/// those the config selects, and the split key.
async fn describe(conn: &mut MySqlConnection, config: &SourceConfig) -> Result<Table> {
    let (db, name) = config.table_parts();
    // Unchecked gets: information_schema's column types differ between MySQL
    // and MariaDB versions (varchar, longtext, bigint unsigned, …).
    let rows = sqlx::query(
        "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? \
         ORDER BY ORDINAL_POSITION",
    )
    .bind(db)
    .bind(name)
    .fetch_all(&mut *conn)
    .await
    .map_err(remote)?;
    let all = rows
        .iter()
        .map(|r| {
            let name: String = r.try_get_unchecked(0)?;
            let data_type: String = r.try_get_unchecked(1)?;
            let column_type: String = r.try_get_unchecked(2)?;
            let precision: Option<u64> = r.try_get_unchecked(3)?;
            let scale: Option<u64> = r.try_get_unchecked(4)?;
            let nullable: String = r.try_get_unchecked(5)?;
            Ok(Column {
                name,
                ty: MyType::from_schema(&data_type, &column_type, precision, scale),
                column_type,
                nullable: nullable != "NO",
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(remote)?;
    if all.is_empty() {
        return Err(Error::Remote {
            system: "mysql",
            message: format!(
                "table '{}' not found (or no column of it is visible to this user)",
                config.table
            ),
        });
    }
    // MySQL column names are case-insensitive; the table's spelling wins.
    let find = |n: &str| {
        all.iter()
            .find(|c| c.name.eq_ignore_ascii_case(n))
            .ok_or_else(|| not_in_table(n, &config.table))
    };
    let selected: Vec<&Column> = match &config.columns {
        Some(names) => names.iter().map(|n| find(n)).collect::<Result<_>>()?,
        None => all.iter().collect(),
    };
    let columns = selected
        .into_iter()
        .map(|c| Ok((c.clone(), c.mapped()?)))
        .collect::<Result<Vec<_>>>()?;

    let key = match &config.key {
        Some(k) => {
            let col = find(k)?;
            match col.ty {
                // A NULL key would fall in no range, and its row be missed.
                Some(ty) if ty.is_integer() && !col.nullable => Some((col.clone(), ty)),
                _ => {
                    let null = if col.nullable { " NULL" } else { "" };
                    return Err(invalid(format!(
                        "key '{k}' must be an integer NOT NULL column, not {}{null}",
                        col.column_type
                    )));
                }
            }
        }
        None => {
            let pk = sqlx::query(
                "SELECT COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY'",
            )
            .bind(db)
            .bind(name)
            .fetch_all(&mut *conn)
            .await
            .map_err(remote)?
            .iter()
            .map(|r| r.try_get_unchecked::<String, _>(0))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(remote)?;
            match pk.as_slice() {
                [only] => all
                    .iter()
                    .find(|c| &c.name == only)
                    .and_then(|c| c.ty.filter(|t| t.is_integer()).map(|t| (c.clone(), t))),
                // No primary key, or a composite one: one query.
                _ => None,
            }
        }
    };
    Ok(Table { columns, key })
}

fn not_in_table(column: &str, table: &str) -> Error {
    invalid(format!("column '{column}' is not in table '{table}'"))
}

/// A value bound to a `?`.
#[derive(Debug, Clone)]
enum Param {
    Int(i64),
    UInt(u64),
    Text(String),
}

impl Param {
    /// An integer of a column whose values are unsigned or not; the value
    /// is within the column type's range.
    fn int(v: i128, unsigned: bool) -> Param {
        if unsigned {
            Param::UInt(v as u64)
        } else {
            Param::Int(v as i64)
        }
    }

    fn bind<'q>(&'q self, q: Query<'q, MySql, MySqlArguments>) -> Query<'q, MySql, MySqlArguments> {
        match self {
            Param::Int(v) => q.bind(*v),
            Param::UInt(v) => q.bind(*v),
            Param::Text(v) => q.bind(v.as_str()),
        }
    }
}

/// The `Read::Since` filter: the column and its bound.
struct Since {
    column: Column,
    after: Param,
    /// `after` as a number, when the column is an integer.
    after_int: Option<i128>,
}

fn since_of(table: &Table, read: &Read) -> Result<Option<Since>> {
    let Read::Since { column, after } = read else {
        return Ok(None);
    };
    let (col, ty) = table
        .columns
        .iter()
        .find(|(c, _)| c.name.eq_ignore_ascii_case(column))
        .ok_or_else(|| {
            Error::Config(format!("watermark column '{column}' is not in the source"))
        })?;
    // An integer column compared with a string is compared as a double in
    // MySQL, inexact past 2^53: bind integers as integers. Other types take
    // the text, which MySQL converts to the column's type (a date, a
    // datetime) before comparing.
    if ty.is_integer() {
        let n: i128 = after
            .trim()
            .parse()
            .map_err(|_| Error::Config(format!("watermark '{after}' is not an integer")))?;
        let (min, max) = if ty.is_unsigned() {
            (0, i128::from(u64::MAX))
        } else {
            (i128::from(i64::MIN), i128::from(i64::MAX))
        };
        // Below the type's range every row is past the watermark; above it,
        // none is (`> max` says so).
        if n < min {
            return Ok(None);
        }
        let n = n.min(max);
        Ok(Some(Since {
            column: col.clone(),
            after: Param::int(n, ty.is_unsigned()),
            after_int: Some(n),
        }))
    } else {
        Ok(Some(Since {
            column: col.clone(),
            after: Param::Text(after.clone()),
            after_int: None,
        }))
    }
}

/// Everything the read task needs.
struct Plan {
    table: String,
    select_list: String,
    key: Option<(String, MyType)>,
    since: Option<Since>,
    split_rows: u64,
    batch_rows: usize,
}

/// Reads from MySQL or MariaDB.
pub struct MySqlSource {
    config: SourceConfig,
}

impl MySqlSource {
    pub fn new(config: SourceConfig) -> MySqlSource {
        MySqlSource { config }
    }
}

#[async_trait::async_trait]
impl crate::Source for MySqlSource {
    async fn schema(&self) -> Result<SchemaRef> {
        let mut conn = connect(&self.config).await?;
        let table = describe(&mut conn, &self.config).await?;
        let _ = conn.close().await;
        Ok(table.schema())
    }

    async fn read(&self, read: &Read) -> Result<BatchStream> {
        let mut conn = connect(&self.config).await?;
        let table = describe(&mut conn, &self.config).await?;
        let schema = table.schema();
        let since = since_of(&table, read)?;
        let types: Vec<MyType> = table.columns.iter().map(|(_, ty)| *ty).collect();
        let plan = Plan {
            table: quote_table(&self.config.table),
            select_list: table
                .columns
                .iter()
                .map(|(c, _)| quote_ident(&c.name))
                .collect::<Vec<_>>()
                .join(", "),
            key: table.key.map(|(c, ty)| (c.name, ty)),
            since,
            split_rows: self.config.split_rows.unwrap_or(DEFAULT_SPLIT_ROWS),
            batch_rows: self.config.batch_rows.unwrap_or(DEFAULT_BATCH_ROWS),
        };
        // Decoding runs in its own task, a batch ahead of the consumer.
        // Dropping the stream drops the receiver; the task sees the channel
        // closed at its next row and drops the connection, which ends the
        // query on the server.
        let (tx, rx) = mpsc::channel::<Result<RecordBatch>>(2);
        tokio::spawn(async move {
            let mut batcher = decode::Batcher::new(schema, &types, plan.batch_rows);
            match read_all(&mut conn, &plan, &mut batcher, &tx).await {
                Ok(Flow::Done) => {
                    if batcher.len() > 0 {
                        let _ = tx.send(batcher.finish()).await;
                    }
                    let _ = conn.close().await;
                }
                // The consumer left; the connection may be mid-result, so it
                // is dropped rather than closed politely.
                Ok(Flow::Stopped) => {}
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                }
            }
        });
        Ok(crate::postgres::tokio_stream(rx))
    }
}

/// Whether a read ran to its end or stopped because the consumer left.
enum Flow {
    Done,
    Stopped,
}

type Sender = mpsc::Sender<Result<RecordBatch>>;

/// Runs the read's queries: one, or one per key range.
async fn read_all(
    conn: &mut MySqlConnection,
    plan: &Plan,
    batcher: &mut decode::Batcher,
    tx: &Sender,
) -> Result<Flow> {
    let (table, list) = (&plan.table, &plan.select_list);
    let since_sql = plan
        .since
        .as_ref()
        .map(|s| format!(" AND {} > ?", quote_ident(&s.column.name)))
        .unwrap_or_default();
    let since_param: Vec<Param> = plan.since.iter().map(|s| s.after.clone()).collect();

    let Some((key_name, key_ty)) = &plan.key else {
        let sql = format!("SELECT {list} FROM {table} WHERE TRUE{since_sql}");
        return stream_rows(conn, &sql, &since_param, batcher, plan.batch_rows, tx).await;
    };
    let key = quote_ident(key_name);
    let unsigned = key_ty.is_unsigned();
    // The last key now; rows added later with larger keys wait for the next
    // sync (which an incremental read picks up).
    let Some(max) = key_scalar(
        conn,
        &format!("SELECT MAX({key}) FROM {table}"),
        &[],
        unsigned,
    )
    .await?
    else {
        return Ok(Flow::Done);
    };
    let mut next: i128 = if unsigned { 0 } else { i128::from(i64::MIN) };
    // A watermark on the key itself: start past it instead of scanning
    // ranges that hold no new rows.
    if let Some(Since {
        column,
        after_int: Some(after),
        ..
    }) = &plan.since
        && column.name == *key_name
    {
        next = next.max(after + 1);
    }
    let seek = format!("SELECT MIN({key}) FROM {table} WHERE {key} >= ?");
    let range = format!(
        "SELECT {list} FROM {table} WHERE {key} >= ? AND {key} <= ?{since_sql} ORDER BY {key}"
    );
    while next <= max {
        if tx.is_closed() {
            return Ok(Flow::Stopped);
        }
        // The smallest key from `next` on (an index lookup), so a gap in the
        // keys is skipped instead of read as empty ranges.
        let Some(lo) = key_scalar(conn, &seek, &[Param::int(next, unsigned)], unsigned).await?
        else {
            break;
        };
        if lo > max {
            break;
        }
        // Inclusive bounds: `hi + 1` could overflow the key's type.
        let hi = (lo + i128::from(plan.split_rows) - 1).min(max);
        let mut params = vec![Param::int(lo, unsigned), Param::int(hi, unsigned)];
        params.extend(since_param.iter().cloned());
        if let Flow::Stopped =
            stream_rows(conn, &range, &params, batcher, plan.batch_rows, tx).await?
        {
            return Ok(Flow::Stopped);
        }
        next = hi + 1;
    }
    Ok(Flow::Done)
}

/// One integer (or NULL) from a `MIN` / `MAX` of the key.
async fn key_scalar(
    conn: &mut MySqlConnection,
    sql: &str,
    params: &[Param],
    unsigned: bool,
) -> Result<Option<i128>> {
    let mut q = sqlx::query(sql);
    for p in params {
        q = p.bind(q);
    }
    let row = q.fetch_one(&mut *conn).await.map_err(remote)?;
    let v = if unsigned {
        row.try_get_unchecked::<Option<u64>, _>(0)
            .map(|v| v.map(i128::from))
    } else {
        row.try_get_unchecked::<Option<i64>, _>(0)
            .map(|v| v.map(i128::from))
    };
    v.map_err(remote)
}

/// Streams the rows of one query into `batcher`, sending each full batch.
async fn stream_rows(
    conn: &mut MySqlConnection,
    sql: &str,
    params: &[Param],
    batcher: &mut decode::Batcher,
    batch_rows: usize,
    tx: &Sender,
) -> Result<Flow> {
    let mut q = sqlx::query(sql);
    for p in params {
        q = p.bind(q);
    }
    let mut rows = q.fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.map_err(remote)? {
        if tx.is_closed() {
            return Ok(Flow::Stopped);
        }
        batcher.push(&row)?;
        if batcher.len() >= batch_rows && tx.send(batcher.finish()).await.is_err() {
            return Ok(Flow::Stopped);
        }
    }
    Ok(Flow::Done)
}
