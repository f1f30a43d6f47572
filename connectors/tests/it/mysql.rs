//! The MySQL / MariaDB connector against the machine's MariaDB (fails loudly
//! when it is down). Tables are `tongban_conn_*` in database `test`, dropped
//! and made again by each test.

use crate::conformance::{SourceCase, check_source};
use arrow::array::*;
use arrow::datatypes::*;
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use sqlx::{Connection, MySqlConnection};
use tongban_connectors::mysql::SourceConfig;
use tongban_connectors::mysql::types::decimal_to_i128;
use tongban_connectors::{Error, Read, Source, SourceConfig as AnySource, watermark_of};

fn url() -> String {
    std::env::var("TONGBAN_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

async fn connect() -> MySqlConnection {
    MySqlConnection::connect(&url())
        .await
        .unwrap_or_else(|e| panic!("MariaDB at {} is needed for these tests: {e}", url()))
}

async fn exec(conn: &mut MySqlConnection, statements: &[&str]) {
    for s in statements {
        sqlx::raw_sql(s)
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

/// Drops and creates `tongban_conn_<name>` with `columns`.
async fn fresh(conn: &mut MySqlConnection, name: &str, columns: &str) {
    exec(
        conn,
        &[
            &format!("DROP TABLE IF EXISTS tongban_conn_{name}"),
            &format!("CREATE TABLE tongban_conn_{name} ({columns})"),
        ],
    )
    .await;
}

fn config(table: &str) -> SourceConfig {
    SourceConfig {
        url: url(),
        password_env: None,
        table: format!("tongban_conn_{table}"),
        columns: None,
        key: None,
        split_rows: None,
        batch_rows: None,
    }
}

fn open(config: SourceConfig) -> Box<dyn Source> {
    AnySource::Mysql(config).open().unwrap()
}

async fn read_all(source: &dyn Source, read: &Read) -> Result<Vec<RecordBatch>, Error> {
    let mut stream = source.read(read).await?;
    let mut batches = Vec::new();
    while let Some(b) = stream.next().await {
        batches.push(b?);
    }
    Ok(batches)
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

/// Every supported type, one column each.
const EVERY_TYPE: &str = "id BIGINT NOT NULL PRIMARY KEY, flag BOOL, tiny TINYINT, tiny_u TINYINT UNSIGNED, \
    small SMALLINT, small_u SMALLINT UNSIGNED, medium MEDIUMINT, medium_u MEDIUMINT UNSIGNED, \
    normal INT, normal_u INT UNSIGNED, big BIGINT, big_u BIGINT UNSIGNED, f4 FLOAT, f8 DOUBLE, \
    amount DECIMAL(12,2), wide DECIMAL(50,10), name VARCHAR(50), fixed CHAR(3), body TEXT, \
    kind ENUM('a','b'), tags SET('x','y'), doc JSON, raw VARBINARY(16), fixed_raw BINARY(2), data BLOB, \
    born DATE, seen DATETIME(6), changed TIMESTAMP(6) NULL, at_time TIME(6), yr YEAR";

#[tokio::test]
async fn mysql_source_passes_the_conformance_suite() {
    let mut conn = connect().await;
    fresh(&mut conn, "people", EVERY_TYPE).await;
    fresh(&mut conn, "nobody", EVERY_TYPE).await;
    // Keys 1..=500 then 100501..=101000: the gap would be a thousand empty
    // ranges of 100 if ranges did not skip it.
    exec(
        &mut conn,
        &["INSERT INTO tongban_conn_people
           WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 1000)
           SELECT IF(i <= 500, i, i + 100000), i % 2, i % 100 - 50, i % 256, -i, i * 60, i * 1000, i * 16000,
             i * 7, i * 4000000, i * 1000000000000, CAST(i AS UNSIGNED) * 18000000000000000, i / 3, i / 7,
             i * 1.25, i / 8, CONCAT('名字', i), 'abc', REPEAT('x', i % 50), IF(i % 2 = 0, 'a', 'b'), 'x,y',
             JSON_OBJECT('n', i), UNHEX(MD5(i)), 'ab', UNHEX(SHA1(i)), DATE '2000-01-01' + INTERVAL i DAY,
             TIMESTAMP '2026-01-01 00:00:00' + INTERVAL i MINUTE, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL i HOUR,
             SEC_TO_TIME(43200 + i), 1901 + i % 255
           FROM s"],
    )
    .await;
    let source = |table: &str| {
        open(SourceConfig {
            batch_rows: Some(128),
            split_rows: Some(100),
            ..config(table)
        })
    };
    check_source(SourceCase {
        full: source("people"),
        empty: source("nobody"),
        rows: 1000,
        since: Some(("id".into(), "250".into(), 750)),
    })
    .await;

    // Ranges come back in key order, every key once.
    let batches = read_all(source("people").as_ref(), &Read::Full)
        .await
        .unwrap();
    let ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    let expected: Vec<i64> = (1..=1000)
        .map(|i| if i <= 500 { i } else { i + 100_000 })
        .collect();
    assert_eq!(ids, expected);

    // A timestamp watermark compares as a timestamp, in UTC; and the
    // watermark the hub keeps from a batch reads back as "nothing newer".
    let read = Read::Since {
        column: "changed".into(),
        after: "2026-01-01 16:00:00".into(),
    };
    assert_eq!(
        rows(&read_all(source("people").as_ref(), &read).await.unwrap()),
        1000 - 16
    );
    let read = Read::Since {
        column: "born".into(),
        after: "2000-01-11".into(),
    };
    assert_eq!(
        rows(&read_all(source("people").as_ref(), &read).await.unwrap()),
        1000 - 10
    );
    let last = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    for column in ["seen", "changed", "born", "id"] {
        let after = watermark_of(&last, column).unwrap().unwrap();
        let read = Read::Since {
            column: column.into(),
            after: after.clone(),
        };
        assert_eq!(
            rows(&read_all(source("people").as_ref(), &read).await.unwrap()),
            0,
            "{column} > {after}"
        );
    }
    let read = Read::Since {
        column: "nope".into(),
        after: "1".into(),
    };
    assert!(matches!(
        source("people").read(&read).await,
        Err(Error::Config(_))
    ));
    let read = Read::Since {
        column: "id".into(),
        after: "ten".into(),
    };
    assert!(matches!(
        source("people").read(&read).await,
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn mysql_values_decode_exactly() {
    let mut conn = connect().await;
    fresh(&mut conn, "values", EVERY_TYPE).await;
    // Written from a +08:00 session: the TIMESTAMP is stored as 00:30 UTC
    // and must read as that, whatever the session that wrote it.
    exec(
        &mut conn,
        &[
            "SET time_zone = '+08:00'",
            r#"INSERT INTO tongban_conn_values VALUES (1, TRUE, -128, 255, -32768, 65535, -8388608, 16777215,
               -2147483648, 4294967295, -9223372036854775808, 18446744073709551615, 1.5, -2.25, -1234.56,
               '12345678901234567890123456789012345678.0123456789', '张三', 'ab', 'long text', 'b', 'x,y',
               '{"a": "乙"}', X'00FF', X'01', X'DEADBEEF', '1949-10-01', '2026-11-22 08:30:00.123456',
               '2026-11-22 08:30:00', '23:59:59.5', 2026)"#,
            "INSERT INTO tongban_conn_values (id) VALUES (2)",
        ],
    )
    .await;
    let src = open(SourceConfig {
        batch_rows: Some(10),
        ..config("values")
    });
    let schema = src.schema().await.unwrap();
    let types: Vec<(&str, DataType)> = vec![
        ("id", DataType::Int64),
        ("flag", DataType::Boolean),
        ("tiny", DataType::Int8),
        ("tiny_u", DataType::Int16),
        ("small", DataType::Int16),
        ("small_u", DataType::Int32),
        ("medium", DataType::Int32),
        ("medium_u", DataType::Int32),
        ("normal", DataType::Int32),
        ("normal_u", DataType::Int64),
        ("big", DataType::Int64),
        ("big_u", DataType::UInt64),
        ("f4", DataType::Float32),
        ("f8", DataType::Float64),
        ("amount", DataType::Decimal128(12, 2)),
        ("wide", DataType::Utf8),
        ("name", DataType::Utf8),
        ("fixed", DataType::Utf8),
        ("body", DataType::Utf8),
        ("kind", DataType::Utf8),
        ("tags", DataType::Utf8),
        ("doc", DataType::Utf8),
        ("raw", DataType::Binary),
        ("fixed_raw", DataType::Binary),
        ("data", DataType::Binary),
        ("born", DataType::Date32),
        ("seen", DataType::Timestamp(TimeUnit::Microsecond, None)),
        ("changed", DataType::Timestamp(TimeUnit::Microsecond, None)),
        ("at_time", DataType::Time64(TimeUnit::Microsecond)),
        ("yr", DataType::Int16),
    ];
    let announced: Vec<(&str, DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone()))
        .collect();
    assert_eq!(announced, types, "the mapping, in table order");
    assert!(
        !schema.field_with_name("id").unwrap().is_nullable(),
        "NOT NULL carries over"
    );
    assert!(schema.field_with_name("flag").unwrap().is_nullable());

    let batches = read_all(src.as_ref(), &Read::Full).await.unwrap();
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(b.num_rows(), 2);
    let col = |n: &str| b.column_by_name(n).unwrap().clone();
    assert!(col("flag").as_boolean().value(0));
    assert_eq!(col("tiny").as_primitive::<Int8Type>().value(0), -128);
    assert_eq!(col("tiny_u").as_primitive::<Int16Type>().value(0), 255);
    assert_eq!(col("small").as_primitive::<Int16Type>().value(0), i16::MIN);
    assert_eq!(col("small_u").as_primitive::<Int32Type>().value(0), 65_535);
    assert_eq!(
        col("medium").as_primitive::<Int32Type>().value(0),
        -8_388_608
    );
    assert_eq!(
        col("medium_u").as_primitive::<Int32Type>().value(0),
        16_777_215
    );
    assert_eq!(col("normal").as_primitive::<Int32Type>().value(0), i32::MIN);
    assert_eq!(
        col("normal_u").as_primitive::<Int64Type>().value(0),
        4_294_967_295
    );
    assert_eq!(col("big").as_primitive::<Int64Type>().value(0), i64::MIN);
    assert_eq!(col("big_u").as_primitive::<UInt64Type>().value(0), u64::MAX);
    assert_eq!(col("f4").as_primitive::<Float32Type>().value(0), 1.5);
    assert_eq!(col("f8").as_primitive::<Float64Type>().value(0), -2.25);
    assert_eq!(
        col("amount").as_primitive::<Decimal128Type>().value(0),
        -123_456
    );
    assert_eq!(
        col("wide").as_string::<i32>().value(0),
        "12345678901234567890123456789012345678.0123456789",
        "decimal(50, 10) keeps its exact text"
    );
    assert_eq!(col("name").as_string::<i32>().value(0), "张三");
    assert_eq!(
        col("fixed").as_string::<i32>().value(0),
        "ab",
        "MySQL strips char(n) padding"
    );
    assert_eq!(col("body").as_string::<i32>().value(0), "long text");
    assert_eq!(col("kind").as_string::<i32>().value(0), "b");
    assert_eq!(col("tags").as_string::<i32>().value(0), "x,y");
    assert_eq!(col("doc").as_string::<i32>().value(0), r#"{"a": "乙"}"#);
    assert_eq!(col("raw").as_binary::<i32>().value(0), &[0u8, 255]);
    assert_eq!(
        col("fixed_raw").as_binary::<i32>().value(0),
        &[1u8, 0],
        "binary(n) pads with zero bytes"
    );
    assert_eq!(
        col("data").as_binary::<i32>().value(0),
        &[0xde, 0xad, 0xbe, 0xef]
    );
    let born = col("born")
        .as_primitive::<Date32Type>()
        .value_as_date(0)
        .unwrap();
    assert_eq!(born.to_string(), "1949-10-01");
    let seen = col("seen")
        .as_primitive::<TimestampMicrosecondType>()
        .value_as_datetime(0)
        .unwrap();
    assert_eq!(
        seen.to_string(),
        "2026-11-22 08:30:00.123456",
        "datetime reads as written"
    );
    let changed = col("changed")
        .as_primitive::<TimestampMicrosecondType>()
        .value_as_datetime(0)
        .unwrap();
    assert_eq!(
        changed.to_string(),
        "2026-11-22 00:30:00",
        "timestamp reads in UTC"
    );
    assert_eq!(
        col("at_time")
            .as_primitive::<Time64MicrosecondType>()
            .value(0),
        86_399_500_000
    );
    assert_eq!(col("yr").as_primitive::<Int16Type>().value(0), 2026);
    // Row 2: every column but the key is NULL.
    for (i, f) in b.schema().fields().iter().enumerate().skip(1) {
        assert!(b.column(i).is_null(1), "{} is null", f.name());
    }
}

#[tokio::test]
async fn mysql_values_without_an_arrow_value_are_errors() {
    let mut conn = connect().await;
    fresh(
        &mut conn,
        "odd",
        "id INT PRIMARY KEY, flag BOOL, born DATE, at_time TIME",
    )
    .await;
    exec(
        &mut conn,
        &[
            "SET SESSION sql_mode = ''",
            "INSERT INTO tongban_conn_odd VALUES (1, 2, NULL, NULL), (2, NULL, '0000-00-00', NULL), \
             (3, NULL, NULL, '25:00:00'), (4, NULL, NULL, NULL)",
        ],
    )
    .await;
    for (column, says) in [
        ("flag", "not a boolean"),
        ("born", "zero date"),
        ("at_time", "not a time of day"),
    ] {
        let src = open(SourceConfig {
            columns: Some(vec!["id".into(), column.into()]),
            ..config("odd")
        });
        let err = read_all(src.as_ref(), &Read::Full).await.unwrap_err();
        assert!(
            matches!(&err, Error::Decode { column: c, .. } if c == column),
            "{err}"
        );
        assert!(err.to_string().contains(says), "{err}");
    }
}

#[tokio::test]
async fn mysql_unsupported_column_type_is_named() {
    let mut conn = connect().await;
    fresh(
        &mut conn,
        "unsupported",
        "id INT PRIMARY KEY, spot GEOMETRY, bits BIT(8)",
    )
    .await;
    exec(
        &mut conn,
        &["INSERT INTO tongban_conn_unsupported VALUES (1, POINT(1, 2), b'101')"],
    )
    .await;
    let src = open(config("unsupported"));
    let err = src.schema().await.unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedType { column, .. } if column == "spot"),
        "{err}"
    );
    assert!(
        err.to_string().contains("'spot'") && err.to_string().contains("geometry"),
        "{err}"
    );
    assert!(matches!(
        src.read(&Read::Full).await,
        Err(Error::UnsupportedType { .. })
    ));
    let only_bits = open(SourceConfig {
        columns: Some(vec!["bits".into()]),
        ..config("unsupported")
    });
    let err = only_bits.schema().await.unwrap_err();
    assert!(
        err.to_string().contains("'bits'") && err.to_string().contains("bit(8)"),
        "{err}"
    );
    // Leaving the columns out reads the rest.
    let id_only = open(SourceConfig {
        columns: Some(vec!["ID".into()]),
        ..config("unsupported")
    });
    let batches = read_all(id_only.as_ref(), &Read::Full).await.unwrap();
    assert_eq!(
        batches[0].schema().field(0).name(),
        "id",
        "the table's spelling of the name"
    );
    assert_eq!(rows(&batches), 1);
}

#[tokio::test]
async fn mysql_bad_configs_are_refused_without_io() {
    let good = r#"{"type":"mysql","url":"mariadb://reader@192.0.2.1:3306/hr?ssl-mode=REQUIRED","table":"hr.people",
        "columns":["id","名字"],"key":"id","split_rows":1000,"batch_rows":100}"#;
    let cfg: AnySource = serde_json::from_str(good).unwrap();
    cfg.validate().unwrap();
    assert!(cfg.open().is_ok(), "opening connects to nothing");
    for bad in [
        r#"{"type":"mysql","url":"postgres://x/db","table":"t"}"#,
        r#"{"type":"mysql","url":"not a url","table":"t"}"#,
        r#"{"type":"mysql","url":"mysql://u:secret@x/db","table":"t"}"#,
        r#"{"type":"mysql","url":"mysql://x/db?ssl-mode=SOMETIMES","table":"t"}"#,
        r#"{"type":"mysql","url":"mysql://x/db","table":"t; DROP TABLE t"}"#,
        r#"{"type":"mysql","url":"mysql://x/db","table":"a.b.c"}"#,
        r#"{"type":"mysql","url":"mysql://x/db","table":""}"#,
        r#"{"type":"mysql","url":"mysql://x/db","table":"t","columns":[]}"#,
        r#"{"type":"mysql","url":"mysql://x/db","table":"t","columns":["id","x`y"]}"#,
        r#"{"type":"mysql","url":"mysql://x/db","table":"t","columns":["id","ID"]}"#,
        r#"{"type":"mysql","url":"mysql://x/db","table":"t","key":"id + 1"}"#,
        r#"{"type":"mysql","url":"mysql://x/db","table":"t","split_rows":0}"#,
        r#"{"type":"mysql","url":"mysql://x/db","table":"t","batch_rows":0}"#,
        r#"{"type":"mysql","url":"mysql://x/db","table":"t","password_env":""}"#,
    ] {
        let cfg: AnySource = serde_json::from_str(bad).unwrap();
        assert!(matches!(cfg.validate(), Err(Error::Config(_))), "{bad}");
    }
    for unknown in [
        r#"{"type":"mysql","url":"mysql://x/db","table":"t","tabel":"u"}"#,
        r#"{"type":"mysql","url":"mysql://x/db","table":"t","query":"SELECT 1"}"#,
        r#"{"type":"mysql","url":"mysql://x/db"}"#,
    ] {
        assert!(
            serde_json::from_str::<AnySource>(unknown).is_err(),
            "{unknown}"
        );
    }
    // A password variable that is not set fails before connecting.
    let src = open(SourceConfig {
        url: "mysql://reader@192.0.2.1/hr".into(),
        password_env: Some("TONGBAN_TEST_MYSQL_NO_SUCH_VARIABLE".into()),
        ..config("people")
    });
    let err = src.schema().await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("TONGBAN_TEST_MYSQL_NO_SUCH_VARIABLE")),
        "{err}"
    );
}

#[tokio::test]
async fn mysql_tables_without_an_integer_key_read_fully() {
    let mut conn = connect().await;
    fresh(
        &mut conn,
        "by_code",
        "code VARCHAR(10) PRIMARY KEY, v INT NOT NULL, w INT",
    )
    .await;
    fresh(&mut conn, "heap", "v INT, w TEXT").await;
    fresh(&mut conn, "pair", "a INT, b INT, PRIMARY KEY (a, b)").await;
    let series = "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 300)";
    exec(
        &mut conn,
        &[
            &format!("INSERT INTO tongban_conn_by_code {series} SELECT CONCAT('c', LPAD(i, 3, '0')), 301 - i, i FROM s"),
            &format!("INSERT INTO tongban_conn_heap {series} SELECT i, CONCAT('w', i) FROM s"),
            &format!("INSERT INTO tongban_conn_pair {series} SELECT i % 7, i FROM s"),
        ],
    )
    .await;
    for table in ["by_code", "heap", "pair"] {
        let src = open(SourceConfig {
            batch_rows: Some(64),
            split_rows: Some(10),
            ..config(table)
        });
        let batches = read_all(src.as_ref(), &Read::Full).await.unwrap();
        assert_eq!(rows(&batches), 300, "{table}");
        assert!(batches.len() > 1, "{table}");
    }
    // A text watermark compares as text.
    let src = open(config("by_code"));
    let read = Read::Since {
        column: "code".into(),
        after: "c150".into(),
    };
    assert_eq!(rows(&read_all(src.as_ref(), &read).await.unwrap()), 150);

    // A configured key need not be the primary key: rows come in its order.
    let by_v = open(SourceConfig {
        key: Some("v".into()),
        split_rows: Some(7),
        ..config("by_code")
    });
    let batches = read_all(by_v.as_ref(), &Read::Full).await.unwrap();
    let v: Vec<i32> = batches
        .iter()
        .flat_map(|b| b.column(1).as_primitive::<Int32Type>().values().to_vec())
        .collect();
    assert_eq!(v, (1..=300).collect::<Vec<_>>());
    let read = Read::Since {
        column: "v".into(),
        after: "290".into(),
    };
    assert_eq!(rows(&read_all(by_v.as_ref(), &read).await.unwrap()), 10);
    let read = Read::Since {
        column: "v".into(),
        after: "-99999999999999999999999".into(),
    };
    assert_eq!(
        rows(&read_all(by_v.as_ref(), &read).await.unwrap()),
        300,
        "a watermark below every key"
    );
    let read = Read::Since {
        column: "v".into(),
        after: "99999999999999999999999".into(),
    };
    assert_eq!(
        rows(&read_all(by_v.as_ref(), &read).await.unwrap()),
        0,
        "a watermark above every key"
    );

    // A key must be an integer that is never NULL.
    for (table, key) in [
        ("by_code", "code"),
        ("by_code", "w"),
        ("by_code", "missing"),
    ] {
        let src = open(SourceConfig {
            key: Some(key.into()),
            ..config(table)
        });
        let err = read_all(src.as_ref(), &Read::Full).await.unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains(key)),
            "{key}: {err}"
        );
    }
    let missing = open(config("no_such_table"));
    assert!(matches!(
        missing.schema().await,
        Err(Error::Remote {
            system: "mysql",
            ..
        })
    ));
}

#[test]
fn mysql_decimal_text_parses_exactly() {
    let ok: &[(&str, i8, i128)] = &[
        ("-1234.56", 2, -123_456),
        ("1234.56", 2, 123_456),
        ("0.5", 2, 50),
        (".5", 1, 5),
        ("12", 3, 12_000),
        ("1.230", 2, 123),
        ("-0.00", 2, 0),
        ("+7", 0, 7),
        (
            "99999999999999999999999999999999999999",
            0,
            99_999_999_999_999_999_999_999_999_999_999_999_999,
        ),
        (
            "-9999999999999999999999999999.9999999999",
            10,
            -99_999_999_999_999_999_999_999_999_999_999_999_999,
        ),
    ];
    for (text, scale, want) in ok {
        assert_eq!(
            decimal_to_i128(text, *scale),
            Ok(*want),
            "{text} at scale {scale}"
        );
    }
    let bad: &[(&str, i8)] = &[
        ("1.234", 2),
        ("", 2),
        ("-", 0),
        (".", 0),
        ("1e5", 0),
        ("1.2.3", 2),
        ("--1", 0),
        ("abc", 0),
        (" 1", 0),
        ("1000000000000000000000000000000000000000", 0),
    ];
    for (text, scale) in bad {
        assert!(
            decimal_to_i128(text, *scale).is_err(),
            "{text} at scale {scale}"
        );
    }
}
