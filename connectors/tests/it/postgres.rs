//! The PostgreSQL connector against the machine's PostgreSQL (fails loudly
//! when it is down). Each test works in its own schema of database `test`.

use crate::conformance::{SourceCase, check_sink, check_source};
use arrow::array::*;
use arrow::datatypes::*;
use futures::StreamExt;
use sqlx::{Connection, PgConnection};
use tongban_connectors::postgres::{SinkConfig, SinkMode, SourceConfig};
use tongban_connectors::{
    Error, Read, Sink, SinkConfig as AnySink, Source, SourceConfig as AnySource,
};

fn base_url() -> String {
    std::env::var("TONGBAN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh schema `tongban_conn_<name>`, and a URL whose search path is it.
async fn schema(name: &str) -> (PgConnection, String) {
    let mut conn = PgConnection::connect(&base_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is needed for these tests: {e}",
                base_url()
            )
        });
    let schema = format!("tongban_conn_{name}");
    sqlx::raw_sql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema}"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let url = format!("{}?options=-c%20search_path%3D{schema}", base_url());
    (conn, url)
}

/// Every supported type, one column each.
const EVERY_TYPE: &str = "id int8 PRIMARY KEY, flag bool, small int2, mid int4, f4 float4, f8 float8, \
    amount numeric(12,2), exact numeric, name text, code varchar(20), fixed char(3), doc json, docb jsonb, \
    uid uuid, raw bytea, born date, at_time time, seen timestamp, changed timestamptz";

fn source(url: &str, table: &str, batch_rows: usize) -> Box<dyn Source> {
    AnySource::Postgres(SourceConfig {
        url: url.to_string(),
        password_env: None,
        table: Some(table.to_string()),
        query: None,
        batch_rows: Some(batch_rows),
    })
    .open()
    .unwrap()
}

#[tokio::test]
async fn postgres_source_passes_the_conformance_suite() {
    let (mut conn, url) = schema("source").await;
    sqlx::raw_sql(&format!(
        "CREATE TABLE people ({EVERY_TYPE}); CREATE TABLE nobody ({EVERY_TYPE});
         INSERT INTO people SELECT i, i % 2 = 0, i % 100, i * 7, i / 3.0, i / 7.0, i * 1.25, i / 8.0,
           '名字' || i, 'C' || i, 'abc', '{{\"n\": 1}}', jsonb_build_object('n', i),
           md5(i::text)::uuid, decode(md5(i::text), 'hex'), DATE '2000-01-01' + i, TIME '12:00' + i * INTERVAL '1 s',
           TIMESTAMP '2026-01-01' + i * INTERVAL '1 minute', TIMESTAMPTZ '2026-01-01 00:00+08' + i * INTERVAL '1 hour'
         FROM generate_series(1, 1000) i;"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    check_source(SourceCase {
        full: source(&url, "people", 128),
        empty: source(&url, "nobody", 128),
        rows: 1000,
        since: Some(("id".into(), "600".into(), 400)),
    })
    .await;
    // The primary key is a unique key the source can vouch for.
    assert_eq!(
        source(&url, "people", 128).unique_keys().await.unwrap(),
        vec![vec!["id".to_string()]]
    );
    sqlx::raw_sql(
        "CREATE UNIQUE INDEX ON nobody (name, code); CREATE UNIQUE INDEX ON nobody (lower(name))",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let mut sets = source(&url, "nobody", 128).unique_keys().await.unwrap();
    sets.sort();
    assert_eq!(
        sets,
        vec![
            vec!["id".to_string()],
            vec!["name".to_string(), "code".to_string()]
        ],
        "expression indexes do not count"
    );
    // A timestamp watermark compares as a timestamp.
    let read = Read::Since {
        column: "seen".into(),
        after: "2026-01-01 16:00:00".into(),
    };
    let mut s = source(&url, "people", 128).read(&read).await.unwrap();
    let mut rows = 0;
    while let Some(b) = s.next().await {
        rows += b.unwrap().num_rows();
    }
    assert_eq!(rows, 1000 - 960);
}

#[tokio::test]
async fn postgres_values_decode_exactly() {
    let (mut conn, url) = schema("values").await;
    sqlx::raw_sql(&format!(
        "CREATE TABLE t ({EVERY_TYPE});
         INSERT INTO t VALUES (1, true, -5, 2147483647, 1.5, -2.25, -1234.56, 3.14159265358979323846,
           '张三', 'V1', 'ab', '[1,2]', '{{\"a\": \"乙\"}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff',
           '1949-10-01', '23:59:59.5', '2026-11-22 08:30:00.123456', '2026-11-22 08:30:00+08');
         INSERT INTO t (id) VALUES (2);"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let src = source(&url, "t", 10);
    let schema = src.schema().await.unwrap();
    assert_eq!(
        schema.field_with_name("amount").unwrap().data_type(),
        &DataType::Decimal128(12, 2)
    );
    assert_eq!(
        schema.field_with_name("exact").unwrap().data_type(),
        &DataType::Utf8
    );
    assert!(
        !schema.field_with_name("id").unwrap().is_nullable(),
        "NOT NULL carries over"
    );
    let mut stream = src.read(&Read::Full).await.unwrap();
    let b = stream.next().await.unwrap().unwrap();
    assert_eq!(b.num_rows(), 2);
    let col = |n: &str| b.column_by_name(n).unwrap().clone();
    assert!(col("flag").as_boolean().value(0));
    assert_eq!(col("small").as_primitive::<Int16Type>().value(0), -5);
    assert_eq!(col("mid").as_primitive::<Int32Type>().value(0), i32::MAX);
    assert_eq!(col("f4").as_primitive::<Float32Type>().value(0), 1.5);
    assert_eq!(col("f8").as_primitive::<Float64Type>().value(0), -2.25);
    assert_eq!(
        col("amount").as_primitive::<Decimal128Type>().value(0),
        -123_456
    );
    assert_eq!(
        col("exact").as_string::<i32>().value(0),
        "3.14159265358979323846"
    );
    assert_eq!(col("name").as_string::<i32>().value(0), "张三");
    assert_eq!(
        col("fixed").as_string::<i32>().value(0),
        "ab ",
        "char(n) keeps its padding"
    );
    assert_eq!(col("doc").as_string::<i32>().value(0), "[1,2]");
    assert_eq!(col("docb").as_string::<i32>().value(0), "{\"a\": \"乙\"}");
    assert_eq!(
        col("uid").as_string::<i32>().value(0),
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    );
    assert_eq!(col("raw").as_binary::<i32>().value(0), &[0u8, 255]);
    let born = col("born")
        .as_primitive::<Date32Type>()
        .value_as_date(0)
        .unwrap();
    assert_eq!(born.to_string(), "1949-10-01");
    assert_eq!(
        col("at_time")
            .as_primitive::<Time64MicrosecondType>()
            .value(0),
        86_399_500_000
    );
    let seen = col("seen")
        .as_primitive::<TimestampMicrosecondType>()
        .value_as_datetime(0)
        .unwrap();
    assert_eq!(seen.to_string(), "2026-11-22 08:30:00.123456");
    let changed = col("changed");
    assert_eq!(
        changed.data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    let utc = changed
        .as_primitive::<TimestampMicrosecondType>()
        .value_as_datetime(0)
        .unwrap();
    assert_eq!(
        utc.to_string(),
        "2026-11-22 00:30:00",
        "timestamptz arrives in UTC"
    );
    // Row 2: every column but the key is NULL.
    for (i, f) in b.schema().fields().iter().enumerate().skip(1) {
        assert!(b.column(i).is_null(1), "{} is null", f.name());
    }
}

#[tokio::test]
async fn an_unsupported_column_type_is_named() {
    let (mut conn, url) = schema("unsupported").await;
    sqlx::raw_sql("CREATE TABLE t (id int4, spot point)")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = source(&url, "t", 10).schema().await.unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedType { column, .. } if column == "spot"),
        "{err}"
    );
    assert!(
        err.to_string().contains("'spot'") && err.to_string().contains("point"),
        "{err}"
    );
}

#[tokio::test]
async fn a_query_source_and_bad_configs() {
    let (mut conn, url) = schema("query").await;
    sqlx::raw_sql("CREATE TABLE t (id int4, v text); INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 50) i")
        .execute(&mut conn)
        .await
        .unwrap();
    let src = AnySource::Postgres(SourceConfig {
        url: url.clone(),
        password_env: None,
        table: None,
        query: Some("SELECT id, upper(v) AS v FROM t WHERE id <= 20;".into()),
        batch_rows: None,
    })
    .open()
    .unwrap();
    let mut s = src.read(&Read::Full).await.unwrap();
    let b = s.next().await.unwrap().unwrap();
    assert_eq!(b.num_rows(), 20);
    assert_eq!(b.column(1).as_string::<i32>().value(0), "V1");
    // Both table and query; neither; a bad URL: refused before any IO.
    for bad in [
        r#"{"type":"postgres","url":"postgres://x/db","table":"t","query":"SELECT 1"}"#,
        r#"{"type":"postgres","url":"postgres://x/db"}"#,
        r#"{"type":"postgres","url":"mysql://x/db","table":"t"}"#,
        r#"{"type":"postgres","url":"postgres://x/db","table":"t; DROP TABLE t"}"#,
        r#"{"type":"postgres","url":"postgres://u:secret@x/db","table":"t"}"#,
    ] {
        let cfg: AnySource = serde_json::from_str(bad).unwrap();
        assert!(matches!(cfg.validate(), Err(Error::Config(_))), "{bad}");
    }
    let unknown = serde_json::from_str::<AnySource>(
        r#"{"type":"postgres","url":"postgres://x/db","table":"t","tabel":"u"}"#,
    );
    assert!(unknown.is_err(), "unknown fields are refused");
}

#[tokio::test]
async fn postgres_sink_passes_the_conformance_suite_and_round_trips() {
    let (mut conn, url) = schema("sink").await;
    sqlx::raw_sql(&format!(
        "CREATE TABLE src ({EVERY_TYPE}); CREATE TABLE dst ({EVERY_TYPE});
         INSERT INTO src SELECT i, i % 2 = 0, i % 100, i * 7, i / 3.0, i / 7.0, i * 1.25, i / 8.0,
           '名字' || i, 'C' || i, 'abc', '[1]', jsonb_build_object('n', i),
           md5(i::text)::uuid, decode(md5(i::text), 'hex'), DATE '2000-01-01' + i, TIME '12:00' + i * INTERVAL '1 s',
           TIMESTAMP '2026-01-01' + i * INTERVAL '1 minute', TIMESTAMPTZ '2026-01-01 00:00+08' + i * INTERVAL '1 hour'
         FROM generate_series(1, 300) i;
         INSERT INTO src (id) VALUES (0);"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let src = source(&url, "src", 64);
    let schema = src.schema().await.unwrap();
    let mut batches = Vec::new();
    let mut s = src.read(&Read::Full).await.unwrap();
    while let Some(b) = s.next().await {
        batches.push(b.unwrap());
    }
    let sink = pg_sink(&url, SinkMode::Append);
    let count = || {
        let url = url.clone();
        async move {
            let mut c = PgConnection::connect(&url).await.unwrap();
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM dst")
                .fetch_one(&mut c)
                .await
                .unwrap();
            n as u64
        }
    };
    check_sink(sink.as_ref(), schema.clone(), batches.clone(), count).await;
    // What went in is what came out, value for value (json compared as text).
    let diff: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT id, flag, small, mid, f4, f8, amount, exact, name, code, fixed, doc::text, docb, uid, raw, born, at_time, seen, changed FROM src
          EXCEPT SELECT id, flag, small, mid, f4, f8, amount, exact, name, code, fixed, doc::text, docb, uid, raw, born, at_time, seen, changed FROM dst) d",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(diff, 0, "every row round-trips exactly");
    // Replace: the table holds exactly the new rows, in one transaction.
    let n = pg_sink(&url, SinkMode::Replace)
        .write_all(schema, crate::conformance::stream_of(batches, false))
        .await
        .unwrap();
    assert_eq!(n, 301);
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM dst")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(total, 301);
}

fn pg_sink(url: &str, mode: SinkMode) -> Box<dyn Sink> {
    AnySink::Postgres(SinkConfig {
        url: url.to_string(),
        password_env: None,
        table: "dst".into(),
        mode,
    })
    .open()
    .unwrap()
}
