//! The file connector: CSV, JSON lines and Parquet, local and by URL.

use crate::conformance::{SourceCase, check_sink, check_source};
use arrow::array::*;
use arrow::datatypes::*;
use futures::StreamExt;
use std::path::Path;
use std::sync::Arc;
use tongban_connectors::file::{ColumnSpec, Format, SinkConfig, SourceConfig};
use tongban_connectors::{Read, SinkConfig as AnySink, Source, SourceConfig as AnySource};

fn config(path: &Path) -> SourceConfig {
    SourceConfig {
        path: Some(path.to_path_buf()),
        url: None,
        format: None,
        header: None,
        delimiter: None,
        columns: vec![
            ColumnSpec {
                name: "id".into(),
                data_type: "Int64".into(),
            },
            ColumnSpec {
                name: "name".into(),
                data_type: "Utf8".into(),
            },
            ColumnSpec {
                name: "born".into(),
                data_type: "Date32".into(),
            },
        ],
        batch_rows: Some(100),
    }
}

fn open(c: SourceConfig) -> Box<dyn Source> {
    AnySource::File(c).open().unwrap()
}

fn write_csv(path: &Path, from: usize, to: usize) {
    let mut s = String::from("id,name,born\n");
    for i in from..to {
        s.push_str(&format!("{i},\"名字{i}, 甲\",2000-01-{:02}\n", i % 28 + 1));
    }
    std::fs::write(path, s).unwrap();
}

fn write_jsonl(path: &Path, n: usize) {
    let s: String = (0..n)
        .map(|i| {
            format!(
                "{{\"id\": {i}, \"name\": \"n{i}\", \"born\": \"2000-02-{:02}\"}}\n",
                i % 28 + 1
            )
        })
        .collect();
    std::fs::write(path, s).unwrap();
}

#[tokio::test]
async fn csv_files_pass_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    // A directory of two files is one source, read in name order.
    std::fs::create_dir(dir.path().join("all")).unwrap();
    write_csv(&dir.path().join("all/a.csv"), 0, 300);
    write_csv(&dir.path().join("all/b.csv"), 300, 550);
    write_csv(&dir.path().join("empty.csv"), 0, 0);
    check_source(SourceCase {
        full: open(SourceConfig {
            format: Some(Format::Csv),
            ..config(&dir.path().join("all"))
        }),
        empty: open(config(&dir.path().join("empty.csv"))),
        rows: 550,
        since: Some(("id".into(), "499".into(), 50)),
    })
    .await;
    // A date watermark compares as a date.
    let src = open(config(&dir.path().join("all/a.csv")));
    let mut s = src
        .read(&Read::Since {
            column: "born".into(),
            after: "2000-01-27".into(),
        })
        .await
        .unwrap();
    let mut rows = 0;
    while let Some(b) = s.next().await {
        rows += b.unwrap().num_rows();
    }
    assert_eq!(rows, (0..300).filter(|i| i % 28 + 1 == 28).count());
}

#[tokio::test]
async fn jsonl_files_pass_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(&dir.path().join("p.jsonl"), 420);
    write_jsonl(&dir.path().join("e.jsonl"), 0);
    check_source(SourceCase {
        full: open(config(&dir.path().join("p.jsonl"))),
        empty: open(config(&dir.path().join("e.jsonl"))),
        rows: 420,
        since: Some(("id".into(), "400".into(), 19)),
    })
    .await;
}

#[tokio::test]
async fn parquet_files_by_path_and_by_url_pass_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let write = |name: &str, n: i64| {
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("n{i}")),
                )),
            ],
        )
        .unwrap();
        let f = std::fs::File::create(dir.path().join(name)).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, schema.clone(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    };
    write("p.parquet", 333);
    write("e.parquet", 0);
    let parquet = |name: &str, by_url: bool| {
        let path = dir.path().join(name);
        open(SourceConfig {
            path: (!by_url).then(|| path.clone()),
            url: by_url.then(|| format!("file://{}", path.display())),
            format: None,
            header: None,
            delimiter: None,
            columns: vec![],
            batch_rows: Some(50),
        })
    };
    for by_url in [false, true] {
        check_source(SourceCase {
            full: parquet("p.parquet", by_url),
            empty: parquet("e.parquet", by_url),
            rows: 333,
            since: Some(("id".into(), "300".into(), 32)),
        })
        .await;
    }
}

#[tokio::test]
async fn inferred_csv_columns_and_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_csv(&dir.path().join("p.csv"), 0, 10);
    let mut c = config(&dir.path().join("p.csv"));
    c.columns.clear();
    let schema = open(c).schema().await.unwrap();
    assert_eq!(schema.field(0).data_type(), &DataType::Int64);
    assert_eq!(schema.field(1).data_type(), &DataType::Utf8);
    // A value that is not of its declared type names the problem.
    std::fs::write(
        dir.path().join("bad.csv"),
        "id,name,born\nx1,a,2000-01-01\n",
    )
    .unwrap();
    let mut s = open(config(&dir.path().join("bad.csv")))
        .read(&Read::Full)
        .await
        .unwrap();
    let err = s.next().await.unwrap().unwrap_err().to_string();
    assert!(err.contains("x1"), "{err}");
    // Missing files and unknown formats are clear.
    let err = open(config(&dir.path().join("nope.csv")))
        .schema()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope.csv"), "{err}");
    let cfg: AnySource = serde_json::from_str(r#"{"type":"file","path":"/x/data.xlsx"}"#).unwrap();
    assert!(cfg.validate().unwrap_err().to_string().contains("format"));
    let cfg: AnySource = serde_json::from_str(
        r#"{"type":"file","path":"/x/a.csv","columns":[{"name":"a","type":"Int65"}]}"#,
    )
    .unwrap();
    assert!(cfg.validate().unwrap_err().to_string().contains("Int65"));
}

#[tokio::test]
async fn file_sinks_write_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
    let batches: Vec<RecordBatch> = (0..3)
        .map(|k| {
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from_iter_values(k * 10..k * 10 + 10))],
            )
            .unwrap()
        })
        .collect();
    for (name, format) in [
        ("o.parquet", Format::Parquet),
        ("o.csv", Format::Csv),
        ("o.jsonl", Format::Jsonl),
    ] {
        let path = dir.path().join(name);
        let sink = AnySink::File(SinkConfig {
            path: path.clone(),
            format: None,
        })
        .open()
        .unwrap();
        let count = || {
            let path = path.clone();
            async move {
                if !path.exists() {
                    return 0;
                }
                let src = open(SourceConfig {
                    path: Some(path),
                    url: None,
                    format: Some(format),
                    header: None,
                    delimiter: None,
                    columns: vec![ColumnSpec {
                        name: "id".into(),
                        data_type: "Int64".into(),
                    }],
                    batch_rows: None,
                });
                let mut s = src.read(&Read::Full).await.unwrap();
                let mut n = 0;
                while let Some(b) = s.next().await {
                    n += b.unwrap().num_rows() as u64;
                }
                n
            }
        };
        check_sink(sink.as_ref(), schema.clone(), batches.clone(), count).await;
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary files are left behind");
    }
}
