//! Dataset versions on a real S3-compatible server (s3s-fs, started by
//! `.ci/run`; `TONGBAN_TEST_S3_ENDPOINT`, default `http://127.0.0.1:9000`,
//! bucket `TONGBAN_TEST_S3_BUCKET`, default `tongban-test`, credentials
//! from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`), and on a local
//! folder through the same code. A server that cannot be reached fails the
//! tests: they never skip.

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use std::sync::Arc;
use tongban_datasets::{DatasetStore, ObjectStoreConfig, Put};

fn s3_config(test: &str) -> ObjectStoreConfig {
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(
            std::env::var(var).is_ok(),
            "{var} must be set for the S3 tests (.ci/run starts s3s-fs and sets it)"
        );
    }
    let endpoint = std::env::var("TONGBAN_TEST_S3_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:9000".to_string());
    let bucket =
        std::env::var("TONGBAN_TEST_S3_BUCKET").unwrap_or_else(|_| "tongban-test".to_string());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    ObjectStoreConfig {
        url: format!("s3://{bucket}/it-{test}-{nanos}"),
        endpoint: Some(endpoint),
        region: None,
        path_style: true,
        allow_http: true,
    }
}

fn batch(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("n", DataType::Int64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("k{i}")),
            )),
            Arc::new(Int64Array::from_iter_values(0..n)),
        ],
    )
    .unwrap()
}

/// Writes a version, lists and reads it back, streams it; a create-only put
/// never replaces what is there.
async fn round_trip(store: &DatasetStore) {
    let data = batch(1000);
    let mut w = store.begin("101/000001", 1, data.schema()).unwrap();
    w.write(&data).await.unwrap();
    let record = w.complete("test").await.unwrap();
    assert_eq!(record.row_count, 1000);
    assert!(
        record.location.starts_with("101-000001/v1-"),
        "{}",
        record.location
    );
    let files = store.files(&record.location).await.unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    let back = store.read_version(&record.location).await.unwrap();
    assert_eq!(back.iter().map(|b| b.num_rows()).sum::<usize>(), 1000);
    assert_eq!(back[0].column(0), data.column(0));
    use futures::TryStreamExt;
    let streamed: Vec<RecordBatch> = store
        .stream_version(&record.location)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.iter().map(|b| b.num_rows()).sum::<usize>(), 1000);
    // A second writer of the same version number writes its own folder.
    let mut w2 = store.begin("101/000001", 1, data.schema()).unwrap();
    w2.write(&batch(10)).await.unwrap();
    let other = w2.complete("test").await.unwrap();
    assert_ne!(other.location, record.location);
    assert_eq!(
        store.read_version(&record.location).await.unwrap()[0].num_rows(),
        1000
    );

    // Create-only: the first put wins, a second changes nothing.
    let path = "quarantine/job/run-1.parquet";
    assert_eq!(
        store.put_new(path, "first".into()).await.unwrap(),
        Put::Created
    );
    assert_eq!(
        store.put_new(path, "second".into()).await.unwrap(),
        Put::Exists
    );
    assert_eq!(store.get(path).await.unwrap(), "first");
    // No such version: no files, not an error.
    assert!(store.files("101-000001/v9").await.unwrap().is_empty());
}

#[tokio::test]
async fn versions_on_s3() {
    let config = s3_config("versions");
    let store = DatasetStore::open(Some(&config), std::path::Path::new("unused")).unwrap();
    assert_eq!(store.root(), config.url);
    round_trip(&store).await;
    assert!(
        store
            .display("quarantine/job/run-1.parquet")
            .starts_with("s3://")
    );
}

#[tokio::test]
async fn versions_on_a_local_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = DatasetStore::open(None, dir.path()).unwrap();
    round_trip(&store).await;
    // The local layout: DATA_DIR/datasets/… and DATA_DIR/quarantine/….
    assert!(dir.path().join("quarantine/job/run-1.parquet").is_file());
    assert!(dir.path().join("datasets/101-000001").is_dir());
    let url = format!("file://{}", dir.path().join("shared").display());
    let config = ObjectStoreConfig {
        url,
        endpoint: None,
        region: None,
        path_style: false,
        allow_http: false,
    };
    round_trip(&DatasetStore::open(Some(&config), dir.path()).unwrap()).await;
}

#[test]
fn bad_tables_are_refused_before_any_request() {
    let bad = ObjectStoreConfig {
        url: "gs://x".into(),
        endpoint: Some("http://x".into()),
        region: None,
        path_style: true,
        allow_http: false,
    };
    assert_eq!(bad.problems().len(), 2, "{:?}", bad.problems());
    assert!(DatasetStore::open(Some(&bad), std::path::Path::new("unused")).is_err());
}
