//! The HTTP connector, against a JSON API served by axum on 127.0.0.1.

use crate::conformance::{SourceCase, check_source};
use arrow::array::{Array, Int64Array};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tongban_connectors::{Read, Result, Source, SourceConfig as AnySource};

/// Records the test API serves: ids 0 to 549.
const TOTAL: usize = 550;

fn record(i: usize) -> Value {
    json!({"id": i, "name": format!("名字{i}"), "born": format!("2000-01-{:02}", i % 28 + 1), "extra": {"ignored": true}})
}

/// Up to `n` records from id `from`.
fn records(from: usize, n: usize) -> Vec<Value> {
    (from..TOTAL.min(from + n)).map(record).collect()
}

type Params = Query<HashMap<String, String>>;

fn param(q: &Params, name: &str, default: usize) -> usize {
    q.get(name).map_or(default, |v| v.parse().unwrap())
}

/// What the server saw, for tests to check.
#[derive(Default)]
struct Seen {
    flaky: AtomicUsize,
    gone: AtomicUsize,
    slow: AtomicUsize,
    since: std::sync::Mutex<Vec<String>>,
}

/// Serves the test API; returns its base URL.
async fn serve() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        // `page` pagination, 1-based, records under /data/items.
        .route(
            "/people/paged",
            get(|q: Params| async move {
                let (page, size) = (param(&q, "page", 1), param(&q, "per_page", 100));
                axum::Json(json!({"data": {"items": records((page - 1) * size, size)}}))
            }),
        )
        .route(
            "/empty/paged",
            get(|| async { axum::Json(json!({"data": {"items": []}})) }),
        )
        // `offset` pagination; the body is the array. Pages are capped at 40
        // records whatever the limit asked for, as many APIs do.
        .route(
            "/people/offset",
            get(|q: Params| async move {
                axum::Json(json!(records(
                    param(&q, "offset", 0),
                    param(&q, "limit", 10).min(40)
                )))
            }),
        )
        // `cursor` pagination with an opaque cursor parameter.
        .route(
            "/people/cursor",
            get(|q: Params| async move {
                let from = q
                    .get("cursor")
                    .map_or(0, |c| c.trim_start_matches("c-").parse().unwrap());
                let next = (from + 100 < TOTAL).then(|| format!("c-{}", from + 100));
                axum::Json(json!({"items": records(from, 100), "meta": {"next": next}}))
            }),
        )
        // `cursor` pagination with a relative next link, absent at the end.
        .route(
            "/people/links",
            get(|q: Params| async move {
                let from = param(&q, "from", 0);
                let mut body = json!({"items": records(from, 120)});
                if from + 120 < TOTAL {
                    body["links"] = json!({"next": format!("/people/links?from={}", from + 120)});
                }
                axum::Json(body)
            }),
        )
        // Watermark sent as a parameter; this API's "after" is inclusive, so
        // the connector's own filter has to drop the boundary row.
        .route(
            "/people/since",
            get(|State(seen): State<Arc<Seen>>, q: Params| async move {
                let after = q.get("updated_after").cloned();
                seen.since.lock().unwrap().extend(after.clone());
                let after = after.map_or(0, |a| a.parse().unwrap());
                let page = param(&q, "page", 1);
                let rows: Vec<Value> = (after..TOTAL)
                    .map(record)
                    .skip((page - 1) * 100)
                    .take(100)
                    .collect();
                axum::Json(json!(rows))
            }),
        )
        // 503 twice (the first time with Retry-After), then the records.
        .route(
            "/flaky",
            get(|State(seen): State<Arc<Seen>>| async move {
                match seen.flaky.fetch_add(1, Ordering::SeqCst) {
                    0 => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [("retry-after", "0")],
                        "busy",
                    )
                        .into_response(),
                    1 => (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
                    _ => axum::Json(json!(records(0, 10))).into_response(),
                }
            }),
        )
        .route(
            "/gone",
            get(|State(seen): State<Arc<Seen>>| async move {
                seen.gone.fetch_add(1, Ordering::SeqCst);
                (StatusCode::NOT_FOUND, "no such dataset").into_response()
            }),
        )
        .route(
            "/slow",
            get(|State(seen): State<Arc<Seen>>| async move {
                seen.slow.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(2)).await;
                axum::Json(json!([]))
            }),
        )
        .route(
            "/secure",
            get(|headers: HeaderMap| async move {
                let expected = format!("Bearer {}", env!("CARGO_PKG_NAME"));
                if headers.get("authorization").and_then(|v| v.to_str().ok())
                    == Some(expected.as_str())
                {
                    axum::Json(json!(records(0, 5))).into_response()
                } else {
                    (StatusCode::UNAUTHORIZED, "bad token").into_response()
                }
            }),
        )
        .route("/scalars", get(|| async { axum::Json(json!([1, 2, 3])) }))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

const COLUMNS: &str = r#"[{"name": "id", "type": "Int64"}, {"name": "name", "type": "Utf8"}, {"name": "born", "type": "Date32"}]"#;

/// An http source config from JSON fields (with the declared columns unless
/// `columns` is given).
fn config(fields: Value) -> AnySource {
    let mut c = json!({"type": "http", "columns": serde_json::from_str::<Value>(COLUMNS).unwrap()});
    c.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    serde_json::from_value(c).expect("a well-formed config")
}

fn open(fields: Value) -> Box<dyn Source> {
    config(fields).open().expect("the config is valid")
}

async fn read_all(source: &dyn Source, read: &Read) -> Result<Vec<RecordBatch>> {
    let mut stream = source.read(read).await?;
    let mut batches = Vec::new();
    while let Some(b) = stream.next().await {
        batches.push(b?);
    }
    Ok(batches)
}

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let col = b
                .column_by_name("id")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            col.values().to_vec()
        })
        .collect()
}

fn all_ids() -> Vec<i64> {
    (0..TOTAL as i64).collect()
}

#[tokio::test]
async fn paged_api_passes_the_conformance_suite() {
    let (base, _) = serve().await;
    let paged = |path: &str| {
        open(json!({
            "url": format!("{base}{path}"),
            "records": "/data/items",
            "pagination": {"type": "page", "size_param": "per_page", "size": 100},
            "batch_rows": 64,
        }))
    };
    check_source(SourceCase {
        full: paged("/people/paged"),
        empty: paged("/empty/paged"),
        rows: TOTAL,
        since: Some(("id".into(), "499".into(), 50)),
    })
    .await;
    // Batches span pages: every batch but the last is full.
    let batches = read_all(paged("/people/paged").as_ref(), &Read::Full)
        .await
        .unwrap();
    let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&n| n == 64),
        "{sizes:?}"
    );
    assert_eq!(ids(&batches), all_ids());
    assert_eq!(batches[0].schema().field(2).data_type(), &DataType::Date32);
}

#[tokio::test]
async fn each_pagination_style_reads_every_record_once() {
    let (base, _) = serve().await;
    let styles = [
        json!({"url": format!("{base}/people/paged"), "records": "/data/items", "pagination": {"type": "page"}}),
        json!({"url": format!("{base}/people/offset"), "pagination": {"type": "offset", "limit": 100}}),
        json!({"url": format!("{base}/people/cursor"), "records": "/items",
               "pagination": {"type": "cursor", "next": "/meta/next", "param": "cursor"}}),
        json!({"url": format!("{base}/people/links"), "records": "/items",
               "pagination": {"type": "cursor", "next": "/links/next"}}),
    ];
    for style in styles {
        let batches = read_all(open(style.clone()).as_ref(), &Read::Full)
            .await
            .unwrap();
        assert_eq!(ids(&batches), all_ids(), "{style}");
    }
    // Without `columns`, they are inferred from the first page (nested
    // objects become structs; dates stay text until declared).
    let mut fields = json!({"url": format!("{base}/people/offset"), "pagination": {"type": "offset", "limit": 100}});
    let mut inferred = config(fields.clone());
    if let AnySource::Http(c) = &mut inferred {
        c.columns.clear();
    }
    let source = inferred.open().unwrap();
    let schema = source.schema().await.unwrap();
    assert_eq!(
        schema.field_with_name("id").unwrap().data_type(),
        &DataType::Int64
    );
    assert_eq!(
        schema.field_with_name("born").unwrap().data_type(),
        &DataType::Utf8
    );
    assert!(matches!(
        schema.field_with_name("extra").unwrap().data_type(),
        DataType::Struct(_)
    ));
    let batches = read_all(source.as_ref(), &Read::Full).await.unwrap();
    assert_eq!(ids(&batches), all_ids());
    assert!(batches.iter().all(|b| b.schema() == schema));
    // More pages than max_pages is an error, not a silently short read.
    fields["max_pages"] = json!(3);
    let err = read_all(open(fields).as_ref(), &Read::Full)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_pages = 3"), "{err}");
}

#[tokio::test]
async fn since_param_sends_the_watermark_and_rows_are_still_filtered() {
    let (base, seen) = serve().await;
    let source = open(json!({
        "url": format!("{base}/people/since"),
        "pagination": {"type": "page"},
        "since_param": "updated_after",
    }));
    let read = Read::Since {
        column: "id".into(),
        after: "420".into(),
    };
    let batches = read_all(source.as_ref(), &read).await.unwrap();
    assert_eq!(ids(&batches), (421..TOTAL as i64).collect::<Vec<_>>());
    let sent = seen.since.lock().unwrap().clone();
    assert!(
        !sent.is_empty() && sent.iter().all(|a| a == "420"),
        "{sent:?}"
    );
}

#[tokio::test]
async fn a_flaky_api_is_retried_until_it_answers() {
    let (base, seen) = serve().await;
    let source = open(json!({"url": format!("{base}/flaky"), "backoff_ms": 10}));
    let batches = read_all(source.as_ref(), &Read::Full).await.unwrap();
    assert_eq!(ids(&batches), (0..10).collect::<Vec<_>>());
    assert_eq!(
        seen.flaky.load(Ordering::SeqCst),
        3,
        "two 503s, then the answer"
    );
}

#[tokio::test]
async fn a_404_fails_at_once_naming_the_url_and_status() {
    let (base, seen) = serve().await;
    let source = open(json!({"url": format!("{base}/gone?dataset=7"), "backoff_ms": 10}));
    let err = read_all(source.as_ref(), &Read::Full)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("404") && err.contains("/gone?dataset=7") && err.contains("no such dataset"),
        "{err}"
    );
    assert_eq!(seen.gone.load(Ordering::SeqCst), 1, "a 404 is not retried");
}

#[tokio::test]
async fn a_slow_api_times_out_with_a_clear_error() {
    let (base, seen) = serve().await;
    let source = open(
        json!({"url": format!("{base}/slow"), "timeout_ms": 200, "retries": 1, "backoff_ms": 10}),
    );
    let started = Instant::now();
    let err = read_all(source.as_ref(), &Read::Full)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("timed out") && err.contains("200 ms") && err.contains("2 attempts"),
        "{err}"
    );
    assert_eq!(seen.slow.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the timeout, not the server, ended the read"
    );
}

#[tokio::test]
async fn header_variables_are_expanded_from_the_environment() {
    let (base, _) = serve().await;
    // `cargo test` sets CARGO_PKG_NAME in the test's environment, which
    // spares an (unsafe, racy) set_var in a multi-threaded test binary.
    let source = open(
        json!({"url": format!("{base}/secure"), "headers": {"Authorization": "Bearer ${CARGO_PKG_NAME}"}}),
    );
    let batches = read_all(source.as_ref(), &Read::Full).await.unwrap();
    assert_eq!(ids(&batches), (0..5).collect::<Vec<_>>());
    // A variable that is not set fails the read before any request.
    let source = open(
        json!({"url": format!("{base}/secure"), "headers": {"Authorization": "Bearer ${TONGBAN_TEST_SURELY_UNSET}"}}),
    );
    let err = source
        .read(&Read::Full)
        .await
        .err()
        .expect("an unset variable fails")
        .to_string();
    assert!(err.contains("TONGBAN_TEST_SURELY_UNSET"), "{err}");
    // Without the header the API refuses, and the error says so.
    let source = open(json!({"url": format!("{base}/secure")}));
    let err = read_all(source.as_ref(), &Read::Full)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("401"), "{err}");
}

#[tokio::test]
async fn bad_bodies_are_clear_errors_naming_the_page() {
    let (base, _) = serve().await;
    let err = read_all(
        open(json!({"url": format!("{base}/scalars")})).as_ref(),
        &Read::Full,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("record 0 is a number") && err.contains("/scalars"),
        "{err}"
    );
    let source = open(
        json!({"url": format!("{base}/people/paged"), "records": "/data/nope", "pagination": {"type": "page"}}),
    );
    let err = read_all(source.as_ref(), &Read::Full)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/data/nope") && err.contains("/people/paged?page=1"),
        "{err}"
    );
    let source = open(
        json!({"url": format!("{base}/people/paged"), "records": "/data", "pagination": {"type": "page"}}),
    );
    let err = read_all(source.as_ref(), &Read::Full)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("an object, not an array"), "{err}");
    // Nothing to infer columns from.
    let mut empty = config(json!({"url": format!("{base}/empty/paged"), "records": "/data/items"}));
    if let AnySource::Http(c) = &mut empty {
        c.columns.clear();
    }
    let err = empty
        .open()
        .unwrap()
        .schema()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("declare `columns`"), "{err}");
}

#[test]
fn bad_configs_are_refused_without_io() {
    let refused = [
        (json!({"url": "ftp://example.org/x"}), "http:// or https://"),
        (json!({"url": "not a url"}), "http url"),
        (
            json!({"url": "http://x", "records": "data/items"}),
            "not a JSON pointer",
        ),
        (
            json!({"url": "http://x", "headers": {"Authorization": "Bearer ${TOKEN"}}),
            "closing",
        ),
        (
            json!({"url": "http://x", "headers": {"Authorization": "Bearer ${1X}"}}),
            "environment variable name",
        ),
        (
            json!({"url": "http://x", "headers": {"Bad Name": "x"}}),
            "header name",
        ),
        (
            json!({"url": "http://x", "pagination": {"type": "offset", "limit": 0}}),
            "limit",
        ),
        (
            json!({"url": "http://x", "pagination": {"type": "page", "size": 10}}),
            "size_param and size",
        ),
        (
            json!({"url": "http://x", "pagination": {"type": "cursor", "next": ""}}),
            "next",
        ),
        (
            json!({"url": "http://x", "pagination": {"type": "cursor", "next": "meta/next"}}),
            "not a JSON pointer",
        ),
        (json!({"url": "http://x", "max_pages": 0}), "max_pages"),
        (json!({"url": "http://x", "timeout_ms": 0}), "timeout_ms"),
        (json!({"url": "http://x", "batch_rows": 0}), "batch_rows"),
        (json!({"url": "http://x", "since_param": ""}), "since_param"),
        (
            json!({"url": "http://x", "columns": [{"name": "a", "type": "Int65"}]}),
            "Int65",
        ),
    ];
    for (fields, expected) in refused {
        let err = config(fields.clone())
            .validate()
            .expect_err(&fields.to_string())
            .to_string();
        assert!(err.contains(expected), "{fields}: {err}");
    }
    // Unknown fields, at the top or in the pagination, and unknown styles.
    for bad in [
        r#"{"type": "http", "url": "http://x", "tokens": "x"}"#,
        r#"{"type": "http", "url": "http://x", "pagination": {"type": "page", "pages": 3}}"#,
        r#"{"type": "http", "url": "http://x", "pagination": {"type": "link"}}"#,
    ] {
        assert!(serde_json::from_str::<AnySource>(bad).is_err(), "{bad}");
    }
    // A valid config opens without touching the network (nothing listens on
    // port 9) or the environment.
    let ok = config(
        json!({"url": "https://127.0.0.1:9/api?x=1", "headers": {"X-Key": "${TONGBAN_TEST_SURELY_UNSET}"},
                           "pagination": {"type": "cursor", "next": "/next"}}),
    );
    ok.validate().unwrap();
    ok.open().unwrap();
}
